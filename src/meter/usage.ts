// Usage queries over stored events: per customer, meter, window and group_by dimensions, on exact decimals.
// Events flagged late (their period was closed when they arrived) are reported apart, never folded into the total.
// queryUsage reads the rollups (rollups.ts); recountUsage counts the events from scratch and is its reference.
import type pg from 'pg';
import type { Catalog, Meter } from '../domain/model.js';
import { Decimal, decimalText } from '../domain/money.js';
import { fail, invariant, ok, problem, type Result } from '../domain/result.js';
import { readUsage } from './rollups.js';
import { eventStreamWindow } from '../store/event-window.js';

export interface UsageQuery {
  customer?: string;
  meter?: string;
  from: string; // ISO timestamp, inclusive
  to: string; // ISO timestamp, exclusive
  groupBy?: string[];
  late?: 'exclude' | 'only' | 'include';
}

export interface UsageRow {
  customer: string;
  meter: string;
  dimensions: Record<string, string>;
  quantity: string;
  event_count: number;
  first_event_time: string;
  last_event_time: string;
}

/** The SQL text of a meter's value in an event, the meter id being the parameter `idParam`. */
export const meterValueSql = (idParam: string): string => `(meter_values->>${idParam}::text)`;

/** The SQL condition that an event carries the meter's value (empty for a count, which reads none). */
export const carriesValueSql = (meter: Meter, idParam: string): string =>
  meter.aggregation === 'count' ? '' : ` AND meter_values ? ${idParam}::text`;

/**
 * The SQL aggregate of a meter over `events`. `idParam` is the placeholder (`$5`) whose value is the meter's id: ids
 * reach SQL as parameters, never as text. A count reads no value and needs none.
 */
export function aggregateSql(meter: Meter, idParam?: string): string {
  invariant(
    meter.aggregation === 'count' || idParam !== undefined,
    `the ${meter.aggregation} of meter ${meter.id} needs its id as a parameter`,
  );
  const value = meterValueSql(idParam!);
  switch (meter.aggregation) {
    case 'count':
      return 'count(*)::numeric';
    case 'sum':
      return `sum(${value}::numeric)`;
    case 'max':
      return `max(${value}::numeric)`;
    case 'unique_count':
      return `count(DISTINCT ${value})::numeric`;
    case 'latest':
      // The latest by event time, ties broken by the greatest event id (then source), by code point as the reference recount does.
      return `(array_agg(${value}::numeric ORDER BY time DESC, id COLLATE "C" DESC, source COLLATE "C" DESC))[1]`;
  }
}

export function validateUsageQuery(catalog: Catalog, query: UsageQuery): Result<Meter[]> {
  const meters = query.meter ? catalog.meters.filter((m) => m.id === query.meter) : catalog.meters;
  if (query.meter && meters.length === 0)
    return fail(problem('meter', 'unknown_meter', `no meter ${JSON.stringify(query.meter)} in the catalog in force`));
  if (query.customer && !catalog.customers.some((c) => c.id === query.customer)) {
    return fail(problem('customer', 'unknown_customer', `no customer ${JSON.stringify(query.customer)} in the catalog in force`));
  }
  for (const [field, text] of [
    ['from', query.from],
    ['to', query.to],
  ] as const) {
    if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text) || Number.isNaN(Date.parse(text))) {
      return fail(problem(field, 'not_timestamp', 'must be a date (YYYY-MM-DD, UTC) or an RFC 3339 timestamp with an offset'));
    }
  }
  if (Date.parse(query.from) >= Date.parse(query.to)) return fail(problem('to', 'empty_window', 'must be after from'));
  for (const key of query.groupBy ?? []) {
    const bad = meters.find((m) => !m.group_by.includes(key));
    if (bad)
      return fail(
        problem(
          'group_by',
          'unknown_dimension',
          `meter ${bad.id} does not group by ${JSON.stringify(key)}; it groups by [${bad.group_by.join(', ')}]`,
        ),
      );
  }
  return ok(meters);
}

export async function queryUsage(db: pg.Pool | pg.PoolClient, catalog: Catalog, query: UsageQuery): Promise<Result<UsageRow[]>> {
  const checked = validateUsageQuery(catalog, query);
  if (!checked.ok) return checked;
  const rows: UsageRow[] = [];
  const groupBy = query.groupBy ?? [];
  for (const meter of checked.value) {
    const groups = await readUsage(db, {
      meter,
      from: new Date(query.from).toISOString(),
      to: new Date(query.to).toISOString(),
      customers: query.customer ? [query.customer] : undefined,
      late: query.late ?? 'exclude',
      groupBy,
    });
    const ordered = groupBy.length === 0 ? groups : await inDatabaseOrder(db, groups, (g) => [g.customer, ...g.dimensions]);
    for (const group of ordered) {
      const dimensions: Record<string, string> = {};
      groupBy.forEach((key, i) => (dimensions[key] = group.dimensions[i]!));
      rows.push({
        customer: group.customer,
        meter: meter.id,
        dimensions,
        quantity: group.quantity,
        event_count: group.event_count,
        first_event_time: group.first_event_time.toISOString(),
        last_event_time: group.last_event_time.toISOString(),
      });
    }
  }
  rows.sort(byCustomerThenMeter);
  return ok(rows);
}

function byCustomerThenMeter(a: UsageRow, b: UsageRow): number {
  return a.customer === b.customer ? (a.meter < b.meter ? -1 : a.meter > b.meter ? 1 : 0) : a.customer < b.customer ? -1 : 1;
}

/** Items in the order the database's collation gives their text keys, as the recount's ORDER BY does. */
async function inDatabaseOrder<T>(db: pg.Pool | pg.PoolClient, items: T[], keys: (item: T) => string[]): Promise<T[]> {
  if (items.length < 2) return items;
  const width = keys(items[0]!).length;
  const order = Array.from({ length: width }, (_, i) => `v ->> ${i}`).join(', ');
  const result = await db.query<{ i: string }>(
    `SELECT i FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t (v, i) ORDER BY ${order}`,
    [JSON.stringify(items.map(keys))],
  );
  return result.rows.map((r) => items[Number(r.i) - 1]!);
}

/** The from-scratch reference for queryUsage: one GROUP BY over the stored events. */
export async function recountUsage(db: pg.Pool | pg.PoolClient, catalog: Catalog, query: UsageQuery): Promise<Result<UsageRow[]>> {
  const checked = validateUsageQuery(catalog, query);
  if (!checked.ok) return checked;
  const rows: UsageRow[] = [];
  const groupBy = query.groupBy ?? [];
  for (const meter of checked.value) {
    const params: unknown[] = [meter.event_type, new Date(query.from).toISOString(), new Date(query.to).toISOString()];
    // One customer's window by the (customer, type, day) key's index; every customer's by the block ranges of time.
    let where = 'type = $1 AND time >= $2 AND time < $3';
    if (query.customer) {
      params.push(query.customer);
      where = eventStreamWindow({ customer: `$${params.length}`, type: '$1', from: '$2', to: '$3' });
    }
    if ((query.late ?? 'exclude') === 'exclude') where += ' AND NOT late';
    if (query.late === 'only') where += ' AND late';
    // The meter id is a parameter, pushed only where the text reads it (a count without dimensions reads none).
    let idParam: string | undefined;
    if (meter.aggregation !== 'count' || groupBy.length > 0) {
      params.push(meter.id);
      idParam = `$${params.length}`;
    }
    if (meter.aggregation !== 'count') where += ` AND meter_values ? ${idParam}::text`;
    const dims = groupBy.map((key, i) => {
      params.push(key);
      return `coalesce(dimensions->${idParam}::text->>$${params.length}::text, '') AS d${i}`;
    });
    const groups = ['customer_id', ...groupBy.map((_, i) => `d${i}`)];
    const sql = `SELECT customer_id, ${dims.map((d) => `${d}, `).join('')}${aggregateSql(meter, idParam)} AS quantity,
                        count(*) AS event_count, min(time) AS first_time, max(time) AS last_time
                   FROM events WHERE ${where}
                  GROUP BY ${groups.join(', ')} ORDER BY ${groups.join(', ')}`;
    const result = await db.query(sql, params);
    for (const row of result.rows as Array<Record<string, unknown>>) {
      const dimensions: Record<string, string> = {};
      groupBy.forEach((key, i) => (dimensions[key] = String(row[`d${i}`])));
      rows.push({
        customer: String(row.customer_id),
        meter: meter.id,
        dimensions,
        quantity: decimalText(new Decimal(String(row.quantity))),
        event_count: Number(row.event_count),
        first_event_time: (row.first_time as Date).toISOString(),
        last_event_time: (row.last_time as Date).toISOString(),
      });
    }
  }
  rows.sort((a, b) =>
    a.customer === b.customer ? (a.meter < b.meter ? -1 : a.meter > b.meter ? 1 : 0) : a.customer < b.customer ? -1 : 1,
  );
  return ok(rows);
}
