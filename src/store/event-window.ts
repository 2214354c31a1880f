// A window of event time as SQL, for readers of one customer's events of a meter. events_customer_type_day (migration
// 034) keys them by UTC day, not by exact time (a batch then appends to a few groups of that index instead of touching
// a page per event): a reader names the window's days, which that index finds, and keeps the events inside the exact
// bounds. The bounds are written as a range containing the time, which the block-range index on time cannot serve:
// a bitmap of a few of a customer's rows ANDed with one of whole block ranges would be lossy and recheck every row in
// them.

/**
 * Events whose `column` is in [from, to): `from` and `to` are SQL expressions of a timestamptz or its ISO 8601 text
 * (parameters, typically). A window that ends before it starts holds nothing, as `from <= time AND time < to` would.
 */
export function eventTimeWindow(from: string, to: string, column = 'time'): string {
  const day = (time: string) => `(${time} AT TIME ZONE 'UTC')::date`;
  const start = `${from}::timestamptz`;
  const end = `${to}::timestamptz`;
  // The last day holding an instant before the end (times are kept to the microsecond).
  const last = day(`(${end} - interval '1 microsecond')`);
  return `${day(column)} BETWEEN ${day(start)} AND ${last} AND tstzrange(least(${start}, ${end}), ${end}) @> ${column}`;
}
