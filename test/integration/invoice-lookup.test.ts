// Invoice numbers are gapless per legal entity, so two entities with the same prefix share numbers. A lookup by number
// is then either within one entity or refused as ambiguous (409, naming the entities): never one of them picked.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { getInvoice } from '../../src/invoice/store.js';
import { voidInvoice } from '../../src/post/void.js';
import { applyPayment } from '../../src/settle/payments.js';

let store: Store;
let shared: string;
const ev = (id: string, subject: string, type: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//lookup-test',
  type,
  subject,
  time: '2026-11-05T00:00:00Z',
  data,
});

before(async () => {
  store = await testStore();
  // Both legal entities number their invoices NWUS-…
  const text = readFileSync('examples/northwind/catalog.yaml', 'utf8').replace(
    'invoice_number_prefix: "NWDE-"',
    'invoice_number_prefix: "NWUS-"',
  );
  assert.ok((await applyCatalog(store.pool, text, { by: 'test' })).ok);
  const catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(
    store.pool,
    catalog,
    [
      ev('u1', 'umbrella', 'com.northwind.api.request', { region: 'eu' }),
      ev('a1', 'acme-prod', 'com.northwind.storage.usage', { gb_hours: '1000' }),
    ],
    { channel: 'file', now: new Date('2026-12-01T00:00:00Z') },
  );
  await closePeriod(store.pool, catalog, { period: '2026-11' });
  shared = (
    await store.pool.query<{ number: string }>(
      'SELECT number FROM invoices WHERE number IS NOT NULL GROUP BY number HAVING count(DISTINCT legal_entity) = 2 ORDER BY number LIMIT 1',
    )
  ).rows[0]!.number;
});
after(() => store.close());

const statusOf = async (entity: string) =>
  (await store.pool.query<{ status: string }>('SELECT status FROM invoices WHERE number = $1 AND legal_entity = $2', [shared, entity]))
    .rows[0]!.status;

describe('a number two legal entities share', () => {
  it('is refused without the entity (409 naming both), and found with it', async () => {
    await assert.rejects(
      getInvoice(store.pool, shared),
      (error: Error & { status?: number; problems?: Array<{ code: string }> }) =>
        error.status === 409 && error.problems?.[0]?.code === 'ambiguous' && /nw-de, nw-us/.test(error.message),
    );
    assert.equal((await getInvoice(store.pool, shared, { entity: 'nw-de' }))?.legal_entity, 'nw-de');
    assert.equal((await getInvoice(store.pool, shared, { entity: 'nw-us' }))?.legal_entity, 'nw-us');
    assert.equal(await getInvoice(store.pool, shared, { entity: 'nw-xx' }), undefined);
  });

  it('a payment naming the shared number is not applied to either: it waits as an exception', async () => {
    const catalog = (await currentCatalog(store.pool))!;
    const outcome = await applyPayment(
      store.pool,
      catalog,
      { id: 'pay-shared-1', invoice: shared, amount: '1.00', currency: 'USD', received_on: '2026-12-05', amount_minor: 100n },
      'webhook',
    );
    assert.equal(outcome.status, 'exception');
    assert.equal(outcome.status === 'exception' && outcome.kind, 'payment_unmatched');
    const details = await store.pool.query<{ details: { reason: string } }>(
      "SELECT details FROM exceptions WHERE kind = 'payment_unmatched' AND details->'payment'->>'id' = 'pay-shared-1'",
    );
    assert.match(details.rows[0]!.details.reason, /names invoices of 2 legal entities \(nw-de, nw-us\)/);
    const paid = await store.pool.query('SELECT count(*)::int AS n FROM payments WHERE id = $1 AND invoice_id IS NOT NULL', [
      'pay-shared-1',
    ]);
    assert.equal(paid.rows[0].n, 0);
  });
  it('void refuses it and voids neither; with the entity it voids that one only', async () => {
    const at = '2026-12-03T00:00:00Z';
    await assert.rejects(
      voidInvoice(store.pool, { invoice: shared, reason: 'r', actor: 'dave', at }),
      /names documents of 2 legal entities/,
    );
    assert.equal(await statusOf('nw-de'), 'finalized');
    assert.equal(await statusOf('nw-us'), 'finalized');
    const outcome = await voidInvoice(store.pool, { invoice: shared, entity: 'nw-de', reason: 'r', actor: 'dave', at });
    assert.equal(outcome.invoice.legal_entity, 'nw-de');
    assert.equal(await statusOf('nw-de'), 'void');
    assert.equal(await statusOf('nw-us'), 'finalized');
  });

  it('the CLI: `invoices void NUMBER` exits with the ambiguity; `--entity` picks one', () => {
    const accrue = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/accrue.js', '--database-url', store.url, ...args], { encoding: 'utf8' });
    const refused = accrue('invoices', 'show', shared);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /nw-de, nw-us/);
    const voided = accrue('--json', 'invoices', 'void', shared, '--entity', 'nw-us', '--reason', 'test');
    assert.equal(voided.status, 0, voided.stderr);
    const body = JSON.parse(voided.stdout) as { legal_entity: string; already_void: boolean; reversals: unknown[] };
    assert.equal(body.legal_entity, 'nw-us');
    assert.equal(body.already_void, false);
    assert.ok(body.reversals.length >= 1);
    assert.notEqual(accrue('invoices', 'void', shared, '--entity', 'nw-us').status, 0, '--reason is required');
  });
});
