// The price models, exact and unrounded: flat, per_unit (with packages), graduated and volume (docs/pricing.md).
// Pure. Boundaries as Stripe and OpenMeter draw them: `up_to` is inclusive, so with `up_to: "5"` a quantity of 5 stays
// in the first tier and 5.001 reaches the second. Rounding to minor units is the caller's, once per invoice line.
import type { PriceModel, Tier, TierApplied } from './model.js';
import { Decimal, decimalText, roundDecimal } from './money.js';
import { invariant } from './result.js';

export interface PricedQuantity {
  amount: Decimal; // exact, major units
  tiers: TierApplied[]; // graduated: every tier that applies (the first always); volume: the tier holding the total
  quantity_billed: Decimal; // whole packages for a packaged per_unit price, 1 for flat, else the quantity
}

const ZERO = new Decimal(0);

/** Prices a quantity with one price model, exactly. Negative quantities are allowed only for flat and plain per_unit. */
export function priceQuantity(model: PriceModel, quantity: Decimal): PricedQuantity {
  switch (model.model) {
    case 'flat':
      return { amount: new Decimal(model.amount), tiers: [], quantity_billed: new Decimal(1) };
    case 'per_unit': {
      if (model.package === undefined) return { amount: quantity.times(model.unit_amount), tiers: [], quantity_billed: quantity };
      invariant(!quantity.isNegative() || quantity.isZero(), 'a packaged per_unit price is never given a negative quantity');
      const size = new Decimal(model.package.size);
      invariant(size.greaterThan(0), 'a package size is positive');
      const packages = roundDecimal(quantity.dividedBy(size), 0, model.package.round);
      return { amount: packages.times(model.unit_amount), tiers: [], quantity_billed: packages };
    }
    case 'graduated':
      return { ...graduated(model.tiers, quantity), quantity_billed: quantity };
    case 'volume':
      return { ...volume(model.tiers, quantity), quantity_billed: quantity };
  }
}

/** Tiers ascending by `up_to`, the last (and only the last) open-ended. Checked by the catalog loader; asserted here. */
function assertTiers(tiers: readonly Tier[], quantity: Decimal): void {
  invariant(tiers.length > 0, 'a tiered price has at least one tier');
  invariant(!quantity.isNegative() || quantity.isZero(), 'a tiered price is never given a negative quantity');
  let lower = ZERO;
  tiers.forEach((tier, i) => {
    const last = i === tiers.length - 1;
    invariant((tier.up_to === null) === last, 'only the last tier is open-ended');
    if (tier.up_to !== null) {
      invariant(new Decimal(tier.up_to).greaterThan(lower), 'tier bounds ascend');
      lower = new Decimal(tier.up_to);
    }
  });
}

const applied = (i: number, from: Decimal, tier: Tier, units: Decimal, flat: Decimal, amount: Decimal): TierApplied => ({
  tier: i + 1,
  from: decimalText(from),
  up_to: tier.up_to,
  quantity: decimalText(units),
  unit_amount: tier.unit_amount,
  flat_amount: decimalText(flat),
  amount: decimalText(amount),
});

/**
 * Each tier prices the units inside (lower, up_to]. A tier is reached when the quantity exceeds its lower bound; its
 * flat_amount is added once then. The first tier counts as reached even at zero usage (its flat_amount is a base fee).
 */
function graduated(tiers: readonly Tier[], quantity: Decimal): { amount: Decimal; tiers: TierApplied[] } {
  assertTiers(tiers, quantity);
  const result: TierApplied[] = [];
  let amount = ZERO;
  let lower = ZERO;
  tiers.forEach((tier, i) => {
    const upper = tier.up_to === null ? null : new Decimal(tier.up_to);
    const reached = i === 0 || quantity.greaterThan(lower);
    if (reached) {
      const top = upper === null ? quantity : Decimal.min(quantity, upper);
      const units = top.greaterThan(lower) ? top.minus(lower) : ZERO;
      const flat = new Decimal(tier.flat_amount ?? '0');
      const tierAmount = units.times(tier.unit_amount).plus(flat);
      result.push(applied(i, lower, tier, units, flat, tierAmount));
      amount = amount.plus(tierAmount);
    }
    if (upper !== null) lower = upper;
  });
  return { amount, tiers: result };
}

/** Every unit at the tier holding the total (the first whose `up_to` is at least the quantity), plus its flat_amount. */
function volume(tiers: readonly Tier[], quantity: Decimal): { amount: Decimal; tiers: TierApplied[] } {
  assertTiers(tiers, quantity);
  const index = tiers.findIndex((t) => t.up_to === null || quantity.lessThanOrEqualTo(t.up_to));
  invariant(index >= 0, 'the last tier is open-ended, so some tier holds every quantity');
  const tier = tiers[index]!;
  const from = index === 0 ? ZERO : new Decimal(tiers[index - 1]!.up_to!);
  const flat = new Decimal(tier.flat_amount ?? '0');
  const amount = quantity.times(tier.unit_amount).plus(flat);
  return { amount, tiers: [applied(index, from, tier, quantity, flat, amount)] };
}
