// Rating one customer, legal entity, currency and billing period into a draft invoice. Pure: usage comes from a
// provider the caller fills (one call per price-version segment inside the subscription's window). The rules are in
// docs/pricing.md; every line is rounded once, here, through money.ts, and the totals are asserted.
import type {
  CreditGrant,
  Customer,
  Discount,
  Invoice,
  InvoiceLine,
  LegalEntity,
  Plan,
  Price,
  PriceVersion,
  Product,
  Subscription,
  TaxRate,
} from './model.js';
import { Decimal, decimalText, formatMajor, isCurrency, minorToMajor, parseDecimal, roundToMinor, sumMinor } from './money.js';
import { fail, invariant, ok, problem, type Problem, type Result } from './result.js';
import { priceQuantity } from './pricing.js';
import { computeTaxLines, taxableMinor } from './tax.js';
import { invoiceId, invoiceKey } from './keys.js';

// ---------- input and output ----------

/** Usage of one meter for the customer over [fromIso, toIso), pre-computed by the caller; usage_ref names the aggregate. */
export type UsageProvider = (meterId: string, fromIso: string, toIso: string) => { quantity: string; usage_ref: string };

export interface SubscribedPlan {
  subscription: Subscription;
  plan: Plan;
}

export interface GrantBalance {
  grant: CreditGrant;
  remaining_minor: bigint; // what is left of the grant as of this run, in the grant currency's minor units
}

export interface RatingInput {
  customer: Customer;
  legalEntity: LegalEntity;
  currency: string; // the invoice currency: every plan billed here is in it
  period: string; // YYYY-MM, a calendar month in UTC
  subscriptions: readonly SubscribedPlan[]; // the customer's subscriptions in this currency (inactive ones are skipped)
  products: readonly Product[]; // at least the products the plans price
  taxRate: TaxRate; // the customer's jurisdiction
  discounts: readonly Discount[]; // the customer's discounts (those outside the period are skipped)
  creditGrants: readonly GrantBalance[]; // the customer's grants (other currencies and invalid dates are skipped)
  ratingRun: string; // keys.ratingRunId(...)
  usage: UsageProvider;
}

/** What one grant gave to this invoice; the caller records it against the grant when the invoice is finalized. */
export interface CreditDrawdown {
  credit_grant: string;
  amount_minor: bigint; // positive
  remaining_before_minor: bigint;
  remaining_after_minor: bigint;
  line_nos: number[]; // the credit lines it produced
}

export interface RatedInvoice {
  invoice: Invoice;
  drawdowns: CreditDrawdown[];
}

// ---------- dates (UTC calendar days) ----------

const DAY_MS = 86_400_000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const PERIOD = /^\d{4}-(0[1-9]|1[0-2])$/;
const isDate = (text: unknown): text is string => typeof text === 'string' && DATE.test(text) && new Date(`${text}T00:00:00Z`).toISOString().slice(0, 10) === text;
const dayNumber = (date: string): number => Date.parse(`${date}T00:00:00Z`) / DAY_MS;
const dateOf = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10);
const daysBetween = (start: string, end: string): number => dayNumber(end) - dayNumber(start);
const nextDay = (date: string): string => dateOf(dayNumber(date) + 1);
const lastDay = (endExclusive: string): string => dateOf(dayNumber(endExclusive) - 1);
const isoStart = (date: string): string => `${date}T00:00:00.000Z`;
const later = (a: string, b: string): string => (a > b ? a : b);
const earlier = (a: string, b: string): string => (a < b ? a : b);
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export interface BillingPeriod {
  period: string; // YYYY-MM
  start: string; // first day, inclusive
  end: string; // first day of the next month, exclusive
  days: number;
}

/** A billing period is a calendar month in UTC: "2026-11" is [2026-11-01, 2026-12-01), 30 days. */
export function billingPeriod(period: unknown, path = 'period'): Result<BillingPeriod> {
  if (typeof period !== 'string' || !PERIOD.test(period)) return fail(problem(path, 'not_period', 'must be a month as YYYY-MM, e.g. 2026-11'));
  const [year, month] = period.split('-').map(Number) as [number, number];
  const start = new Date(Date.UTC(year, month - 1, 1)).toISOString().slice(0, 10);
  const end = new Date(Date.UTC(year, month, 1)).toISOString().slice(0, 10);
  return ok({ period, start, end, days: daysBetween(start, end) });
}

export interface Segment {
  version: PriceVersion;
  start: string; // inclusive
  end: string; // exclusive
}

/** The windows of a price's versions inside [start, end): each version is in force until the next one's effective_from. */
export function versionSegments(price: Price, start: string, end: string): Segment[] {
  const segments: Segment[] = [];
  price.versions.forEach((version, i) => {
    const from = version.effective_from === null ? start : later(version.effective_from, start);
    const nextFrom = price.versions[i + 1]?.effective_from;
    const until = nextFrom === undefined || nextFrom === null ? end : earlier(nextFrom, end);
    if (from < until) segments.push({ version, start: from, end: until });
  });
  return segments;
}

// ---------- rating ----------

type LineDraft = Omit<InvoiceLine, 'line_no'>;
interface Charge {
  line: LineDraft;
  exact: Decimal; // unrounded amount, the base of its discounts
}

const windowText = (start: string, end: string): string => `${start} to ${lastDay(end)}`;

/** Rates one customer's period into a draft invoice and the credit drawdowns it makes. */
export function rateInvoice(input: RatingInput): Result<RatedInvoice> {
  const problems: Problem[] = [];
  const { customer, legalEntity, currency } = input;
  const rounding = legalEntity.rounding;
  const round = (exact: Decimal): bigint => roundToMinor(exact, currency, rounding);
  const money = (minor: bigint): string => `${formatMajor(minor, currency)} ${currency}`;

  // ----- input checks (the catalog loader validated the catalog; these guard the caller's assembly) -----
  const periodResult = billingPeriod(input.period);
  if (!periodResult.ok) return periodResult;
  const period = periodResult.value;
  if (!isCurrency(currency)) return fail(problem('currency', 'unknown_currency', `${JSON.stringify(currency)} is not an ISO 4217 currency`));
  if (customer.legal_entity !== legalEntity.id) {
    problems.push(problem('legalEntity', 'wrong_legal_entity', `customer ${customer.id} is billed by ${customer.legal_entity}, not ${legalEntity.id}`));
  }
  if (input.taxRate.jurisdiction !== customer.tax_jurisdiction) {
    problems.push(problem('taxRate.jurisdiction', 'wrong_jurisdiction', `customer ${customer.id} is taxed in ${customer.tax_jurisdiction}, not ${input.taxRate.jurisdiction}`));
  }
  const products = new Map(input.products.map((p) => [p.id, p]));
  input.subscriptions.forEach(({ subscription, plan }, i) => {
    const path = `subscriptions[${i}]`;
    if (subscription.customer !== customer.id) problems.push(problem(`${path}.customer`, 'wrong_customer', `belongs to ${subscription.customer}, not ${customer.id}`));
    if (subscription.plan !== plan.id) problems.push(problem(`${path}.plan`, 'wrong_plan', `names plan ${subscription.plan} but plan ${plan.id} was given`));
    if (plan.currency !== currency) problems.push(problem(`${path}.plan.currency`, 'currency_mismatch', `plan ${plan.id} is in ${plan.currency}, the invoice in ${currency}`));
    if (!isDate(subscription.start)) problems.push(problem(`${path}.start`, 'not_date', 'must be a date YYYY-MM-DD'));
    if (subscription.end !== undefined && !isDate(subscription.end)) problems.push(problem(`${path}.end`, 'not_date', 'must be a date YYYY-MM-DD'));
    if (plan.minimum_commitment !== undefined) {
      const parsed = parseDecimal(plan.minimum_commitment, `${path}.plan.minimum_commitment`);
      if (!parsed.ok) problems.push(...parsed.problems);
    }
    plan.prices.forEach((price, j) => {
      const pricePath = `${path}.plan.prices[${j}]`;
      if (!products.has(price.product)) problems.push(problem(`${pricePath}.product`, 'unknown_product', `no product ${price.product} was given`));
      if (price.versions.length === 0) problems.push(problem(`${pricePath}.versions`, 'no_versions', 'a price has at least one version'));
      price.versions.forEach((version, k) => {
        if (version.model !== 'flat' && price.meter === undefined) problems.push(problem(`${pricePath}.meter`, 'missing_meter', `a ${version.model} price needs a meter`));
        if (version.effective_from !== null && !isDate(version.effective_from)) {
          problems.push(problem(`${pricePath}.versions[${k}].effective_from`, 'not_date', 'must be a date YYYY-MM-DD or null'));
        }
      });
    });
  });
  const discounts: Array<{ discount: Discount; percent: Decimal; endExclusive: string }> = [];
  input.discounts.forEach((discount, i) => {
    const path = `discounts[${i}]`;
    if (discount.customer !== customer.id) problems.push(problem(`${path}.customer`, 'wrong_customer', `belongs to ${discount.customer}, not ${customer.id}`));
    if (!isDate(discount.from)) problems.push(problem(`${path}.from`, 'not_date', 'must be a date YYYY-MM-DD'));
    if (!isDate(discount.to)) problems.push(problem(`${path}.to`, 'not_date', 'must be a date YYYY-MM-DD'));
    const percent = parseDecimal(discount.percent_off, `${path}.percent_off`);
    if (!percent.ok) problems.push(...percent.problems);
    else if (percent.value.greaterThan(100)) problems.push(problem(`${path}.percent_off`, 'out_of_range', 'must be at most 100'));
    else if (isDate(discount.to)) discounts.push({ discount, percent: percent.value, endExclusive: nextDay(discount.to) });
  });
  input.creditGrants.forEach(({ grant, remaining_minor }, i) => {
    const path = `creditGrants[${i}]`;
    if (grant.customer !== customer.id) problems.push(problem(`${path}.grant.customer`, 'wrong_customer', `belongs to ${grant.customer}, not ${customer.id}`));
    if (!isDate(grant.granted)) problems.push(problem(`${path}.grant.granted`, 'not_date', 'must be a date YYYY-MM-DD'));
    if (!isDate(grant.expires)) problems.push(problem(`${path}.grant.expires`, 'not_date', 'must be a date YYYY-MM-DD'));
    if (remaining_minor < 0n) problems.push(problem(`${path}.remaining_minor`, 'negative', 'a grant balance is never below zero'));
    if (isCurrency(grant.currency)) {
      const amount = parseDecimal(grant.amount, `${path}.grant.amount`);
      if (!amount.ok) problems.push(...amount.problems);
      else if (remaining_minor > roundToMinor(amount.value, grant.currency, rounding)) {
        problems.push(problem(`${path}.remaining_minor`, 'exceeds_grant', `${remaining_minor} minor units left of a grant of ${grant.amount} ${grant.currency}`));
      }
    } else {
      problems.push(problem(`${path}.grant.currency`, 'unknown_currency', `${JSON.stringify(grant.currency)} is not an ISO 4217 currency`));
    }
  });
  if (problems.length > 0) return fail(...problems);

  // ----- charges: per subscription (by start, plan, end), per price in plan order, per version segment -----
  const active = input.subscriptions
    .map(({ subscription, plan }) => ({
      subscription,
      plan,
      start: later(subscription.start, period.start),
      end: subscription.end === undefined ? period.end : earlier(subscription.end, period.end),
    }))
    .filter((s) => s.start < s.end)
    .sort((a, b) => compare(a.subscription.start, b.subscription.start) || compare(a.plan.id, b.plan.id) || compare(a.subscription.end ?? '~', b.subscription.end ?? '~'));
  if (active.length === 0) {
    return fail(problem('subscriptions', 'no_active_subscription', `customer ${customer.id} has no subscription in ${currency} active in ${period.period}`));
  }

  const charges: Charge[] = [];
  for (const { plan, start, end } of active) {
    const activeDays = daysBetween(start, end);
    const meteredPerProduct = new Map<string, number>();
    for (const price of plan.prices) if (price.meter !== undefined) meteredPerProduct.set(price.product, (meteredPerProduct.get(price.product) ?? 0) + 1);
    let usageMinor = 0n;

    for (const price of plan.prices) {
      const product = products.get(price.product)!;
      for (const segment of versionSegments(price, start, end)) {
        const version = segment.version;
        const segmentDays = daysBetween(segment.start, segment.end);
        const base = {
          product: product.id,
          price_id: price.id,
          price_version: version.version_id,
          period_start: segment.start,
          period_end: segment.end,
          taxable: true,
        };
        if (version.model === 'flat') {
          // Flat fees are prorated by days: amount × days in the segment ÷ days in the month, rounded once.
          const exact = new Decimal(version.amount).times(segmentDays).dividedBy(period.days);
          const prorated = segmentDays < period.days ? ` (prorated ${segmentDays}/${period.days} days)` : '';
          charges.push({
            exact,
            line: {
              ...base,
              kind: 'flat',
              meter: null,
              description: `${product.name} — ${windowText(segment.start, segment.end)}${prorated}`,
              quantity: '1',
              unit_amount: version.amount,
              tiers: [],
              amount_minor: round(exact),
            },
          });
          continue;
        }
        const meter = price.meter!;
        const usage = input.usage(meter, isoStart(segment.start), isoStart(segment.end));
        const path = `usage[${meter}][${segment.start}/${segment.end}]`;
        const quantity = parseDecimal(usage.quantity, `${path}.quantity`, { allowNegative: true });
        if (!quantity.ok) {
          problems.push(...quantity.problems);
          continue;
        }
        const plainPerUnit = version.model === 'per_unit' && version.package === undefined;
        if (quantity.value.isNegative() && !quantity.value.isZero() && !plainPerUnit) {
          problems.push(problem(`${path}.quantity`, 'negative_usage', `a ${version.model === 'per_unit' ? 'packaged' : version.model} price cannot rate negative usage ${usage.quantity}`));
          continue;
        }
        const priced = priceQuantity(version, quantity.value);
        const meterText = (meteredPerProduct.get(product.id) ?? 0) > 1 ? ` (${meter})` : '';
        const packages = version.model === 'per_unit' && version.package !== undefined ? ` (${decimalText(priced.quantity_billed)} packages of ${version.package.size})` : '';
        const amountMinor = round(priced.amount);
        usageMinor += amountMinor;
        charges.push({
          exact: priced.amount,
          line: {
            ...base,
            kind: 'usage',
            meter,
            description: `${product.name}${meterText} — ${windowText(segment.start, segment.end)}${packages}`,
            quantity: decimalText(quantity.value),
            unit_amount: version.model === 'per_unit' ? version.unit_amount : null,
            tiers: priced.tiers,
            amount_minor: amountMinor,
            usage_ref: usage.usage_ref,
          },
        });
      }
    }

    // Minimum commitment: prorated by active days; when the usage charges fall short, one true-up line.
    if (plan.minimum_commitment !== undefined) {
      const commitmentMinor = round(new Decimal(plan.minimum_commitment).times(activeDays).dividedBy(period.days));
      if (usageMinor < commitmentMinor) {
        const product = products.get(plan.prices.find((p) => p.versions.every((v) => v.model === 'flat'))?.product ?? plan.prices[0]?.product ?? '');
        if (product === undefined) {
          problems.push(problem(`plans.${plan.id}.prices`, 'no_product_for_true_up', `plan ${plan.id} has a minimum commitment but no price to book a true-up to`));
          continue;
        }
        const prorated = activeDays < period.days ? `, prorated ${activeDays}/${period.days} days` : '';
        const shortfall = commitmentMinor - usageMinor;
        charges.push({
          exact: minorToMajor(shortfall, currency),
          line: {
            kind: 'minimum_true_up',
            product: product.id,
            meter: null,
            price_id: null,
            price_version: null,
            description: `Minimum commitment true-up — ${windowText(start, end)} (commitment ${money(commitmentMinor)}${prorated}; usage ${money(usageMinor)})`,
            quantity: '1',
            unit_amount: null,
            tiers: [],
            amount_minor: shortfall,
            period_start: start,
            period_end: end,
            taxable: true,
          },
        });
      }
    }
  }
  if (problems.length > 0) return fail(...problems);

  // ----- discounts: percent off a product's flat and usage lines, prorated by the days of the line inside the range -----
  discounts.sort(
    (a, b) =>
      compare(a.discount.from, b.discount.from) ||
      compare(a.discount.to, b.discount.to) ||
      compare(a.discount.product, b.discount.product) ||
      a.percent.comparedTo(b.percent),
  );
  const discountLines: LineDraft[] = [];
  const discountedMinor = new Map<Charge, bigint>(); // per charge: what its discount lines took (positive)
  for (const charge of charges) {
    const { line } = charge;
    if (line.kind === 'minimum_true_up' || line.amount_minor <= 0n) continue;
    for (const { discount, percent, endExclusive } of discounts) {
      if (discount.product !== line.product) continue;
      const from = later(line.period_start, discount.from);
      const to = earlier(line.period_end, endExclusive);
      if (from >= to) continue;
      const overlapDays = daysBetween(from, to);
      const lineDays = daysBetween(line.period_start, line.period_end);
      const taken = discountedMinor.get(charge) ?? 0n;
      const computed = round(charge.exact.times(percent).dividedBy(100).times(overlapDays).dividedBy(lineDays));
      const amount = computed < line.amount_minor - taken ? computed : line.amount_minor - taken; // never below zero
      if (amount <= 0n) continue;
      discountedMinor.set(charge, taken + amount);
      const partial = overlapDays < lineDays ? `, for ${windowText(from, to)} (${overlapDays}/${lineDays} days)` : '';
      discountLines.push({
        kind: 'discount',
        product: line.product,
        meter: line.meter,
        price_id: line.price_id,
        price_version: line.price_version,
        description: `${decimalText(percent)}% off ${line.description}${partial}`,
        quantity: '1',
        unit_amount: null,
        tiers: [],
        amount_minor: -amount,
        period_start: from,
        period_end: to,
        taxable: line.taxable,
      });
    }
  }

  // ----- prepaid credits: against usage charges net of their discounts, oldest grant first, never below zero -----
  const netUsage = new Map<string, bigint>(); // product -> usage net of discounts, in line order
  const productTaxable = new Map<string, boolean>();
  for (const charge of charges) {
    if (charge.line.kind !== 'usage') continue;
    const net = charge.line.amount_minor - (discountedMinor.get(charge) ?? 0n);
    netUsage.set(charge.line.product, (netUsage.get(charge.line.product) ?? 0n) + net);
    productTaxable.set(charge.line.product, (productTaxable.get(charge.line.product) ?? false) || charge.line.taxable);
  }
  const grants = input.creditGrants
    .filter(({ grant, remaining_minor }) => grant.currency === currency && grant.granted < period.end && grant.expires >= period.start && remaining_minor > 0n)
    .slice()
    .sort((a, b) => compare(a.grant.granted, b.grant.granted) || compare(a.grant.id, b.grant.id));
  const creditLines: LineDraft[] = [];
  const drawn: Array<{ grant: GrantBalance; amount: bigint; lines: LineDraft[] }> = [];
  for (const balance of grants) {
    let available = balance.remaining_minor;
    const lines: LineDraft[] = [];
    for (const [productId, net] of netUsage) {
      if (available <= 0n) break;
      if (net <= 0n) continue;
      const draw = net < available ? net : available;
      available -= draw;
      netUsage.set(productId, net - draw);
      const line: LineDraft = {
        kind: 'credit',
        product: productId,
        meter: null,
        price_id: null,
        price_version: null,
        description: `Prepaid credit ${balance.grant.id} (granted ${balance.grant.granted}, expires ${balance.grant.expires}) — ${products.get(productId)!.name}`,
        quantity: '1',
        unit_amount: null,
        tiers: [],
        amount_minor: -draw,
        period_start: period.start,
        period_end: period.end,
        taxable: productTaxable.get(productId) ?? true,
        credit_grant: balance.grant.id,
      };
      lines.push(line);
      creditLines.push(line);
    }
    if (lines.length > 0) drawn.push({ grant: balance, amount: balance.remaining_minor - available, lines });
  }

  // ----- lines, tax, totals -----
  const drafts = [...charges.map((c) => c.line), ...discountLines, ...creditLines];
  const lines: InvoiceLine[] = drafts.map((line, i) => ({ line_no: i + 1, ...line }));
  const lineNo = new Map<LineDraft, number>(drafts.map((d, i) => [d, i + 1]));
  const subtotal = sumMinor(charges.map((c) => c.line.amount_minor));
  const discountTotal = -sumMinor(discountLines.map((l) => l.amount_minor));
  const creditTotal = -sumMinor(creditLines.map((l) => l.amount_minor));
  const taxed = computeTaxLines(taxableMinor(lines), [input.taxRate], currency, rounding);
  if (!taxed.ok) return fail(...taxed.problems.map((p) => ({ ...p, path: p.path.replace(/^tax_rates\[0\]/, 'taxRate') })));
  const taxTotal = sumMinor(taxed.value.map((t) => t.tax_minor));
  const total = subtotal - discountTotal - creditTotal + taxTotal;

  invariant(discountTotal >= 0n && creditTotal >= 0n, 'discounts and credits are reductions');
  invariant(discountLines.every((l) => l.amount_minor < 0n) && creditLines.every((l) => l.amount_minor < 0n), 'discount and credit lines are negative');
  invariant(sumMinor(lines.map((l) => l.amount_minor)) === subtotal - discountTotal - creditTotal, 'lines sum to subtotal - discount - credits');
  invariant(total === subtotal - discountTotal - creditTotal + taxTotal, 'total = subtotal - discount - credits + tax');
  invariant(creditLines.every((l) => netUsage.get(l.product)! >= 0n), 'credits never take the usage of a product below zero');
  invariant(drawn.every((d) => d.amount > 0n && d.amount <= d.grant.remaining_minor), 'a grant never gives more than is left of it');

  const key = invoiceKey(legalEntity.id, customer.id, currency, period.period);
  const invoice: Invoice = {
    id: invoiceId(key),
    key,
    kind: 'invoice',
    number: null,
    status: 'draft',
    legal_entity: legalEntity.id,
    customer: customer.id,
    currency,
    period_start: period.start,
    period_end: period.end,
    rounding,
    lines,
    subtotal_minor: subtotal,
    discount_minor: discountTotal,
    credits_applied_minor: creditTotal,
    tax_lines: taxed.value,
    tax_minor: taxTotal,
    total_minor: total,
    rating_run: input.ratingRun,
  };
  const drawdowns: CreditDrawdown[] = drawn.map((d) => ({
    credit_grant: d.grant.grant.id,
    amount_minor: d.amount,
    remaining_before_minor: d.grant.remaining_minor,
    remaining_after_minor: d.grant.remaining_minor - d.amount,
    line_nos: d.lines.map((l) => lineNo.get(l)!),
  }));
  return ok({ invoice, drawdowns });
}
