// What the close bench's fast loader drops and builds again, read from the migrated schema in pg_catalog: the
// indexes, constraints, triggers and storage options of the loaded relations.
import pg from 'pg';
import { onClients, seconds } from './clients.js';

// The relations a load writes, whose indexes, constraints and triggers must end as a migrated database has them.
const LOADED_RELATIONS = `(SELECT unnest(ARRAY['events'::regclass, 'usage_rollups'::regclass, 'usage_unique_keys'::regclass]))`;

/** The indexes, constraints, triggers and storage options of events and the rollups, one sorted line each. */
export async function loadedSchema(db: pg.ClientBase | pg.Pool): Promise<string[]> {
  const { rows } = await db.query<{ line: string }>(`
    SELECT 'index on ' || i.indrelid::regclass || ': ' || pg_get_indexdef(i.indexrelid)
           || CASE WHEN i.indisvalid AND i.indisready AND i.indislive THEN '' ELSE ' (not valid)' END
           || CASE WHEN i.indisprimary THEN ' (primary)' ELSE '' END || CASE WHEN i.indimmediate THEN '' ELSE ' (deferred)' END
           || CASE WHEN i.indisclustered THEN ' (clustered)' ELSE '' END || CASE WHEN i.indisreplident THEN ' (replica identity)' ELSE '' END AS line
      FROM pg_index i WHERE i.indrelid IN ${LOADED_RELATIONS}
    UNION ALL
    SELECT 'constraint ' || c.conrelid::regclass || '.' || c.conname || ': ' || pg_get_constraintdef(c.oid)
           || coalesce(' using index ' || nullif(c.conindid, 0)::regclass::text, '') || CASE WHEN c.convalidated THEN '' ELSE ' (not validated)' END
      FROM pg_constraint c WHERE c.conrelid IN ${LOADED_RELATIONS}
    UNION ALL
    SELECT 'trigger ' || t.tgrelid::regclass || '.' || t.tgname || ' (enabled ' || t.tgenabled::text || '): ' || pg_get_triggerdef(t.oid)
      FROM pg_trigger t WHERE t.tgrelid IN ${LOADED_RELATIONS} AND NOT t.tgisinternal
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' options ' || coalesce(c.reloptions::text, '{}') FROM pg_class c WHERE c.oid IN ${LOADED_RELATIONS}
     ORDER BY 1`);
  return rows.map((r) => r.line);
}

export interface DroppedIndex {
  table: string;
  name: string;
  def: string; // pg_get_indexdef
  constraint: string | null; // the primary key or unique constraint it backed
  kind: 'p' | 'u' | null;
  deferrable: boolean;
  deferred: boolean;
  sortKeys: number; // key columns its build sorts on (pg_index.indnkeyatts); 0 for a BRIN or partial index
}

/**
 * Drops the indexes of `tables`, with the primary key and unique constraints they back (an index backing any other
 * constraint stays), in one transaction; returns them in the order they were made, for rebuildIndexes.
 */
export async function dropIndexes(client: pg.ClientBase, tables: readonly string[]): Promise<DroppedIndex[]> {
  const indexes = (
    await client.query<DroppedIndex & { kind: string | null }>(
      `SELECT i.indrelid::regclass::text AS table, c.relname AS name, pg_get_indexdef(i.indexrelid) AS def, k.conname AS constraint,
              k.contype::text AS kind, coalesce(k.condeferrable, false) AS deferrable, coalesce(k.condeferred, false) AS deferred,
              CASE WHEN a.amname = 'brin' OR i.indpred IS NOT NULL THEN 0 ELSE i.indnkeyatts END::int AS "sortKeys"
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
         LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
        WHERE i.indrelid = ANY($1::regclass[])
        ORDER BY i.indexrelid`,
      [tables],
    )
  ).rows.filter((i) => i.constraint === null || i.kind === 'p' || i.kind === 'u');
  await client.query('BEGIN');
  for (const index of indexes) {
    await client.query(
      index.constraint === null
        ? `DROP INDEX ${pg.escapeIdentifier(index.name)}`
        : `ALTER TABLE ${pg.escapeIdentifier(index.table)} DROP CONSTRAINT ${pg.escapeIdentifier(index.constraint)}`,
    );
  }
  await client.query('COMMIT');
  return indexes.map(({ table, name, def, constraint, kind, deferrable, deferred, sortKeys }) => ({
    table,
    name,
    def,
    constraint,
    kind: kind as DroppedIndex['kind'],
    deferrable,
    deferred,
    sortKeys,
  }));
}

/**
 * Builds dropped indexes again from their definitions on the clients at once (one table's indexes may be built at
 * once), the most key columns first as a guess at the longest sort; then puts their constraints back over them, as
 * they were.
 */
export async function rebuildIndexes(
  clients: readonly pg.ClientBase[],
  indexes: readonly DroppedIndex[],
  log: (line: string) => void,
): Promise<void> {
  await onClients(
    clients,
    [...indexes]
      .sort((a, b) => b.sortKeys - a.sortKeys)
      .map((index) => async (client) => {
        const began = process.hrtime.bigint();
        await client.query(index.def);
        log(`close: ${index.name} built (${seconds(began).toFixed(0)} s)`);
      }),
  );
  for (const index of indexes) {
    if (index.constraint === null) continue;
    await clients[0]!.query(
      `ALTER TABLE ${pg.escapeIdentifier(index.table)} ADD CONSTRAINT ${pg.escapeIdentifier(index.constraint)} ${index.kind === 'p' ? 'PRIMARY KEY' : 'UNIQUE'}
         USING INDEX ${pg.escapeIdentifier(index.name)}${index.deferrable ? ' DEFERRABLE' : ''}${index.deferred ? ' INITIALLY DEFERRED' : ''}`,
    );
  }
}
