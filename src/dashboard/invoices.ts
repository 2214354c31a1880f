// Invoice search for support and finance: by number, id, customer (id or name), period, legal entity and status.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { formatMajor } from '../domain/money.js';
import type { Invoice, InvoiceParty } from '../domain/model.js';
import { addressLines, paymentTermsText } from '../domain/invoice-terms.js';
import { invoiceAmounts } from '../invoice/export.js';

/** Limit: rows one search page returns. */
export const INVOICE_PAGE_MAX = 200;

export interface InvoiceSearch {
  q?: string;
  period?: string;
  customer?: string;
  legal_entity?: string;
  /** Only these legal entities' documents (a key's entity limit); absent: every entity. */
  entities?: readonly string[];
  status?: 'finalized' | 'void' | 'draft';
  payment_status?: 'unpaid' | 'partially_paid' | 'paid';
  limit: number;
  offset: number;
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
  /** posted: every ERP entry posted (or the built-in ledger only); pending; dead: an entry is in the dead-letter queue. */
  posting: 'posted' | 'pending' | 'dead' | 'none';
}

/** The condition a free-text search adds, its values pushed onto params: number, id or customer id, or a customer name. */
function textMatch(catalog: CatalogVersion | undefined, text: string, params: unknown[]): string {
  // A customer name matches through the catalog, which holds the names.
  const named = (catalog?.catalog.customers ?? []).filter((c) => c.name.toLowerCase().includes(text.toLowerCase())).map((c) => c.id);
  params.push(`%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  const like = `$${params.length}`;
  params.push(named);
  return `(i.number ILIKE ${like} OR i.id ILIKE ${like} OR i.customer ILIKE ${like} OR i.customer = ANY($${params.length}))`;
}

export async function searchInvoices(
  pool: pg.Pool,
  catalog: CatalogVersion | undefined,
  search: InvoiceSearch,
): Promise<{ total: number; invoices: InvoiceSummary[] }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (search.q) where.push(textMatch(catalog, search.q.trim(), params));
  if (search.period) add('i.period = ?', search.period);
  if (search.customer) add('i.customer = ?', search.customer);
  if (search.legal_entity) add('i.legal_entity = ?', search.legal_entity);
  if (search.entities) add('i.legal_entity = ANY(?)', search.entities);
  if (search.status) add('i.status = ?', search.status);
  if (search.payment_status) add('i.payment_status = ?', search.payment_status);
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM invoices i ${clause}`, params)).rows[0]!.n;
  const limit = Math.min(search.limit, INVOICE_PAGE_MAX);
  const rows = (
    await pool.query<
      Pick<InvoiceSummary, 'id' | 'number' | 'kind' | 'status' | 'legal_entity' | 'customer' | 'currency' | 'period' | 'payment_status'> & {
        total_minor: string;
        amount_paid_minor: string;
        finalized_at: Date | null;
        entries: number;
        posted: number;
        dead: number;
      }
    >(
      `WITH entries AS (SELECT coalesce(j.source_document, o.document_id) AS invoice_id, o.status FROM outbox o LEFT JOIN journals j ON j.id = o.document_id)
       SELECT i.id, i.number, i.kind, i.status, i.legal_entity, i.customer, i.currency, i.period, i.total_minor::text, i.amount_paid_minor::text,
              i.payment_status, i.finalized_at,
              (SELECT count(*)::int FROM entries e WHERE e.invoice_id = i.id) AS entries,
              (SELECT count(*)::int FROM entries e WHERE e.invoice_id = i.id AND e.status = 'posted') AS posted,
              (SELECT count(*)::int FROM entries e WHERE e.invoice_id = i.id AND e.status = 'dead') AS dead
         FROM invoices i ${clause}
        ORDER BY i.period DESC, i.legal_entity, i.number NULLS LAST, i.id
        LIMIT ${limit} OFFSET ${Math.max(0, Math.floor(search.offset))}`,
      params,
    )
  ).rows;
  return {
    total,
    invoices: rows.map((r) => ({
      id: r.id,
      number: r.number,
      kind: r.kind,
      status: r.status,
      legal_entity: r.legal_entity,
      customer: r.customer,
      customer_name: catalog?.index.customers.get(r.customer)?.name ?? null,
      currency: r.currency,
      period: r.period,
      total: formatMajor(BigInt(r.total_minor), r.currency),
      amount_paid: formatMajor(BigInt(r.amount_paid_minor), r.currency),
      payment_status: r.payment_status,
      finalized_at: r.finalized_at?.toISOString() ?? null,
      posting: r.status === 'draft' ? 'none' : r.dead > 0 ? 'dead' : r.entries === r.posted ? 'posted' : 'pending',
    })),
  };
}

// ---------- one invoice's statement: what the customer is billed, line totals to total ----------

export interface InvoiceStatementParty {
  name: string;
  address_lines: string[]; // as printed: street lines, postal code and city, region and country
  tax_id: string | null;
}

/** An invoice's amounts as its PDF sums them (subtotal, discounts, credits, tax per jurisdiction, total) and its legal content. */
export interface InvoiceStatement {
  id: string;
  number: string | null;
  kind: 'invoice' | 'credit_note';
  currency: string;
  issue_date: string | null;
  due_date: string | null;
  payment_terms: string | null;
  seller: InvoiceStatementParty | null;
  buyer: InvoiceStatementParty | null;
  subtotal: string;
  discount: string;
  credits_applied: string;
  tax_lines: Array<{ jurisdiction: string; rate: string; taxable: string; tax: string }>;
  tax: string;
  total: string;
}

const nullable = (type: string) => ({ type: [type, 'null'] }) as const;
const closedObject = (properties: Record<string, unknown>) =>
  ({ type: 'object', required: Object.keys(properties), properties, additionalProperties: false }) as const;
const MONEY_TEXT = { type: 'string', pattern: '^-?\\d+(\\.\\d+)?$', description: 'a decimal string in major units' } as const;
const partySchema = {
  anyOf: [
    closedObject({ name: { type: 'string' }, address_lines: { type: 'array', items: { type: 'string' } }, tax_id: nullable('string') }),
    { type: 'null' },
  ],
} as const;

/** The response schema of GET /v1/dashboard/invoices/{id}. */
export const invoiceStatementSchema = closedObject({
  id: { type: 'string' },
  number: nullable('string'),
  kind: { type: 'string', enum: ['invoice', 'credit_note'] },
  currency: { type: 'string' },
  issue_date: { ...nullable('string'), description: 'null on a document stored before issue dates were recorded' },
  due_date: { ...nullable('string'), description: 'issue date + payment terms; null on a credit note' },
  payment_terms: { ...nullable('string'), description: '"Net 30", or "Due on receipt"' },
  seller: partySchema,
  buyer: partySchema,
  subtotal: MONEY_TEXT,
  discount: { ...MONEY_TEXT, description: 'positive: the total of the discount lines' },
  credits_applied: { ...MONEY_TEXT, description: 'positive: the total drawn from prepaid credits' },
  tax_lines: {
    type: 'array',
    items: closedObject({ jurisdiction: { type: 'string' }, rate: { type: 'string' }, taxable: MONEY_TEXT, tax: MONEY_TEXT }),
  },
  tax: MONEY_TEXT,
  total: MONEY_TEXT,
});

export function invoiceStatement(invoice: Invoice): InvoiceStatement {
  const party = (p: InvoiceParty | undefined): InvoiceStatementParty | null =>
    p ? { name: p.name, address_lines: addressLines(p.address), tax_id: p.tax_id } : null;
  const terms = invoice.payment_terms_days;
  return {
    id: invoice.id,
    number: invoice.number,
    kind: invoice.kind,
    currency: invoice.currency,
    issue_date: invoice.issue_date ?? null,
    due_date: invoice.due_date ?? null,
    payment_terms: terms === undefined || terms === null ? null : paymentTermsText(terms),
    seller: party(invoice.seller),
    buyer: party(invoice.buyer),
    ...invoiceAmounts(invoice),
  };
}
