// Customers for support: who they are in the catalog, what they were invoiced and owe, and their usage over time
// per meter, aggregated per day or month as rating aggregates it (late events reported apart).
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { Decimal, decimalText, formatMajor } from '../domain/money.js';
import { aggregateSql } from '../meter/usage.js';
import { eventStreamWindow } from '../store/event-window.js';

/** Limit: buckets one usage answer holds (a year of days, or ten years of months). */
export const USAGE_BUCKETS_MAX = 366;

export interface CustomerSummary {
  id: string;
  name: string;
  legal_entity: string;
  parent: string | null;
  tenants: string[];
  subscriptions: Array<{ plan: string; start: string; end: string | null }>;
  events: number;
  last_event_time: string | null;
  balances: Array<{ currency: string; invoiced: string; paid: string; outstanding: string }>;
}

export interface CustomerUsage {
  customer: string;
  from: string;
  to: string;
  bucket: 'day' | 'month';
  buckets: string[];
  meters: Array<{ meter: string; aggregation: string; quantities: string[]; events: number[]; late_events: number }>;
}

/** The catalog's customers with their events and money; with `entities`, only those legal entities' customers (a key's limit). */
export async function listCustomers(pool: pg.Pool, catalog: CatalogVersion, entities?: readonly string[]): Promise<CustomerSummary[]> {
  const customers = catalog.catalog.customers.filter((c) => entities === undefined || entities.includes(c.legal_entity));
  const ids = entities === undefined ? null : customers.map((c) => c.id);
  const events = new Map(
    (
      await pool.query<{ customer_id: string; n: number; last: Date }>(
        `SELECT customer_id, count(*)::int AS n, max(time) AS last FROM events
          WHERE ($1::text[] IS NULL OR customer_id = ANY($1)) GROUP BY customer_id`,
        [ids],
      )
    ).rows.map((r) => [r.customer_id, r]),
  );
  const money = (
    await pool.query<{ customer: string; currency: string; invoiced: string; paid: string }>(
      `SELECT customer, currency,
              sum(CASE WHEN kind = 'credit_note' THEN -total_minor ELSE total_minor END)::text AS invoiced,
              sum(amount_paid_minor)::text AS paid
         FROM invoices WHERE status = 'finalized' AND ($1::text[] IS NULL OR legal_entity = ANY($1))
        GROUP BY customer, currency ORDER BY customer, currency`,
      [entities ?? null],
    )
  ).rows;
  return customers.map((c) => {
    const e = events.get(c.id);
    return {
      id: c.id,
      name: c.name,
      legal_entity: c.legal_entity,
      parent: c.parent ?? null,
      tenants: c.tenants,
      subscriptions: (catalog.index.subscriptionsByCustomer.get(c.id) ?? []).map((s) => ({
        plan: s.plan,
        start: s.start,
        end: s.end ?? null,
      })),
      events: e?.n ?? 0,
      last_event_time: e?.last.toISOString() ?? null,
      balances: money
        .filter((m) => m.customer === c.id)
        .map((m) => {
          const invoiced = BigInt(m.invoiced);
          const paid = BigInt(m.paid);
          return {
            currency: m.currency,
            invoiced: formatMajor(invoiced, m.currency),
            paid: formatMajor(paid, m.currency),
            outstanding: formatMajor(invoiced - paid, m.currency),
          };
        }),
    };
  });
}

/** Bucket starts from `from` (inclusive) to `to` (exclusive), UTC. */
export function bucketStarts(from: string, to: string, bucket: 'day' | 'month'): string[] {
  const starts: string[] = [];
  const d = new Date(`${from}T00:00:00Z`);
  if (bucket === 'month') d.setUTCDate(1);
  const end = Date.parse(`${to}T00:00:00Z`);
  while (d.getTime() < end) {
    starts.push(d.toISOString().slice(0, bucket === 'day' ? 10 : 7));
    if (bucket === 'day') d.setUTCDate(d.getUTCDate() + 1);
    else d.setUTCMonth(d.getUTCMonth() + 1);
    if (starts.length > USAGE_BUCKETS_MAX) throw new Error(`a usage answer holds at most ${USAGE_BUCKETS_MAX} buckets`);
  }
  return starts;
}

export async function customerUsage(
  pool: pg.Pool,
  catalog: CatalogVersion,
  customer: string,
  range: { from: string; to: string; bucket: 'day' | 'month' },
): Promise<CustomerUsage> {
  const buckets = bucketStarts(range.from, range.to, range.bucket);
  const from = range.bucket === 'month' ? `${buckets[0] ?? range.from.slice(0, 7)}-01` : range.from;
  const format = range.bucket === 'day' ? 'YYYY-MM-DD' : 'YYYY-MM';
  const window = [customer, new Date(`${from}T00:00:00Z`).toISOString(), new Date(`${range.to}T00:00:00Z`).toISOString()];
  const late = new Map(
    (
      await pool.query<{ type: string; n: number }>(
        'SELECT type, count(*)::int AS n FROM events WHERE customer_id = $1 AND time >= $2 AND time < $3 AND late GROUP BY type',
        window,
      )
    ).rows.map((r) => [r.type, r.n]),
  );
  const meters: CustomerUsage['meters'] = [];
  for (const meter of catalog.catalog.meters) {
    // $5 and $6 are the bucket and its format; the meter id is $7, passed only where the text reads it.
    const hasValue = meter.aggregation === 'count' ? '' : ' AND meter_values ? $7::text';
    const rows = (
      await pool.query<{ b: string; q: string; n: number }>(
        `SELECT to_char(date_trunc($5::text, time AT TIME ZONE 'UTC'), $6::text) AS b, (${aggregateSql(meter, '$7')})::text AS q, count(*)::int AS n
           FROM events WHERE ${eventStreamWindow({ customer: '$1', type: '$4', from: '$2', to: '$3' })} AND NOT late${hasValue}
          GROUP BY 1`,
        [...window, meter.event_type, range.bucket, format, ...(meter.aggregation === 'count' ? [] : [meter.id])],
      )
    ).rows;
    const byBucket = new Map(rows.map((r) => [r.b, r]));
    meters.push({
      meter: meter.id,
      aggregation: meter.aggregation,
      quantities: buckets.map((b) => decimalText(new Decimal(byBucket.get(b)?.q ?? '0'))),
      events: buckets.map((b) => byBucket.get(b)?.n ?? 0),
      late_events: late.get(meter.event_type) ?? 0,
    });
  }
  return { customer, from, to: range.to, bucket: range.bucket, buckets, meters };
}
