import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { buildServer } from '../../src/api/server.js';
import { signWebhook } from '../../src/settle/payments.js';
import { recordJournals } from '../../src/post/journals.js';
import { paymentJournal } from '../../src/domain/journal.js';

const SECRET = 'whsec_test';
let store: Store;
let app: FastifyInstance;
let totals: Map<string, string>;

const now = () => Math.floor(Date.now() / 1000);
async function pay(body: Record<string, unknown>, options: { secret?: string; t?: number; raw?: string; signature?: string } = {}) {
  const raw = options.raw ?? JSON.stringify(body);
  const signature = options.signature ?? signWebhook(options.secret ?? SECRET, raw, options.t ?? now());
  return app.inject({
    method: 'POST',
    url: '/v1/payments',
    headers: { 'content-type': 'application/json', 'accrue-signature': signature },
    payload: raw,
  });
}

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
  assert.ok(applied.ok);
  const catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(
    store.pool,
    catalog,
    [
      {
        specversion: '1.0',
        id: 's1',
        source: '//s',
        type: 'com.northwind.api.request',
        subject: 'umbrella',
        time: '2026-10-02T00:00:00Z',
        data: {},
      },
    ],
    { channel: 'file', now: new Date('2026-11-01T00:00:00Z') },
  );
  const closed = await closePeriod(store.pool, catalog, { period: '2026-10' });
  totals = new Map(closed.invoices.map((i) => [i.number!, i.total_minor.toString()]));
  app = await buildServer({ pool: store.pool, webhookSecret: SECRET });
});
after(async () => {
  await app.close();
  await store.close();
});

describe('payments webhook', () => {
  it('refuses a bad signature, a stale timestamp and a replayed delivery', async () => {
    const body = { id: 'pay-x', invoice: 'NWDE-000001', amount: '1.00', currency: 'EUR', received_on: '2026-11-05' };
    assert.equal((await pay(body, { secret: 'wrong' })).statusCode, 401);
    assert.equal((await pay(body, { t: now() - 3600 })).statusCode, 401);
    const raw = JSON.stringify(body);
    const signature = signWebhook(SECRET, raw, now());
    assert.equal((await pay(body, { raw, signature })).statusCode, 200);
    const replay = await pay(body, { raw, signature });
    assert.equal(replay.statusCode, 409);
    assert.equal(replay.json().type, 'https://accrue.dev/problems/replayed_delivery');
  });

  it('applies a payment once, partially then fully, with a payment journal', async () => {
    // umbrella, October (the api discount starts in November): platform 249.00 + 1 package 0.30 + compute base fee
    // 40.00 (the first graduated tier's flat amount, charged at zero usage) = 289.30; × 0.19 = 54.967 → 54.97; 344.27
    assert.equal(totals.get('NWDE-000001'), '34427');
    const first = await pay({ id: 'pay-1', invoice: 'NWDE-000001', amount: '100.00', currency: 'EUR', received_on: '2026-11-10' });
    assert.equal(first.json().status, 'applied');
    assert.equal(first.json().payment_status, 'partially_paid');
    // The same payment delivered again (a new delivery, so a new timestamp): applied once.
    const again = await pay(
      { id: 'pay-1', invoice: 'NWDE-000001', amount: '100.00', currency: 'EUR', received_on: '2026-11-10' },
      { t: now() + 1 },
    );
    assert.equal(again.json().status, 'duplicate');
    const changed = await pay({ id: 'pay-1', invoice: 'NWDE-000001', amount: '90.00', currency: 'EUR', received_on: '2026-11-10' });
    assert.equal(changed.statusCode, 409);
    // 1.00 (pay-x, above) + 100.00 + 243.27 = 344.27
    const rest = await pay({ id: 'pay-2', invoice: 'NWDE-000001', amount: '243.27', currency: 'EUR', received_on: '2026-11-12' });
    assert.equal(rest.json().payment_status, 'paid');
    const row = await store.pool.query("SELECT payment_status, amount_paid_minor::text FROM invoices WHERE number = 'NWDE-000001'");
    assert.deepEqual(row.rows[0], { payment_status: 'paid', amount_paid_minor: '34427' });
    const journal = await store.pool.query(
      "SELECT account, debit_minor::text, credit_minor::text FROM journal_lines WHERE journal_id = 'jrn:v1:payment:pay-2' ORDER BY line_no",
    );
    assert.deepEqual(journal.rows, [
      { account: '1800', debit_minor: '24327', credit_minor: '0' },
      { account: '1400', debit_minor: '0', credit_minor: '24327' },
    ]);
  });

  it('turns overpayments, wrong currencies and unmatched payments into exceptions, not guesses', async () => {
    const over = await pay({ id: 'pay-3', invoice: 'NWDE-000001', amount: '0.01', currency: 'EUR', received_on: '2026-11-12' });
    assert.equal(over.json().kind, 'payment_overpayment');
    const currency = await pay({ id: 'pay-4', invoice: 'NWUS-000001', amount: '1.00', currency: 'EUR', received_on: '2026-11-12' });
    assert.equal(currency.json().kind, 'payment_currency_mismatch');
    const unmatched = await pay({ id: 'pay-5', invoice: 'NWUS-424242', amount: '1.00', currency: 'USD', received_on: '2026-11-12' });
    assert.equal(unmatched.json().kind, 'payment_unmatched');
    const queue = await store.pool.query('SELECT kind, owner_queue, status FROM exceptions ORDER BY kind');
    assert.deepEqual(
      queue.rows.map((r) => r.kind),
      ['payment_currency_mismatch', 'payment_overpayment', 'payment_unmatched'],
    );
    assert.ok(queue.rows.every((r) => r.owner_queue === 'finance_operations' && r.status === 'open'));
  });

  it('follows the closed-period policy for a payment dated in a closed accounting period', async () => {
    await store.pool.query(
      "INSERT INTO accounting_periods (legal_entity, period, status, closed_at) VALUES ('nw-us', '2026-10', 'closed', now())",
    );
    const refused = await pay({ id: 'pay-7', invoice: 'NWUS-000001', amount: '1.00', currency: 'USD', received_on: '2026-10-31' });
    assert.equal(refused.statusCode, 409);
    assert.equal(refused.json().errors[0].code, 'period_closed');
    const paid = await store.pool.query("SELECT count(*)::int AS n FROM payments WHERE id = 'pay-7'");
    assert.equal(paid.rows[0].n, 0, 'nothing half-written');
    const catalog = (await currentCatalog(store.pool))!;
    const client = await store.pool.connect();
    try {
      await client.query('BEGIN');
      const journal = paymentJournal(
        {
          id: 'pay-8',
          invoice_id: 'x',
          customer: 'acme',
          erp_customer_id: 'C-10042',
          legal_entity: 'nw-us',
          currency: 'USD',
          amount_minor: 100n,
          received_on: '2026-10-31',
        },
        catalog.catalog.accounts['nw-us']!,
      );
      await recordJournals(client, [journal], null, [], 'next_open_period');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const moved = await store.pool.query("SELECT posting_date, dated_on, posting_policy FROM journals WHERE id = 'jrn:v1:payment:pay-8'");
    assert.deepEqual(moved.rows[0], { posting_date: '2026-11-01', dated_on: '2026-10-31', posting_policy: 'next_open_period' });
  });

  it('names the field of a bad payment', async () => {
    const bad = await pay({ id: 'pay-6', invoice: 'NWDE-000001', amount: '1.001', currency: 'EUR', received_on: '2026-11-12' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().errors[0].path, 'amount');
  });
});
