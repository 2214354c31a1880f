// Rollout scope: only in-scope customers' and legal entities' documents reach the ERP (the NetSuite simulator); the
// rest are journaled in the built-in ledger and recorded as held back. Configuration from the file and environment.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testStore } from '../support/db.js';
import { NetSuiteSimulator } from '../support/netsuite-sim.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox } from '../../src/post/outbox.js';
import { outboxKey } from '../../src/post/journals.js';
import { inRolloutScope, listHeldBack, NO_ROLLOUT_LIMIT, type RolloutScope } from '../../src/post/rollout.js';
import { netsuiteExternalId } from '../../src/connectors/netsuite/client.js';
import { netsuiteTarget } from '../support/netsuite-target.js';
import { ConfigError, loadConfig } from '../../src/cli/config.js';
import { ProblemError } from '../../src/domain/result.js';

let store: Store;
let sim: NetSuiteSimulator;
let catalog: CatalogVersion;
const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//rollout-test',
  type,
  subject,
  time,
  data,
});

const target = () =>
  netsuiteTarget(sim.url, {
    subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
    timeoutMs: 2_000,
    limits: { concurrency: 4, requestsPerMinute: 60_000 },
  });

/** The period's journals with the customer of the invoice behind each. */
async function journalsOf(period: string): Promise<Array<{ id: string; customer: string; legal_entity: string }>> {
  return (
    await store.pool.query<{ id: string; customer: string; legal_entity: string }>(
      `SELECT j.id, i.customer, j.legal_entity FROM journals j JOIN invoices i ON i.id = j.source_document
        WHERE to_char(j.posting_date, 'YYYY-MM') = $1 ORDER BY j.id`,
      [period],
    )
  ).rows;
}

async function queued(period: string): Promise<string[]> {
  return (
    await store.pool.query<{ document_id: string }>(
      `SELECT o.document_id FROM outbox o JOIN journals j ON j.id = o.document_id WHERE o.target = 'netsuite' AND to_char(j.posting_date, 'YYYY-MM') = $1 ORDER BY 1`,
      [period],
    )
  ).rows.map((r) => r.document_id);
}

async function closeWithScope(period: string, rollout: RolloutScope) {
  await closePeriod(store.pool, catalog, {
    period,
    erpTargets: ['netsuite'],
    rollout,
    now: new Date('2027-01-02T00:00:00Z') /* every period closed here has ended */,
  });
  const journals = await journalsOf(period);
  const inScope = journals.filter((j) => inRolloutScope(rollout, j)).map((j) => j.id);
  const outOfScope = journals.filter((j) => !inRolloutScope(rollout, j)).map((j) => j.id);
  return { journals, inScope, outOfScope };
}

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
  assert.ok(applied.ok);
  catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(
    store.pool,
    catalog,
    [
      ev('r1', 'acme-prod', 'com.northwind.storage.usage', '2026-10-10T00:00:00Z', { gb_hours: '100000' }),
      ev('r2', 'umbrella', 'com.northwind.api.request', '2026-10-11T00:00:00Z', {}),
      ev('r3', 'globex', 'com.northwind.api.request', '2026-11-11T00:00:00Z', {}),
    ],
    { channel: 'file', now: new Date('2026-12-01T00:00:00Z') },
  );
  sim = new NetSuiteSimulator({ concurrencyLimit: 10, timeoutDelayMs: 600 });
  await sim.start();
});
after(async () => {
  await sim.stop();
  await store.close();
});

describe('rollout scope', () => {
  it('by customer: only acme’s documents are queued and reach NetSuite; the others are journaled and held back', async () => {
    const { journals, inScope, outOfScope } = await closeWithScope('2026-10', { customers: ['acme'], legal_entities: null });
    assert.deepEqual(
      new Set(journals.map((j) => j.customer)),
      new Set(['acme', 'globex', 'umbrella']),
      'every customer was billed and journaled',
    );
    assert.ok(inScope.length >= 1);
    assert.ok(outOfScope.length >= 2);
    assert.deepEqual(await queued('2026-10'), inScope);
    const held = await listHeldBack(store.pool, { target: 'netsuite' });
    assert.deepEqual(
      held.map((h) => h.journal_id),
      [...outOfScope].sort(),
    );
    for (const h of held) {
      assert.equal(h.reason, 'rollout_scope');
      assert.notEqual(h.customer, 'acme');
    }

    await drainOutbox(store.pool, target(), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
    // What reached the simulator, in whatever record form the connector posts a document: its external ID in the URL.
    const externalIdOf = (id: string) => netsuiteExternalId(outboxKey('netsuite', id));
    const reached = new Set(
      sim.seen.filter((r) => r.method === 'PUT').map((r) => decodeURIComponent(r.url.split('/').pop()!).replace(/^eid:/, '')),
    );
    assert.deepEqual(reached, new Set(inScope.map(externalIdOf)), 'every in-scope document was posted, and nothing else');
    const asked = new Set(sim.seen.map((r) => decodeURIComponent(r.url.split('?')[0]!.split('/').pop()!).replace(/^eid:/, '')));
    for (const id of outOfScope) assert.equal(asked.has(externalIdOf(id)), false, `${id} never reached NetSuite, not even looked up`);
  });

  it('by legal entity, and both lists together: a document is in scope when its entity or its customer is listed', async () => {
    const november = await closeWithScope('2026-11', { customers: null, legal_entities: ['nw-de'] });
    assert.ok(
      november.inScope.length > 0 &&
        november.journals.filter((j) => november.inScope.includes(j.id)).every((j) => j.legal_entity === 'nw-de'),
    );
    assert.deepEqual(await queued('2026-11'), november.inScope);

    const december = await closeWithScope('2026-12', { customers: ['globex'], legal_entities: ['nw-de'] });
    const customers = new Set(december.journals.filter((j) => december.inScope.includes(j.id)).map((j) => j.customer));
    assert.deepEqual(customers, new Set(['globex', 'umbrella']));
    assert.deepEqual(await queued('2026-12'), december.inScope);
    const heldDecember = (await listHeldBack(store.pool)).filter((h) => december.outOfScope.includes(h.journal_id));
    assert.equal(heldDecember.length, december.outOfScope.length);
  });

  it('re-running a closed period keeps each document where it went, even under a wider scope', async () => {
    const before = { outbox: await queued('2026-10'), held: (await listHeldBack(store.pool)).length };
    await closePeriod(store.pool, catalog, { period: '2026-10', erpTargets: ['netsuite'], rollout: NO_ROLLOUT_LIMIT });
    assert.deepEqual(await queued('2026-10'), before.outbox);
    assert.equal((await listHeldBack(store.pool)).length, before.held);
  });

  it('the database refuses to queue a held-back document, and to hold back a queued one', async () => {
    const [held] = await listHeldBack(store.pool);
    await assert.rejects(
      store.pool.query("INSERT INTO outbox (key, target, document_kind, document_id) VALUES ($1, 'netsuite', 'journal', $2)", [
        outboxKey('netsuite', held!.journal_id),
        held!.journal_id,
      ]),
      /held back by rollout scope/,
    );
    const queuedId = (await queued('2026-10'))[0]!;
    await assert.rejects(
      store.pool.query(
        "INSERT INTO rollout_holds (key, target, journal_id, source_document, legal_entity, customer, reason) VALUES ($1, 'netsuite', $2, 'x', 'nw-us', 'acme', 'rollout_scope')",
        [outboxKey('netsuite', queuedId), queuedId],
      ),
      /already queued/,
    );
  });

  it('refuses a scope naming a customer or legal entity the catalog does not know, before closing anything', async () => {
    const closedBefore = (await store.pool.query('SELECT count(*)::int AS n FROM billing_periods')).rows[0].n;
    await assert.rejects(
      closePeriod(store.pool, catalog, {
        period: '2027-01',
        erpTargets: ['netsuite'],
        rollout: { customers: ['acme', 'acmee'], legal_entities: ['nw-fr'] },
      }),
      (error: unknown) => {
        assert.ok(error instanceof ProblemError);
        assert.deepEqual(
          error.problems.map((p) => [p.path, p.code]),
          [
            ['rollout.customers[1]', 'unknown_customer'],
            ['rollout.legal_entities[0]', 'unknown_legal_entity'],
          ],
        );
        return true;
      },
    );
    assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM billing_periods')).rows[0].n, closedBefore);
  });
});

describe('rollout configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accrue-rollout-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('is unlimited by default', () => {
    assert.deepEqual(loadConfig({}, {}).rollout, { customers: null, legal_entities: null });
    assert.equal(inRolloutScope(loadConfig({}, {}).rollout, { customer: 'anyone', legal_entity: 'anywhere' }), true);
  });

  it('reads rollout.customers and rollout.legal_entities from the file; the environment replaces a list', () => {
    const path = file('a.yaml', 'rollout:\n  customers: [acme, globex]\n  legal_entities: [nw-de]\n');
    assert.deepEqual(loadConfig({ config: path }, {}).rollout, { customers: ['acme', 'globex'], legal_entities: ['nw-de'] });
    assert.deepEqual(loadConfig({ config: path }, { ACCRUE_ROLLOUT_CUSTOMERS: 'initech' }).rollout, {
      customers: ['initech'],
      legal_entities: ['nw-de'],
    });
    assert.deepEqual(loadConfig({}, { ACCRUE_ROLLOUT_ENTITIES: 'nw-us, nw-de' }).rollout, {
      customers: null,
      legal_entities: ['nw-us', 'nw-de'],
    });
    const none = file('b.yaml', 'rollout:\n  customers: []\n');
    assert.deepEqual(loadConfig({ config: none }, {}).rollout, { customers: [], legal_entities: null });
    assert.equal(
      inRolloutScope(loadConfig({ config: none }, {}).rollout, { customer: 'acme', legal_entity: 'nw-us' }),
      false,
      'an empty list names no one',
    );
  });

  it('names the key and what is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['rollout:\n  customer: [acme]\n', /rollout: unknown key "customer"; known keys: customers, legal_entities/],
      ['rollout:\n  customers: acme\n', /rollout\.customers: must be a list of ids/],
      ['rollout: [acme]\n', /rollout: must be a mapping/],
      ['rollout:\n  legal_entities: [""]\n', /rollout\.legal_entities: must be a list of ids/],
    ];
    cases.forEach(([text, message], i) =>
      assert.throws(
        () => loadConfig({ config: file(`bad${i}.yaml`, text) }, {}),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      ),
    );
    assert.throws(
      () => loadConfig({}, { ACCRUE_ROLLOUT_CUSTOMERS: 'acme,,globex' }),
      /ACCRUE_ROLLOUT_CUSTOMERS: must be ids separated by commas/,
    );
  });
});
