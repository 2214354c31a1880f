// Exceptions the outbox raises instead of retrying or dead-lettering: a mapping missing or refused by the ERP
// (integration support), a document dated in a period the ERP has closed or locked (finance operations). The document
// waits; the exception lists the documents waiting for it and is cleared once none waits any more.
import type pg from 'pg';
import { exceptionId } from '../domain/keys.js';
import { appendExceptionEvent, openException } from '../store/exceptions.js';

export type ErpExceptionKind = 'erp_mapping_missing' | 'erp_period_locked';

const QUEUE: Record<ErpExceptionKind, 'integration_support' | 'finance_operations'> = {
  erp_mapping_missing: 'integration_support',
  erp_period_locked: 'finance_operations',
};

/** The codes a waiting outbox row carries in last_error for each kind. */
export const WAITING_CODE: Record<ErpExceptionKind, string> = {
  erp_mapping_missing: 'mapping_missing',
  erp_period_locked: 'period_locked',
};

export interface ErpExceptionInput {
  kind: ErpExceptionKind;
  connection: string;
  subject: string; // one exception per subject: `<connection>:<kind>:<source>` for a mapping, the outbox key for a period
  details: Record<string, unknown>;
  /** The waiting document: the outbox key and the journal it carries. */
  document: { key: string; journal: string };
  legal_entity?: string;
  customer?: string;
  currency?: string;
}

/** Opens the exception (or adds the document to the one already open, reopening it if it had been cleared). */
export async function openErpException(db: pg.Pool | pg.PoolClient, input: ErpExceptionInput): Promise<string> {
  const id = exceptionId(input.kind, input.subject);
  const document = { kind: 'outbox', id: input.document.key, journal: input.document.journal, connector: input.connection };
  const opened = await openException(db, {
    id,
    kind: input.kind,
    owner_queue: QUEUE[input.kind],
    subject: input.subject,
    details: input.details,
    connector: input.connection,
    legal_entity: input.legal_entity ?? null,
    customer: input.customer ?? null,
    currency: input.currency ?? null,
    documents: [document],
    seen: true,
  });
  if (opened) return id;
  // Already there (exceptions are never deleted): the document joins its list, and a cleared one is seen again.
  await db.query(
    `UPDATE exceptions SET
         details = $2,
         documents = CASE WHEN documents @> jsonb_build_array($3::jsonb) THEN documents ELSE documents || jsonb_build_array($3::jsonb) END,
         last_seen_at = now(), updated_at = now(),
         cleared_at = CASE WHEN status IN ('open', 'assigned') THEN NULL ELSE cleared_at END
       WHERE id = $1`,
    [id, JSON.stringify(input.details), JSON.stringify(document)],
  );
  return id;
}

/**
 * After a document posted: each open exception that listed it is cleared when none of its documents still waits
 * (a pending outbox row carrying the exception's waiting code). Cleared, not closed: a person resolves or waives it.
 */
export async function clearErpExceptions(db: pg.Pool | pg.PoolClient, connection: string, key: string): Promise<void> {
  const open = await db.query<{ id: string; kind: ErpExceptionKind; status: string; documents: Array<{ id: string }> }>(
    `SELECT id, kind, status, documents FROM exceptions
      WHERE connector = $1 AND kind IN ('erp_mapping_missing', 'erp_period_locked') AND status IN ('open', 'assigned') AND cleared_at IS NULL
        AND documents @> jsonb_build_array(jsonb_build_object('id', $2::text))`,
    [connection, key],
  );
  for (const exception of open.rows) {
    const keys = exception.documents.map((d) => d.id);
    const waiting = await db.query(`SELECT 1 FROM outbox WHERE key = ANY($1) AND status = 'pending' AND last_error->>'code' = $2 LIMIT 1`, [
      keys,
      WAITING_CODE[exception.kind],
    ]);
    if (waiting.rowCount) continue;
    const cleared = await db.query('UPDATE exceptions SET cleared_at = now(), updated_at = now() WHERE id = $1 AND cleared_at IS NULL', [
      exception.id,
    ]);
    if (!cleared.rowCount) continue;
    await appendExceptionEvent(db, {
      exception_id: exception.id,
      action: 'clear',
      from_status: exception.status,
      to_status: exception.status,
      actor: 'system:outbox',
      reason: 'every document that waited for it has posted',
      details: { last_document: key },
    });
  }
}
