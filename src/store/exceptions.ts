// The one writer of exceptions and their history: a new exception (scope filled for those outside the checkpoints)
// with its opening exception_events row in one statement, and every later move appended with the next ordinal.
import type pg from 'pg';
import { paymentScope, subjectDocuments } from '../domain/exceptions.js';

type Db = pg.Pool | pg.PoolClient;

export interface NewException {
  id: string;
  kind: string;
  owner_queue: 'finance_operations' | 'billing_engineering' | 'integration_support';
  subject: string;
  details: unknown;
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
  documents?: readonly unknown[];
  /** true: last_seen_at is set to now() (a run or a poll saw it). */
  seen?: boolean;
}

/** Who opened it and what the opening event says; settlement's default: `system:settle` and the kind. */
export interface OpeningEvent {
  actor: string;
  details: unknown;
}

export const SETTLE_ACTOR = 'system:settle';

/**
 * An exception without a checkpoint takes its period and currency from the payment in its details, its legal entity
 * and customer from the invoice that payment names, and the payment (its subject) as its document; given values win.
 */
async function withScope(db: Db, row: NewException): Promise<NewException> {
  if ((row.checkpoint ?? null) !== null) return row;
  const scope = paymentScope(JSON.parse(JSON.stringify(row.details)) as unknown);
  const invoice =
    scope.invoice_ref === null
      ? undefined
      : (
          await db.query<{ legal_entity: string | null; customer: string | null }>(
            'SELECT legal_entity, customer FROM invoices WHERE id = $1 OR number = $1 ORDER BY id LIMIT 1',
            [scope.invoice_ref],
          )
        ).rows[0];
  return {
    ...row,
    period: row.period ?? scope.period,
    currency: row.currency ?? scope.currency,
    legal_entity: row.legal_entity ?? invoice?.legal_entity ?? null,
    customer: row.customer ?? invoice?.customer ?? null,
    documents: row.documents === undefined || row.documents.length === 0 ? subjectDocuments(row.subject) : row.documents,
  };
}

/**
 * Opens an exception once: true when this call wrote it (with its `open` event, ordinal 1, dated as the row),
 * false when an exception with that id already exists (nothing is written).
 */
export async function openException(db: Db, input: NewException, opening?: OpeningEvent): Promise<boolean> {
  const row = await withScope(db, input);
  const event = opening ?? { actor: SETTLE_ACTOR, details: { kind: row.kind } };
  const written = await db.query(
    `WITH opened AS (
       INSERT INTO exceptions (id, kind, owner_queue, status, subject, details, checkpoint, period, legal_entity, customer, currency, connector, item,
                               left_amount, right_amount, difference, documents, last_seen_at)
       VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, CASE WHEN $17::boolean THEN now() END)
       ON CONFLICT (id) DO NOTHING RETURNING id, status, created_at)
     INSERT INTO exception_events (exception_id, ordinal, action, from_status, to_status, actor, at, details)
     SELECT id, 1, 'open', NULL, status, $18, created_at, $19 FROM opened`,
    [
      row.id,
      row.kind,
      row.owner_queue,
      row.subject,
      JSON.stringify(row.details),
      row.checkpoint ?? null,
      row.period ?? null,
      row.legal_entity ?? null,
      row.customer ?? null,
      row.currency ?? null,
      row.connector ?? null,
      row.item ?? null,
      row.left_amount ?? null,
      row.right_amount ?? null,
      row.difference ?? null,
      JSON.stringify(row.documents ?? []),
      row.seen ?? false,
      event.actor,
      JSON.stringify(event.details),
    ],
  );
  return (written.rowCount ?? 0) > 0;
}

/** A later move of an exception: cleared, reappeared, assigned, resolved or waived. */
export interface ExceptionEvent {
  exception_id: string;
  action: 'clear' | 'reappear' | 'assign' | 'resolve' | 'waive';
  from_status: string;
  to_status: string;
  actor: string;
  reason?: string | null;
  details?: unknown;
}

/** Appends a move with the exception's next ordinal (run under the exception's row lock, or its clear guard). */
export async function appendExceptionEvent(db: Db, event: ExceptionEvent): Promise<void> {
  await db.query(
    `INSERT INTO exception_events (exception_id, ordinal, action, from_status, to_status, actor, reason, details)
     SELECT $1, coalesce(max(ordinal), 0) + 1, $2, $3, $4, $5, $6, $7 FROM exception_events WHERE exception_id = $1`,
    [
      event.exception_id,
      event.action,
      event.from_status,
      event.to_status,
      event.actor,
      event.reason ?? null,
      event.details === undefined ? null : JSON.stringify(event.details),
    ],
  );
}
