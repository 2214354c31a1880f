// Real invoices and credit notes drained through the outbox into the NetSuite simulator: customers created once
// before their first document, the credit memo applied to the invoice it corrects, and a payment pushed to NetSuite
// applied to its invoice and not polled back as a second payment.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import { NetSuiteSimulator } from '../support/netsuite-sim.js';
import { netsuiteTarget } from '../support/netsuite-target.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox, listDeadLetters } from '../../src/post/outbox.js';
import { pollPayments } from '../../src/settle/poll.js';

let store: Store;
let sim: NetSuiteSimulator;
const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//netsuite-documents-test',
  type,
  subject,
  time,
  data,
});
const target = () =>
  netsuiteTarget(sim.url, {
    name: 'netsuite',
    subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
    unmapped: ['customer'],
    cashAccount: 'cash',
    limits: { concurrency: 2, requestsPerMinute: 60_000 },
  });

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  const catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(
    store.pool,
    catalog,
    [
      ev('u1', 'umbrella', 'com.northwind.api.request', '2026-11-02T00:00:00Z', { region: 'eu' }),
      ev('u3', 'umbrella', 'com.northwind.compute.sample', '2026-11-05T00:00:00Z', { vcpu: '10' }),
      ev('a1', 'acme-prod', 'com.northwind.storage.usage', '2026-11-03T00:00:00Z', { gb_hours: '1000000' }),
    ],
    { channel: 'file', now: new Date('2026-12-01T00:00:00Z') },
  );
  await closePeriod(store.pool, catalog, { period: '2026-11', erpTargets: ['netsuite'] });
  await ingestBatch(
    store.pool,
    catalog,
    [ev('late-2', 'acme-prod', 'com.northwind.storage.usage', '2026-11-20T00:00:00Z', { gb_hours: '1000' })],
    { channel: 'http', now: new Date('2026-12-02T00:00:00Z') },
  );
  await closePeriod(store.pool, catalog, { period: '2026-12', now: new Date('2027-01-02T00:00:00Z'), erpTargets: ['netsuite'] });
  sim = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600 });
  await sim.start();
  await drainOutbox(store.pool, target(), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
});
after(async () => {
  await sim.stop();
  await store.close();
});

describe('NetSuite documents through the outbox', () => {
  it('posts everything once, with each customer created once in its subsidiary before its documents', async () => {
    assert.deepEqual(await listDeadLetters(store.pool), []);
    const customers = (
      await store.pool.query<{ n: number }>('SELECT count(DISTINCT customer)::int AS n FROM invoices WHERE number IS NOT NULL')
    ).rows[0]!.n;
    assert.equal(sim.customers.size, customers, 'one NetSuite customer per customer, whether a journal or a document came first');
    for (const invoice of [...sim.sales('invoice'), ...sim.sales('creditMemo')]) {
      const customer = [...sim.customers.values()].find((c) => c.id === invoice.body.entity?.id);
      assert.ok(customer, `${invoice.body.tranId} names a created customer`);
      assert.deepEqual(
        customer.body.subsidiary,
        invoice.body.subsidiary,
        `${invoice.body.tranId}: the customer is in the document's subsidiary`,
      );
    }
  });

  it('applies the credit memo to the invoice it corrects: its amount remaining drops by the credit', async () => {
    const memo = sim.sales('creditMemo')[0]!;
    const corrected = sim.sales('invoice').find((r) => r.body.tranId === 'NWUS-000001')!;
    assert.equal(memo.body.apply?.items?.length, 1);
    assert.equal(memo.body.apply!.items![0]!.doc?.id, corrected.id);
    assert.equal(
      sim.amountRemaining(corrected.id).toString(),
      String(Number(corrected.body.total) - Number(memo.body.total)).replace(/\.?0+$/, (m) => (m.includes('.') ? '' : m)),
    );
  });

  it('pushes a received payment to NetSuite, applied to its invoice, and payment polling does not apply it again', async () => {
    const invoice = (
      await store.pool.query<{ id: string; number: string; customer: string; currency: string; total_minor: string }>(
        "SELECT id, number, customer, currency, total_minor::text FROM invoices WHERE number = 'NWDE-000001'",
      )
    ).rows[0]!;
    const posted = sim.sales('invoice').find((r) => r.body.tranId === invoice.number)!;
    const payment = {
      payment_id: 'pay_ns_1',
      invoice_number: invoice.number,
      invoice_id: invoice.id,
      legal_entity: 'nw-de',
      customer: invoice.customer,
      customer_erp_id: (await currentCatalog(store.pool))!.index.customers.get(invoice.customer)!.erp_customer_id,
      currency: invoice.currency,
      amount_minor: BigInt(invoice.total_minor),
      received_on: '2027-01-05',
    };
    const ns = target();
    await ns.postPayment('out:v1:netsuite:payment:pay_ns_1', payment);
    assert.equal(sim.amountRemaining(posted.id).toString(), '0');
    const polled = await pollPayments(store.pool, ns);
    assert.deepEqual([polled.seen, polled.applied, polled.exceptions], [0, 0, 0], 'Accrue applied it when it was received');
  });
});
