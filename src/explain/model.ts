// What an explanation holds: a document traced back to the rating run, price, tiers, usage aggregate and the events
// behind it, and forward to its journals and ERP references. Plain data (decimal strings, no bigint) for CLI and API.
import type { TierApplied } from '../domain/model.js';

/** Limits (TigerStyle): an explanation stays readable and its queries bounded however large the month was. */
export const EXPLAIN_LIMITS = {
  /** Events shown per usage line: the ones with the smallest SHA-256 of `source\nid`, the same ones every time. */
  sampleEvents: 5,
  /** Usage batches listed by id per line and per chain; the count is always exact. */
  batchesListed: 50,
  /** Dimension value groups shown per usage line. */
  dimensionGroups: 25,
  /** Invoice lines a forward walk from one event reports. */
  forwardLines: 100,
};

export interface DocumentRef {
  id: string;
  number: string | null;
  kind: 'invoice' | 'credit_note';
  status: string;
}

export interface OutboxRef {
  key: string;
  target: string;
  journal: string;
  status: string; // pending | posted | dead
  attempts: number;
  erp_document: string | null; // the target's reference once posted
  posted_at: string | null;
  last_error: string | null;
}

export interface JournalRef {
  id: string;
  kind: string;
  posting_date: string;
  dated_on: string | null;
  posting_policy: string;
  memo: string;
  outbox: OutboxRef[];
}

/** The chain from usage batches to ERP documents for one invoice (it fans out: journals, then one row per target). */
export interface Lineage {
  correlation_id: string;
  correlation_stored: boolean; // migration 010 wrote it when the document was finalized
  usage_batches: string[];
  usage_batch_count: number;
  rating_run: string | null;
  invoice: string;
  invoice_number: string | null;
  journals: string[];
  outbox: string[];
  erp_documents: Array<{ target: string; reference: string }>;
}

export interface RatingRunRef {
  id: string;
  period: string;
  catalog_version: number;
  catalog_hash: string;
  event_seq_watermark: string;
  includes_late_usage: boolean; // a late-usage re-rating: late events up to the watermark count too
  rated_at: string;
}

export interface SampleEvent {
  source: string;
  id: string;
  seq: string;
  time: string;
  received_at: string;
  batch: string;
  late: boolean;
  value: string | null; // the meter's value on this event (absent for count meters)
  dimensions: Record<string, string>;
}

export interface UsageLineage {
  usage_ref: string;
  meter: string;
  event_type: string;
  aggregation: string;
  window: { from: string; to: string };
  group_by: string[];
  customer: string;
  event_seq_watermark: string;
  includes_late_usage: boolean;
  quantity: string; // recounted now from exactly the events listed by the filter above
  event_count: number;
  first_event_time: string | null;
  last_event_time: string | null;
  by_dimensions: Array<{ dimensions: Record<string, string>; quantity: string; event_count: number }>;
  by_dimensions_truncated: boolean;
  usage_batches: Array<{ id: string; channel: string | null; received_at: string | null; events: number }>;
  usage_batch_count: number;
  sample: SampleEvent[];
  /** The aggregate the rating run stored when it rated, if it stored this window. */
  rated: { quantity: string; event_count: number } | null;
  /** The recount agrees with the line's quantity and with what the rating run stored. */
  consistent: boolean;
}

export interface LineExplanation {
  line_no: number;
  kind: string;
  description: string;
  product: string;
  meter: string | null;
  quantity: string;
  unit_amount: string | null;
  amount: string; // major units, signed as on the document
  amount_minor: string;
  period: { start: string; end_inclusive: string };
  price: { id: string; version: string; plan: string | null; definition: Record<string, unknown> | null } | null;
  tiers: TierApplied[];
  credit_grant: string | null;
  usage: UsageLineage | null;
  note: string | null; // how a line without usage came about (flat fee, true-up, discount, credit)
}

export interface InvoiceExplanation {
  invoice: DocumentRef & {
    customer: string;
    customer_name: string | null;
    legal_entity: string;
    currency: string;
    period: string;
    period_start: string;
    period_end_inclusive: string;
    total: string;
    payment_status: string;
    amount_paid: string;
    finalized_at: string | null;
  };
  /** A credit note reverses the lines of the invoice it corrects; its usage is that invoice's. */
  corrects: DocumentRef | null;
  corrected_by: DocumentRef[];
  late_usage: Array<{
    key: string;
    period: string;
    event_seq_watermark: string;
    corrected_invoice: string;
    credit_note: string | null;
    replacement: string | null;
    billed_in_period: string;
  }>;
  rating_run: RatingRunRef | null;
  lineage: Lineage;
  lines: LineExplanation[];
  journals: JournalRef[];
}

export interface JournalLineExplanation {
  line_no: number;
  account: string;
  role: 'receivable' | 'revenue' | 'tax_payable' | 'deferred_revenue' | 'cash' | 'other';
  debit: string;
  credit: string;
  currency: string;
  customer: string | null;
  product: string | null;
  memo: string | null;
  invoice_lines: number[]; // the source invoice's lines this journal line carries
}

export interface JournalExplanation {
  journal: JournalRef & { legal_entity: string; source_document: string; source_number: string | null };
  payment: { id: string; amount: string; received_on: string } | null;
  lines: JournalLineExplanation[];
  /** With `line`: the invoice lines behind it, each down to its events. */
  explained: { journal_line: number; invoice_lines: LineExplanation[] } | null;
  invoice: InvoiceExplanation;
}

export interface EventExplanation {
  event: {
    source: string;
    id: string;
    seq: string;
    type: string;
    subject: string;
    customer: string;
    time: string;
    received_at: string;
    late: boolean;
    meter_values: Record<string, string>;
    dimensions: Record<string, Record<string, string>>;
  };
  usage_batch: { id: string; channel: string; received_at: string; received: number; accepted: number } | null;
  /** Every invoice line whose usage aggregate read this event, with the document, its journals and ERP references. */
  billed_in: Array<{
    invoice: DocumentRef;
    line_no: number;
    meter: string;
    window: { from: string; to: string };
    rating_run: string;
    event_seq_watermark: string;
    correlation_id: string;
    reversed_by: DocumentRef[];
    journals: JournalRef[];
  }>;
  billed_in_truncated: boolean;
  status: 'billed' | 'rerated_unchanged' | 'late_pending' | 'not_yet_billed' | 'not_billed';
  note: string;
}
