// The demo: Northwind's month from usage to (in later stages) invoices, the books and cash.
import { applyCatalog } from '../catalog/service.js';
import { generateUsage, type CloudEvent } from '../demo/generate.js';
import { INGEST_LIMITS } from '../ingest/cloudevent.js';
import { ingestBatch, type EventStatus } from '../ingest/service.js';
import type { PeriodWindow } from '../meter/period.js';
import { queryUsage } from '../meter/usage.js';
import { ProblemError } from '../domain/result.js';
import type { Store } from '../store/store.js';
import { readText, output } from './context.js';
import { progress } from './progress.js';
import { table } from './table.js';

export interface DemoOptions {
  events: number;
  seed: number;
  period: PeriodWindow;
  catalogFile: string;
}

const INGEST_CONCURRENCY = 4;

export async function runDemo(store: Store, options: DemoOptions): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const applied = await applyCatalog(store.pool, readText(options.catalogFile), { by: 'demo', source: options.catalogFile });
  if (!applied.ok) throw new ProblemError(applied.problems);
  const { catalogVersion } = await import('../catalog/service.js');
  const catalog = (await catalogVersion(store.pool, applied.value.version))!;
  log(`catalog ${options.catalogFile}: version ${applied.value.version}${applied.value.changed ? '' : ' (unchanged)'}`);

  // The demo plays the month back, so its clock stands just after the period ends.
  const now = new Date(options.period.to);
  const counts: Record<EventStatus, number> = { accepted: 0, duplicate: 0, conflict: 0, rejected: 0, quarantined: 0 };
  const bar = progress('ingest', {});
  const started = process.hrtime.bigint();
  let done = 0;
  const inFlight = new Set<Promise<void>>();
  let batch: CloudEvent[] = [];
  const send = async (events: CloudEvent[]) => {
    const outcome = await ingestBatch(store.pool, catalog, events, { channel: 'file', now });
    for (const [k, v] of Object.entries(outcome.counts)) counts[k as EventStatus] += v;
    done += events.length;
    bar.update(done, options.events);
  };
  for (const event of generateUsage({ catalog: catalog.catalog, period: options.period, events: options.events, seed: options.seed })) {
    batch.push(event);
    if (batch.length < INGEST_LIMITS.batchEventsMax) continue;
    const task = send(batch).finally(() => inFlight.delete(task));
    inFlight.add(task);
    batch = [];
    if (inFlight.size >= INGEST_CONCURRENCY) await Promise.race(inFlight);
  }
  if (batch.length > 0) await send(batch);
  await Promise.all(inFlight);
  bar.stop();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  log(`ingested ${options.events} events in ${seconds.toFixed(1)} s: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);

  const usage = await queryUsage(store.pool, catalog.catalog, { from: options.period.from, to: options.period.to });
  if (!usage.ok) throw new ProblemError(usage.problems);
  output(
    `\nUsage for ${options.period.period}\n` +
      table(['customer', 'meter', 'quantity', 'events'], usage.value.map((r) => [r.customer, r.meter, r.quantity, String(r.event_count)])),
    { period: options.period.period, ingest: counts, usage: usage.value },
  );
}
