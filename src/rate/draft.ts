// One currency's draft invoice for a customer's period: the plans' charges, then discounts, prepaid credits and
// tax, the totals and the invoice's keys (domain/keys.ts).
import { invoiceIdOf, invoiceKey, ratingRunId } from '../domain/keys.js';
import { invoiceLegalFields } from '../domain/invoice-terms.js';
import type { Invoice, InvoiceLine } from '../domain/model.js';
import { roundToMinor, sumMinor, type Decimal, type RoundingMode } from '../domain/money.js';
import { fail, invariant, ok, problem, type Result } from '../domain/result.js';
import { planCharges } from './charges.js';
import { creditLines } from './credits.js';
import { discountLines } from './discounts.js';
import type { CurrencyGroup, RatingInput, Subject } from './lines.js';
import { taxOf, taxRateInForce } from './tax.js';

/** One currency's draft invoice: charges, then discounts, prepaid credits and tax. */
export function draftInvoice(input: RatingInput, { customer, entity }: Subject, { currency, plans }: CurrencyGroup): Result<Invoice> {
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
  const taxRate = input.index.taxRates.get(customer.tax_jurisdiction);
  if (!taxRate) return fail(problem('customer.tax_jurisdiction', 'unknown_tax_rate', `no tax rate for ${customer.tax_jurisdiction}`));
  // The rate in force on the period's first day: one rate per invoice (an ERP document carries one tax code).
  const rate = taxRateInForce(taxRate, input.period.start_date);
  if (!rate.ok) return rate;
  const tax = taxOf(lines, rate.value, currency, round);
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
