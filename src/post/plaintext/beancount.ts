// Journals as a beancount file: `bean-check FILE` accepts it (operating currencies, commodities, and every account
// opened on or before its first use, for the currencies it carries). Pure and deterministic: the same journals
// give the same bytes, whatever order they come in. Account naming is shared with the hledger export.
// A ledger kept in several files (one per month) has its declarations in one file and each period's transactions in
// another (beancountDeclarations, beancountTransactions): beancount refuses an account opened twice.
import type { Journal } from '../../domain/model.js';
import { formatMajor } from '../../domain/money.js';
import type { JournalLine } from '../../domain/model.js';
import { invariant } from '../../domain/result.js';
import { entityAccountKey, orderedLines, plainTextAccountNames, sortedForExport, type PlainTextOptions } from '../../domain/journal.js';

export type { PlainTextOptions } from '../../domain/journal.js';

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const ROOTS = ['Assets', 'Liabilities', 'Equity', 'Income', 'Expenses'];

/** A beancount string literal: one line, no quote or backslash to escape. */
const str = (text: string): string =>
  `"${text
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/"/g, "'")
    .replace(/\\/g, '/')
    .trim()}"`;

function checkName(name: string): string {
  const [root, ...rest] = name.split(':');
  invariant(
    ROOTS.includes(root!) && rest.length > 0 && rest.every((c) => /^[A-Z0-9][A-Za-z0-9-]*$/.test(c)),
    `${JSON.stringify(name)} is not a valid beancount account name (a root of ${ROOTS.join(', ')}, then components that start with a capital letter or a digit)`,
  );
  return name;
}

/** The beancount text of `journals`: options, commodities, account openings, then transactions. One self-contained file. */
export function toBeancount(journals: readonly Journal[], options: PlainTextOptions = {}): string {
  return `${declarations(journals, options, HEADER)}${transactions(journals, options)}`.replace(/\n+$/, '\n');
}

/**
 * The declarations alone (options, commodities, every account opened on its first use), for the file a ledger kept
 * in several files includes first: pass every journal of the ledger (`accrue export --accounts FILE`). Periods
 * exported with `beancountTransactions` then load together: `include` this file, then each period's.
 */
export function beancountDeclarations(journals: readonly Journal[], options: PlainTextOptions = {}): string {
  return declarations(journals, options, DECLARATIONS_HEADER).replace(/\n+$/, '\n');
}

/** The transactions alone, for a ledger whose declarations are in a file of their own (`beancountDeclarations`). */
export function beancountTransactions(journals: readonly Journal[], options: PlainTextOptions = {}): string {
  return `${TRANSACTIONS_HEADER}\n\n${transactions(journals, options)}`.replace(/\n+$/, '\n');
}

const HEADER = '; Accrue ledger export for beancount. Generated: edit the source documents, not this file.';
const DECLARATIONS_HEADER =
  "; Accrue ledger declarations for beancount (options, commodities, accounts). Generated: include it once, before the periods' files.";
const TRANSACTIONS_HEADER =
  '; Accrue ledger transactions for beancount. Generated: load with the declarations file it was exported with (include it first).';

function named(journals: readonly Journal[], options: PlainTextOptions): { sorted: Journal[]; names: Map<string, string> } {
  const sorted = sortedForExport(journals);
  const names = plainTextAccountNames(sorted, options);
  for (const name of names.values()) checkName(name);
  return { sorted, names };
}

function declarations(journals: readonly Journal[], options: PlainTextOptions, header: string): string {
  const { sorted, names } = named(journals, options);
  // First use of each account and currency; journals are sorted by date, so the first seen is the earliest.
  const opened = new Map<string, { date: string; currencies: Set<string> }>();
  const commodities = new Map<string, string>();
  for (const j of sorted) {
    for (const line of j.lines) {
      const name = names.get(entityAccountKey(j.legal_entity, line.account))!;
      const slot = opened.get(name) ?? { date: j.posting_date, currencies: new Set<string>() };
      for (const currency of [line.currency, ...(line.tx_currency ? [line.tx_currency] : [])]) {
        slot.currencies.add(currency);
        if (!commodities.has(currency)) commodities.set(currency, j.posting_date);
      }
      opened.set(name, slot);
    }
  }
  const currencies = [...commodities.keys()].sort(compare);

  const out: string[] = [header, 'option "title" "Accrue ledger export"'];
  for (const currency of currencies) out.push(`option "operating_currency" "${currency}"`);
  out.push('');
  for (const currency of currencies) out.push(`${commodities.get(currency)} commodity ${currency}`);
  if (currencies.length > 0) out.push('');
  for (const name of [...opened.keys()].sort(compare)) {
    const { date, currencies: used } = opened.get(name)!;
    out.push(`${date} open ${name} ${[...used].sort(compare).join(',')}`);
  }
  if (opened.size > 0) out.push('');
  return `${out.join('\n')}\n`;
}

/**
 * A posting's amount; booked from another currency, the transaction amount at its total cost in the books' currency
 * (`100.00 USD @@ 92.00 EUR`, the total unsigned): the file carries both currencies and balances at cost.
 */
function pricedAmount(line: JournalLine, signed: bigint): string {
  const booked = `${formatMajor(signed, line.currency)} ${line.currency}`;
  if (line.tx_currency === undefined || line.tx_amount_minor === undefined) return booked;
  const tx = signed < 0n ? -line.tx_amount_minor : line.tx_amount_minor;
  return `${formatMajor(tx, line.tx_currency)} ${line.tx_currency} @@ ${formatMajor(signed < 0n ? -signed : signed, line.currency)} ${line.currency}`;
}

function transactions(journals: readonly Journal[], options: PlainTextOptions): string {
  const { sorted, names } = named(journals, options);
  const out: string[] = [];
  for (const j of sorted) {
    out.push(`${j.posting_date} * ${str(j.memo)}`);
    out.push(
      `  journal: ${str(j.id)}`,
      `  kind: ${str(j.kind)}`,
      `  source: ${str(j.source_document)}`,
      `  entity: ${str(j.legal_entity)}`,
    );
    const rendered = orderedLines(j).map((line) => {
      const name = names.get(entityAccountKey(j.legal_entity, line.account))!;
      const amount = line.debit_minor !== 0n ? line.debit_minor : -line.credit_minor;
      const meta = [
        ...(line.customer !== undefined ? [`    customer: ${str(line.customer)}`] : []),
        ...(line.product !== undefined ? [`    product: ${str(line.product)}`] : []),
      ];
      return { name, amount: pricedAmount(line, amount), meta };
    });
    const nameWidth = Math.max(...rendered.map((r) => r.name.length));
    const amountWidth = Math.max(...rendered.map((r) => r.amount.length));
    for (const r of rendered) out.push(`  ${r.name.padEnd(nameWidth)}  ${r.amount.padStart(amountWidth)}`, ...r.meta);
    out.push('');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
