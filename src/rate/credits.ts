// Prepaid credits: grants in the invoice's currency, live in the period, drawn against usage charges net of their
// discounts, oldest grant first, product by product in line order, never below zero. What earlier finalized
// invoices drew (grantUsedMinor) is no longer available.
import type { CreditGrant } from '../domain/model.js';
import { Decimal } from '../domain/money.js';
import type { DraftLine, ExactLine, Round } from './lines.js';
import type { PeriodDates } from './segments.js';

export interface CreditInput {
  grants: readonly CreditGrant[]; // the customer's
  currency: string;
  period: PeriodDates;
  charges: readonly ExactLine[];
  discounts: readonly DraftLine[];
  grantUsedMinor: ReadonlyMap<string, bigint>;
  productName: (product: string) => string;
  round: Round;
}

/** The usage amount net of discounts per product (minor units), in the order the products first appear. */
function usageNetByProduct(charges: readonly ExactLine[], discounts: readonly DraftLine[]): Map<string, bigint> {
  const net = new Map<string, bigint>();
  for (const { line } of charges) if (line.kind === 'usage') net.set(line.product, (net.get(line.product) ?? 0n) + line.amount_minor);
  for (const d of discounts) if (d.meter !== null) net.set(d.product, (net.get(d.product) ?? 0n) + d.amount_minor);
  return net;
}

export function creditLines(input: CreditInput): DraftLine[] {
  const { period, currency } = input;
  const usageNet = usageNetByProduct(input.charges, input.discounts);
  const credits: DraftLine[] = [];
  const grants = input.grants
    .filter((g) => g.currency === currency && g.granted < period.end_date && g.expires >= period.start_date)
    .slice()
    .sort((a, b) => (a.granted < b.granted ? -1 : a.granted > b.granted ? 1 : a.id < b.id ? -1 : 1));
  for (const grant of grants) {
    let available = input.round(new Decimal(grant.amount)) - (input.grantUsedMinor.get(grant.id) ?? 0n);
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
        description: `Prepaid credit ${grant.id} applied to ${input.productName(product)} (granted ${grant.granted}, expires ${grant.expires})`,
        quantity: '1',
        unit_amount: null,
        tiers: [],
        amount_minor: -draw,
        period_start: period.start_date,
        period_end: period.end_date,
        taxable: true,
        credit_grant: grant.id,
      });
    }
  }
  return credits;
}
