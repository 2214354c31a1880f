// Rating one customer for one billing period into draft invoices (one per currency). Pure: usage comes from a
// provider the caller fills; the rules are in docs/pricing.md and every amount is rounded once, here, via money.ts.
import { invoiceIdOf, invoiceKey, ratingRunId } from './keys.js';
import type { CatalogIndex } from './catalog.js';
import { contentHash } from './canonical.js';
import type { Catalog, Invoice, InvoiceLine, Plan, Price, PriceVersion, Subscription, TaxLine } from './model.js';
import { Decimal, decimalText, roundToMinor, sumMinor, minorToMajor, type RoundingMode } from './money.js';
import { fail, invariant, ok, problem, type Result } from './result.js';
import { priceQuantity } from './price-models.js';
import { invoiceLegalFields } from './invoice-terms.js';

export type UsageProvider = (meter: string, fromIso: string, toIso: string) => { quantity: string; usage_ref: string };

export interface RatingInput {
  catalog: Catalog;
  index: CatalogIndex;
  catalogHash: string;
  customer: string;
  period: { period: string; start_date: string; end_date: string }; // end exclusive
  grantUsedMinor: ReadonlyMap<string, bigint>; // drawn by earlier finalized invoices
  usage: UsageProvider;
  usageFingerprint: string; // hash of the usage aggregates read; part of the run id
}

// ---------- keys ----------

/** Limit: decimal places of a prorated flat fee's quantity (the share of the period it covers). */
export const PRORATION_QUANTITY_PLACES = 6;

export { invoiceIdOf, invoiceKey, ratingRunId } from './keys.js';

// ---------- dates ----------

const DAY_MS = 86_400_000;
const dayNumber = (date: string) => Date.parse(`${date}T00:00:00Z`) / DAY_MS;
const dateOf = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10);
const iso = (date: string) => `${date}T00:00:00.000Z`;
const maxDate = (a: string, b: string) => (a > b ? a : b);
const minDate = (a: string, b: string) => (a < b ? a : b);
const lastDay = (endExclusive: string) => dateOf(dayNumber(endExclusive) - 1);

interface Segment {
  version: PriceVersion;
  start: string; // inclusive
  end: string; // exclusive
}

/** The version windows of a price inside [start, end): each version runs until the next one's effective_from. */
export function versionSegments(price: Price, start: string, end: string): Segment[] {
  const segments: Segment[] = [];
  price.versions.forEach((version, i) => {
    const from = version.effective_from ?? '0000-01-01';
    const until = price.versions[i + 1]?.effective_from ?? '9999-12-31';
    const s = maxDate(from, start);
    const e = minDate(until, end);
    if (s < e) segments.push({ version, start: s, end: e });
  });
  return segments;
}

// ---------- rating ----------

interface ExactLine {
  line: Omit<InvoiceLine, 'line_no'>;
  exact: Decimal;
}

export function rateCustomer(input: RatingInput): Result<Invoice[]> {
  const customer = input.index.customers.get(input.customer);
  if (!customer) return fail(problem('customer', 'unknown_customer', `no customer ${input.customer}`));
  const entity = input.index.legalEntities.get(customer.legal_entity);
  if (!entity) return fail(problem('customer.legal_entity', 'unknown_legal_entity', `no legal entity ${customer.legal_entity}`));
  const { start_date: periodStart, end_date: periodEnd } = input.period;
  const periodDays = dayNumber(periodEnd) - dayNumber(periodStart);
  const runId = ratingRunId(customer.id, input.period.period, input.catalogHash, input.usageFingerprint);

  const subscriptions = (input.index.subscriptionsByCustomer.get(customer.id) ?? [])
    .filter((s: Subscription) => s.start < periodEnd && (!s.end || s.end > periodStart))
    .slice()
    .sort((a: Subscription, b: Subscription) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.plan < b.plan ? -1 : 1));

  const byCurrency = new Map<string, { plans: Array<{ plan: Plan; sub: Subscription }> }>();
  for (const sub of subscriptions) {
    const plan = input.index.plans.get(sub.plan);
    if (!plan) return fail(problem('subscription.plan', 'unknown_plan', `no plan ${sub.plan}`));
    const group = byCurrency.get(plan.currency) ?? { plans: [] };
    group.plans.push({ plan, sub });
    byCurrency.set(plan.currency, group);
  }

  const invoices: Invoice[] = [];
  for (const [currency, group] of [...byCurrency.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const rounding = entity.rounding;
    const round = (exact: Decimal) => roundToMinor(exact, currency, rounding);
    const charges: ExactLine[] = [];

    for (const { plan, sub } of group.plans) {
      const activeStart = maxDate(sub.start, periodStart);
      const activeEnd = sub.end ? minDate(sub.end, periodEnd) : periodEnd;
      const activeDays = dayNumber(activeEnd) - dayNumber(activeStart);
      const planUsage: ExactLine[] = [];
      for (const price of plan.prices) {
        const product = input.index.products.get(price.product)!;
        const segments = versionSegments(price, activeStart, activeEnd);
        for (const segment of segments) {
          const windowText = segments.length > 1 || activeDays < periodDays ? ` (${segment.start} to ${lastDay(segment.end)})` : '';
          if (segment.version.model === 'flat') {
            const segmentDays = dayNumber(segment.end) - dayNumber(segment.start);
            // Flat fees are prorated by days: amount × days in the segment / days in the period, rounded once.
            const exact = new Decimal(segment.version.amount).times(segmentDays).dividedBy(periodDays);
            const prorated = segmentDays < periodDays;
            charges.push({
              exact,
              line: {
                kind: 'flat',
                product: product.id,
                meter: null,
                price_id: price.id,
                price_version: segment.version.version_id,
                description: `${product.name}${prorated ? ` (prorated ${segmentDays} of ${periodDays} days)` : ''}${windowText}`,
                // The share of the period, to 6 places for people (19/31 has no end); the amount uses the exact ratio.
                quantity: prorated
                  ? decimalText(
                      new Decimal(segmentDays).dividedBy(periodDays).toDecimalPlaces(PRORATION_QUANTITY_PLACES, Decimal.ROUND_HALF_UP),
                    )
                  : '1',
                unit_amount: segment.version.amount,
                tiers: [],
                amount_minor: round(exact),
                period_start: segment.start,
                period_end: segment.end,
                taxable: true,
              },
            });
            continue;
          }
          invariant(price.meter, `metered price ${price.id} has a meter`);
          const usage = input.usage(price.meter, iso(segment.start), iso(segment.end));
          const priced = priceQuantity(segment.version, new Decimal(usage.quantity));
          const line: ExactLine = {
            exact: priced.amount,
            line: {
              kind: 'usage',
              product: product.id,
              meter: price.meter,
              price_id: price.id,
              price_version: segment.version.version_id,
              description: `${product.name}: ${price.meter}${windowText}`,
              quantity: usage.quantity,
              unit_amount: segment.version.model === 'per_unit' ? segment.version.unit_amount : null,
              tiers: priced.tiers,
              amount_minor: round(priced.amount),
              period_start: segment.start,
              period_end: segment.end,
              taxable: true,
              usage_ref: usage.usage_ref,
            },
          };
          if (segment.version.model === 'per_unit' && segment.version.package) {
            // Billed in packages: the line reads packages × price of a package = amount; the usage stays in `quantity`.
            const { size, round: direction } = segment.version.package;
            const packages = decimalText(priced.quantity_billed);
            line.line.package = { size, round: direction, quantity: packages };
            line.line.description += ` (${packages} ${packages === '1' ? 'package' : 'packages'} of ${size}: ${usage.quantity} rounded ${direction})`;
          }
          charges.push(line);
          planUsage.push(line);
        }
      }
      // Minimum commitment: prorated by active days like the flat fee; a shortfall of usage charges is one true-up line.
      if (plan.minimum_commitment !== undefined) {
        const minimum = round(new Decimal(plan.minimum_commitment).times(activeDays).dividedBy(periodDays));
        const usageTotal = sumMinor(planUsage.map((l) => l.line.amount_minor));
        if (usageTotal < minimum) {
          const flatProduct = plan.prices.find((p) => !p.meter)?.product ?? plan.prices[0]!.product;
          const shortfall = minimum - usageTotal;
          charges.push({
            exact: minorToMajor(shortfall, currency),
            line: {
              kind: 'minimum_true_up',
              product: flatProduct,
              meter: null,
              price_id: null,
              price_version: null,
              description: `Minimum commitment true-up (${plan.minimum_commitment} ${currency}${activeDays < periodDays ? `, prorated ${activeDays} of ${periodDays} days` : ''})`,
              quantity: '1',
              unit_amount: null,
              tiers: [],
              amount_minor: shortfall,
              period_start: activeStart,
              period_end: activeEnd,
              taxable: true,
            },
          });
        }
      }
    }

    // Discounts: percent off a product's lines, prorated by the days of each line's window inside the discount range.
    const discounts: Array<Omit<InvoiceLine, 'line_no'>> = [];
    for (const discount of input.index.discountsByCustomer.get(customer.id) ?? []) {
      for (const { exact, line } of charges) {
        if (line.product !== discount.product || line.kind === 'minimum_true_up') continue;
        const overlapStart = maxDate(line.period_start, discount.from);
        const overlapEnd = minDate(line.period_end, dateOf(dayNumber(discount.to) + 1));
        const overlapDays = dayNumber(overlapEnd) - dayNumber(overlapStart);
        if (overlapDays <= 0) continue;
        const lineDays = dayNumber(line.period_end) - dayNumber(line.period_start);
        const amount = round(exact.times(discount.percent_off).dividedBy(100).times(overlapDays).dividedBy(lineDays));
        if (amount === 0n) continue;
        discounts.push({
          kind: 'discount',
          product: line.product,
          meter: line.meter,
          price_id: line.price_id,
          price_version: line.price_version,
          description: `${discount.percent_off}% off ${line.description}`,
          quantity: '1',
          unit_amount: null,
          tiers: [],
          amount_minor: -amount,
          period_start: overlapStart,
          period_end: overlapEnd,
          taxable: true,
        });
      }
    }

    // Prepaid credits: drawn against usage charges net of their discounts, oldest grant first, never below zero.
    const usageNet = new Map<string, bigint>(); // product -> net usage amount
    for (const { line } of charges)
      if (line.kind === 'usage') usageNet.set(line.product, (usageNet.get(line.product) ?? 0n) + line.amount_minor);
    for (const d of discounts) if (d.meter !== null) usageNet.set(d.product, (usageNet.get(d.product) ?? 0n) + d.amount_minor);
    const credits: Array<Omit<InvoiceLine, 'line_no'>> = [];
    const grants = (input.index.creditGrantsByCustomer.get(customer.id) ?? [])
      .filter((g) => g.currency === currency && g.granted < periodEnd && g.expires >= periodStart)
      .slice()
      .sort((a, b) => (a.granted < b.granted ? -1 : a.granted > b.granted ? 1 : a.id < b.id ? -1 : 1));
    for (const grant of grants) {
      let available = roundToMinor(new Decimal(grant.amount), currency, rounding) - (input.grantUsedMinor.get(grant.id) ?? 0n);
      for (const [product, net] of [...usageNet.entries()]) {
        if (available <= 0n) break;
        const draw = net < available ? net : available;
        if (draw <= 0n) continue;
        available -= draw;
        usageNet.set(product, net - draw);
        credits.push({
          kind: 'credit',
          product,
          meter: null,
          price_id: null,
          price_version: null,
          description: `Prepaid credit ${grant.id} applied to ${input.index.products.get(product)?.name ?? product} (granted ${grant.granted}, expires ${grant.expires})`,
          quantity: '1',
          unit_amount: null,
          tiers: [],
          amount_minor: -draw,
          period_start: periodStart,
          period_end: periodEnd,
          taxable: true,
          credit_grant: grant.id,
        });
      }
    }

    const all = [...charges.map((c) => c.line), ...discounts, ...credits];
    const lines: InvoiceLine[] = all.map((line, i) => ({ line_no: i + 1, ...line }));
    const subtotal = sumMinor(charges.map((c) => c.line.amount_minor));
    const discountTotal = -sumMinor(discounts.map((d) => d.amount_minor));
    const creditTotal = -sumMinor(credits.map((c) => c.amount_minor));

    // Tax: exclusive, on the taxable subtotal after discounts and credits, rounded once per rate.
    const taxable = sumMinor(lines.filter((l) => l.taxable).map((l) => l.amount_minor));
    const rate = input.index.taxRates.get(customer.tax_jurisdiction);
    if (!rate) return fail(problem('customer.tax_jurisdiction', 'unknown_tax_rate', `no tax rate for ${customer.tax_jurisdiction}`));
    const taxMinor = round(minorToMajor(taxable, currency).times(rate.rate));
    const taxLines: TaxLine[] = [{ jurisdiction: rate.jurisdiction, rate: rate.rate, taxable_minor: taxable, tax_minor: taxMinor }];
    const total = subtotal - discountTotal - creditTotal + taxMinor;
    invariant(
      sumMinor(lines.map((l) => l.amount_minor)) === subtotal - discountTotal - creditTotal,
      'lines sum to subtotal less discounts and credits',
    );
    invariant(creditTotal >= 0n && discountTotal >= 0n, 'discounts and credits are reductions');

    const key = invoiceKey(entity.id, customer.id, currency, input.period.period);
    invoices.push({
      id: invoiceIdOf(key),
      key,
      kind: 'invoice',
      number: null,
      status: 'draft',
      legal_entity: entity.id,
      customer: customer.id,
      currency,
      period_start: periodStart,
      period_end: periodEnd,
      rounding: rounding as RoundingMode,
      lines,
      subtotal_minor: subtotal,
      discount_minor: discountTotal,
      credits_applied_minor: creditTotal,
      tax_lines: taxLines,
      tax_minor: taxMinor,
      total_minor: total,
      rating_run: runId,
      // Issued on the day after the period (the billing date), due its payment terms later.
      ...invoiceLegalFields(entity, customer, periodEnd),
    });
  }
  return ok(invoices);
}

export { contentHash };
