// A window of event time as SQL, for readers of one customer's events of a meter. events_customer_type_day (migration
// 034) keys them by UTC day, not by exact time (a batch then appends to a few groups of that index instead of touching
// a page per event): a reader names the window's days, which that index finds, and keeps the events inside the exact
// bounds. The bounds compare UTC wall times (the same instants, in the same order, to the microsecond), which the
// block-range index on time cannot serve: a bitmap of a few of a customer's rows ANDed with one of whole block ranges
// was lossy and rechecked every row in them (`time >= from`, and `tstzrange(from, to) @> time` too on PostgreSQL 18,
// whose planner turns a range containment into bounds).

/**
 * Events whose `column` is in [from, to): `from` and `to` are SQL expressions of a timestamptz or its ISO 8601 text
 * (parameters, typically). A window that ends before it starts holds nothing.
 */
export function eventTimeWindow(from: string, to: string, column = 'time'): string {
  const utc = (time: string) => `(${time} AT TIME ZONE 'UTC')`;
  const start = `${from}::timestamptz`;
  const end = `${to}::timestamptz`;
  // The last day holding an instant before the end (times are kept to the microsecond).
  const lastDay = `${utc(`(${end} - interval '1 microsecond')`)}::date`;
  return (
    `${utc(column)}::date BETWEEN ${utc(start)}::date AND ${lastDay} AND ` +
    `${utc(column)} >= ${utc(start)} AND ${utc(column)} < ${utc(end)}`
  );
}
