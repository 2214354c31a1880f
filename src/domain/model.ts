// The canonical model: one shape for every stage. Amounts at rest are bigint minor units,
// rates and quantities exact decimal strings; dates are ISO strings (UTC dates as YYYY-MM-DD).
import type { RoundingMode } from './money.js';

// ---------- catalog (normalized from the YAML/JSON file; see docs/catalog.md) ----------

export type Aggregation = 'count' | 'sum' | 'max' | 'unique_count' | 'latest';

/** A postal address as an invoice prints it (and Xero's Address / NetSuite's address subrecord take it). */
export interface PostalAddress {
  lines: string[]; // street lines, 1 to 4, in print order
  city: string;
  region?: string; // state, province or county
  postal_code?: string;
  country: string; // ISO 3166-1 alpha-2
}

/** Days from an invoice's issue date to its due date when neither the customer nor its legal entity says. */
export const PAYMENT_TERMS_DAYS_DEFAULT = 30;

export interface LegalEntity {
  id: string;
  name: string;
  country: string;
  currency: string; // its functional currency: its books are kept in it (docs/accounting.md#currencies)
  invoice_number_prefix: string;
  rounding: RoundingMode;
  address?: PostalAddress; // the seller's address on its invoices
  tax_id?: string; // VAT number or other tax registration, printed on its invoices
  payment_terms_days?: number; // default for its customers; PAYMENT_TERMS_DAYS_DEFAULT when absent
}

/**
 * A legal entity's accounts by role. The four first are required; the others only when the books need them
 * (docs/accounting.md): `fx_gain` and `fx_loss` (realized, on payments at another rate), `fx_unrealized` (month-end
 * revaluation of open receivables), `promotional_credits` (contra-revenue for free grants drawn),
 * `breakage_revenue` (expired prepaid credits), `unbilled_receivable` (usage accrued before it is invoiced).
 */
export interface AccountMap {
  receivable: string;
  cash: string;
  tax_payable: string;
  deferred_revenue: string;
  fx_gain?: string;
  fx_loss?: string;
  fx_unrealized?: string;
  promotional_credits?: string;
  breakage_revenue?: string;
  unbilled_receivable?: string;
  [role: string]: string | undefined;
}

/** One effective-dated tax rate; `effective_from` is a UTC date, inclusive (null: in force from the beginning). */
export interface TaxRateVersion {
  effective_from: string | null;
  rate: string; // decimal fraction, "0.0725"
}

/**
 * A jurisdiction's tax rate: one rate in force always (the catalog's single-rate form, kept as it is so that a
 * catalog without versions keeps its hash), or versions ascending by effective_from, as prices have.
 */
export type TaxRate = { jurisdiction: string; rate: string } | { jurisdiction: string; versions: TaxRateVersion[] };

export interface Meter {
  id: string;
  event_type: string;
  aggregation: Aggregation;
  value?: string; // JSONPath into data; required unless aggregation is count
  group_by: string[]; // dimension keys in data
  allow_negative: boolean; // default false
}

export interface Product {
  id: string;
  name: string;
  revenue_account: Record<string, string>; // legal entity id -> GL account
}

export interface Tier {
  up_to: string | null; // inclusive upper bound; null on the last tier
  unit_amount: string;
  flat_amount?: string;
}

export type PriceModel =
  | { model: 'flat'; amount: string }
  | { model: 'per_unit'; unit_amount: string; package?: { size: string; round: 'up' | 'down' } }
  | { model: 'graduated'; tiers: Tier[] }
  | { model: 'volume'; tiers: Tier[] };

/** One effective-dated version of a price; `effective_from` is a UTC date, inclusive. */
export type PriceVersion = PriceModel & { effective_from: string | null; version_id: string };

export interface Price {
  id: string; // stable: `${plan}/${index}:${product}[:${meter}]`
  product: string;
  meter?: string; // absent for flat fees
  versions: PriceVersion[]; // ascending by effective_from; a price without `versions` has one with effective_from null
  /** Flat prices: `year` bills the whole amount in advance each subscription year (absent: every month). */
  interval?: 'year';
}

export interface Plan {
  id: string;
  currency: string;
  minimum_commitment?: string; // major units per billing period
  prices: Price[];
}

export interface Customer {
  id: string;
  name: string;
  legal_entity: string;
  tax_jurisdiction: string;
  erp_customer_id: string;
  parent?: string;
  tenants: string[];
  billing_address?: PostalAddress;
  tax_id?: string; // the buyer's VAT number or tax id, when it has one
  payment_terms_days?: number; // overrides its legal entity's
  currency?: string; // the currency it is billed in; its legal entity's functional currency when absent
}

export interface Subscription {
  customer: string;
  plan: string;
  start: string; // UTC date, inclusive
  end?: string; // UTC date, exclusive
}

/**
 * Prepaid credits. `paid` (the default): bought (paid outside Accrue's invoices, booked Dr cash), a contract
 * liability (deferred revenue) from `granted` until drawn or expired; unused paid credit is released as breakage
 * revenue on `expires`. `promotional`: free, no liability; drawn as contra-revenue.
 */
export interface CreditGrant {
  id: string; // stable: `${customer}:${granted}:${index}`
  customer: string;
  amount: string; // major units
  currency: string;
  granted: string; // UTC date
  expires: string; // UTC date, inclusive: usable on this date
  kind?: 'paid' | 'promotional'; // absent: paid
}

export interface Discount {
  customer: string;
  product: string;
  percent_off: string;
  from: string; // UTC date, inclusive
  to: string; // UTC date, inclusive
}

export interface Catalog {
  version: number;
  legal_entities: LegalEntity[];
  accounts: Record<string, AccountMap>;
  tax_rates: TaxRate[];
  meters: Meter[];
  products: Product[];
  plans: Plan[];
  customers: Customer[];
  subscriptions: Subscription[];
  credit_grants: CreditGrant[];
  discounts: Discount[];
}

// ---------- usage ----------

/** Aggregated usage of one meter for one customer over a window, per dimension values. */
export interface UsageAggregate {
  customer: string;
  meter: string;
  window_start: string; // ISO timestamp, inclusive
  window_end: string; // ISO timestamp, exclusive
  dimensions: Record<string, string>;
  quantity: string; // exact decimal
  event_count: number;
  first_event_time: string | null;
  last_event_time: string | null;
}

// ---------- rating and invoicing ----------

export type LineKind = 'flat' | 'usage' | 'minimum_true_up' | 'discount' | 'credit' | 'late_usage';

export interface TierApplied {
  tier: number; // 1-based
  from: string; // exclusive lower bound of the tier
  up_to: string | null;
  quantity: string;
  unit_amount: string;
  flat_amount: string; // "0" when none applied
  amount: string; // exact, unrounded
}

export interface InvoiceLine {
  line_no: number; // 1-based, stable order
  kind: LineKind;
  product: string;
  meter: string | null;
  price_id: string | null;
  price_version: string | null;
  description: string;
  quantity: string; // exact decimal
  unit_amount: string | null; // for per_unit / flat
  tiers: TierApplied[];
  amount_minor: bigint; // rounded once, with the legal entity's rounding mode
  period_start: string; // the segment this line covers (UTC date, inclusive)
  period_end: string; // exclusive
  taxable: boolean;
  credit_grant?: string; // for kind 'credit'
  usage_ref?: string; // id of the usage aggregate behind it
  /**
   * A packaged per_unit price: `quantity` stays the metered usage (what lineage and reconciliation compare), and the
   * line is billed as `package.quantity` packages of `package.size` at `unit_amount` a package, so that
   * package.quantity × unit_amount = the amount (before rounding to the minor unit).
   */
  package?: { size: string; round: 'up' | 'down'; quantity: string };
}

export interface TaxLine {
  jurisdiction: string;
  rate: string;
  taxable_minor: bigint;
  tax_minor: bigint;
}

export type InvoiceStatus = 'draft' | 'finalized' | 'void';

/** Seller or buyer as the catalog named them when the invoice was drafted: an issued invoice keeps them unchanged. */
export interface InvoiceParty {
  name: string;
  address: PostalAddress | null;
  tax_id: string | null;
}

export interface Invoice {
  id: string;
  key: string; // idempotency key: inv:v1:<entity>:<customer>:<currency>:<period>
  kind: 'invoice' | 'credit_note';
  corrects?: string; // credit notes: the invoice id corrected
  number: string | null; // assigned at finalization
  status: InvoiceStatus;
  legal_entity: string;
  customer: string;
  currency: string;
  period_start: string; // UTC date inclusive
  period_end: string; // UTC date exclusive
  rounding: RoundingMode;
  lines: InvoiceLine[];
  subtotal_minor: bigint; // sum of charge lines (flat, usage, true-up) before discounts
  discount_minor: bigint; // positive number: total of discount lines
  credits_applied_minor: bigint; // positive number: total drawn from grants
  tax_lines: TaxLine[];
  tax_minor: bigint;
  total_minor: bigint; // subtotal - discount - credits + tax
  rating_run: string;
  // Legal content, snapshot from the catalog when drafted (docs/catalog.md "Legal content"). Absent only on documents
  // stored before these fields existed; readers then fall back to the catalog.
  issue_date?: string; // UTC date: the period's exclusive end for an invoice; a correction's, that of the run issuing it
  payment_terms_days?: number | null; // null on a credit note
  due_date?: string | null; // issue_date + payment_terms_days; null on a credit note
  seller?: InvoiceParty; // the legal entity
  buyer?: InvoiceParty; // the customer
}

// ---------- accounting ----------

export interface JournalLine {
  line_no: number;
  account: string;
  debit_minor: bigint;
  credit_minor: bigint;
  currency: string;
  customer?: string; // set on receivable lines
  product?: string;
  memo?: string;
  /** In a journal booked from another currency: the amount in the transaction currency, on the same side. */
  tx_currency?: string;
  tx_amount_minor?: bigint;
}

/** The rate a journal booked from another currency used: 1 `currency` (the transaction's) = `rate` functional. */
export interface JournalFx {
  currency: string;
  rate: string; // exact decimal
  rate_date: string; // UTC date the rate is for
  source: string; // the fx_rates source, e.g. "ecb"
}

export interface Journal {
  id: string; // jrn:v1:<kind>:<source document id>
  key: string;
  legal_entity: string;
  posting_date: string; // UTC date
  source_document: string;
  kind:
    | 'invoice'
    | 'credit_note'
    | 'credit_drawdown'
    | 'payment'
    | 'invoice_reversal'
    | 'credit_drawdown_reversal'
    | 'credit_grant'
    | 'credit_expiry'
    | 'revenue_recognition'
    | 'unbilled_accrual'
    | 'unbilled_accrual_reversal'
    | 'fx_revaluation'
    | 'fx_revaluation_reversal';
  memo: string;
  lines: JournalLine[];
  /** Booked from another currency: the rate used (lines are in the legal entity's functional currency). */
  fx?: JournalFx;
  /** A reversal: the id of the journal it reverses, line for line with debit and credit swapped (a void). */
  reverses?: string;
}
