// Exchange rates in the store (migration 030): imported whole or not at all, final once imported, audited; and the
// rate in force for a document's date, which the document then records (journals.fx_*).
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import { oldestUsableDate, parseFxFile, rateOn, type FxFormat, type FxRate, type UsedRate } from '../domain/fx.js';
import { ProblemError, type Problem } from '../domain/result.js';
import { transaction } from '../store/store.js';

/** The source a document's rate is taken from: ACCRUE_FX_RATE_SOURCE, default `ecb`. */
export const fxRateSource = (env = process.env): string => env.ACCRUE_FX_RATE_SOURCE ?? 'ecb';

export interface FxImportOutcome {
  import_id: string;
  format: FxFormat;
  source: string;
  /** Rates new to the store, and rates it already held with the same value. */
  added: number;
  unchanged: number;
  /** The same file was imported before: nothing was written. */
  repeated: boolean;
  first_date: string | null;
  last_date: string | null;
}

/**
 * Imports a rate file in one transaction: `fx:v1:<sha256 of its bytes>` names the import; a rate the store holds
 * with the same value is skipped, with another value the whole file is refused (409, naming each rate): rates are
 * final, a correction is a new source. A file with any bad line is refused whole (400, naming line and column).
 */
export async function importFxRates(
  pool: pg.Pool,
  input: { bytes: Buffer; fileName: string; format?: FxFormat; source?: string },
  actor: string,
): Promise<FxImportOutcome> {
  const text = input.bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(input.bytes))
    throw new ProblemError([{ path: 'file', code: 'invalid_utf8', message: 'is not UTF-8 text' }]);
  const parsed = parseFxFile(text, {
    ...(input.format ? { format: input.format } : {}),
    ...(input.source ? { source: input.source } : {}),
  });
  if (!parsed.ok) throw new ProblemError(parsed.problems);
  const { format, source, rates } = parsed.value;
  const id = `fx:v1:${createHash('sha256').update(input.bytes).digest('hex')}`;
  const dates = rates.map((r) => r.date).sort();
  const outcome = (added: number, unchanged: number, repeated: boolean): FxImportOutcome => ({
    import_id: id,
    format,
    source,
    added,
    unchanged,
    repeated,
    first_date: dates[0] ?? null,
    last_date: dates.at(-1) ?? null,
  });
  return transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`fx_rates:${source}`]);
    if ((await client.query('SELECT 1 FROM fx_imports WHERE id = $1', [id])).rowCount) return outcome(0, rates.length, true);
    const held = new Map(
      (
        await client.query<{ key: string; rate: string }>(
          `SELECT to_char(rate_date, 'YYYY-MM-DD') || '|' || base || '|' || quote AS key, rate FROM fx_rates
            WHERE source = $1 AND rate_date BETWEEN $2 AND $3`,
          [source, dates[0] ?? '1970-01-01', dates.at(-1) ?? '1970-01-01'],
        )
      ).rows.map((r) => [r.key, r.rate]),
    );
    const fresh: FxRate[] = [];
    const conflicts: Problem[] = [];
    for (const rate of rates) {
      const existing = held.get(`${rate.date}|${rate.base}|${rate.quote}`);
      if (existing === undefined) fresh.push(rate);
      else if (existing !== rate.rate && !sameNumber(existing, rate.rate))
        conflicts.push({
          path: `${rate.date} ${rate.base}/${rate.quote}`,
          code: 'rate_conflict',
          message: `is ${existing} in source ${source} already; rates are final: import a correction under another source`,
        });
    }
    if (conflicts.length > 0) throw new ProblemError(conflicts.slice(0, 50), 409);
    await client.query('INSERT INTO fx_imports (id, source, format, file_name, rates, imported_by) VALUES ($1, $2, $3, $4, $5, $6)', [
      id,
      source,
      format,
      input.fileName.slice(0, 256),
      fresh.length,
      actor,
    ]);
    await client.query(
      `INSERT INTO fx_rates (source, rate_date, base, quote, rate, import_id)
       SELECT $1, r.date::date, r.base, r.quote, r.rate, $2 FROM jsonb_to_recordset($3::jsonb) AS r(date text, base text, quote text, rate text)`,
      [source, id, JSON.stringify(fresh.map((r) => ({ date: r.date, base: r.base, quote: r.quote, rate: r.rate })))],
    );
    const result = outcome(fresh.length, rates.length - fresh.length, false);
    await appendAudit(client, { actor, action: 'fx.import', subject: id, details: { ...result, file_name: input.fileName } });
    return result;
  });
}

const sameNumber = (a: string, b: string): boolean => a.replace(/\.?0+$/, '') === b.replace(/\.?0+$/, '');

/** The stored rates of a source that can serve `date` for a pair (direct, inverse or through a common base). */
async function candidates(db: pg.Pool | pg.PoolClient, source: string, date: string, currencies: string[]): Promise<FxRate[]> {
  return (
    await db.query<FxRate>(
      `SELECT source, to_char(rate_date, 'YYYY-MM-DD') AS date, base, quote, rate FROM fx_rates
        WHERE source = $1 AND rate_date BETWEEN $2 AND $3 AND (base = ANY($4) OR quote = ANY($4))`,
      [source, oldestUsableDate(date), date, currencies],
    )
  ).rows;
}

/**
 * The rate converting `from` into `to` on `date` (1 from = rate to) from the store, per src/domain/fx.ts rateOn:
 * what a journal booked from another currency records. Undefined when no usable rate was imported.
 */
export async function fxRateAt(
  db: pg.Pool | pg.PoolClient,
  query: { date: string; from: string; to: string; source?: string },
): Promise<UsedRate | undefined> {
  const source = query.source ?? fxRateSource();
  const rows = await candidates(db, source, query.date, [query.from, query.to]);
  // A cross rate needs the legs' common base too: the rows quoting either currency name it.
  const bases = [...new Set(rows.map((r) => r.base).filter((b) => b !== query.from && b !== query.to))];
  const legs = bases.length > 0 ? await candidates(db, source, query.date, bases) : [];
  return rateOn([...rows, ...legs], query);
}

/** fxRateAt, or a 409 naming the pair, the date and how to fix it: a document is never converted at a guessed rate. */
export async function requireFxRate(
  db: pg.Pool | pg.PoolClient,
  query: { date: string; from: string; to: string; source?: string },
  path = 'fx_rate',
): Promise<UsedRate> {
  const found = await fxRateAt(db, query);
  if (found) return found;
  const source = query.source ?? fxRateSource();
  throw new ProblemError(
    [
      {
        path,
        code: 'fx_rate_missing',
        message: `no ${source} rate for ${query.from}/${query.to} on ${query.date} or the ${oldestUsableDate(query.date)}..${query.date} before it; import one with accrue fx import`,
      },
    ],
    409,
  );
}

/** Stored rates, newest first. */
export async function listFxRates(
  db: pg.Pool | pg.PoolClient,
  filter: { source?: string; base?: string; quote?: string; since?: string; limit?: number } = {},
): Promise<FxRate[]> {
  return (
    await db.query<FxRate>(
      `SELECT source, to_char(rate_date, 'YYYY-MM-DD') AS date, base, quote, rate FROM fx_rates
        WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR base = $2) AND ($3::text IS NULL OR quote = $3)
          AND ($4::date IS NULL OR rate_date >= $4)
        ORDER BY rate_date DESC, source, base, quote LIMIT $5`,
      [filter.source ?? null, filter.base ?? null, filter.quote ?? null, filter.since ?? null, Math.min(filter.limit ?? 1000, 10_000)],
    )
  ).rows;
}
