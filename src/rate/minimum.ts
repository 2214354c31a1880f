// Minimum commitment: prorated by a subscription's active days like the flat fee; a shortfall of the plan's usage
// charges is one true-up line.
import type { Plan } from '../domain/model.js';
import { Decimal, minorToMajor, sumMinor } from '../domain/money.js';
import type { ExactLine, Round } from './lines.js';
import type { ActiveWindow } from './segments.js';

/** The true-up line of a plan with a minimum commitment, or null when its usage charges reach the minimum. */
export function minimumTrueUp(
  plan: Plan,
  active: ActiveWindow,
  planUsage: readonly ExactLine[],
  currency: string,
  round: Round,
): ExactLine | null {
  if (plan.minimum_commitment === undefined) return null;
  const minimum = round(new Decimal(plan.minimum_commitment).times(active.days).dividedBy(active.periodDays));
  const usageTotal = sumMinor(planUsage.map((l) => l.line.amount_minor));
  if (usageTotal >= minimum) return null;
  const flatProduct = plan.prices.find((p) => !p.meter)?.product ?? plan.prices[0]!.product;
  const shortfall = minimum - usageTotal;
  const prorated = active.days < active.periodDays ? `, prorated ${active.days} of ${active.periodDays} days` : '';
  return {
    exact: minorToMajor(shortfall, currency),
    line: {
      kind: 'minimum_true_up',
      product: flatProduct,
      meter: null,
      price_id: null,
      price_version: null,
      description: `Minimum commitment true-up (${plan.minimum_commitment} ${currency}${prorated})`,
      quantity: '1',
      unit_amount: null,
      tiers: [],
      amount_minor: shortfall,
      period_start: active.start,
      period_end: active.end,
      taxable: true,
    },
  };
}
