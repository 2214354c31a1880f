// The figures table every bench prints: each figure beside its reference, measured in the same run, as a ratio; and
// the helpers the benches share.
import pg from 'pg';

export interface Figure {
  figure: string;
  value: string;
  reference: string;
  ratio: string;
}

const WIDTHS = [52, 12, 36, 6];

export function printFigures(figures: readonly Figure[]): void {
  const row = (cells: string[]) => cells.map((c, i) => c.padEnd(WIDTHS[i]!)).join('  ');
  console.log(row(['figure', 'value', 'reference', 'ratio']));
  for (const f of figures) console.log(row([f.figure, f.value, f.reference, f.ratio]));
}

/** A server setting (`current_setting`), the name passed as a parameter. */
export async function pgSetting(
  db: { query: <R extends object>(sql: string, values: unknown[]) => Promise<{ rows: R[] }> },
  name: string,
): Promise<string> {
  return (await db.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0]!.v;
}

/** What an ingest round writes: the events with their rollups, and what ingestion records beside them. */
export const INGEST_TABLES = [
  'events',
  'usage_rollups',
  'usage_unique_keys',
  'event_conflicts',
  'quarantine',
  'ingest_repeats',
  'ingest_batches',
] as const;

/**
 * Empties tables between rounds. The books refuse TRUNCATE (migration 026), so this runs with the triggers off for
 * its own session (session_replication_role = replica, the superuser's way round, as the bench's server gives): name
 * every table to empty, the rollups too.
 */
export async function truncateBehindTriggers(pool: pg.Pool, tables: readonly string[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SET session_replication_role = replica');
    await client.query(`TRUNCATE ${tables.map((t) => pg.escapeIdentifier(t)).join(', ')}`);
  } finally {
    await client.query('SET session_replication_role = DEFAULT');
    client.release();
  }
}
