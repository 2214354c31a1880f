// Usage of one meter for one customer over one window, as the rating stage reads it: only events up to the run's
// watermark (so a run is repeatable) and never late events (those are billed by adjustment). windowUsage reads the
// rollups (rollups.ts); recountWindowUsage counts the events from scratch and is its reference.
import { usageRef } from '../domain/keys.js';
import type pg from 'pg';
import type { Meter } from '../domain/model.js';
import { Decimal, decimalText } from '../domain/money.js';
import { aggregateSql } from './usage.js';
import { readUsage } from './rollups.js';
import { eventStreamWindow } from '../store/event-window.js';

export interface WindowUsage {
  usage_ref: string; // ua:v1:<customer>:<meter>:<from>:<to>
  customer: string;
  meter: string;
  from: string;
  to: string;
  quantity: string;
  event_count: number;
  first_event_time: string | null;
  last_event_time: string | null;
  event_seq_watermark: string;
}

export { usageRef } from '../domain/keys.js';

export async function windowUsage(
  db: pg.Pool | pg.PoolClient,
  meter: Meter,
  customer: string,
  from: string,
  to: string,
  watermark: string,
  options: { includeLate?: boolean } = {},
): Promise<WindowUsage> {
  const groups = await readUsage(db, {
    meter,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    customers: [customer],
    late: options.includeLate ? 'include' : 'exclude',
    watermark,
    groupBy: [],
  });
  const group = groups[0];
  return {
    usage_ref: usageRef(customer, meter.id, from, to),
    customer,
    meter: meter.id,
    from,
    to,
    quantity: group?.quantity ?? '0',
    event_count: group?.event_count ?? 0,
    first_event_time: group?.first_event_time.toISOString() ?? null,
    last_event_time: group?.last_event_time.toISOString() ?? null,
    event_seq_watermark: watermark,
  };
}

/** The from-scratch reference for windowUsage: one aggregate over the stored events. */
export async function recountWindowUsage(
  db: pg.Pool | pg.PoolClient,
  meter: Meter,
  customer: string,
  from: string,
  to: string,
  watermark: string,
  options: { includeLate?: boolean } = {},
): Promise<WindowUsage> {
  const hasValue = meter.aggregation === 'count' ? '' : ' AND meter_values ? $6::text';
  const row = (
    await db.query(
      `SELECT coalesce(${aggregateSql(meter, '$6')}, 0) AS quantity, count(*)::int AS event_count, min(time) AS first_time, max(time) AS last_time
         FROM events
        WHERE ${eventStreamWindow({ customer: '$1', type: '$2', from: '$3', to: '$4' })} AND seq <= $5${options.includeLate ? '' : ' AND NOT late'}${hasValue}`,
      [
        customer,
        meter.event_type,
        new Date(from).toISOString(),
        new Date(to).toISOString(),
        watermark,
        ...(meter.aggregation === 'count' ? [] : [meter.id]),
      ],
    )
  ).rows[0] as { quantity: string; event_count: number; first_time: Date | null; last_time: Date | null };
  return {
    usage_ref: usageRef(customer, meter.id, from, to),
    customer,
    meter: meter.id,
    from,
    to,
    quantity: decimalText(new Decimal(row.quantity)),
    event_count: row.event_count,
    first_event_time: row.first_time?.toISOString() ?? null,
    last_event_time: row.last_time?.toISOString() ?? null,
    event_seq_watermark: watermark,
  };
}
