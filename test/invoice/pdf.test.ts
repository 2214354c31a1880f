import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderInvoicePdf } from '../../src/invoice/pdf.js';
import type { Invoice, InvoiceLine } from '../../src/domain/model.js';

const line = (n: number, amount: bigint, kind: InvoiceLine['kind'] = 'usage'): InvoiceLine => ({
  line_no: n, kind, product: 'api', meter: 'api_calls', price_id: 'p', price_version: 'p@1', description: `API calls batch ${n}`,
  quantity: '1000', unit_amount: '0.30', tiers: [], amount_minor: amount, period_start: '2026-11-01', period_end: '2026-12-01', taxable: true,
});

function invoice(lines: InvoiceLine[]): Invoice {
  const subtotal = lines.filter((l) => l.amount_minor > 0n).reduce((s, l) => s + l.amount_minor, 0n);
  const discount = -lines.filter((l) => l.kind === 'discount').reduce((s, l) => s + l.amount_minor, 0n);
  const tax = 1900n;
  return {
    id: 'inv_test', key: 'inv:v1:nw-de:umbrella:EUR:2026-11', kind: 'invoice', number: 'NWDE-000042', status: 'finalized', legal_entity: 'nw-de',
    customer: 'umbrella', currency: 'EUR', period_start: '2026-11-01', period_end: '2026-12-01', rounding: 'half_up', lines,
    subtotal_minor: subtotal, discount_minor: discount, credits_applied_minor: 0n,
    tax_lines: [{ jurisdiction: 'DE', rate: '0.19', taxable_minor: subtotal - discount, tax_minor: tax }], tax_minor: tax,
    total_minor: subtotal - discount + tax, rating_run: 'rr:v1:test',
  };
}

const input = (inv: Invoice) => ({
  invoice: inv,
  legalEntity: { id: 'nw-de', name: 'Northwind Cloud GmbH', country: 'DE', currency: 'EUR', invoice_number_prefix: 'NWDE-', rounding: 'half_up' as const },
  customer: { id: 'umbrella', name: 'Umbrella GmbH', legal_entity: 'nw-de', tax_jurisdiction: 'DE', erp_customer_id: 'D-20011', tenants: ['umbrella'] },
  products: new Map([['api', { name: 'API Services' }]]),
});

function pdfText(pdf: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'accrue-pdf-'));
  writeFileSync(join(dir, 'x.pdf'), pdf);
  try {
    return execFileSync('pdftotext', ['-layout', join(dir, 'x.pdf'), '-'], { encoding: 'utf8' });
  } catch (error) {
    throw new Error(`pdftotext (Debian package poppler-utils) is needed to read the PDF back: ${(error as Error).message}`);
  }
}

describe('invoice PDF', () => {
  it('renders the number, customer, lines, tax and total, byte-identical twice', async () => {
    const inv = invoice([line(1, 10000n), line(2, 50n), { ...line(3, -1005n, 'discount'), description: '10% off API calls' }]);
    const a = await renderInvoicePdf(input(inv));
    const b = await renderInvoicePdf(input(inv));
    assert.equal(a.subarray(0, 5).toString(), '%PDF-');
    assert.ok(a.equals(b), 'same invoice, same bytes');
    const text = pdfText(a);
    for (const expected of ['NWDE-000042', 'Umbrella GmbH', 'D-20011', '100.00', '0.50', '-10.05', 'DE 19%', '109.45 EUR', 'half up']) {
      assert.ok(text.includes(expected), `${expected} in:\n${text}`);
    }
  });

  it('paginates a long invoice', async () => {
    const lines = Array.from({ length: 80 }, (_, i) => line(i + 1, 100n));
    const text = pdfText(await renderInvoicePdf(input(invoice(lines))));
    assert.ok(text.includes('API calls batch 80'));
    assert.ok((text.match(/\f/g) ?? []).length >= 2, 'more than one page');
  });
});
