// The invoice as a PDF a customer would accept: issuer, customer, dates, lines, discounts, credits, tax, totals.
// Deterministic: the same invoice renders to the same bytes. pdfkit's only varying inputs are the Info dictionary's
// CreationDate (set here to the billing date, period_end) and the trailer /ID (set here to a hash of the rendered
// content); content streams are zlib-compressed deterministically and only the 14 standard fonts are used (no subsets).
import { createHash } from 'node:crypto';
import PDFDocument from 'pdfkit';
import { canonicalJson } from '../domain/canonical.js';
import type { Customer, Invoice, InvoiceLine, InvoiceParty, LegalEntity } from '../domain/model.js';
import { Decimal, formatMajor, minorUnits } from '../domain/money.js';
import { addressLines, buyerOf, paymentTermsText, sellerOf } from '../domain/invoice-terms.js';
import { presentedLine } from './export.js';

export interface InvoicePdfInput {
  invoice: Invoice;
  legalEntity: LegalEntity;
  customer: Customer;
  products: Map<string, { name: string }>;
}

/** Bumped when the layout changes, so the document ID changes with it. */
const LAYOUT_VERSION = 'pdf:v2';

// A4 in points; every coordinate below is absolute so the layout never depends on pdfkit's text cursor.
const PAGE = { width: 595.28, height: 841.89, margin: 50 } as const;
const RIGHT = PAGE.width - PAGE.margin;
const CONTENT_BOTTOM = PAGE.height - PAGE.margin - 24; // the footer lives below this line
const COL = {
  no: { x: 50, width: 20 },
  description: { x: 72, width: 250 },
  quantity: { x: 326, width: 72 },
  unit: { x: 402, width: 66 },
  amount: { x: 472, width: RIGHT - 472 },
} as const;
const TOTALS = { x: 300, labelWidth: 165, valueX: 468, valueWidth: RIGHT - 468 } as const;
const GREY = '#555555';
const RULE = '#999999';
const SHADE = '#f2f2f2';
const ROUNDING_TEXT = { half_up: 'half up', half_even: 'half to even' } as const;

type Doc = InstanceType<typeof PDFDocument>;

export async function renderInvoicePdf(input: InvoicePdfInput): Promise<Buffer> {
  const { invoice } = input;
  const { seller, buyer } = partiesOf(input);
  const title = invoice.kind === 'credit_note' ? 'Credit note' : 'Invoice';
  const number = invoice.number ?? 'DRAFT';
  const billingDate = new Date(`${invoice.issue_date ?? invoice.period_end}T00:00:00Z`);
  if (Number.isNaN(billingDate.getTime())) throw new Error(`invoice ${invoice.id} has no valid period_end: ${invoice.period_end}`);

  const doc = new PDFDocument({
    size: [PAGE.width, PAGE.height],
    margin: PAGE.margin,
    bufferPages: true, // page numbers ("Page 1 of 3") are written after the last page exists
    compress: true,
    info: {
      Title: text(`${title} ${number}`),
      Author: text(seller.name),
      Subject: text(`${title} ${number} for ${buyer.name}, ${invoice.period_start} to ${inclusiveEnd(invoice.period_end)}`),
      Creator: 'Accrue',
      Producer: 'Accrue (PDFKit)',
      CreationDate: billingDate,
      ModDate: billingDate,
    },
  });
  setDocumentId(doc, documentId(input));
  const done = renderedBytes(doc);

  const layout: Layout = { doc, y: drawHeader(doc, input, title, number), continued: `${seller.name}: ${title} ${number} (continued)` };
  drawLines(layout, input);
  drawTotals(layout, totalRows(invoice));
  drawNotes(layout, invoice);
  drawFooters(doc, `${seller.name} - ${title} ${number}`);
  doc.end();
  return done;
}

/** The document's bytes once it ends. */
function renderedBytes(doc: Doc): Promise<Buffer> {
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
}

/** The document being drawn and the top of the next thing to draw on its current page. */
interface Layout {
  doc: Doc;
  y: number;
  /** The heading of a continuation page. */
  continued: string;
}

interface TotalRow {
  label: string;
  value: string;
  bold?: boolean;
}

function money(minor: bigint, currency: string): string {
  return `${formatMajor(minor, currency)} ${currency}`;
}

function newPage(layout: Layout): void {
  const { doc } = layout;
  doc.addPage();
  doc
    .font('Helvetica-Bold')
    .fontSize(10)
    .fillColor('black')
    .text(text(layout.continued), PAGE.margin, PAGE.margin, {
      width: RIGHT - PAGE.margin,
      lineBreak: false,
    });
  layout.y = PAGE.margin + 24;
}

function drawLines(layout: Layout, input: InvoicePdfInput): void {
  const { doc } = layout;
  const { invoice } = input;
  layout.y = drawTableHeader(doc, layout.y, invoice.currency);
  invoice.lines.forEach((line, index) => drawLine(layout, input, line, index));
  if (invoice.lines.length === 0) {
    doc.font('Helvetica-Oblique').fontSize(9).fillColor(GREY).text('No charges in this period.', COL.description.x, layout.y);
    layout.y += 16;
  }
  doc
    .moveTo(PAGE.margin, layout.y + 2)
    .lineTo(RIGHT, layout.y + 2)
    .lineWidth(0.5)
    .strokeColor(RULE)
    .stroke();
  layout.y += 12;
}

/** One line of the table, on a new page (with the table's header again) when it does not fit; odd rows shaded. */
function drawLine(layout: Layout, input: InvoicePdfInput, line: InvoiceLine, index: number): void {
  const { doc } = layout;
  const row = lineRow(line, input);
  const height = rowHeight(doc, row);
  if (layout.y + height > CONTENT_BOTTOM) {
    newPage(layout);
    layout.y = drawTableHeader(doc, layout.y, input.invoice.currency);
  }
  const y = layout.y;
  if (index % 2 === 1) doc.rect(PAGE.margin, y - 2, RIGHT - PAGE.margin, height).fill(SHADE);
  doc.fillColor('black').font('Helvetica').fontSize(9);
  doc.text(String(line.line_no), COL.no.x, y, { width: COL.no.width });
  doc.text(row.description, COL.description.x, y, { width: COL.description.width });
  if (row.detail) {
    doc
      .font('Helvetica')
      .fontSize(7.5)
      .fillColor(GREY)
      .text(row.detail, COL.description.x, doc.y + 1, { width: COL.description.width });
    doc.fillColor('black').fontSize(9);
  }
  doc.text(row.quantity, COL.quantity.x, y, { width: COL.quantity.width, align: 'right' });
  doc.text(row.unit, COL.unit.x, y, { width: COL.unit.width, align: 'right' });
  doc.text(row.amount, COL.amount.x, y, { width: COL.amount.width, align: 'right' });
  layout.y += height;
}

function totalRows(invoice: Invoice): TotalRow[] {
  const c = invoice.currency;
  const totals: TotalRow[] = [{ label: 'Subtotal', value: money(invoice.subtotal_minor, c) }];
  if (invoice.discount_minor !== 0n) totals.push({ label: 'Discounts', value: money(-invoice.discount_minor, c) });
  if (invoice.credits_applied_minor !== 0n)
    totals.push({ label: 'Prepaid credits applied', value: money(-invoice.credits_applied_minor, c) });
  for (const tax of invoice.tax_lines) {
    totals.push({
      label: `Tax ${tax.jurisdiction} ${percent(tax.rate)}% on ${formatMajor(tax.taxable_minor, invoice.currency)}`,
      value: money(tax.tax_minor, c),
    });
  }
  if (invoice.tax_lines.length === 0) totals.push({ label: 'Tax', value: money(invoice.tax_minor, c) });
  totals.push({ label: invoice.kind === 'credit_note' ? 'Total credited' : 'Total due', value: money(invoice.total_minor, c), bold: true });
  return totals;
}

/** The totals block, kept on one page with the notes' first lines (a new page when it does not fit). */
function drawTotals(layout: Layout, totals: readonly TotalRow[]): void {
  const { doc } = layout;
  const totalsHeight = totals.reduce((sum, t) => sum + totalRowHeight(doc, t.label, t.bold === true), 0) + 70;
  if (layout.y + totalsHeight > CONTENT_BOTTOM) {
    newPage(layout);
  }
  for (const t of totals) {
    if (t.bold) {
      doc
        .moveTo(TOTALS.x, layout.y - 2)
        .lineTo(RIGHT, layout.y - 2)
        .lineWidth(1)
        .strokeColor('black')
        .stroke();
      layout.y += 4;
    }
    const height = totalRowHeight(doc, t.label, t.bold === true);
    doc
      .font(t.bold ? 'Helvetica-Bold' : 'Helvetica')
      .fontSize(t.bold ? 11 : 9)
      .fillColor('black');
    doc.text(text(t.label), TOTALS.x, layout.y, { width: TOTALS.labelWidth });
    doc.text(t.value, TOTALS.valueX, layout.y, { width: TOTALS.valueWidth, align: 'right' });
    layout.y += height;
  }
}

function drawNotes(layout: Layout, invoice: Invoice): void {
  const { doc } = layout;
  layout.y += 14;
  const scale = minorUnits(invoice.currency);
  const notes = [
    `Amounts rounded ${ROUNDING_TEXT[invoice.rounding]} to the currency's minor unit (${invoice.currency}: ${scale} decimal${scale === 1 ? '' : 's'}); each line is rounded once.`,
    `All amounts in ${invoice.currency}. Service period ${invoice.period_start} to ${inclusiveEnd(invoice.period_end)}, both inclusive.`,
    `Document ${invoice.id}; rating run ${invoice.rating_run}.`,
  ];
  if (invoice.status !== 'finalized')
    notes.unshift(invoice.status === 'void' ? 'This document is VOID.' : 'DRAFT: not a valid tax invoice until finalized and numbered.');
  doc.font('Helvetica').fontSize(8).fillColor(GREY);
  for (const note of notes) {
    doc.text(text(note), PAGE.margin, layout.y, { width: RIGHT - PAGE.margin });
    layout.y = doc.y + 2;
  }
}

// ---------- layout pieces ----------

/**
 * Seller and buyer as the invoice recorded them when it was issued, so that a later catalog change (a new address)
 * never alters an issued document; only a document stored before they were recorded falls back to the catalog.
 */
export function partiesOf({ invoice, legalEntity, customer }: InvoicePdfInput): { seller: InvoiceParty; buyer: InvoiceParty } {
  return { seller: invoice.seller ?? sellerOf(legalEntity), buyer: invoice.buyer ?? buyerOf(customer) };
}

function drawHeader(doc: Doc, input: InvoicePdfInput, title: string, number: string): number {
  const { invoice, legalEntity, customer } = input;
  const { seller, buyer } = partiesOf(input);
  const top = PAGE.margin;
  // Issuer, top left: name, postal address, tax registration (what the catalog gave).
  doc.fillColor('black').font('Helvetica-Bold').fontSize(16).text(text(seller.name), PAGE.margin, top, { width: 260 });
  doc.font('Helvetica').fontSize(9).fillColor(GREY);
  const sellerLines = addressLines(seller.address);
  for (const [i, line] of (sellerLines.length > 0 ? sellerLines : [`Country: ${legalEntity.country}`]).entries()) {
    doc.text(text(line), PAGE.margin, doc.y + (i === 0 ? 2 : 0), { width: 260 });
  }
  if (seller.tax_id) doc.text(text(`VAT / Tax ID: ${seller.tax_id}`), PAGE.margin, doc.y + 1, { width: 260 });
  const issuerBottom = doc.y;

  // Document title and facts, top right.
  const boxX = 330;
  const boxWidth = RIGHT - boxX;
  doc.fillColor('black').font('Helvetica-Bold').fontSize(20).text(title.toUpperCase(), boxX, top, { width: boxWidth, align: 'right' });
  let y = doc.y + 6;
  const facts: [string, string][] = [
    [`${title} number`, number],
    ['Issue date', invoice.issue_date ?? invoice.period_end],
  ];
  if (invoice.kind === 'invoice' && invoice.due_date) {
    facts.push(['Due date', invoice.due_date]);
    if (invoice.payment_terms_days !== undefined && invoice.payment_terms_days !== null)
      facts.push(['Payment terms', paymentTermsText(invoice.payment_terms_days)]);
  }
  facts.push(['Service period', `${invoice.period_start} to ${inclusiveEnd(invoice.period_end)}`], ['Currency', invoice.currency]);
  if (invoice.kind === 'credit_note') facts.push(['Corrects invoice', invoice.corrects ?? '(not recorded)']);
  if (invoice.status !== 'finalized') facts.push(['Status', invoice.status.toUpperCase()]);
  for (const [label, value] of facts) {
    doc.font('Helvetica').fontSize(9).fillColor(GREY).text(label, boxX, y, { width: 90 });
    doc
      .font('Helvetica-Bold')
      .fillColor('black')
      .text(text(value), boxX + 90, y, { width: boxWidth - 90, align: 'right' });
    y = Math.max(y + 13, doc.y + 1);
  }

  // Customer, below the issuer.
  let by = Math.max(issuerBottom + 24, top + 70);
  doc.font('Helvetica-Bold').fontSize(8).fillColor(GREY).text('BILL TO', PAGE.margin, by);
  by = doc.y + 2;
  doc.font('Helvetica-Bold').fontSize(11).fillColor('black').text(text(buyer.name), PAGE.margin, by, { width: 260 });
  doc.font('Helvetica').fontSize(9);
  const details = [
    ...addressLines(buyer.address),
    ...(buyer.tax_id ? [`VAT / Tax ID: ${buyer.tax_id}`] : []),
    `Customer ID: ${customer.id}`,
    `ERP customer ID: ${customer.erp_customer_id}`,
    `Tax jurisdiction: ${customer.tax_jurisdiction}`,
  ];
  for (const detail of details) {
    doc.text(text(detail), PAGE.margin, doc.y + 1, { width: 260 });
  }
  return Math.max(doc.y, y) + 24;
}

function drawTableHeader(doc: Doc, y: number, currency: string): number {
  doc.rect(PAGE.margin, y - 4, RIGHT - PAGE.margin, 18).fill('#e4e4e4');
  doc.fillColor('black').font('Helvetica-Bold').fontSize(9);
  doc.text('#', COL.no.x, y, { width: COL.no.width });
  doc.text('Description', COL.description.x, y, { width: COL.description.width });
  doc.text('Quantity', COL.quantity.x, y, { width: COL.quantity.width, align: 'right' });
  doc.text('Unit price', COL.unit.x, y, { width: COL.unit.width, align: 'right' });
  doc.text(`Amount (${currency})`, COL.amount.x, y, { width: COL.amount.width, align: 'right' });
  return y + 20;
}

interface Row {
  description: string;
  detail: string | null;
  quantity: string;
  unit: string;
  amount: string;
}

function lineRow(line: InvoiceLine, { invoice, products }: InvoicePdfInput): Row {
  const details: string[] = [];
  const product = products.get(line.product)?.name;
  if (product && !line.description.toLowerCase().includes(product.toLowerCase())) details.push(product);
  if (line.period_start !== invoice.period_start || line.period_end !== invoice.period_end) {
    details.push(`${line.period_start} to ${inclusiveEnd(line.period_end)}`);
  }
  if (line.tiers.length > 0) {
    details.push(
      line.tiers
        .map(
          (t) => `tier ${t.tier}: ${t.quantity} x ${t.unit_amount}${new Decimal(t.flat_amount).isZero() ? '' : ` + ${t.flat_amount} flat`}`,
        )
        .join('; '),
    );
  }
  // Quantity × unit price = amount: a packaged price reads in packages, at the price of one package.
  const shown = presentedLine(line);
  if (line.package) details.push(`${line.quantity} units metered; priced per ${shown.unit}, rounded ${line.package.round}`);
  return {
    description: text(line.description),
    detail: details.length > 0 ? text(details.join(' | ')) : null,
    quantity: shown.quantity,
    unit: line.tiers.length > 0 ? 'tiered' : (shown.unit_price ?? ''),
    amount: formatMajor(line.amount_minor, invoice.currency),
  };
}

function rowHeight(doc: Doc, row: Row): number {
  doc.font('Helvetica').fontSize(9);
  let description = doc.heightOfString(row.description, { width: COL.description.width });
  if (row.detail) {
    doc.fontSize(7.5);
    description += 1 + doc.heightOfString(row.detail, { width: COL.description.width });
    doc.fontSize(9);
  }
  const others = Math.max(
    doc.heightOfString(row.quantity, { width: COL.quantity.width }),
    doc.heightOfString(row.unit, { width: COL.unit.width }),
    doc.heightOfString(row.amount, { width: COL.amount.width }),
  );
  return Math.max(description, others) + 5;
}

function totalRowHeight(doc: Doc, label: string, bold: boolean): number {
  doc.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(bold ? 11 : 9);
  return doc.heightOfString(text(label), { width: TOTALS.labelWidth }) + (bold ? 6 : 4);
}

function drawFooters(doc: Doc, label: string): void {
  const range = doc.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i);
    const bottom = doc.page.margins.bottom;
    doc.page.margins.bottom = 0; // writing inside the bottom margin must not start a new page
    const y = PAGE.height - PAGE.margin - 10;
    doc
      .moveTo(PAGE.margin, y - 6)
      .lineTo(RIGHT, y - 6)
      .lineWidth(0.5)
      .strokeColor(RULE)
      .stroke();
    doc.font('Helvetica').fontSize(8).fillColor(GREY);
    doc.text(text(label), PAGE.margin, y, { width: 380, lineBreak: false });
    doc.text(`Page ${i - range.start + 1} of ${range.count}`, RIGHT - 100, y, { width: 100, align: 'right', lineBreak: false });
    doc.page.margins.bottom = bottom;
  }
}

// ---------- helpers ----------

/** The last day a period covers: the day before its exclusive end. */
function inclusiveEnd(periodEndExclusive: string): string {
  const end = new Date(`${periodEndExclusive}T00:00:00Z`);
  end.setUTCDate(end.getUTCDate() - 1);
  return end.toISOString().slice(0, 10);
}

/** A decimal fraction as a percentage without trailing zeros: "0.0725" -> "7.25", "0.19" -> "19". */
function percent(rate: string): string {
  const value = new Decimal(rate).times(100);
  return value.isZero() ? '0' : value.toFixed();
}

// The standard fonts encode WinAnsi (Latin-1 plus a few typographic characters); anything else would print garbage.
const WIN_ANSI_EXTRA = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');
const NO_DECOMPOSITION: Record<string, string> = { Ł: 'L', ł: 'l', Đ: 'D', đ: 'd', Ħ: 'H', ħ: 'h', ı: 'i' };
function text(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if ((code >= 0x20 && code <= 0x7e) || (code >= 0xa0 && code <= 0xff) || WIN_ANSI_EXTRA.has(ch)) {
      out += ch;
    } else if (ch === '\n' || ch === '\t') {
      out += ' ';
    } else if (NO_DECOMPOSITION[ch]) {
      out += NO_DECOMPOSITION[ch];
    } else {
      const base = ch.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
      out += [...base].every((c) => c.codePointAt(0)! >= 0x20 && c.codePointAt(0)! <= 0x7e) && base.length > 0 ? base : '?';
    }
  }
  return out;
}

/** 16 bytes identifying this rendering: a hash of everything printed, so equal inputs share an ID and any change moves it. */
function documentId(input: InvoicePdfInput): Uint8Array {
  const { invoice, legalEntity, customer, products } = input;
  const productNames = [...new Set(invoice.lines.map((l) => l.product))].sort().map((id) => [id, products.get(id)?.name ?? null]);
  // Only what is printed: catalog fields the snapshot leaves out (an address changed since) do not move the ID.
  const parties = partiesOf(input);
  const printed = {
    ...parties,
    country: parties.seller.address ? null : legalEntity.country,
    customer: { id: customer.id, erp_customer_id: customer.erp_customer_id, tax_jurisdiction: customer.tax_jurisdiction },
  };
  const content = canonicalJson({ layout: LAYOUT_VERSION, invoice, printed, productNames });
  return new Uint8Array(createHash('sha256').update(content).digest().subarray(0, 16));
}

/**
 * pdfkit writes `_id` as the trailer /ID pair. Version 0.20 derives it from the Info dictionary (so it would already be
 * stable, but identical for two drafts with the same dates); older versions used random bytes. Set it explicitly, and
 * fail loudly if a pdfkit upgrade moves the field, rather than silently producing non-reproducible files.
 */
function setDocumentId(doc: Doc, id: Uint8Array): void {
  const internal = doc as unknown as { _id?: unknown };
  if (!(internal._id instanceof Uint8Array))
    throw new Error('pdfkit internals changed: document._id is not a byte array; check deterministic PDF IDs');
  internal._id = id;
}
