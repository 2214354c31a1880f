// The port every ERP target implements. The outbox worker talks to this, never to an ERP's HTTP API directly.
import type { Journal } from '../domain/model.js';
import type { SalesDocument } from './erp-documents.js';

export interface TargetLimits {
  concurrency: number; // requests in flight at once, from the target's documented limits
  requestsPerMinute: number;
}

export interface PostedReference {
  reference: string; // the target's own id for the document
}

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
