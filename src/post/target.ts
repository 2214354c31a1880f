// The port every ERP target implements. The outbox worker talks to this, never to an ERP's HTTP API directly.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Journal } from '../domain/model.js';
import type { SalesDocument, VoidDocument } from './erp-documents.js';
import type { PaymentDocument } from '../domain/erp.js';

export interface TargetLimits {
  concurrency: number; // requests in flight at once, from the target's documented limits
  requestsPerMinute: number;
}

export interface PostedReference {
  reference: string; // the target's own id for the document
}

/** One document as the target reports it back, for reconciliation (src/reconcile/run.ts). */
export interface ErpDocument {
  key: string; // our idempotency key in the form the target stores it (see ErpTarget.storedKey)
  reference: string; // the target's own id for the document
  currency: string; // ISO 4217; '' when the target does not say (a Xero manual journal is in the organisation's currency)
  form: 'journal' | 'invoice' | 'credit_note'; // how the target holds it: a journal entry, or its own sales document
  amount: string; // major units, decimal string: a journal's debit total; an invoice's or credit note's total with tax
  /** An invoice's or credit note's tax as the ERP holds it (major units, decimal string); absent for a journal. */
  tax?: string;
  posted_on: string; // YYYY-MM-DD
}

/** Limit (TigerStyle): documents one listDocuments call may return; a larger period is refused, never truncated. */
export const ERP_DOCUMENTS_MAX = 100_000;

export interface ErpTarget {
  readonly name: string;
  readonly limits: TargetLimits;
  /** Step 3 of the outbox: the document as the target knows it under our idempotency key, if it has it. */
  find(idempotencyKey: string, journal: Journal): Promise<PostedReference | undefined>;
  /** Step 4: post the document; the key travels in the form the target honours (NetSuite externalId, Xero Idempotency-Key). */
  post(idempotencyKey: string, journal: Journal): Promise<PostedReference>;
  /** Invoices and credit notes in the ERP's own document form (src/post/erp-documents.ts); a target without these gets the journal. */
  findDocument?(idempotencyKey: string, document: SalesDocument): Promise<PostedReference | undefined>;
  postDocument?(idempotencyKey: string, document: SalesDocument): Promise<PostedReference>;
  /** Step 3 for a void: the invoice already voided, or the credit memo already made under our key. */
  findVoid?(idempotencyKey: string, document: VoidDocument): Promise<PostedReference | undefined>;
  /** Step 4 for a void: void or credit the invoice in the ERP; refusals the ERP would make are permanent. */
  postVoid?(idempotencyKey: string, document: VoidDocument): Promise<PostedReference>;
  /** Reconciliation: every document the target holds for a legal entity, posted in an accounting period (YYYY-MM). */
  listDocuments?(legalEntity: string, period: string): Promise<ErpDocument[]>;
  /** Payments Accrue received, pushed to the ERP and applied to their invoice (src/domain/erp.ts). */
  findPayment?(idempotencyKey: string, payment: PaymentDocument): Promise<PostedReference | undefined>;
  postPayment?(idempotencyKey: string, payment: PaymentDocument): Promise<PostedReference>;
  /** The form the target stores our idempotency key in, when it is not verbatim (NetSuite external IDs). */
  storedKey?(idempotencyKey: string): string;
}

/** A target's failure with what the retry logic needs kept intact: status, code, Retry-After, permanence. */
export class TargetError extends Error {
  constructor(
    message: string,
    readonly details: { status?: number; code?: string; retryAfterMs?: number; permanent: boolean; body?: unknown },
  ) {
    super(message);
    this.name = 'TargetError';
  }
}

/**
 * Calls made to the ERP inside a scope: every ErpCaller (src/connectors/caller.ts) adds one per HTTP request it sends
 * (a 401 and its retry are two). The outbox runs each row's work in a scope and records the count as the row's attempts.
 */
export const callScope = new AsyncLocalStorage<{ calls: number }>();
