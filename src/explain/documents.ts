// Read-side lookups every explanation shares: invoices by id, number or correlation id, their rating run, journals,
// outbox rows and ERP references, and whether a rating run counted late usage.
import type pg from 'pg';
import { catalogVersion, type CatalogVersion } from '../catalog/service.js';
import { isCorrelationId } from '../domain/correlation.js';
import { fail, ok, problem, type Result } from '../domain/result.js';
import type { DocumentRef, JournalRef, OutboxRef, RatingRunRef } from './model.js';

export interface InvoiceRow {
  id: string;
  number: string | null;
  kind: 'invoice' | 'credit_note';
  status: string;
  corrects: string | null;
  legal_entity: string;
  customer: string;
  currency: string;
  period: string;
  document: Record<string, unknown>;
  payment_status: string;
  amount_paid_minor: string;
  finalized_at: Date | null;
}

const INVOICE_COLUMNS =
  'id, number, kind, status, corrects, legal_entity, customer, currency, period, document, payment_status, amount_paid_minor, finalized_at';

export const documentRef = (row: Pick<InvoiceRow, 'id' | 'number' | 'kind' | 'status'>): DocumentRef => ({
  id: row.id,
  number: row.number,
  kind: row.kind,
  status: row.status,
});

/**
 * By id, by number (numbers are per legal entity, so two entities may share one) or by a correlation id; with
 * `entities`, only among those legal entities' documents (a key's entity limit: the others do not exist for it).
 */
export async function findInvoice(db: pg.Pool | pg.PoolClient, ref: string, entities?: readonly string[]): Promise<Result<InvoiceRow>> {
  const scope = '($2::text[] IS NULL OR legal_entity = ANY($2))';
  const rows = isCorrelationId(ref)
    ? (
        await db.query<InvoiceRow>(
          `SELECT ${INVOICE_COLUMNS} FROM invoices WHERE id IN (SELECT invoice FROM correlations WHERE correlation_id = $1 AND subject_kind = 'invoice') AND ${scope} ORDER BY id`,
          [ref, entities ?? null],
        )
      ).rows
    : (
        await db.query<InvoiceRow>(`SELECT ${INVOICE_COLUMNS} FROM invoices WHERE (id = $1 OR number = $1) AND ${scope} ORDER BY id`, [
          ref,
          entities ?? null,
        ])
      ).rows;
  if (rows.length === 0) return fail(problem('invoice', 'not_found', `no invoice, credit note or correlation ${JSON.stringify(ref)}`));
  if (rows.length > 1) {
    return fail(
      problem(
        'invoice',
        'ambiguous',
        `${JSON.stringify(ref)} names ${rows.length} documents (${rows.map((r) => `${r.number ?? r.id} of ${r.legal_entity}`).join(', ')}); give the invoice id`,
      ),
    );
  }
  return ok(rows[0]!);
}

export async function invoiceById(db: pg.Pool | pg.PoolClient, id: string): Promise<InvoiceRow | undefined> {
  return (await db.query<InvoiceRow>(`SELECT ${INVOICE_COLUMNS} FROM invoices WHERE id = $1`, [id])).rows[0];
}

export interface RatingRunRow {
  id: string;
  customer: string;
  period: string;
  catalog_version: number;
  catalog_hash: string;
  event_seq_watermark: string;
  usage: Array<{ usage_ref: string; quantity: string; event_count: number }>;
  created_at: Date;
}

export async function ratingRun(db: pg.Pool | pg.PoolClient, id: string): Promise<RatingRunRow | undefined> {
  return (
    await db.query<RatingRunRow>(
      'SELECT id, customer, period, catalog_version, catalog_hash, event_seq_watermark, usage, created_at FROM rating_runs WHERE id = $1',
      [id],
    )
  ).rows[0];
}

/**
 * A replacement issued for late usage was rated with late events included (src/invoice/billing-run.ts
 * correctLateUsage); every other invoice was rated without them. A credit note reverses its corrected invoice, so
 * the question is asked of that one.
 */
export async function ratedWithLateUsage(db: pg.Pool | pg.PoolClient, invoiceId: string): Promise<boolean> {
  return ((await db.query('SELECT 1 FROM late_usage_adjustments WHERE replacement = $1 LIMIT 1', [invoiceId])).rowCount ?? 0) > 0;
}

export function ratingRunRef(run: RatingRunRow, includesLate: boolean): RatingRunRef {
  return {
    id: run.id,
    period: run.period,
    catalog_version: run.catalog_version,
    catalog_hash: run.catalog_hash,
    event_seq_watermark: run.event_seq_watermark,
    includes_late_usage: includesLate,
    rated_at: run.created_at.toISOString(),
  };
}

export async function catalogOfRun(db: pg.Pool | pg.PoolClient, run: RatingRunRow | undefined): Promise<CatalogVersion | undefined> {
  return run ? catalogVersion(db, run.catalog_version) : undefined;
}

const errorText = (value: unknown): string | null => {
  if (value === null || value === undefined) return null;
  const message = (value as { message?: unknown }).message;
  return typeof message === 'string' ? message : JSON.stringify(value);
};

/** The journals written for these source documents (invoices; payments applied to them), with their outbox rows. */
export async function journalsOf(db: pg.Pool | pg.PoolClient, invoiceIds: readonly string[]): Promise<JournalRef[]> {
  if (invoiceIds.length === 0) return [];
  const heads = (
    await db.query<{ id: string; kind: string; posting_date: string; dated_on: string | null; posting_policy: string; memo: string }>(
      `SELECT id, kind, posting_date, dated_on, posting_policy, memo FROM journals
        WHERE source_document = ANY($1) OR source_document IN (SELECT id FROM payments WHERE invoice_id = ANY($1))
        ORDER BY posting_date, id`,
      [invoiceIds],
    )
  ).rows;
  const outbox = await outboxOf(
    db,
    heads.map((h) => h.id),
  );
  return heads.map((h) => ({ ...h, outbox: outbox.filter((o) => o.journal === h.id) }));
}

export async function outboxOf(db: pg.Pool | pg.PoolClient, journalIds: readonly string[]): Promise<OutboxRef[]> {
  if (journalIds.length === 0) return [];
  const rows = (
    await db.query<{
      key: string;
      target: string;
      document_id: string;
      status: string;
      attempts: number;
      target_reference: string | null;
      posted_at: Date | null;
      last_error: unknown;
    }>(
      'SELECT key, target, document_id, status, attempts, target_reference, posted_at, last_error FROM outbox WHERE document_id = ANY($1) ORDER BY document_id, target',
      [journalIds],
    )
  ).rows;
  return rows.map((r) => ({
    key: r.key,
    target: r.target,
    journal: r.document_id,
    status: r.status,
    attempts: r.attempts,
    erp_document: r.target_reference,
    posted_at: r.posted_at?.toISOString() ?? null,
    last_error: errorText(r.last_error),
  }));
}

/** Documents that correct this one: the credit note reversing it and the replacement issued with it. */
export async function correctionsOf(db: pg.Pool | pg.PoolClient, invoiceId: string): Promise<DocumentRef[]> {
  const rows = (
    await db.query<InvoiceRow>(
      `SELECT ${INVOICE_COLUMNS} FROM invoices WHERE corrects = $1 AND status <> 'draft' ORDER BY kind DESC, finalized_at, id`,
      [invoiceId],
    )
  ).rows;
  return rows.map(documentRef);
}

export async function storedCorrelation(db: pg.Pool | pg.PoolClient, invoiceId: string): Promise<string | undefined> {
  return (
    await db.query<{ correlation_id: string }>(
      "SELECT correlation_id FROM correlations WHERE subject_kind = 'invoice' AND subject_id = $1",
      [invoiceId],
    )
  ).rows[0]?.correlation_id;
}
