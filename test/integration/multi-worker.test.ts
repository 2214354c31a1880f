// Several processes on one Postgres: three `accrue close` at once on one billing run, three `accrue serve --role worker`
// at once on one outbox. Every invoice, journal and ERP document must exist exactly once, counted in the DB and the ERP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { testStore } from '../support/db.js';
import { NetSuiteSimulator, NS_SIM_ACCOUNT, NS_SIM_TBA } from '../support/netsuite-sim.js';
import { saveConnections } from '../../src/connectors/connections.js';
import type { ConnectionSettings } from '../../src/domain/erp.js';
import { saveCredentials } from '../../src/connectors/auth/credentials.js';
import { secretKeyFrom } from '../../src/connectors/auth/secret-box.js';
import { importMappings } from '../../src/map/import.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { netsuiteExternalId } from '../../src/connectors/netsuite/client.js';

let store: Store;
const NOW = new Date('2026-12-01T00:00:00Z');
/** The configuration directories netsuiteConnection writes, removed after the suite. */
const configDirs: string[] = [];
const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//multi-worker-test',
  type,
  subject,
  time,
  data,
});

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<number | null>;
}

function accrue(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--database-url', store.url, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: Run = { child, stdout: '', stderr: '', exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
  child.stdout!.on('data', (chunk) => (run.stdout += chunk));
  child.stderr!.on('data', (chunk) => (run.stderr += chunk));
  return run;
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  return (await store.pool.query(sql, params)).rows[0].n;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The NetSuite connection `netsuite` (the simulator's account, TBA) as an operator sets it up: configuration, sealed
 * credentials and the mappings of every Northwind id (the simulator takes any reference); the environment a worker
 * process needs to open it.
 */
async function netsuiteConnection(url: string): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), 'accrue-multi-worker-'));
  configDirs.push(dir);
  const config = join(dir, 'accrue.config.yaml');
  const settings: ConnectionSettings = {
    name: 'netsuite',
    kind: 'netsuite',
    account_id: NS_SIM_ACCOUNT,
    auth: 'tba',
    base_url: url,
    concurrency: 2,
    legal_entities: ['nw-us', 'nw-de'],
  };
  writeFileSync(config, YAML.stringify({ erp: { connections: { netsuite: { ...settings, name: undefined } } } }));
  assert.ok((await saveConnections(store.pool, [settings])).ok);
  const keyBytes = randomBytes(32);
  await saveCredentials(
    store.pool,
    'netsuite',
    {
      consumer_key: NS_SIM_TBA.consumerKey,
      consumer_secret: NS_SIM_TBA.consumerSecret,
      token_id: NS_SIM_TBA.tokenId,
      token_secret: NS_SIM_TBA.tokenSecret,
    },
    null,
    secretKeyFrom(keyBytes),
  );
  const catalog = (await currentCatalog(store.pool))!.catalog;
  const rows = new Set<string>();
  const add = (kind: string, source: string, target: string) => rows.add(`netsuite,${kind},${source},${target},2020-01-01`);
  add('subsidiary', 'nw-us', '1');
  add('subsidiary', 'nw-de', '2');
  for (const e of catalog.legal_entities) add('currency', e.currency, `eid:${e.currency}`);
  for (const roles of Object.values(catalog.accounts))
    for (const account of Object.values(roles)) if (account !== undefined) add('account', account, `eid:${account}`);
  for (const p of catalog.products) {
    add('item', p.id, `eid:${p.id}`);
    for (const account of Object.values(p.revenue_account)) add('account', account, `eid:${account}`);
  }
  for (const c of catalog.customers) {
    add('customer', c.id, `eid:${c.erp_customer_id}`);
    for (const kind of ['tax_code', 'tax_type', 'nexus']) add(kind, c.tax_jurisdiction, `eid:${kind}-${c.tax_jurisdiction}`);
  }
  const imported = await importMappings(store.pool, ['connection,kind,source,target,effective_from', ...rows].join('\n'), { by: 'test' });
  assert.ok(imported.ok, JSON.stringify(!imported.ok && imported.problems));
  return { ACCRUE_CONFIG: config, ACCRUE_SECRET_KEY: keyBytes.toString('base64') };
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
      ev('m1', 'acme-prod', 'com.northwind.storage.usage', '2026-10-10T00:00:00Z', { gb_hours: '100000' }),
      ev('m2', 'umbrella', 'com.northwind.api.request', '2026-10-11T00:00:00Z', {}),
      ev('m3', 'globex', 'com.northwind.storage.usage', '2026-10-12T00:00:00Z', { gb_hours: '5' }),
    ],
    { channel: 'file', now: NOW },
  );
});
after(async () => {
  await store?.close();
  for (const dir of configDirs) rmSync(dir, { recursive: true, force: true });
});

describe('three processes closing one billing run at once', () => {
  it('finalizes each invoice, journal and outbox row once, and all three report the same invoices', async () => {
    const runs = [1, 2, 3].map(() => accrue(['--json', 'close', '2026-10', '--erp', 'netsuite']));
    const codes = await Promise.all(runs.map((r) => r.exit));
    for (const [i, run] of runs.entries()) assert.equal(codes[i], 0, `close ${i + 1} exits 0: ${run.stderr}`);
    const reported = runs.map((r) =>
      (JSON.parse(r.stdout) as Array<{ id: string; number: string; customer: string }>)
        .map((inv) => `${inv.id} ${inv.number} ${inv.customer}`)
        .sort(),
    );
    // October by hand: acme, globex and umbrella are subscribed (initech starts in November).
    assert.equal(reported[0]!.length, 3);
    assert.deepEqual(reported[1], reported[0]);
    assert.deepEqual(reported[2], reported[0]);
    assert.equal(await count("SELECT count(*)::int AS n FROM invoices WHERE period = '2026-10' AND kind = 'invoice'"), 3);
    assert.equal(
      await count("SELECT count(*)::int AS n FROM invoices WHERE period = '2026-10' AND status = 'finalized' AND number IS NOT NULL"),
      3,
    );
    assert.equal(await count("SELECT count(DISTINCT number)::int AS n FROM invoices WHERE period = '2026-10'"), 3);
    assert.equal(
      await count("SELECT count(*)::int AS n FROM journals j JOIN invoices i ON i.id = j.source_document WHERE i.period = '2026-10'"),
      3,
    );
    assert.equal(await count("SELECT count(*)::int AS n FROM outbox WHERE target = 'netsuite'"), 3);
    assert.equal(
      await count("SELECT count(*)::int AS n FROM rating_runs WHERE period = '2026-10'"),
      3,
      'one rating run per customer, whoever rated it',
    );
  });
});

describe('three worker processes on one outbox', () => {
  it('posts every document to NetSuite exactly once, and each worker stops cleanly on SIGTERM', async () => {
    const catalog = (await currentCatalog(store.pool))!;
    for (const period of ['2026-03', '2026-04', '2026-05', '2026-06', '2026-07', '2026-08', '2026-09'])
      await closePeriod(store.pool, catalog, { period, erpTargets: ['netsuite'] });
    const documents = await count("SELECT count(*)::int AS n FROM outbox WHERE target = 'netsuite' AND status = 'pending'");
    assert.ok(documents >= 20, `enough documents for three workers to contend: ${documents}`);
    // A service time keeps documents in flight long enough for the three workers' claims to overlap.
    const sim = new NetSuiteSimulator({ concurrencyLimit: 30, timeoutDelayMs: 600, serviceMs: 40 });
    await sim.start();
    try {
      const env = await netsuiteConnection(sim.url);
      const workers = [1, 2, 3].map(() => accrue(['serve', '--role', 'worker'], env));
      const deadline = Date.now() + 60_000;
      while ((await count("SELECT count(*)::int AS n FROM outbox WHERE target = 'netsuite' AND status <> 'posted'")) > 0) {
        assert.ok(
          Date.now() < deadline,
          `the workers drain the outbox within a minute: ${workers.map((w) => w.stderr.slice(-400)).join('\n---\n')}`,
        );
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const w of workers) w.child.kill('SIGTERM');
      const codes = await Promise.all(workers.map((w) => w.exit));
      for (const [i, w] of workers.entries()) {
        assert.equal(codes[i], 0, `worker ${i + 1} exits 0 on SIGTERM: ${w.stderr.slice(-800)}`);
        assert.match(w.stderr, /serving as role worker/);
        assert.doesNotMatch(w.stderr, /listening on/, 'a worker serves no HTTP');
      }
      const stopped = workers.map((w) =>
        w.stderr
          .split('\n')
          .filter((l) => l.includes('"outbox worker stopped"'))
          .map((l) => JSON.parse(l) as { posted: number; found_existing: number }),
      );
      for (const lines of stopped) assert.equal(lines.length, 1, 'each worker ran one netsuite lane and reported it');
      const postedBy = stopped.map((lines) => lines[0]!.posted);
      assert.equal(
        postedBy.reduce((a, b) => a + b, 0),
        documents,
        `the workers' posts add up to the documents: ${postedBy.join(' + ')}`,
      );
      assert.ok(postedBy.filter((n) => n > 0).length >= 2, `the work was shared, not one worker's: ${postedBy.join(', ')}`);
      assert.equal(sim.creates, documents, 'each document created once in the ERP');
      assert.equal(sim.records.size, documents);
      for (const record of sim.records.values()) assert.equal(record.writes, 1, 'never written twice');
      const rows = await store.pool.query<{ key: string; target_reference: string }>(
        "SELECT key, target_reference FROM outbox WHERE target = 'netsuite'",
      );
      assert.equal(rows.rows.length, documents);
      for (const row of rows.rows) {
        const record = sim.records.get(netsuiteExternalId(row.key));
        assert.ok(record, `${row.key} reached NetSuite`);
        assert.equal(record.id, row.target_reference, 'the outbox keeps the ERP reference of the one record');
      }
      assert.equal(await count('SELECT count(DISTINCT target_reference)::int AS n FROM outbox'), documents);
    } finally {
      await sim.stop();
    }
  });
});

describe('the api role and a worker with nothing to do', () => {
  it('serves HTTP as api, and refuses to start a worker with no ERP target or notification channel (exit 2)', async () => {
    const port = await freePort();
    const api = accrue(['serve', '--role', 'api', '--port', String(port)], await netsuiteConnection('http://127.0.0.1:9'));
    try {
      const deadline = Date.now() + 30_000;
      let status = 0;
      while (Date.now() < deadline) {
        status = await fetch(`http://127.0.0.1:${port}/openapi.json`)
          .then((r) => r.status)
          .catch(() => 0);
        if (status) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(status, 200, api.stderr);
      assert.doesNotMatch(api.stderr, /posting the/, 'an api process runs no outbox worker even with an ERP connection configured');
    } finally {
      api.child.kill('SIGTERM');
    }
    assert.equal(await api.exit, 0);
    const idle = accrue(['serve', '--role', 'worker'], { ACCRUE_CONFIG: '', ACCRUE_NOTIFY_WEBHOOK_URLS: '' });
    assert.equal(await idle.exit, 2);
    assert.match(idle.stderr, /a worker needs an ERP connection/);
    const wrong = accrue(['serve', '--role', 'reader']);
    assert.equal(await wrong.exit, 2);
    assert.match(wrong.stderr, /must be api, worker or all/);
  });
});
