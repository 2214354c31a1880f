// Exactly once under faults: every document reaches the ERP once, counted in the target afterwards.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { testStore } from '../support/db.js';
import { NetSuiteSimulator } from '../support/netsuite-sim.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox, listDeadLetters, replayDeadLetter, backoffMs } from '../../src/post/outbox.js';
import { netsuiteExternalId } from '../../src/connectors/netsuite/client.js';
import { netsuiteTarget } from '../support/netsuite-target.js';
import { northwindXeroSim, xeroTestTarget } from '../support/xero-target.js';

let store: Store;
let sim: NetSuiteSimulator;
const NOW = new Date('2026-12-01T00:00:00Z');
const ev = (id: string, subject: string, type: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//outbox-test',
  type,
  subject,
  time: '2026-10-10T00:00:00Z',
  data,
});

const target = () =>
  netsuiteTarget(sim.url, {
    subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
    timeoutMs: 300,
    limits: { concurrency: 4, requestsPerMinute: 60_000 },
  });

async function pendingJournals(): Promise<number> {
  return (await store.pool.query("SELECT count(*)::int AS n FROM outbox WHERE target = 'netsuite'")).rows[0].n;
}

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
  assert.ok(applied.ok);
  const catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(
    store.pool,
    catalog,
    [ev('o1', 'acme-prod', 'com.northwind.storage.usage', { gb_hours: '100000' }), ev('o2', 'umbrella', 'com.northwind.api.request', {})],
    { channel: 'file', now: NOW },
  );
  await closePeriod(store.pool, catalog, { period: '2026-10', erpTargets: ['netsuite'] });
  sim = new NetSuiteSimulator({ concurrencyLimit: 3, timeoutDelayMs: 600 });
  await sim.start();
});
after(async () => {
  await sim.stop();
  await store.close();
});

describe('outbox to NetSuite', () => {
  it('backs off exponentially with jitter and honours Retry-After', () => {
    assert.equal(
      backoffMs(1, undefined, () => 0.999, 100),
      99,
    );
    assert.equal(
      backoffMs(4, undefined, () => 0.999, 100),
      799,
    );
    assert.equal(
      backoffMs(4, 5000, () => 0.5, 100),
      5000,
    );
  });

  it('posts every journal exactly once through 429 bursts, 5xx, timeouts and lost responses, with two workers at once', async () => {
    const documents = await pendingJournals();
    assert.equal(documents, 3, 'October: acme, globex and umbrella (initech starts in November)');
    sim.faults.push('429', '429', '429', '500', '500', 'timeout', 'lost', 'lost');
    const [a, b] = await Promise.all([
      drainOutbox(store.pool, target(), { untilEmptyMs: 20_000, backoffBaseMs: 10, attemptsMax: 50 }),
      drainOutbox(store.pool, target(), { untilEmptyMs: 20_000, backoffBaseMs: 10, attemptsMax: 50 }),
    ]);
    assert.equal(sim.creates, documents, 'each document created once in the ERP');
    assert.equal(sim.records.size, documents);
    for (const record of sim.records.values()) assert.equal(record.writes, 1, 'never written twice');
    const states = await store.pool.query("SELECT status, count(*)::int AS n FROM outbox WHERE target = 'netsuite' GROUP BY status");
    assert.deepEqual(states.rows, [{ status: 'posted', n: documents }]);
    assert.ok(a.retried + b.retried >= 5, 'the faults were met and retried');
    assert.ok(a.found_existing + b.found_existing >= 2, 'lost responses were resolved by looking the document up');
    const ids = await store.pool.query("SELECT document_id, target_reference FROM outbox WHERE target = 'netsuite'");
    for (const row of ids.rows) assert.ok(sim.records.has(netsuiteExternalId(`out:v1:netsuite:${row.document_id}`)));
  });

  it('sends a validation error to the dead-letter queue with the ERP message, and a replay posts once', async () => {
    const catalog = (await currentCatalog(store.pool))!;
    await ingestBatch(
      store.pool,
      catalog,
      [ev('o3', 'globex', 'com.northwind.storage.usage', { gb_hours: '1' })].map((e) => ({ ...e, time: '2026-09-10T00:00:00Z' })),
      { channel: 'file', now: NOW },
    );
    await closePeriod(store.pool, catalog, { period: '2026-09', erpTargets: ['netsuite'] });
    const before = sim.creates;
    sim.faults.push('invalid');
    await drainOutbox(store.pool, target(), { untilEmptyMs: 5_000, backoffBaseMs: 10 });
    const dead = await listDeadLetters(store.pool, 'netsuite');
    assert.equal(dead.length, 1);
    assert.equal(dead[0].last_error.code, 'INVALID_FLD_VALUE');
    assert.equal(dead[0].last_error.status, 400);
    assert.match(dead[0].last_error.message, /Invalid account reference key/);
    assert.ok(await replayDeadLetter(store.pool, dead[0].id));
    assert.equal(await replayDeadLetter(store.pool, dead[0].id), false);
    await drainOutbox(store.pool, target(), { untilEmptyMs: 5_000, backoffBaseMs: 10 });
    const created = sim.creates - before;
    const newDocs = (
      await store.pool.query(
        "SELECT count(*)::int AS n FROM outbox o JOIN journals j ON j.id = o.document_id WHERE o.target = 'netsuite' AND j.posting_date >= '2026-09-01' AND j.posting_date < '2026-10-01'",
      )
    ).rows[0].n;
    assert.equal(created, newDocs);
    assert.deepEqual(await listDeadLetters(store.pool, 'netsuite'), []);
  });
});

describe('outbox to Xero', () => {
  it('posts invoices once with Idempotency-Key through rate limits, 5xx, timeouts and lost responses', async () => {
    const xero = northwindXeroSim({ timeoutDelayMs: 600, perMinute: 1000, concurrent: 5 }, 'tenant-nw-us');
    await xero.start();
    try {
      const catalog = (await currentCatalog(store.pool))!;
      await closePeriod(store.pool, catalog, { period: '2026-08', erpTargets: ['xero'] });
      const documents = (await store.pool.query("SELECT count(*)::int AS n FROM outbox WHERE target = 'xero'")).rows[0].n;
      assert.equal(documents, 3);
      xero.faults.push('429', '500', 'timeout', 'lost', 'lost');
      const target = xeroTestTarget(xero, { tenantId: 'tenant-nw-us', timeoutMs: 300 });
      await drainOutbox(store.pool, target, { untilEmptyMs: 20_000, backoffBaseMs: 10, attemptsMax: 50 });
      // Invoices go as Xero's own ACCREC invoices (test/integration/erp-documents.test.ts), not as manual journals.
      assert.equal(xero.invoices.length, documents, 'each invoice created once');
      assert.equal(xero.journals.length, 0, 'no manual journal doubles an invoice');
      assert.ok(xero.inFlightMax <= 5, 'never more than 5 calls in progress');
      for (const d of xero.invoices) assert.match(d.Reference, /^out:v1:xero:jrn:v1:invoice:inv_[0-9a-f]+$/);
      const states = await store.pool.query("SELECT status, count(*)::int AS n FROM outbox WHERE target = 'xero' GROUP BY status");
      assert.deepEqual(states.rows, [{ status: 'posted', n: documents }]);
    } finally {
      await xero.stop();
    }
  });
});

describe('a worker killed mid-batch', () => {
  it('loses nothing and posts nothing twice: the restarted worker takes over expired leases and looks documents up first', async () => {
    const slow = new NetSuiteSimulator({ concurrencyLimit: 10, timeoutDelayMs: 600, putDelayMs: 80 });
    await slow.start();
    try {
      const catalog = (await currentCatalog(store.pool))!;
      for (const period of ['2026-03', '2026-04', '2026-05', '2026-06', '2026-07'])
        await closePeriod(store.pool, catalog, { period, erpTargets: ['netsuite-crash'] });
      await store.pool.query("UPDATE outbox SET target = 'netsuite' WHERE target = 'netsuite-crash'");
      const pending = (await store.pool.query("SELECT count(*)::int AS n FROM outbox WHERE target = 'netsuite' AND status = 'pending'"))
        .rows[0].n;
      assert.ok(pending >= 12, `enough documents to kill a worker mid-batch: ${pending}`);
      const before = slow.creates;
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/drain-worker.ts'], {
        env: { ...process.env, WORKER_DATABASE_URL: store.url, WORKER_SIM_URL: slow.url },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      // Let it post a few, then kill it without warning while requests are in flight.
      while (slow.creates - before < 3) await new Promise((r) => setTimeout(r, 10));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const postedByChild = slow.creates - before;
      assert.ok(postedByChild < pending, 'killed before it finished');
      await drainOutbox(store.pool, netsuiteTarget(slow.url, { subsidiaries: {}, limits: { concurrency: 4, requestsPerMinute: 60_000 } }), {
        untilEmptyMs: 15_000,
        backoffBaseMs: 10,
        leaseMs: 1_000,
      });
      assert.equal(slow.creates - before, pending, 'every document created once');
      for (const record of slow.records.values()) assert.equal(record.writes, 1);
      const left = (await store.pool.query("SELECT count(*)::int AS n FROM outbox WHERE target = 'netsuite' AND status <> 'posted'"))
        .rows[0].n;
      assert.equal(left, 0);
    } finally {
      await slow.stop();
    }
  });
});
