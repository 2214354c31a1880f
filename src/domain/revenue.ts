// Revenue recognition signals (docs/accounting.md#revenue-recognition). A fee billed in advance for a term longer
// than a month (an annual plan) is deferred when invoiced and recognized ratably, one equal part per calendar month
// of its service period, the remainder in the last month. Usage delivered in a month but invoiced after it is
// accrued at the month end (unbilled receivable) and the accrual reversed on the first day of the next month, the day
// the invoice books the same revenue. Pure: no I/O.
import { buildJournal, isDeferredLine, mirrorJournal, serviceMonths } from './journal.js';

export { isDeferredLine, serviceMonths } from './journal.js';
import type { AccountMap, Invoice, InvoiceLine, Journal, JournalLine } from './model.js';
import { invariant } from './result.js';
import { firstDayOfNextMonth, lastDayOfMonth } from './calendar.js';

/** Limits (TigerStyle): a schedule spans at most ten years of months. */
export const SCHEDULE_MONTHS_MAX = 120;

const PERIOD = /^\d{4}-(0[1-9]|1[0-2])$/;

export interface RevenueSchedule {
  id: string; // rev:v1:<invoice id>:<line no>
  invoice_id: string;
  line_no: number;
  legal_entity: string;
  customer: string;
  product: string;
  currency: string;
  amount_minor: bigint;
  service_start: string;
  service_end: string; // exclusive
  months: number;
}

/** The schedule of an invoice line recognized over several months; null for a line of one month. */
export function scheduleFor(invoice: Invoice, line: InvoiceLine): RevenueSchedule | null {
  if (invoice.kind !== 'invoice' || !isDeferredLine(line)) return null;
  const months = serviceMonths(line.period_start, line.period_end).length;
  invariant(months <= SCHEDULE_MONTHS_MAX, `line ${line.line_no} of ${invoice.id} spans ${months} months; at most ${SCHEDULE_MONTHS_MAX}`);
  return {
    id: `rev:v1:${invoice.id}:${line.line_no}`,
    invoice_id: invoice.id,
    line_no: line.line_no,
    legal_entity: invoice.legal_entity,
    customer: invoice.customer,
    product: line.product,
    currency: invoice.currency,
    amount_minor: line.amount_minor,
    service_start: line.period_start,
    service_end: line.period_end,
    months,
  };
}

/** Each month's part: amount / months rounded down in minor units, the remainder in the last month. */
export function monthlyAmounts(
  schedule: Pick<RevenueSchedule, 'amount_minor' | 'service_start' | 'service_end'>,
): Array<{ month: string; amount_minor: bigint }> {
  const months = serviceMonths(schedule.service_start, schedule.service_end);
  const part = schedule.amount_minor / BigInt(months.length);
  return months.map((month, i) => ({
    month,
    amount_minor: i === months.length - 1 ? schedule.amount_minor - part * BigInt(months.length - 1) : part,
  }));
}

function role(accounts: AccountMap, name: string, why: string): string {
  const account = accounts[name];
  invariant(typeof account === 'string' && account !== '', `the account map has no ${name} account, needed for ${why}`);
  return account;
}

function numbered(debits: JournalLine[], credits: JournalLine[]): JournalLine[] {
  return [...debits, ...credits].map((l, i) => ({ ...l, line_no: i + 1 }));
}

/**
 * A legal entity's recognition for a month: Dr deferred revenue per customer, Cr revenue per product account, the
 * month's part of each schedule, dated the month's last day. Null when no schedule has a part in the month.
 */
export function recognitionJournal(
  entity: string,
  period: string,
  schedules: readonly RevenueSchedule[],
  accounts: AccountMap,
  revenueAccountOf: (product: string) => string,
  erpCustomerOf: (customer: string) => string,
): Journal | null {
  invariant(PERIOD.test(period), `not a period: ${period}`);
  const byCustomer = new Map<string, bigint>();
  const byAccount = new Map<string, bigint>();
  let currency: string | undefined;
  for (const s of [...schedules].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (s.legal_entity !== entity) continue;
    const part = monthlyAmounts(s).find((m) => m.month === period)?.amount_minor ?? 0n;
    if (part === 0n) continue;
    invariant(currency === undefined || currency === s.currency, `schedules of ${entity} in ${period} are in several currencies`);
    currency = s.currency;
    byCustomer.set(s.customer, (byCustomer.get(s.customer) ?? 0n) + part);
    const account = revenueAccountOf(s.product);
    byAccount.set(account, (byAccount.get(account) ?? 0n) + part);
  }
  if (currency === undefined) return null;
  const deferred = role(accounts, 'deferred_revenue', 'revenue recognized from a schedule');
  const line = (account: string, debit: bigint, credit: bigint, extra: Partial<JournalLine>): JournalLine => ({
    line_no: 0,
    account,
    debit_minor: debit,
    credit_minor: credit,
    currency: currency!,
    ...extra,
  });
  const lines = numbered(
    [...byCustomer.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([c, amount]) => line(deferred, amount, 0n, { customer: erpCustomerOf(c), memo: `Deferred revenue of ${c}` })),
    [...byAccount.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([account, amount]) => line(account, 0n, amount, { memo: 'Revenue recognized' })),
  );
  return buildJournal(
    'revenue_recognition',
    `revrec:${entity}:${period}`,
    entity,
    lastDayOfMonth(period),
    `Revenue recognized from schedules for ${period}`,
    lines,
  );
}

/** Net revenue of usage delivered in a month and not yet invoiced: per customer and product (charges - discounts, no tax). */
export interface UnbilledAmount {
  customer: string;
  product: string;
  amount_minor: bigint;
}

/**
 * The month-end accrual of unbilled usage (Dr unbilled receivable per customer, Cr revenue per account, dated the
 * month's last day) and its reversal on the first day of the next month, line for line. Null when nothing is unbilled.
 */
export function unbilledAccrual(
  entity: string,
  period: string,
  currency: string,
  amounts: readonly UnbilledAmount[],
  accounts: AccountMap,
  revenueAccountOf: (product: string) => string,
  erpCustomerOf: (customer: string) => string,
): { accrual: Journal; reversal: Journal } | null {
  invariant(PERIOD.test(period), `not a period: ${period}`);
  const byCustomer = new Map<string, bigint>();
  const byAccount = new Map<string, bigint>();
  for (const a of amounts) {
    if (a.amount_minor === 0n) continue;
    byCustomer.set(a.customer, (byCustomer.get(a.customer) ?? 0n) + a.amount_minor);
    const account = revenueAccountOf(a.product);
    byAccount.set(account, (byAccount.get(account) ?? 0n) + a.amount_minor);
  }
  const signed = (account: string, amount: bigint, extra: Partial<JournalLine>): JournalLine => ({
    line_no: 0,
    account,
    debit_minor: amount > 0n ? amount : 0n,
    credit_minor: amount < 0n ? -amount : 0n,
    currency,
    ...extra,
  });
  const receivable = role(accounts, 'unbilled_receivable', 'unbilled usage accrued at a month end');
  const all = [
    ...[...byCustomer.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([c, amount]) => signed(receivable, amount, { customer: erpCustomerOf(c), memo: `Unbilled usage of ${c}` })),
    ...[...byAccount.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([account, amount]) => signed(account, -amount, { memo: 'Revenue accrued' })),
  ].filter((l) => l.debit_minor + l.credit_minor > 0n);
  if (all.length < 2) return null;
  const lines = numbered(
    all.filter((l) => l.debit_minor > 0n),
    all.filter((l) => l.credit_minor > 0n),
  );
  const accrual = buildJournal(
    'unbilled_accrual',
    `unbilled:${entity}:${period}`,
    entity,
    lastDayOfMonth(period),
    `Usage delivered in ${period}, not yet invoiced`,
    lines,
  );
  invariant(accrual !== null, 'an accrual has lines');
  const reversal = mirrorJournal(
    accrual,
    'unbilled_accrual_reversal',
    firstDayOfNextMonth(period),
    `Reversal of the ${period} unbilled usage accrual: invoiced`,
  );
  return { accrual, reversal };
}
