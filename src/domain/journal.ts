// The accounting core: double-entry journals for invoices, credit drawdowns, credit notes and payments, the
// balance rules every journal obeys, a trial balance, and the account naming the plain-text exports share.
// Pure: no I/O. The treatment is documented with worked examples in docs/accounting.md.
//
// Treatment (one, used everywhere):
//   invoice          Dr receivable (total)  Cr revenue per account (charges - discounts - credits drawn)  Cr tax payable
//                    (a charge billed for more than a month: Cr deferred revenue instead, recognized by its schedule)
//   revenue_recognition  Dr deferred revenue  Cr revenue per account (each schedule's part for the month)
//   unbilled_accrual     Dr unbilled receivable  Cr revenue (usage of the month not yet invoiced; reversed the next day)
//   fx_revaluation       Dr/Cr receivable  Cr/Dr unrealized exchange (open receivables in other currencies; reversed)
//   credit_drawdown  Dr deferred revenue (paid credits drawn)  Dr promotional credits (free credits drawn: contra-revenue)
//                    Cr revenue per account (credits drawn against its products)
//   credit_grant     Dr cash  Cr deferred revenue (a paid grant, on its grant date; a promotional grant books nothing)
//   credit_expiry    Dr deferred revenue  Cr breakage revenue (the unused part of a paid grant, on its expiry date)
//   credit_note      the invoice treatment of its own lines with the drawdown folded in, debits and credits swapped:
//                    Dr revenue (charges - discounts)  Dr tax payable  Cr receivable (total)  Cr deferred revenue (credits)
//   payment          Dr cash  Cr receivable
//   *_reversal       a void: every line of the journal it reverses, debit and credit swapped, dated the void date
// Invoice and drawdown journals together recognize revenue (charges - discounts) once: the invoice journal only the
// billed part, the drawdown journal the part prepaid credits cover.
import { journalId as keyOfJournal, reversalJournalId } from './keys.js';
import type { AccountMap, Invoice, InvoiceLine, Journal, JournalLine, LineKind, Product } from './model.js';
import { formatMajor, isCurrency, sumMinor } from './money.js';
import { fail, formatProblems, invariant, ok, problem, type Problem, type Result } from './result.js';
import { addMonthsToPeriod } from './calendar.js';

export { JOURNAL_KEY_VERSION } from './keys.js';
/** Limits (TigerStyle): a journal with more lines than this is a bug upstream. */
export const JOURNAL_LINES_MAX = 10_000;

const CHARGE_KINDS: readonly LineKind[] = ['flat', 'usage', 'minimum_true_up', 'late_usage'];
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export type JournalKind = Journal['kind'];

/** `jrn:v1:<kind>:<source document id>`: the journal's id and idempotency key (src/domain/keys.ts). */
export const journalId = (kind: JournalKind, sourceDocument: string): string => keyOfJournal(kind, sourceDocument);

const abs = (value: bigint): bigint => (value < 0n ? -value : value);
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

// ---------- invoice consistency ----------

/** Charge lines (flat, usage, minimum true-up, late usage) raise revenue; discount and credit lines lower it. */
export const isChargeLine = (line: InvoiceLine): boolean => CHARGE_KINDS.includes(line.kind);

/**
 * The totals of an invoice or credit note agree with its lines: subtotal = charge lines, discount = discount
 * lines, credits = credit lines (discount and credit lines count by magnitude: either sign convention means a
 * reduction), tax = tax lines, total = subtotal - discount - credits + tax.
 */
export function checkInvoiceTotals(invoice: Invoice): Result<void> {
  const problems: Problem[] = [];
  const charges = sumMinor(invoice.lines.filter(isChargeLine).map((l) => l.amount_minor));
  const discounts = sumMinor(invoice.lines.filter((l) => l.kind === 'discount').map((l) => abs(l.amount_minor)));
  const credits = sumMinor(invoice.lines.filter((l) => l.kind === 'credit').map((l) => abs(l.amount_minor)));
  const tax = sumMinor(invoice.tax_lines.map((t) => t.tax_minor));
  const money = (v: bigint) => `${formatMajor(v, invoice.currency)} ${invoice.currency}`;
  const expect = (path: string, actual: bigint, expected: bigint, what: string) => {
    if (actual !== expected)
      problems.push(problem(path, 'inconsistent_total', `is ${money(actual)} but ${what} come to ${money(expected)}`));
  };
  if (!isCurrency(invoice.currency))
    return fail(problem('currency', 'unknown_currency', `${JSON.stringify(invoice.currency)} is not an ISO 4217 currency`));
  expect('subtotal_minor', invoice.subtotal_minor, charges, 'the charge lines');
  expect('discount_minor', invoice.discount_minor, discounts, 'the discount lines');
  expect('credits_applied_minor', invoice.credits_applied_minor, credits, 'the credit lines');
  expect('tax_minor', invoice.tax_minor, tax, 'the tax lines');
  expect(
    'total_minor',
    invoice.total_minor,
    invoice.subtotal_minor - invoice.discount_minor - invoice.credits_applied_minor + invoice.tax_minor,
    'subtotal - discount - credits + tax',
  );
  return problems.length === 0 ? ok(undefined) : fail(...problems);
}

// ---------- lines billed for more than a month (src/domain/revenue.ts) ----------

/** The calendar months a service period [start, end) touches. */
export function serviceMonths(start: string, end: string): string[] {
  const months: string[] = [];
  for (let m = start.slice(0, 7); `${m}-01` < end; m = addMonthsToPeriod(m, 1)) months.push(m);
  return months;
}

/** A charge line billed for more than one calendar month (a fee billed in advance for a term) is deferred, then recognized. */
export const isDeferredLine = (line: Pick<InvoiceLine, 'kind' | 'period_start' | 'period_end' | 'amount_minor'>): boolean =>
  (line.kind === 'flat' || line.kind === 'usage') && line.amount_minor > 0n && serviceMonths(line.period_start, line.period_end).length > 1;

// ---------- building lines ----------

/** One side of a journal before it becomes lines: a signed amount, debit positive, credit negative. */
interface Entry {
  account: string;
  signed: bigint;
  customer?: string;
  product?: string;
  memo?: string;
}

/** Entries to lines: zero amounts omitted, debits first, then credits, each side in construction order. */
function toLines(entries: readonly Entry[], currency: string): JournalLine[] {
  const nonZero = entries.filter((e) => e.signed !== 0n);
  const ordered = [...nonZero.filter((e) => e.signed > 0n), ...nonZero.filter((e) => e.signed < 0n)];
  invariant(ordered.length <= JOURNAL_LINES_MAX, `a journal has at most ${JOURNAL_LINES_MAX} lines`);
  return ordered.map((e, index) => {
    const line: JournalLine = {
      line_no: index + 1,
      account: e.account,
      debit_minor: e.signed > 0n ? e.signed : 0n,
      credit_minor: e.signed < 0n ? -e.signed : 0n,
      currency,
    };
    if (e.customer !== undefined) line.customer = e.customer;
    if (e.product !== undefined) line.product = e.product;
    if (e.memo !== undefined) line.memo = e.memo;
    return line;
  });
}

const negate = (entries: readonly Entry[]): Entry[] => entries.map((e) => ({ ...e, signed: -e.signed }));

/**
 * Revenue entries: per revenue account, the sum of `amountOf` over the lines whose product maps to it, as a
 * credit (negative signed amount). Ordered by account; the line names the product when the account has one.
 */
function revenueEntries(
  lines: readonly InvoiceLine[],
  revenueAccountOf: (product: string) => string,
  amountOf: (line: InvoiceLine) => bigint,
): Entry[] {
  const byAccount = new Map<string, { amount: bigint; products: Set<string> }>();
  for (const line of lines) {
    const amount = amountOf(line);
    if (amount === 0n) continue;
    const account = revenueAccountOf(line.product);
    invariant(typeof account === 'string' && account !== '', `no revenue account for product ${JSON.stringify(line.product)}`);
    const slot = byAccount.get(account) ?? { amount: 0n, products: new Set<string>() };
    slot.amount += amount;
    slot.products.add(line.product);
    byAccount.set(account, slot);
  }
  return [...byAccount.entries()]
    .sort(([a], [b]) => compare(a, b))
    .map(([account, { amount, products }]) => {
      const names = [...products].sort(compare);
      const entry: Entry = { account, signed: -amount, memo: `Revenue ${names.join(', ')}` };
      if (names.length === 1) entry.product = names[0]!;
      return entry;
    });
}

/** What a line adds to revenue before credits: charges add, discounts subtract (by magnitude). */
const netOfDiscounts = (line: InvoiceLine): bigint =>
  isChargeLine(line) ? line.amount_minor : line.kind === 'discount' ? -abs(line.amount_minor) : 0n;
const creditDrawn = (line: InvoiceLine): bigint => (line.kind === 'credit' ? abs(line.amount_minor) : 0n);

function requireConsistent(document: Invoice): void {
  const totals = checkInvoiceTotals(document);
  invariant(totals.ok, `${document.kind} ${document.id} has inconsistent totals:\n${totals.ok ? '' : formatProblems(totals.problems)}`);
  invariant(DATE.test(document.period_start), `${document.kind} ${document.id} has a period_start that is not a date`);
}

/** A journal keyed `jrn:v1:<kind>:<source>`, checked balanced; null when it has no lines. */
export function buildJournal(
  kind: JournalKind,
  source: string,
  legalEntity: string,
  postingDate: string,
  memo: string,
  lines: JournalLine[],
): Journal | null {
  if (lines.length === 0) return null;
  const id = journalId(kind, source);
  const built: Journal = { id, key: id, legal_entity: legalEntity, posting_date: postingDate, source_document: source, kind, memo, lines };
  assertBalanced(built);
  return built;
}

const documentName = (document: Invoice): string => document.number ?? document.id;

function requireRole(accounts: AccountMap, role: keyof AccountMap & string): string {
  const account = accounts[role];
  invariant(typeof account === 'string' && account !== '', `the account map has no ${role} account`);
  return account;
}

// ---------- journals per document kind ----------

/**
 * The journal of a finalized invoice: Dr receivable (total, the ERP customer on the line), Cr revenue per account
 * (charges - discounts - credits drawn against its products), Cr tax payable (tax). The part covered by prepaid
 * credits is recognized by `creditDrawdownJournal`, never here. Null when the invoice moves nothing on its own
 * (a zero invoice, or one entirely covered by credits with no tax). Inconsistent totals are a bug: it throws.
 */
export function invoiceJournal(
  invoice: Invoice,
  accounts: AccountMap,
  revenueAccountOf: (product: string) => string,
  erpCustomerId: string,
  postingDate: string,
): Journal | null {
  invariant(invoice.kind === 'invoice', `invoiceJournal posts invoices; ${invoice.id} is a ${invoice.kind}`);
  invariant(invoice.status === 'finalized', `only a finalized invoice is posted; ${invoice.id} is ${invoice.status}`);
  requireConsistent(invoice);
  const entries: Entry[] = [
    {
      account: requireRole(accounts, 'receivable'),
      signed: invoice.total_minor,
      customer: erpCustomerId,
      memo: `Receivable ${documentName(invoice)}`,
    },
    ...revenueEntries(invoice.lines, revenueAccountOf, (line) => (isDeferredLine(line) ? 0n : netOfDiscounts(line) - creditDrawn(line))),
    // A fee billed in advance for more than a month is a contract liability until its schedule recognizes it.
    {
      account: requireRole(accounts, 'deferred_revenue'),
      signed: -sumMinor(invoice.lines.filter(isDeferredLine).map((l) => l.amount_minor)),
      customer: erpCustomerId,
      memo: 'Billed in advance, recognized over its term',
    },
    { account: requireRole(accounts, 'tax_payable'), signed: -invoice.tax_minor, memo: 'Tax payable' },
  ];
  const memo = `Invoice ${documentName(invoice)} ${invoice.customer} ${invoice.period_start}..${invoice.period_end}`;
  return buildJournal('invoice', invoice.id, invoice.legal_entity, postingDate, memo, toLines(entries, invoice.currency));
}

/**
 * The drawdown of prepaid credits an invoice applied: Dr deferred revenue (credits applied, the ERP customer on
 * the line), Cr revenue per account of the products the credit lines were drawn against. Null without credits.
 */
export function creditDrawdownJournal(
  invoice: Invoice,
  accounts: AccountMap,
  revenueAccountOf: (product: string) => string,
  erpCustomerId: string,
  postingDate: string,
  promotional: ReadonlySet<string> = new Set(),
): Journal | null {
  invariant(invoice.kind === 'invoice', `creditDrawdownJournal posts invoices; ${invoice.id} is a ${invoice.kind}`);
  invariant(invoice.status === 'finalized', `only a finalized invoice is posted; ${invoice.id} is ${invoice.status}`);
  requireConsistent(invoice);
  const isPromotional = (line: InvoiceLine) => line.credit_grant !== undefined && promotional.has(line.credit_grant);
  const grantsOf = (free: boolean) =>
    [
      ...new Set(
        invoice.lines
          .filter((l) => l.kind === 'credit' && l.credit_grant !== undefined && isPromotional(l) === free)
          .map((l) => l.credit_grant!),
      ),
    ].sort(compare);
  const promotionalDrawn = sumMinor(invoice.lines.filter((l) => l.kind === 'credit' && isPromotional(l)).map((l) => abs(l.amount_minor)));
  const paid = grantsOf(false);
  const free = grantsOf(true);
  const entries: Entry[] = [
    {
      account: requireRole(accounts, 'deferred_revenue'),
      signed: invoice.credits_applied_minor - promotionalDrawn,
      customer: erpCustomerId,
      memo: `Credits drawn${paid.length > 0 ? ` from ${paid.join(', ')}` : ''}`,
    },
    // Promotional credits were never paid for: drawn as contra-revenue, so revenue is recognized gross.
    ...(promotionalDrawn === 0n
      ? []
      : [
          {
            account: requireRole(accounts, 'promotional_credits'),
            signed: promotionalDrawn,
            customer: erpCustomerId,
            memo: `Promotional credits drawn from ${free.join(', ')}`,
          },
        ]),
    ...revenueEntries(invoice.lines, revenueAccountOf, creditDrawn),
  ];
  const memo = `Credit drawdown on invoice ${documentName(invoice)} ${invoice.customer}`;
  return buildJournal('credit_drawdown', invoice.id, invoice.legal_entity, postingDate, memo, toLines(entries, invoice.currency));
}

/** The invoice journal and, when credits were applied, the drawdown journal: what posting an invoice writes. */
export function invoiceJournals(
  invoice: Invoice,
  accounts: AccountMap,
  revenueAccountOf: (product: string) => string,
  erpCustomerId: string,
  postingDate: string,
  promotional: ReadonlySet<string> = new Set(),
): Journal[] {
  return [
    invoiceJournal(invoice, accounts, revenueAccountOf, erpCustomerId, postingDate),
    creditDrawdownJournal(invoice, accounts, revenueAccountOf, erpCustomerId, postingDate, promotional),
  ].filter((j): j is Journal => j !== null);
}

/**
 * A credit note reverses what it corrects. Its lines carry positive amounts like an invoice's; the journal is the
 * invoice treatment of those lines with the drawdown folded in (credits restored to deferred revenue), debits and
 * credits swapped: Dr revenue per account (charges - discounts), Dr tax payable, Cr receivable (total),
 * Cr deferred revenue (credits). Null when it moves nothing.
 */
export function creditNoteJournal(
  creditNote: Invoice,
  accounts: AccountMap,
  revenueAccountOf: (product: string) => string,
  erpCustomerId: string,
  postingDate: string,
): Journal | null {
  invariant(creditNote.kind === 'credit_note', `creditNoteJournal posts credit notes; ${creditNote.id} is a ${creditNote.kind}`);
  invariant(creditNote.status === 'finalized', `only a finalized credit note is posted; ${creditNote.id} is ${creditNote.status}`);
  invariant(
    typeof creditNote.corrects === 'string' && creditNote.corrects !== '',
    `credit note ${creditNote.id} does not say which invoice it corrects`,
  );
  requireConsistent(creditNote);
  const asInvoice: Entry[] = [
    {
      account: requireRole(accounts, 'receivable'),
      signed: creditNote.total_minor,
      customer: erpCustomerId,
      memo: `Receivable ${documentName(creditNote)}`,
    },
    {
      account: requireRole(accounts, 'deferred_revenue'),
      signed: creditNote.credits_applied_minor,
      customer: erpCustomerId,
      memo: 'Credits restored',
    },
    ...revenueEntries(creditNote.lines, revenueAccountOf, netOfDiscounts),
    { account: requireRole(accounts, 'tax_payable'), signed: -creditNote.tax_minor, memo: 'Tax payable' },
  ];
  const memo = `Credit note ${documentName(creditNote)} ${creditNote.customer} corrects ${creditNote.corrects}`;
  return buildJournal(
    'credit_note',
    creditNote.id,
    creditNote.legal_entity,
    postingDate,
    memo,
    toLines(negate(asInvoice), creditNote.currency),
  );
}

/** The journal kinds a void reverses: what an invoice posts (a payment is refunded, a credit note is not voided). */
export const REVERSIBLE_KINDS = ['invoice', 'credit_drawdown'] as const;
export type ReversibleKind = (typeof REVERSIBLE_KINDS)[number];

/**
 * The reversal of a journal when its document is voided: the same lines (line numbers, accounts, customers, products,
 * currencies), debit and credit swapped, so the pair nets every account to zero; dated `postingDate`, never before the
 * original. Pure; the schema checks the mirror again at commit (migration 028).
 */
export function reversingJournal(original: Journal, postingDate: string, reason: string): Journal {
  invariant(
    (REVERSIBLE_KINDS as readonly string[]).includes(original.kind),
    `only ${REVERSIBLE_KINDS.join(' and ')} journals are reversed by a void; ${original.id} is a ${original.kind}`,
  );
  invariant(DATE.test(postingDate), `the reversal of ${original.id} has a posting date that is not a date: ${postingDate}`);
  invariant(
    postingDate >= original.posting_date,
    `the reversal of ${original.id} is dated ${postingDate}, before it (${original.posting_date})`,
  );
  return mirrorJournal(
    original,
    `${original.kind as ReversibleKind}_reversal`,
    postingDate,
    `Void of ${original.memo}${reason ? `: ${reason}` : ''}`,
  );
}

/**
 * The reversal of a journal as the schema checks it (migration 028): `jrn:v1:<kind>:<its source document>`, every line
 * with the same number, account, customer and product, debit and credit swapped, `reverses` naming it, its rate kept.
 */
export function mirrorJournal(original: Journal, kind: JournalKind, postingDate: string, memo: string): Journal {
  invariant(kind === `${original.kind}_reversal`, `a ${kind} does not reverse a ${original.kind}`);
  const id = journalId(kind, original.source_document);
  invariant(id === reversalJournalId(original.kind, original.source_document), 'the reversal key recipe');
  const reversed: Journal = {
    id,
    key: id,
    legal_entity: original.legal_entity,
    posting_date: postingDate,
    source_document: original.source_document,
    kind,
    memo,
    lines: original.lines.map((line) => ({ ...line, debit_minor: line.credit_minor, credit_minor: line.debit_minor })),
    reverses: original.id,
    ...(original.fx ? { fx: original.fx } : {}),
  };
  assertBalanced(reversed);
  return reversed;
}

export interface PaymentDocument {
  id: string;
  invoice_id: string;
  customer: string;
  erp_customer_id: string;
  legal_entity: string;
  currency: string;
  amount_minor: bigint;
  received_on: string; // UTC date: the posting date
}

/** A payment received: Dr cash, Cr receivable (the ERP customer on the line), posted on the day received. */
export function paymentJournal(payment: PaymentDocument, accounts: AccountMap): Journal {
  invariant(payment.amount_minor > 0n, `payment ${payment.id} must have a positive amount`);
  invariant(isCurrency(payment.currency), `payment ${payment.id} has an unknown currency ${payment.currency}`);
  const entries: Entry[] = [
    { account: requireRole(accounts, 'cash'), signed: payment.amount_minor, memo: `Payment ${payment.id}` },
    {
      account: requireRole(accounts, 'receivable'),
      signed: -payment.amount_minor,
      customer: payment.erp_customer_id,
      memo: `Invoice ${payment.invoice_id}`,
    },
  ];
  const memo = `Payment ${payment.id} from ${payment.customer} for invoice ${payment.invoice_id}`;
  const built = buildJournal('payment', payment.id, payment.legal_entity, payment.received_on, memo, toLines(entries, payment.currency));
  invariant(built !== null, 'a positive payment has lines');
  return built;
}

// ---------- balance rules ----------

/**
 * The rules every journal obeys: at least two lines; each line has an account, a known currency, no negative
 * amount, and exactly one of debit and credit non-zero; per currency, debits equal credits; a date posting date.
 */
export function checkBalanced(journal: Journal): Result<void> {
  const problems: Problem[] = [];
  if (!DATE.test(journal.posting_date))
    problems.push(problem('posting_date', 'not_date', `must be a date YYYY-MM-DD, got ${JSON.stringify(journal.posting_date)}`));
  if (journal.lines.length < 2)
    problems.push(problem('lines', 'too_few_lines', `a journal needs at least two lines, ${journal.id} has ${journal.lines.length}`));
  const totals = new Map<string, { debit: bigint; credit: bigint }>();
  journal.lines.forEach((line, index) => {
    const path = `lines[${index}]`;
    if (typeof line.account !== 'string' || line.account === '')
      problems.push(problem(`${path}.account`, 'no_account', 'must name an account'));
    if (!isCurrency(line.currency)) {
      problems.push(problem(`${path}.currency`, 'unknown_currency', `${JSON.stringify(line.currency)} is not an ISO 4217 currency`));
      return;
    }
    if (line.debit_minor < 0n)
      problems.push(
        problem(
          `${path}.debit_minor`,
          'negative',
          `must not be negative, got ${formatMajor(line.debit_minor, line.currency)} ${line.currency}`,
        ),
      );
    if (line.credit_minor < 0n)
      problems.push(
        problem(
          `${path}.credit_minor`,
          'negative',
          `must not be negative, got ${formatMajor(line.credit_minor, line.currency)} ${line.currency}`,
        ),
      );
    if (line.debit_minor !== 0n && line.credit_minor !== 0n)
      problems.push(problem(path, 'both_sides', `has both a debit and a credit on account ${line.account}; a line is one or the other`));
    if (line.debit_minor === 0n && line.credit_minor === 0n)
      problems.push(problem(path, 'zero_line', `moves nothing on account ${line.account}; zero lines are omitted`));
    const slot = totals.get(line.currency) ?? { debit: 0n, credit: 0n };
    slot.debit += line.debit_minor;
    slot.credit += line.credit_minor;
    totals.set(line.currency, slot);
  });
  for (const [currency, { debit, credit }] of [...totals.entries()].sort(([a], [b]) => compare(a, b))) {
    if (debit !== credit) {
      problems.push(
        problem(
          'lines',
          'unbalanced',
          `debits ${formatMajor(debit, currency)} ${currency} and credits ${formatMajor(credit, currency)} ${currency} differ by ${formatMajor(debit - credit, currency)} ${currency}`,
        ),
      );
    }
  }
  return problems.length === 0 ? ok(undefined) : fail(...problems);
}

/** Throws, naming every problem, when a journal breaks the balance rules (a bug, never an expected failure). */
export function assertBalanced(journal: Journal): void {
  const checked = checkBalanced(journal);
  if (!checked.ok) throw new Error(`journal ${journal.id} is not balanced:\n${formatProblems(checked.problems)}`);
}

// ---------- trial balance ----------

export interface TrialBalanceRow {
  legal_entity: string;
  account: string;
  currency: string;
  debit_minor: bigint;
  credit_minor: bigint;
  balance_minor: bigint; // debit - credit
}

/** Debits, credits and balance per legal entity, account and currency, sorted by those three. */
export function trialBalance(
  journals: ReadonlyArray<
    Pick<Journal, 'legal_entity'> & { lines: ReadonlyArray<Pick<JournalLine, 'account' | 'currency' | 'debit_minor' | 'credit_minor'>> }
  >,
): TrialBalanceRow[] {
  const rows = new Map<string, TrialBalanceRow>();
  for (const j of journals) {
    for (const line of j.lines) {
      const key = JSON.stringify([j.legal_entity, line.account, line.currency]);
      const row = rows.get(key) ?? {
        legal_entity: j.legal_entity,
        account: line.account,
        currency: line.currency,
        debit_minor: 0n,
        credit_minor: 0n,
        balance_minor: 0n,
      };
      row.debit_minor += line.debit_minor;
      row.credit_minor += line.credit_minor;
      row.balance_minor = row.debit_minor - row.credit_minor;
      rows.set(key, row);
    }
  }
  return [...rows.values()].sort(
    (a, b) => compare(a.legal_entity, b.legal_entity) || compare(a.account, b.account) || compare(a.currency, b.currency),
  );
}

// ---------- account roles and plain-text account names ----------

/** The role of each GL account, per legal entity: the AccountMap roles, and `revenue` for products' accounts. */
export type AccountRoles = Record<string, Record<string, string>>;

/** Roles from the catalog's account maps and products; an account with two roles in one entity is refused. */
export function accountRoles(accounts: Record<string, AccountMap>, products: readonly Product[]): Result<AccountRoles> {
  const roles: AccountRoles = {};
  const problems: Problem[] = [];
  const assign = (entity: string, account: string, role: string, path: string) => {
    const entityRoles = (roles[entity] ??= {});
    const existing = entityRoles[account];
    if (existing !== undefined && existing !== role) {
      problems.push(
        problem(path, 'account_two_roles', `account ${account} of ${entity} is already the ${existing} account; it cannot also be ${role}`),
      );
      return;
    }
    entityRoles[account] = role;
  };
  for (const entity of Object.keys(accounts).sort(compare)) {
    const map = accounts[entity]!;
    for (const role of Object.keys(map).sort(compare)) assign(entity, map[role]!, role, `accounts.${entity}.${role}`);
  }
  products.forEach((product, index) => {
    for (const entity of Object.keys(product.revenue_account).sort(compare)) {
      assign(entity, product.revenue_account[entity]!, 'revenue', `products[${index}].revenue_account.${entity}`);
    }
  });
  return problems.length === 0 ? ok(roles) : fail(...problems);
}

/** Resolves a product's revenue account in one legal entity; a product without one is a bug (it throws). */
export function revenueAccountResolver(products: readonly Product[], legalEntity: string): (product: string) => string {
  const byId = new Map(products.map((p) => [p.id, p]));
  return (productId) => {
    const account = byId.get(productId)?.revenue_account[legalEntity];
    invariant(account !== undefined, `product ${JSON.stringify(productId)} has no revenue account in ${legalEntity}`);
    return account;
  };
}

/** The class (root) and the name component of each known role in a plain-text ledger. */
export const LEDGER_ROLE_PATHS: Readonly<Record<string, readonly [root: string, name: string]>> = {
  receivable: ['Assets', 'Receivable'],
  cash: ['Assets', 'Cash'],
  deferred_revenue: ['Liabilities', 'DeferredRevenue'],
  tax_payable: ['Liabilities', 'TaxPayable'],
  revenue: ['Income', 'Revenue'],
  fx_gain: ['Income', 'ExchangeGain'],
  fx_loss: ['Expenses', 'ExchangeLoss'],
  fx_unrealized: ['Income', 'UnrealizedExchange'],
  promotional_credits: ['Income', 'PromotionalCredits'],
  breakage_revenue: ['Income', 'Breakage'],
  unbilled_receivable: ['Assets', 'UnbilledReceivable'],
};

/** One account-name component both hledger and beancount accept: `[A-Z0-9][A-Za-z0-9-]*`. */
export function ledgerComponent(text: string, options: { camel?: boolean } = {}): string {
  const parts = text.split(/[^A-Za-z0-9]+/).filter((p) => p !== '');
  const joined = options.camel ? parts.map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('') : text.replace(/[^A-Za-z0-9-]/g, '-');
  const body = joined === '' ? 'X' : joined;
  const first = body.charAt(0);
  return /[A-Za-z]/.test(first) ? first.toUpperCase() + body.slice(1) : /[0-9]/.test(first) ? body : `X${body}`;
}

/** `Assets[:NwUs]:Receivable:1200`: root by role, the legal entity when asked, the role's name, the GL account. */
export function ledgerAccountName(role: string, legalEntity: string, account: string, withEntity: boolean): string {
  const path = LEDGER_ROLE_PATHS[role];
  invariant(path !== undefined, `account ${account} of ${legalEntity} has the role ${role}, which has no place in a plain-text ledger`);
  const [root, name] = path;
  return [root, ...(withEntity ? [ledgerComponent(legalEntity, { camel: true })] : []), name, ledgerComponent(account)].join(':');
}

export interface PlainTextOptions {
  /** Names an account; takes precedence over `roles`. Must return a name valid for the target tool. */
  accountName?: (entity: string, account: string) => string;
  /** Roles per entity and account (see `accountRoles`), used for the default names when `accountName` is absent. */
  roles?: AccountRoles;
  /** The legal entity as a path component; by default only when the journals span several legal entities. */
  entityInPath?: boolean;
}

/**
 * The plain-text name of every (legal entity, account) the journals use, keyed by `entityAccountKey`. Throws
 * when an account cannot be named, or when two different accounts would get the same name (they would merge).
 */
export function plainTextAccountNames(journals: readonly Journal[], options: PlainTextOptions): Map<string, string> {
  const entities = new Set(journals.map((j) => j.legal_entity));
  const withEntity = options.entityInPath ?? entities.size > 1;
  const names = new Map<string, string>();
  const owners = new Map<string, string>();
  for (const j of journals) {
    for (const line of j.lines) {
      const key = entityAccountKey(j.legal_entity, line.account);
      if (names.has(key)) continue;
      let name: string;
      if (options.accountName) name = options.accountName(j.legal_entity, line.account);
      else {
        invariant(options.roles !== undefined, 'a plain-text export needs account roles or an accountName function');
        const role = options.roles[j.legal_entity]?.[line.account];
        invariant(
          role !== undefined,
          `account ${line.account} of ${j.legal_entity} (journal ${j.id}) has no role: it is not in the catalog's accounts or products`,
        );
        name = ledgerAccountName(role, j.legal_entity, line.account, withEntity);
      }
      const owner = owners.get(name);
      invariant(owner === undefined, `accounts ${owner} and ${key} would both be named ${name}`);
      owners.set(name, key);
      names.set(key, name);
    }
  }
  return names;
}

export const entityAccountKey = (legalEntity: string, account: string): string => `${legalEntity}/${account}`;

/** Journals sorted by posting date then id (code-unit order, locale-independent), each checked for balance. */
export function sortedForExport(journals: readonly Journal[]): Journal[] {
  for (const j of journals) assertBalanced(j);
  const ids = new Set<string>();
  for (const j of journals) {
    invariant(!ids.has(j.id), `journal ${j.id} appears twice`);
    ids.add(j.id);
  }
  return [...journals].sort((a, b) => compare(a.posting_date, b.posting_date) || compare(a.id, b.id));
}

/** Lines in line_no order (the order they were built in). */
export const orderedLines = (journal: Journal): JournalLine[] => [...journal.lines].sort((a, b) => a.line_no - b.line_no);
