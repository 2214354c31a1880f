// npm run bench: each figure beside its reference, measured side by side in one run on one machine.
//   ingest: HTTP batches of 1,000 (validation, dedup, durable commit) vs raw COPY of the same rows into the same table.
// Flags: --events N (default 200000), --concurrency N (HTTP clients, default 4). DATABASE_URL to use a server.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import pgCopy from 'pg-copy-streams';
import { openStore } from '../src/store/store.js';
import { applyCatalog, currentCatalog } from '../src/catalog/service.js';
import { buildServer } from '../src/api/server.js';
import { createKey } from '../src/api/keys.js';
import { generateUsage } from '../src/demo/generate.js';
import { validateEvent, INGEST_LIMITS } from '../src/ingest/cloudevent.js';

const { values: flags } = parseArgs({ options: { events: { type: 'string', default: '200000' }, concurrency: { type: 'string', default: '4' } } });
const EVENTS = Number.parseInt(flags.events!, 10);
const CONCURRENCY = Number.parseInt(flags.concurrency!, 10);
// A month already past, so no event is refused as being in the future.
const PERIOD = { from: '2026-10-01T00:00:00.000Z', to: '2026-11-01T00:00:00.000Z' };

const dataDir = process.env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'accrue-bench-pg-'));
const store = await openStore({ databaseUrl: process.env.DATABASE_URL, dataDir, poolSize: CONCURRENCY + 4 });
const figures: Array<{ figure: string; value: string; reference: string; ratio: string }> = [];

try {
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'bench' });
  if (!applied.ok) throw new Error('catalog refused');
  const catalog = (await currentCatalog(store.pool))!;
  const events = [...generateUsage({ catalog: catalog.catalog, period: PERIOD, events: EVENTS, seed: 7 })];
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model}), ${Math.round(totalmem() / 2 ** 30)} GiB; node ${process.version}; ${store.embedded ? 'embedded' : 'external'} PostgreSQL`);
  console.log(`events: ${EVENTS}, HTTP batches of ${INGEST_LIMITS.batchEventsMax}, ${CONCURRENCY} concurrent clients\n`);

  // --- HTTP ingest, batches of 1,000 ---
  const app = await buildServer({ pool: store.pool, bodyLimitBytes: 16 * 1024 * 1024 });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const key = (await createKey(store.pool, { name: 'bench', scope: 'ingest' })).secret;
  const bodies: string[] = [];
  for (let i = 0; i < events.length; i += INGEST_LIMITS.batchEventsMax) bodies.push(JSON.stringify(events.slice(i, i + INGEST_LIMITS.batchEventsMax)));
  let next = 0;
  let accepted = 0;
  const httpStart = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const res = await fetch(`${address}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/cloudevents-batch+json' }, body });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
        accepted += ((await res.json()) as { counts: { accepted: number } }).counts.accepted;
      }
    }),
  );
  const httpSeconds = Number(process.hrtime.bigint() - httpStart) / 1e9;
  await app.close();
  if (accepted !== EVENTS) throw new Error(`expected ${EVENTS} accepted, got ${accepted}`);

  // --- raw COPY of the same rows into the same table ---
  const rows = events.map((raw, i) => {
    const verdict = validateEvent(raw, i, { metersByType: catalog.index.metersByType, customerByTenant: catalog.index.customerByTenant, now: new Date(PERIOD.to), futureSkewMsMax: 0 });
    if (verdict.status !== 'valid') throw new Error('bench event invalid');
    const e = verdict.event;
    return [e.source, e.id, e.type, e.subject, e.customer, e.time, JSON.stringify(e.data), JSON.stringify(e.values), JSON.stringify(e.dimensions), e.content_hash, 'ub:bench', 'f'];
  });
  await store.pool.query('TRUNCATE events');
  await store.pool.query("INSERT INTO ingest_batches (id, channel, received, accepted, duplicates, conflicts, rejected, quarantined) VALUES ('ub:bench', 'file', 0, 0, 0, 0, 0, 0) ON CONFLICT DO NOTHING");
  const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
  const copyText = rows.map((r) => r.map(escape).join('\t')).join('\n') + '\n';
  const client = await store.pool.connect();
  const copyStart = process.hrtime.bigint();
  try {
    await pipeline(
      Readable.from([copyText]),
      client.query(pgCopy.from('COPY events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late) FROM STDIN')),
    );
  } finally {
    client.release();
  }
  const copySeconds = Number(process.hrtime.bigint() - copyStart) / 1e9;

  const httpRate = EVENTS / httpSeconds;
  const copyRate = EVENTS / copySeconds;
  figures.push({
    figure: 'ingest over HTTP, batches of 1,000 (events/s)',
    value: httpRate.toFixed(0),
    reference: `raw COPY into events: ${copyRate.toFixed(0)}`,
    ratio: (httpRate / copyRate).toFixed(2),
  });
} finally {
  await store.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

const widths = [52, 12, 36, 6];
const row = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(row(['figure', 'value', 'reference', 'ratio']));
for (const f of figures) console.log(row([f.figure, f.value, f.reference, f.ratio]));
