// Month-end at volume: closing a month for N customers over M events, beside a bare GROUP BY over the same events
// in the same database. Events are generated inside Postgres (generate_series) and inserted through `events`; the
// rollups are then built once by the SQL the ingest trigger runs (migration 015), over all events at once.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import YAML from 'yaml';
import { applyCatalog, currentCatalog } from '../src/catalog/service.js';
import { closePeriod } from '../src/invoice/billing-run.js';

/** Limit: events per generating statement; each statement's rows pass through the rollup triggers at once. */
export const GENERATE_CHUNK_EVENTS = 1_000_000;
const CLOSE_APPLICATION = 'accrue-bench-close';

export interface CloseFigures {
  customers: number;
  events: number;
  generation: string; // how the events and their rollups were made
  insert_seconds: number;
  rebuild_seconds: number;
  close_seconds: number;
  group_by_seconds: number;
  invoices: number;
  rollup_rows_month: number;
  rollup_rows_hour: number;
  database_bytes: number;
  node_rss_peak_bytes: number; // this process over the whole run (the close dominates: generation happens in Postgres)
  postgres_backend_peak_bytes: number; // the largest VmHWM among the close's own backends, shared buffers it touched included
  postgres_shared_buffers: string;
}

/** Northwind's plans and products with `customers` generated customers, alternating the USD and EUR plans. */
function scaledCatalog(customers: number): string {
  const base = YAML.parse(readFileSync('examples/northwind/catalog.yaml', 'utf8')) as Record<string, unknown>;
  const list = Array.from({ length: customers }, (_, i) => {
    const us = i % 4 !== 3;
    return {
      id: `c${String(i).padStart(6, '0')}`,
      name: `Customer ${i}`,
      legal_entity: us ? 'nw-us' : 'nw-de',
      tax_jurisdiction: us ? ['US-CA', 'US-NY', 'US-OR'][i % 3] : 'DE',
      erp_customer_id: `B-${i}`,
      tenants: [`t${i}`],
    };
  });
  base.customers = list;
  base.subscriptions = list.map((c) => ({ customer: c.id, plan: c.legal_entity === 'nw-us' ? 'growth-usd' : 'scale-eur', start: '2026-01-01' }));
  base.credit_grants = [];
  base.discounts = [];
  return YAML.stringify(base);
}

// Every customer gets every kind, in turn (k counts the customer's events): mostly api calls over four regions, some
// storage samples, seats of 37 users and compute samples, spread over September 2026.
const GENERATE = `
INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id)
SELECT '//bench', 'e' || g, t.type, 't' || c, 'c' || lpad(c::text, 6, '0'),
       timestamptz '2026-09-01' + ((g * 7919) % 2592000) * interval '1 second',
       t.data, t.vals, t.dims, md5(g::text), 'ub:bench-close'
  FROM generate_series($1::bigint, $2::bigint) AS g,
       LATERAL (SELECT (g % $3) AS c, (g / $3) AS k) cc,
       LATERAL (SELECT CASE WHEN k % 20 = 0 THEN 'com.northwind.storage.usage'
                            WHEN k % 20 = 1 THEN 'com.northwind.analytics.session'
                            WHEN k % 20 = 2 THEN 'com.northwind.compute.sample'
                            ELSE 'com.northwind.api.request' END AS type) ty,
       LATERAL (SELECT ty.type,
                       CASE WHEN k % 20 = 0 THEN jsonb_build_object('gb_hours', ((g % 997)::numeric / 10)::text)
                            WHEN k % 20 = 1 THEN jsonb_build_object('user_id', 'u' || (k % 37))
                            WHEN k % 20 = 2 THEN jsonb_build_object('vcpu', (g % 24)::text)
                            ELSE jsonb_build_object('region', 'r' || (k % 4)) END AS data,
                       CASE WHEN k % 20 = 0 THEN jsonb_build_object('storage_gb_hours', ((g % 997)::numeric / 10)::text)
                            WHEN k % 20 = 1 THEN jsonb_build_object('analytics_seats', 'u' || (k % 37))
                            WHEN k % 20 = 2 THEN jsonb_build_object('peak_vcpu', (g % 24)::text)
                            ELSE '{}'::jsonb END AS vals,
                       CASE WHEN k % 20 > 2 THEN jsonb_build_object('api_calls', jsonb_build_object('region', 'r' || (k % 4)))
                            ELSE '{}'::jsonb END AS dims) t`;

/** Peak resident set (VmHWM) of a process, in bytes; 0 when /proc cannot tell. */
function peakRssBytes(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export async function benchClose(url: string, customers: number, events: number, log: (line: string) => void, options: { skipClose?: boolean } = {}): Promise<CloseFigures> {
  const setup = new pg.Pool({ connectionString: url, max: 2 });
  try {
    const applied = await applyCatalog(setup, scaledCatalog(customers), { by: 'bench' });
    if (!applied.ok) throw new Error(`bench catalog refused: ${applied.problems[0]?.path} ${applied.problems[0]?.message}`);
    await setup.query("SELECT accrue_ensure_event_partition('2026-09-01T00:00:00Z')");
    await setup.query("INSERT INTO ingest_batches (id, channel, received, accepted, duplicates, conflicts, rejected, quarantined) VALUES ('ub:bench-close', 'file', 0, 0, 0, 0, 0, 0) ON CONFLICT DO NOTHING");
    log(`close: generating ${events} events for ${customers} customers inside Postgres, ${GENERATE_CHUNK_EVENTS} per statement…`);
    let start = process.hrtime.bigint();
    // Bulk load: the rollup trigger is off while the events go in, then one rebuild runs the trigger's SQL over all
    // of them at once, which gives the rows ingestion builds batch by batch (test/integration/rollups.test.ts).
    // The key trigger stays on: every event still claims its (source, id).
    await setup.query('ALTER TABLE events DISABLE TRIGGER events_rollups_insert');
    try {
      for (let lo = 1; lo <= events; lo += GENERATE_CHUNK_EVENTS) {
        const hi = Math.min(events, lo + GENERATE_CHUNK_EVENTS - 1);
        await setup.query(GENERATE, [lo, hi, customers]);
        if ((hi / GENERATE_CHUNK_EVENTS) % 10 === 0 || hi === events) log(`close: ${hi} events stored (${(Number(process.hrtime.bigint() - start) / 1e9).toFixed(0)} s)`);
      }
    } finally {
      await setup.query('ALTER TABLE events ENABLE TRIGGER events_rollups_insert');
    }
    const insertSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    start = process.hrtime.bigint();
    await setup.query('SELECT usage_rollups_rebuild()');
    const rebuildSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    log(`close: rollups rebuilt in ${rebuildSeconds.toFixed(0)} s`);
    await setup.query('ANALYZE events');
    await setup.query('ANALYZE usage_rollups');
    await setup.query('ANALYZE usage_unique_keys');

    start = process.hrtime.bigint();
    await setup.query(
      `SELECT customer_id, type, count(*), sum((meter_values->>'storage_gb_hours')::numeric), max((meter_values->>'peak_vcpu')::numeric),
              count(DISTINCT meter_values->>'analytics_seats')
         FROM events WHERE time >= '2026-09-01' AND time < '2026-10-01' GROUP BY customer_id, type`,
    );
    const groupBySeconds = Number(process.hrtime.bigint() - start) / 1e9;
    const rollups = (await setup.query<{ grain: string; n: string }>('SELECT grain, count(*)::text AS n FROM usage_rollups GROUP BY grain')).rows;
    const rows = (grain: string) => Number(rollups.find((r) => r.grain === grain)?.n ?? '0');
    const sharedBuffers = (await setup.query<{ s: string }>("SELECT current_setting('shared_buffers') AS s")).rows[0]!.s;

    if (options.skipClose) throw new Error('generated only (skipClose)');
    // The close on its own connections, so their peak memory is the close's alone.
    const pool = new pg.Pool({ connectionString: url, max: 10, application_name: CLOSE_APPLICATION });
    let closeSeconds: number;
    let invoices: number;
    let backendPeak = 0;
    try {
      const catalog = (await currentCatalog(pool))!;
      start = process.hrtime.bigint();
      const closed = await closePeriod(pool, catalog, { period: '2026-09' });
      closeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
      invoices = closed.invoices.length;
      const pids = (await setup.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [CLOSE_APPLICATION])).rows;
      for (const { pid } of pids) backendPeak = Math.max(backendPeak, peakRssBytes(pid));
    } finally {
      await pool.end();
    }
    const databaseBytes = Number((await setup.query<{ b: string }>('SELECT pg_database_size(current_database())::text AS b')).rows[0]!.b);
    return {
      customers,
      events,
      generation: `generate_series into events (${GENERATE_CHUNK_EVENTS} per statement, keys claimed by the trigger, rollup trigger off), then usage_rollups_rebuild(): the ingest trigger's SQL over all events at once`,
      insert_seconds: insertSeconds,
      rebuild_seconds: rebuildSeconds,
      close_seconds: closeSeconds,
      group_by_seconds: groupBySeconds,
      invoices,
      rollup_rows_month: rows('month'),
      rollup_rows_hour: rows('hour'),
      database_bytes: databaseBytes,
      node_rss_peak_bytes: process.resourceUsage().maxRSS * 1024,
      postgres_backend_peak_bytes: backendPeak,
      postgres_shared_buffers: sharedBuffers,
    };
  } finally {
    await setup.end();
  }
}
