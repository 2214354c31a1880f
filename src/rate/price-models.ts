// The price models, exact and unrounded: flat, per_unit (with packages), graduated and volume; and a usage line priced by one.
// Semantics from the catalog's comments (docs/pricing.md): `up_to` is inclusive; graduated charges the first
// tier's flat_amount even at zero usage and a later tier's flat_amount once any unit reaches it; volume prices every
// unit at the tier holding the total, plus that tier's flat_amount.
import type { Price, PriceModel, PriceVersion, Product, Tier, TierApplied } from '../domain/model.js';
import { Decimal, decimalText, roundDecimal } from '../domain/money.js';
import { invariant } from '../domain/result.js';
import type { ExactLine, Round, WindowQuantity } from './lines.js';

export interface Priced {
  amount: Decimal; // exact, major units
  quantity_billed: Decimal; // packages for a packaged per_unit price, else the quantity
  tiers: TierApplied[];
}

const ZERO = new Decimal(0);

export function priceQuantity(model: PriceModel, quantity: Decimal): Priced {
  switch (model.model) {
    case 'flat':
      return { amount: new Decimal(model.amount), quantity_billed: new Decimal(1), tiers: [] };
    case 'per_unit': {
      if (model.package) {
        const packages = roundDecimal(quantity.dividedBy(model.package.size), 0, model.package.round);
        return { amount: packages.times(model.unit_amount), quantity_billed: packages, tiers: [] };
      }
      return { amount: quantity.times(model.unit_amount), quantity_billed: quantity, tiers: [] };
    }
    case 'graduated':
      return graduated(model.tiers, quantity);
    case 'volume':
      return volume(model.tiers, quantity);
  }
}

function graduated(tiers: readonly Tier[], quantity: Decimal): Priced {
  const applied: TierApplied[] = [];
  let amount = ZERO;
  let lower = ZERO;
  tiers.forEach((tier, i) => {
    const upper = tier.up_to === null ? undefined : new Decimal(tier.up_to);
    const reached = quantity.greaterThan(lower);
    const units = reached ? Decimal.min(quantity, upper ?? quantity).minus(lower) : ZERO;
    const flat = i === 0 || reached ? new Decimal(tier.flat_amount ?? '0') : ZERO;
    const tierAmount = units.times(tier.unit_amount).plus(flat);
    if (i === 0 || reached) {
      applied.push({
        tier: i + 1,
        from: decimalText(lower),
        up_to: tier.up_to,
        quantity: decimalText(units),
        unit_amount: tier.unit_amount,
        flat_amount: decimalText(flat),
        amount: decimalText(tierAmount),
      });
    }
    amount = amount.plus(tierAmount);
    if (upper) lower = upper;
  });
  return { amount, quantity_billed: quantity, tiers: applied };
}

function volume(tiers: readonly Tier[], quantity: Decimal): Priced {
  let index = tiers.findIndex((t) => t.up_to === null || quantity.lessThanOrEqualTo(t.up_to));
  if (index < 0) index = tiers.length - 1;
  const tier = tiers[index]!;
  const flat = new Decimal(tier.flat_amount ?? '0');
  const amount = quantity.times(tier.unit_amount).plus(flat);
  const from = index === 0 ? '0' : tiers[index - 1]!.up_to!;
  return {
    amount,
    quantity_billed: quantity,
    tiers: [
      {
        tier: index + 1,
        from,
        up_to: tier.up_to,
        quantity: decimalText(quantity),
        unit_amount: tier.unit_amount,
        flat_amount: decimalText(flat),
        amount: decimalText(amount),
      },
    ],
  };
}

/** The usage line of one metered segment: the window's quantity priced by the segment's version, rounded once. */
export function usageCharge(
  product: Product,
  price: Price,
  segment: { version: PriceVersion; start: string; end: string; windowText: string },
  usage: WindowQuantity,
  round: Round,
): ExactLine {
  const { version } = segment;
  invariant(price.meter, `metered price ${price.id} has a meter`);
  const priced = priceQuantity(version, new Decimal(usage.quantity));
  const line: ExactLine = {
    exact: priced.amount,
    line: {
      kind: 'usage',
      product: product.id,
      meter: price.meter,
      price_id: price.id,
      price_version: version.version_id,
      description: `${product.name}: ${price.meter}${segment.windowText}`,
      quantity: usage.quantity,
      unit_amount: version.model === 'per_unit' ? version.unit_amount : null,
      tiers: priced.tiers,
      amount_minor: round(priced.amount),
      period_start: segment.start,
      period_end: segment.end,
      taxable: true,
      usage_ref: usage.usage_ref,
    },
  };
  if (version.model === 'per_unit' && version.package) {
    // Billed in packages: the line reads packages × price of a package = amount; the usage stays in `quantity`.
    const { size, round: direction } = version.package;
    const packages = decimalText(priced.quantity_billed);
    line.line.package = { size, round: direction, quantity: packages };
    line.line.description += ` (${packages} ${packages === '1' ? 'package' : 'packages'} of ${size}: ${usage.quantity} rounded ${direction})`;
  }
  return line;
}
