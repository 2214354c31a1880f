// The shapes the rating modules pass between them: the input of a rating, the usage windows it reads, a draft
// invoice line and a charge with its exact amount.
import type { CatalogIndex } from '../domain/catalog.js';
import type { Catalog, Customer, InvoiceLine, LegalEntity, Plan, Subscription } from '../domain/model.js';
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

/** One window's usage of a meter, as rating reads it. */
export interface WindowQuantity {
  quantity: string;
  usage_ref: string;
}

/** One usage window rating reads: a meter's quantity over [from, to) (ISO timestamps). */
export interface UsageWindow {
  meter: string;
  from: string;
  to: string;
}

/** The usage of one window, answered by the caller (the store, or an estimate). */
export type UsageProvider = (meter: string, fromIso: string, toIso: string) => WindowQuantity;

/** One customer and billing period against one catalog: what rating needs besides the usage. */
export interface PeriodInput {
  catalog: Catalog;
  index: CatalogIndex;
  catalogHash: string;
  customer: string;
  period: { period: string; start_date: string; end_date: string }; // end exclusive
  grantUsedMinor: ReadonlyMap<string, bigint>; // drawn by earlier finalized invoices
}

export interface RatingInput extends PeriodInput {
  usage: UsageProvider;
  usageFingerprint: string; // hash of the usage aggregates read; part of the run id
}

/** A customer's subscriptions in the period whose plans bill in one currency. */
export type CurrencyGroup = { currency: string; plans: Array<{ plan: Plan; sub: Subscription }> };
/** The customer rated, its legal entity and its subscriptions grouped by currency. */
export interface Subject {
  customer: Customer;
  entity: LegalEntity;
  groups: CurrencyGroup[]; // by currency code
}
