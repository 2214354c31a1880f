// Discounts: percent off a product's charge lines (not the minimum true-up), prorated by the days of each line's
// window inside the discount's date range (`to` inclusive), from the line's exact amount, rounded once.
import type { Discount } from '../domain/model.js';
import type { DraftLine, ExactLine, Round } from './lines.js';
import { dateOf, dayNumber, daysFrom, maxDate, minDate } from './segments.js';

export function discountLines(discounts: readonly Discount[], charges: readonly ExactLine[], round: Round): DraftLine[] {
  const lines: DraftLine[] = [];
  for (const discount of discounts) {
    for (const { exact, line } of charges) {
      if (line.product !== discount.product || line.kind === 'minimum_true_up') continue;
      const overlapStart = maxDate(line.period_start, discount.from);
      const overlapEnd = minDate(line.period_end, dateOf(dayNumber(discount.to) + 1));
      const overlapDays = daysFrom(overlapStart, overlapEnd);
      if (overlapDays <= 0) continue;
      const lineDays = daysFrom(line.period_start, line.period_end);
      const amount = round(exact.times(discount.percent_off).dividedBy(100).times(overlapDays).dividedBy(lineDays));
      if (amount === 0n) continue;
      lines.push({
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
  return lines;
}
