// The shapes the dashboard reads, as the API's JSON schemas give them (amounts are decimal strings in major units).
export type Scope = 'read' | 'admin';
export interface WhoAmI {
  id: string;
  name: string;
  scope: Scope;
}

export interface PeriodInfo {
  period: string;
  closed_entities: string[];
  invoices: number;
}

export interface Kpi {
  id: string;
  label: string;
  unit: 'count' | 'money' | 'ratio' | 'seconds';
  currency: string | null;
  value: string | null;
  previous: string | null;
}

export interface EntityMoney {
  legal_entity: string;
  currency: string;
  usage: string;
  unbilled: string;
  invoiced: string;
  posted: string;
  paid: string;
  outstanding: string;
  invoices: number;
}

export interface EntitySeries {
  legal_entity: string;
  currency: string;
  usage: string[];
  unbilled: string[];
  invoiced: string[];
  posted: string[];
  paid: string[];
}

export interface Overview {
  period: string;
  start_date: string;
  end_date: string;
  days: string[];
  entities: Array<{ id: string; name: string; currency: string; status: 'open' | 'closed'; closed_at: string | null }>;
  totals: EntityMoney[];
  series: EntitySeries[];
  events: Array<{ legal_entity: string; per_day: number[]; total: number; late: number }>;
  kpis: Kpi[];
}

export interface IngestCounts {
  received: number;
  accepted: number;
  duplicates: number;
  conflicts: number;
  rejected: number;
  quarantined: number;
}

export interface Pipeline {
  window: { from: string; to: string; hours: number; bucket: 'minute' | 'hour' | 'day' };
  ingestion: { totals: IngestCounts & { batches: number }; rate_per_second: { last_5_minutes: string; last_hour: string }; series: Array<IngestCounts & { at: string }> };
  quarantine: {
    pending: number;
    by_reason: Array<{ reason: string; pending: number; oldest: string }>;
    recent: Array<{ seq: string; source: string; id: string; reason: string; received_at: string }>;
  };
  connectors: Array<{ target: string; pending: number; posted: number; dead: number; oldest_pending_seconds: number | null; replays: number }>;
}

export interface DeadLetter {
  id: string;
  key: string;
  target: string;
  document_id: string;
  attempts: number;
  last_error: { message?: string; status?: number; code?: string } | null;
  created_at: string;
}

export interface Difference {
  exception_id: string;
  kind: string;
  key: { legal_entity: string; customer: string; currency: string; item: string };
  left: string | null;
  right: string | null;
  difference: string;
  status?: string | null;
}

export interface CheckpointReport {
  checkpoint: string;
  legal_entity: string;
  connector: string | null;
  owner_queue: string;
  description?: string;
  status: 'green' | 'red';
  compared: { left: number; right: number };
  pending: number;
  differences: Difference[];
}

export interface Reconciliation {
  period: string;
  legal_entities: string[];
  connectors: string[];
  status: 'green' | 'red';
  checkpoints: CheckpointReport[];
  open_exceptions: Array<{ legal_entity: string; owner_queue: string; open: number; assigned: number }>;
}

export interface ExceptionRecord {
  id: string;
  kind: string;
  owner_queue: string;
  status: 'open' | 'assigned' | 'resolved' | 'waived';
  subject?: string;
  checkpoint?: string | null;
  period?: string | null;
  legal_entity?: string | null;
  customer?: string | null;
  currency?: string | null;
  connector?: string | null;
  item?: string | null;
  left_amount?: string | null;
  right_amount?: string | null;
  difference?: string | null;
  assigned_to?: string | null;
  resolution_document?: string | null;
  waived_reason?: string | null;
  created_at?: string;
}

export interface InvoiceSummary {
  id: string;
  number: string | null;
  kind: 'invoice' | 'credit_note';
  status: string;
  legal_entity: string;
  customer: string;
  customer_name: string | null;
  currency: string;
  period: string;
  total: string;
  amount_paid: string;
  payment_status: string;
  finalized_at: string | null;
  posting: 'posted' | 'pending' | 'dead' | 'none';
}

export interface Tier {
  tier: number;
  from: string;
  up_to: string | null;
  quantity: string;
  unit_amount: string;
  flat_amount: string;
  amount: string;
}

export interface SampleEvent {
  source: string;
  id: string;
  seq: string;
  time: string;
  received_at: string;
  batch: string;
  late: boolean;
  value: string | null;
  dimensions: Record<string, string>;
}

export interface UsageLineage {
  usage_ref: string;
  meter: string;
  aggregation: string;
  window: { from: string; to: string };
  quantity: string;
  event_count: number;
  first_event_time: string | null;
  last_event_time: string | null;
  usage_batch_count: number;
  usage_batches: Array<{ id: string; channel: string | null; received_at: string | null; events: number }>;
  sample: SampleEvent[];
  rated: { quantity: string; event_count: number } | null;
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
  amount: string;
  period: { start: string; end_inclusive: string };
  price: { id: string; version: string; plan: string | null } | null;
  tiers: Tier[];
  usage: UsageLineage | null;
  note: string | null;
}

export interface OutboxRef {
  key: string;
  target: string;
  journal: string;
  status: string;
  attempts: number;
  erp_document: string | null;
  posted_at: string | null;
  last_error: string | null;
}

export interface JournalRef {
  id: string;
  kind: string;
  posting_date: string;
  memo: string;
  outbox: OutboxRef[];
}

export interface InvoiceExplanation {
  invoice: {
    id: string;
    number: string | null;
    kind: 'invoice' | 'credit_note';
    status: string;
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
  corrects: { id: string; number: string | null } | null;
  corrected_by: Array<{ id: string; number: string | null; kind: string }>;
  rating_run: { id: string; catalog_version: number; event_seq_watermark: string; rated_at: string } | null;
  lineage: {
    correlation_id: string;
    usage_batch_count: number;
    rating_run: string | null;
    invoice_number: string | null;
    journals: string[];
    outbox: string[];
    erp_documents: Array<{ target: string; reference: string }>;
  };
  lines: LineExplanation[];
  journals: JournalRef[];
}

export interface EventExplanation {
  event: { source: string; id: string; seq: string; type: string; customer: string; time: string; received_at: string; late: boolean; meter_values: Record<string, string> };
  billed_in: Array<{ invoice: { id: string; number: string | null; kind: string; status: string }; line_no: number; meter: string; journals: JournalRef[] }>;
  status: string;
  note: string;
}

export interface InvoiceDocument {
  id: string;
  number: string | null;
  kind: string;
  status: string;
  legal_entity: string;
  customer: string;
  currency: string;
  period_start: string;
  period_end: string;
  subtotal_minor: string;
  tax_minor: string;
  total_minor: string;
}

export interface CustomerSummary {
  id: string;
  name: string;
  legal_entity: string;
  parent: string | null;
  tenants: string[];
  subscriptions: Array<{ plan: string; start: string; end: string | null }>;
  events: number;
  last_event_time: string | null;
  balances: Array<{ currency: string; invoiced: string; paid: string; outstanding: string }>;
}

export interface CustomerUsage {
  customer: string;
  from: string;
  to: string;
  bucket: 'day' | 'month';
  buckets: string[];
  meters: Array<{ meter: string; aggregation: string; quantities: string[]; events: number[]; late_events: number }>;
}
