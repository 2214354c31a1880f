// The shapes the rating rules pass between them: a draft invoice line, and a charge with its exact amount.
import type { InvoiceLine } from '../domain/model.js';
import type { Decimal } from '../domain/money.js';

/** An invoice line before it is numbered. */
export type DraftLine = Omit<InvoiceLine, 'line_no'>;

/** A charge line with its exact (unrounded) amount, which discounts are computed from. */
export interface ExactLine {
  line: DraftLine;
  exact: Decimal;
}

/** Rounds an exact major amount to the minor units of the invoice's currency, with the legal entity's rounding. */
export type Round = (exact: Decimal) => bigint;
