// The usage side: the rating runs behind the period's invoices, and the events recounted under each run's own
// watermark and late rule against the quantities the run read (checkpoint usage_events_vs_aggregates).
import type { Meter } from '../../domain/model.js';
import { Decimal, decimalText } from '../../domain/money.js';
import { invariant } from '../../domain/result.js';
import { aggregateSql } from '../../meter/usage.js';
import type { WindowUsage } from '../../meter/windows.js';
import type { Catalogs } from '../catalogs.js';
import type { ReconKey } from '../checkpoints.js';
import { Sides, type Db, type DocumentRef } from '../sides.js';
import { eventStreamWindow } from '../../store/event-window.js';

export interface RunUsage {
  run: string;
  customer: string;
  catalog_version: number;
  watermark: string;
  include_late: boolean;
  usage: WindowUsage[];
}

/** The item of a usage aggregate: its reference, the run's watermark and whether it read late events. */
export const usageItem = (u: { usage_ref: string }, run: { watermark: string; include_late: boolean }): string =>
  `${u.usage_ref} @seq<=${run.watermark}${run.include_late ? ' +late' : ''}`;

/** The documents of one usage aggregate a run read. */
export const usageDocs = (run: RunUsage, u: WindowUsage): DocumentRef[] => [
  { kind: 'rating_run', id: run.run },
  { kind: 'usage_aggregate', id: u.usage_ref },
];

/** The rating runs of the period's finalized invoices of one legal entity, in id order. */
export async function ratingRuns(db: Db, entity: string, period: string): Promise<RunUsage[]> {
  // Credit notes carry the run of the invoice they correct; a replacement invoice (corrects set) read late usage too.
  const rows = (
    await db.query<{
      id: string;
      customer: string;
      catalog_version: number;
      watermark: string;
      usage: WindowUsage[];
      include_late: boolean;
    }>(
      `SELECT r.id, r.customer, r.catalog_version, r.event_seq_watermark::text AS watermark, r.usage, bool_or(i.corrects IS NOT NULL) AS include_late
         FROM rating_runs r JOIN invoices i ON i.rating_run = r.id
        WHERE i.legal_entity = $1 AND i.period = $2 AND i.kind = 'invoice' AND i.status <> 'draft'
        GROUP BY r.id ORDER BY r.id`,
      [entity, period],
    )
  ).rows;
  return rows.map((r) => ({
    run: r.id,
    customer: r.customer,
    catalog_version: r.catalog_version,
    watermark: r.watermark,
    include_late: r.include_late,
    usage: r.usage,
  }));
}

interface RecountGroup {
  meter: Meter;
  from: string;
  to: string;
  watermark: string;
  late: boolean;
  customers: Set<string>;
}

const countedKey = (customer: string, meter: string, from: string, to: string, watermark: string, late: boolean): string =>
  JSON.stringify([customer, meter, from, to, watermark, late]);

/** The usage the runs read, grouped by (catalog version, meter, window, watermark, late) over all customers sharing it. */
async function recountGroups(runs: readonly RunUsage[], catalogs: Catalogs): Promise<RecountGroup[]> {
  const groups = new Map<string, RecountGroup>();
  for (const run of runs) {
    const catalog = await catalogs.version(run.catalog_version);
    for (const u of run.usage) {
      const meter = catalog.index.meters.get(u.meter);
      invariant(meter !== undefined, `rating run ${run.run} read meter ${u.meter}, which catalog version ${run.catalog_version} has`);
      const key = JSON.stringify([run.catalog_version, u.meter, u.from, u.to, run.watermark, run.include_late]);
      const group = groups.get(key) ?? {
        meter,
        from: u.from,
        to: u.to,
        watermark: run.watermark,
        late: run.include_late,
        customers: new Set<string>(),
      };
      group.customers.add(u.customer);
      groups.set(key, group);
    }
  }
  return [...groups.values()];
}

/**
 * Recounts the events behind every usage aggregate a rating run read, with the run's own watermark and late rule,
 * one query per (meter, window, watermark) over all customers that share it.
 */
async function recount(db: Db, runs: readonly RunUsage[], catalogs: Catalogs): Promise<Map<string, string>> {
  const counted = new Map<string, string>(); // countedKey -> quantity
  for (const g of await recountGroups(runs, catalogs)) {
    const params: unknown[] = [
      [...g.customers],
      g.meter.event_type,
      new Date(g.from).toISOString(),
      new Date(g.to).toISOString(),
      g.watermark,
    ];
    // A meter that aggregates a value counts only the events that carry it.
    if (g.meter.aggregation !== 'count') params.push(g.meter.id);
    const rows = (
      await db.query<{ customer_id: string; quantity: string }>(
        // Each customer's window by the index of the (customer, type, day) key: one range of it per customer.
        `SELECT customer_id, coalesce(${aggregateSql(g.meter, '$6')}, 0)::text AS quantity
           FROM (SELECT DISTINCT unnest($1::text[]) AS wanted) c
           JOIN events ON ${eventStreamWindow({ customer: 'c.wanted', type: '$2', from: '$3', to: '$4' })}
          WHERE seq <= $5${g.late ? '' : ' AND NOT late'}${params.length > 5 ? ' AND meter_values ? $6' : ''}
          GROUP BY customer_id`,
        params,
      )
    ).rows;
    const found = new Map(rows.map((r) => [r.customer_id, r.quantity]));
    for (const customer of g.customers)
      counted.set(
        countedKey(customer, g.meter.id, g.from, g.to, g.watermark, g.late),
        decimalText(new Decimal(found.get(customer) ?? '0')),
      );
  }
  return counted;
}

/** Events recounted (left) against the quantities each rating run read (right), per usage aggregate. */
export async function eventSides(db: Db, entity: string, runs: readonly RunUsage[], catalogs: Catalogs): Promise<Sides> {
  const counted = await recount(db, runs, catalogs);
  const events = new Sides();
  for (const run of runs) {
    for (const u of run.usage) {
      const key: ReconKey = { legal_entity: entity, customer: run.customer, currency: '', item: usageItem(u, run) };
      const recounted = counted.get(countedKey(u.customer, u.meter, u.from, u.to, run.watermark, run.include_late));
      invariant(recounted !== undefined, `usage ${u.usage_ref} was recounted`);
      events.add('left', key, recounted, usageDocs(run, u));
      events.add('right', key, u.quantity, usageDocs(run, u));
    }
  }
  return events;
}
