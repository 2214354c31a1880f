// Monthly partitions of events (migration 014): each writer makes sure the months it is about to write have a
// partition, before its transaction, because creating one locks the whole events table for a moment.
import type pg from 'pg';

/** Months (YYYY-MM) known to have a partition, per pool: a partition is never dropped by Accrue. */
const knownMonths = new WeakMap<pg.Pool, Set<string>>();

function monthOf(time: Date): string {
  return time.toISOString().slice(0, 7);
}

function nextMonth(month: string): string {
  const [year, m] = month.split('-').map((s) => Number.parseInt(s, 10)) as [number, number];
  return monthOf(new Date(Date.UTC(year, m, 1)));
}

/**
 * Creates the partitions for the UTC months of `times` (ISO timestamps) and for the month after `now`, unless
 * they exist. One query per month the process has not seen yet; a no-op afterwards.
 */
export async function ensureEventPartitions(pool: pg.Pool, times: Iterable<string>, now: Date = new Date()): Promise<string[]> {
  let known = knownMonths.get(pool);
  if (!known) {
    known = new Set();
    knownMonths.set(pool, known);
  }
  const wanted = new Set<string>();
  for (const time of times) {
    const month = time.slice(0, 7);
    if (!known.has(month)) wanted.add(month);
  }
  if (wanted.size === 0) return [];
  // Ahead of need: the month after the clock's, so month end does not wait on DDL.
  const ahead = nextMonth(monthOf(now));
  if (!known.has(ahead)) wanted.add(ahead);
  const ensured: string[] = [];
  for (const month of [...wanted].sort()) {
    const row = (
      await pool.query<{ name: string }>('SELECT accrue_ensure_event_partition($1::timestamptz) AS name', [`${month}-01T00:00:00Z`])
    ).rows[0]!;
    known.add(month);
    ensured.push(row.name);
  }
  return ensured;
}

/** The partitions of events, oldest first, with their row estimates (for `accrue` and docs). */
export async function listEventPartitions(
  db: pg.Pool | pg.PoolClient,
): Promise<Array<{ name: string; bounds: string; rows_estimate: string }>> {
  return (
    await db.query<{ name: string; bounds: string; rows_estimate: string }>(
      `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bounds, greatest(c.reltuples, 0)::bigint::text AS rows_estimate
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'events'::regclass
        ORDER BY c.relname = 'events_default', c.relname`,
    )
  ).rows;
}
