// Invoices and credit notes reach the ERPs as the ERPs' own documents (NetSuite invoice / creditMemo, Xero ACCREC /
// ACCRECCREDIT), exactly once through the faults the outbox tests inject; their journals are not sent as well.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import { NetSuiteSimulator } from '../support/netsuite-sim.js';
import { northwindXeroSim, xeroTestTarget } from '../support/xero-target.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox, listDeadLetters } from '../../src/post/outbox.js';
import { netsuiteExternalId } from '../../src/connectors/netsuite/client.js';
import { netsuiteTarget } from '../support/netsuite-target.js';
import { Decimal } from '../../src/domain/money.js';

let store: Store;

/** Puts posted outbox rows back in line for another look. A posted row is final (migration 026): this is the
 * superuser's way round, for this session only. */
async function repost(sql: string): Promise<void> {
  const client = await store.pool.connect();
  try {
    await client.query('SET session_replication_role = replica');
    await client.query(sql);
  } finally {
    await client.query('SET session_replication_role = DEFAULT');
    client.release();
  }
}

const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//erp-documents-test',
  type,
  subject,
  time,
  data,
});

// November as in the billing test: acme draws prepaid credits; umbrella has a discount. Late storage usage for
// acme, billed in December's run, gives a credit note (with credits restored) and a replacement invoice.
before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  const catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(
    store.pool,
    catalog,
    [
      ev('u1', 'umbrella', 'com.northwind.api.request', '2026-11-02T00:00:00Z', { region: 'eu' }),
      ev('u2', 'umbrella', 'com.northwind.api.request', '2026-11-20T00:00:00Z', { region: 'eu' }),
      ev('u3', 'umbrella', 'com.northwind.compute.sample', '2026-11-05T00:00:00Z', { vcpu: '10' }),
      ev('a1', 'acme-prod', 'com.northwind.storage.usage', '2026-11-03T00:00:00Z', { gb_hours: '1000000' }),
      ev('a2', 'acme-staging', 'com.northwind.analytics.session', '2026-11-17T00:00:00Z', { user_id: 'x' }),
    ],
    { channel: 'file', now: new Date('2026-12-01T00:00:00Z') },
  );
  await closePeriod(store.pool, catalog, { period: '2026-11', erpTargets: ['netsuite', 'xero'] });
  await ingestBatch(
    store.pool,
    catalog,
    [ev('late-2', 'acme-prod', 'com.northwind.storage.usage', '2026-11-20T00:00:00Z', { gb_hours: '1000' })],
    { channel: 'http', now: new Date('2026-12-02T00:00:00Z') },
  );
  const december = await closePeriod(store.pool, catalog, {
    period: '2026-12',
    now: new Date('2027-01-02T00:00:00Z') /* December has ended */,
    erpTargets: ['netsuite', 'xero'],
  });
  assert.equal(december.corrections.find((c) => c.customer === 'acme')?.credit_note?.number, 'NWUS-CN-000001');
});
after(() => store.close());

async function rows(target: string) {
  return (
    await store.pool.query<{ key: string; document_kind: string; journal_kind: string; number: string | null; total_minor: string }>(
      `SELECT o.key, o.document_kind, j.kind AS journal_kind, i.number, i.total_minor::text
         FROM outbox o JOIN journals j ON j.id = o.document_id LEFT JOIN invoices i ON i.id = j.source_document
        WHERE o.target = $1 ORDER BY o.id`,
      [target],
    )
  ).rows;
}

describe('outbox rows say which form a document travels in', () => {
  it('invoice and credit-note journals as documents, drawdowns and the sale of prepaid credits as journals', async () => {
    const netsuite = await rows('netsuite');
    for (const row of netsuite)
      assert.equal(
        row.document_kind,
        row.journal_kind === 'invoice' || row.journal_kind === 'credit_note' ? row.journal_kind : 'journal',
        row.key,
      );
    const kinds = netsuite.map((r) => r.document_kind);
    assert.equal(kinds.filter((k) => k === 'credit_note').length, 1);
    assert.equal(kinds.filter((k) => k === 'invoice').length, 9, 'November 4, December 4, the replacement 1');
    assert.ok(kinds.includes('journal'), "acme's credit drawdown travels as a journal");
    assert.deepEqual(
      await rows('xero').then((x) => x.map((r) => [r.key.replace(':xero:', ':'), r.document_kind])),
      netsuite.map((r) => [r.key.replace(':netsuite:', ':'), r.document_kind]),
    );
  });
});

describe('NetSuite: invoice and creditMemo records', () => {
  it('posts each document once through 429 bursts, 5xx, timeouts and lost responses, with two workers at once', async () => {
    const sim = new NetSuiteSimulator({ concurrencyLimit: 3, timeoutDelayMs: 600 });
    await sim.start();
    try {
      sim.faults.push('429', '429', '500', 'timeout', 'lost', 'lost');
      const target = () =>
        netsuiteTarget(sim.url, {
          subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
          timeoutMs: 300,
          limits: { concurrency: 3, requestsPerMinute: 60_000 },
        });
      const [a, b] = await Promise.all(
        [0, 1].map(() => drainOutbox(store.pool, target(), { untilEmptyMs: 20_000, backoffBaseMs: 10, attemptsMax: 50 })),
      );
      assert.ok(
        a!.retried + b!.retried >= 4 && a!.found_existing + b!.found_existing >= 2,
        'the faults were met, lost answers found by lookup',
      );
      const outbox = await rows('netsuite');
      const expected = (kind: string) => outbox.filter((r) => r.document_kind === kind);
      assert.equal(sim.sales('invoice').length, expected('invoice').length);
      assert.equal(sim.sales('creditMemo').length, expected('credit_note').length);
      const journalEntries = [...sim.records.entries()].filter(([, r]) => r.type === undefined).map(([eid]) => eid);
      assert.deepEqual(
        journalEntries.sort(),
        expected('journal')
          .map((r) => netsuiteExternalId(r.key))
          .sort(),
        'only drawdowns and the sale of prepaid credits as journal entries: no invoice booked twice',
      );
      assert.equal(sim.creates, outbox.length);
      for (const record of sim.records.values()) assert.equal(record.writes, 1, 'never written twice');
      for (const row of outbox) {
        const record = sim.records.get(netsuiteExternalId(row.key))!;
        if (row.document_kind !== 'journal')
          assert.equal(
            new Decimal((record.body as { total: string }).total).times(100).toFixed(0),
            row.total_minor,
            `${row.number}: NetSuite's total is Accrue's`,
          );
      }
      const states = await store.pool.query("SELECT status, count(*)::int AS n FROM outbox WHERE target = 'netsuite' GROUP BY status");
      assert.deepEqual(states.rows, [{ status: 'posted', n: outbox.length }]);
    } finally {
      await sim.stop();
    }
  });

  it('writes the record NetSuite users expect: customer, subsidiary, items by product, SuiteTax details', async () => {
    // Re-drained into a fresh simulator to read the request bodies (the outbox has posted them; reset for this look).
    await repost(
      "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now(), target_reference = NULL WHERE target = 'netsuite'",
    );
    const sim = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600 });
    await sim.start();
    try {
      await drainOutbox(
        store.pool,
        netsuiteTarget(sim.url, {
          subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
          mappings: { tax_code: { DE: 'UST-19' } },
          limits: { concurrency: 2, requestsPerMinute: 60_000 },
        }),
        { untilEmptyMs: 10_000, backoffBaseMs: 10 },
      );
      const umbrella = sim.sales('invoice').find((r) => r.body.tranId === 'NWDE-000001')!.body;
      // platform 249.00, api 1 package 0.30 less 10% (0.03), compute 40.00 + 2 × 6.50 = 53.00: taxable 302.27,
      // × 0.19 = 57.4313 → 57.43, spread by largest remainder: 0.27 → 0.05, 53.00 → 10.07, 249.00 → 47.31.
      assert.deepEqual(
        {
          tranId: umbrella.tranId,
          tranDate: umbrella.tranDate,
          entity: umbrella.entity,
          subsidiary: umbrella.subsidiary,
          currency: umbrella.currency,
          total: umbrella.total,
        },
        {
          tranId: 'NWDE-000001',
          tranDate: '2026-11-30',
          entity: { externalId: 'umbrella' },
          subsidiary: { id: '2' },
          currency: { externalId: 'EUR' },
          total: '359.7',
        },
      );
      // Due on the invoice's own due date (issued 2026-12-01 + nw-de's 14 days), billed to the address it was issued to.
      assert.deepEqual(
        { dueDate: umbrella.dueDate, billingAddress: umbrella.billingAddress },
        {
          dueDate: '2026-12-15',
          billingAddress: { addressee: 'Umbrella GmbH', addr1: 'Umbrellastraße 1', city: 'München', zip: '80331', country: { id: 'DE' } },
        },
      );
      assert.deepEqual(
        umbrella.item!.items!.map((l) => [l.item?.externalId, l.amount, l.taxDetailsReference]),
        [
          ['api', '0.27', 'accrue-1'],
          ['compute', '53.00', 'accrue-2'],
          ['platform', '249.00', 'accrue-3'],
        ],
      );
      assert.equal(umbrella.taxDetailsOverride, true);
      assert.deepEqual(
        umbrella.taxDetails!.items!.map((t) => [t.taxDetailsReference, t.taxCode?.id, t.taxBasis, t.taxRate, t.taxAmount]),
        [
          ['accrue-1', 'UST-19', '0.27', '19', '0.05'],
          ['accrue-2', 'UST-19', '53.00', '19', '10.07'],
          ['accrue-3', 'UST-19', '249.00', '19', '47.31'],
        ],
      );
      const credit = sim.sales('creditMemo')[0]!.body;
      assert.equal(credit.tranId, 'NWUS-CN-000001');
      assert.match(credit.memo!, /corrects NWUS-000001/);
      assert.equal(credit.dueDate, undefined, 'a credit memo has no due date');
      const restored = credit.item!.items!.find((l) => l.item?.externalId === 'accrue-credits-restored');
      assert.ok(
        restored && restored.amount!.startsWith('-'),
        'the prepaid credits the corrected invoice drew are restored on their own line',
      );
    } finally {
      await sim.stop();
    }
  });
});

describe('Xero: ACCREC invoices and ACCRECCREDIT credit notes', () => {
  it('posts each document once with Idempotency-Key through rate limits, 5xx, timeouts and lost responses', async () => {
    const xero = northwindXeroSim({ timeoutDelayMs: 600, perMinute: 1000, concurrent: 5 });
    await xero.start();
    try {
      xero.faults.push('429', '500', 'timeout', 'lost', 'lost');
      const target = xeroTestTarget(xero, { timeoutMs: 300 });
      await drainOutbox(store.pool, target, { untilEmptyMs: 20_000, backoffBaseMs: 10, attemptsMax: 50 });
      const outbox = await rows('xero');
      const byKey = new Map(outbox.map((r) => [r.key, r]));
      assert.equal(xero.invoices.length, outbox.filter((r) => r.document_kind === 'invoice').length, 'each invoice created once');
      assert.equal(xero.creditNotes.length, 1);
      assert.equal(
        xero.journals.length,
        outbox.filter((r) => r.document_kind === 'journal').length,
        'manual journals for drawdowns and the sale of prepaid credits only',
      );
      for (const j of xero.journals) assert.match(j.Narration, /\[out:v1:xero:jrn:v1:credit_(drawdown|grant):/);
      for (const d of [...xero.invoices, ...xero.creditNotes]) {
        const row = byKey.get(d.Reference)!;
        assert.equal(d.Number, row.number, 'Accrue numbers the document in Xero');
        assert.equal(new Decimal(d.Total).times(100).toFixed(0), row.total_minor, `${d.Number}: Xero's total is Accrue's`);
      }
      const umbrella = xero.invoices.find((d) => d.Number === 'NWDE-000001')!;
      const umbrellaContact = xero.main.contacts.find((c) => c.ContactNumber === 'umbrella')!;
      assert.deepEqual(
        [umbrellaContact.Addresses, umbrellaContact.TaxNumber, umbrellaContact.DefaultCurrency],
        [
          [{ AddressType: 'POBOX', AddressLine1: 'Umbrellastraße 1', City: 'München', PostalCode: '80331', Country: 'DE' }],
          'DE987654321',
          'EUR',
        ],
      );
      assert.deepEqual(
        {
          Type: umbrella.Type,
          Contact: umbrella.Contact,
          Date: umbrella.Date,
          DueDate: umbrella.DueDate,
          CurrencyCode: umbrella.CurrencyCode,
          Status: umbrella.Status,
        },
        // Dated on the accrual date; due on the invoice's own due date (issued 2026-12-01, nw-de's terms 14 days), to the
        // billing address and VAT number the invoice was issued to.
        {
          Type: 'ACCREC',
          // The contact Accrue synced (ContactNumber = the customer id), which carries the billing address and VAT number.
          Contact: { ContactID: umbrellaContact.ContactID, ContactNumber: 'umbrella', Name: 'Umbrella GmbH' },
          Date: '2026-11-30',
          DueDate: '2026-12-15',
          CurrencyCode: 'EUR',
          Status: 'AUTHORISED',
        },
      );
      assert.deepEqual(
        umbrella.LineItems.map((l) => [l.AccountCode, l.LineAmount, l.TaxType, l.TaxAmount]),
        [
          ['8400', '0.27', 'OUTPUT', '0.05'],
          ['8430', '53.00', 'OUTPUT', '10.07'],
          ['8490', '249.00', 'OUTPUT', '47.31'],
        ],
      );
      const credit = xero.creditNotes[0]!;
      assert.equal(credit.Type, 'ACCRECCREDIT');
      assert.ok(
        credit.LineItems.some((l) => l.AccountCode === '2400' && l.LineAmount!.startsWith('-')),
        'credits restored to deferred revenue (2400)',
      );
      const states = await store.pool.query("SELECT status, count(*)::int AS n FROM outbox WHERE target = 'xero' GROUP BY status");
      assert.deepEqual(states.rows, [{ status: 'posted', n: outbox.length }]);
    } finally {
      await xero.stop();
    }
  });

  it('refuses to take over another document with the same number: the row goes to the dead-letter queue', async () => {
    const xero = northwindXeroSim({ timeoutDelayMs: 600, perMinute: 1000, concurrent: 5 });
    await xero.start();
    try {
      xero.invoices.push({
        id: 'foreign-1',
        Type: 'ACCREC',
        Number: 'NWUS-000002',
        Reference: 'typed by hand',
        Contact: { ContactNumber: 'C-10077' },
        CurrencyCode: 'USD',
        Date: '2026-11-30',
        Status: 'AUTHORISED',
        LineItems: [],
        Total: '1',
        TotalTax: '0',
      });
      await repost("UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now() WHERE target = 'xero'");
      await drainOutbox(store.pool, xeroTestTarget(xero), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
      const dead = await listDeadLetters(store.pool, 'xero');
      assert.equal(dead.length, 1);
      assert.equal(dead[0].last_error.code, 'exists_with_different_reference');
      assert.match(dead[0].last_error.message, /NWUS-000002 exists with another reference/);
      assert.equal(xero.invoices.filter((d) => d.Number === 'NWUS-000002').length, 1, 'nothing written over it or beside it');
    } finally {
      await xero.stop();
    }
  });
});
