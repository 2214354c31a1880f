// Invoices in the store: drafts saved by key, finalization with a gapless number per legal entity, credit drawdowns.
import type pg from 'pg';
import { contentHash, toJsonValue } from '../domain/canonical.js';
import type { Invoice } from '../domain/model.js';
import { ProblemError } from '../domain/result.js';
import { appendAudit } from '../audit/log.js';

export const INVOICE_NUMBER_DIGITS = 6;

/** What makes two drafts "the same content": everything but the state finalization assigns. */
export function invoiceContentHash(invoice: Invoice): string {
  const { number: _number, status: _status, ...content } = invoice;
  return contentHash(content);
}

/**
 * A draft as it was drafted before invoices carried legal content (issue and due dates, seller and buyer, the package
 * a line is billed in): a re-run over a period finalized then compares against this, and finds its invoice unchanged.
 */
export function withoutLegalContent(invoice: Invoice): Invoice {
  const { issue_date: _issue, payment_terms_days: _terms, due_date: _due, seller: _seller, buyer: _buyer, ...rest } = invoice;
  return {
    ...rest,
    lines: invoice.lines.map(({ package: billed, ...line }) =>
      billed
        ? {
            ...line,
            description: line.description.replace(/ \(\d+ packages? of [^)]*\)$/, ` (${billed.quantity} packages of ${billed.size})`),
          }
        : line,
    ),
  };
}

export function formatInvoiceNumber(prefix: string, sequence: bigint): string {
  return `${prefix}${sequence.toString().padStart(INVOICE_NUMBER_DIGITS, '0')}`;
}

export interface SavedInvoice {
  invoice: Invoice;
  created: boolean;
}

/**
 * Saves a draft under its key. Same key and same content: the stored invoice (finalized or not) comes back.
 * Same key, other content: a draft is replaced; a finalized invoice is a conflict (corrections are credit notes).
 */
export async function saveDraft(client: pg.PoolClient, invoice: Invoice): Promise<SavedInvoice> {
  const hash = invoiceContentHash(invoice);
  const existing = (
    await client.query<{ id: string; status: string; content_hash: string; document: unknown }>(
      'SELECT id, status, content_hash, document FROM invoices WHERE key = $1 FOR UPDATE',
      [invoice.key],
    )
  ).rows[0];
  if (existing) {
    if (existing.content_hash === hash) return { invoice: fromDocument(existing.document), created: false };
    // Stored before invoices carried their legal content: the same draft without it is the same document.
    if (existing.status !== 'draft' && existing.content_hash === invoiceContentHash(withoutLegalContent(invoice)))
      return { invoice: fromDocument(existing.document), created: false };
    if (existing.status !== 'draft') {
      throw new ProblemError(
        [
          {
            path: 'key',
            code: 'exists_with_different_content',
            message: `invoice ${invoice.key} is already ${existing.status} with other content; correct it with a credit note`,
          },
        ],
        409,
      );
    }
    await client.query('DELETE FROM invoice_lines WHERE invoice_id = $1', [existing.id]);
    await client.query('DELETE FROM invoices WHERE id = $1', [existing.id]);
  }
  await client.query(
    `INSERT INTO invoices (id, key, kind, corrects, number, status, legal_entity, customer, currency, period, period_start, period_end, rounding,
                           subtotal_minor, discount_minor, credits_applied_minor, tax_minor, total_minor, rating_run, document, content_hash,
                           issue_date, due_date)
     VALUES ($1, $2, $3, $4, NULL, 'draft', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
    [
      invoice.id,
      invoice.key,
      invoice.kind,
      invoice.corrects ?? null,
      invoice.legal_entity,
      invoice.customer,
      invoice.currency,
      invoice.period_start.slice(0, 7),
      invoice.period_start,
      invoice.period_end,
      invoice.rounding,
      invoice.subtotal_minor.toString(),
      invoice.discount_minor.toString(),
      invoice.credits_applied_minor.toString(),
      invoice.tax_minor.toString(),
      invoice.total_minor.toString(),
      invoice.kind === 'invoice' ? invoice.rating_run : null,
      JSON.stringify(toJsonValue({ ...invoice, status: 'draft', number: null })),
      hash,
      invoice.issue_date ?? null,
      invoice.due_date ?? null,
    ],
  );
  if (invoice.lines.length > 0) {
    await client.query(
      `INSERT INTO invoice_lines (invoice_id, line_no, kind, product, meter, price_id, price_version, quantity, amount_minor, usage_ref, credit_grant)
       SELECT $1, l.line_no, l.kind, l.product, l.meter, l.price_id, l.price_version, l.quantity, l.amount_minor, l.usage_ref, l.credit_grant
         FROM jsonb_to_recordset($2::jsonb) AS l(line_no int, kind text, product text, meter text, price_id text, price_version text,
              quantity numeric, amount_minor bigint, usage_ref text, credit_grant text)`,
      [invoice.id, JSON.stringify(toJsonValue(invoice.lines))],
    );
  }
  return { invoice: { ...invoice, status: 'draft', number: null }, created: true };
}

/** Finalizes a draft: takes the next number of its legal entity in this transaction and records credit drawdowns. */
export async function finalizeInvoice(
  client: pg.PoolClient,
  invoiceId: string,
  prefix: string,
  actor = 'system:billing-run',
): Promise<Invoice> {
  const row = (
    await client.query<{ status: string; document: unknown; legal_entity: string; kind: string }>(
      'SELECT status, document, legal_entity, kind FROM invoices WHERE id = $1 FOR UPDATE',
      [invoiceId],
    )
  ).rows[0];
  if (!row) throw new ProblemError([{ path: 'id', code: 'not_found', message: `no invoice ${invoiceId}` }], 404);
  if (row.status !== 'draft') return fromDocument(row.document);
  const sequence = (
    await client.query<{ last_number: string }>(
      `INSERT INTO invoice_number_sequences (legal_entity, kind, last_number) VALUES ($1, $2, 1)
     ON CONFLICT (legal_entity, kind) DO UPDATE SET last_number = invoice_number_sequences.last_number + 1
     RETURNING last_number`,
      [row.legal_entity, row.kind],
    )
  ).rows[0]!;
  const invoice = fromDocument(row.document);
  const number = formatInvoiceNumber(row.kind === 'credit_note' ? `${prefix}CN-` : prefix, BigInt(sequence.last_number));
  const finalized: Invoice = { ...invoice, status: 'finalized', number };
  await client.query(`UPDATE invoices SET status = 'finalized', number = $2, document = $3, finalized_at = now() WHERE id = $1`, [
    invoiceId,
    number,
    JSON.stringify(toJsonValue(finalized)),
  ]);
  // One drawdown per grant: a grant drawn across several products' lines is recorded once, summed.
  const drawn = new Map<string, bigint>();
  // A credit note gives its invoice's drawdowns back by existing (rate/store.ts grantBalancesUsed leaves credited invoices out).
  for (const line of finalized.kind === 'invoice' ? finalized.lines : []) {
    if (line.kind === 'credit' && line.credit_grant) drawn.set(line.credit_grant, (drawn.get(line.credit_grant) ?? 0n) - line.amount_minor);
  }
  for (const [grant, amount] of drawn) {
    await client.query(
      'INSERT INTO credit_drawdowns (grant_id, invoice_id, customer, currency, amount_minor) VALUES ($1, $2, $3, $4, $5)',
      [grant, invoiceId, finalized.customer, finalized.currency, amount.toString()],
    );
  }
  await appendAudit(client, { actor, action: `${finalized.kind}.finalize`, subject: invoiceId, details: auditSummary(finalized) });
  return finalized;
}

/** What an audit record says about an invoice: enough to find it and see its amount, not the whole document. */
export function auditSummary(invoice: Invoice) {
  return {
    number: invoice.number,
    kind: invoice.kind,
    legal_entity: invoice.legal_entity,
    customer: invoice.customer,
    currency: invoice.currency,
    period_start: invoice.period_start,
    total_minor: invoice.total_minor,
    corrects: invoice.corrects ?? null,
  };
}

const BIGINT_FIELDS = ['subtotal_minor', 'discount_minor', 'credits_applied_minor', 'tax_minor', 'total_minor'] as const;

/** Reads a stored invoice document back into the model (bigint amounts). */
export function fromDocument(document: unknown): Invoice {
  const doc = structuredClone(document) as Record<string, unknown>;
  for (const field of BIGINT_FIELDS) doc[field] = BigInt(doc[field] as string);
  doc.lines = (doc.lines as Array<Record<string, unknown>>).map((l) => ({ ...l, amount_minor: BigInt(l.amount_minor as string) }));
  doc.tax_lines = (doc.tax_lines as Array<Record<string, unknown>>).map((t) => ({
    ...t,
    taxable_minor: BigInt(t.taxable_minor as string),
    tax_minor: BigInt(t.tax_minor as string),
  }));
  return doc as unknown as Invoice;
}

/**
 * The id of the invoice or credit note an id, or a number, names. Numbers are gapless per legal entity, so two
 * entities with the same prefix can share one: a number is looked up within `entity` when given, and a number that
 * names documents of several entities is refused (409, naming them) rather than one of them picked.
 */
export async function resolveInvoiceId(
  db: pg.Pool | pg.PoolClient,
  idOrNumber: string,
  scope: InvoiceScope = {},
): Promise<string | undefined> {
  const rows = (
    await db.query<{ id: string; legal_entity: string; number: string | null }>(
      `SELECT id, legal_entity, number FROM invoices WHERE (id = $1 OR number = $1) AND ($2::text IS NULL OR legal_entity = $2)
          AND ($3::text[] IS NULL OR legal_entity = ANY ($3))
        ORDER BY legal_entity, id LIMIT ${INVOICE_LOOKUP_MATCHES_MAX}`,
      [idOrNumber, scope.entity ?? null, scope.entities && scope.entities.length > 0 ? [...scope.entities] : null],
    )
  ).rows;
  const byId = rows.find((r) => r.id === idOrNumber);
  if (byId) return byId.id;
  if (rows.length > 1) {
    throw new ProblemError(
      [
        {
          path: 'invoice',
          code: 'ambiguous',
          message: `${idOrNumber} names documents of ${rows.length} legal entities (${rows.map((r) => r.legal_entity).join(', ')}); give the legal entity (--entity) or the invoice id`,
        },
      ],
      409,
    );
  }
  return rows[0]?.id;
}

/** Limit: documents one number can name (one per legal entity); a refusal lists at most this many entities. */
export const INVOICE_LOOKUP_MATCHES_MAX = 50;

/**
 * Where a lookup by id or number looks: `entity`, the legal entity whose number it is (needed when two share it);
 * `entities`, a key's entity limit (empty or absent: every entity), so another entity's document is not found at all.
 */
export interface InvoiceScope {
  entity?: string;
  entities?: readonly string[];
}

/** An invoice by id, or by number within the scope (an ambiguous number is refused: see resolveInvoiceId). */
export async function getInvoice(db: pg.Pool | pg.PoolClient, idOrNumber: string, scope: InvoiceScope = {}): Promise<Invoice | undefined> {
  const id = await resolveInvoiceId(db, idOrNumber, scope);
  if (id === undefined) return undefined;
  const row = (
    await db.query<{ document: unknown; status: Invoice['status'] }>('SELECT document, status FROM invoices WHERE id = $1', [id])
  ).rows[0];
  // The document is the finalized snapshot; voiding moves only the status column.
  return row ? { ...fromDocument(row.document), status: row.status } : undefined;
}

/** Invoices of a period or customer; with `entities`, only those legal entities' (a key's entity limit). */
export async function listInvoices(
  db: pg.Pool | pg.PoolClient,
  filter: { period?: string; customer?: string; entities?: readonly string[] } = {},
): Promise<Invoice[]> {
  const rows = (
    await db.query<{ document: unknown; status: Invoice['status'] }>(
      `SELECT document, status FROM invoices WHERE ($1::text IS NULL OR period = $1) AND ($2::text IS NULL OR customer = $2)
         AND ($3::text[] IS NULL OR legal_entity = ANY($3))
      ORDER BY legal_entity, number NULLS LAST, key`,
      [filter.period ?? null, filter.customer ?? null, filter.entities ?? null],
    )
  ).rows;
  return rows.map((r) => ({ ...fromDocument(r.document), status: r.status }));
}
