// Invoices and credit notes in the form an ERP books them itself (a NetSuite invoice or creditMemo, a Xero ACCREC
// invoice or ACCRECCREDIT credit note) instead of as a manual journal: one line per product on its revenue account,
// the tax spread over those lines. The ERP then books the receivable, revenue and tax from the document, so the
// document's own journal is not sent as well (that would book it twice); drawdown journals still go as journals.
import type pg from 'pg';
import { catalogVersion, currentCatalog, type CatalogVersion } from '../catalog/service.js';
import type { Invoice, InvoiceLine, InvoiceParty, Journal, JournalFx } from '../domain/model.js';
import { formatMajor } from '../domain/money.js';
import { isDeferredLine } from '../domain/journal.js';
import { invariant } from '../domain/result.js';
import { fromDocument } from '../invoice/store.js';
import { outboxDocumentKind } from './journals.js';

/** Limits: an ERP document with more lines than this is refused (NetSuite and Xero both slow down past it). */
export const SALES_DOCUMENT_LINES_MAX = 500;

export type SalesDocumentKind = 'invoice' | 'credit_note';

export interface SalesDocumentLine {
  product: string | null; // null on the "prepaid credits restored" line of a credit note
  description: string;
  account: string; // the catalog's GL account: Xero's AccountCode; NetSuite takes it from the item
  amount_minor: bigint; // exclusive of tax; may be negative only on the credits-restored line
  tax_minor: bigint; // this line's share of the document's tax
}

export interface SalesDocument {
  kind: SalesDocumentKind;
  source_document: string; // the Accrue invoice or credit note id
  journal_id: string; // the journal this document stands for in the ERP
  number: string;
  corrects: string | null; // credit notes: the number of the invoice corrected
  legal_entity: string;
  customer: string;
  customer_erp_id: string;
  currency: string;
  date: string; // the journal's posting date: the accrual date, or where the closed-period policy moved it
  /**
   * Invoices: the due date printed on the invoice (its issue date + payment terms), so the ERP ages the receivable as
   * the customer was told; null on a credit note, and on an invoice stored before due dates were recorded.
   */
  due_date: string | null;
  /** The buyer as the invoice names it (billing address, tax id); null on an invoice stored before it was recorded. */
  buyer: InvoiceParty | null;
  period_start: string;
  period_end: string; // exclusive
  memo: string;
  tax: { jurisdiction: string; rate: string } | null;
  lines: SalesDocumentLine[];
  tax_minor: bigint;
  total_minor: bigint;
  /**
   * A document in a currency other than its legal entity's functional currency: the rate its journal was booked at,
   * sent to the ERP so that it books the same functional amounts (Xero CurrencyRate, NetSuite exchangeRate).
   */
  fx?: JournalFx;
}

/**
 * A void of an invoice the target holds (src/post/void.ts): the invoice's reversal journal, sent as the ERP's own
 * way to cancel the invoice. Xero voids it (Status VOIDED); NetSuite credits it in full (a credit memo transformed
 * from it). Built from the reversal and the invoice's own outbox row at this target (src/post/erp-documents.ts).
 */
export interface VoidDocument {
  source_document: string; // the Accrue invoice id
  journal_id: string; // the reversal journal this void stands for
  number: string; // the invoice's number
  legal_entity: string;
  customer: string;
  currency: string;
  date: string; // the reversal's posting date (or the ERP's first open day it was moved to)
  invoice_date: string; // the posting date of the invoice's own journal
  invoice_key: string; // the outbox key the invoice was posted under
  invoice_reference: string; // the target's own id for the invoice
  total_minor: bigint;
  memo: string;
}

/**
 * Splits `total` over lines in proportion to `bases` (largest remainder): the shares sum to `total` exactly and
 * each is within one minor unit of its exact proportion. All zero when the bases sum to zero.
 */
export function allocateProportionally(total: bigint, bases: readonly bigint[]): bigint[] {
  const sum = bases.reduce((s, b) => s + b, 0n);
  if (sum === 0n) {
    invariant(total === 0n, `cannot spread ${total} over lines whose bases sum to zero`);
    return bases.map(() => 0n);
  }
  invariant(sum > 0n, 'the bases of an allocation sum to a positive amount');
  const floorDiv = (a: bigint, b: bigint) => (a >= 0n ? a / b : -((-a + b - 1n) / b));
  const shares = bases.map((b) => floorDiv(total * b, sum));
  const remainders = bases.map((b, i) => ({ i, rest: total * b - shares[i]! * sum }));
  let left = total - shares.reduce((s, v) => s + v, 0n);
  // Ties go to the earlier line, so the same document always splits the same way.
  remainders.sort((a, b) => (a.rest === b.rest ? a.i - b.i : a.rest > b.rest ? -1 : 1));
  for (const { i } of remainders) {
    if (left <= 0n) break;
    shares[i] = shares[i]! + 1n;
    left -= 1n;
  }
  invariant(left === 0n, 'the allocation hands out the whole total');
  return shares;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const isCharge = (l: InvoiceLine) => l.kind !== 'discount' && l.kind !== 'credit';

/**
 * The ERP document of a finalized invoice or credit note, checked against its journal: booked by the ERP, it
 * moves exactly what the journal moves in Accrue's ledger (receivable, revenue per account, tax, deferred revenue).
 * Throws when it would not: the outbox sends such a document to the dead-letter queue with the difference.
 */
export function salesDocumentFor(
  invoice: Invoice,
  journal: Journal,
  catalog: CatalogVersion,
  correctsNumber: string | null = null,
): SalesDocument {
  invariant(invoice.status === 'finalized' || invoice.status === 'void', `${invoice.id} is ${invoice.status}, not finalized`);
  invariant(
    journal.source_document === invoice.id && journal.kind === invoice.kind,
    `journal ${journal.id} is not the ${invoice.kind} journal of ${invoice.id}`,
  );
  invariant(
    invoice.tax_lines.length <= 1,
    `${invoice.id} has ${invoice.tax_lines.length} tax lines; an ERP document carries one tax code per line`,
  );
  const accounts = catalog.catalog.accounts[invoice.legal_entity];
  invariant(accounts !== undefined, `no accounts for legal entity ${invoice.legal_entity}`);
  const receivable = journal.lines.find((l) => l.account === accounts.receivable && l.customer !== undefined);
  invariant(receivable !== undefined, `journal ${journal.id} has no receivable line naming the customer`);
  const untaxed = untaxedLines(invoice, catalog, accounts.deferred_revenue);
  const taxes = allocateProportionally(
    invoice.tax_minor,
    untaxed.map((l) => l.amount_minor),
  );
  const lines = untaxed.map((l, i) => ({ ...l, tax_minor: taxes[i]! }));
  const tax = invoice.tax_lines[0];
  const corrects = invoice.kind === 'credit_note' ? (correctsNumber ?? invoice.corrects ?? null) : null;
  const document: SalesDocument = {
    kind: invoice.kind,
    source_document: invoice.id,
    journal_id: journal.id,
    number: invoice.number ?? invoice.id,
    corrects,
    legal_entity: invoice.legal_entity,
    customer: invoice.customer,
    customer_erp_id: receivable.customer!,
    currency: invoice.currency,
    date: journal.posting_date,
    due_date: invoice.kind === 'invoice' ? (invoice.due_date ?? null) : null,
    buyer: invoice.buyer ?? null,
    period_start: invoice.period_start,
    period_end: invoice.period_end,
    memo: journal.memo,
    tax: tax ? { jurisdiction: tax.jurisdiction, rate: tax.rate } : null,
    lines,
    tax_minor: invoice.tax_minor,
    total_minor: invoice.total_minor,
    ...(journal.fx ? { fx: journal.fx } : {}),
  };
  invariant(
    (journal.fx?.currency ?? invoice.currency) === invoice.currency,
    `journal ${journal.id} was booked from ${journal.fx?.currency}, its document is in ${invoice.currency}`,
  );
  assertBooksLikeJournal(document, journal, accounts);
  return document;
}

/** The document's lines before tax: per product (sorted), and on a credit note one line restoring the credits. */
function untaxedLines(invoice: Invoice, catalog: CatalogVersion, deferredRevenue: string): Array<Omit<SalesDocumentLine, 'tax_minor'>> {
  const products = new Map(catalog.catalog.products.map((p) => [p.id, p]));

  // Invoices: per product, charges - discounts - credits drawn (the drawdown journal books the credit part).
  // Credit notes fold the drawdown in: per product, charges - discounts, and one line restoring the credits.
  const byProduct = new Map<string, bigint>();
  // A fee billed in advance for more than a month goes to deferred revenue, as its journal books it.
  const deferredByProduct = new Map<string, bigint>();
  for (const line of invoice.lines) {
    if (invoice.kind === 'credit_note' && line.kind === 'credit') continue;
    if (invoice.kind === 'invoice' && isDeferredLine(line)) {
      deferredByProduct.set(line.product, (deferredByProduct.get(line.product) ?? 0n) + line.amount_minor);
      continue;
    }
    const signed = isCharge(line) ? line.amount_minor : -(line.amount_minor < 0n ? -line.amount_minor : line.amount_minor);
    byProduct.set(line.product, (byProduct.get(line.product) ?? 0n) + signed);
  }
  const period = `${invoice.period_start}..${invoice.period_end}`;
  const untaxed: Array<Omit<SalesDocumentLine, 'tax_minor'>> = [...byProduct.entries()]
    .filter(([, amount]) => amount !== 0n)
    .sort(([a], [b]) => compare(a, b))
    .map(([product, amount]) => {
      const account = products.get(product)?.revenue_account[invoice.legal_entity];
      invariant(account !== undefined, `product ${product} has no revenue account in ${invoice.legal_entity}`);
      return { product, description: `${products.get(product)!.name} ${period}`, account, amount_minor: amount };
    });
  for (const [product, amount] of [...deferredByProduct.entries()].sort(([a], [b]) => compare(a, b)))
    untaxed.push({
      product,
      description: `${products.get(product)?.name ?? product} billed in advance ${period}`,
      account: deferredRevenue,
      amount_minor: amount,
    });
  if (invoice.kind === 'credit_note' && invoice.credits_applied_minor !== 0n) {
    untaxed.push({
      product: null,
      description: `Prepaid credits restored ${period}`,
      account: deferredRevenue,
      amount_minor: -invoice.credits_applied_minor,
    });
  }
  invariant(
    untaxed.length > 0 && untaxed.length <= SALES_DOCUMENT_LINES_MAX,
    `${invoice.id} has ${untaxed.length} document lines; 1 to ${SALES_DOCUMENT_LINES_MAX} fit an ERP document`,
  );
  return untaxed;
}

/** The ERP books a document as: receivable (total), each line on its account, tax payable (tax); a credit note reversed. */
function assertBooksLikeJournal(document: SalesDocument, journal: Journal, accounts: { receivable: string; tax_payable: string }): void {
  const net = new Map<string, bigint>(); // debit - credit per account
  const add = (account: string, amount: bigint) => net.set(account, (net.get(account) ?? 0n) + amount);
  const sign = document.kind === 'invoice' ? -1n : 1n; // invoices credit revenue; credit notes debit it
  for (const line of document.lines) add(line.account, sign * line.amount_minor);
  add(accounts.tax_payable, sign * document.tax_minor);
  add(accounts.receivable, -sign * document.total_minor);
  // A journal booked from another currency is compared in the document's currency: each line's transaction amount.
  const booked = new Map<string, bigint>();
  for (const line of journal.lines) {
    const signed = line.debit_minor - line.credit_minor;
    const amount = journal.fx === undefined ? signed : signed < 0n ? -(line.tx_amount_minor ?? 0n) : (line.tx_amount_minor ?? 0n);
    booked.set(line.account, (booked.get(line.account) ?? 0n) + amount);
  }
  const differences = [...new Set([...net.keys(), ...booked.keys()])]
    .sort(compare)
    .filter((account) => (net.get(account) ?? 0n) !== (booked.get(account) ?? 0n))
    .map(
      (account) =>
        `${account}: document ${formatMajor(net.get(account) ?? 0n, document.currency)}, journal ${formatMajor(booked.get(account) ?? 0n, document.currency)}`,
    );
  invariant(
    differences.length === 0,
    `the ${document.kind} document of ${document.source_document} would not book what journal ${journal.id} books (${differences.join('; ')})`,
  );
  const sum = document.lines.reduce((s, l) => s + l.amount_minor + l.tax_minor, 0n);
  invariant(sum === document.total_minor, `the lines of ${document.source_document} sum to ${sum}, its total is ${document.total_minor}`);
}

/**
 * The ERP documents of the given invoice and credit-note journals, by journal id. The catalog is the version the
 * invoice was rated with (its products' names and revenue accounts then). A document that cannot be built maps to
 * its Error, so one bad document dead-letters alone.
 */
export async function readSalesDocuments(
  db: pg.Pool | pg.PoolClient,
  journals: readonly Journal[],
): Promise<Map<string, SalesDocument | Error>> {
  const wanted = journals.filter((j) => outboxDocumentKind(j) === 'invoice' || outboxDocumentKind(j) === 'credit_note');
  const out = new Map<string, SalesDocument | Error>();
  if (wanted.length === 0) return out;
  const rows = (
    await db.query<{
      id: string;
      document: unknown;
      status: Invoice['status'];
      catalog_version: number | null;
      corrects_number: string | null;
    }>(
      `SELECT i.id, i.document, i.status, r.catalog_version, c.number AS corrects_number
         FROM invoices i LEFT JOIN rating_runs r ON r.id = i.rating_run LEFT JOIN invoices c ON c.id = i.corrects
        WHERE i.id = ANY($1)`,
      [wanted.map((j) => j.source_document)],
    )
  ).rows;
  const invoices = new Map(rows.map((r) => [r.id, r]));
  for (const journal of wanted) {
    const row = invoices.get(journal.source_document);
    try {
      if (!row) throw new Error(`invoice ${journal.source_document} of journal ${journal.id} not found`);
      const catalog =
        (row.catalog_version !== null ? await catalogVersion(db, row.catalog_version) : undefined) ?? (await currentCatalog(db));
      if (!catalog) throw new Error('no catalog has been applied');
      out.set(journal.id, salesDocumentFor({ ...fromDocument(row.document), status: row.status }, journal, catalog, row.corrects_number));
    } catch (error) {
      out.set(journal.id, error as Error);
    }
  }
  return out;
}

/**
 * The void an invoice reversal stands for at one target: the reversal, the invoice, and the invoice's own outbox row
 * there (whose target reference is the ERP's id of the invoice). `waiting` while that row is not posted yet (the void
 * follows it); an Error when the reversal or its invoice cannot be read.
 */
export async function readVoidDocument(
  db: pg.Pool | pg.PoolClient,
  target: string,
  reversal: Journal,
): Promise<VoidDocument | { waiting: string } | Error> {
  const row = (
    await db.query<{
      number: string | null;
      customer: string;
      currency: string;
      total_minor: string;
      invoice_date: string;
      invoice_key: string | null;
      status: string | null;
      reference: string | null;
    }>(
      `SELECT i.number, i.customer, i.currency, i.total_minor::text, to_char(j.posting_date, 'YYYY-MM-DD') AS invoice_date,
              o.key AS invoice_key, o.status, o.target_reference AS reference
         FROM journals r JOIN journals j ON j.id = r.reverses JOIN invoices i ON i.id = r.source_document
         LEFT JOIN outbox o ON o.target = $2 AND o.document_id = j.id
        WHERE r.id = $1 AND r.kind = 'invoice_reversal'`,
      [reversal.id, target],
    )
  ).rows[0];
  if (!row) return new Error(`${reversal.id} is not the reversal of an invoice journal`);
  if (row.invoice_key === null)
    return new Error(`invoice ${row.number ?? reversal.source_document} was never sent to ${target}; nothing to void there`);
  if (row.status !== 'posted' || row.reference === null)
    return { waiting: `waiting for invoice ${row.number ?? reversal.source_document} to be posted to ${target} before voiding it` };
  return {
    source_document: reversal.source_document,
    journal_id: reversal.id,
    number: row.number ?? reversal.source_document,
    legal_entity: reversal.legal_entity,
    customer: row.customer,
    currency: row.currency,
    date: reversal.posting_date,
    invoice_date: row.invoice_date,
    invoice_key: row.invoice_key,
    invoice_reference: row.reference,
    total_minor: BigInt(row.total_minor),
    memo: reversal.memo,
  };
}
