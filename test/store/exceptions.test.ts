// The one exception writer: a payment exception gets its scope and its opening event (as migration 008's triggers
// wrote them), a repeat writes nothing, and a checkpoint's exception keeps what it is given.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { openException } from '../../src/store/exceptions.js';
import { openPaymentException } from '../../src/settle/exceptions.js';

let store: Store;
let invoice: { number: string; legal_entity: string; customer: string };

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
  assert.ok(applied.ok);
  const catalog = (await currentCatalog(store.pool))!;
  const event = {
    specversion: '1.0',
    id: 'x1',
    source: '//x',
    type: 'com.northwind.api.request',
    subject: 'umbrella',
    time: '2026-10-02T00:00:00Z',
    data: {},
  };
  await ingestBatch(store.pool, catalog, [event], { channel: 'file', now: new Date('2026-11-01T00:00:00Z') });
  const closed = await closePeriod(store.pool, catalog, { period: '2026-10' });
  const first = closed.invoices.find((i) => i.kind === 'invoice')!;
  invoice = { number: first.number!, legal_entity: first.legal_entity, customer: first.customer };
});
after(async () => store.close());

const row = async (id: string) =>
  (
    await store.pool.query(
      `SELECT e.status, e.period, e.currency, e.legal_entity, e.customer, e.documents, e.last_seen_at IS NOT NULL AS seen,
              v.ordinal, v.action, v.from_status, v.to_status, v.actor, v.at = e.created_at AS dated_as_row, v.details,
              (SELECT count(*)::int FROM exception_events WHERE exception_id = e.id) AS events
         FROM exceptions e JOIN exception_events v ON v.exception_id = e.id AND v.ordinal = 1 WHERE e.id = $1`,
      [id],
    )
  ).rows[0];

describe('openException', () => {
  it('opens a payment exception once, with its scope and its open event', async () => {
    const details = { reason: 'test', payment: { id: 'p-x', invoice: invoice.number, currency: 'USD', received_on: '2026-11-03' } };
    const first = await openPaymentException(store.pool, 'payment_overpayment', 'p-x', details);
    assert.equal(first.opened, true);
    assert.deepEqual(await row(first.id), {
      status: 'open',
      period: '2026-11',
      currency: 'USD',
      legal_entity: invoice.legal_entity,
      customer: invoice.customer,
      documents: [{ kind: 'payment', id: 'p-x' }],
      seen: false,
      ordinal: 1,
      action: 'open',
      from_status: null,
      to_status: 'open',
      actor: 'system:settle',
      dated_as_row: true,
      details: { kind: 'payment_overpayment' },
      events: 1,
    });
    const again = await openPaymentException(store.pool, 'payment_overpayment', 'p-x', details);
    assert.deepEqual(again, { id: first.id, opened: false });
    assert.equal((await row(first.id)).events, 1);
  });

  it('leaves a checkpoint exception as given and writes the opening event it is told', async () => {
    const opened = await openException(
      store.pool,
      {
        id: 'exc:test:checkpoint',
        kind: 'amount_differs',
        owner_queue: 'billing_engineering',
        subject: 'item',
        details: { payment: { received_on: '2026-12-01', currency: 'EUR' } },
        checkpoint: 'trial_balance',
        period: '2026-10',
        legal_entity: 'nw-us',
        item: 'item',
        seen: true,
      },
      { actor: 'system:reconcile', details: { checkpoint: 'trial_balance' } },
    );
    assert.equal(opened, true);
    const got = await row('exc:test:checkpoint');
    assert.deepEqual(
      [got.period, got.currency, got.documents, got.seen, got.actor, got.details],
      ['2026-10', null, [], true, 'system:reconcile', { checkpoint: 'trial_balance' }],
    );
  });
});
