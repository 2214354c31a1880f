// The shapes the dashboard reads, taken from the OpenAPI types generated from the Fastify route schemas
// (`npm run openapi` writes src/api/client/schema.d.ts), so a changed route schema fails this type-check.
// Type-only: nothing of it reaches the esbuild bundle. Amounts are decimal strings in major units.
import type { paths } from '../../api/client/schema.js';

/** The JSON body of a GET route's 200 answer. */
type Get<P extends keyof paths> = paths[P] extends { get: { responses: { 200: { content: { 'application/json': infer B } } } } }
  ? B
  : never;

/** Every property present, all the way down (null stays where the schema allows it). */
type Complete<T> = T extends readonly (infer U)[] ? Complete<U>[] : T extends object ? { [K in keyof T]-?: Complete<T[K]> } : T;

export type WhoAmI = Get<'/v1/dashboard/whoami'>;
export type PeriodInfo = Get<'/v1/dashboard/periods'>['periods'][number];

export type Overview = Get<'/v1/dashboard/overview'>;
export type Kpi = Overview['kpis'][number];
export type EntityMoney = Overview['totals'][number];
export type EntitySeries = Overview['series'][number];

export type Pipeline = Get<'/v1/dashboard/pipeline'>;
export type IngestCounts = Omit<Pipeline['ingestion']['series'][number], 'at'>;

// Narrowed: the schema leaves last_error an open object; its description names these fields, which the view reads.
export type DeadLetter = Omit<Get<'/v1/dlq'>['dead_letters'][number], 'last_error'> & {
  last_error: { message?: string; status?: number; code?: string } | null;
};

export type Reconciliation = Get<'/v1/periods/{period}/reconciliation'>;
export type CheckpointReport = Reconciliation['checkpoints'][number];
export type Difference = CheckpointReport['differences'][number];
export type ExceptionRecord = Get<'/v1/exceptions'>['exceptions'][number];

export type InvoiceSummary = Get<'/v1/dashboard/invoices'>['invoices'][number];
export type InvoiceStatement = Get<'/v1/dashboard/invoices/{id}'>;
export type StatementParty = NonNullable<InvoiceStatement['seller']>;
export type CustomerSummary = Get<'/v1/dashboard/customers'>['customers'][number];
export type CustomerUsage = Get<'/v1/dashboard/customers/{id}/usage'>;

// Completed: the explain route schemas list no `required`, so every field is optional in the generated types,
// though the server (src/explain/model.ts) always sends every one of them.
export type InvoiceExplanation = Complete<Get<'/v1/invoices/{id}/explain'>>;
export type LineExplanation = InvoiceExplanation['lines'][number];
export type Tier = LineExplanation['tiers'][number];
export type UsageLineage = NonNullable<LineExplanation['usage']>;
export type SampleEvent = UsageLineage['sample'][number];
export type JournalRef = InvoiceExplanation['journals'][number];
export type OutboxRef = JournalRef['outbox'][number];
export type EventExplanation = Complete<Get<'/v1/events/explain'>>;

export type Controls = Get<'/v1/dashboard/controls'>;
export type PendingChange = Controls['pending'][number];
export type DecidedChange = Controls['decisions'][number];
export type ChangeRefusal = Controls['refusals'][number];
