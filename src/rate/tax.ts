// Tax: exclusive, on the taxable lines' sum (after discounts and credits), rounded once per rate.
import type { InvoiceLine, TaxLine, TaxRate } from '../domain/model.js';
import { minorToMajor, sumMinor } from '../domain/money.js';
import type { Round } from './lines.js';

export interface Tax {
  tax_minor: bigint;
  tax_lines: TaxLine[];
}

export function taxOf(lines: readonly Pick<InvoiceLine, 'taxable' | 'amount_minor'>[], rate: TaxRate, currency: string, round: Round): Tax {
  const taxable = sumMinor(lines.filter((l) => l.taxable).map((l) => l.amount_minor));
  const tax = round(minorToMajor(taxable, currency).times(rate.rate));
  return { tax_minor: tax, tax_lines: [{ jurisdiction: rate.jurisdiction, rate: rate.rate, taxable_minor: taxable, tax_minor: tax }] };
}
