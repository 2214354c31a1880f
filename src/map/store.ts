// Map (stage 3): reading the mapping store: what is in force on a date, the full history with versions and who
// recorded each and when, and an export (CSV or YAML) that `accrue erp mappings import` reads back with no change.
import type pg from 'pg';
import YAML from 'yaml';
import type { MappingKind } from '../domain/erp.js';
import { readMappingRows, rowInForce, type MappingRow } from './resolver.js';

export { readMappingRows, type MappingRow } from './resolver.js';

/** A mapping in force on a date: its target and the row (start and version) that put it there. */
export interface MappingInForce {
  connection: string;
  kind: MappingKind;
  source: string;
  target: string;
  effective_from: string;
  version: number;
  recorded_by: string;
  recorded_at: string;
}

/** Groups rows (already in key order) by (connection, kind, source). */
function groups(rows: readonly MappingRow[]): MappingRow[][] {
  const out: MappingRow[][] = [];
  let current: MappingRow[] = [];
  for (const row of rows) {
    const last = current[0];
    if (last && (last.connection !== row.connection || last.kind !== row.kind || last.source !== row.source)) {
      out.push(current);
      current = [];
    }
    current.push(row);
  }
  if (current.length) out.push(current);
  return out;
}

/** The mappings in force on `on` (YYYY-MM-DD): ended ones and those not yet started are left out. */
export async function mappingsInForce(db: pg.Pool | pg.PoolClient, on: string, connection?: string): Promise<MappingInForce[]> {
  const out: MappingInForce[] = [];
  for (const versions of groups(await readMappingRows(db, connection))) {
    const row = rowInForce(versions, on);
    if (row && row.target !== null) out.push({ ...row, target: row.target });
  }
  return out;
}

/** Every version ever recorded, oldest start and version first within each mapping. */
export async function mappingHistory(db: pg.Pool | pg.PoolClient, connection?: string): Promise<MappingRow[]> {
  return readMappingRows(db, connection);
}

/** One row of an import or export file: an empty target ends the mapping from effective_from. */
export interface MappingFileRow {
  connection: string;
  kind: string;
  source: string;
  target: string;
  effective_from: string;
}

export const CSV_HEADER = ['connection', 'kind', 'source', 'target', 'effective_from'] as const;

/**
 * The latest version of each (connection, kind, source, effective_from): exactly what an import compares against, so
 * importing the export records nothing. Ends are kept (empty target), so the dating survives a round trip.
 */
export async function exportRows(db: pg.Pool | pg.PoolClient, connection?: string): Promise<MappingFileRow[]> {
  const latest = new Map<string, MappingRow>();
  for (const row of await readMappingRows(db, connection))
    latest.set(`${row.connection}\u0000${row.kind}\u0000${row.source}\u0000${row.effective_from}`, row); // rows come in version order
  return [...latest.values()].map((r) => ({
    connection: r.connection,
    kind: r.kind,
    source: r.source,
    target: r.target ?? '',
    effective_from: r.effective_from,
  }));
}

/** A CSV field, quoted when it holds a comma, a quote, or space at either end (import trims unquoted space). */
function csvField(value: string): string {
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function formatCsv(rows: readonly MappingFileRow[]): string {
  return [CSV_HEADER.join(','), ...rows.map((r) => CSV_HEADER.map((column) => csvField(r[column])).join(','))].join('\n') + '\n';
}

export function formatYaml(rows: readonly MappingFileRow[]): string {
  // Every value a string: the reader uses YAML's failsafe schema, so what is written is read back as the same text.
  return YAML.stringify(
    {
      mappings: rows.map((r) => ({
        connection: r.connection,
        kind: r.kind,
        source: r.source,
        target: r.target,
        effective_from: r.effective_from,
      })),
    },
    { lineWidth: 0 },
  );
}

export async function exportMappings(db: pg.Pool | pg.PoolClient, format: 'csv' | 'yaml', connection?: string): Promise<string> {
  const rows = await exportRows(db, connection);
  return format === 'csv' ? formatCsv(rows) : formatYaml(rows);
}
