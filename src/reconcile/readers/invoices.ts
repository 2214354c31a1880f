// The invoice side: the charges of each finalized document against the stored invoice lines, per line
// (checkpoint rated_vs_invoice_lines).
import { Sides, type Db } from '../sides.js';

interface DocumentLine {
  line_no: number;
  kind: string;
  price_id: string | null;
  product: string;
}

interface InvoiceHead {
  id: string;
  number: string | null;
  customer: string;
  currency: string;
  document: { lines: Array<DocumentLine & { amount_minor: string }> };
}

const lineItem = (number: string, l: DocumentLine): string => `${number} line ${l.line_no} ${l.kind}:${l.price_id ?? l.product}`;

/** Rated charges (the finalized document's lines) against the stored invoice lines, per line. */
export async function invoiceLineSides(db: Db, entity: string, period: string): Promise<Sides> {
  const sides = new Sides();
  const invoices = (
    await db.query<InvoiceHead>(
      `SELECT id, number, customer, currency, document FROM invoices
        WHERE legal_entity = $1 AND period = $2 AND status <> 'draft' ORDER BY id`,
      [entity, period],
    )
  ).rows;
  const add = (side: 'left' | 'right', invoice: InvoiceHead, line: DocumentLine, amount: string) =>
    sides.add(
      side,
      { legal_entity: entity, customer: invoice.customer, currency: invoice.currency, item: lineItem(invoice.number ?? invoice.id, line) },
      BigInt(amount),
      [{ kind: 'invoice', id: invoice.id }],
    );
  for (const invoice of invoices) for (const line of invoice.document.lines) add('left', invoice, line, line.amount_minor);
  const byId = new Map(invoices.map((i) => [i.id, i]));
  const rows = (
    await db.query<DocumentLine & { invoice_id: string; amount_minor: string }>(
      `SELECT l.invoice_id, l.line_no, l.kind, l.price_id, l.product, l.amount_minor::text AS amount_minor
         FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
        WHERE i.legal_entity = $1 AND i.period = $2 AND i.status <> 'draft' ORDER BY l.invoice_id, l.line_no`,
      [entity, period],
    )
  ).rows;
  for (const row of rows) add('right', byId.get(row.invoice_id)!, row, row.amount_minor);
  return sides;
}
