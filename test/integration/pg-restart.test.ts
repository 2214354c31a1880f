// Postgres restarted mid-run: the outbox worker waits for the database, carries on, and every document reaches the
// ERP exactly once. This test starts its own embedded server (the shared one cannot be restarted under other tests).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startEmbedded, type EmbeddedServer } from '../../src/store/embedded.js';
import { openStore, type Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { isConnectionLoss, runOutboxWorker } from '../../src/post/worker.js';
import { netsuiteTarget } from '../support/netsuite-target.js';
import { NetSuiteSimulator } from '../support/netsuite-sim.js';

let dataDir: string;
let port: number;
let server: EmbeddedServer;
let store: Store;
const NOW = new Date('2026-12-01T00:00:00Z');

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'accrue-restart-pg-'));
  port = await freePort();
  server = await startEmbedded({ dataDir, port });
  store = await openStore({ databaseUrl: server.url });
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  const catalog = (await currentCatalog(store.pool))!;
  const events = ['2026-03', '2026-04', '2026-05', '2026-06', '2026-07'].flatMap((period, i) => [
    {
      specversion: '1.0',
      id: `r${i}a`,
      source: '//restart-test',
      type: 'com.northwind.storage.usage',
      subject: 'acme-prod',
      time: `${period}-10T00:00:00Z`,
      data: { gb_hours: '100000' },
    },
    {
      specversion: '1.0',
      id: `r${i}b`,
      source: '//restart-test',
      type: 'com.northwind.api.request',
      subject: 'umbrella',
      time: `${period}-11T00:00:00Z`,
      data: {},
    },
  ]);
  await ingestBatch(store.pool, catalog, events, { channel: 'file', now: NOW });
  for (const period of ['2026-03', '2026-04', '2026-05', '2026-06', '2026-07'])
    await closePeriod(store.pool, catalog, { period, erpTargets: ['netsuite'] });
});

after(async () => {
  await store?.close();
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('Postgres restarted mid-run', () => {
  it('knows a lost connection from a refused statement', () => {
    assert.equal(isConnectionLoss({ code: '57P01', message: 'terminating connection due to administrator command' }), true);
    assert.equal(isConnectionLoss({ code: 'ECONNREFUSED' }), true);
    assert.equal(isConnectionLoss(new Error('Connection terminated unexpectedly')), true);
    assert.equal(isConnectionLoss({ code: '23505', message: 'duplicate key value violates unique constraint' }), false);
    assert.equal(isConnectionLoss(new Error('journal does not balance')), false);
  });

  it('posts every document exactly once although the database went away while requests were in flight', async () => {
    const pending = (await store.pool.query("SELECT count(*)::int AS n FROM outbox WHERE target = 'netsuite' AND status = 'pending'"))
      .rows[0].n as number;
    assert.ok(pending >= 10, `enough documents to restart the database mid-run: ${pending}`);
    const sim = new NetSuiteSimulator({ concurrencyLimit: 10, timeoutDelayMs: 600, putDelayMs: 120 });
    await sim.start();
    try {
      const target = netsuiteTarget(sim.url, { subsidiaries: {}, limits: { concurrency: 2, requestsPerMinute: 60_000 } });
      const log: Array<Record<string, unknown>> = [];
      const worker = runOutboxWorker(store.pool, target, {
        untilEmpty: true,
        leaseMs: 1_000,
        backoffBaseMs: 10,
        log: (line) => log.push(line),
      });
      while (sim.creates < 3) await new Promise((r) => setTimeout(r, 10));
      // A fast shutdown while PUTs are in flight: their answers arrive to a worker that cannot record them.
      await server.stop();
      assert.ok(sim.creates < pending, 'stopped before the worker finished');
      await new Promise((r) => setTimeout(r, 700));
      server = await startEmbedded({ dataDir, port });
      const outcome = await worker;

      assert.ok(outcome.reconnects >= 1, 'the worker saw the database go away and waited for it');
      assert.ok(log.some((l) => l.msg === 'database connection lost; waiting to reconnect'));
      assert.equal(sim.creates, pending, 'every document created once in the ERP');
      for (const record of sim.records.values()) assert.equal(record.writes, 1, 'no document written twice');
      const rows = (await store.pool.query("SELECT status, count(*)::int AS n FROM outbox WHERE target = 'netsuite' GROUP BY status")).rows;
      assert.deepEqual(rows, [{ status: 'posted', n: pending }]);
    } finally {
      await sim.stop();
    }
  });
});
