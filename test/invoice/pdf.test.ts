import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderInvoicePdf, type InvoicePdfInput } from '../../src/invoice/pdf.js';
import type { Customer, Invoice, InvoiceLine, LegalEntity } from '../../src/domain/model.js';
import { indexCatalog, parseCatalog } from '../../src/domain/catalog.js';
import { rateCustomer } from '../../src/rate/rate.js';
import { exportInvoice, presentedLine } from '../../src/invoice/export.js';
import { Decimal, formatMajor } from '../../src/domain/money.js';

// ---------- fixtures, amounts worked by hand ----------

const acme: LegalEntity = {
  id: 'acme-us',
  name: 'Acme Cloud Inc.',
  country: 'US',
  currency: 'USD',
  invoice_number_prefix: 'ACUS-',
  rounding: 'half_up',
};
const globex: Customer = {
  id: 'globex',
  name: 'Globex Corporation',
  legal_entity: 'acme-us',
  tax_jurisdiction: 'US-CA',
  erp_customer_id: 'C-10042',
  tenants: ['globex'],
};
const products = new Map([
  ['platform', { name: 'Platform fee' }],
  ['api', { name: 'API requests' }],
  ['storage', { name: 'Object storage' }],
  ['credits', { name: 'Prepaid credits' }],
]);

function line(
  partial: Partial<InvoiceLine> & Pick<InvoiceLine, 'line_no' | 'kind' | 'product' | 'description' | 'quantity' | 'amount_minor'>,
): InvoiceLine {
  return {
    meter: null,
    price_id: null,
    price_version: null,
    unit_amount: null,
    tiers: [],
    period_start: '2026-10-01',
    period_end: '2026-11-01',
    taxable: true,
    ...partial,
  };
}

// Platform 49.00 + API 1,250,000 x 0.0001 = 125.00 + storage tiered (1000 x 0.02 + 500 x 0.015 = 27.50) = 201.50 subtotal.
// 10% off API = -12.50; credits -20.00; taxable 201.50 - 12.50 - 20.00 = 169.00; US-CA 7.25% = 12.2525 -> 12.25;
// a second jurisdiction US-CA-SF 0.5% on 169.00 = 0.845 -> 0.85 (half up); total 169.00 + 12.25 + 0.85 = 182.10.
const usd: Invoice = {
  id: 'inv_2026_10_globex',
  key: 'inv:v1:acme-us:globex:USD:2026-10',
  kind: 'invoice',
  number: 'ACUS-000123',
  status: 'finalized',
  legal_entity: 'acme-us',
  customer: 'globex',
  currency: 'USD',
  period_start: '2026-10-01',
  period_end: '2026-11-01',
  rounding: 'half_up',
  lines: [
    line({
      line_no: 1,
      kind: 'flat',
      product: 'platform',
      description: 'Platform fee (monthly)',
      quantity: '1',
      unit_amount: '49.00',
      amount_minor: 4900n,
      price_id: 'pro/0:platform',
    }),
    line({
      line_no: 2,
      kind: 'usage',
      product: 'api',
      meter: 'api_calls',
      description: 'API requests',
      quantity: '1250000',
      unit_amount: '0.0001',
      amount_minor: 12500n,
    }),
    line({
      line_no: 3,
      kind: 'usage',
      product: 'storage',
      meter: 'storage_gb',
      description: 'Object storage, GB-month',
      quantity: '1500',
      amount_minor: 2750n,
      tiers: [
        { tier: 1, from: '0', up_to: '1000', quantity: '1000', unit_amount: '0.02', flat_amount: '0', amount: '20' },
        { tier: 2, from: '1000', up_to: null, quantity: '500', unit_amount: '0.015', flat_amount: '0', amount: '7.5' },
      ],
    }),
    line({ line_no: 4, kind: 'discount', product: 'api', description: '10% off API requests', quantity: '1', amount_minor: -1250n }),
    line({
      line_no: 5,
      kind: 'credit',
      product: 'credits',
      description: 'Prepaid credit drawdown',
      quantity: '1',
      amount_minor: -2000n,
      credit_grant: 'globex:2026-09-01:0',
    }),
  ],
  subtotal_minor: 20150n,
  discount_minor: 1250n,
  credits_applied_minor: 2000n,
  tax_lines: [
    { jurisdiction: 'US-CA', rate: '0.0725', taxable_minor: 16900n, tax_minor: 1225n },
    { jurisdiction: 'US-CA-SF', rate: '0.005', taxable_minor: 16900n, tax_minor: 85n },
  ],
  tax_minor: 1310n,
  total_minor: 18210n,
  rating_run: 'rr:v1:acme-us:2026-10',
};

// KWD has three minor digits: 12.345 + 0.500 = 12.845 taxable; no VAT line at 0% still prints; total 12.845 KWD.
const gulf: LegalEntity = {
  id: 'acme-kw',
  name: 'Acme Gulf W.L.L.',
  country: 'KW',
  currency: 'KWD',
  invoice_number_prefix: 'ACKW-',
  rounding: 'half_up',
};
const souq: Customer = {
  id: 'souq',
  name: 'Souq Trading Co.',
  legal_entity: 'acme-kw',
  tax_jurisdiction: 'KW',
  erp_customer_id: 'K-77',
  tenants: ['souq'],
};
const kwd: Invoice = {
  ...usd,
  id: 'inv_2026_10_souq',
  key: 'inv:v1:acme-kw:souq:KWD:2026-10',
  number: 'ACKW-000007',
  legal_entity: 'acme-kw',
  customer: 'souq',
  currency: 'KWD',
  lines: [
    line({
      line_no: 1,
      kind: 'usage',
      product: 'api',
      description: 'API requests',
      quantity: '123450',
      unit_amount: '0.0001',
      amount_minor: 12345n,
    }),
    line({
      line_no: 2,
      kind: 'flat',
      product: 'platform',
      description: 'Platform fee (monthly)',
      quantity: '1',
      unit_amount: '0.500',
      amount_minor: 500n,
    }),
  ],
  subtotal_minor: 12845n,
  discount_minor: 0n,
  credits_applied_minor: 0n,
  tax_lines: [{ jurisdiction: 'KW', rate: '0', taxable_minor: 12845n, tax_minor: 0n }],
  tax_minor: 0n,
  total_minor: 12845n,
};

// 60 lines of 1.00..60.00 = 1830.00; no tax.
const long: Invoice = {
  ...usd,
  id: 'inv_2026_10_long',
  number: 'ACUS-000124',
  lines: Array.from({ length: 60 }, (_, i) =>
    line({
      line_no: i + 1,
      kind: 'usage',
      product: 'api',
      description: `API requests, region ${String(i + 1).padStart(2, '0')}`,
      quantity: String((i + 1) * 1000),
      unit_amount: '0.001',
      amount_minor: BigInt((i + 1) * 100),
    }),
  ),
  subtotal_minor: 183000n,
  discount_minor: 0n,
  credits_applied_minor: 0n,
  tax_lines: [],
  tax_minor: 0n,
  total_minor: 183000n,
};

const credit: Invoice = {
  ...usd,
  id: 'cn_2026_10_globex',
  key: 'cn:v1:inv_2026_10_globex:1',
  kind: 'credit_note',
  corrects: 'inv_2026_10_globex',
  number: 'ACUS-000125',
  lines: [
    line({
      line_no: 1,
      kind: 'flat',
      product: 'platform',
      description: 'Platform fee refund',
      quantity: '1',
      unit_amount: '49.00',
      amount_minor: 4900n,
    }),
  ],
  subtotal_minor: 4900n,
  discount_minor: 0n,
  credits_applied_minor: 0n,
  tax_lines: [{ jurisdiction: 'US-CA', rate: '0.0725', taxable_minor: 4900n, tax_minor: 355n }],
  tax_minor: 355n,
  total_minor: 5255n,
};

const usdInput: InvoicePdfInput = { invoice: usd, legalEntity: acme, customer: globex, products };

// ---------- reading the PDF back ----------

function tool(name: string, args: string[]): string {
  try {
    return execFileSync(name, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${name} is not installed: it is needed to read the rendered PDF back (Debian: apt-get install -y poppler-utils)`, {
        cause: error,
      });
    }
    throw error;
  }
}

/** The PDF's text, one string per page (pdftotext separates pages with form feeds). */
function pdfPages(pdf: Buffer): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'accrue-pdf-'));
  try {
    writeFileSync(join(dir, 'doc.pdf'), pdf);
    return tool('pdftotext', ['-layout', join(dir, 'doc.pdf'), '-'])
      .split('\f')
      .filter((page) => page.trim() !== '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function assertContains(text: string, expected: string[]): void {
  for (const e of expected) assert.ok(text.includes(e), `expected ${JSON.stringify(e)} in the PDF text:\n${text}`);
}

async function renderTwice(input: InvoicePdfInput): Promise<Buffer> {
  const a = await renderInvoicePdf(input);
  const b = await renderInvoicePdf(structuredClone(input));
  assert.equal(a.subarray(0, 5).toString('latin1'), '%PDF-');
  assert.ok(a.equals(b), 'the same invoice renders to byte-identical PDFs');
  return a;
}

// ---------- tests ----------

describe('invoice PDF', () => {
  it('USD invoice: issuer, number, dates, customer, every line, discount, credits, each tax line, total, rounding', async () => {
    const pdf = await renderTwice(usdInput);
    const pages = pdfPages(pdf);
    assert.equal(pages.length, 1);
    const text = pages.join('\n');
    assertContains(text, [
      'Acme Cloud Inc.',
      'Country: US',
      'INVOICE',
      'ACUS-000123',
      'Issue date',
      '2026-11-01',
      '2026-10-01 to 2026-10-31',
      'Globex Corporation',
      'globex',
      'C-10042',
      'US-CA',
      'Platform fee (monthly)',
      '49.00',
      '1250000',
      '0.0001',
      '125.00',
      'tiered',
      '27.50',
      'tier 1: 1000 x 0.02',
      '-12.50',
      '-20.00',
      'Subtotal',
      '201.50 USD',
      'Discounts',
      '-12.50 USD',
      'Prepaid credits applied',
      '-20.00 USD',
      'Tax US-CA 7.25% on 169.00',
      '12.25 USD',
      'Tax US-CA-SF 0.5% on 169.00',
      '0.85 USD',
      'Total due',
      '182.10 USD',
      'Amount (USD)',
      "Amounts rounded half up to the currency's minor unit",
      'Page 1 of 1',
    ]);
  });

  it('KWD invoice: three minor digits throughout', async () => {
    const text = pdfPages(await renderTwice({ invoice: kwd, legalEntity: gulf, customer: souq, products })).join('\n');
    assertContains(text, [
      'Acme Gulf W.L.L.',
      'ACKW-000007',
      'Souq Trading Co.',
      'K-77',
      '12.345',
      '0.500',
      'Tax KW 0% on 12.845',
      '0.000 KWD',
      'Total due',
      '12.845 KWD',
      'KWD: 3 decimals',
    ]);
  });

  it('a 60-line invoice paginates, repeating the table header, with every line and the total', async () => {
    const pages = pdfPages(await renderTwice({ ...usdInput, invoice: long }));
    assert.ok(pages.length >= 2, `expected more than one page, got ${pages.length}`);
    for (const [index, page] of pages.entries()) {
      assertContains(page, ['Description', 'Quantity', 'Unit price', 'Amount (USD)', `Page ${index + 1} of ${pages.length}`]);
    }
    assertContains(pages.slice(1).join('\n'), ['ACUS-000124 (continued)']);
    const text = pages.join('\n');
    for (let i = 1; i <= 60; i++) assertContains(text, [`region ${String(i).padStart(2, '0')}`, `${i}.00`]);
    assertContains(pages.at(-1)!, ['Total due', '1830.00 USD']);
  });

  it('credit note names the invoice it corrects', async () => {
    const text = pdfPages(await renderTwice({ ...usdInput, invoice: credit })).join('\n');
    assertContains(text, ['CREDIT NOTE', 'ACUS-000125', 'Corrects invoice', 'inv_2026_10_globex', 'Total credited', '52.55 USD']);
  });

  it('a draft says DRAFT instead of a number', async () => {
    const text = pdfPages(await renderTwice({ ...usdInput, invoice: { ...usd, number: null, status: 'draft' } })).join('\n');
    assertContains(text, ['DRAFT', 'not a valid tax invoice']);
    assert.ok(!text.includes('ACUS-000123'));
  });

  it('different content gives different bytes and a different document ID; the creation date is the billing date', async () => {
    const a = await renderInvoicePdf(usdInput);
    const b = await renderInvoicePdf({ ...usdInput, invoice: { ...usd, total_minor: usd.total_minor + 1n } });
    const id = (pdf: Buffer) => /\/ID \[<([0-9a-f]+)>/.exec(pdf.toString('latin1'))?.[1];
    assert.ok(id(a) && id(b) && id(a) !== id(b), 'trailer IDs differ');
    assert.ok(a.toString('latin1').includes('(D:20261101000000Z)'), 'CreationDate is period_end');
  });

  it('characters outside the standard fonts are transliterated, not garbled', async () => {
    const text = pdfPages(await renderInvoicePdf({ ...usdInput, customer: { ...globex, name: 'Łódź Żółć Sp. z o.o.' } })).join('\n');
    assertContains(text, ['Lódz Zólc Sp. z o.o.']);
  });
});

// ---------- legal content ----------

const seller = {
  name: 'Acme Cloud Inc.',
  address: { lines: ['500 Howard Street', 'Suite 400'], city: 'San Francisco', region: 'CA', postal_code: '94105', country: 'US' },
  tax_id: 'EIN 94-1234567',
};
const buyer = {
  name: 'Globex Corporation',
  address: { lines: ['200 Park Avenue'], city: 'New York', region: 'NY', postal_code: '10166', country: 'US' },
  tax_id: 'US-TX-998877',
};
const legal: Invoice = { ...usd, issue_date: '2026-11-01', payment_terms_days: 30, due_date: '2026-12-01', seller, buyer };

describe('invoice PDF: legal content', () => {
  it('prints the seller and buyer addresses and tax ids, the issue date, the due date and the payment terms', async () => {
    const text = pdfPages(await renderTwice({ ...usdInput, invoice: legal })).join('\n');
    assertContains(text, [
      'Acme Cloud Inc.',
      '500 Howard Street',
      'Suite 400',
      '94105 San Francisco',
      'CA, US',
      'VAT / Tax ID: EIN 94-1234567',
      'Globex Corporation',
      '200 Park Avenue',
      '10166 New York',
      'NY, US',
      'VAT / Tax ID: US-TX-998877',
      'Issue date',
      '2026-11-01',
      'Due date',
      '2026-12-01',
      'Payment terms',
      'Net 30',
    ]);
    assert.ok(!text.includes('Country: US'), 'the address replaces the bare country');
  });

  it('prints the snapshot, not the catalog: a changed catalog address does not change an issued invoice', async () => {
    const moved = { ...acme, address: { lines: ['1 New Street'], city: 'Austin', country: 'US' }, tax_id: 'EIN 00-0000000' };
    const movedCustomer = {
      ...globex,
      name: 'Globex Renamed',
      billing_address: { lines: ['9 Elsewhere Rd'], city: 'Boston', country: 'US' },
    };
    const before = await renderInvoicePdf({ ...usdInput, invoice: legal });
    const after = await renderInvoicePdf({ ...usdInput, invoice: legal, legalEntity: moved, customer: movedCustomer });
    assert.ok(after.equals(before), 'byte-identical: only the invoice snapshot is printed');
    const text = pdfPages(after).join('\n');
    assertContains(text, ['500 Howard Street', '200 Park Avenue', 'Globex Corporation']);
    for (const gone of ['1 New Street', 'Austin', 'Globex Renamed', 'Elsewhere', 'EIN 00-0000000'])
      assert.ok(!text.includes(gone), `${gone} is not on the issued invoice`);
  });

  it('renders what there is for an entity and a customer without address or tax id', async () => {
    const bare: Invoice = {
      ...usd,
      issue_date: '2026-11-01',
      payment_terms_days: 0,
      due_date: '2026-11-01',
      seller: { name: 'Acme Cloud Inc.', address: null, tax_id: null },
      buyer: { name: 'Globex Corporation', address: null, tax_id: null },
    };
    const text = pdfPages(await renderTwice({ ...usdInput, invoice: bare })).join('\n');
    assertContains(text, ['Acme Cloud Inc.', 'Country: US', 'Globex Corporation', 'Due date', 'Due on receipt', 'Total due', '182.10 USD']);
    assert.ok(!text.includes('VAT / Tax ID'), 'no tax id line without a tax id');
  });

  it('a credit note has no due date or payment terms', async () => {
    const note: Invoice = { ...credit, issue_date: '2026-12-01', payment_terms_days: null, due_date: null, seller, buyer };
    const text = pdfPages(await renderTwice({ ...usdInput, invoice: note })).join('\n');
    assertContains(text, ['CREDIT NOTE', 'Issue date', '2026-12-01', '500 Howard Street', 'VAT / Tax ID: US-TX-998877']);
    assert.ok(!text.includes('Due date') && !text.includes('Payment terms'));
  });
});

// ---------- package lines: quantity × unit price = amount ----------

describe('package lines read in packages', () => {
  const catalogText = (round: 'up' | 'down') =>
    JSON.stringify({
      version: 1,
      legal_entities: [{ id: 'e', name: 'E GmbH', country: 'DE', currency: 'EUR', invoice_number_prefix: 'E-', rounding: 'half_up' }],
      accounts: { e: { receivable: '1', cash: '2', tax_payable: '3', deferred_revenue: '4' } },
      tax_rates: [{ jurisdiction: 'DE', rate: '0' }],
      meters: [{ id: 'calls', event_type: 'call', aggregation: 'count' }],
      products: [{ id: 'api', name: 'API', revenue_account: { e: '8400' } }],
      plans: [
        {
          id: 'p',
          currency: 'EUR',
          prices: [{ product: 'api', meter: 'calls', model: 'per_unit', package: { size: '1000', round }, unit_amount: '0.30' }],
        },
      ],
      customers: [{ id: 'c', name: 'C', legal_entity: 'e', tax_jurisdiction: 'DE', erp_customer_id: 'C-1', tenants: ['c'] }],
      subscriptions: [{ customer: 'c', plan: 'p', start: '2026-01-01' }],
    });
  const rate = (round: 'up' | 'down', usage: string) => {
    const loaded = parseCatalog(catalogText(round));
    assert.ok(loaded.ok);
    const rated = rateCustomer({
      catalog: loaded.value.catalog,
      index: indexCatalog(loaded.value.catalog),
      catalogHash: loaded.value.hash,
      customer: 'c',
      period: { period: '2026-11', start_date: '2026-11-01', end_date: '2026-12-01' },
      grantUsedMinor: new Map(),
      usage: () => ({ quantity: usage, usage_ref: 'u' }),
      usageFingerprint: 'f',
    });
    assert.ok(rated.ok);
    return rated.value[0]!;
  };

  // Worked by hand: packages = usage / 1000 rounded; amount = packages × 0.30.
  const table: Array<[round: 'up' | 'down', usage: string, packages: string, amount: string]> = [
    ['up', '1234567', '1235', '370.50'],
    ['down', '1234567', '1234', '370.20'],
    ['up', '470', '1', '0.30'],
    ['down', '470', '0', '0.00'],
    ['up', '35000', '35', '10.50'],
    ['up', '0', '0', '0.00'],
  ];
  for (const [round, usage, packages, amount] of table) {
    it(`${usage} calls, packages of 1000 rounded ${round}: ${packages} × 0.30 = ${amount}`, async () => {
      const invoice = rate(round, usage);
      const line = invoice.lines[0]!;
      assert.equal(line.quantity, usage, 'the line keeps the metered usage for lineage and reconciliation');
      assert.deepEqual(line.package, { size: '1000', round, quantity: packages });
      const shown = presentedLine(line);
      assert.deepEqual(shown, { quantity: packages, unit_price: '0.30', unit: 'package of 1000', usage_quantity: usage });
      assert.equal(formatMajor(line.amount_minor, 'EUR'), amount);
      assert.ok(new Decimal(shown.quantity).times(shown.unit_price!).equals(amount), 'quantity × unit price = amount');
      const json = exportInvoice({ ...invoice, number: 'E-000001', status: 'finalized' }).lines[0]!;
      assert.deepEqual(
        [json.quantity, json.unit, json.usage_quantity, json.unit_price, json.amount],
        [packages, 'package of 1000', usage, '0.30', amount],
      );
      const loaded = parseCatalog(catalogText(round));
      assert.ok(loaded.ok);
      const text = pdfPages(
        await renderTwice({
          invoice: { ...invoice, number: 'E-000001', status: 'finalized' },
          legalEntity: loaded.value.catalog.legal_entities[0]!,
          customer: loaded.value.catalog.customers[0]!,
          products: new Map([['api', { name: 'API' }]]),
        }),
      ).join('\n');
      // One table row: line 1, the description, packages, the price of one package, the amount.
      assert.match(
        text,
        new RegExp(
          `1\\s+API: calls \\(${packages} packages? of 1000: ${usage} rounded ${round}\\)\\s+${packages}\\s+0\\.30\\s+${amount.replace('.', '\\.')}`,
        ),
      );
      assertContains(text, [`${usage} units metered; priced per package of 1000, rounded ${round}`]);
    });
  }
});
