// Map (stage 3): the ERP id in force for an Accrue id on a date, from a connection's append-only, effective-dated
// mapping rows (erp_mappings, migration 022). The rule: among the rows of (kind, source) with effective_from on or
// before the date, the latest effective_from wins, and for that date the highest version; a NULL target there means
// the mapping was ended, so there is none.
import type pg from 'pg';
import { MAPPING_KINDS, MappingMissing, type MappingKind, type MappingResolver, type MappingSource } from '../domain/erp.js';

/** One stored version of one mapping (a row of erp_mappings). */
export interface MappingRow {
  connection: string;
  kind: MappingKind;
  source: string;
  target: string | null; // null: the mapping ends on effective_from
  effective_from: string; // YYYY-MM-DD
  version: number;
  recorded_by: string;
  recorded_at: string; // ISO timestamp
}

const keyOf = (kind: string, source: string): string => `${kind}\u0000${source}`;

/** The row in force on `on` among the versions of one (kind, source), or undefined before the first. */
export function rowInForce<T extends { effective_from: string; version: number }>(versions: readonly T[], on: string): T | undefined {
  let found: T | undefined;
  for (const row of versions) {
    if (row.effective_from > on) continue;
    if (!found || row.effective_from > found.effective_from || (row.effective_from === found.effective_from && row.version > found.version))
      found = row;
  }
  return found;
}

/** A resolver over rows already read (one connection's). Pure: the snapshot never changes once built. */
export function resolverOf(
  connection: string,
  rows: readonly Pick<MappingRow, 'kind' | 'source' | 'target' | 'effective_from' | 'version'>[],
): MappingResolver {
  const byKey = new Map<string, (typeof rows)[number][]>();
  for (const row of rows) {
    const key = keyOf(row.kind, row.source);
    const list = byKey.get(key);
    if (list) list.push(row);
    else byKey.set(key, [row]);
  }
  const find = (kind: MappingKind, source: string, on: string): string | undefined => {
    const versions = byKey.get(keyOf(kind, source));
    return versions ? (rowInForce(versions, on)?.target ?? undefined) : undefined;
  };
  return {
    connection,
    find,
    resolve(kind, source, on, field) {
      const target = find(kind, source, on);
      if (target === undefined) throw new MappingMissing(connection, kind, source, field);
      return target;
    },
  };
}

const ROW_COLUMNS = `connection, kind, source, target, to_char(effective_from, 'YYYY-MM-DD') AS effective_from, version, recorded_by,
  to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS recorded_at`;

/** Every stored row, of one connection or all, in (connection, kind, source, effective_from, version) order. */
export async function readMappingRows(db: pg.Pool | pg.PoolClient, connection?: string): Promise<MappingRow[]> {
  const rows = await db.query<MappingRow>(
    `SELECT ${ROW_COLUMNS} FROM erp_mappings ${connection === undefined ? '' : 'WHERE connection = $1'}
      ORDER BY connection, kind, source, effective_from, version`,
    connection === undefined ? [] : [connection],
  );
  for (const row of rows.rows)
    if (!(MAPPING_KINDS as readonly string[]).includes(row.kind)) throw new Error(`erp_mappings holds an unknown kind ${row.kind}`);
  return rows.rows;
}

/** The store's mappings of one connection: each load() is a fresh snapshot, so a mapping fixed after a refusal is seen. */
export function mappingSource(pool: pg.Pool, connection: string): MappingSource {
  return {
    connection,
    async load() {
      return resolverOf(connection, await readMappingRows(pool, connection));
    },
  };
}
