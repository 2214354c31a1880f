// The rating stage's pure entry: which usage windows a customer's period needs (usageWindowsNeeded), and the draft
// invoices (one per currency) given those windows' quantities (rateCustomer, rateWindows). The rules are in
// docs/pricing.md and in this folder, one module per concern; every amount is rounded once via money.ts.
import type { CatalogIndex } from '../domain/catalog.js';
import { invoiceIdOf, invoiceKey, ratingRunId } from '../domain/keys.js';
import { invoiceLegalFields } from '../domain/invoice-terms.js';
import type { Catalog, Customer, Invoice, InvoiceLine, LegalEntity, Plan, Subscription } from '../domain/model.js';
import { roundToMinor, sumMinor, type Decimal, type RoundingMode } from '../domain/money.js';
import { fail, invariant, ok, problem, type Result } from '../domain/result.js';
import { planCharges, planUsageWindows, type UsageProvider, type UsageWindow } from './charges.js';
import { creditLines } from './credits.js';
import { discountLines } from './discounts.js';
import type { WindowQuantity } from './price-models.js';
import { subscriptionsInPeriod } from './segments.js';
import { taxOf } from './tax.js';

export type { UsageProvider, UsageWindow } from './charges.js';
export type { WindowQuantity } from './price-models.js';

/** One customer and billing period against one catalog: what rating needs besides the usage. */
export interface PeriodInput {
  catalog: Catalog;
  index: CatalogIndex;
  catalogHash: string;
  customer: string;
  period: { period: string; start_date: string; end_date: string }; // end exclusive
  grantUsedMinor: ReadonlyMap<string, bigint>; // drawn by earlier finalized invoices
}

export interface RatingInput extends PeriodInput {
  usage: UsageProvider;
  usageFingerprint: string; // hash of the usage aggregates read; part of the run id
}

type CurrencyGroup = { currency: string; plans: Array<{ plan: Plan; sub: Subscription }> };
interface Subject {
  customer: Customer;
  entity: LegalEntity;
  groups: CurrencyGroup[]; // by currency code
}

/** The customer, its legal entity and its subscriptions in the period grouped by their plan's currency. */
function subjectOf(input: PeriodInput): Result<Subject> {
  const customer = input.index.customers.get(input.customer);
  if (!customer) return fail(problem('customer', 'unknown_customer', `no customer ${input.customer}`));
  const entity = input.index.legalEntities.get(customer.legal_entity);
  if (!entity) return fail(problem('customer.legal_entity', 'unknown_legal_entity', `no legal entity ${customer.legal_entity}`));
  const byCurrency = new Map<string, CurrencyGroup>();
  for (const sub of subscriptionsInPeriod(input.index.subscriptionsByCustomer.get(customer.id) ?? [], input.period)) {
    const plan = input.index.plans.get(sub.plan);
    if (!plan) return fail(problem('subscription.plan', 'unknown_plan', `no plan ${sub.plan}`));
    const group = byCurrency.get(plan.currency) ?? { currency: plan.currency, plans: [] };
    group.plans.push({ plan, sub });
    byCurrency.set(plan.currency, group);
  }
  const groups = [...byCurrency.values()].sort((a, b) => (a.currency < b.currency ? -1 : 1));
  return ok({ customer, entity, groups });
}

export const windowKey = (w: UsageWindow): string => `${w.meter}|${w.from}|${w.to}`;

/** The usage windows rating the period reads, each once, in the order rating reads them. */
export function usageWindowsNeeded(input: PeriodInput): Result<UsageWindow[]> {
  const subject = subjectOf(input);
  if (!subject.ok) return subject;
  const windows = new Map<string, UsageWindow>();
  for (const { plans } of subject.value.groups)
    for (const { plan, sub } of plans) for (const w of planUsageWindows(plan, sub, input.period)) windows.set(windowKey(w), w);
  return ok([...windows.values()]);
}

/** Rates the period from the quantities of the windows usageWindowsNeeded named (keyed by windowKey). */
export function rateWindows(
  input: PeriodInput,
  quantities: ReadonlyMap<string, WindowQuantity>,
  usageFingerprint: string,
): Result<Invoice[]> {
  const usage: UsageProvider = (meter, from, to) => {
    const answer = quantities.get(windowKey({ meter, from, to }));
    if (!answer) throw new Error(`rating asked for a window it did not ask for before: ${meter} ${from} ${to}`);
    return answer;
  };
  return rateCustomer({ ...input, usage, usageFingerprint });
}

export function rateCustomer(input: RatingInput): Result<Invoice[]> {
  const subject = subjectOf(input);
  if (!subject.ok) return subject;
  const invoices: Invoice[] = [];
  for (const group of subject.value.groups) {
    const invoice = rateCurrency(input, subject.value, group);
    if (!invoice.ok) return invoice;
    invoices.push(invoice.value);
  }
  return ok(invoices);
}

/** One currency's draft invoice: charges, then discounts, prepaid credits and tax. */
function rateCurrency(input: RatingInput, { customer, entity }: Subject, { currency, plans }: CurrencyGroup): Result<Invoice> {
  const rounding = entity.rounding as RoundingMode;
  const round = (exact: Decimal) => roundToMinor(exact, currency, rounding);
  const charges = plans.flatMap(({ plan, sub }) => planCharges(input.index, plan, sub, input.period, input.usage, round));
  const discounts = discountLines(input.index.discountsByCustomer.get(customer.id) ?? [], charges, round);
  const credits = creditLines({
    grants: input.index.creditGrantsByCustomer.get(customer.id) ?? [],
    currency,
    period: input.period,
    charges,
    discounts,
    grantUsedMinor: input.grantUsedMinor,
    productName: (product) => input.index.products.get(product)?.name ?? product,
    round,
  });
  const lines: InvoiceLine[] = [...charges.map((c) => c.line), ...discounts, ...credits].map((line, i) => ({ line_no: i + 1, ...line }));
  const subtotal = sumMinor(charges.map((c) => c.line.amount_minor));
  const discountTotal = -sumMinor(discounts.map((d) => d.amount_minor));
  const creditTotal = -sumMinor(credits.map((c) => c.amount_minor));
  const rate = input.index.taxRates.get(customer.tax_jurisdiction);
  if (!rate) return fail(problem('customer.tax_jurisdiction', 'unknown_tax_rate', `no tax rate for ${customer.tax_jurisdiction}`));
  const tax = taxOf(lines, rate, currency, round);
  invariant(
    sumMinor(lines.map((l) => l.amount_minor)) === subtotal - discountTotal - creditTotal,
    'lines sum to subtotal less discounts and credits',
  );
  invariant(creditTotal >= 0n && discountTotal >= 0n, 'discounts and credits are reductions');
  const key = invoiceKey(entity.id, customer.id, currency, input.period.period);
  return ok({
    id: invoiceIdOf(key),
    key,
    kind: 'invoice',
    number: null,
    status: 'draft',
    legal_entity: entity.id,
    customer: customer.id,
    currency,
    period_start: input.period.start_date,
    period_end: input.period.end_date,
    rounding,
    lines,
    subtotal_minor: subtotal,
    discount_minor: discountTotal,
    credits_applied_minor: creditTotal,
    tax_lines: tax.tax_lines,
    tax_minor: tax.tax_minor,
    total_minor: subtotal - discountTotal - creditTotal + tax.tax_minor,
    rating_run: ratingRunId(customer.id, input.period.period, input.catalogHash, input.usageFingerprint),
    // Issued on the day after the period (the billing date), due its payment terms later.
    ...invoiceLegalFields(entity, customer, input.period.end_date),
  });
}
