// Payments recorded in the ERP come back by polling: matched to the invoice Accrue posted, applied once however
// often the poll runs, partially paid then paid; what cannot be applied becomes an exception.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import { NetSuiteSimulator, type SalesRecord } from '../support/netsuite-sim.js';
import type { XeroSimulator } from '../support/xero-sim.js';
import { northwindXeroSim, xeroTestTarget } from '../support/xero-target.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox } from '../../src/post/outbox.js';
import { netsuiteTarget } from '../support/netsuite-target.js';
import { paymentSyncState, pollPayments } from '../../src/settle/poll.js';
import { formatMajor } from '../../src/domain/money.js';

let store: Store;
let netsuite: NetSuiteSimulator;
let xero: XeroSimulator;
const ev = (id: string, subject: string, type: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//settle-poll-test',
  type,
  subject,
  time: '2026-10-10T00:00:00Z',
  data,
});
const nsTarget = () =>
  netsuiteTarget(netsuite.url, {
    subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
    paymentsPageSize: 2,
    limits: { requestsPerMinute: 60_000 },
  });
const xeroTarget = () => xeroTestTarget(xero, { paymentsPageSize: 2 });

async function invoice(number: string) {
  const row = (
    await store.pool.query<{ total_minor: string; amount_paid_minor: string; payment_status: string; currency: string }>(
      'SELECT total_minor::text, amount_paid_minor::text, payment_status, currency FROM invoices WHERE number = $1',
      [number],
    )
  ).rows[0]!;
  return { ...row, total: BigInt(row.total_minor), paid: BigInt(row.amount_paid_minor) };
}
const major = (minor: bigint, currency = 'USD') => formatMajor(minor, currency);
const exceptions = async (kind: string) =>
  (await store.pool.query<{ subject: string }>('SELECT subject FROM exceptions WHERE kind = $1 ORDER BY subject', [kind])).rows.map(
    (r) => r.subject,
  );

// October: acme (NWUS-000001), globex (NWUS-000002), umbrella (NWDE-000001), posted to both ERPs as invoices.
before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  const catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(
    store.pool,
    catalog,
    [ev('p1', 'acme-prod', 'com.northwind.storage.usage', { gb_hours: '100000' }), ev('p2', 'umbrella', 'com.northwind.api.request', {})],
    { channel: 'file', now: new Date('2026-11-01T00:00:00Z') },
  );
  await closePeriod(store.pool, catalog, { period: '2026-10', erpTargets: ['netsuite', 'xero'] });
  netsuite = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600 });
  xero = northwindXeroSim({ timeoutDelayMs: 600, perMinute: 10_000, concurrent: 5 });
  await Promise.all([netsuite.start(), xero.start()]);
  await drainOutbox(store.pool, nsTarget(), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
  await drainOutbox(store.pool, xeroTarget(), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
  assert.equal(netsuite.sales('invoice').length, 3);
  assert.equal(xero.invoices.length, 3);
});
after(async () => {
  await Promise.all([netsuite.stop(), xero.stop()]);
  await store.close();
});

const eidOf = (number: string) => netsuite.sales('invoice').find((r) => r.body.tranId === number)!.eid;

describe('polling NetSuite customer payments (SuiteQL)', () => {
  it('applies each payment once, one payment paying two invoices, partially paid then paid', async () => {
    const acme = await invoice('NWUS-000001');
    const globex = await invoice('NWUS-000002');
    const umbrella = await invoice('NWDE-000001');
    // NetSuite numbered globex's invoice itself (auto-numbering without override): matched by its id, not its number.
    const globexEid = eidOf('NWUS-000002');
    (netsuite.records.get(globexEid)!.body as SalesRecord).tranId = 'INV-NS-0077';
    // One payment for all of globex and 10.00 of acme; another for 100.00 of umbrella.
    netsuite.addPayment({
      tranDate: '2026-11-05',
      modifiedAt: '2026-11-05 09:00:00',
      applications: [
        { invoiceExternalId: globexEid, amount: major(globex.total) },
        { invoiceExternalId: eidOf('NWUS-000001'), amount: '10.00' },
      ],
    });
    netsuite.addPayment({
      tranDate: '2026-11-06',
      modifiedAt: '2026-11-06 09:00:00',
      currency: 'EUR',
      applications: [{ invoiceExternalId: eidOf('NWDE-000001'), amount: '100.00' }],
    });
    const first = await pollPayments(store.pool, nsTarget());
    assert.deepEqual(
      [first.seen, first.applied, first.duplicates, first.exceptions, first.pages],
      [3, 3, 0, 0, 2],
      'two pages of two rows',
    );
    assert.equal(first.cursor_after, '2026-11-06 09:00:00');
    assert.equal((await invoice('NWUS-000002')).payment_status, 'paid');
    assert.deepEqual([(await invoice('NWUS-000001')).payment_status, (await invoice('NWUS-000001')).paid], ['partially_paid', 1000n]);
    assert.deepEqual([(await invoice('NWDE-000001')).payment_status, (await invoice('NWDE-000001')).paid], ['partially_paid', 10000n]);

    // A second poll reads the newest second again (the cursor is inclusive) and applies nothing twice.
    const again = await pollPayments(store.pool, nsTarget());
    assert.deepEqual([again.applied, again.duplicates], [0, 1]);
    assert.equal((await invoice('NWDE-000001')).paid, 10000n);

    // The rest of umbrella's invoice: paid.
    netsuite.addPayment({
      tranDate: '2026-11-09',
      modifiedAt: '2026-11-09 12:30:00',
      currency: 'EUR',
      applications: [{ invoiceExternalId: eidOf('NWDE-000001'), amount: major(umbrella.total - 10000n, 'EUR') }],
    });
    const rest = await pollPayments(store.pool, nsTarget());
    assert.equal(rest.applied, 1);
    assert.deepEqual([(await invoice('NWDE-000001')).payment_status, (await invoice('NWDE-000001')).paid], ['paid', umbrella.total]);
    assert.equal((await invoice('NWUS-000001')).paid, 1000n, 'acme untouched');
    assert.ok(acme.total > 1000n);

    const journals = await store.pool.query(
      "SELECT count(*)::int AS n FROM journals WHERE kind = 'payment' AND id LIKE 'jrn:v1:payment:netsuite:%'",
    );
    assert.equal(journals.rows[0].n, 4, 'a payment journal per application, in the built-in ledger');
    const outbox = await store.pool.query("SELECT count(*)::int AS n FROM outbox WHERE document_id LIKE 'jrn:v1:payment:%'");
    assert.equal(outbox.rows[0].n, 0, 'payment journals are not posted back to the ERP they came from');
  });

  it('turns an overpayment and a payment of an invoice Accrue never posted into exceptions', async () => {
    const acme = await invoice('NWUS-000001');
    const over = netsuite.addPayment({
      tranDate: '2026-11-10',
      modifiedAt: '2026-11-10 08:00:00',
      applications: [{ invoiceExternalId: eidOf('NWUS-000001'), amount: major(acme.total - acme.paid + 1n) }],
    });
    // An invoice typed into NetSuite by hand, and paid there.
    netsuite.records.set('hand-1', {
      id: '5555',
      type: 'invoice',
      body: { tranId: 'INV-HAND-1', currency: { refName: 'USD' } } as SalesRecord,
      writes: 1,
    });
    const foreign = netsuite.addPayment({
      tranDate: '2026-11-10',
      modifiedAt: '2026-11-10 08:00:01',
      applications: [{ invoiceExternalId: 'hand-1', amount: '5.00' }],
    });
    const outcome = await pollPayments(store.pool, nsTarget());
    assert.deepEqual([outcome.applied, outcome.exceptions], [0, 2]);
    assert.deepEqual(await exceptions('payment_overpayment'), [`netsuite:${over}/${netsuite.records.get(eidOf('NWUS-000001'))!.id}`]);
    assert.deepEqual(await exceptions('payment_unmatched'), [`netsuite:${foreign}/5555`]);
    assert.equal((await invoice('NWUS-000001')).paid, acme.paid, 'nothing applied from the overpayment');
    const again = await pollPayments(store.pool, nsTarget());
    assert.equal(again.exceptions + again.applied, 0, 'an exception is raised once');
  });

  it('keeps the cursor, the last poll time and the ERP time of every payment, for the sync delay', async () => {
    const state = (await paymentSyncState(store.pool)).find((s) => s.target === 'netsuite')!;
    assert.equal(state.cursor, '2026-11-10 08:00:01');
    assert.equal(state.newest_erp_modified_at, '2026-11-10 08:00:01');
    assert.ok(state.last_polled_at && Date.parse(state.last_polled_at) <= Date.now());
    const seen = await store.pool.query(
      "SELECT outcome, count(*)::int AS n FROM erp_payment_sync WHERE target = 'netsuite' GROUP BY outcome ORDER BY outcome",
    );
    assert.deepEqual(seen.rows, [
      { outcome: 'applied', n: 4 },
      { outcome: 'exception', n: 2 },
    ]);
  });
});

describe('polling Xero payments (If-Modified-Since, paged)', () => {
  it('applies each payment once across pages and repeat polls; partially paid then paid', async () => {
    const globex = await invoice('NWUS-000002');
    const acme = await invoice('NWUS-000001');
    xero.addPayment({ invoiceNumber: 'NWUS-000001', amount: '0.10', date: '2026-11-12', updatedAt: new Date('2026-11-12T10:00:00.250Z') });
    xero.addPayment({ invoiceNumber: 'NWUS-000001', amount: '0.20', date: '2026-11-12', updatedAt: new Date('2026-11-12T10:00:01Z') });
    // globex is already paid (through NetSuite above): Xero's receipt for it overpays.
    xero.addPayment({
      invoiceNumber: 'NWUS-000002',
      amount: major(globex.total),
      date: '2026-11-13',
      updatedAt: new Date('2026-11-13T10:00:00Z'),
    });
    const first = await pollPayments(store.pool, xeroTarget());
    assert.deepEqual([first.seen, first.applied, first.exceptions, first.pages], [3, 2, 1, 2]);
    assert.equal(first.cursor_after, '2026-11-13T10:00:00.000Z');
    assert.equal((await invoice('NWUS-000001')).paid, acme.paid + 30n);
    const again = await pollPayments(store.pool, xeroTarget());
    assert.equal(again.applied, 0);
    assert.equal((await invoice('NWUS-000001')).paid, acme.paid + 30n, 'applied once');
  });

  it('raises an exception when an applied payment is deleted in Xero, and ignores receipts of other kinds', async () => {
    const paid = (await invoice('NWUS-000001')).paid;
    const refund = xero.addPayment({
      invoiceNumber: 'NWUS-000001',
      amount: '1.00',
      date: '2026-11-14',
      updatedAt: new Date('2026-11-14T09:00:00Z'),
      type: 'ARCREDITPAYMENT',
    });
    xero.deletePayment(xero.payments[0]!.PaymentID, new Date('2026-11-14T10:00:00Z'));
    const outcome = await pollPayments(store.pool, xeroTarget());
    assert.deepEqual([outcome.applied, outcome.exceptions], [0, 1]);
    assert.deepEqual(await exceptions('payment_deleted_at_source'), [`xero:${xero.payments[0]!.PaymentID}`]);
    assert.equal((await invoice('NWUS-000001')).paid, paid, 'Accrue does not un-apply on its own');
    assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM payments WHERE id = $1', [`xero:${refund}`])).rows[0].n, 0);
  });

  it('pays an invoice in full through Xero', async () => {
    const umbrella = await invoice('NWDE-000001');
    assert.equal(umbrella.payment_status, 'paid', 'paid through NetSuite already');
    const acme = await invoice('NWUS-000001');
    xero.addPayment({
      invoiceNumber: 'NWUS-000001',
      amount: major(acme.total - acme.paid),
      date: '2026-11-20',
      updatedAt: new Date('2026-11-20T10:00:00Z'),
    });
    const outcome = await pollPayments(store.pool, xeroTarget());
    assert.equal(outcome.applied, 1);
    assert.deepEqual([(await invoice('NWUS-000001')).payment_status, (await invoice('NWUS-000001')).paid], ['paid', acme.total]);
  });
});
