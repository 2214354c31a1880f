// Group commit of single-event requests: the same verdicts as one transaction per request, answered after the commit,
// and a bounded queue that answers 429 with Retry-After instead of growing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch, type EventOutcome } from '../../src/ingest/service.js';
import { GroupCommitter, type IngestPort } from '../../src/ingest/group-commit.js';
import { buildServer } from '../../src/api/server.js';
import { testKey } from '../support/keys.js';

let store: Store;
let catalog: CatalogVersion;
let key: string;
const NOW = new Date('2026-11-20T00:00:00Z');
const opts = { channel: 'http' as const, now: NOW };

const event = (source: string, id: string, overrides: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id,
  source,
  type: 'com.northwind.api.request',
  subject: 'acme-prod',
  time: '2026-11-03T10:00:00Z',
  data: { region: 'us-east-1' },
  ...overrides,
});

/** Every kind of verdict, some decided inside the group (a repeat of an earlier event of the same group). */
const mixed = (source: string) => [
  event(source, 'a'),
  event(source, 'b'),
  event(source, 'a'), // duplicate of the group's own first event
  event(source, 'a', { data: { region: 'eu-west-1' } }), // conflict with it
  event(source, 'c', { time: 'not a time' }), // rejected
  event(source, 'd', { subject: 'nobody-we-know' }), // quarantined
  event(source, 'pre'), // duplicate of an event stored before
  event(source, 'pre-2', { data: { region: 'eu-west-1' } }), // conflict with one stored before
  event(source, 'b', { type: 'com.northwind.unknown' }), // quarantined shape, judged against b: conflict
  event(source, 'e'),
];

// Verdicts compared across sources: the source's name is the only allowed difference.
const normalize = (results: EventOutcome[], source: string) =>
  JSON.parse(JSON.stringify(results.map((r) => ({ ...r, index: 0 }))).replaceAll(JSON.stringify(source).slice(1, -1), 'SRC'));

const auth = () => ({ authorization: `Bearer ${key}` });
const post = (app: FastifyInstance, body: unknown) =>
  app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { ...auth(), 'content-type': 'application/cloudevents+json' },
    payload: JSON.stringify(body),
  });

async function stored(source: string): Promise<string[]> {
  return (await store.pool.query<{ id: string }>('SELECT id FROM events WHERE source = $1 ORDER BY id', [source])).rows.map((r) => r.id);
}

/** An ingest port whose commits wait for open(): the database "lagging" on demand. */
function gated() {
  let release: () => void = () => {};
  let gate = new Promise<void>((resolve) => (release = resolve));
  const calls: number[] = [];
  const ingest: IngestPort = async (pool, cat, raws, options) => {
    calls.push(raws.length);
    await gate;
    return ingestBatch(pool, cat, raws, options);
  };
  return {
    ingest,
    calls,
    open: () => release(),
    close: () => (gate = new Promise<void>((resolve) => (release = resolve))),
  };
}

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
  assert.ok(applied.ok);
  catalog = (await currentCatalog(store.pool))!;
  key = (await testKey(store.pool, { name: 'ingest', roles: ['ingest'] })).secret;
});
after(async () => {
  await store.close();
});

describe('group commit: verdicts', () => {
  it('gives every event of one group the verdict one transaction per event gives, in the same order', async () => {
    for (const source of ['//direct', '//grouped'])
      await ingestBatch(store.pool, catalog, [event(source, 'pre'), event(source, 'pre-2')], opts);
    const direct: EventOutcome[] = [];
    for (const raw of mixed('//direct')) direct.push((await ingestBatch(store.pool, catalog, [raw], opts)).results[0]!);
    const committer = new GroupCommitter(store.pool, { lingerMs: 50 });
    const grouped = await Promise.all(mixed('//grouped').map((raw) => committer.submit(catalog, raw, opts)));
    assert.equal(committer.stats().groups_committed, 1, 'ten requests, one commit');
    const results = grouped.map((g) => (assert.equal(g.status, 'committed'), g.status === 'committed' ? g.result : undefined!));
    assert.deepEqual(new Set(grouped.map((g) => g.status === 'committed' && g.batch_id)).size, 1);
    assert.deepEqual(normalize(results, '//grouped'), normalize(direct, '//direct'));
    // By hand: what each verdict must be.
    assert.deepEqual(
      results.map((r) => r.status),
      ['accepted', 'accepted', 'duplicate', 'conflict', 'rejected', 'quarantined', 'duplicate', 'conflict', 'conflict', 'accepted'],
    );
    assert.deepEqual(await stored('//grouped'), ['a', 'b', 'e', 'pre', 'pre-2']);
    const conflicts = await store.pool.query("SELECT count(*)::int AS n FROM event_conflicts WHERE source = '//grouped'");
    const conflictsDirect = await store.pool.query("SELECT count(*)::int AS n FROM event_conflicts WHERE source = '//direct'");
    assert.equal(conflicts.rows[0].n, conflictsDirect.rows[0].n, 'conflicts recorded as the direct path records them');
  });

  it('answers the same HTTP statuses and bodies as the per-request path, and requests share a commit', async () => {
    const direct = await buildServer({ pool: store.pool, groupCommit: false });
    const grouped = await buildServer({ pool: store.pool, groupCommit: { lingerMs: 200 } }); // long enough for the six to meet on a busy machine
    try {
      // Order-independent cases only: requests in flight together have no order between them.
      const cases = (source: string) => [
        event(source, 'h1'),
        event(source, 'h2'),
        event(source, 'h3', { time: 'not a time' }),
        event(source, 'h4', { subject: 'nobody-we-know' }),
        event(source, 'pre'),
        event(source, 'pre-2', { data: { region: 'ap-south-1' } }),
      ];
      for (const source of ['//http-direct', '//http-grouped'])
        await ingestBatch(store.pool, catalog, [event(source, 'pre'), event(source, 'pre-2')], opts);
      const a: Array<Awaited<ReturnType<typeof post>>> = [];
      for (const body of cases('//http-direct')) a.push(await post(direct, body));
      const b = await Promise.all(cases('//http-grouped').map((body) => post(grouped, body)));
      assert.deepEqual(
        b.map((r) => r.statusCode),
        [200, 200, 400, 202, 200, 409],
      );
      assert.deepEqual(
        b.map((r) => r.statusCode),
        a.map((r) => r.statusCode),
      );
      const strip = (body: string, source: string) => {
        const parsed = JSON.parse(body.replaceAll(JSON.stringify(source).slice(1, -1), 'SRC'));
        delete parsed.batch_id; // the batch is the group's: several requests, one batch id
        return parsed;
      };
      b.forEach((res, i) => assert.deepEqual(strip(res.body, '//http-grouped'), strip(a[i]!.body, '//http-direct'), `request ${i}`));
      const ok = b.filter((r) => r.statusCode === 200);
      const batchIds = new Set(ok.map((r) => JSON.parse(r.body).batch_id));
      assert.ok(batchIds.size < ok.length, `requests shared a commit: ${ok.length} answers, ${batchIds.size} batches`);
      assert.deepEqual(await stored('//http-grouped'), ['h1', 'h2', 'pre', 'pre-2']);
    } finally {
      await direct.close();
      await grouped.close();
    }
  });
});

describe('group commit: backpressure', () => {
  it('turns the event past the queued-events bound away, then the one past the age bound; Retry-After at least 1 s', async () => {
    let now = 1_000_000;
    const port = gated();
    const committer = new GroupCommitter(store.pool, {
      lingerMs: 0,
      commitsInFlightMax: 1,
      queuedEventsMax: 3,
      queueAgeMsMax: 500,
      ingest: port.ingest,
      now: () => now,
    });
    const first = committer.submit(catalog, event('//bound', 'q0'), opts);
    while (port.calls.length === 0) await new Promise((r) => setTimeout(r, 1));
    const queued = [1, 2, 3].map((i) => committer.submit(catalog, event('//bound', `q${i}`), opts));
    assert.deepEqual(committer.stats(), {
      queued_events: 3,
      queued_bytes: 0,
      in_flight_events: 1,
      oldest_queued_ms: 0,
      groups_committed: 0,
      events_committed: 0,
      overloaded: 0,
    });
    const refused = await committer.submit(catalog, event('//bound', 'q4'), opts);
    assert.equal(refused.status, 'overloaded');
    assert.ok(refused.status === 'overloaded' && refused.reason === 'queued_events' && refused.retry_after_seconds >= 1);
    port.open();
    assert.equal((await first).status, 'committed');
    for (const q of await Promise.all(queued)) assert.ok(q.status === 'committed' && q.result.status === 'accepted');
    assert.deepEqual(port.calls, [1, 3], 'the three that queued behind the first commit went in one group');
    // The age bound: one event waits behind a stuck commit longer than 500 ms.
    port.close();
    const stuck = committer.submit(catalog, event('//bound', 'r0'), opts);
    while (port.calls.length === 2) await new Promise((r) => setTimeout(r, 1));
    const waiting = committer.submit(catalog, event('//bound', 'r1'), opts);
    now += 501;
    const late = await committer.submit(catalog, event('//bound', 'r2'), opts);
    assert.ok(late.status === 'overloaded' && late.reason === 'queue_age', JSON.stringify(late));
    port.open();
    assert.equal((await stuck).status, 'committed');
    assert.equal((await waiting).status, 'committed');
    await committer.drain();
    assert.deepEqual(
      await stored('//bound'),
      ['q0', 'q1', 'q2', 'q3', 'r0', 'r1'],
      'what was answered committed is stored; what was turned away is not',
    );
    assert.equal(committer.stats().overloaded, 2);
  });

  it('answers 429 with Retry-After over HTTP while the database lags, loses nothing it acknowledged, and takes the retries', async () => {
    const port = gated();
    const app = await buildServer({
      pool: store.pool,
      groupCommit: { lingerMs: 0, commitsInFlightMax: 1, queuedEventsMax: 5, ingest: port.ingest },
    });
    try {
      const pending: Array<{ id: string; reply: ReturnType<typeof post> }> = [];
      let turnedAway: Awaited<ReturnType<typeof post>> | undefined;
      const answered = new Map<string, number>();
      for (let i = 0; i < 40 && !turnedAway; i++) {
        const id = `l${String(i).padStart(2, '0')}`;
        const reply = post(app, event('//lag', id));
        reply.then((r) => answered.set(id, r.statusCode));
        pending.push({ id, reply });
        await new Promise((r) => setTimeout(r, 15));
        for (const p of pending) if (answered.get(p.id) === 429) turnedAway = await p.reply;
      }
      assert.ok(turnedAway, 'a request was turned away while the commit was stuck');
      assert.match(String(turnedAway.headers['content-type']), /^application\/problem\+json/);
      assert.ok(Number(turnedAway.headers['retry-after']) >= 1, `Retry-After: ${turnedAway.headers['retry-after']}`);
      const problem = JSON.parse(turnedAway.body);
      assert.equal(problem.status, 429);
      assert.equal(problem.reason, 'queued_events');
      for (const p of pending.slice(0, 6))
        assert.equal(answered.has(p.id), false, `${p.id}: one in flight and five queued wait for their commit, unanswered`);
      port.open();
      const replies = await Promise.all(pending.map(async (p) => ({ id: p.id, res: await p.reply })));
      const acknowledged = replies.filter((r) => r.res.statusCode === 200).map((r) => r.id);
      const refused = replies.filter((r) => r.res.statusCode === 429).map((r) => r.id);
      assert.equal(acknowledged.length + refused.length, replies.length);
      assert.deepEqual(
        acknowledged.slice(0, 6),
        pending.slice(0, 6).map((p) => p.id),
        'the six that waited were committed',
      );
      assert.ok(refused.length >= 1);
      assert.deepEqual(await stored('//lag'), acknowledged.sort(), 'every acknowledged event is stored, no refused one is');
      for (const id of refused)
        assert.equal((await post(app, event('//lag', id))).statusCode, 200, 'the retry is taken once the lag is gone');
      assert.deepEqual(await stored('//lag'), replies.map((r) => r.id).sort());
    } finally {
      port.open();
      await app.close();
    }
  });

  it('under 64 concurrent clients with a small bound, every acknowledged event is stored once and every refused one can be retried', async () => {
    const app = await buildServer({ pool: store.pool, groupCommit: { queuedEventsMax: 16, commitsInFlightMax: 2 } });
    try {
      const ids = Array.from({ length: 640 }, (_, i) => `c${i}`);
      let next = 0;
      const client = async () => {
        while (next < ids.length) {
          const id = ids[next++]!;
          for (;;) {
            const res = await post(app, event('//load', id));
            if (res.statusCode === 200) break;
            assert.equal(res.statusCode, 429, res.body);
            await new Promise((r) => setTimeout(r, 5)); // a real client waits Retry-After; the test only needs order
          }
        }
      };
      await Promise.all(Array.from({ length: 64 }, client));
      const rows = await store.pool.query("SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM events WHERE source = '//load'");
      assert.deepEqual(rows.rows[0], { n: 640, d: 640 });
    } finally {
      await app.close();
    }
  });
});

describe('group commit: the catalog in force', () => {
  it('reads the head once, not per group, and validates against a version applied since', async () => {
    const source = '//group/head';
    let headReads = 0;
    // The pool as the committer sees it, counting its reads of the catalog head.
    const pool = new Proxy(store.pool, {
      get(target, property) {
        if (property === 'query') {
          return (...args: Parameters<typeof target.query>) => {
            if (String(args[0]).includes('ORDER BY version DESC')) headReads += 1;
            return (target.query as (...a: unknown[]) => unknown)(...args);
          };
        }
        const value = Reflect.get(target, property) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const committer = new GroupCommitter(pool, { lingerMs: 0 });
    const verdict = async (id: string, subject: string) => {
      const submitted = await committer.submit('current', event(source, id, { subject }), opts);
      assert.equal(submitted.status, 'committed');
      return submitted.status === 'committed' ? submitted.result.status : undefined;
    };
    assert.equal(await verdict('h1', 'hooli'), 'quarantined'); // no customer has the tenant hooli yet
    assert.equal(await verdict('h2', 'acme-prod'), 'accepted');
    assert.equal(await verdict('h3', 'acme-prod'), 'accepted');
    assert.equal(headReads, 1);
    const applied = await applyCatalog(
      store.pool,
      readFileSync('examples/northwind/catalog.yaml', 'utf8').replace('tenants: [globex]', 'tenants: [globex, hooli]'),
      { by: 'test' },
    );
    assert.ok(applied.ok && applied.value.changed);
    try {
      assert.equal(await verdict('h4', 'hooli'), 'accepted');
      assert.equal(headReads, 2);
      const stored = await store.pool.query('SELECT id, customer_id FROM events WHERE source = $1 ORDER BY id', [source]);
      assert.deepEqual(stored.rows, [
        { id: 'h2', customer_id: 'acme' },
        { id: 'h3', customer_id: 'acme' },
        { id: 'h4', customer_id: 'globex' },
      ]);
    } finally {
      assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
      await committer.drain();
    }
  });
});
