// What a disputed line can be credited, pure. A line's full credit is its amount plus its tax share: the amount times
// the rate the ORIGINAL invoice was taxed at (its tax line), rounded once with the invoice's rounding mode; a line that
// was not taxable has no tax share. A partial credit is a gross amount (tax included) split into net and tax pro rata
// at that same rate; what is left to credit is the full credit less what credit notes of earlier disputes took.
import type { Invoice, InvoiceLine } from '../domain/model.js';
import { Decimal, minorToMajor, roundToMinor } from '../domain/money.js';
import { isChargeLine } from '../domain/journal.js';
import { invariant } from '../domain/result.js';

/** A credit split into its parts, minor units: net (the line's amount) + tax = gross. */
export interface CreditParts {
  net: bigint;
  tax: bigint;
  gross: bigint;
}

/** The rate the invoice was taxed at ("0" when it carries no tax line): its own, never the catalog's of today. */
export function invoiceTaxRate(invoice: Invoice): string {
  invariant(invoice.tax_lines.length <= 1, `${invoice.id} has ${invoice.tax_lines.length} tax lines; a dispute credits at one rate`);
  return invoice.tax_lines[0]?.rate ?? '0';
}

/** Whether a customer can dispute the line: a charge (flat fee, usage, true-up, late usage) with an amount. */
export const disputableLine = (line: InvoiceLine): boolean => isChargeLine(line) && line.amount_minor > 0n;

/** The line's full credit: its amount and its tax share at the invoice's rate. */
export function lineCredit(invoice: Invoice, line: InvoiceLine): CreditParts {
  const rate = invoiceTaxRate(invoice);
  const tax = line.taxable
    ? roundToMinor(minorToMajor(line.amount_minor, invoice.currency).times(rate), invoice.currency, invoice.rounding)
    : 0n;
  return { net: line.amount_minor, tax, gross: line.amount_minor + tax };
}

/** What is left of a line's full credit once the earlier credits (each net and tax) are taken off. */
export function remainingCredit(full: CreditParts, credited: readonly CreditParts[]): CreditParts {
  const net = credited.reduce((sum, c) => sum - c.net, full.net);
  const tax = credited.reduce((sum, c) => sum - c.tax, full.tax);
  return { net, tax, gross: net + tax };
}

/**
 * A gross credit (tax included) split into net and tax at `rate`, within what remains: all of the remainder when it
 * is all of it, else net = gross / (1 + rate) rounded with the invoice's mode and tax the rest, each kept within what
 * remains of it. Undefined when the gross is not positive or more than the remainder.
 */
export function splitCredit(
  gross: bigint,
  remaining: CreditParts,
  rate: string,
  currency: string,
  rounding: Invoice['rounding'],
): CreditParts | undefined {
  if (gross <= 0n || gross > remaining.gross) return undefined;
  if (gross === remaining.gross) return remaining;
  let net = roundToMinor(minorToMajor(gross, currency).div(new Decimal(1).plus(rate)), currency, rounding);
  if (gross - net > remaining.tax) net = gross - remaining.tax;
  if (net > remaining.net) net = remaining.net;
  return { net, tax: gross - net, gross };
}
