// The limits that keep every accepted event billable and every invoice storable (docs/pricing.md#limits).
// Amounts are stored as bigint minor units (Postgres int8), so no amount may pass 2^63 - 1. The catalog bounds what
// one unit and one fixed amount may cost; from its prices follows, per meter, the largest value one event may carry;
// ingestion refuses a larger one. Many events still add up: the billing run checks every invoice before it writes
// anything and refuses, naming the customer and meter, one that an amount cannot hold.
import type { Catalog, Invoice, PriceModel } from './model.js';
import { Decimal, decimalText, isCurrency, minorUnits } from './money.js';
import { problem, type Problem } from './result.js';

/** The largest amount the store holds, in minor units (int8). */
export const MONEY_MINOR_MAX = 2n ** 63n - 1n;
/** Limit: the most one event's usage may bill under any price of its meter, in minor units (10 billion at 2 decimals). */
export const EVENT_AMOUNT_MINOR_MAX = 10n ** 12n;
/** Limit: the most an amount the catalog charges as it is may be (flat fee, tier flat amount, minimum commitment, credit grant), in minor units. */
export const CATALOG_AMOUNT_MINOR_MAX = 10n ** 15n;

const EVENT_MAX = new Decimal(EVENT_AMOUNT_MINOR_MAX.toString());

/** A decimal amount in major units as exact minor units (no rounding: it may be fractional). */
export function toMinorExact(amount: Decimal, currency: string): Decimal {
  return amount.times(new Decimal(10).pow(minorUnits(currency)));
}

/** What one unit of usage may cost under a price model, in major units: the largest unit (or per-package-unit) rate. */
export function largestUnitRate(model: PriceModel): Decimal {
  switch (model.model) {
    case 'flat':
      return new Decimal(0);
    case 'per_unit':
      return model.package ? new Decimal(model.unit_amount).dividedBy(model.package.size) : new Decimal(model.unit_amount);
    case 'graduated':
    case 'volume':
      return Decimal.max(0, ...model.tiers.map((t) => new Decimal(t.unit_amount)));
  }
}

/**
 * Per meter that carries a value (sum, max, latest), the largest absolute value one event may carry: the value whose
 * usage bills at most EVENT_AMOUNT_MINOR_MAX under the dearest unit rate of any price (every plan, version and tier)
 * that rates the meter. A meter no price charges per unit has no entry (only the 40-digit format limit applies).
 */
export function meterValueLimits(catalog: Catalog): Map<string, Decimal> {
  const dearest = new Map<string, Decimal>();
  for (const plan of catalog.plans) {
    if (!isCurrency(plan.currency)) continue;
    for (const price of plan.prices) {
      if (!price.meter) continue;
      for (const version of price.versions) {
        const rate = toMinorExact(largestUnitRate(version), plan.currency);
        const before = dearest.get(price.meter);
        if (rate.gt(0) && (!before || rate.gt(before))) dearest.set(price.meter, rate);
      }
    }
  }
  const limits = new Map<string, Decimal>();
  for (const meter of catalog.meters) {
    if (meter.aggregation === 'count' || meter.aggregation === 'unique_count') continue;
    const rate = dearest.get(meter.id);
    if (rate) limits.set(meter.id, EVENT_MAX.dividedBy(rate).floor());
  }
  return limits;
}

const limitDigits = new WeakMap<Decimal, number>();
function digitsOf(limit: Decimal): number {
  let digits = limitDigits.get(limit);
  if (digits === undefined) {
    digits = limit.toFixed(0).length;
    limitDigits.set(limit, digits);
  }
  return digits;
}

/** The problem for a meter value beyond its meter's limit, or undefined when it is within (or the meter has none). */
export function meterValueProblem(
  limits: ReadonlyMap<string, Decimal> | undefined,
  meter: string,
  value: string,
  path: string,
): Problem | undefined {
  const limit = limits?.get(meter);
  if (limit === undefined) return undefined;
  // Fast path on ingestion's hot loop: fewer integer digits than the (integer) limit is within it.
  const integerDigits =
    (value.startsWith('-') ? value.length - 1 : value.length) - (value.includes('.') ? value.length - value.indexOf('.') : 0);
  if (integerDigits < digitsOf(limit)) return undefined;
  if (new Decimal(value).abs().lte(limit)) return undefined;
  return problem(
    path,
    'too_large',
    `must be at most ${decimalText(limit)} in absolute value for meter ${meter}: a larger value would bill more than ${EVENT_AMOUNT_MINOR_MAX} minor units under its dearest price (docs/pricing.md#limits)`,
  );
}

/**
 * Problems of an invoice the store cannot hold: the sum of the absolute amounts of its lines and tax must fit an
 * int8, which bounds every line, subtotal, total, taxable base and any journal line grouped from them. Paths name the
 * customer and the line's meter or product.
 */
export function invoiceAmountProblems(invoice: Invoice): Problem[] {
  const abs = (n: bigint) => (n < 0n ? -n : n);
  let sum = 0n;
  // Subtotal, discounts, credits, taxable bases and the total are sums of these (with signs), so they fit too.
  for (const tax of invoice.tax_lines) sum += abs(tax.tax_minor);
  for (const line of invoice.lines) sum += abs(line.amount_minor);
  if (sum <= MONEY_MINOR_MAX) return [];
  const largest = [...invoice.lines].sort((a, b) =>
    abs(b.amount_minor) > abs(a.amount_minor) ? 1 : abs(b.amount_minor) < abs(a.amount_minor) ? -1 : 0,
  )[0];
  const what = largest ? (largest.meter ? `meter ${largest.meter}` : `product ${largest.product}`) : 'its amounts';
  return [
    problem(
      `customers.${invoice.customer}${largest ? `.meters.${largest.meter ?? largest.product}` : ''}`,
      'amount_out_of_range',
      `customer ${invoice.customer} (${invoice.currency}, ${invoice.period_start.slice(0, 7)}): ${what} bills ${largest ? largest.amount_minor : sum} minor units (quantity ${largest?.quantity ?? '?'}), beyond the ${MONEY_MINOR_MAX} minor units an amount can hold (docs/pricing.md#limits)`,
    ),
  ];
}
