// A plan's charge lines for one subscription in a period: per price version segment a prorated flat fee or a
// priced usage line, then the plan's minimum commitment true-up.
import type { CatalogIndex } from '../domain/catalog.js';
import type { Plan, Subscription } from '../domain/model.js';
import { invariant } from '../domain/result.js';
import type { ExactLine, Round, UsageProvider, UsageWindow } from './lines.js';
import { minimumTrueUp } from './minimum.js';
import { usageCharge } from './price-models.js';
import { activeWindow, iso, priceSegments, flatCharge, yearlyCharge, type PeriodDates } from './segments.js';

/** The usage windows a plan's metered prices read for one subscription, in line order. */
export function planUsageWindows(plan: Plan, sub: Subscription, period: PeriodDates): UsageWindow[] {
  const active = activeWindow(sub, period);
  return plan.prices.flatMap((price) =>
    priceSegments(price, active)
      .filter((s) => s.version.model !== 'flat')
      .map((s) => {
        invariant(price.meter, `metered price ${price.id} has a meter`);
        return { meter: price.meter, from: iso(s.start), to: iso(s.end) };
      }),
  );
}

export function planCharges(
  index: CatalogIndex,
  plan: Plan,
  sub: Subscription,
  period: PeriodDates,
  usage: UsageProvider,
  round: Round,
): ExactLine[] {
  const active = activeWindow(sub, period);
  const charges: ExactLine[] = [];
  const planUsage: ExactLine[] = [];
  for (const price of plan.prices) {
    const product = index.products.get(price.product)!;
    if (price.interval === 'year') {
      const yearly = yearlyCharge(product, price, sub, active, round);
      if (yearly) charges.push(yearly);
      continue;
    }
    for (const segment of priceSegments(price, active)) {
      if (segment.version.model === 'flat') {
        charges.push(flatCharge(product, price, segment, active.periodDays, round));
        continue;
      }
      invariant(price.meter, `metered price ${price.id} has a meter`);
      const line = usageCharge(product, price, segment, usage(price.meter, iso(segment.start), iso(segment.end)), round);
      charges.push(line);
      planUsage.push(line);
    }
  }
  const trueUp = minimumTrueUp(plan, active, planUsage, plan.currency, round);
  if (trueUp) charges.push(trueUp);
  return charges;
}
