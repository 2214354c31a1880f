// Measuring the close bench: a loaded month closed on its own connections, beside a bare GROUP BY over the same
// events, with the rollup sizes and memory peaks (bench/close-run.ts prints the report).
import { pgSetting } from '../report.js';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { currentCatalog } from '../../src/catalog/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { seconds } from './clients.js';
import { GENERATION, LOAD_CONNECTIONS, loadCloseData, type Loader } from './load.js';

const CLOSE_APPLICATION = 'accrue-bench-close';

export interface CloseFigures {
  customers: number;
  events: number;
  generation: string; // how the events and their rollups were made
  insert_seconds: number; // the load: events, their keys and every index
  rebuild_seconds: number; // the rollups from the loaded events
  checkpoint_seconds: number; // writing out what the load left dirty, before measuring
  close_seconds: number;
  group_by_seconds: number;
  invoices: number;
  rollup_rows_month: number;
  rollup_rows_hour: number;
  database_bytes: number;
  rollup_bytes: number; // usage_rollups and usage_unique_keys with their indexes, within database_bytes
  rollup_series_hour: number; // distinct (customer, type, meter, late, valued, dimensions) among the hour rows
  node_rss_peak_bytes: number; // this process over the whole run (the close dominates: generation happens in Postgres)
  postgres_backend_peak_bytes: number; // the largest VmHWM among the close's own backends, shared buffers it touched included
  postgres_shared_buffers: string;
}

/** Peak resident set (VmHWM) of a process, in bytes; 0 when /proc cannot tell. */
function peakRssBytes(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export async function benchClose(
  url: string,
  customers: number,
  events: number,
  log: (line: string) => void,
  options: { skipClose?: boolean; loader?: Loader } = {},
): Promise<CloseFigures> {
  const setup = new pg.Pool({ connectionString: url, max: 1 + LOAD_CONNECTIONS });
  try {
    const loader = options.loader ?? 'fast';
    const { insertSeconds, rebuildSeconds } = await loadCloseData(setup, customers, events, log, loader);
    const reference = await measureReference(setup, log);
    if (options.skipClose) throw new Error('generated only (skipClose)');
    const close = await measureClose(setup, url);
    const sizes = await measureSizes(setup);
    return {
      customers,
      events,
      generation: GENERATION[loader],
      insert_seconds: insertSeconds,
      rebuild_seconds: rebuildSeconds,
      checkpoint_seconds: reference.checkpointSeconds,
      close_seconds: close.closeSeconds,
      group_by_seconds: reference.groupBySeconds,
      invoices: close.invoices,
      rollup_rows_month: reference.rows('month'),
      rollup_rows_hour: reference.rows('hour'),
      database_bytes: sizes.databaseBytes,
      rollup_bytes: sizes.rollupBytes,
      rollup_series_hour: sizes.series,
      node_rss_peak_bytes: process.resourceUsage().maxRSS * 1024,
      postgres_backend_peak_bytes: close.backendPeak,
      postgres_shared_buffers: reference.sharedBuffers,
    };
  } finally {
    await setup.end();
  }
}

/** After the load: statistics, a checkpoint, then the bare GROUP BY the close is compared with, and the rollup rows. */
async function measureReference(setup: pg.Pool, log: (line: string) => void) {
  await setup.query('ANALYZE events');
  await setup.query('ANALYZE usage_rollups');
  await setup.query('ANALYZE usage_unique_keys');
  // The load's dirty pages written out now, so neither measurement below pays for them.
  let start = process.hrtime.bigint();
  await setup.query('CHECKPOINT');
  const checkpointSeconds = seconds(start);
  log(`close: checkpoint after loading ${checkpointSeconds.toFixed(0)} s`);

  start = process.hrtime.bigint();
  await setup.query(
    `SELECT customer_id, type, count(*), sum((meter_values->>'storage_gb_hours')::numeric), max((meter_values->>'peak_vcpu')::numeric),
            count(DISTINCT meter_values->>'analytics_seats')
       FROM events WHERE time >= '2026-09-01' AND time < '2026-10-01' GROUP BY customer_id, type`,
  );
  const groupBySeconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rollups = (await setup.query<{ grain: string; n: string }>('SELECT grain, count(*)::text AS n FROM usage_rollups GROUP BY grain'))
    .rows;
  const rows = (grain: string) => Number(rollups.find((r) => r.grain === grain)?.n ?? '0');
  const sharedBuffers = await pgSetting(setup, 'shared_buffers');
  return { checkpointSeconds, groupBySeconds, rows, sharedBuffers };
}

/** The close on its own connections, so their peak memory is the close's alone. */
async function measureClose(setup: pg.Pool, url: string): Promise<{ closeSeconds: number; invoices: number; backendPeak: number }> {
  const pool = new pg.Pool({ connectionString: url, max: 10, application_name: CLOSE_APPLICATION });
  try {
    const catalog = (await currentCatalog(pool))!;
    const start = process.hrtime.bigint();
    const closed = await closePeriod(pool, catalog, { period: '2026-09' });
    const closeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    let backendPeak = 0;
    const pids = (await setup.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [CLOSE_APPLICATION]))
      .rows;
    for (const { pid } of pids) backendPeak = Math.max(backendPeak, peakRssBytes(pid));
    return { closeSeconds, invoices: closed.invoices.length, backendPeak };
  } finally {
    await pool.end();
  }
}

/** The database's size, the rollups' share of it, and the hour series among the rollups, after the close. */
async function measureSizes(setup: pg.Pool): Promise<{ databaseBytes: number; rollupBytes: number; series: number }> {
  const databaseBytes = Number((await setup.query<{ b: string }>('SELECT pg_database_size(current_database())::text AS b')).rows[0]!.b);
  const rollupBytes = Number(
    (
      await setup.query<{ b: string }>(
        "SELECT (pg_total_relation_size('usage_rollups') + pg_total_relation_size('usage_unique_keys'))::text AS b",
      )
    ).rows[0]!.b,
  );
  const series = Number(
    (
      await setup.query<{ n: string }>(
        "SELECT count(*)::text AS n FROM (SELECT DISTINCT customer_id, type, meter_id, late, valued, dimensions FROM usage_rollups WHERE grain = 'hour') s",
      )
    ).rows[0]!.n,
  );
  return { databaseBytes, rollupBytes, series };
}
