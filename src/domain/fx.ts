// Exchange rates as data (docs/accounting.md#exchange-rates): the files they come in (the ECB's reference-rate CSV,
// or a plain date,base,quote,rate CSV), the rate in force on a date, and conversion between minor units. Pure: no I/O.
//
// A rate says 1 `base` = `rate` `quote`, kept exactly as published. The rate used for a date is the one published
// on the latest date on or before it (the ECB publishes none on weekends and TARGET holidays), no older than
// FX_RATE_STALE_DAYS_MAX days. A pair the source does not publish directly is its inverse or a cross through a
// common base (the ECB quotes everything against EUR); those are divisions, computed to
// FX_DERIVED_SIGNIFICANT_DIGITS significant digits half-even, and the result says it was derived.
import type { JournalFx } from './model.js';
import { Decimal, decimalText, isCurrency, minorUnits, type RoundingMode } from './money.js';
import { fail, invariant, ok, problem, type Problem, type Result } from './result.js';

export interface FxRate {
  source: string;
  date: string; // UTC date the rate was published for
  base: string;
  quote: string;
  rate: string; // 1 base = rate quote, exact decimal text as published
}

/** A rate older than this many days is not used: a missing import is refused, never papered over. */
export const FX_RATE_STALE_DAYS_MAX = 7;
/** Significant digits of an inverse or cross rate (a division: not exact). */
export const FX_DERIVED_SIGNIFICANT_DIGITS = 12;
/** Limits (TigerStyle): lines in one rate file (the ECB's full history since 1999 is about 7,000 lines). */
export const FX_FILE_LINES_MAX = 100_000;
export const FX_SOURCE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const RATE = /^[0-9]{1,20}(\.[0-9]{1,20})?$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

export type FxFormat = 'ecb' | 'simple';

/** A rate as a document used it: JournalFx, and how it was obtained when not published as such. */
export interface UsedRate extends JournalFx {
  derived?: 'inverse' | 'cross';
  via?: string; // the common base of a cross rate
}

/** The rate as a journal records it (journals.fx_*): what was used, without how it was derived. */
export const asJournalFx = (used: JournalFx): JournalFx => ({
  currency: used.currency,
  rate: used.rate,
  rate_date: used.rate_date,
  source: used.source,
});

const isDate = (text: string): boolean => ISO_DATE.test(text) && new Date(`${text}T00:00:00Z`).toISOString().slice(0, 10) === text;

/** `2026-12-04`, or the ECB daily file's `04 December 2026`; undefined when it is neither. */
function parseDate(text: string): string | undefined {
  if (isDate(text)) return text;
  const match = /^(\d{1,2}) ([A-Z][a-z]+) (\d{4})$/.exec(text);
  if (!match) return undefined;
  const month = MONTHS.indexOf(match[2]!);
  if (month < 0) return undefined;
  const iso = `${match[3]}-${String(month + 1).padStart(2, '0')}-${match[1]!.padStart(2, '0')}`;
  return isDate(iso) ? iso : undefined;
}

function checkRate(text: string, path: string, problems: Problem[]): string | undefined {
  if (!RATE.test(text)) {
    problems.push(
      problem(
        path,
        'invalid_rate',
        `must be a positive decimal such as 1.0876 (no sign, no exponent), got ${JSON.stringify(text.slice(0, 40))}`,
      ),
    );
    return undefined;
  }
  if (new Decimal(text).isZero()) {
    problems.push(problem(path, 'invalid_rate', 'must be greater than 0'));
    return undefined;
  }
  return text;
}

const lines = (text: string): string[] => text.replace(/^\uFEFF/, '').split(/\r?\n/);

/** The format of a rate file from its header: the ECB's `Date, USD, JPY, ...` or `date,base,quote,rate`. */
export function detectFxFormat(text: string): FxFormat | undefined {
  const header =
    lines(text)[0]
      ?.split(',')
      .map((c) => c.trim()) ?? [];
  if (header.join(',').toLowerCase() === 'date,base,quote,rate') return 'simple';
  if (header[0] === 'Date' && header.length > 1) return 'ecb';
  return undefined;
}

/** A repeated (date, base, quote) within a file must repeat the same rate. */
function addRate(seen: Map<string, FxRate>, rate: FxRate, path: string, problems: Problem[]): void {
  const key = `${rate.date}|${rate.base}|${rate.quote}`;
  const earlier = seen.get(key);
  if (earlier === undefined) seen.set(key, rate);
  else if (!new Decimal(earlier.rate).eq(rate.rate))
    problems.push(problem(path, 'conflicting_rate', `${rate.base}/${rate.quote} on ${rate.date} is ${earlier.rate} earlier in the file`));
}

/**
 * The ECB's euro reference rates, as published in eurofxref.csv (one day, `04 December 2026`) and eurofxref-hist.csv
 * (every day, ISO dates): a header `Date, USD, JPY, ...` (cells may have a leading space, the line a trailing comma),
 * then one line per day; `N/A` where a currency was not quoted that day. Each cell: 1 EUR = rate currency.
 */
export function parseEcbCsv(text: string, source = 'ecb'): Result<FxRate[]> {
  const all = lines(text);
  if (all.length > FX_FILE_LINES_MAX)
    return fail(problem('', 'too_large', `a rate file has at most ${FX_FILE_LINES_MAX} lines, got ${all.length}`));
  const problems: Problem[] = [];
  const header = all[0]!.split(',').map((c) => c.trim());
  if (header[0] !== 'Date') return fail(problem('line 1', 'invalid_header', 'an ECB file starts with "Date, USD, JPY, ..."'));
  // The history file keeps columns of currencies since replaced by the euro (CYP, EEK, SIT, ...): they are read as
  // codes and their rates skipped; a column that is not a three-letter code at all is refused.
  const currencies: Array<string | undefined> = header.slice(1).map((code, i) => {
    if (code === '' && i === header.length - 2) return undefined; // the trailing comma
    if (!/^[A-Z]{3}$/.test(code))
      problems.push(problem(`line 1, column ${i + 2}`, 'unknown_currency', `${JSON.stringify(code.slice(0, 40))} is not a currency code`));
    return code;
  });
  if (currencies.includes('EUR')) problems.push(problem('line 1', 'invalid_header', 'EUR is the base of the ECB rates, not a column'));
  const seen = new Map<string, FxRate>();
  all.slice(1).forEach((raw, index) => {
    const at = `line ${index + 2}`;
    if (raw.trim() === '') return;
    const cells = raw.split(',').map((c) => c.trim());
    if (cells.at(-1) === '' && cells.length === header.length) cells.pop();
    const width = currencies.filter((c) => c !== undefined).length + 1;
    if (cells.length !== width) {
      problems.push(problem(at, 'invalid_row', `has ${cells.length} cells, the header ${width}`));
      return;
    }
    const date = parseDate(cells[0]!);
    if (date === undefined) {
      problems.push(
        problem(
          `${at}, column 1`,
          'invalid_date',
          `must be a date (2026-12-04 or 04 December 2026), got ${JSON.stringify(cells[0]!.slice(0, 40))}`,
        ),
      );
      return;
    }
    cells.slice(1).forEach((cell, k) => {
      const quote = currencies[k];
      if (quote === undefined || cell === 'N/A' || cell === '' || !isCurrency(quote)) return;
      const rate = checkRate(cell, `${at}, column ${k + 2}`, problems);
      if (rate !== undefined) addRate(seen, { source, date, base: 'EUR', quote, rate }, `${at}, column ${k + 2}`, problems);
    });
  });
  return problems.length > 0 ? fail(...problems) : ok([...seen.values()]);
}

/** `date,base,quote,rate` with that header: 1 base = rate quote on date. */
export function parseSimpleCsv(text: string, source: string): Result<FxRate[]> {
  const all = lines(text);
  if (all.length > FX_FILE_LINES_MAX)
    return fail(problem('', 'too_large', `a rate file has at most ${FX_FILE_LINES_MAX} lines, got ${all.length}`));
  if (all[0]!.trim().toLowerCase().replace(/\s/g, '') !== 'date,base,quote,rate')
    return fail(problem('line 1', 'invalid_header', 'must be "date,base,quote,rate"'));
  const problems: Problem[] = [];
  const seen = new Map<string, FxRate>();
  all.slice(1).forEach((raw, index) => {
    const at = `line ${index + 2}`;
    if (raw.trim() === '') return;
    const cells = raw.split(',').map((c) => c.trim());
    if (cells.length !== 4) {
      problems.push(problem(at, 'invalid_row', `has ${cells.length} cells, must have 4: date,base,quote,rate`));
      return;
    }
    const [dateText, base, quote, rateText] = cells as [string, string, string, string];
    const date = isDate(dateText) ? dateText : undefined;
    if (date === undefined)
      problems.push(
        problem(`${at}, column 1`, 'invalid_date', `must be a date such as 2026-12-04, got ${JSON.stringify(dateText.slice(0, 40))}`),
      );
    const codes: Array<[string, number]> = [
      [base, 2],
      [quote, 3],
    ];
    for (const [code, column] of codes)
      if (!isCurrency(code))
        problems.push(
          problem(
            `${at}, column ${column}`,
            'unknown_currency',
            `${JSON.stringify(String(code).slice(0, 40))} is not an ISO 4217 currency`,
          ),
        );
    if (isCurrency(base) && base === quote)
      problems.push(problem(`${at}, column 3`, 'same_currency', `a rate converts between two currencies; both are ${base}`));
    const rate = checkRate(rateText, `${at}, column 4`, problems);
    if (date !== undefined && rate !== undefined && isCurrency(base) && isCurrency(quote) && base !== quote)
      addRate(seen, { source, date, base, quote, rate }, at, problems);
  });
  return problems.length > 0 ? fail(...problems) : ok([...seen.values()]);
}

/** A rate file in either format; the format is read from its header unless given. */
export function parseFxFile(
  text: string,
  options: { format?: FxFormat; source?: string } = {},
): Result<{ format: FxFormat; source: string; rates: FxRate[] }> {
  const format = options.format ?? detectFxFormat(text);
  if (format === undefined)
    return fail(problem('line 1', 'unknown_format', 'the header is neither the ECB\'s "Date, USD, JPY, ..." nor "date,base,quote,rate"'));
  const source = options.source ?? (format === 'ecb' ? 'ecb' : undefined);
  if (source === undefined)
    return fail(problem('source', 'required', 'name the source of a date,base,quote,rate file (e.g. --source treasury)'));
  if (!FX_SOURCE.test(source)) return fail(problem('source', 'invalid', 'must be lowercase letters, digits, ".", "_" or "-", at most 64'));
  const parsed = format === 'ecb' ? parseEcbCsv(text, source) : parseSimpleCsv(text, source);
  return parsed.ok ? ok({ format, source, rates: parsed.value }) : parsed;
}

const daysBefore = (date: string, days: number): string =>
  new Date(Date.parse(`${date}T00:00:00Z`) - days * 86_400_000).toISOString().slice(0, 10);

const derived = (value: Decimal): string => decimalText(value.toSignificantDigits(FX_DERIVED_SIGNIFICANT_DIGITS, Decimal.ROUND_HALF_EVEN));

/** The earliest date a rate for `date` may be from. */
export const oldestUsableDate = (date: string): string => daysBefore(date, FX_RATE_STALE_DAYS_MAX);

/**
 * The rate converting `from` into `to` on `date` (1 from = rate to) from `rates` of one source: on the latest date
 * on or before `date` (at most FX_RATE_STALE_DAYS_MAX days before) that gives the pair directly, as its inverse, or
 * as a cross through a common base, preferred in that order on the same date. Undefined when there is none.
 */
export function rateOn(rates: readonly FxRate[], query: { date: string; from: string; to: string }): UsedRate | undefined {
  const { date, from, to } = query;
  invariant(from !== to, `a rate converts between two currencies; both are ${from}`);
  const oldest = oldestUsableDate(date);
  const byDate = new Map<string, FxRate[]>();
  for (const r of rates) {
    if (r.date > date || r.date < oldest) continue;
    const list = byDate.get(r.date) ?? [];
    list.push(r);
    byDate.set(r.date, list);
  }
  for (const day of [...byDate.keys()].sort().reverse()) {
    const found = rateOfDay(byDate.get(day)!, from, to);
    if (found) return { currency: from, rate_date: day, ...found };
  }
  return undefined;
}

function rateOfDay(day: readonly FxRate[], from: string, to: string): Omit<UsedRate, 'currency' | 'rate_date'> | undefined {
  const sorted = [...day].sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
  const direct = sorted.find((r) => r.base === from && r.quote === to);
  if (direct) return { rate: direct.rate, source: direct.source };
  const inverse = sorted.find((r) => r.base === to && r.quote === from);
  if (inverse) return { rate: derived(new Decimal(1).div(inverse.rate)), source: inverse.source, derived: 'inverse' };
  for (const leg of sorted.filter((r) => r.quote === from)) {
    const other = sorted.find((r) => r.base === leg.base && r.quote === to && r.source === leg.source);
    if (other) return { rate: derived(new Decimal(other.rate).div(leg.rate)), source: leg.source, derived: 'cross', via: leg.base };
  }
  return undefined;
}

/**
 * `amountMinor` of `from` in minor units of `to` at `rate` (1 from = rate to), rounded once with `rounding`: the
 * minor units of each currency are ISO 4217's (JPY none, USD two, KWD three).
 */
export function convertMinor(amountMinor: bigint, from: string, to: string, rate: string, rounding: RoundingMode): bigint {
  const major = new Decimal(amountMinor.toString()).div(new Decimal(10).pow(minorUnits(from))).mul(rate);
  const minor = major.mul(new Decimal(10).pow(minorUnits(to)));
  return BigInt(minor.toDecimalPlaces(0, rounding === 'half_up' ? Decimal.ROUND_HALF_UP : Decimal.ROUND_HALF_EVEN).toFixed(0));
}
