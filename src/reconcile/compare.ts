// The parallel run: Accrue's invoice lines and journal lines against a legacy billing system's export, in the
// CSV format of docs/legacy-format.md. Pure: no I/O (the caller reads the files and passes their text).
import { parse } from 'csv-parse/sync';
import { formatMajor, isCurrency, minorUnits, parseDecimal, parseMajor } from '../domain/money.js';
import { fail, invariant, ok, problem, type Problem, type Result } from '../domain/result.js';

export const INVOICE_COLUMNS = ['customer', 'legal_entity', 'currency', 'period', 'product', 'amount'] as const;
export const JOURNAL_COLUMNS = ['legal_entity', 'period', 'account', 'currency', 'debit', 'credit'] as const;
/** Limits (TigerStyle): rows per legacy file, and problems reported before the rest are only counted. */
export const LEGACY_ROWS_MAX = 2_000_000;
export const LEGACY_PROBLEMS_MAX = 100;

/** `YYYY-MM` (a calendar month) or `YYYY-MM-DD` (the period's first day); compared as written. */
const PERIOD = /^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$/;

export interface LegacyInvoiceLine extends AccrueInvoiceLine {
  line: number; // line in invoices.csv (the header is line 1)
}

export interface LegacyJournalLine {
  line: number; // line in journal_lines.csv
  legal_entity: string;
  period: string;
  account: string;
  currency: string;
  debit_minor: bigint;
  credit_minor: bigint;
}

export interface LegacyData {
  invoices: LegacyInvoiceLine[];
  journal_lines: LegacyJournalLine[] | null; // null when no journal_lines.csv was given
}

// ---------- parsing ----------

type Row = { line: number; get: (column: string) => string };
/** A row's value in a column; a blank value is a problem unless `optional`. */
type Field = (column: string, optional?: boolean) => string;

/** Rows of one file, each with its line number; problems for an unreadable file, a bad header or a short row. */
function readCsv(file: string, text: string, columns: readonly string[], problems: Problem[]): Row[] {
  const at = (line: number | undefined) => (line === undefined ? file : `${file} line ${line}`);
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(text, { info: true, bom: true, skip_empty_lines: true, relax_column_count: true }) as unknown as typeof records;
  } catch (error) {
    const lines = (error as { lines?: unknown }).lines;
    const message = error instanceof Error ? error.message.replace(/ at line \d+/, '') : String(error);
    problems.push(problem(at(typeof lines === 'number' ? lines : undefined), 'csv_syntax', `is not valid CSV: ${message}`));
    return [];
  }
  const [header, ...body] = records;
  if (header === undefined) {
    problems.push(problem(file, 'empty', `is empty; the first line must be the header ${columns.join(',')}`));
    return [];
  }
  const names = header.record.map((name) => name.trim());
  const index = new Map<string, number>();
  names.forEach((name, i) => {
    if (index.has(name))
      problems.push(problem(at(header.info.lines), 'duplicate_column', `the header names ${JSON.stringify(name)} twice`));
    else index.set(name, i);
  });
  const missing = columns.filter((c) => !index.has(c));
  if (missing.length > 0) {
    problems.push(
      problem(
        at(header.info.lines),
        'missing_columns',
        `the header lacks ${missing.join(', ')}; expected ${columns.join(',')}, got ${names.join(',')}`,
      ),
    );
    return [];
  }
  if (body.length > LEGACY_ROWS_MAX) {
    problems.push(
      problem(
        file,
        'too_many_rows',
        `has ${body.length} rows; at most ${LEGACY_ROWS_MAX} are compared at once (split by period or entity)`,
      ),
    );
    return [];
  }
  const rows: Row[] = [];
  for (const { record, info } of body) {
    if (record.length !== names.length) {
      problems.push(problem(at(info.lines), 'field_count', `has ${record.length} fields but the header has ${names.length}`));
      continue;
    }
    rows.push({ line: info.lines, get: (column) => record[index.get(column)!]! });
  }
  return rows;
}

function parseRows<T>(
  file: string,
  text: string,
  columns: readonly string[],
  problems: Problem[],
  build: (row: Row, field: Field, check: (column: string, code: string, message: string) => void) => T | null,
): T[] {
  const rows = readCsv(file, text, columns, problems);
  const out: T[] = [];
  for (const row of rows) {
    const before = problems.length;
    const check = (column: string, code: string, message: string) =>
      problems.push(problem(`${file} line ${row.line}: ${column}`, code, message));
    const field = (column: string, optional = false) => {
      const value = row.get(column);
      if (value.trim() === '' && !optional) check(column, 'required', 'must not be empty');
      return value;
    };
    const built = build(row, field, check);
    if (built !== null && problems.length === before) out.push(built);
  }
  return out;
}

function currencyOf(field: Field, check: (column: string, code: string, message: string) => void): string | null {
  const currency = field('currency');
  if (currency === '') return null;
  if (!isCurrency(currency)) {
    check('currency', 'unknown_currency', `must be an ISO 4217 currency code such as "USD", got ${JSON.stringify(currency)}`);
    return null;
  }
  return currency;
}

function periodOf(field: Field, check: (column: string, code: string, message: string) => void): string {
  const period = field('period');
  if (period !== '' && !PERIOD.test(period))
    check('period', 'not_period', `must be a month "2025-03" or a period start date "2025-03-01", got ${JSON.stringify(period)}`);
  return period;
}

/** A major-unit amount in the row's currency as minor units; problems name the column and what is wrong. */
function amountOf(
  column: string,
  currency: string | null,
  field: Field,
  check: (column: string, code: string, message: string) => void,
  allowNegative: boolean,
  emptyIsZero = false,
): bigint | null {
  const text = field(column, emptyIsZero);
  if (text === '') return emptyIsZero ? 0n : null;
  const asDecimal = parseDecimal(text, column, { allowNegative: true });
  if (!asDecimal.ok) {
    const code = asDecimal.problems[0]!.code;
    if (code === 'too_many_digits') check(column, code, asDecimal.problems[0]!.message);
    else check(column, 'not_decimal', `must be a decimal string such as "12.50", got ${JSON.stringify(text)}`);
    return null;
  }
  if (!allowNegative && asDecimal.value.isNegative() && !asDecimal.value.isZero()) {
    check(column, 'negative', `must not be negative, got ${JSON.stringify(text)}; a reversal goes in the other column`);
    return null;
  }
  if (currency === null) return null;
  const minor = parseMajor(text, currency, column, { allowNegative: true });
  if (!minor.ok) {
    check(column, 'too_many_decimals', `${currency} has ${minorUnits(currency)} decimal places; got ${JSON.stringify(text)}`);
    return null;
  }
  return minor.value;
}

/**
 * Parses a legacy export: `invoices.csv` and optionally `journal_lines.csv` (docs/legacy-format.md). Problems name
 * the file, the line and the column: `invoices.csv line 7: amount: must be a decimal string such as "12.50"`.
 */
export function parseLegacy(files: { invoices: string; journal_lines?: string }): Result<LegacyData> {
  const problems: Problem[] = [];
  const invoices = parseRows('invoices.csv', files.invoices, INVOICE_COLUMNS, problems, (row, field, check): LegacyInvoiceLine | null => {
    const customer = field('customer');
    const legal_entity = field('legal_entity');
    const currency = currencyOf(field, check);
    const period = periodOf(field, check);
    const product = field('product');
    const amount_minor = amountOf('amount', currency, field, check, true);
    if (currency === null || amount_minor === null) return null;
    return { line: row.line, customer, legal_entity, currency, period, product, amount_minor };
  });
  let journal_lines: LegacyJournalLine[] | null = null;
  if (files.journal_lines !== undefined) {
    journal_lines = parseRows(
      'journal_lines.csv',
      files.journal_lines,
      JOURNAL_COLUMNS,
      problems,
      (row, field, check): LegacyJournalLine | null => {
        const legal_entity = field('legal_entity');
        const period = periodOf(field, check);
        const account = field('account');
        const currency = currencyOf(field, check);
        const debit_minor = amountOf('debit', currency, field, check, false, true);
        const credit_minor = amountOf('credit', currency, field, check, false, true);
        if (currency === null || debit_minor === null || credit_minor === null) return null;
        return { line: row.line, legal_entity, period, account, currency, debit_minor, credit_minor };
      },
    );
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, LEGACY_PROBLEMS_MAX);
    if (problems.length > LEGACY_PROBLEMS_MAX)
      shown.push(problem('', 'more_problems', `and ${problems.length - LEGACY_PROBLEMS_MAX} more problems`));
    return fail(...shown);
  }
  return ok({ invoices, journal_lines });
}

// ---------- comparing ----------

export interface AccrueInvoiceLine {
  customer: string;
  legal_entity: string;
  currency: string;
  period: string;
  product: string;
  amount_minor: bigint;
}

export interface AccrueJournalLine {
  legal_entity: string;
  period: string;
  account: string;
  currency: string;
  debit_minor: bigint;
  credit_minor: bigint;
}

export type ComparisonStatus = 'matched' | 'differing' | 'missing_in_accrue' | 'missing_in_legacy';
export const COMPARISON_STATUSES: readonly ComparisonStatus[] = ['matched', 'differing', 'missing_in_accrue', 'missing_in_legacy'];

/** One (legal entity, customer, currency, period, product): each side's total; difference = accrue - legacy. */
export interface InvoiceComparisonRow {
  legal_entity: string;
  customer: string;
  currency: string;
  period: string;
  product: string;
  status: ComparisonStatus;
  accrue_minor: bigint | null;
  legacy_minor: bigint | null;
  difference_minor: bigint;
}

export interface DebitCredit {
  debit_minor: bigint;
  credit_minor: bigint;
}

/** One (legal entity, period, account, currency): debits and credits on each side; difference = accrue - legacy. */
export interface JournalComparisonRow {
  legal_entity: string;
  period: string;
  account: string;
  currency: string;
  status: ComparisonStatus;
  accrue: DebitCredit | null;
  legacy: DebitCredit | null;
  difference: DebitCredit;
}

export interface CurrencyTotal {
  currency: string;
  accrue_minor: bigint;
  legacy_minor: bigint;
  difference_minor: bigint;
}

export interface JournalCurrencyTotal {
  currency: string;
  accrue: DebitCredit;
  legacy: DebitCredit;
}

export interface ComparisonReport {
  scope: { customers: string[] | null; entity: string | null };
  invoices: { rows: InvoiceComparisonRow[]; counts: Record<ComparisonStatus, number>; totals: CurrencyTotal[] };
  /** Null when not compared: the legacy export had no journal_lines.csv, or the scope names customers. */
  journal: { rows: JournalComparisonRow[]; counts: Record<ComparisonStatus, number>; totals: JournalCurrencyTotal[] } | null;
  journal_skipped: string | null; // why the journal was not compared
  /** Everything compared matched. */
  matches: boolean;
}

export interface ComparisonScope {
  customers?: string[];
  entity?: string;
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const compareTuple = (a: readonly string[], b: readonly string[]): number => {
  for (let i = 0; i < a.length; i++) {
    const c = compare(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return 0;
};
const emptyCounts = (): Record<ComparisonStatus, number> => ({ matched: 0, differing: 0, missing_in_accrue: 0, missing_in_legacy: 0 });

function statusOf(inAccrue: boolean, inLegacy: boolean, equal: boolean): ComparisonStatus {
  if (!inAccrue) return 'missing_in_accrue';
  if (!inLegacy) return 'missing_in_legacy';
  return equal ? 'matched' : 'differing';
}

/** Sums values per key; keys are tuples of strings, returned with their parts. */
function sumBy<T, V>(
  items: Iterable<T>,
  keyOf: (item: T) => string[],
  valueOf: (item: T) => V,
  add: (a: V, b: V) => V,
): Map<string, { parts: string[]; value: V }> {
  const out = new Map<string, { parts: string[]; value: V }>();
  for (const item of items) {
    const parts = keyOf(item);
    const id = JSON.stringify(parts);
    const slot = out.get(id);
    if (slot === undefined) out.set(id, { parts, value: valueOf(item) });
    else slot.value = add(slot.value, valueOf(item));
  }
  return out;
}

/**
 * Compares Accrue with the legacy export, per (entity, customer, currency, period, product) for invoices and per
 * (entity, period, account, currency) for the journal. Lines are summed per key on both sides first. A scope
 * narrows both sides to some customers and/or one legal entity; the journal carries no customer, so a scope that
 * names customers leaves the journal out. Rows are in key order; totals per currency in currency order.
 */
export function compareWithLegacy(
  accrue: { invoiceLines: readonly AccrueInvoiceLine[]; journalLines: readonly AccrueJournalLine[] },
  legacy: LegacyData,
  scope: ComparisonScope = {},
): ComparisonReport {
  assertAccrueLines(accrue);
  const customers = scope.customers === undefined ? null : [...new Set(scope.customers)].sort(compare);
  const entity = scope.entity ?? null;
  const customerSet = customers === null ? null : new Set(customers);
  const inEntity = (e: string) => entity === null || e === entity;
  const inScope = (l: { customer: string; legal_entity: string }) =>
    inEntity(l.legal_entity) && (customerSet === null || customerSet.has(l.customer));

  const invoices = compareInvoices(accrue.invoiceLines.filter(inScope), legacy.invoices.filter(inScope));

  let journal: ComparisonReport['journal'] = null;
  let journal_skipped: string | null = null;
  if (legacy.journal_lines === null) journal_skipped = 'the legacy export has no journal_lines.csv';
  else if (customers !== null) journal_skipped = 'journal lines carry no customer, so a comparison scoped to customers leaves them out';
  else
    journal = compareJournals(
      accrue.journalLines.filter((l) => inEntity(l.legal_entity)),
      legacy.journal_lines.filter((l) => inEntity(l.legal_entity)),
    );

  const clean = (counts: Record<ComparisonStatus, number>) =>
    counts.differing === 0 && counts.missing_in_accrue === 0 && counts.missing_in_legacy === 0;
  return {
    scope: { customers, entity },
    invoices,
    journal,
    journal_skipped,
    matches: clean(invoices.counts) && (journal === null || clean(journal.counts)),
  };
}

function assertAccrueLines(accrue: { invoiceLines: readonly AccrueInvoiceLine[]; journalLines: readonly AccrueJournalLine[] }): void {
  for (const l of accrue.invoiceLines)
    invariant(
      isCurrency(l.currency) && typeof l.amount_minor === 'bigint',
      `Accrue invoice line ${l.customer}/${l.product} needs a currency and bigint minor units`,
    );
  for (const l of accrue.journalLines) {
    invariant(
      isCurrency(l.currency) && typeof l.debit_minor === 'bigint' && typeof l.credit_minor === 'bigint',
      `Accrue journal line ${l.legal_entity}/${l.account} needs a currency and bigint minor units`,
    );
  }
}

const invoiceKey = (l: { legal_entity: string; customer: string; currency: string; period: string; product: string }) => [
  l.legal_entity,
  l.customer,
  l.currency,
  l.period,
  l.product,
];

/** Invoice lines in scope, summed per key on each side, then compared row by row. */
function compareInvoices(ourLines: readonly AccrueInvoiceLine[], theirLines: readonly AccrueInvoiceLine[]): ComparisonReport['invoices'] {
  const add = (a: bigint, b: bigint) => a + b;
  const ours = sumBy(ourLines, invoiceKey, (l) => l.amount_minor, add);
  const theirs = sumBy(theirLines, invoiceKey, (l) => l.amount_minor, add);
  const invoiceRows: InvoiceComparisonRow[] = [];
  const invoiceCounts = emptyCounts();
  const currencyTotals = new Map<string, CurrencyTotal>();
  for (const id of new Set([...ours.keys(), ...theirs.keys()])) {
    const a = ours.get(id);
    const b = theirs.get(id);
    const [legal_entity, customer, currency, period, product] = (a ?? b)!.parts as [string, string, string, string, string];
    const status = statusOf(a !== undefined, b !== undefined, a?.value === b?.value);
    invoiceCounts[status] += 1;
    const accrue_minor = a?.value ?? null;
    const legacy_minor = b?.value ?? null;
    invoiceRows.push({
      legal_entity,
      customer,
      currency,
      period,
      product,
      status,
      accrue_minor,
      legacy_minor,
      difference_minor: (accrue_minor ?? 0n) - (legacy_minor ?? 0n),
    });
    const total = currencyTotals.get(currency) ?? { currency, accrue_minor: 0n, legacy_minor: 0n, difference_minor: 0n };
    total.accrue_minor += accrue_minor ?? 0n;
    total.legacy_minor += legacy_minor ?? 0n;
    total.difference_minor = total.accrue_minor - total.legacy_minor;
    currencyTotals.set(currency, total);
  }
  invoiceRows.sort((x, y) => compareTuple(invoiceKey(x), invoiceKey(y)));
  return {
    rows: invoiceRows,
    counts: invoiceCounts,
    totals: [...currencyTotals.values()].sort((p, q) => compare(p.currency, q.currency)),
  };
}

const journalKey = (l: { legal_entity: string; period: string; account: string; currency: string }) => [
  l.legal_entity,
  l.period,
  l.account,
  l.currency,
];
const addDc = (x: DebitCredit, y: DebitCredit): DebitCredit => ({
  debit_minor: x.debit_minor + y.debit_minor,
  credit_minor: x.credit_minor + y.credit_minor,
});

/** Journal lines in the entity, debits and credits summed per key on each side, then compared row by row. */
function compareJournals(
  ourJournal: readonly AccrueJournalLine[],
  theirJournal: readonly AccrueJournalLine[],
): NonNullable<ComparisonReport['journal']> {
  const dc = (l: DebitCredit): DebitCredit => ({ debit_minor: l.debit_minor, credit_minor: l.credit_minor });
  const ourLines = sumBy(ourJournal, journalKey, dc, addDc);
  const theirLines = sumBy(theirJournal, journalKey, dc, addDc);
  const rows: JournalComparisonRow[] = [];
  const counts = emptyCounts();
  const totals = new Map<string, JournalCurrencyTotal>();
  const zero: DebitCredit = { debit_minor: 0n, credit_minor: 0n };
  for (const id of new Set([...ourLines.keys(), ...theirLines.keys()])) {
    const a = ourLines.get(id)?.value ?? null;
    const b = theirLines.get(id)?.value ?? null;
    const [legal_entity, period, account, currency] = (ourLines.get(id) ?? theirLines.get(id))!.parts as [string, string, string, string];
    const equal = a !== null && b !== null && a.debit_minor === b.debit_minor && a.credit_minor === b.credit_minor;
    const status = statusOf(a !== null, b !== null, equal);
    counts[status] += 1;
    const x = a ?? zero;
    const y = b ?? zero;
    rows.push({
      legal_entity,
      period,
      account,
      currency,
      status,
      accrue: a,
      legacy: b,
      difference: { debit_minor: x.debit_minor - y.debit_minor, credit_minor: x.credit_minor - y.credit_minor },
    });
    const total = totals.get(currency) ?? { currency, accrue: zero, legacy: zero };
    totals.set(currency, { currency, accrue: addDc(total.accrue, x), legacy: addDc(total.legacy, y) });
  }
  rows.sort((p, q) => compareTuple(journalKey(p), journalKey(q)));
  return { rows, counts, totals: [...totals.values()].sort((p, q) => compare(p.currency, q.currency)) };
}

// ---------- formatting ----------

/** Plain aligned columns; the columns listed in `right` are right-aligned (amounts). */
function textTable(headers: string[], rows: string[][], right: ReadonlySet<number>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const STATUS_LABEL: Record<ComparisonStatus, string> = {
  matched: 'matched',
  differing: 'DIFFERS',
  missing_in_accrue: 'MISSING IN ACCRUE',
  missing_in_legacy: 'MISSING IN LEGACY',
};
const countsText = (counts: Record<ComparisonStatus, number>) =>
  COMPARISON_STATUSES.map((s) => `${counts[s]} ${s.replace(/_/g, ' ')}`).join(', ');
const amount = (value: bigint | null, currency: string) => (value === null ? '-' : formatMajor(value, currency));

/**
 * A readable report: scope, counts, the rows that do not match (every row with `all`), and totals per currency.
 * Amounts in major units; differences are Accrue minus legacy.
 */
export function formatComparison(report: ComparisonReport, options: { all?: boolean } = {}): string {
  const out: string[] = [];
  const scope = [
    report.scope.entity === null ? 'all legal entities' : `legal entity ${report.scope.entity}`,
    report.scope.customers === null ? 'all customers' : `customers ${report.scope.customers.join(', ')}`,
  ];
  out.push(`Parallel run: Accrue vs legacy (${scope.join('; ')})`);
  out.push(report.matches ? 'Result: everything compared matches.' : 'Result: DIFFERENCES FOUND.');
  out.push('');

  formatInvoices(out, report.invoices, options);
  out.push('');

  if (report.journal === null) out.push(`Journal per entity and account: not compared (${report.journal_skipped ?? 'no journal'}).`);
  else formatJournal(out, report.journal, options);
  return `${out.join('\n')}\n`;
}

/** The invoice part of the report: counts, the rows shown, totals per currency. */
function formatInvoices(out: string[], inv: ComparisonReport['invoices'], options: { all?: boolean }): void {
  out.push(`Invoices per customer and product: ${countsText(inv.counts)}`);
  const invRows = inv.rows.filter((r) => options.all || r.status !== 'matched');
  if (invRows.length > 0) {
    out.push(
      textTable(
        ['status', 'entity', 'customer', 'period', 'product', 'currency', 'accrue', 'legacy', 'difference'],
        invRows.map((r) => [
          STATUS_LABEL[r.status],
          r.legal_entity,
          r.customer,
          r.period,
          r.product,
          r.currency,
          amount(r.accrue_minor, r.currency),
          amount(r.legacy_minor, r.currency),
          formatMajor(r.difference_minor, r.currency),
        ]),
        new Set([6, 7, 8]),
      ),
    );
  }
  if (inv.totals.length > 0) {
    out.push('');
    out.push(
      textTable(
        ['currency', 'accrue total', 'legacy total', 'difference'],
        inv.totals.map((t) => [
          t.currency,
          formatMajor(t.accrue_minor, t.currency),
          formatMajor(t.legacy_minor, t.currency),
          formatMajor(t.difference_minor, t.currency),
        ]),
        new Set([1, 2, 3]),
      ),
    );
  }
}

/** The journal part of the report: counts, the rows shown, totals per currency. */
function formatJournal(out: string[], j: NonNullable<ComparisonReport['journal']>, options: { all?: boolean }): void {
  out.push(`Journal per entity and account: ${countsText(j.counts)}`);
  const rows = j.rows.filter((r) => options.all || r.status !== 'matched');
  if (rows.length > 0) {
    out.push(
      textTable(
        ['status', 'entity', 'period', 'account', 'currency', 'accrue Dr', 'accrue Cr', 'legacy Dr', 'legacy Cr', 'diff Dr', 'diff Cr'],
        rows.map((r) => [
          STATUS_LABEL[r.status],
          r.legal_entity,
          r.period,
          r.account,
          r.currency,
          amount(r.accrue?.debit_minor ?? null, r.currency),
          amount(r.accrue?.credit_minor ?? null, r.currency),
          amount(r.legacy?.debit_minor ?? null, r.currency),
          amount(r.legacy?.credit_minor ?? null, r.currency),
          formatMajor(r.difference.debit_minor, r.currency),
          formatMajor(r.difference.credit_minor, r.currency),
        ]),
        new Set([5, 6, 7, 8, 9, 10]),
      ),
    );
  }
  if (j.totals.length > 0) {
    out.push('');
    out.push(
      textTable(
        ['currency', 'accrue Dr', 'accrue Cr', 'legacy Dr', 'legacy Cr'],
        j.totals.map((t) => [
          t.currency,
          formatMajor(t.accrue.debit_minor, t.currency),
          formatMajor(t.accrue.credit_minor, t.currency),
          formatMajor(t.legacy.debit_minor, t.currency),
          formatMajor(t.legacy.credit_minor, t.currency),
        ]),
        new Set([1, 2, 3, 4]),
      ),
    );
  }
}
