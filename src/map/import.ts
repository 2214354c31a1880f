// Map (stage 3): `accrue erp mappings import`: a CSV or YAML file of mappings from Accrue's ids to an ERP's, checked
// row by row against the store's connections and the catalog in force, then recorded in one transaction (all or
// nothing) as new versions in the append-only erp_mappings, each change in the audit log. A row already in force with
// the same target records nothing, so a file can be imported again and again. Documents that were waiting for a
// mapping on a changed connection are woken in the same transaction.
import type pg from 'pg';
import { parse as parseCsv } from 'csv-parse/sync';
import { parseDocument } from 'yaml';
import { MAPPING_KINDS, type ErpKind, type MappingKind } from '../domain/erp.js';
import { currentCatalog } from '../catalog/service.js';
import type { Catalog } from '../domain/model.js';
import { isCurrency } from '../domain/money.js';
import { fail, ok, problem, ProblemError, type Problem, type Result } from '../domain/result.js';
import { appendAudit } from '../audit/log.js';
import { transaction } from '../store/store.js';
import { readMappingRows, rowInForce, type MappingRow } from './resolver.js';
import { CSV_HEADER, type MappingFileRow } from './store.js';

/** Limits: characters in a file, rows in a file, characters in one source or target. */
export const MAPPING_FILE_CHARS_MAX = 8 * 1024 * 1024;
export const MAPPING_ROWS_MAX = 20_000;
export const MAPPING_TEXT_CHARS_MAX = 255;
/** Problems reported at most per import (the first ones, in file order). */
export const MAPPING_PROBLEMS_MAX = 100;
const YAML_ALIASES_MAX = 100;

export type MappingFileFormat = 'csv' | 'yaml';

/** A row as read from the file, with its 1-based row number (the CSV header is not a row) and its line. */
export interface NumberedRow extends MappingFileRow {
  row: number;
  line?: number;
}

/** CSV when the first non-blank line is the CSV header, YAML otherwise. */
export function detectMappingFormat(text: string): MappingFileFormat {
  const first =
    text
      .replace(/^\uFEFF/, '')
      .split(/\r?\n/)
      .find((l) => l.trim() !== '') ?? '';
  return first.replace(/\s/g, '').startsWith('connection,') ? 'csv' : 'yaml';
}

const at = (row: number, field?: string): string => (field ? `row ${row}.${field}` : `row ${row}`);

/** Reads the file's rows, checking only its shape (columns, keys, text); the meaning is checked by validateRows. */
export function parseMappingFile(text: string, format: MappingFileFormat = detectMappingFormat(text)): Result<NumberedRow[]> {
  if (text.length > MAPPING_FILE_CHARS_MAX)
    return fail(problem('', 'too_large', `a mappings file has at most ${MAPPING_FILE_CHARS_MAX} characters, got ${text.length}`));
  const source = text.replace(/^\uFEFF/, '');
  const rows = format === 'csv' ? readCsv(source) : readYaml(source);
  if (!rows.ok) return rows;
  if (rows.value.length > MAPPING_ROWS_MAX)
    return fail(problem('', 'too_many_rows', `a mappings file has at most ${MAPPING_ROWS_MAX} rows, got ${rows.value.length}; split it`));
  return rows;
}

function readCsv(text: string): Result<NumberedRow[]> {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parseCsv(text, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      relax_column_count: true,
      info: true,
    }) as unknown as typeof records;
  } catch (error) {
    return fail(problem('', 'csv_syntax', `CSV: ${(error as Error).message.split('\n')[0]}`));
  }
  const header = records[0]?.record;
  if (!header || header.join(',') !== CSV_HEADER.join(','))
    return fail(problem('header', 'invalid_header', `the first line must be the header ${CSV_HEADER.join(',')}`));
  const problems: Problem[] = [];
  const rows: NumberedRow[] = [];
  records.slice(1).forEach(({ record, info }, i) => {
    const row = i + 1;
    if (record.length !== CSV_HEADER.length) {
      problems.push(
        problem(at(row), 'column_count', `line ${info.lines}: has ${record.length} columns, the header has ${CSV_HEADER.length}`),
      );
      return;
    }
    const [connection, kind, src, target, effective_from] = record.map((v) => v.trim()) as [string, string, string, string, string];
    rows.push({ row, line: info.lines, connection, kind, source: src, target, effective_from });
  });
  return problems.length ? fail(...problems.slice(0, MAPPING_PROBLEMS_MAX)) : ok(rows);
}

function readYaml(text: string): Result<NumberedRow[]> {
  // Failsafe schema: every scalar is text exactly as written (`0042` stays `0042`, `2026-01-01` a string, `null` the
  // text null); an empty value is the empty text. A repeated key is refused, never silently the last one.
  const document = parseDocument(text, { schema: 'failsafe', uniqueKeys: true, prettyErrors: true });
  if (document.errors.length > 0)
    return fail(
      ...document.errors.slice(0, MAPPING_PROBLEMS_MAX).map((e) => problem('', 'yaml_syntax', `YAML: ${e.message.split('\n')[0]}`)),
    );
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: YAML_ALIASES_MAX });
  } catch (error) {
    return fail(problem('', 'yaml_syntax', `YAML: ${(error as Error).message.split('\n')[0]}`));
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return fail(
      problem(
        '',
        'not_a_mapping',
        'a mappings file is `mappings:` followed by a list of {connection, kind, source, target, effective_from}',
      ),
    );
  const problems: Problem[] = [];
  for (const key of Object.keys(value))
    if (key !== 'mappings') problems.push(problem(key, 'unknown_key', 'unknown key; the only key is mappings'));
  const list = (value as { mappings?: unknown }).mappings;
  if (!Array.isArray(list))
    return fail(...problems, problem('mappings', 'not_a_list', 'must be a list of {connection, kind, source, target, effective_from}'));
  const rows: NumberedRow[] = [];
  list.forEach((item: unknown, i) => {
    const row = i + 1;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      problems.push(problem(at(row), 'not_a_mapping', 'must be a mapping with connection, kind, source, target and effective_from'));
      return;
    }
    const entry = item as Record<string, unknown>;
    for (const key of Object.keys(entry))
      if (!(CSV_HEADER as readonly string[]).includes(key))
        problems.push(problem(at(row, key), 'unknown_key', `unknown key; known keys: ${CSV_HEADER.join(', ')}`));
    const text = (field: (typeof CSV_HEADER)[number]): string => {
      const v = entry[field];
      if (v === undefined) return '';
      if (typeof v !== 'string') {
        problems.push(problem(at(row, field), 'not_text', 'must be text'));
        return '';
      }
      return v.trim();
    };
    rows.push({
      row,
      connection: text('connection'),
      kind: text('kind'),
      source: text('source'),
      target: text('target'),
      effective_from: text('effective_from'),
    });
  });
  return problems.length ? fail(...problems.slice(0, MAPPING_PROBLEMS_MAX)) : ok(rows);
}

/** True for a real calendar date written YYYY-MM-DD. */
export function isIsoDate(value: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return y >= 1 && date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

// C0 and C1 controls, DEL, and the line and paragraph separators: never part of an id.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Kinds an ERP has no use for: Xero has no subsidiaries, nexus or tax codes apart from its TaxType. */
const KINDS_OF: Record<ErpKind, readonly MappingKind[]> = {
  netsuite: MAPPING_KINDS,
  xero: ['customer', 'item', 'account', 'tax_type', 'currency'],
};

/** What the store and the catalog say a row may name. */
export interface ValidationContext {
  connections: ReadonlyMap<string, ErpKind>; // saved connections (saveConnections) and their ERP
  routing: ReadonlyMap<string, string>; // legal entity -> the connection it posts to
  catalog: Catalog | undefined; // the catalog in force
}

/** GL accounts the catalog names: the account roles of every legal entity and the products' revenue accounts. */
export function catalogAccounts(catalog: Catalog): Set<string> {
  const accounts = new Set<string>();
  for (const roles of Object.values(catalog.accounts))
    for (const account of Object.values(roles)) if (account !== undefined) accounts.add(account);
  for (const product of catalog.products) for (const account of Object.values(product.revenue_account)) accounts.add(account);
  return accounts;
}

/** Currencies the catalog names: the legal entities', the plans' and the credit grants'. */
export function catalogCurrencies(catalog: Catalog): Set<string> {
  return new Set([
    ...catalog.legal_entities.map((e) => e.currency),
    ...catalog.plans.map((p) => p.currency),
    ...catalog.credit_grants.map((g) => g.currency),
  ]);
}

/**
 * Checks every row's meaning; each problem names the row and the field. `recordsNothing` rows (already in force with
 * that target) and ends (an empty target) are not held to the catalog in force: a mapping whose product or customer
 * has since left the catalog can still be ended, and an old export still imports back with no change.
 */
export function validateRows(
  rows: readonly NumberedRow[],
  context: ValidationContext,
  recordsNothing: (row: NumberedRow) => boolean = () => false,
): Problem[] {
  const check: RowCheck = { context, known: knownIds(context.catalog), recordsNothing, problems: [] };
  const { problems } = check;
  const firstRowOf = new Map<string, number>();
  for (const r of rows) {
    const before = problems.length;
    const erp = checkConnection(check, r);
    const kindOk = checkKind(check, r, erp);
    if (r.source === '') problems.push(problem(at(r.row, 'source'), 'required', 'names the Accrue id to map'));
    else if (!textProblem(problems, r, 'source', r.source) && kindOk) checkSource(check, r, erp);
    textProblem(problems, r, 'target', r.target); // empty: the mapping ends on effective_from
    if (!isIsoDate(r.effective_from))
      problems.push(
        problem(
          at(r.row, 'effective_from'),
          'invalid_date',
          `must be a real date written YYYY-MM-DD, got ${JSON.stringify(r.effective_from)}`,
        ),
      );
    if (problems.length === before) {
      const key = `${r.connection}\u0000${r.kind}\u0000${r.source}\u0000${r.effective_from}`;
      const first = firstRowOf.get(key);
      if (first !== undefined)
        problems.push(
          problem(
            at(r.row),
            'duplicate_row',
            `repeats row ${first}'s connection, kind, source and effective_from; one target per start date`,
          ),
        );
      else firstRowOf.set(key, r.row);
    }
    if (problems.length >= MAPPING_PROBLEMS_MAX) break;
  }
  return problems.slice(0, MAPPING_PROBLEMS_MAX);
}

/** The ids of the catalog in force that a mapping's source may name (all empty without a catalog). */
function knownIds(catalog: Catalog | undefined) {
  return {
    accounts: catalog ? catalogAccounts(catalog) : new Set<string>(),
    currencies: catalog ? catalogCurrencies(catalog) : new Set<string>(),
    customers: new Map(catalog?.customers.map((c) => [c.id, c] as const) ?? []),
    products: new Set(catalog?.products.map((p) => p.id) ?? []),
    jurisdictions: new Set(catalog?.tax_rates.map((t) => t.jurisdiction) ?? []),
    entities: new Set(catalog?.legal_entities.map((e) => e.id) ?? []),
  };
}

/** What validateRows' checks of one row share: the context, the catalog's ids and the problems found so far. */
interface RowCheck {
  context: ValidationContext;
  known: ReturnType<typeof knownIds>;
  recordsNothing: (row: NumberedRow) => boolean;
  problems: Problem[];
}

/** A control character or an over-long value is a problem on its field; true when it found one. */
function textProblem(
  problems: Problem[],
  r: NumberedRow,
  field: 'connection' | 'kind' | 'source' | 'target' | 'effective_from',
  value: string,
): boolean {
  if (CONTROL.test(value))
    problems.push(problem(at(r.row, field), 'control_character', 'must not contain control characters (tabs, line breaks, ...)'));
  else if (value.length > MAPPING_TEXT_CHARS_MAX)
    problems.push(problem(at(r.row, field), 'too_long', `has at most ${MAPPING_TEXT_CHARS_MAX} characters, got ${value.length}`));
  else return false;
  return true;
}

/** The row's connection, and the ERP it is a connection to (undefined when it is missing or unknown). */
function checkConnection({ context, problems }: RowCheck, r: NumberedRow): ErpKind | undefined {
  let erp: ErpKind | undefined;
  if (r.connection === '')
    problems.push(problem(at(r.row, 'connection'), 'required', 'names the connection (erp.connections in the configuration)'));
  else if (!textProblem(problems, r, 'connection', r.connection)) {
    erp = context.connections.get(r.connection);
    if (erp === undefined)
      problems.push(
        problem(
          at(r.row, 'connection'),
          'unknown_connection',
          `no connection ${JSON.stringify(r.connection)}; the connections are ${[...context.connections.keys()].join(', ') || '(none: configure erp.connections)'}`,
        ),
      );
  }
  return erp;
}

/** The row's kind: a mapping kind, and one the connection's ERP has; true when it is. */
function checkKind({ problems }: RowCheck, r: NumberedRow, erp: ErpKind | undefined): boolean {
  const kind = r.kind as MappingKind;
  if (textProblem(problems, r, 'kind', r.kind)) return false;
  if (!(MAPPING_KINDS as readonly string[]).includes(r.kind))
    problems.push(problem(at(r.row, 'kind'), 'unknown_kind', `must be one of ${MAPPING_KINDS.join(', ')}`));
  else if (erp && !KINDS_OF[erp].includes(kind))
    problems.push(
      problem(
        at(r.row, 'kind'),
        'kind_not_for_erp',
        `a ${erp} connection has no ${kind} mappings; its kinds are ${KINDS_OF[erp].join(', ')}`,
      ),
    );
  else return true;
  return false;
}

/** The row's source, of a known kind: a currency code, and an id of the catalog in force unless exempt. */
function checkSource(check: RowCheck, r: NumberedRow, erp: ErpKind | undefined): void {
  const { context, problems } = check;
  const kind = r.kind as MappingKind;
  const catalogExempt = r.target === '' || check.recordsNothing(r); // see validateRows
  if (kind === 'currency' && !isCurrency(r.source))
    problems.push(problem(at(r.row, 'source'), 'not_iso_4217', `${JSON.stringify(r.source)} is not an ISO 4217 currency code`));
  else if (catalogExempt) {
    // an end, or a row that records nothing: not held to the catalog in force
  } else if (!context.catalog)
    problems.push(
      problem(at(r.row, 'source'), 'no_catalog', 'no catalog is applied yet; apply one (accrue catalog apply) before importing mappings'),
    );
  else checkSourceInCatalog(check, r, kind, erp);
}

/** The source names an id of its kind in the catalog in force; a customer or legal entity on this connection. */
function checkSourceInCatalog({ context, known, problems }: RowCheck, r: NumberedRow, kind: MappingKind, erp: ErpKind | undefined): void {
  const unknown = (what: string) =>
    problems.push(problem(at(r.row, 'source'), 'unknown_source', `the catalog in force has no ${what} ${JSON.stringify(r.source)}`));
  if (kind === 'customer') {
    const customer = known.customers.get(r.source);
    if (!customer) unknown('customer');
    else if (erp && context.routing.get(customer.legal_entity) !== r.connection)
      problems.push(
        problem(
          at(r.row, 'source'),
          'entity_not_on_connection',
          `customer ${r.source} belongs to legal entity ${customer.legal_entity}, which posts to ${context.routing.get(customer.legal_entity) ?? 'no connection'}, not ${r.connection}`,
        ),
      );
  } else if (kind === 'item') {
    if (!known.products.has(r.source)) unknown('product');
  } else if (kind === 'account') {
    if (!known.accounts.has(r.source)) unknown('GL account');
  } else if (kind === 'tax_code' || kind === 'tax_type' || kind === 'nexus') {
    if (!known.jurisdictions.has(r.source)) unknown('tax jurisdiction');
  } else if (kind === 'currency') {
    if (!known.currencies.has(r.source)) unknown('currency');
  } else if (kind === 'subsidiary') {
    if (!known.entities.has(r.source)) unknown('legal entity');
    else if (erp && context.routing.get(r.source) !== r.connection)
      problems.push(
        problem(
          at(r.row, 'source'),
          'entity_not_on_connection',
          `legal entity ${r.source} posts to ${context.routing.get(r.source) ?? 'no connection'}, not ${r.connection}`,
        ),
      );
  }
}

/** One recorded change: a new version of a mapping, and what was in force on its start date before it. */
export interface MappingChange {
  connection: string;
  kind: MappingKind;
  source: string;
  effective_from: string;
  version: number;
  before: string | null;
  after: string | null;
}

export interface ImportOutcome {
  rows: number;
  recorded: number;
  unchanged: number;
  changes: MappingChange[];
  /** Outbox entries waiting for a mapping (last_error code mapping_missing) on a changed connection, woken to try again. */
  woken: number;
}

/** Serializes imports, so versions are numbered without a race (the unique key would refuse one anyway). */
const MAPPINGS_LOCK = 4_242_015;

async function contextOf(client: pg.PoolClient): Promise<ValidationContext> {
  const connections = await client.query<{ name: string; kind: ErpKind }>('SELECT name, kind FROM erp_connections');
  const routing = await client.query<{ legal_entity: string; connection: string }>(
    'SELECT legal_entity, connection FROM erp_entity_connections',
  );
  return {
    connections: new Map(connections.rows.map((r) => [r.name, r.kind] as const)),
    routing: new Map(routing.rows.map((r) => [r.legal_entity, r.connection] as const)),
    catalog: (await currentCatalog(client))?.catalog,
  };
}

/**
 * Imports a mappings file: all rows valid and recorded, or none and the problems (each naming row and field).
 * `by` is the actor in the audit log (`principal:<id>/key:<id>`, `dev:<os user>`, `system:<component>`).
 */
export async function importMappings(
  pool: pg.Pool,
  text: string,
  meta: { by: string; format?: MappingFileFormat; origin?: string; dryRun?: boolean },
): Promise<Result<ImportOutcome>> {
  if (meta.by.trim() === '') return fail(problem('by', 'required', 'names who imports the mappings (for the audit log)'));
  const parsed = parseMappingFile(text, meta.format);
  if (!parsed.ok) return parsed;
  const rows = parsed.value;
  try {
    return ok(
      await transaction(pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MAPPINGS_LOCK]);
        const context = await contextOf(client);
        const stored: MappingRow[] = [];
        for (const connection of new Set(rows.map((r) => r.connection)))
          if (context.connections.has(connection)) stored.push(...(await readMappingRows(client, connection)));
        const latest = latestByStart(stored);
        const recordsNothing = (r: NumberedRow) => latest.get(startKey(r))?.target === (r.target === '' ? null : r.target);
        const problems = validateRows(rows, context, recordsNothing);
        if (problems.length) throw new ProblemError(problems);
        const outcome = await record(client, rows, stored, meta);
        if (meta.dryRun) throw new DryRun(outcome); // rolls the transaction back: what it would record, nothing recorded
        return outcome;
      }),
    );
  } catch (error) {
    if (error instanceof DryRun) return ok(error.outcome);
    if (error instanceof ProblemError) return fail(...error.problems);
    throw error;
  }
}

class DryRun extends Error {
  constructor(readonly outcome: ImportOutcome) {
    super('dry run');
  }
}

const startKey = (r: { connection: string; kind: string; source: string; effective_from: string }): string =>
  `${r.connection}\u0000${r.kind}\u0000${r.source}\u0000${r.effective_from}`;

/** The latest version of each (connection, kind, source, effective_from) among stored rows (read in version order). */
function latestByStart(stored: readonly MappingRow[]): Map<string, { version: number; target: string | null }> {
  const latest = new Map<string, { version: number; target: string | null }>();
  for (const row of stored) latest.set(startKey(row), { version: row.version, target: row.target });
  return latest;
}

async function record(
  client: pg.PoolClient,
  rows: readonly NumberedRow[],
  stored: readonly MappingRow[],
  meta: { by: string; origin?: string },
): Promise<ImportOutcome> {
  const changes = changesOf(rows, stored);
  await insertChanges(client, changes, meta.by);
  const woken = await wakeWaiting(client, changes);
  for (const c of changes) {
    await appendAudit(client, {
      actor: meta.by,
      action: c.after === null ? 'erp.mapping.end' : 'erp.mapping.set',
      subject: `erp_mapping:${c.connection}:${c.kind}:${c.source}`,
      details: { ...c, origin: meta.origin ?? null },
    });
  }
  return { rows: rows.length, recorded: changes.length, unchanged: rows.length - changes.length, changes, woken };
}

/** The changes the rows make to the stored mappings, each a new version; in the file's order. */
function changesOf(rows: readonly NumberedRow[], stored: readonly MappingRow[]): MappingChange[] {
  // Versions by (connection, kind, source): what is in force on a date before this row; and the latest version by start.
  const versions = new Map<string, Pick<MappingRow, 'effective_from' | 'version' | 'target'>[]>();
  const latest = new Map<string, { version: number; target: string | null }>();
  for (const row of stored) {
    const mapping = `${row.connection}\u0000${row.kind}\u0000${row.source}`;
    (versions.get(mapping) ?? versions.set(mapping, []).get(mapping)!).push(row);
    latest.set(`${mapping}\u0000${row.effective_from}`, { version: row.version, target: row.target }); // rows in version order
  }
  const changes: MappingChange[] = [];
  // Earliest start first: what a row finds in force on its date must not depend on where the file lists it (an end
  // listed before an earlier start of the same mapping would otherwise find nothing in force and record nothing).
  const fileRow = new Map<MappingChange, number>();
  const byStart = [...rows].sort((a, b) =>
    a.effective_from < b.effective_from ? -1 : a.effective_from > b.effective_from ? 1 : a.row - b.row,
  );
  for (const r of byStart) {
    const mapping = `${r.connection}\u0000${r.kind}\u0000${r.source}`;
    const target = r.target === '' ? null : r.target;
    const current = latest.get(`${mapping}\u0000${r.effective_from}`);
    if (current && current.target === target) continue; // already in force with this target: nothing to record
    const history = versions.get(mapping) ?? [];
    const before = current ? current.target : (rowInForce(history, r.effective_from)?.target ?? null);
    if (!current && target === null && before === null) continue; // ending what is not in force: nothing to record
    const version = (current?.version ?? 0) + 1;
    const change: MappingChange = {
      connection: r.connection,
      kind: r.kind as MappingKind,
      source: r.source,
      effective_from: r.effective_from,
      version,
      before,
      after: target,
    };
    changes.push(change);
    fileRow.set(change, r.row);
    latest.set(`${mapping}\u0000${r.effective_from}`, { version, target });
    if (!versions.has(mapping)) versions.set(mapping, history);
    history.push({ effective_from: r.effective_from, version, target });
  }
  changes.sort((a, b) => fileRow.get(a)! - fileRow.get(b)!); // reported (and audited) in the file's order
  return changes;
}

async function insertChanges(client: pg.PoolClient, changes: readonly MappingChange[], by: string): Promise<void> {
  if (changes.length) {
    await client.query(
      `INSERT INTO erp_mappings (connection, kind, source, target, effective_from, version, recorded_by)
       SELECT c, k, s, t, e::date, v, $7 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[]) AS x(c, k, s, t, e, v)`,
      [
        changes.map((c) => c.connection),
        changes.map((c) => c.kind),
        changes.map((c) => c.source),
        changes.map((c) => c.after),
        changes.map((c) => c.effective_from),
        changes.map((c) => c.version),
        by,
      ],
    );
  }
}

/** Wakes the documents that wait for a mapping on a connection whose mappings changed (they try again now); returns how many. */
async function wakeWaiting(client: pg.PoolClient, changes: readonly MappingChange[]): Promise<number> {
  let woken = 0;
  for (const connection of new Set(changes.map((c) => c.connection))) {
    const result = await client.query(
      "UPDATE outbox SET next_attempt_at = now() WHERE target = $1 AND status = 'pending' AND last_error->>'code' = 'mapping_missing'",
      [connection],
    );
    woken += result.rowCount ?? 0;
  }
  return woken;
}
