// Contract test: every body the Xero connector sends (manual journal, invoice, credit note, contact create and update,
// allocation, payment) is valid against the matching request schema of Xero's own OpenAPI description
// (../shared/specs/xero/xero_accounting.yaml), with the schemas closed so a field the spec does not name is an error.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Journal } from '../../src/domain/model.js';
import type { SalesDocument } from '../../src/post/erp-documents.js';
import { XeroSimulator, xeroSchemaErrors, type XeroRequestSchema } from '../support/xero-sim.js';
import { northwindTenant, xeroTestTarget } from '../support/xero-target.js';

const sim = new XeroSimulator({ perMinute: 10_000 });
before(async () => {
  sim.addTenant('contract', northwindTenant({ items: ['API'] }));
  await sim.start();
});
after(async () => {
  await sim.stop();
});

/** The request schema of each write the connector makes, by method and path. */
function schemaOf(method: string, path: string): XeroRequestSchema {
  const p = path.replace(/^\/api\.xro\/2\.0\//, '');
  if (p === 'ManualJournals') return 'ManualJournals';
  if (p === 'Invoices') return 'Invoices';
  if (p === 'CreditNotes') return 'CreditNotes';
  if (/^CreditNotes\/[^/]+\/Allocations$/.test(p) && method === 'PUT') return 'Allocations';
  if (p === 'Contacts' || /^Contacts\/[^/]+$/.test(p)) return 'Contacts';
  if (p === 'Payments' && method === 'PUT') return 'Payments';
  throw new Error(`no request schema known for ${method} ${path}`);
}

const invoice: SalesDocument = {
  kind: 'invoice',
  source_document: 'inv_c1',
  journal_id: 'jrn:v1:invoice:inv_c1',
  number: 'NWDE-000101',
  corrects: null,
  legal_entity: 'nw-de',
  customer: 'umbrella',
  customer_erp_id: 'D-20011',
  currency: 'EUR',
  date: '2026-11-30',
  due_date: '2026-12-14',
  buyer: {
    name: 'Umbrella GmbH',
    address: { lines: ['Umbrellastraße 1', 'Etage 2'], city: 'München', region: 'BY', postal_code: '80331', country: 'DE' },
    tax_id: 'DE987654321',
  },
  period_start: '2026-11-01',
  period_end: '2026-12-01',
  memo: 'November',
  tax: { jurisdiction: 'DE', rate: '0.19' },
  lines: [
    { product: 'api', description: 'API 2026-11', account: '8400', amount_minor: 10000n, tax_minor: 1900n },
    { product: 'platform', description: 'Platform 2026-11', account: '8490', amount_minor: 24900n, tax_minor: 4731n },
  ],
  tax_minor: 6631n,
  total_minor: 41531n,
};

const note: SalesDocument = {
  ...invoice,
  kind: 'credit_note',
  source_document: 'cn_c1',
  journal_id: 'jrn:v1:credit_note:cn_c1',
  number: 'NWDE-CN-000101',
  corrects: invoice.number,
  due_date: null,
  date: '2026-12-03',
  lines: [
    { product: 'api', description: 'API 2026-11 corrected', account: '8400', amount_minor: 5000n, tax_minor: 950n },
    { product: null, description: 'Prepaid credits restored', account: '3900', amount_minor: -1000n, tax_minor: -190n },
  ],
  tax_minor: 760n,
  total_minor: 4760n,
};

const drawdown: Journal = {
  id: 'jrn:v1:credit_drawdown:inv_c2',
  key: 'k',
  legal_entity: 'nw-us',
  posting_date: '2026-11-30',
  source_document: 'inv_c2',
  kind: 'credit_drawdown',
  memo: 'Prepaid credits drawn',
  lines: [
    { line_no: 1, account: '2400', debit_minor: 12345n, credit_minor: 0n, currency: 'USD' },
    { line_no: 2, account: '1200', debit_minor: 0n, credit_minor: 12345n, currency: 'USD', customer: 'acme' },
  ],
};

describe('Xero contract: every body the connector sends fits xero_accounting.yaml', () => {
  it('manual journal, contact create and update, invoice, credit note, allocation and payment', async () => {
    const mappings = [
      ...['1000', '1200', '2400', '3900', '8400', '8490', '1800'].map((code) => ({ kind: 'account' as const, source: code, target: code })),
      { kind: 'tax_type' as const, source: 'DE', target: 'OUTPUT' },
      { kind: 'currency' as const, source: 'EUR', target: 'EUR' },
      { kind: 'item' as const, source: 'api', target: 'API' },
    ];
    const target = xeroTestTarget(sim, { tenantId: 'contract', mappings });
    await target.post('out:v1:xero:jrn:v1:credit_drawdown:inv_c2', drawdown);
    await target.postDocument('out:v1:xero:jrn:v1:invoice:inv_c1', invoice);
    await target.postDocument('out:v1:xero:jrn:v1:credit_note:cn_c1', note);
    // The customer's address changed: the contact is updated before the next document.
    const moved = {
      ...invoice,
      source_document: 'inv_c3',
      number: 'NWDE-000102',
      buyer: { ...invoice.buyer!, address: { ...invoice.buyer!.address!, lines: ['Neue Straße 5'] } },
    };
    await target.postDocument('out:v1:xero:jrn:v1:invoice:inv_c3', moved);
    await target.postPayment('out:v1:xero:payment:pay_c1', {
      payment_id: 'pay_c1',
      invoice_number: moved.number,
      invoice_id: 'inv_c3',
      legal_entity: 'nw-de',
      customer: 'umbrella',
      customer_erp_id: 'D-30001',
      currency: 'EUR',
      amount_minor: 41531n,
      received_on: '2026-12-04',
    });

    const writes = sim.tenant('contract').writes;
    const seen = new Set<string>();
    for (const write of writes) {
      const schema = schemaOf(write.method, write.path);
      seen.add(`${write.method} ${schema}${write.path.match(/Contacts\/./) ? ' (update)' : ''}`);
      assert.deepEqual(xeroSchemaErrors(schema, JSON.parse(write.body)), [], `${write.method} ${write.path}: ${write.body}`);
    }
    assert.deepEqual([...seen].sort(), [
      'POST Contacts (update)',
      'POST CreditNotes',
      'POST Invoices',
      'POST ManualJournals',
      'PUT Allocations',
      'PUT Contacts',
      'PUT Payments',
    ]);
    // Amounts travel as exact decimal literals.
    const payment = writes.find((w) => w.path.endsWith('/Payments'))!.body;
    assert.match(payment, /"Amount":415\.31[,}]/);
    assert.match(writes.find((w) => w.path.endsWith('/Allocations'))!.body, /"Amount":47\.6[,}]/);
  });

  it('a document booked from another currency carries the rate of its journal as CurrencyRate, valid against the spec', async () => {
    // The organisation keeps USD books; the invoice is in EUR and its journal was booked at 1 EUR = 1.0876 USD.
    // Xero's CurrencyRate is EUR per USD: 1 / 1.0876 = 0.919455682... -> 0.919456 (6 places, half-even).
    const mappings = [
      ...['1200', '8400', '8490'].map((code) => ({ kind: 'account' as const, source: code, target: code })),
      { kind: 'tax_type' as const, source: 'DE', target: 'OUTPUT' },
      { kind: 'currency' as const, source: 'EUR', target: 'EUR' },
      { kind: 'item' as const, source: 'api', target: 'API' },
    ];
    const target = xeroTestTarget(sim, { tenantId: 'contract', mappings });
    const before = sim.tenant('contract').writes.length;
    const booked = {
      ...invoice,
      source_document: 'inv_fx1',
      number: 'NWDE-000201',
      fx: { currency: 'EUR', rate: '1.0876', rate_date: '2026-11-30', source: 'ecb' },
    };
    await target.postDocument('out:v1:xero:jrn:v1:invoice:inv_fx1', booked);
    const write = sim
      .tenant('contract')
      .writes.slice(before)
      .find((w) => w.path.endsWith('/Invoices'))!;
    assert.deepEqual(xeroSchemaErrors('Invoices', JSON.parse(write.body)), []);
    assert.match(write.body, /"CurrencyCode":"EUR","CurrencyRate":0\.919456,/);
    // Without a rate (a document in the books' own currency) there is no CurrencyRate: Xero's is never guessed at.
    assert.doesNotMatch(sim.tenant('contract').writes.find((w) => w.path.endsWith('/Invoices'))!.body, /CurrencyRate/);
  });

  it('the check can fail: an unknown field, a wrong type and a wrong enum value are reported, and the simulator answers them 400', async () => {
    assert.notDeepEqual(
      xeroSchemaErrors('Payments', {
        Payments: [{ Invoice: { InvoiceID: 'x' }, Account: { Code: '1000' }, Amount: 1, Date: '2026-12-01', Referense: 'typo' }],
      }),
      [],
    );
    assert.notDeepEqual(
      xeroSchemaErrors('Allocations', { Allocations: [{ Amount: '1.00', Invoice: { InvoiceID: 'x' }, Date: '2026-12-01' }] }),
      [],
    );
    assert.notDeepEqual(xeroSchemaErrors('Contacts', { Contacts: [{ Name: 'X', Addresses: [{ AddressType: 'HOME' }] }] }), []);
    const token = sim.issueToken(['contract']);
    const res = await fetch(`${sim.url}/api.xro/2.0/Invoices`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'xero-tenant-id': 'contract', 'content-type': 'application/json' },
      body: JSON.stringify({
        Invoices: [
          {
            Type: 'ACCREC',
            Contact: { ContactID: 'x' },
            LineItems: [{ Description: 'x', Quantity: 1, UnitAmount: 1, AccountCode: '8400', Colour: 'red' }],
          },
        ],
      }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { Type: string; Message: string };
    assert.equal(body.Type, 'PostDataInvalidException');
    assert.match(body.Message, /Colour/);
  });
});
