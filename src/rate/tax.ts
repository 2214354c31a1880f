// Tax: exclusive, on the taxable lines' sum (after discounts and credits), rounded once per rate. Rates are
// effective-dated (docs/catalog.md#tax-rates): an invoice is taxed at the rate in force on its period's start date, so
// a period re-rated later (late usage) keeps its own rate after the catalog gains a newer one.
import { taxRateAt } from '../domain/catalog.js';
import type { InvoiceLine, TaxLine, TaxRate } from '../domain/model.js';
import { minorToMajor, sumMinor } from '../domain/money.js';
import { fail, ok, problem, type Result } from '../domain/result.js';
import type { Round } from './lines.js';

export interface Tax {
  tax_minor: bigint;
  tax_lines: TaxLine[];
}

/** The rate of `taxRate` in force on `date` (the period's start, YYYY-MM-DD), or a problem naming the jurisdiction. */
export function taxRateInForce(taxRate: TaxRate, date: string): Result<{ jurisdiction: string; rate: string }> {
  const rate = taxRateAt(taxRate, date);
  if (rate === undefined)
    return fail(
      problem(
        'customer.tax_jurisdiction',
        'no_tax_rate_in_force',
        `no tax rate of ${taxRate.jurisdiction} is in force on ${date}: its first version starts later`,
      ),
    );
  return ok({ jurisdiction: taxRate.jurisdiction, rate });
}

export function taxOf(
  lines: readonly Pick<InvoiceLine, 'taxable' | 'amount_minor'>[],
  rate: { jurisdiction: string; rate: string },
  currency: string,
  round: Round,
): Tax {
  const taxable = sumMinor(lines.filter((l) => l.taxable).map((l) => l.amount_minor));
  const tax = round(minorToMajor(taxable, currency).times(rate.rate));
  return { tax_minor: tax, tax_lines: [{ jurisdiction: rate.jurisdiction, rate: rate.rate, taxable_minor: taxable, tax_minor: tax }] };
}
