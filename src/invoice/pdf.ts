// The invoice as a PDF a customer would accept: issuer, customer, period, lines, discounts, credits, tax, totals.
// Deterministic: fixed creation date (the billing date) and a document ID derived from the invoice, so the same
// invoice renders to the same bytes.
import { createHash } from 'node:crypto';
import PDFDocument from 'pdfkit';
import type { Customer, Invoice, LegalEntity } from '../domain/model.js';
import { formatMajor, Decimal } from '../domain/money.js';
import { inclusiveEnd } from './export.js';

export interface PdfInput {
  invoice: Invoice;
  legalEntity: LegalEntity;
  customer: Customer;
  products: Map<string, { name: string }>;
}

const MARGIN = 50;
const COLUMNS = { description: 50, quantity: 330, unit: 410, amount: 480 } as const;
const ROUNDING_TEXT = { half_up: 'half up', half_even: 'half to even' } as const;

export async function renderInvoicePdf({ invoice, legalEntity, customer }: PdfInput): Promise<Buffer> {
  const billingDate = new Date(`${invoice.period_end}T00:00:00Z`);
  const doc = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    info: { Title: `${invoice.kind === 'credit_note' ? 'Credit note' : 'Invoice'} ${invoice.number ?? 'DRAFT'}`, Author: legalEntity.name, CreationDate: billingDate, ModDate: billingDate },
  });
  // pdfkit draws a random trailer ID; replace it with one derived from the invoice for byte-identical output.
  const id = createHash('md5').update(`${invoice.id}|${invoice.number ?? ''}|${invoice.status}`).digest();
  (doc as unknown as { _id: Buffer })._id = id;
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve) => doc.on('end', () => resolve(Buffer.concat(chunks))));
  const money = (minor: bigint) => `${formatMajor(minor, invoice.currency)} ${invoice.currency}`;

  doc.font('Helvetica-Bold').fontSize(18).text(legalEntity.name, MARGIN, MARGIN);
  doc.font('Helvetica').fontSize(9).fillColor('#555').text(`Country: ${legalEntity.country}`);
  doc.fillColor('#000').font('Helvetica-Bold').fontSize(16).text(`${invoice.kind === 'credit_note' ? 'Credit note' : 'Invoice'} ${invoice.number ?? 'DRAFT'}`, 330, MARGIN, { width: 215, align: 'right' });
  doc.font('Helvetica').fontSize(9).text(`Issued: ${invoice.period_end}`, 330, doc.y, { width: 215, align: 'right' });
  doc.text(`Service period: ${invoice.period_start} to ${inclusiveEnd(invoice.period_end)}`, 330, doc.y, { width: 215, align: 'right' });
  if (invoice.corrects) doc.text(`Corrects invoice: ${invoice.corrects}`, 330, doc.y, { width: 215, align: 'right' });
  doc.text(`Status: ${invoice.status}`, 330, doc.y, { width: 215, align: 'right' });

  doc.moveDown(2);
  doc.font('Helvetica-Bold').fontSize(10).text('Bill to', MARGIN, 140);
  doc.font('Helvetica').fontSize(10).text(customer.name).text(`Customer ${customer.id} · ERP ${customer.erp_customer_id}`).text(`Tax jurisdiction: ${customer.tax_jurisdiction}`);

  let y = 215;
  const header = () => {
    doc.font('Helvetica-Bold').fontSize(9);
    doc.text('Description', COLUMNS.description, y).text('Quantity', COLUMNS.quantity, y, { width: 70, align: 'right' });
    doc.text('Unit price', COLUMNS.unit, y, { width: 60, align: 'right' }).text('Amount', COLUMNS.amount, y, { width: 65, align: 'right' });
    y += 14;
    doc.moveTo(MARGIN, y - 3).lineTo(545, y - 3).strokeColor('#999').stroke();
    doc.font('Helvetica').fontSize(9);
  };
  header();
  for (const line of invoice.lines) {
    const height = doc.heightOfString(line.description, { width: 270 });
    if (y + height > 720) {
      doc.addPage();
      y = MARGIN;
      header();
    }
    const unit = line.unit_amount ?? (line.tiers.length > 0 ? 'tiered' : '');
    doc.text(line.description, COLUMNS.description, y, { width: 270 });
    doc.text(shortQuantity(line.quantity), COLUMNS.quantity, y, { width: 70, align: 'right' });
    doc.text(unit, COLUMNS.unit, y, { width: 60, align: 'right' });
    doc.text(formatMajor(line.amount_minor, invoice.currency), COLUMNS.amount, y, { width: 65, align: 'right' });
    y += Math.max(height, 11) + 4;
  }

  if (y > 640) {
    doc.addPage();
    y = MARGIN;
  }
  y += 8;
  doc.moveTo(330, y).lineTo(545, y).strokeColor('#999').stroke();
  y += 6;
  const total = (label: string, value: string, bold = false) => {
    doc.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(bold ? 11 : 9);
    doc.text(label, 330, y, { width: 130 }).text(value, 460, y, { width: 85, align: 'right' });
    y += bold ? 16 : 13;
  };
  total('Subtotal', money(invoice.subtotal_minor));
  if (invoice.discount_minor > 0n) total('Discounts', money(-invoice.discount_minor));
  if (invoice.credits_applied_minor > 0n) total('Prepaid credits applied', money(-invoice.credits_applied_minor));
  for (const tax of invoice.tax_lines) {
    total(`Tax ${tax.jurisdiction} ${new Decimal(tax.rate).times(100).toFixed()}% on ${formatMajor(tax.taxable_minor, invoice.currency)}`, money(tax.tax_minor));
  }
  total(invoice.kind === 'credit_note' ? 'Total credited' : 'Total due', money(invoice.total_minor), true);

  doc.font('Helvetica').fontSize(8).fillColor('#555');
  doc.text(
    `Amounts in ${invoice.currency}, each line rounded ${ROUNDING_TEXT[invoice.rounding]} to the currency's minor unit. Invoice id ${invoice.id}; rating run ${invoice.rating_run}.`,
    MARGIN,
    760,
    { width: 495 },
  );
  doc.end();
  return done;
}

function shortQuantity(quantity: string): string {
  return quantity.length > 14 ? new Decimal(quantity).toDecimalPlaces(6).toFixed() : quantity;
}
