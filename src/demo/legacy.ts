// A stand-in legacy billing system for the demo's parallel run: writes the legacy export (docs/legacy-format.md)
// from Accrue's own numbers for a period, optionally with a few planted differences the comparison must find.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { formatMajor, minorUnits } from '../domain/money.js';
import { ProblemError } from '../domain/result.js';
import { parsePeriod } from '../meter/period.js';
import type { ComparisonReport, ComparisonStatus } from '../reconcile/compare.js';
import { INVOICE_COLUMNS, JOURNAL_COLUMNS } from '../reconcile/compare.js';
import { LEGACY_FILES, readAccrueSide } from '../reconcile/legacy-run.js';

/** A report row a planted difference must produce (its key and status). */
export type ExpectedRow =
  | { section: 'invoices'; status: ComparisonStatus; legal_entity: string; customer: string; currency: string; product: string }
  | { section: 'journal'; status: ComparisonStatus; legal_entity: string; account: string; currency: string };

export interface PlantedDifference {
  kind: 'amount_off' | 'missing_in_legacy' | 'missing_in_accrue' | 'account_differs';
  description: string;
  expected: ExpectedRow[];
}

/** The product a planted legacy-only line bills: one Accrue never has. */
export const LEGACY_ONLY_PRODUCT = 'legacy-setup-fee';

interface InvoiceRow {
  legal_entity: string;
  customer: string;
  currency: string;
  product: string;
  amount_minor: bigint;
}

interface JournalRow {
  legal_entity: string;
  account: string;
  currency: string;
  debit_minor: bigint;
  credit_minor: bigint;
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const compareBy =
  <T>(keyOf: (row: T) => string[]) =>
  (x: T, y: T): number => {
    const a = keyOf(x);
    const b = keyOf(y);
    for (let i = 0; i < a.length; i++) {
      const c = compare(a[i]!, b[i]!);
      if (c !== 0) return c;
    }
    return 0;
  };

/** RFC 4180: quoted only when the value holds a comma, quote or line break. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
const csv = (header: readonly string[], rows: string[][]) => [header, ...rows].map((r) => r.map(csvField).join(',')).join('\n') + '\n';

/** Another account number for the same entity: numeric accounts count up to the next unused one. */
function otherAccount(account: string, used: ReadonlySet<string>): string {
  if (/^\d+$/.test(account)) {
    for (let n = BigInt(account) + 1n; ; n++) {
      const candidate = n.toString().padStart(account.length, '0');
      if (!used.has(candidate)) return candidate;
    }
  }
  let candidate = `${account}-legacy`;
  while (used.has(candidate)) candidate += '-legacy';
  return candidate;
}

/**
 * Writes DIR/invoices.csv and DIR/journal_lines.csv for `period` from Accrue's finalized invoices and journals.
 * With `plant`, four differences are planted (each only when the period has the rows it needs), chosen by key
 * order so the same database gives the same files: one invoice amount a minor unit higher, one invoice key left
 * out of the legacy export, one legacy-only line, and one journal account booked under another account number.
 */
export async function writeLegacyOutput(
  pool: pg.Pool,
  period: string,
  dir: string,
  options: { plant: boolean },
): Promise<PlantedDifference[]> {
  const window = parsePeriod(period, 'period');
  if (!window.ok) throw new ProblemError(window.problems);
  const accrue = await readAccrueSide(pool, window.value);
  const invoices: InvoiceRow[] = accrue.invoiceLines
    .map(({ legal_entity, customer, currency, product, amount_minor }) => ({ legal_entity, customer, currency, product, amount_minor }))
    .sort(compareBy(invoiceKey));
  const journal = journalByAccount(accrue.journalLines);

  const planted: PlantedDifference[] = [];
  if (options.plant) {
    plantInvoiceDifferences(invoices, planted);
    plantJournalDifference(journal, planted);
  }

  writeLegacyFiles(dir, window.value.period, invoices, journal);
  return planted;
}

const invoiceKey = (r: InvoiceRow) => [r.legal_entity, r.customer, r.currency, r.product];
const journalKey = (r: JournalRow) => [r.legal_entity, r.account, r.currency];

/** Journal lines summed per (entity, account, currency), in key order. */
function journalByAccount(lines: Awaited<ReturnType<typeof readAccrueSide>>['journalLines']): JournalRow[] {
  const byAccount = new Map<string, JournalRow>();
  for (const l of lines) {
    const id = JSON.stringify([l.legal_entity, l.account, l.currency]);
    const row = byAccount.get(id) ?? {
      legal_entity: l.legal_entity,
      account: l.account,
      currency: l.currency,
      debit_minor: 0n,
      credit_minor: 0n,
    };
    row.debit_minor += l.debit_minor;
    row.credit_minor += l.credit_minor;
    byAccount.set(id, row);
  }
  return [...byAccount.values()].sort(compareBy(journalKey));
}

/** With two invoice keys or more: one amount a minor unit off, one key left out, one legacy-only line. */
function plantInvoiceDifferences(invoices: InvoiceRow[], planted: PlantedDifference[]): void {
  const first = invoices[0];
  if (first && invoices.length >= 2) {
    // One minor unit off; away from zero, so the key never sums to zero (which would read as absent).
    first.amount_minor += first.amount_minor < 0n ? -1n : 1n;
    planted.push({
      kind: 'amount_off',
      description: `${first.customer}'s ${first.product} is billed ${formatMajor(first.amount_minor, first.currency)} ${first.currency} by the legacy system, one minor unit off Accrue's amount`,
      expected: [
        {
          section: 'invoices',
          status: 'differing',
          legal_entity: first.legal_entity,
          customer: first.customer,
          currency: first.currency,
          product: first.product,
        },
      ],
    });
    const dropped = invoices.pop()!;
    planted.push({
      kind: 'missing_in_legacy',
      description: `the legacy system did not bill ${dropped.customer}'s ${dropped.product} (${formatMajor(dropped.amount_minor, dropped.currency)} ${dropped.currency} in Accrue)`,
      expected: [
        {
          section: 'invoices',
          status: 'missing_in_legacy',
          legal_entity: dropped.legal_entity,
          customer: dropped.customer,
          currency: dropped.currency,
          product: dropped.product,
        },
      ],
    });
    const fee = 50n * 10n ** BigInt(minorUnits(first.currency));
    invoices.push({
      legal_entity: first.legal_entity,
      customer: first.customer,
      currency: first.currency,
      product: LEGACY_ONLY_PRODUCT,
      amount_minor: fee,
    });
    invoices.sort(compareBy(invoiceKey));
    planted.push({
      kind: 'missing_in_accrue',
      description: `the legacy system billed ${first.customer} a ${LEGACY_ONLY_PRODUCT} of ${formatMajor(fee, first.currency)} ${first.currency} that Accrue does not have`,
      expected: [
        {
          section: 'invoices',
          status: 'missing_in_accrue',
          legal_entity: first.legal_entity,
          customer: first.customer,
          currency: first.currency,
          product: LEGACY_ONLY_PRODUCT,
        },
      ],
    });
  }
}

/** One journal account (the first with a credit) booked under another account number. */
function plantJournalDifference(journal: JournalRow[], planted: PlantedDifference[]): void {
  const moved = journal.find((r) => r.credit_minor > 0n);
  if (moved) {
    const used = new Set(journal.filter((r) => r.legal_entity === moved.legal_entity).map((r) => r.account));
    const from = moved.account;
    moved.account = otherAccount(from, used);
    journal.sort(compareBy(journalKey));
    planted.push({
      kind: 'account_differs',
      description: `the legacy system booked ${moved.legal_entity}'s account ${from} (${moved.currency}) to account ${moved.account}`,
      expected: [
        { section: 'journal', status: 'missing_in_legacy', legal_entity: moved.legal_entity, account: from, currency: moved.currency },
        {
          section: 'journal',
          status: 'missing_in_accrue',
          legal_entity: moved.legal_entity,
          account: moved.account,
          currency: moved.currency,
        },
      ],
    });
  }
}

function writeLegacyFiles(dir: string, p: string, invoices: readonly InvoiceRow[], journal: readonly JournalRow[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, LEGACY_FILES.invoices),
    csv(
      INVOICE_COLUMNS,
      invoices.map((r) => [r.customer, r.legal_entity, r.currency, p, r.product, formatMajor(r.amount_minor, r.currency)]),
    ),
  );
  // One row per side, as a ledger export lists them; empty means zero.
  const side = (minor: bigint, currency: string) => (minor === 0n ? '' : formatMajor(minor, currency));
  const journalRows = journal.flatMap((r) => [
    ...(r.debit_minor > 0n ? [[r.legal_entity, p, r.account, r.currency, side(r.debit_minor, r.currency), '']] : []),
    ...(r.credit_minor > 0n ? [[r.legal_entity, p, r.account, r.currency, '', side(r.credit_minor, r.currency)]] : []),
  ]);
  writeFileSync(join(dir, LEGACY_FILES.journal_lines), csv(JOURNAL_COLUMNS, journalRows));
}

const rowText = (e: ExpectedRow) =>
  e.section === 'invoices'
    ? JSON.stringify(['invoices', e.status, e.legal_entity, e.customer, e.currency, e.product])
    : JSON.stringify(['journal', e.status, e.legal_entity, e.account, e.currency]);

/** Which planted rows a report missed, and which unmatched rows it has that nothing planted explains. */
export function checkPlanted(
  planted: readonly PlantedDifference[],
  report: ComparisonReport,
): { missed: ExpectedRow[]; unexplained: ExpectedRow[] } {
  const found: ExpectedRow[] = [
    ...report.invoices.rows
      .filter((r) => r.status !== 'matched')
      .map((r): ExpectedRow => ({
        section: 'invoices',
        status: r.status,
        legal_entity: r.legal_entity,
        customer: r.customer,
        currency: r.currency,
        product: r.product,
      })),
    ...(report.journal?.rows ?? [])
      .filter((r) => r.status !== 'matched')
      .map((r): ExpectedRow => ({
        section: 'journal',
        status: r.status,
        legal_entity: r.legal_entity,
        account: r.account,
        currency: r.currency,
      })),
  ];
  const foundText = new Set(found.map(rowText));
  const expected = planted.flatMap((p) => p.expected);
  const expectedText = new Set(expected.map(rowText));
  return { missed: expected.filter((e) => !foundText.has(rowText(e))), unexplained: found.filter((f) => !expectedText.has(rowText(f))) };
}
