// A payment received by webhook is pushed to Xero and applied to its invoice (the invoice becomes PAID there), and
// payment polling does not bring it back as a second payment; a payment entered in Xero by hand still comes back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import type { XeroSimulator } from '../support/xero-sim.js';
import { northwindXeroSim, xeroTestTarget } from '../support/xero-target.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox } from '../../src/post/outbox.js';
import { pollPayments } from '../../src/settle/poll.js';
import { applyPayment, validatePayment } from '../../src/settle/payments.js';
import { formatMajor } from '../../src/domain/money.js';

let store: Store;
let xero: XeroSimulator;
const ev = (id: string, subject: string, type: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//xero-payments-test',
  type,
  subject,
  time: '2026-10-10T00:00:00Z',
  data,
});
const target = () => xeroTestTarget(xero);

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  const catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(store.pool, catalog, [ev('p1', 'acme-prod', 'com.northwind.storage.usage', { gb_hours: '100000' })], {
    channel: 'file',
    now: new Date('2026-11-01T00:00:00Z'),
  });
  await closePeriod(store.pool, catalog, { period: '2026-10', erpTargets: ['xero'] });
  xero = northwindXeroSim({ perMinute: 10_000 });
  await xero.start();
  await drainOutbox(store.pool, target(), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
  assert.equal(xero.invoices.length, 3);
});
after(async () => {
  await xero.stop();
  await store.close();
});

const invoiceRow = async (number: string) =>
  (
    await store.pool.query<{
      id: string;
      total_minor: string;
      amount_paid_minor: string;
      payment_status: string;
      currency: string;
      legal_entity: string;
      customer: string;
    }>(
      'SELECT id, total_minor::text, amount_paid_minor::text, payment_status, currency, legal_entity, customer FROM invoices WHERE number = $1',
      [number],
    )
  ).rows[0]!;

describe('Xero: a webhook payment pushed and applied', () => {
  it('the invoice becomes PAID in Xero; polling applies nothing twice; a payment entered in Xero is still polled', async () => {
    const catalog = (await currentCatalog(store.pool))!;
    const acme = await invoiceRow('NWUS-000001');
    const total = BigInt(acme.total_minor);
    // The webhook path: applied in Accrue first.
    const input = validatePayment({
      id: 'pay_hook_1',
      invoice: 'NWUS-000001',
      amount: formatMajor(total, 'USD'),
      currency: 'USD',
      received_on: '2026-11-20',
    });
    assert.ok(input.ok);
    assert.equal((await applyPayment(store.pool, catalog, input.value, 'webhook')).status, 'applied');
    // Pushed to Xero (what the outbox does with a payment row): found first, then posted once.
    const payment = {
      payment_id: 'pay_hook_1',
      invoice_number: 'NWUS-000001',
      invoice_id: acme.id,
      legal_entity: acme.legal_entity,
      customer: acme.customer,
      customer_erp_id: catalog.index.customers.get(acme.customer)!.erp_customer_id,
      currency: 'USD',
      amount_minor: total,
      received_on: '2026-11-20',
    };
    const key = 'out:v1:xero:payment:pay_hook_1';
    const t = target();
    assert.equal(await t.findPayment(key, payment), undefined);
    const pushed = await t.postPayment(key, payment);
    assert.deepEqual(await t.findPayment(key, payment), pushed);
    const inXero = xero.invoices.find((i) => i.Number === 'NWUS-000001')!;
    assert.deepEqual([inXero.Status, inXero.AmountDue], ['PAID', '0']);
    // Polling: Accrue's own payment is not a new one, so nothing is applied twice and no overpayment exception.
    const first = await pollPayments(store.pool, t);
    assert.deepEqual([first.seen, first.applied, first.exceptions], [0, 0, 0]);
    const after1 = await invoiceRow('NWUS-000001');
    assert.deepEqual([after1.amount_paid_minor, after1.payment_status], [String(total), 'paid']);
    // A receipt entered in Xero by hand on another invoice comes back and is applied once.
    const globex = await invoiceRow('NWUS-000002');
    xero.addPayment({
      invoiceNumber: 'NWUS-000002',
      amount: formatMajor(BigInt(globex.total_minor), 'USD'),
      date: '2026-11-21',
      updatedAt: new Date('2026-11-21T10:00:00Z'),
    });
    const second = await pollPayments(store.pool, t);
    assert.deepEqual([second.seen, second.applied], [1, 1]);
    assert.equal((await invoiceRow('NWUS-000002')).payment_status, 'paid');
    assert.equal((await store.pool.query("SELECT count(*)::int AS n FROM exceptions WHERE kind LIKE 'payment_%'")).rows[0].n, 0);
  });
});
