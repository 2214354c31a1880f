// One customer's events of one meter over a window of time, as SQL. events_customer_type_day_key (migration 035) keys
// them by one bigint, accrue_event_day_key(customer_id, type, time): a hash of the customer and meter above the UTC day
// number, so one customer's events of one meter on consecutive days have consecutive keys and a window is one range of
// that index. The range runs from the key of the window's first instant to that of its last (a microsecond before its
// end); the customer and type are named beside it (two streams whose hashes collide share keys) and the exact bounds
// keep the events inside the window. The bounds compare UTC wall times (the same instants, in the same order, to the
// microsecond), which the block-range index on time cannot serve: a bitmap of a few of a customer's rows ANDed with one
// of whole block ranges was lossy and rechecked every row in them (`time >= from`, and `tstzrange(from, to) @> time`
// too on PostgreSQL 18, whose planner turns a range containment into bounds).

export interface EventStream {
  /** SQL expressions (parameters, typically): the customer id and the meter's event type, both text. */
  customer: string;
  type: string;
  /** SQL expressions of a timestamptz or its ISO 8601 text: the window is [from, to). */
  from: string;
  to: string;
  /** Qualifies the events' columns, such as `e.` (empty by default). */
  alias?: string;
}

/**
 * The events of `customer` and `type` whose time is in [from, to), found by the key range of that index. A window that
 * ends before it starts holds nothing.
 */
export function eventStreamWindow({ customer, type, from, to, alias = '' }: EventStream): string {
  const utc = (time: string) => `(${time} AT TIME ZONE 'UTC')`;
  const start = `${from}::timestamptz`;
  const end = `${to}::timestamptz`;
  // The window's last instant (times are kept to the microsecond): its key is the range's upper end.
  const last = `(${end} - interval '1 microsecond')`;
  const time = `${alias}time`;
  return (
    `${alias}customer_id = ${customer}::text AND ${alias}type = ${type}::text AND ` +
    `accrue_event_day_key(${alias}customer_id, ${alias}type, ${time}) ` +
    `BETWEEN accrue_event_day_key(${customer}::text, ${type}::text, ${start}) AND accrue_event_day_key(${customer}::text, ${type}::text, ${last}) AND ` +
    `${utc(time)} >= ${utc(start)} AND ${utc(time)} < ${utc(end)}`
  );
}
