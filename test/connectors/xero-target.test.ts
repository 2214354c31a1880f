// The Xero connector against the strict simulator (test/support/xero-sim.ts): organisations kept apart, mappings
// (missing and refused), customer sync, foreign-currency journals, lock dates, credit-note allocation, payments
// pushed, checkReference, authentication and limits. No database: the connector's own behaviour.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MappingMissing, PeriodLocked, type MappingEntry } from '../../src/domain/erp.js';
import { TargetError } from '../../src/post/target.js';
import type { Journal } from '../../src/domain/model.js';
import type { SalesDocument } from '../../src/post/erp-documents.js';
import type { XeroTarget } from '../../src/connectors/xero/client.js';
import { XeroSimulator } from '../support/xero-sim.js';
import { northwindMappings, northwindTenant, simAuthorizer, xeroTestTarget } from '../support/xero-target.js';

const sim = new XeroSimulator({ timeoutDelayMs: 600, perMinute: 10_000, concurrent: 5 });
before(async () => {
  await sim.start();
});
after(async () => {
  await sim.stop();
});

let tenants = 0;
/** A fresh Northwind organisation in the simulator, and a target on it. */
function organisation(config: Parameters<typeof northwindTenant>[0] = {}, target: Parameters<typeof xeroTestTarget>[1] = {}) {
  const id = `org-${++tenants}`;
  const tenant = sim.addTenant(id, northwindTenant(config));
  return { id, tenant, target: xeroTestTarget(sim, { tenantId: id, name: `xero-${id}`, ...target }) };
}

let numbers = 0;
function invoice(overrides: Partial<SalesDocument> = {}): SalesDocument {
  numbers += 1;
  return {
    kind: 'invoice',
    source_document: `inv_${numbers}`,
    journal_id: `jrn:v1:invoice:inv_${numbers}`,
    number: `NWUS-${String(numbers).padStart(6, '0')}`,
    corrects: null,
    legal_entity: 'nw-us',
    customer: 'acme',
    customer_erp_id: 'C-10042',
    currency: 'USD',
    date: '2026-11-30',
    due_date: '2026-12-30',
    buyer: {
      name: 'Acme Corp',
      address: { lines: ['1 Acme Way'], city: 'Los Angeles', region: 'CA', postal_code: '90012', country: 'US' },
      tax_id: null,
    },
    period_start: '2026-11-01',
    period_end: '2026-12-01',
    memo: 'November',
    tax: { jurisdiction: 'US-CA', rate: '0.0725' },
    lines: [
      { product: 'api', description: 'API 2026-11', account: '4000', amount_minor: 10000n, tax_minor: 725n },
      { product: 'platform', description: 'Platform 2026-11', account: '4090', amount_minor: 5000n, tax_minor: 363n },
    ],
    tax_minor: 1088n,
    total_minor: 16088n,
    ...overrides,
  };
}

function creditNote(of: SalesDocument, overrides: Partial<SalesDocument> = {}): SalesDocument {
  numbers += 1;
  return {
    ...of,
    kind: 'credit_note',
    source_document: `cn_${numbers}`,
    journal_id: `jrn:v1:credit_note:cn_${numbers}`,
    number: `NWUS-CN-${String(numbers).padStart(6, '0')}`,
    corrects: of.number,
    due_date: null,
    date: '2026-12-05',
    lines: [{ product: 'api', description: 'API 2026-11 corrected', account: '4000', amount_minor: 2000n, tax_minor: 145n }],
    tax_minor: 145n,
    total_minor: 2145n,
    ...overrides,
  };
}

const journal = (currency: string, overrides: Partial<Journal> = {}): Journal => ({
  id: `jrn:v1:credit_drawdown:inv_${++numbers}`,
  key: `jrn:${numbers}`,
  legal_entity: currency === 'USD' ? 'nw-us' : 'nw-de',
  posting_date: '2026-11-30',
  source_document: `inv_${numbers}`,
  kind: 'credit_drawdown',
  memo: 'Prepaid credits drawn',
  lines: [
    { line_no: 1, account: '2400', debit_minor: 5000n, credit_minor: 0n, currency },
    { line_no: 2, account: '1200', debit_minor: 0n, credit_minor: 5000n, currency, customer: 'acme' },
  ],
  ...overrides,
});

const key = (what: string) => `out:v1:xero:${what}`;

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a refusal');
}

describe('Xero: two legal entities on two organisations never mix', () => {
  it('each organisation holds only its own documents and contacts; a token granted to one cannot read the other', async () => {
    const us = organisation();
    const de = organisation({ baseCurrency: 'EUR', currencies: [] });
    const usDoc = invoice();
    const deDoc = invoice({
      number: usDoc.number,
      legal_entity: 'nw-de',
      customer: 'umbrella',
      currency: 'EUR',
      tax: { jurisdiction: 'DE', rate: '0.19' },
      buyer: { name: 'Umbrella GmbH', address: null, tax_id: 'DE987654321' },
    });
    const a = await us.target.postDocument(key(`us:${usDoc.source_document}`), usDoc);
    const b = await de.target.postDocument(key(`de:${deDoc.source_document}`), deDoc);
    assert.notEqual(a.reference, b.reference);
    assert.deepEqual([us.tenant.invoices.length, de.tenant.invoices.length], [1, 1]);
    assert.deepEqual([us.tenant.invoices[0]!.CurrencyCode, de.tenant.invoices[0]!.CurrencyCode], ['USD', 'EUR']);
    assert.deepEqual(
      us.tenant.contacts.map((c) => c.ContactNumber),
      ['acme'],
    );
    assert.deepEqual(
      de.tenant.contacts.map((c) => c.ContactNumber),
      ['umbrella'],
    );
    // The same number in each organisation is each one's own document: the DE target sees its own, never the US one.
    assert.deepEqual(await de.target.findDocument(key(`de:${deDoc.source_document}`), deDoc), b);
    await assert.rejects(de.target.findDocument(key(`us:${usDoc.source_document}`), usDoc), /exists with another reference/);
    const listed = await us.target.listDocuments('nw-us', '2026-11');
    assert.deepEqual(
      listed.map((d) => d.reference),
      [a.reference],
    );
    // A token granted for the US organisation, sent with the DE tenant id: 403, nothing read.
    const stolen = simAuthorizer(sim, us.id);
    const res = await fetch(`${sim.url}/api.xro/2.0/Invoices`, {
      headers: { authorization: (await stolen.authorize('GET', sim.url)).authorization!, 'xero-tenant-id': de.id },
    });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { Detail: string }).Detail, 'AuthorizationUnsuccessful');
  });
});

describe('Xero: mappings, no silent defaults', () => {
  it('a missing mapping throws MappingMissing naming the field, before anything is sent', async () => {
    const cases: Array<[Pick<MappingEntry, 'kind' | 'source'>, string]> = [
      [{ kind: 'account', source: '4090' }, 'LineItems[1].AccountCode'],
      [{ kind: 'tax_type', source: 'US-CA' }, 'LineItems[0].TaxType'],
      [{ kind: 'currency', source: 'USD' }, 'CurrencyCode'],
    ];
    for (const [without, field] of cases) {
      const org = organisation({}, { mappings: northwindMappings([], [without]) });
      const error = await refusal(org.target.postDocument(key(`missing:${field}`), invoice()));
      assert.ok(error instanceof MappingMissing, String(error));
      assert.deepEqual([error.kind, error.source, error.field, error.refusedBy], [without.kind, without.source, field, undefined]);
      assert.equal(org.tenant.invoices.length, 0);
      assert.equal(org.tenant.writes.filter((w) => w.path.endsWith('/Invoices')).length, 0, 'nothing sent');
    }
    // A journal's account, and a pushed payment's bank account.
    const org = organisation(
      {},
      {
        mappings: northwindMappings(
          [],
          [
            { kind: 'account', source: '2400' },
            { kind: 'account', source: '1000' },
          ],
        ),
      },
    );
    const error = await refusal(org.target.post(key('j'), journal('USD')));
    assert.ok(error instanceof MappingMissing && error.field === 'JournalLines[0].AccountCode' && error.source === '2400', String(error));
    const payment = await refusal(
      org.target.postPayment(key('p'), {
        payment_id: 'pay_1',
        invoice_number: 'X',
        invoice_id: 'inv_x',
        legal_entity: 'nw-us',
        customer: 'acme',
        customer_erp_id: 'D-20011',
        currency: 'USD',
        amount_minor: 100n,
        received_on: '2026-12-01',
      }),
    );
    assert.ok(
      payment instanceof MappingMissing && payment.field === 'Payments[0].Account.Code' && payment.source === '1000',
      String(payment),
    );
    // A document without tax needs no tax mapping: NoTax, so Xero applies no account default rate.
    const plain = organisation({}, { mappings: northwindMappings([], [{ kind: 'tax_type', source: 'US-CA' }]) });
    await plain.target.postDocument(
      key('notax'),
      invoice({
        tax: null,
        lines: [{ product: 'api', description: 'API', account: '4000', amount_minor: 100n, tax_minor: 0n }],
        tax_minor: 0n,
        total_minor: 100n,
      }),
    );
    assert.equal(JSON.parse(plain.tenant.writes.at(-1)!.body).Invoices[0].LineAmountTypes, 'NoTax');
  });

  it("a mapping Xero refuses (unknown or archived account, deleted tax rate, unknown item, currency not enabled, archived contact) is a MappingMissing with Xero's message", async () => {
    const cases: Array<{
      name: string;
      config?: Parameters<typeof northwindTenant>[0];
      extra: MappingEntry[];
      kind: string;
      field: string;
      message: RegExp;
    }> = [
      {
        name: 'unknown account',
        extra: [{ kind: 'account', source: '4090', target: '4999' }],
        kind: 'account',
        field: 'LineItems[1].AccountCode',
        message: /Account code '4999' is not a valid code for this document\./,
      },
      {
        name: 'archived account',
        config: { accounts: [{ Code: '4000', Status: 'ARCHIVED' }, { Code: '4090' }] },
        extra: [],
        kind: 'account',
        field: 'LineItems[0].AccountCode',
        message: /Account code '4000' has been archived/,
      },
      {
        name: 'deleted tax rate',
        config: { taxTypes: [{ TaxType: 'OUTPUT', Status: 'DELETED' }] },
        extra: [],
        kind: 'tax_type',
        field: 'LineItems[0].TaxType',
        message: /The TaxType code 'OUTPUT' does not exist or cannot be used for this type of transaction\./,
      },
      {
        name: 'unknown item',
        extra: [{ kind: 'item', source: 'platform', target: 'PLAT-1' }],
        kind: 'item',
        field: 'LineItems[1].ItemCode',
        message: /Item code 'PLAT-1' is not valid/,
      },
      {
        name: 'currency not enabled',
        extra: [{ kind: 'currency', source: 'USD', target: 'GBP' }],
        kind: 'currency',
        field: 'CurrencyCode',
        message: /currency code 'GBP' is not a valid currency/,
      },
    ];
    for (const c of cases) {
      const org = organisation(c.config ?? {}, { mappings: northwindMappings(c.extra) });
      const error = await refusal(org.target.postDocument(key(`refused:${c.name}`), invoice()));
      assert.ok(error instanceof MappingMissing, `${c.name}: ${String(error)}`);
      assert.equal(error.kind, c.kind, c.name);
      assert.equal(error.field, c.field, c.name);
      assert.match(error.refusedBy ?? '', c.message, c.name);
      assert.equal(org.tenant.invoices.length, 0);
    }
    // A customer mapped to an archived contact: refused before the document is sent.
    const org = organisation(
      { contacts: [{ Name: 'Acme (old)', ContactNumber: 'ACME-OLD', ContactStatus: 'ARCHIVED' }] },
      { mappings: northwindMappings([{ kind: 'customer', source: 'acme', target: 'ACME-OLD' }]) },
    );
    const archived = await refusal(org.target.postDocument(key('archived-contact'), invoice()));
    assert.ok(
      archived instanceof MappingMissing &&
        archived.kind === 'customer' &&
        archived.field === 'Contact' &&
        /ARCHIVED/.test(archived.refusedBy ?? ''),
      String(archived),
    );
    // A fixed mapping posts: the next load sees it.
    const fixed = organisation({}, { mappings: northwindMappings([{ kind: 'account', source: '4090', target: '4000' }]) });
    await fixed.target.postDocument(key('fixed'), invoice());
    assert.deepEqual(
      fixed.tenant.invoices[0]!.LineItems.map((l) => l.AccountCode),
      ['4000', '4000'],
    );
  });
});

describe('Xero: manual journals carry no currency', () => {
  it("a journal in another currency than the organisation's base is refused, never booked as base currency", async () => {
    const org = organisation();
    const error = await refusal(org.target.post(key('eur-journal'), journal('EUR')));
    assert.ok(error instanceof TargetError, String(error));
    assert.equal(error.details.code, 'foreign_currency_journal');
    assert.equal(error.details.permanent, true);
    assert.match(error.message, /base currency is USD.*invoice or credit note/);
    assert.equal(org.tenant.journals.length, 0);
    // The base currency posts.
    const posted = await org.target.post(key('usd-journal'), journal('USD'));
    assert.deepEqual(
      org.tenant.journals.map((j) => j.ManualJournalID),
      [posted.reference],
    );
  });
});

describe('Xero: lock dates', () => {
  it('a document dated on or before the lock date is PeriodLocked with the first open day, checked before sending', async () => {
    const org = organisation({ periodLockDate: '2026-11-15', endOfYearLockDate: '2026-11-30' });
    const error = await refusal(org.target.postDocument(key('locked'), invoice({ date: '2026-11-30' })));
    assert.ok(error instanceof PeriodLocked, String(error));
    assert.deepEqual([error.date, error.firstOpenDay], ['2026-11-30', '2026-12-01']);
    assert.equal(org.tenant.writes.length, 0, 'nothing sent');
    const journalError = await refusal(org.target.post(key('locked-j'), journal('USD', { posting_date: '2026-11-10' })));
    assert.ok(journalError instanceof PeriodLocked && journalError.firstOpenDay === '2026-12-01');
    await org.target.postDocument(key('open'), invoice({ date: '2026-12-01', due_date: '2026-12-31' }));
    assert.equal(org.tenant.invoices.length, 1);
  });

  it("Xero's own refusal of a locked date (a lock set after the organisation was read) is a PeriodLocked too", async () => {
    const org = organisation();
    await org.target.postDocument(key('before-lock'), invoice());
    org.tenant.periodLockDate = '2026-12-10';
    const error = await refusal(org.target.postDocument(key('after-lock'), invoice({ date: '2026-12-05' })));
    assert.ok(error instanceof PeriodLocked, String(error));
    assert.equal(error.firstOpenDay, '2026-12-11');
    assert.match(error.detail, /The document date cannot be before the period lock date, currently set at 10-Dec-2026/);
  });
});

describe('Xero: customer sync', () => {
  it('creates the contact once (ContactNumber = customer id), links it afterwards, updates it when its details change', async () => {
    const org = organisation();
    await org.target.postDocument(key('c1'), invoice());
    await org.target.postDocument(key('c2'), invoice());
    assert.equal(org.tenant.contacts.length, 1);
    const contact = org.tenant.contacts[0]!;
    assert.deepEqual([contact.ContactNumber, contact.Name, contact.DefaultCurrency], ['acme', 'Acme Corp', 'USD']);
    assert.equal(org.tenant.writes.filter((w) => w.path.endsWith('/Contacts')).length, 1, 'one create');
    // Another process (a new target) links the existing contact: found by ContactNumber, not created again.
    const other = xeroTestTarget(sim, { tenantId: org.id, name: `xero-${org.id}` });
    await other.postDocument(key('c3'), invoice());
    assert.equal(org.tenant.contacts.length, 1);
    assert.equal(org.tenant.writes.filter((w) => w.path.includes('/Contacts')).length, 1, 'nothing written for an unchanged contact');
    // The customer moved: the contact is updated (POST Contacts/{id}), still one contact.
    await other.postDocument(
      key('c4'),
      invoice({
        buyer: {
          name: 'Acme Corp',
          address: { lines: ['2 Acme Plaza'], city: 'Los Angeles', region: 'CA', postal_code: '90013', country: 'US' },
          tax_id: 'US-1',
        },
      }),
    );
    assert.equal(org.tenant.contacts.length, 1);
    assert.deepEqual([contact.Addresses?.[0]?.AddressLine1, contact.TaxNumber], ['2 Acme Plaza', 'US-1']);
    assert.deepEqual(
      org.tenant.invoices.map((i) => i.Contact.ContactID),
      Array(4).fill(contact.ContactID),
    );
    // Archived in Xero after it was synced: Xero refuses the next document, which is an exception naming the contact.
    contact.ContactStatus = 'ARCHIVED';
    const error = await refusal(
      other.postDocument(
        key('c5'),
        invoice({
          buyer: {
            name: 'Acme Corp',
            address: { lines: ['2 Acme Plaza'], city: 'Los Angeles', region: 'CA', postal_code: '90013', country: 'US' },
            tax_id: 'US-1',
          },
        }),
      ),
    );
    assert.ok(error instanceof MappingMissing && error.kind === 'customer' && error.field === 'Contact', String(error));
    assert.match(error.refusedBy ?? '', /has been archived/);
  });

  it("a name another contact holds is refused clearly (MappingMissing at Contact.Name with Xero's message); link mode needs a mapping", async () => {
    const org = organisation({ contacts: [{ Name: 'Acme Corp', ContactNumber: 'CRM-7' }] });
    const error = await refusal(org.target.postDocument(key('clash'), invoice()));
    assert.ok(error instanceof MappingMissing, String(error));
    assert.deepEqual([error.kind, error.source, error.field], ['customer', 'acme', 'Contact.Name']);
    assert.match(error.refusedBy ?? '', /The contact name Acme Corp is already assigned to another contact/);
    assert.equal(org.tenant.invoices.length, 0);
    // Mapping the customer to the existing contact resolves it.
    const mapped = xeroTestTarget(sim, {
      tenantId: org.id,
      name: `xero-${org.id}`,
      mappings: northwindMappings([{ kind: 'customer', source: 'acme', target: 'CRM-7' }]),
    });
    await mapped.postDocument(key('clash-fixed'), invoice());
    assert.equal(org.tenant.invoices[0]!.Contact.ContactNumber, 'CRM-7');
    assert.equal(org.tenant.contacts[0]!.Addresses, undefined, 'a mapped contact is linked, never rewritten');
    assert.equal(org.tenant.writes.filter((w) => w.path.includes('/Contacts')).length, 1, 'only the refused create');
    // `link`: no mapping, no contact created.
    const link = organisation({}, { settings: { customers: 'link' } });
    const missing = await refusal(link.target.postDocument(key('link'), invoice()));
    assert.ok(
      missing instanceof MappingMissing && missing.kind === 'customer' && missing.field === 'Contact' && missing.refusedBy === undefined,
      String(missing),
    );
    assert.equal(link.tenant.contacts.length, 0);
  });
});

describe('Xero: credit notes allocated to the invoice they correct', () => {
  it('allocates once, even when the post is retried or the credit note is found again', async () => {
    const org = organisation();
    const inv = invoice();
    const invRef = await org.target.postDocument(key(inv.source_document), inv);
    const note = creditNote(inv);
    const noteKey = key(note.source_document);
    const first = await org.target.postDocument(noteKey, note);
    // A retry of the same post (Idempotency-Key: the same answer), and the outbox's step 3 finding it: no second allocation.
    assert.deepEqual(await org.target.postDocument(noteKey, note), first);
    assert.deepEqual(await org.target.findDocument(noteKey, note), first);
    const stored = org.tenant.creditNotes[0]!;
    assert.equal(stored.Allocations?.length, 1);
    assert.deepEqual(
      [stored.Allocations![0]!.InvoiceID, stored.Allocations![0]!.Amount, stored.RemainingCredit, stored.Status],
      [invRef.reference, '21.45', '0', 'PAID'],
    );
    const target = org.tenant.invoices[0]!;
    assert.deepEqual([target.AmountDue, target.AmountCredited], ['139.43', '21.45']);
    assert.equal(org.tenant.writes.filter((w) => w.path.endsWith('/Allocations')).length, 1);
  });

  it('a credit note whose response was lost is allocated when the retry finds it', async () => {
    const org = organisation();
    const inv = invoice();
    await org.target.postDocument(key(inv.source_document), inv);
    const note = creditNote(inv);
    sim.faults.push('lost');
    await assert.rejects(org.target.postDocument(key(note.source_document), note));
    assert.equal(org.tenant.creditNotes[0]!.Allocations?.length ?? 0, 0, 'created, not yet allocated');
    await org.target.findDocument(key(note.source_document), note);
    assert.equal(org.tenant.creditNotes[0]!.Allocations?.length, 1);
    await org.target.findDocument(key(note.source_document), note);
    assert.equal(org.tenant.creditNotes[0]!.Allocations?.length, 1);
  });
});

describe('Xero: payments pushed', () => {
  it('applies the payment to its invoice from the mapped bank account; found again by its key; not polled back as a new payment', async () => {
    const org = organisation();
    const inv = invoice();
    const posted = await org.target.postDocument(key(inv.source_document), inv);
    const payment = {
      payment_id: 'pay_1',
      invoice_number: inv.number,
      invoice_id: inv.source_document,
      legal_entity: 'nw-us',
      customer: 'acme',
      customer_erp_id: 'D-20011',
      currency: 'USD',
      amount_minor: 16088n,
      received_on: '2026-12-02',
    };
    const payKey = key('payment:pay_1');
    assert.equal(await org.target.findPayment(payKey, payment), undefined);
    const pushed = await org.target.postPayment(payKey, payment);
    assert.deepEqual(await org.target.findPayment(payKey, payment), pushed);
    const paid = org.tenant.invoices[0]!;
    assert.deepEqual([paid.id, paid.Status, paid.AmountDue, paid.AmountPaid], [posted.reference, 'PAID', '0', '160.88']);
    assert.deepEqual(
      [org.tenant.payments[0]!.Reference, org.tenant.payments[0]!.AccountCode, org.tenant.payments[0]!.Amount],
      [payKey, '1000', '160.88'],
    );
    // A payment entered in Xero by hand is polled; Accrue's own is not.
    const other = invoice();
    await org.target.postDocument(key(other.source_document), other);
    const manual = sim.addPayment({
      tenant: org.id,
      invoiceNumber: other.number,
      amount: '10.00',
      date: '2026-12-03',
      updatedAt: new Date(),
    });
    const polled = [];
    for await (const page of org.target.paymentPages(null)) polled.push(...page);
    assert.deepEqual(
      polled.map((p) => p.id),
      [manual],
    );
  });

  it('an overpayment is refused by Xero as it would be (a permanent failure, not a mapping)', async () => {
    const org = organisation();
    const inv = invoice();
    await org.target.postDocument(key(inv.source_document), inv);
    const error = await refusal(
      org.target.postPayment(key('over'), {
        payment_id: 'pay_2',
        invoice_number: inv.number,
        invoice_id: 'x',
        legal_entity: 'nw-us',
        customer: 'acme',
        customer_erp_id: 'D-20011',
        currency: 'USD',
        amount_minor: 99999n,
        received_on: '2026-12-02',
      }),
    );
    assert.ok(error instanceof TargetError && error.details.permanent, String(error));
    assert.match(error.message, /Payment amount exceeds the amount outstanding/);
  });
});

describe('Xero: checkReference', () => {
  it('reports accounts, tax rates, items, currencies and contacts as active, inactive or missing', async () => {
    const org = organisation({
      accounts: [{ Code: '4000' }, { Code: '4999', Status: 'ARCHIVED' }],
      taxTypes: [{ TaxType: 'OUTPUT' }, { TaxType: 'OLDTAX', Status: 'DELETED' }],
      items: [{ Code: 'API' }, { Code: 'PURCHASE-ONLY', IsSold: false }],
      contacts: [
        { Name: 'Acme Corp', ContactNumber: 'acme' },
        { Name: 'Gone', ContactNumber: 'gone', ContactStatus: 'ARCHIVED' },
      ],
    });
    const t: XeroTarget = org.target;
    const states = async (kind: Parameters<XeroTarget['checkReference']>[0], targets: string[]) =>
      Promise.all(targets.map(async (x) => (await t.checkReference(kind, x)).state));
    assert.deepEqual(await states('account', ['4000', '4999', '7777']), ['active', 'inactive', 'missing']);
    assert.deepEqual(await states('tax_type', ['OUTPUT', 'OLDTAX', 'NOPE']), ['active', 'inactive', 'missing']);
    assert.deepEqual(await states('item', ['API', 'PURCHASE-ONLY', 'NOPE']), ['active', 'inactive', 'missing']);
    assert.deepEqual(await states('currency', ['USD', 'EUR', 'GBP']), ['active', 'active', 'missing']);
    assert.deepEqual(await states('customer', ['acme', 'gone', 'nobody', org.tenant.contacts[0]!.ContactID]), [
      'active',
      'inactive',
      'missing',
      'active',
    ]);
    const subsidiary = await t.checkReference('subsidiary', 'nw-us');
    assert.equal(subsidiary.state, 'missing');
    assert.match((subsidiary as { detail: string }).detail, /does not apply to Xero/);
  });
});

describe('Xero: authentication and limits', () => {
  it('an access token that expires mid-run is refreshed once and the call repeated', async () => {
    let now = Date.parse('2026-12-04T10:00:00Z');
    const clocked = new XeroSimulator({ now: () => now, perMinute: 10_000 });
    clocked.addTenant('t', northwindTenant());
    await clocked.start();
    try {
      const authorizer = simAuthorizer(clocked, 't');
      const target = xeroTestTarget(clocked, { tenantId: 't', authorizer });
      await target.postDocument(key('a1'), invoice());
      now += 31 * 60_000; // past the 30 minutes of Xero's access tokens
      await target.postDocument(key('a2'), invoice());
      assert.equal(authorizer.refreshes, 1);
      assert.equal(clocked.refused[401], 1);
      assert.equal(clocked.main.invoices.length, 2);
      const anonymous = await fetch(`${clocked.url}/api.xro/2.0/Invoices`, { headers: { 'xero-tenant-id': 't' } });
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
    } finally {
      await clocked.stop();
    }
  });

  it('the daily limit answers 429 with X-Rate-Limit-Problem: day and Retry-After in seconds until the window frees', async () => {
    let now = Date.parse('2026-12-04T10:00:00Z');
    const limited = new XeroSimulator({ now: () => now, perDay: 3, perMinute: 10_000 });
    limited.addTenant('t', northwindTenant());
    limited.addTenant('u', northwindTenant());
    await limited.start();
    try {
      const target = xeroTestTarget(limited, { tenantId: 't' });
      for (let i = 0; i < 3; i += 1) await target.checkReference('currency', 'USD');
      now += 3_600_000;
      const error = await refusal(target.checkReference('currency', 'USD'));
      assert.ok(error instanceof TargetError, String(error));
      assert.deepEqual([error.details.status, error.details.code, error.details.retryAfterMs], [429, 'day', 23 * 3_600_000]);
      // Limits are per organisation: another tenant still answers.
      assert.equal((await xeroTestTarget(limited, { tenantId: 'u' }).checkReference('currency', 'USD')).state, 'active');
    } finally {
      await limited.stop();
    }
  });
});
