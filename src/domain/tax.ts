// Exclusive tax (docs/pricing.md): each rate of the customer's jurisdiction applies to the invoice's taxable amount
// after discounts and credits (the sum of its taxable lines), and each rate's tax is rounded once, with the invoice's
// rounding mode. Pure.
import type { InvoiceLine, TaxLine, TaxRate } from './model.js';
import { Decimal, isCurrency, minorToMajor, parseDecimal, roundToMinor, sumMinor, type RoundingMode } from './money.js';
import { fail, invariant, ok, problem, type Problem, type Result } from './result.js';

/** Limits (TigerStyle): a tax rate has at most this many decimal places ("0.08875" has 5). */
export const TAX_RATE_SCALE_MAX = 8;

/** The taxable amount of an invoice: its taxable lines summed, so discount and credit lines already reduce it. */
export function taxableMinor(lines: readonly Pick<InvoiceLine, 'taxable' | 'amount_minor'>[]): bigint {
  return sumMinor(lines.filter((l) => l.taxable).map((l) => l.amount_minor));
}

/** One rate's tax on a taxable amount in minor units: exact, then rounded once to the currency's minor unit. */
export function taxAmount(taxable: bigint, rate: Decimal, currency: string, rounding: RoundingMode): bigint {
  return roundToMinor(minorToMajor(taxable, currency).times(rate), currency, rounding);
}

/**
 * The tax lines of an invoice: one per rate, in jurisdiction order, each on the same taxable amount and rounded once.
 * A rate is a fraction from 0 to 1 ("0.0725"); a jurisdiction listed twice is refused.
 */
export function computeTaxLines(taxable: bigint, rates: readonly TaxRate[], currency: string, rounding: RoundingMode): Result<TaxLine[]> {
  invariant(isCurrency(currency), `unknown currency ${currency}`);
  const problems: Problem[] = [];
  const parsed: Array<{ jurisdiction: string; text: string; rate: Decimal }> = [];
  const seen = new Set<string>();
  rates.forEach((r, i) => {
    const path = `tax_rates[${i}]`;
    if (seen.has(r.jurisdiction)) problems.push(problem(`${path}.jurisdiction`, 'duplicate_jurisdiction', `${r.jurisdiction} is listed twice`));
    seen.add(r.jurisdiction);
    const rate = parseDecimal(r.rate, `${path}.rate`, { scaleMax: TAX_RATE_SCALE_MAX });
    if (!rate.ok) problems.push(...rate.problems);
    else if (rate.value.greaterThan(1)) problems.push(problem(`${path}.rate`, 'out_of_range', 'must be a fraction from 0 to 1 ("0.0725" is 7.25%)'));
    else parsed.push({ jurisdiction: r.jurisdiction, text: r.rate, rate: rate.value });
  });
  if (problems.length > 0) return fail(...problems);
  parsed.sort((a, b) => (a.jurisdiction < b.jurisdiction ? -1 : a.jurisdiction > b.jurisdiction ? 1 : 0));
  return ok(
    parsed.map((r) => ({ jurisdiction: r.jurisdiction, rate: r.text, taxable_minor: taxable, tax_minor: taxAmount(taxable, r.rate, currency, rounding) })),
  );
}
