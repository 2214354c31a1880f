// Where a disputed line stands: its full credit (amount and tax share at the invoice's own rate), what earlier
// disputes' credit notes took from it, and what is left; and whether a correction reversed the whole invoice.
import type pg from 'pg';
import type { Invoice, InvoiceLine } from '../domain/model.js';
import { formatMajor } from '../domain/money.js';
import { ProblemError } from '../domain/result.js';
import { fromDocument } from '../invoice/store.js';
import { invoiceTaxRate, lineCredit, remainingCredit, type CreditParts } from './amounts.js';

type Db = pg.Pool | pg.PoolClient;

/**
 * The credit note that reversed the whole invoice (a late-usage correction), if one did. A dispute's credit note
 * credits part of a line and leaves the invoice in force, so it is not one.
 */
export async function reversingCreditNote(db: Db, invoiceId: string): Promise<string | undefined> {
  const row = (
    await db.query<{ name: string }>(
      `SELECT coalesce(cn.number, cn.id) AS name FROM invoices cn
        WHERE cn.corrects = $1 AND cn.kind = 'credit_note' AND cn.status <> 'void'
          AND NOT EXISTS (SELECT 1 FROM disputes d WHERE d.credit_note = cn.id)
        ORDER BY cn.id LIMIT 1`,
      [invoiceId],
    )
  ).rows[0];
  return row?.name;
}

export interface LineStanding {
  invoice: Invoice;
  invoice_status: string;
  line: InvoiceLine;
  rate: string;
  full: CreditParts;
  credited: CreditParts[];
  remaining: CreditParts;
}

/** The line's standing now (read in the caller's transaction when it is about to credit it). */
export async function lineStanding(db: Db, invoiceId: string, lineNo: number): Promise<LineStanding> {
  const row = (await db.query<{ document: unknown; status: string }>('SELECT document, status FROM invoices WHERE id = $1', [invoiceId]))
    .rows[0];
  if (!row) throw new ProblemError([{ path: 'invoice', code: 'not_found', message: `no invoice ${invoiceId}` }], 404);
  const invoice = fromDocument(row.document);
  const line = invoice.lines.find((l) => l.line_no === lineNo);
  if (!line) throw new ProblemError([{ path: 'line', code: 'no_such_line', message: `${invoiceId} has no line ${lineNo}` }], 400);
  const credited = (
    await db.query<{ net: string; tax: string }>(
      `SELECT cn.subtotal_minor::text AS net, cn.tax_minor::text AS tax FROM disputes d JOIN invoices cn ON cn.id = d.credit_note
        WHERE d.invoice_id = $1 AND d.line_no = $2 AND d.status = 'resolved' AND cn.status <> 'void' ORDER BY d.id`,
      [invoiceId, lineNo],
    )
  ).rows.map((r) => ({ net: BigInt(r.net), tax: BigInt(r.tax), gross: BigInt(r.net) + BigInt(r.tax) }));
  const full = lineCredit(invoice, line);
  return {
    invoice,
    invoice_status: row.status,
    line,
    rate: invoiceTaxRate(invoice),
    full,
    credited,
    remaining: remainingCredit(full, credited),
  };
}

/** What a dispute's line can still be credited, as decimal strings of its currency, for show. */
export interface LineCreditView {
  tax_rate: string;
  full: string; // the line's amount and its tax share
  credited: string; // by earlier disputes' credit notes
  remaining: string; // what --credit may be at most
}

export async function lineCreditView(db: Db, invoiceId: string, lineNo: number): Promise<LineCreditView> {
  const s = await lineStanding(db, invoiceId, lineNo);
  const m = (minor: bigint) => formatMajor(minor, s.invoice.currency);
  return { tax_rate: s.rate, full: m(s.full.gross), credited: m(s.full.gross - s.remaining.gross), remaining: m(s.remaining.gross) };
}
