// The events behind one usage line: exactly the ones its rating run counted (same customer, meter, window, and only
// events up to the run's watermark; late events only for a late-usage re-rating), recounted, grouped and sampled.
import { usageRef as keyOfUsage, usageRefPrefix } from '../domain/keys.js';
import type pg from 'pg';
import type { Meter } from '../domain/model.js';
import { Decimal, decimalText } from '../domain/money.js';
import { aggregateSql } from '../meter/usage.js';
import { EXPLAIN_LIMITS, type SampleEvent, type UsageLineage } from './model.js';
import { eventStreamWindow } from '../store/event-window.js';

export interface UsageWindow {
  usage_ref: string;
  meter: Meter;
  customer: string;
  from: string; // ISO timestamp, inclusive
  to: string; // exclusive
  watermark: string; // the rating run's event seq watermark
  includesLate: boolean;
}

/** The WHERE clause windowUsage (src/meter/windows.ts) rates with, as parameters $1..$6. */
function eventFilter(w: UsageWindow): { where: string; params: unknown[] } {
  const params: unknown[] = [w.customer, w.meter.event_type, new Date(w.from).toISOString(), new Date(w.to).toISOString(), w.watermark];
  let where = `${eventStreamWindow({ customer: '$1', type: '$2', from: '$3', to: '$4' })} AND seq <= $5`;
  if (!w.includesLate) where += ' AND NOT late';
  // Only events that carry the meter's value count towards it (windowUsage does the same).
  if (w.meter.aggregation !== 'count') {
    params.push(w.meter.id);
    where += ` AND meter_values ? $${params.length}`;
  }
  return { where, params };
}

/** Usage windows are keyed `ua:v1:<customer>:<meter>:<from>:<to>`; rebuilt from the line and checked, never parsed loosely. */
export function windowOfLine(
  customer: string,
  meter: string,
  periodStart: string,
  periodEnd: string,
  usageRef: string,
): { from: string; to: string } | undefined {
  const from = `${periodStart}T00:00:00.000Z`;
  const to = `${periodEnd}T00:00:00.000Z`;
  return usageRef === keyOfUsage(customer, meter, from, to) ? { from, to } : undefined;
}

/** The window from a usage ref alone (the forward walk has no line document): the two ISO timestamps at its end. */
export function windowOfRef(customer: string, meter: string, usageRef: string): { from: string; to: string } | undefined {
  const prefix = usageRefPrefix(customer, meter);
  if (!usageRef.startsWith(prefix)) return undefined;
  const rest = usageRef.slice(prefix.length);
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z):(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)$/.exec(rest);
  return match ? { from: match[1]!, to: match[2]! } : undefined;
}

const iso = (value: unknown): string | null =>
  value instanceof Date ? value.toISOString() : value === null || value === undefined ? null : String(value);

type Db = pg.Pool | pg.PoolClient;

/** One window's events as SQL: eventFilter's WHERE clause and parameters, and the meter's aggregate over them. */
interface WindowQuery {
  w: UsageWindow;
  where: string;
  params: unknown[];
  aggregate: string;
}

interface Summary {
  quantity: string;
  event_count: number;
  first_time: Date | null;
  last_time: Date | null;
}

interface BatchRow {
  id: string;
  events: number;
  channel: string | null;
  received_at: Date | null;
  total: string;
}

export async function usageLineage(
  db: Db,
  w: UsageWindow,
  lineQuantity: string,
  rated: { quantity: string; event_count: number } | null,
): Promise<UsageLineage> {
  const { where, params } = eventFilter(w);
  // eventFilter passes the meter's id as $6 whenever the aggregate reads a value (a count reads none).
  const q: WindowQuery = { w, where, params, aggregate: aggregateSql(w.meter, w.meter.aggregation === 'count' ? undefined : '$6') };
  const summary = await usageSummary(db, q);
  const { byDimensions, truncated } = await usageByDimensions(db, q);
  const batches = await usageBatches(db, q);
  const sample = await sampleEvents(db, q);

  const quantity = decimalText(new Decimal(summary.quantity));
  const consistent =
    new Decimal(quantity).equals(new Decimal(lineQuantity)) &&
    (rated === null || (new Decimal(rated.quantity).equals(new Decimal(quantity)) && rated.event_count === summary.event_count));
  return {
    usage_ref: w.usage_ref,
    meter: w.meter.id,
    event_type: w.meter.event_type,
    aggregation: w.meter.aggregation,
    window: { from: w.from, to: w.to },
    group_by: w.meter.group_by,
    customer: w.customer,
    event_seq_watermark: w.watermark,
    includes_late_usage: w.includesLate,
    quantity,
    event_count: summary.event_count,
    first_event_time: iso(summary.first_time),
    last_event_time: iso(summary.last_time),
    by_dimensions: byDimensions,
    by_dimensions_truncated: truncated,
    usage_batches: batches.map((b) => ({ id: b.id, channel: b.channel, received_at: iso(b.received_at), events: b.events })),
    usage_batch_count: Number(batches[0]?.total ?? 0),
    sample,
    rated,
    consistent,
  };
}

async function usageSummary(db: Db, { where, params, aggregate }: WindowQuery): Promise<Summary> {
  return (
    await db.query<Summary>(
      `SELECT coalesce(${aggregate}, 0) AS quantity, count(*)::int AS event_count, min(time) AS first_time, max(time) AS last_time FROM events WHERE ${where}`,
      params,
    )
  ).rows[0]!;
}

/** The window's quantity per combination of the meter's group_by dimensions (none when it groups by nothing). */
async function usageByDimensions(
  db: Db,
  { w, where, params, aggregate }: WindowQuery,
): Promise<{ byDimensions: UsageLineage['by_dimensions']; truncated: boolean }> {
  const groupBy = w.meter.group_by;
  if (groupBy.length === 0) return { byDimensions: [], truncated: false };
  const meterParam = params.length + 1;
  const dims = groupBy.map((_, i) => `coalesce(dimensions->$${meterParam}->>$${meterParam + 1 + i}, '') AS d${i}`);
  const names = groupBy.map((_, i) => `d${i}`).join(', ');
  const rows = (
    await db.query<Record<string, string> & { quantity: string; event_count: number }>(
      `SELECT ${dims.join(', ')}, ${aggregate} AS quantity, count(*)::int AS event_count FROM events WHERE ${where}
          GROUP BY ${names} ORDER BY ${names} LIMIT ${EXPLAIN_LIMITS.dimensionGroups + 1}`,
      [...params, w.meter.id, ...groupBy],
    )
  ).rows;
  return {
    truncated: rows.length > EXPLAIN_LIMITS.dimensionGroups,
    byDimensions: rows.slice(0, EXPLAIN_LIMITS.dimensionGroups).map((r) => ({
      dimensions: Object.fromEntries(groupBy.map((key, i) => [key, r[`d${i}`]!])),
      quantity: decimalText(new Decimal(r.quantity)),
      event_count: r.event_count,
    })),
  };
}

async function usageBatches(db: Db, { where, params }: WindowQuery): Promise<BatchRow[]> {
  return (
    await db.query<BatchRow>(
      `SELECT b.batch_id AS id, b.events, ib.channel, ib.received_at, count(*) OVER () AS total
         FROM (SELECT batch_id, count(*)::int AS events FROM events WHERE ${where} GROUP BY batch_id) b
         LEFT JOIN ingest_batches ib ON ib.id = b.batch_id
        ORDER BY b.batch_id LIMIT ${EXPLAIN_LIMITS.batchesListed}`,
      params,
    )
  ).rows;
}

/** A stable sample of the window's events (ordered by a hash of their key). */
async function sampleEvents(db: Db, { w, where, params }: WindowQuery): Promise<SampleEvent[]> {
  const meterParam = params.length + 1;
  const sample = (
    await db.query<{
      source: string;
      id: string;
      seq: string;
      time: Date;
      received_at: Date;
      batch_id: string;
      late: boolean;
      value: string | null;
      dims: Record<string, string> | null;
    }>(
      `SELECT source, id, seq, time, received_at, batch_id, late, meter_values->>$${meterParam} AS value, dimensions->$${meterParam} AS dims
         FROM events WHERE ${where}
        ORDER BY sha256(convert_to(source || E'\\n' || id, 'UTF8')), source, id LIMIT ${EXPLAIN_LIMITS.sampleEvents}`,
      [...params, w.meter.id],
    )
  ).rows;
  return sample.map((e): SampleEvent => ({
    source: e.source,
    id: e.id,
    seq: e.seq,
    time: e.time.toISOString(),
    received_at: e.received_at.toISOString(),
    batch: e.batch_id,
    late: e.late,
    value: w.meter.aggregation === 'count' ? null : e.value,
    dimensions: e.dims ?? {},
  }));
}

/** The usage batches behind several windows at once, as one chain lists them: exact count, the first ids. */
export async function batchesOfWindows(
  db: pg.Pool | pg.PoolClient,
  windows: readonly UsageWindow[],
): Promise<{ ids: string[]; count: number }> {
  if (windows.length === 0) return { ids: [], count: 0 };
  const params: unknown[] = [];
  const clauses = windows.map((w) => {
    const { where, params: own } = eventFilter(w);
    const offset = params.length;
    params.push(...own);
    return `(${where.replace(/\$(\d+)/g, (_m, n: string) => `$${Number(n) + offset}`)})`;
  });
  const rows = (
    await db.query<{ batch_id: string; total: string }>(
      `SELECT batch_id, count(*) OVER () AS total FROM (SELECT DISTINCT batch_id FROM events WHERE ${clauses.join(' OR ')}) b ORDER BY batch_id LIMIT ${EXPLAIN_LIMITS.batchesListed}`,
      params,
    )
  ).rows;
  return { ids: rows.map((r) => r.batch_id), count: Number(rows[0]?.total ?? 0) };
}
