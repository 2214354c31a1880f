// Dedup verdicts against a simple model: the stored copy of a (source, id) decides every repeat of it, in a batch and
// in a group of single events; only a key with nothing stored is decided by the batch's first valid event. Checked by
// property on both paths, by example, and under a writer storing a key between the check and the insert. Then the
// counting: every receipt of a batch, a retry too, is counted by outcome once in the metrics and the dashboard.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { countStatuses, ingestBatch, usageBatchId, type EventOutcome, type EventStatus } from '../../src/ingest/service.js';
import { GroupCommitter } from '../../src/ingest/group-commit.js';
import { queryUsage, recountUsage } from '../../src/meter/usage.js';
import { Decimal } from '../../src/domain/money.js';
import { buildServer } from '../../src/api/server.js';
import { testKey } from '../support/keys.js';

const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
const NOW = new Date('2026-11-20T00:00:00Z');
const opts = { channel: 'http' as const, now: NOW };
const NOV = { customer: 'acme', meter: 'storage_gb_hours', from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z' };

let store: Store;
let catalog: CatalogVersion;

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, NORTHWIND, { by: 'test' })).ok);
  catalog = (await currentCatalog(store.pool))!;
});
after(() => store.close());

/** The contents an event of a key can carry: three valid ones, and two the catalog does not know (quarantined). */
type Variant = 'a' | 'b' | 'c' | 'qs' | 'qt';
const GB: Record<'a' | 'b' | 'c', string> = { a: '1.5', b: '2.5', c: '3.5' };
const isValid = (v: Variant): v is 'a' | 'b' | 'c' => v in GB;

function storage(source: string, id: string, gbHours: string, overrides: Record<string, unknown> = {}) {
  return {
    specversion: '1.0',
    id,
    source,
    type: 'com.northwind.storage.usage',
    subject: 'acme-prod',
    time: '2026-11-03T10:00:00Z',
    data: { gb_hours: gbHours },
    ...overrides,
  };
}

function raw(source: string, id: string, v: Variant) {
  if (v === 'qs') return storage(source, id, '1.5', { subject: 'nobody-we-know' });
  if (v === 'qt') return storage(source, id, '1.5', { type: 'com.northwind.unknown' });
  return storage(source, id, GB[v]);
}

/** The content hash ingestion gives an event: SHA-256 of its RFC 8785 canonical JSON. */
const hashOf = (event: unknown) => createHash('sha256').update(canonicalize(event)!).digest('hex');

type Verdict = { status: EventStatus; against?: Variant };

/**
 * The model. Per key: the stored copy decides when there is one; else the batch's first valid event, which is
 * accepted. Every other event is a duplicate when its content is the deciding one's, else a conflict against it.
 * With nothing to decide (nothing stored, no valid event), every event of the key is quarantined.
 */
function model(stored: ReadonlyArray<Variant | undefined>, batch: ReadonlyArray<{ key: number; v: Variant }>): Verdict[] {
  const deciding: Array<Variant | undefined> = stored.map((s) => (s !== undefined && isValid(s) ? s : undefined));
  const storedValid = deciding.map((d) => d !== undefined);
  const firstValid = new Map<number, number>();
  batch.forEach(({ key, v }, i) => {
    if (isValid(v) && !firstValid.has(key)) firstValid.set(key, i);
  });
  for (const [key, i] of firstValid) deciding[key] ??= batch[i]!.v;
  return batch.map(({ key, v }, i) => {
    const d = deciding[key];
    if (d === undefined) return { status: 'quarantined' };
    if (!storedValid[key] && firstValid.get(key) === i) return { status: 'accepted' };
    return v === d ? { status: 'duplicate' } : { status: 'conflict', against: d };
  });
}

async function usageTotal(): Promise<Decimal> {
  const rollups = await queryUsage(store.pool, catalog.catalog, NOV);
  const recount = await recountUsage(store.pool, catalog.catalog, NOV);
  assert.ok(rollups.ok && recount.ok);
  assert.deepEqual(rollups.value, recount.value, 'the rollups agree with a recount of the stored events');
  return rollups.value.reduce((sum, row) => sum.plus(row.quantity), new Decimal(0));
}

/** Writes a batch of events; answers each event's verdict and the batch id(s) it was written under. */
type Path = (events: unknown[]) => Promise<{ results: EventOutcome[]; batchIds: string[] }>;

const batchPath: Path = async (events) => {
  const outcome = await ingestBatch(store.pool, catalog, events, opts);
  return { results: outcome.results, batchIds: [outcome.batch_id] };
};

// Concurrent single events, all in one group commit: the group closes when its last event arrives, never on a timer.
const groupPath: Path = async (events) => {
  const committer = new GroupCommitter(store.pool, { lingerMs: 600_000, groupEventsMax: events.length });
  const submitted = await Promise.all(events.map((event) => committer.submit(catalog, event, opts)));
  assert.equal(committer.stats().groups_committed, 1, 'one commit for the whole group');
  return {
    results: submitted.map((s, index) =>
      s.status === 'committed' ? { ...s.result, index } : assert.fail(`not committed: ${JSON.stringify(s)}`),
    ),
    batchIds: [...new Set(submitted.map((s) => (s.status === 'committed' ? s.batch_id : '')))],
  };
};

let run = 0;

/** One scenario: some keys stored first (or quarantined first), then a batch of repeats, checked against the model. */
async function check(
  path: Path,
  name: string,
  stored: ReadonlyArray<Variant | undefined>,
  batch: ReadonlyArray<{ key: number; v: Variant }>,
): Promise<void> {
  const source = `//verdicts/${name}/${(run += 1)}`;
  const id = (key: number) => `k${key}`;
  const totalBefore = await usageTotal();
  const earlier = stored.flatMap((v, key) => (v === undefined ? [] : [raw(source, id(key), v)]));
  if (earlier.length > 0) {
    const first = await ingestBatch(store.pool, catalog, earlier, opts);
    assert.deepEqual(
      first.results.map((r) => r.status),
      stored.flatMap((v) => (v === undefined ? [] : [isValid(v) ? 'accepted' : 'quarantined'])),
    );
  }
  const events = batch.map(({ key, v }) => raw(source, id(key), v));
  // The batch's id is its content's: a batch repeating the earlier one exactly is a repeat of it, a receipt of its own.
  const batchId = usageBatchId(events.map((e) => ({ source: e.source, id: e.id, hash: hashOf(e) })));
  const receipts = async () =>
    (
      await store.pool.query<Record<string, number>>(
        `SELECT count(*)::int AS receipts, coalesce(sum(received), 0)::int AS received, coalesce(sum(accepted), 0)::int AS accepted,
                coalesce(sum(duplicates), 0)::int AS duplicate, coalesce(sum(conflicts), 0)::int AS conflict,
                coalesce(sum(rejected), 0)::int AS rejected, coalesce(sum(quarantined), 0)::int AS quarantined
           FROM ingest_receipts WHERE batch_id = $1`,
        [batchId],
      )
    ).rows[0]!;
  const receiptsBefore = await receipts();
  const { results, batchIds } = await path(events);
  const expected = model(stored, batch);

  // Each verdict as the model says; a conflict names the id.
  assert.deepEqual(
    results.map((r) => r.status),
    expected.map((e) => e.status),
    `verdicts of ${JSON.stringify({ stored, batch })}`,
  );
  results.forEach((r, i) => {
    assert.equal(r.index, i);
    assert.equal(r.id, id(batch[i]!.key));
    if (r.status === 'conflict') assert.equal(r.problems?.[0]?.path, 'id');
  });

  // The stored event of each key is the one the model says decides it, and nothing else is stored.
  const deciding = new Map<string, Variant>();
  stored.forEach((v, key) => v !== undefined && isValid(v) && deciding.set(id(key), v));
  batch.forEach(({ key, v }) => isValid(v) && !deciding.has(id(key)) && deciding.set(id(key), v));
  const rows = (
    await store.pool.query<{ id: string; content_hash: string; gb: string }>(
      "SELECT id, content_hash, data->>'gb_hours' AS gb FROM events WHERE source = $1 ORDER BY id",
      [source],
    )
  ).rows;
  assert.deepEqual(
    rows,
    [...deciding]
      .sort(([x], [y]) => (x < y ? -1 : 1))
      .map(([key, v]) => ({ id: key, content_hash: hashOf(raw(source, key, v)), gb: GB[v as 'a'] })),
  );

  // Conflicts: each distinct content once, each naming the hash stored for its key.
  const conflicts = (
    await store.pool.query<{ id: string; content_hash: string; existing_hash: string; stored_hash: string | null }>(
      `SELECT c.id, c.content_hash, c.existing_hash, e.content_hash AS stored_hash
         FROM event_conflicts c LEFT JOIN events e ON e.source = c.source AND e.id = c.id WHERE c.source = $1`,
      [source],
    )
  ).rows;
  for (const c of conflicts) assert.equal(c.existing_hash, c.stored_hash, `conflict ${c.id} names the stored hash`);
  const conflictKeys = (list: Array<{ id: string; content_hash: string }>) =>
    [...new Set(list.map((c) => `${c.id} ${c.content_hash}`))].sort();
  assert.deepEqual(
    conflictKeys(conflicts),
    conflictKeys(
      batch.flatMap(({ key, v }, i) =>
        expected[i]!.status === 'conflict' ? [{ id: id(key), content_hash: hashOf(raw(source, id(key), v)) }] : [],
      ),
    ),
  );

  // Quarantine: each distinct quarantined content once, from before or from this batch.
  const parked = (
    await store.pool.query<{ id: string; content_hash: string }>('SELECT id, content_hash FROM quarantine WHERE source = $1', [source])
  ).rows;
  const parkedBefore = stored.flatMap((v, key) =>
    v !== undefined && !isValid(v) ? [{ id: id(key), content_hash: hashOf(raw(source, id(key), v)) }] : [],
  );
  const parkedNow = batch.flatMap(({ key, v }, i) =>
    expected[i]!.status === 'quarantined' ? [{ id: id(key), content_hash: hashOf(raw(source, id(key), v)) }] : [],
  );
  assert.deepEqual(conflictKeys(parked), conflictKeys([...parkedBefore, ...parkedNow]));

  // The batch's receipt counts what was answered.
  assert.deepEqual(batchIds, [batchId]);
  const receiptsAfter = await receipts();
  const delta = Object.fromEntries(Object.keys(receiptsAfter).map((k) => [k, receiptsAfter[k]! - receiptsBefore[k]!]));
  assert.deepEqual(delta, { receipts: 1, received: batch.length, ...countStatuses(results) });

  // Usage: what the stored events say, duplicates and conflicts adding nothing.
  const added = [...deciding.values()].reduce((sum, v) => sum.plus(GB[v as 'a']), new Decimal(0));
  assert.equal((await usageTotal()).minus(totalBefore).toString(), added.toString());
}

const VARIANTS: Variant[] = ['a', 'b', 'c', 'a', 'b', 'qs', 'qt']; // valid contents drawn more often than quarantined ones
const scenario = fc.integer({ min: 1, max: 3 }).chain((keys) =>
  fc.record({
    stored: fc.array(fc.option(fc.constantFrom(...VARIANTS), { nil: undefined, freq: 2 }), { minLength: keys, maxLength: keys }),
    batch: fc.array(fc.record({ key: fc.integer({ min: 0, max: keys - 1 }), v: fc.constantFrom(...VARIANTS) }), {
      minLength: 1,
      maxLength: 8,
    }),
  }),
);

describe('dedup verdicts: the stored copy decides first', () => {
  it('a batch repeating a stored key: [1.5, 1.5, 2.5] against a stored 2.5 is conflict, conflict, duplicate', async () => {
    await check(
      batchPath,
      'example',
      ['b'],
      [
        { key: 0, v: 'a' },
        { key: 0, v: 'a' },
        { key: 0, v: 'b' },
      ],
    );
  });

  it('concurrent single events in one group commit: 20 × A and 20 × B with B stored are 20 conflicts and 20 duplicates', async () => {
    // i -> 7i mod 40 is a permutation: 20 of each, irregularly interleaved.
    const interleaved = Array.from({ length: 40 }, (_, i) => ({ key: 0, v: ((i * 7) % 40 < 20 ? 'a' : 'b') as Variant }));
    assert.equal(interleaved.filter((e) => e.v === 'a').length, 20);
    await check(groupPath, 'example-group', ['b'], interleaved);
  });

  it('matches the model on the batch path (property)', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, ({ stored, batch }) => check(batchPath, 'batch', stored, batch)),
      { numRuns: 60 },
    );
  });

  it('matches the model on the group-commit path (property)', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, ({ stored, batch }) => check(groupPath, 'group', stored, batch)),
      { numRuns: 60 },
    );
  });
});

describe('dedup verdicts: a writer storing a key between the check and the insert', () => {
  // A batch with a repeat inside is written in a transaction that reads the stored copies first. Another writer whose
  // transaction is still open is not seen by that read; once it commits, its copy decides, and the batch is judged again.
  it('judges every occurrence against the copy the other writer stored, not the one the batch would have stored', async () => {
    const source = '//verdicts/race';
    const theirs = storage(source, 'r1', GB.b);
    const holder = await store.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(
        "INSERT INTO ingest_batches (id, channel, received, accepted, duplicates, conflicts, rejected, quarantined) VALUES ('ub:verdicts-race', 'file', 1, 1, 0, 0, 0, 0)",
      );
      await holder.query(
        `INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late)
         VALUES ($1, 'r1', 'com.northwind.storage.usage', 'acme-prod', 'acme', '2026-11-03T10:00:00Z', $2, '{"storage_gb_hours":"2.5"}', '{}', $3, 'ub:verdicts-race', false)`,
        [source, JSON.stringify(theirs.data), hashOf(theirs)],
      );
      const totalBefore = await usageTotal();
      // r1 with 1.5 first, then with 2.5 (the other writer's content), and r2 new.
      const pending = ingestBatch(
        store.pool,
        catalog,
        [storage(source, 'r1', GB.a), storage(source, 'r1', GB.b), storage(source, 'r2', GB.c)],
        opts,
      );
      for (let waited = 0; ; waited += 10) {
        const blocked = await store.pool.query(
          "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%WITH input%' AND datname = current_database()",
        );
        if (blocked.rowCount) break;
        assert.ok(waited < 10_000, 'the batch never waited on the key held by the open transaction');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await holder.query('COMMIT');
      const outcome = await pending;
      assert.deepEqual(
        outcome.results.map((r) => [r.id, r.status]),
        [
          ['r1', 'conflict'],
          ['r1', 'duplicate'],
          ['r2', 'accepted'],
        ],
      );
      const conflicts = await store.pool.query('SELECT id, content_hash, existing_hash FROM event_conflicts WHERE source = $1', [source]);
      assert.deepEqual(conflicts.rows, [{ id: 'r1', content_hash: hashOf(storage(source, 'r1', GB.a)), existing_hash: hashOf(theirs) }]);
      const batch = await store.pool.query('SELECT received, accepted, duplicates, conflicts, repeats FROM ingest_batches WHERE id = $1', [
        outcome.batch_id,
      ]);
      assert.deepEqual(batch.rows, [{ received: 3, accepted: 1, duplicates: 1, conflicts: 1, repeats: 0 }]);
      const events = await store.pool.query("SELECT id, data->>'gb_hours' AS gb FROM events WHERE source = $1 ORDER BY id", [source]);
      assert.deepEqual(events.rows, [
        { id: 'r1', gb: '2.5' },
        { id: 'r2', gb: '3.5' },
      ]);
      assert.equal((await usageTotal()).minus(totalBefore).toString(), '6', "the other writer's 2.5 and r2's 3.5");
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
  });
});

describe('dedup verdicts: a key stored and committed after the read, before the insert', () => {
  // Here the other writer has committed before the batch's events' statement starts: that statement finds the key
  // stored, writes nothing, and the batch is judged again. The batch is held between its read and its insert by a
  // third transaction holding the very conflict row it is about to write.
  it('rolls back what it judged against its own copy and judges again against the stored one', async () => {
    const source = '//verdicts/race-committed';
    const mine = storage(source, 'c1', GB.a);
    const theirs = storage(source, 'c1', GB.b);
    const holder = await store.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(
        `INSERT INTO event_conflicts (source, id, content_hash, existing_hash, event, batch_id) VALUES ($1, 'c1', $2, $3, '{}', 'ub:held')`,
        [source, hashOf(theirs), hashOf(mine)],
      );
      const pending = ingestBatch(store.pool, catalog, [mine, theirs], opts);
      for (let waited = 0; ; waited += 10) {
        const blocked = await store.pool.query(
          "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO event_conflicts%' AND datname = current_database()",
        );
        if (blocked.rowCount) break;
        assert.ok(waited < 10_000, 'the batch never waited on the conflict row held by the open transaction');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // The batch has read c1 as free and judged [1.5, 2.5] as accepted, conflict; now another writer stores 2.5.
      assert.equal((await ingestBatch(store.pool, catalog, [theirs], { ...opts, channel: 'file' })).results[0]!.status, 'accepted');
      await holder.query('ROLLBACK');
      const outcome = await pending;
      assert.deepEqual(
        outcome.results.map((r) => r.status),
        ['conflict', 'duplicate'],
      );
      const conflicts = await store.pool.query('SELECT content_hash, existing_hash FROM event_conflicts WHERE source = $1', [source]);
      assert.deepEqual(conflicts.rows, [{ content_hash: hashOf(mine), existing_hash: hashOf(theirs) }]);
      const events = await store.pool.query("SELECT id, data->>'gb_hours' AS gb FROM events WHERE source = $1", [source]);
      assert.deepEqual(events.rows, [{ id: 'c1', gb: '2.5' }]);
      const record = await store.pool.query('SELECT received, accepted, duplicates, conflicts FROM ingest_batches WHERE id = $1', [
        outcome.batch_id,
      ]);
      assert.deepEqual(record.rows, [{ received: 2, accepted: 0, duplicates: 1, conflicts: 1 }]);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
  });
});

describe('ingest outcomes: every receipt counted once', () => {
  let app: FastifyInstance;
  let ingestKey: string;
  let readKey: string;
  before(async () => {
    app = await buildServer({ pool: store.pool });
    ingestKey = (await testKey(store.pool, { name: 'ingest', roles: ['ingest'] })).secret;
    readKey = (await testKey(store.pool, { name: 'read', roles: ['auditor'] })).secret;
  });
  after(() => app.close());

  const post = (body: unknown, type: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { authorization: `Bearer ${ingestKey}`, 'content-type': type },
      payload: JSON.stringify(body),
    });
  async function counted() {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const metric = Object.fromEntries(
      (['accepted', 'duplicate', 'conflict', 'rejected', 'quarantined'] as const).map((outcome) => {
        const line = text.split('\n').find((l) => l.startsWith(`accrue_events_received_total{outcome="${outcome}"} `));
        return [outcome, line === undefined ? 0 : Number(line.split(' ')[1])];
      }),
    );
    const pipeline = await app.inject({
      method: 'GET',
      url: '/v1/dashboard/pipeline?hours=1',
      headers: { authorization: `Bearer ${readKey}` },
    });
    assert.equal(pipeline.statusCode, 200);
    return { metric, dashboard: pipeline.json().ingestion.totals as Record<string, number> };
  }
  function assertCounted(
    before: Awaited<ReturnType<typeof counted>>,
    now: Awaited<ReturnType<typeof counted>>,
    counts: Record<EventStatus, number>,
    receipts: number,
  ) {
    const received = Object.values(counts).reduce((s, n) => s + n, 0);
    for (const status of Object.keys(counts) as EventStatus[])
      assert.equal(now.metric[status]! - before.metric[status]!, counts[status], `metric ${status}`);
    const plural: Record<EventStatus, string> = {
      accepted: 'accepted',
      duplicate: 'duplicates',
      conflict: 'conflicts',
      rejected: 'rejected',
      quarantined: 'quarantined',
    };
    for (const status of Object.keys(counts) as EventStatus[])
      assert.equal(now.dashboard[plural[status]]! - before.dashboard[plural[status]]!, counts[status], `dashboard ${status}`);
    assert.equal(now.dashboard.received! - before.dashboard.received!, received, 'dashboard received');
    assert.equal(now.dashboard.batches! - before.dashboard.batches!, receipts, 'dashboard batches (receipts)');
  }

  it('counts an identical repeat of a batch as a new receipt of duplicates, and keeps its batch id', async () => {
    const source = '//verdicts/retry';
    const batch = [
      storage(source, 'x1', '1'),
      storage(source, 'x2', '2'),
      storage(source, 'x1', '1'), // duplicate inside the batch
      storage(source, 'x3', 'NaN'), // rejected
      storage(source, 'x4', '1', { subject: 'nobody-we-know' }), // quarantined
    ];
    const start = await counted();
    const first = await post(batch, 'application/cloudevents-batch+json');
    assert.equal(first.statusCode, 200);
    assert.deepEqual(first.json().counts, { accepted: 2, duplicate: 1, conflict: 0, rejected: 1, quarantined: 1 });
    const afterFirst = await counted();
    assertCounted(start, afterFirst, first.json().counts, 1);

    const again = await post(batch, 'application/cloudevents-batch+json');
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().batch_id, first.json().batch_id, 'the usage batch id is the content: the same batch, the same id');
    assert.deepEqual(again.json().counts, { accepted: 0, duplicate: 3, conflict: 0, rejected: 1, quarantined: 1 });
    assertCounted(afterFirst, await counted(), again.json().counts, 1);

    // The batch record keeps the first receipt's verdicts and counts the repeat; the repeat has a record of its own.
    const record = await store.pool.query('SELECT accepted, duplicates, repeats FROM ingest_batches WHERE id = $1', [
      first.json().batch_id,
    ]);
    assert.deepEqual(record.rows, [{ accepted: 2, duplicates: 1, repeats: 1 }]);
    const receipts = await store.pool.query(
      'SELECT received, accepted, duplicates, rejected, quarantined FROM ingest_receipts WHERE batch_id = $1 ORDER BY received_at, accepted DESC',
      [first.json().batch_id],
    );
    assert.deepEqual(receipts.rows, [
      { received: 5, accepted: 2, duplicates: 1, rejected: 1, quarantined: 1 },
      { received: 5, accepted: 0, duplicates: 3, rejected: 1, quarantined: 1 },
    ]);
  });

  it('counts the retry of a single event (its own group commit, the same batch id) as a duplicate', async () => {
    const event = storage('//verdicts/retry-single', 's1', '4');
    const start = await counted();
    const first = await post(event, 'application/cloudevents+json');
    assert.equal(first.statusCode, 200);
    const afterFirst = await counted();
    assertCounted(start, afterFirst, { accepted: 1, duplicate: 0, conflict: 0, rejected: 0, quarantined: 0 }, 1);
    const again = await post(event, 'application/cloudevents+json');
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().results[0].status, 'duplicate');
    assert.equal(again.json().batch_id, first.json().batch_id);
    assertCounted(afterFirst, await counted(), { accepted: 0, duplicate: 1, conflict: 0, rejected: 0, quarantined: 0 }, 1);
  });

  it('counts what a repeat accepts: a quarantined event sent again once the catalog knows its tenant', async () => {
    const source = '//verdicts/retry-later';
    const batch = [storage(source, 'q1', '5', { subject: 'acme-eu' }), storage(source, 'q2', '1')];
    const first = await ingestBatch(store.pool, catalog, batch, opts);
    assert.deepEqual(first.counts, { accepted: 1, duplicate: 0, conflict: 0, rejected: 0, quarantined: 1 });
    const extended = NORTHWIND.replace('tenants: [acme-prod, acme-staging]', 'tenants: [acme-prod, acme-staging, acme-eu]');
    assert.ok((await applyCatalog(store.pool, extended, { by: 'test' })).ok);
    try {
      const newer = (await currentCatalog(store.pool))!;
      const start = await counted();
      const again = await ingestBatch(store.pool, newer, batch, opts);
      assert.equal(again.batch_id, first.batch_id);
      assert.deepEqual(again.counts, { accepted: 1, duplicate: 1, conflict: 0, rejected: 0, quarantined: 0 });
      assertCounted(start, await counted(), again.counts, 1);
      const q1 = await store.pool.query('SELECT batch_id FROM events WHERE source = $1 AND id = $2', [source, 'q1']);
      assert.deepEqual(q1.rows, [{ batch_id: first.batch_id }]);
    } finally {
      assert.ok((await applyCatalog(store.pool, NORTHWIND, { by: 'test' })).ok);
    }
  });
});
