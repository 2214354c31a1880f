// Journals as an hledger journal file: `hledger -f FILE check --strict ordereddates` accepts it (accounts and
// commodities declared, dates ordered). Pure and deterministic: the same journals give the same bytes, whatever
// order they come in. Account naming is shared with the beancount export (see docs/accounting.md).
// A ledger kept in several files has its declarations in one file and each period's transactions in another
// (hledgerDeclarations, hledgerTransactions), as the beancount export does.
import type { Journal } from '../../domain/model.js';
import { formatMajor } from '../../domain/money.js';
import type { JournalLine } from '../../domain/model.js';
import { invariant } from '../../domain/result.js';
import { entityAccountKey, orderedLines, plainTextAccountNames, sortedForExport, type PlainTextOptions } from '../../domain/journal.js';

export type { PlainTextOptions } from '../../domain/journal.js';

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
/** hledger account types for the roots the default naming uses. */
const ACCOUNT_TYPE: Record<string, string> = { Assets: 'A', Liabilities: 'L', Equity: 'E', Income: 'R', Expenses: 'X' };

/** Free text on one line, with nothing hledger would read as a comment, code or tag separator. */
const clean = (text: string): string =>
  text
    .replace(/[\r\n\t;]+/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
const tagValue = (text: string): string => clean(text).replace(/,/g, ' ');

function checkName(name: string): string {
  invariant(
    /^[^\s;][^;\t\r\n]*$/.test(name) && !/ {2}/.test(name) && !/\s$/.test(name),
    `${JSON.stringify(name)} is not a valid hledger account name`,
  );
  return name;
}

/** The hledger journal text of `journals`: header (decimal mark, commodities, accounts), then transactions. One self-contained file. */
export function toHledger(journals: readonly Journal[], options: PlainTextOptions = {}): string {
  return `${declarations(journals, options, HEADER)}${transactions(journals, options)}`.replace(/\n+$/, '\n');
}

/**
 * The declarations alone (decimal mark, commodities, accounts), for the file a ledger kept in several files includes
 * first: pass every journal of the ledger (`accrue export --accounts FILE`). Periods exported with
 * `hledgerTransactions` then load together: `include` this file, then each period's.
 */
export function hledgerDeclarations(journals: readonly Journal[], options: PlainTextOptions = {}): string {
  return declarations(journals, options, DECLARATIONS_HEADER).replace(/\n+$/, '\n');
}

/** The transactions alone (after the decimal mark, which hledger reads per file), for a ledger whose declarations are in a file of their own. */
export function hledgerTransactions(journals: readonly Journal[], options: PlainTextOptions = {}): string {
  return `${TRANSACTIONS_HEADER}\ndecimal-mark .\n\n${transactions(journals, options)}`.replace(/\n+$/, '\n');
}

const HEADER = '; Accrue ledger export for hledger. Generated: edit the source documents, not this file.';
const DECLARATIONS_HEADER =
  "; Accrue ledger declarations for hledger (commodities, accounts). Generated: include it once, before the periods' files.";
const TRANSACTIONS_HEADER =
  '; Accrue ledger transactions for hledger. Generated: load with the declarations file it was exported with (include it first).';

function named(journals: readonly Journal[], options: PlainTextOptions): { sorted: Journal[]; names: Map<string, string> } {
  const sorted = sortedForExport(journals);
  const names = plainTextAccountNames(sorted, options);
  for (const name of names.values()) checkName(name);
  return { sorted, names };
}

function declarations(journals: readonly Journal[], options: PlainTextOptions, header: string): string {
  const { sorted, names } = named(journals, options);
  const currencies = [
    ...new Set(sorted.flatMap((j) => j.lines.flatMap((l) => [l.currency, ...(l.tx_currency ? [l.tx_currency] : [])]))),
  ].sort(compare);
  const accounts = [...new Set(names.values())].sort(compare);

  const out: string[] = [header, 'decimal-mark .', ''];
  // hledger wants a decimal mark in a commodity directive even for a currency without minor units: "0. JPY".
  for (const currency of currencies) out.push(`commodity ${formatMajor(0n, currency).replace(/^0$/, '0.')} ${currency}`);
  if (currencies.length > 0) out.push('');
  for (const account of accounts) {
    const type = ACCOUNT_TYPE[account.split(':')[0]!];
    out.push(type === undefined ? `account ${account}` : `account ${account}  ; type: ${type}`);
  }
  if (accounts.length > 0) out.push('');
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
    out.push(`${j.posting_date} (${clean(j.id).replace(/[()]/g, '')}) ${clean(j.memo)}`.trimEnd());
    out.push(
      `    ; journal: ${tagValue(j.id)}, kind: ${j.kind}, source: ${tagValue(j.source_document)}, entity: ${tagValue(j.legal_entity)}`,
    );
    const lines = orderedLines(j);
    const rendered = lines.map((line) => {
      const name = names.get(entityAccountKey(j.legal_entity, line.account))!;
      const amount = line.debit_minor !== 0n ? line.debit_minor : -line.credit_minor;
      const tags = [
        ...(line.customer !== undefined ? [`customer: ${tagValue(line.customer)}`] : []),
        ...(line.product !== undefined ? [`product: ${tagValue(line.product)}`] : []),
      ];
      return { name, amount: pricedAmount(line, amount), comment: tags.join(', ') };
    });
    const nameWidth = Math.max(...rendered.map((r) => r.name.length));
    const amountWidth = Math.max(...rendered.map((r) => r.amount.length));
    for (const r of rendered) {
      const posting = `    ${r.name.padEnd(nameWidth)}  ${r.amount.padStart(amountWidth)}`;
      out.push(r.comment === '' ? posting : `${posting}  ; ${r.comment}`);
    }
    out.push('');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
