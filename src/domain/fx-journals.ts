// Books in the functional currency (docs/accounting.md#other-currencies). A legal entity keeps its books in its own
// currency; a document in another currency (the transaction currency) is booked at the rate of its date, each line
// keeping its transaction amount beside it. A payment at another rate than its invoice's books the difference as a
// realized gain or loss; at a month end, open receivables in other currencies are revalued at that day's rate
// (unrealized gain or loss), and the revaluation is reversed on the first day of the next month. Pure: no I/O.
import { journalId } from './keys.js';
import { assertBalanced, buildJournal, mirrorJournal } from './journal.js';
import { asJournalFx, convertMinor } from './fx.js';
import type { AccountMap, Journal, JournalFx, JournalLine } from './model.js';
import { Decimal, type RoundingMode } from './money.js';
import { invariant } from './result.js';
import { firstDayOfNextMonth, lastDayOfMonth } from './calendar.js';

const PERIOD = /^\d{4}-(0[1-9]|1[0-2])$/;

const amountOf = (line: JournalLine): bigint => (line.debit_minor > 0n ? line.debit_minor : line.credit_minor);

function role(accounts: AccountMap, name: keyof AccountMap & string, why: string): string {
  const account = accounts[name];
  invariant(typeof account === 'string' && account !== '', `the account map has no ${name} account, needed for ${why}`);
  return account;
}

/** The largest line (by amount, then the lowest line number) among `lines`. */
function largest(lines: readonly JournalLine[], by: (line: JournalLine) => bigint): JournalLine | undefined {
  let found: JournalLine | undefined;
  for (const line of lines) if (found === undefined || by(line) > by(found)) found = line;
  return found;
}

/**
 * `journal` (every line in `fx.currency`) booked in `functional`: each line converted at `fx.rate` and rounded once
 * with `rounding`, its transaction amount kept (tx_currency, tx_amount_minor). Rounding each line can leave the
 * journal out of balance by a few minor units: the difference goes to the largest line on the side opposite the
 * journal's largest line, so that line (an invoice's receivable, a drawdown's deferred revenue) is exactly its
 * transaction amount at the rate, the amount later settled and revalued. No account is added for rounding.
 */
export function inFunctionalCurrency(journal: Journal, fx: JournalFx, functional: string, rounding: RoundingMode): Journal {
  invariant(fx.currency !== functional, `${journal.id} is already in ${functional}`);
  invariant(
    journal.lines.every((l) => l.currency === fx.currency && l.tx_currency === undefined),
    `${journal.id} is not a journal wholly in ${fx.currency}`,
  );
  const lines: JournalLine[] = journal.lines.map((line) => {
    const converted = convertMinor(amountOf(line), fx.currency, functional, fx.rate, rounding);
    // A line worth less than half a minor unit of the functional currency cannot be booked (a journal line moves
    // something): refused, naming it, rather than dropped or rounded up.
    invariant(
      converted > 0n,
      `${journal.id} line ${line.line_no} (${amountOf(line)} minor units of ${fx.currency}) is less than half a minor unit of ${functional} at ${fx.rate}`,
    );
    return {
      ...line,
      debit_minor: line.debit_minor > 0n ? converted : 0n,
      credit_minor: line.credit_minor > 0n ? converted : 0n,
      currency: functional,
      tx_currency: fx.currency,
      tx_amount_minor: amountOf(line),
    };
  });
  const difference = lines.reduce((sum, l) => sum + l.debit_minor - l.credit_minor, 0n);
  if (difference !== 0n) {
    const anchor = largest(lines, (l) => l.tx_amount_minor!)!;
    const anchorIsDebit = anchor.debit_minor > 0n;
    const other = largest(
      lines.filter((l) => l.debit_minor > 0n !== anchorIsDebit),
      (l) => l.tx_amount_minor!,
    );
    invariant(other !== undefined, `${journal.id} has lines on one side only`);
    if (other.credit_minor > 0n) other.credit_minor += difference;
    else other.debit_minor -= difference;
    invariant(
      other.debit_minor + other.credit_minor > 0n,
      `${journal.id}: the rounding difference ${difference} exceeds line ${other.line_no}`,
    );
  }
  const booked: Journal = { ...journal, lines, fx: asJournalFx(fx) };
  assertBalanced(booked);
  return booked;
}

/** What an invoice's receivable still carries: in its transaction currency, and in the functional currency. */
export interface OpenReceivable {
  invoice: string;
  customer: string; // the ERP customer id on the receivable line
  currency: string; // the transaction currency
  open_tx_minor: bigint;
  carrying_minor: bigint; // functional, at the rates it was booked at
}

/**
 * A payment of an invoice booked from another currency, received at `fx` (the rate of its date): Dr cash (the
 * payment at that rate), Cr receivable (the part of the receivable's carrying amount it settles: all of it when it
 * settles the whole open amount, else pro rata, half-even), and the difference as a realized exchange gain (credit
 * `fx_gain`) or loss (debit `fx_loss`).
 */
export function paymentJournalInFunctional(
  payment: {
    id: string;
    invoice_id: string;
    customer: string;
    legal_entity: string;
    currency: string;
    amount_minor: bigint;
    received_on: string;
  },
  open: OpenReceivable,
  fx: JournalFx,
  accounts: AccountMap,
  functional: string,
  rounding: RoundingMode,
): Journal {
  invariant(payment.currency === open.currency && fx.currency === open.currency, `payment ${payment.id} is not in ${open.currency}`);
  invariant(payment.amount_minor > 0n && payment.amount_minor <= open.open_tx_minor, `payment ${payment.id} exceeds the open receivable`);
  const cash = convertMinor(payment.amount_minor, open.currency, functional, fx.rate, rounding);
  const settled =
    payment.amount_minor === open.open_tx_minor
      ? open.carrying_minor
      : proRata(open.carrying_minor, payment.amount_minor, open.open_tx_minor);
  const lines = settlementLines(payment, open, accounts, functional, { cash, settled });
  const id = journalId('payment', payment.id);
  const built: Journal = {
    id,
    key: id,
    legal_entity: payment.legal_entity,
    posting_date: payment.received_on,
    source_document: payment.id,
    kind: 'payment',
    memo: `Payment ${payment.id} from ${payment.customer} for invoice ${payment.invoice_id}`,
    lines,
    fx: asJournalFx(fx),
  };
  assertBalanced(built);
  return built;
}

/** Dr cash, Dr fx_loss (a loss), Cr receivable, Cr fx_gain (a gain): the lines of a payment at another rate. */
function settlementLines(
  payment: { id: string; invoice_id: string; amount_minor: bigint },
  open: OpenReceivable,
  accounts: AccountMap,
  functional: string,
  amounts: { cash: bigint; settled: bigint },
): JournalLine[] {
  const gain = amounts.cash - amounts.settled; // positive: a gain
  const tx = { tx_currency: open.currency, tx_amount_minor: payment.amount_minor };
  const line = (account: string, debit: bigint, credit: bigint, memo: string, extra: Partial<JournalLine> = {}): JournalLine => ({
    line_no: 0,
    account,
    debit_minor: debit,
    credit_minor: credit,
    currency: functional,
    memo,
    ...extra,
  });
  const lines: JournalLine[] = [line(role(accounts, 'cash', 'a payment'), amounts.cash, 0n, `Payment ${payment.id}`, tx)];
  if (gain < 0n) lines.push(line(role(accounts, 'fx_loss', 'a realized exchange loss'), -gain, 0n, 'Realized exchange loss'));
  lines.push(
    line(role(accounts, 'receivable', 'a payment'), 0n, amounts.settled, `Invoice ${payment.invoice_id}`, {
      customer: open.customer,
      ...tx,
    }),
  );
  if (gain > 0n) lines.push(line(role(accounts, 'fx_gain', 'a realized exchange gain'), 0n, gain, 'Realized exchange gain'));
  return lines.map((l, i) => ({ ...l, line_no: i + 1 }));
}

/** `total × part / whole` in minor units, half-even: the share of the carrying amount a partial payment settles. */
function proRata(total: bigint, part: bigint, whole: bigint): bigint {
  invariant(whole > 0n, 'nothing open');
  return BigInt(
    new Decimal(total.toString()).mul(part.toString()).div(whole.toString()).toDecimalPlaces(0, Decimal.ROUND_HALF_EVEN).toFixed(0),
  );
}

/** `fxreval:<entity>:<YYYY-MM>`: the source document of an entity's month-end revaluation. */
export const revaluationSource = (entity: string, period: string): string => `fxreval:${entity}:${period}`;

/**
 * The month-end revaluation of an entity's open receivables in other currencies, and its reversal. Each open item
 * is brought to its open transaction amount at the month-end rate of its currency (`rates`, by currency): Dr
 * receivable and Cr `fx_unrealized` when it is worth more, the reverse when less; dated the month's last day. The
 * reversal mirrors it line for line on the first day of the next month, so the realized result is measured against
 * the rate the invoice was booked at. Null when nothing moves.
 */
export function revaluationJournals(
  entity: string,
  period: string,
  items: readonly OpenReceivable[],
  rates: ReadonlyMap<string, JournalFx>,
  accounts: AccountMap,
  functional: string,
  rounding: RoundingMode,
): { revaluation: Journal; reversal: Journal } | null {
  invariant(PERIOD.test(period), `not a period: ${period}`);
  const receivable = role(accounts, 'receivable', 'a revaluation');
  const unrealized = role(accounts, 'fx_unrealized', 'an unrealized exchange gain or loss');
  const sorted = [...items].sort((a, b) => (a.invoice < b.invoice ? -1 : a.invoice > b.invoice ? 1 : 0));
  const lines: JournalLine[] = [];
  let net = 0n; // debit - credit on receivable
  for (const item of sorted) {
    if (item.open_tx_minor === 0n) continue;
    const rate = rates.get(item.currency);
    invariant(rate !== undefined && rate.currency === item.currency, `no month-end rate for ${item.currency}`);
    const delta = convertMinor(item.open_tx_minor, item.currency, functional, rate.rate, rounding) - item.carrying_minor;
    if (delta === 0n) continue;
    net += delta;
    lines.push({
      line_no: 0,
      account: receivable,
      debit_minor: delta > 0n ? delta : 0n,
      credit_minor: delta < 0n ? -delta : 0n,
      currency: functional,
      customer: item.customer,
      memo: `Revaluation of invoice ${item.invoice}: ${item.open_tx_minor} ${item.currency} minor at ${rate.rate} (${rate.source} ${rate.rate_date})`,
    });
  }
  if (lines.length === 0) return null;
  if (net !== 0n)
    lines.push({
      line_no: 0,
      account: unrealized,
      debit_minor: net < 0n ? -net : 0n,
      credit_minor: net > 0n ? net : 0n,
      currency: functional,
      memo: net > 0n ? 'Unrealized exchange gain' : 'Unrealized exchange loss',
    });
  const numbered = [...lines.filter((l) => l.debit_minor > 0n), ...lines.filter((l) => l.credit_minor > 0n)].map((l, i) => ({
    ...l,
    line_no: i + 1,
  }));
  if (numbered.length < 2) return null;
  const revaluation = monthEndJournal(entity, period, numbered);
  return { revaluation, reversal: nextDayReversal(revaluation, period) };
}

function monthEndJournal(entity: string, period: string, lines: JournalLine[]): Journal {
  const memo = `Revaluation of open receivables in other currencies at ${period} month end`;
  const revaluation = buildJournal('fx_revaluation', revaluationSource(entity, period), entity, lastDayOfMonth(period), memo, lines);
  invariant(revaluation !== null, 'a revaluation has lines');
  return revaluation;
}

/** The revaluation mirrored line for line (same line numbers, debit and credit swapped) on the next month's first day. */
const nextDayReversal = (revaluation: Journal, period: string): Journal =>
  mirrorJournal(revaluation, 'fx_revaluation_reversal', firstDayOfNextMonth(period), `Reversal of the ${period} month-end revaluation`);
