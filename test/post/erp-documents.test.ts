// The tax of an ERP document spread over its lines: exact sums, each share within one minor unit of its proportion.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { Ajv } from 'ajv';
import { allocateProportionally, salesDocumentFor } from '../../src/post/erp-documents.js';
import { parseJsonDecimals, stringifyWithDecimals, decimalLiteral } from '../../src/connectors/json-decimal.js';
import { indexCatalog, parseCatalog } from '../../src/domain/catalog.js';
import { rateCustomer } from '../../src/rate/rate.js';
import { reissued } from '../../src/domain/invoice-terms.js';
import type { CatalogVersion } from '../../src/catalog/service.js';
import type { Invoice } from '../../src/domain/model.js';
import { journalsFor } from '../../src/post/journals.js';
import { contactBody, contactDetails, salesDocumentBody as xeroSalesBody } from '../../src/connectors/xero/sales.js';
import type { SalesDocument } from '../../src/post/erp-documents.js';

const CONTACT_ID = '5b8a4e1c-0d2f-4c33-9a51-0e7d1b2c3f40';
/** The Xero body with the Northwind mappings (accounts as their codes, every jurisdiction OUTPUT) and a synced contact. */
const salesDocumentBody = (key: string, document: SalesDocument, options: { dueDays?: number } = {}) =>
  xeroSalesBody(key, document, {
    contactId: CONTACT_ID,
    currencyCode: document.currency,
    lines: document.lines.map((l) => ({ AccountCode: l.account, TaxType: 'OUTPUT' })),
    ...options,
  });
import { salesRecordBody } from '../../src/connectors/netsuite/sales.js';
import { tableReferences } from '../support/netsuite-target.js';

describe('allocateProportionally', () => {
  it('splits by largest remainder: worked examples', () => {
    // 57.43 EUR of 19% tax over 0.27, 53.00 and 249.00 (sum 302.27): floors 5, 1006, 4730 (5741); the two cents left
    // go to the largest remainders, 53.00 (29538/30227) and 249.00 (26990/30227).
    assert.deepEqual(allocateProportionally(5743n, [27n, 5300n, 24900n]), [5n, 1007n, 4731n]);
    assert.deepEqual(allocateProportionally(10n, [1n, 1n, 1n]), [4n, 3n, 3n], 'ties go to the earlier line');
    assert.deepEqual(allocateProportionally(0n, [100n, 200n]), [0n, 0n]);
    assert.deepEqual(allocateProportionally(0n, [0n, 0n]), [0n, 0n]);
    // A credit note's restored-credits line is negative: its share of the tax is negative too.
    assert.deepEqual(allocateProportionally(19n, [200n, -100n]), [38n, -19n]);
  });

  it('refuses a total it cannot place', () => {
    assert.throws(() => allocateProportionally(5n, [0n, 0n]), /bases sum to zero/);
    assert.throws(() => allocateProportionally(5n, [-3n, 1n]), /positive/);
  });

  it('always hands out the total exactly, each share within one unit of total × base / sum', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.array(fc.bigInt({ min: 0n, max: 10n ** 9n }), { minLength: 1, maxLength: 30 }),
        (total, bases) => {
          const sum = bases.reduce((s, b) => s + b, 0n);
          fc.pre(sum > 0n);
          const shares = allocateProportionally(total, bases);
          assert.equal(
            shares.reduce((s, v) => s + v, 0n),
            total,
          );
          shares.forEach((share, i) => {
            const exactTimesSum = total * bases[i]!;
            assert.ok(share * sum <= exactTimesSum + sum && share * sum >= exactTimesSum - sum, `share ${i} within one unit`);
          });
        },
      ),
    );
  });
});

describe('JSON with exact decimals', () => {
  it('reads numbers as their literal text and writes decimal literals unchanged', () => {
    assert.deepEqual(parseJsonDecimals('{"a":100.50,"b":[-0.1,2e3],"c":"1.5 \\" x","d":true,"e":null}'), {
      a: '100.50',
      b: ['-0.1', '2e3'],
      c: '1.5 " x',
      d: true,
      e: null,
    });
    assert.equal(
      stringifyWithDecimals({ x: decimalLiteral('12345678901234567890.12'), q: 1, s: 'a"b', skip: undefined }),
      '{"x":12345678901234567890.12,"q":1,"s":"a\\"b"}',
    );
    assert.throws(() => stringifyWithDecimals({ amount: 0.1 }), /non-integer number/);
    assert.throws(() => decimalLiteral('1e5'), /not a plain decimal/);
  });
});

// ---------- legal content in the ERP documents ----------

const loaded = parseCatalog(readFileSync('examples/northwind/catalog.yaml', 'utf8'));
assert.ok(loaded.ok);
const catalog: CatalogVersion = {
  version: 1,
  hash: loaded.value.hash,
  catalog: loaded.value.catalog,
  index: indexCatalog(loaded.value.catalog),
  applied_at: '2026-11-01T00:00:00Z',
  applied_by: 'test',
};

/** A Northwind November invoice of `customer`, finalized as `number`, with its document journal. */
function finalized(customer: string, number: string, usage = '2'): { invoice: Invoice; document: ReturnType<typeof salesDocumentFor> } {
  const rated = rateCustomer({
    catalog: catalog.catalog,
    index: catalog.index,
    catalogHash: catalog.hash,
    customer,
    period: { period: '2026-11', start_date: '2026-11-01', end_date: '2026-12-01' },
    grantUsedMinor: new Map(),
    usage: () => ({ quantity: usage, usage_ref: 'u' }),
    usageFingerprint: 'f',
  });
  assert.ok(rated.ok);
  const invoice: Invoice = { ...rated.value[0]!, number, status: 'finalized' };
  const journal = journalsFor(invoice, catalog, '2026-11-30').find((j) => j.kind === 'invoice')!;
  return { invoice, document: salesDocumentFor(invoice, journal, catalog) };
}

/** Xero's OpenAPI spec: ACCRUE_XERO_SPEC, the shared copy beside the repository, or Xero's file kept in test/fixtures/xero. */
function xeroSpec(): { components: { schemas: Record<string, unknown> } } {
  const candidates = [process.env.ACCRUE_XERO_SPEC, '../shared/specs/xero/xero_accounting.yaml', 'test/fixtures/xero/xero_accounting.yaml']
    .filter((p): p is string => !!p)
    .map((p) => resolve(p));
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`Xero's spec xero_accounting.yaml not found at ${candidates.join(', ')} (set ACCRUE_XERO_SPEC)`);
  return parse(readFileSync(found, 'utf8')) as { components: { schemas: Record<string, unknown> } };
}

/** The spec's schemas closed: a property the spec does not name is an error (the spec itself leaves objects open). */
function closed(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closed);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) if (!k.startsWith('x-') && k !== 'externalDocs' && k !== 'example') out[k] = closed(v);
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  if (typeof out.$ref === 'string') return { $ref: (out.$ref as string).replace('#/components/schemas/', 'xero#/components/schemas/') };
  return out;
}

function validateAgainstXero(kind: 'Invoice' | 'CreditNote' | 'Contact', body: unknown): string[] {
  const spec = xeroSpec();
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'xero', components: { schemas: closed(spec.components.schemas) } });
  const validate = ajv.compile({ $ref: `xero#/components/schemas/${kind}` });
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
}

describe('ERP documents carry the due date, billing address and tax number of the invoice', () => {
  it('the sales document takes the invoice due date and buyer, not a date computed from the posting date', () => {
    const { document } = finalized('umbrella', 'NWDE-000001');
    assert.equal(document.date, '2026-11-30');
    // Issued 2026-12-01 (the billing date), nw-de's terms 14 days.
    assert.equal(document.due_date, '2026-12-15');
    assert.deepEqual(document.buyer, {
      name: 'Umbrella GmbH',
      address: { lines: ['Umbrellastraße 1'], city: 'München', postal_code: '80331', country: 'DE' },
      tax_id: 'DE987654321',
    });
  });

  it('Xero: DueDate is the invoice due date; the synced Contact has the POBOX address and TaxNumber; the bodies fit the spec', () => {
    const { document } = finalized('umbrella', 'NWDE-000001');
    const body = JSON.parse(salesDocumentBody('acc:key', document)) as { Invoices: Array<Record<string, unknown>> };
    const invoice = body.Invoices[0]!;
    assert.equal(invoice.DueDate, '2026-12-15');
    // The invoice names the contact Accrue synced (customer sync, src/connectors/xero/client.ts); the contact carries the details.
    assert.deepEqual(invoice.Contact, { ContactID: CONTACT_ID });
    assert.deepEqual(contactDetails(document), {
      ContactNumber: 'umbrella',
      Name: 'Umbrella GmbH',
      Addresses: [{ AddressType: 'POBOX', AddressLine1: 'Umbrellastraße 1', City: 'München', PostalCode: '80331', Country: 'DE' }],
      TaxNumber: 'DE987654321',
      DefaultCurrency: 'EUR',
    });
    assert.deepEqual(validateAgainstXero('Invoice', invoice), []);
    assert.deepEqual(validateAgainstXero('Contact', JSON.parse(contactBody(contactDetails(document))).Contacts[0]), []);
    // Acme: two street lines and a region; its own 45-day terms; no tax id, so no TaxNumber.
    const acmeDocument = finalized('acme', 'NWUS-000001').document;
    const acme = JSON.parse(salesDocumentBody('acc:key2', acmeDocument)).Invoices[0];
    assert.equal(acme.DueDate, '2027-01-15');
    const acmeContact = contactDetails(acmeDocument);
    assert.deepEqual(acmeContact.Addresses, [
      {
        AddressType: 'POBOX',
        AddressLine1: '1 Acme Way',
        AddressLine2: 'Accounts Payable',
        City: 'Los Angeles',
        Region: 'CA',
        PostalCode: '90012',
        Country: 'US',
      },
    ]);
    assert.equal('TaxNumber' in acmeContact, false);
    assert.deepEqual(validateAgainstXero('Invoice', acme), []);
    // The check can fail: a field Xero does not know is reported.
    assert.notDeepEqual(validateAgainstXero('Invoice', { ...acme, Contact: { ...acme.Contact, Address: 'x' } }), []);
  });

  it('Xero: an invoice without address or tax id syncs a contact with the name alone; a credit note has no DueDate', () => {
    const { invoice } = finalized('initech', 'NWUS-000003');
    const journal = journalsFor(invoice, catalog, '2026-11-30').find((j) => j.kind === 'invoice')!;
    const initechDocument = salesDocumentFor(invoice, journal, catalog);
    const initech = JSON.parse(salesDocumentBody('k', initechDocument)).Invoices[0];
    assert.deepEqual([initech.Contact, initech.DueDate], [{ ContactID: CONTACT_ID }, '2026-12-31']);
    assert.deepEqual(Object.keys(contactDetails(initechDocument)).sort(), ['ContactNumber', 'DefaultCurrency', 'Name']);
    const note: Invoice = {
      ...invoice,
      id: 'cn_1',
      key: 'cn:v1:x',
      kind: 'credit_note',
      corrects: invoice.id,
      number: 'NWUS-CN-000001',
      ...reissued(invoice, 'credit_note', '2027-01-01'),
    };
    const noteJournal = journalsFor(note, catalog, '2026-12-31')[0]!;
    const noteDocument = salesDocumentFor(note, noteJournal, catalog, 'NWUS-000003');
    assert.equal(noteDocument.due_date, null);
    const credit = JSON.parse(salesDocumentBody('k2', noteDocument)).CreditNotes[0];
    assert.equal('DueDate' in credit, false);
    assert.deepEqual(validateAgainstXero('CreditNote', credit), []);
  });

  it('a document of an invoice stored before due dates falls back to the document date plus the configured days', () => {
    const { invoice } = finalized('umbrella', 'NWDE-000001');
    const { issue_date: _i, due_date: _d, payment_terms_days: _t, seller: _s, buyer: _b, ...legacy } = invoice;
    const journal = journalsFor(legacy, catalog, '2026-11-30').find((j) => j.kind === 'invoice')!;
    const document = salesDocumentFor(legacy, journal, catalog);
    assert.deepEqual([document.due_date, document.buyer], [null, null]);
    const body = JSON.parse(salesDocumentBody('k', document, { dueDays: 30 })).Invoices[0];
    assert.deepEqual([body.DueDate, body.Contact], ['2026-12-30', { ContactID: CONTACT_ID }]);
  });

  it('NetSuite: dueDate and the billingAddress subrecord on the invoice record', () => {
    const { document } = finalized('acme', 'NWUS-000001');
    const record = JSON.parse(salesRecordBody(document, tableReferences({ subsidiary: { 'nw-us': '1' } }), 'acc-1', { id: '7001' }));
    assert.equal(record.dueDate, '2027-01-15');
    assert.deepEqual(record.billingAddress, {
      addressee: 'Acme Corp',
      addr1: '1 Acme Way',
      addr2: 'Accounts Payable',
      city: 'Los Angeles',
      state: 'CA',
      zip: '90012',
      country: { id: 'US' },
    });
    const four = { ...document, buyer: { ...document.buyer!, address: { ...document.buyer!.address!, lines: ['a', 'b', 'c', 'd'] } } };
    const joined = JSON.parse(salesRecordBody(four, tableReferences(), 'acc-2', { id: '7001' })).billingAddress;
    assert.deepEqual([joined.addr1, joined.addr2, joined.addr3], ['a', 'b', 'c, d']);
    const bare = JSON.parse(salesRecordBody({ ...document, buyer: null, due_date: null }, tableReferences(), 'acc-3', { id: '7001' }));
    assert.equal('billingAddress' in bare || 'dueDate' in bare, false);
  });
});
