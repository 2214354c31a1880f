// The rollups' watermark (migration 032, src/meter/catch-up.ts): ingestion stores events and the fold into the usage
// rollups catches up behind it. Every event is folded exactly once whatever runs at the same time (ingestion, other
// catch-ups, a fold that dies), a read never answers from rollups that do not reach what it reads, and the
// watermark only moves forward.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { generateUsage } from '../../src/demo/generate.js';
import { catchUpRollups, ensureRollupsReach, newestEventSeq, rollupWatermark, startRollupCatchUp } from '../../src/meter/catch-up.js';
import { queryUsage, recountUsage } from '../../src/meter/usage.js';

const NOW = new Date('2026-12-01T00:00:00Z');
const PERIOD = { from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z' };

let store: Store;
let catalog: CatalogVersion;

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
  assert.ok(applied.ok);
  catalog = (await currentCatalog(store.pool))!;
});
after(() => store.close());

const ORDER = 'ORDER BY grain, type, bucket, customer_id, meter_id, late, valued, dimensions';
const snapshot = async () => ({
  rollups: (await store.pool.query(`SELECT * FROM usage_rollups ${ORDER}`)).rows,
  keys: (
    await store.pool.query('SELECT * FROM usage_unique_keys ORDER BY grain, type, bucket, customer_id, meter_id, late, dimensions, key')
  ).rows,
});
const maxSeq = async () =>
  BigInt((await store.pool.query<{ m: string }>('SELECT coalesce(max(seq), 0)::text AS m FROM events')).rows[0]!.m);
/** The rollups as folded so far equal a rebuild from every stored event (which then leaves them as they were). */
async function assertFoldedOnce(): Promise<void> {
  const folded = await snapshot();
  await store.pool.query('SELECT usage_rollups_rebuild()');
  assert.deepEqual(folded, await snapshot(), 'the rollups folded batch by batch equal a rebuild from the events');
}
const events = (n: number, seed: number, prefix: string) =>
  [...generateUsage({ catalog: catalog.catalog, period: PERIOD, events: n, seed })].map((e) => ({ ...e, id: `${prefix}-${e.id}` }));

describe('usage rollups caught up from a watermark', () => {
  it('ingestion stores the events and leaves the fold to the catch-up, which folds each once', async () => {
    const before = await rollupWatermark(store.pool);
    const outcome = await ingestBatch(store.pool, catalog, events(400, 1, 'a'), { channel: 'http', now: NOW });
    assert.equal(outcome.counts.accepted, 400);
    assert.equal(await rollupWatermark(store.pool), before, 'the insert folded nothing');
    assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM usage_rollups')).rows[0].n, 0, 'no rollup row yet');
    const done = await catchUpRollups(store.pool);
    assert.equal(BigInt(done.watermark), await maxSeq());
    assert.ok(BigInt(done.advanced) >= 400n);
    assert.deepEqual(
      await catchUpRollups(store.pool),
      { watermark: done.watermark, advanced: '0', folds: 0 },
      'a second catch-up has nothing to fold',
    );
    await assertFoldedOnce();
  });

  it('a read catches up first: usage read right after ingestion equals the recount', async () => {
    await ingestBatch(store.pool, catalog, events(300, 2, 'b'), { channel: 'http', now: NOW });
    assert.ok((await rollupWatermark(store.pool)) < (await maxSeq()), 'the rollups are behind');
    const query = { from: PERIOD.from, to: PERIOD.to, late: 'include' as const };
    assert.deepEqual(await queryUsage(store.pool, catalog.catalog, query), await recountUsage(store.pool, catalog.catalog, query));
    assert.equal(await rollupWatermark(store.pool), await maxSeq(), 'the read caught the rollups up');
    // Inside a transaction a read cannot catch up (it needs the pool): it refuses rather than answer short.
    await ingestBatch(store.pool, catalog, events(10, 3, 'c'), { channel: 'http', now: NOW });
    const client = await store.pool.connect();
    try {
      await client.query('BEGIN');
      await assert.rejects(ensureRollupsReach(client), /catch them up/);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    await catchUpRollups(store.pool);
    await assertFoldedOnce();
  });

  it('property: ingestion and catch-ups running at once fold every event exactly once', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 3, maxLength: 10 }),
        fc.integer({ min: 1, max: 3 }),
        async (sizes, catchers) => {
          round += 1;
          let ingesting = true;
          const ingest = Promise.all(
            sizes.map((n, i) =>
              ingestBatch(store.pool, catalog, events(n, 100 * round + i, `p${round}-${i}`), { channel: 'http', now: NOW }),
            ),
          ).finally(() => (ingesting = false));
          const catchUps = Array.from({ length: catchers }, async () => {
            while (ingesting) await catchUpRollups(store.pool);
          });
          await Promise.all([ingest, ...catchUps]);
          await catchUpRollups(store.pool);
          assert.equal(await rollupWatermark(store.pool), await maxSeq());
          await assertFoldedOnce();
        },
      ),
      { numRuns: 16 },
    );
  });

  it('a catch-up waits for a batch in flight: an event that takes its seq first and commits last is folded', async () => {
    const batch = (await ingestBatch(store.pool, catalog, events(1, 8, 'h'), { channel: 'http', now: NOW })).batch_id;
    await catchUpRollups(store.pool);
    const slow = await store.pool.connect();
    try {
      // A writer takes its seq and has not committed yet...
      await slow.query('BEGIN');
      await slow.query(
        `INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id)
         VALUES ('//watermark-test', 'slow', 'com.northwind.api.request', 'acme-prod', 'acme', '2026-11-10T00:00:00Z', '{}', '{}',
                 '{"api_calls": {"region": "r"}}', md5('slow'), $1)`,
        [batch],
      );
      // ...while a later batch (higher seqs) commits, and a catch-up starts.
      await ingestBatch(store.pool, catalog, events(20, 7, 'g'), { channel: 'http', now: NOW });
      let finished = false;
      const catchUp = catchUpRollups(store.pool).finally(() => (finished = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(finished, false, 'the catch-up waits for the writer in flight rather than fold past its seq');
      await slow.query('COMMIT');
      await catchUp;
    } finally {
      slow.release();
    }
    assert.equal(await rollupWatermark(store.pool), await maxSeq());
    await assertFoldedOnce();
  });

  it('a fold that dies (its backend terminated, its transaction rolled back) folds nothing and moves nothing', async () => {
    await ingestBatch(store.pool, catalog, events(200, 4, 'd'), { channel: 'http', now: NOW });
    const mark = await rollupWatermark(store.pool);
    const before = await snapshot();
    const client = await store.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT usage_rollups_catch_up((SELECT max(seq) FROM events))');
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    assert.equal(await rollupWatermark(store.pool), mark);
    assert.deepEqual(await snapshot(), before);
    // Terminated in the middle of its transaction: the server rolls it back.
    const doomed = await store.pool.connect();
    doomed.on('error', () => {});
    const pid = (await doomed.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await doomed.query('BEGIN');
    await doomed.query('SELECT usage_rollups_catch_up((SELECT max(seq) FROM events))');
    await store.pool.query('SELECT pg_terminate_backend($1)', [pid]);
    doomed.release(true);
    assert.equal(await rollupWatermark(store.pool), mark);
    assert.deepEqual(await snapshot(), before);
    await catchUpRollups(store.pool);
    await assertFoldedOnce();
  });

  it('an insert cannot choose its seq: the sequence gives each event one above what any fold has covered', async () => {
    await catchUpRollups(store.pool);
    const [event] = events(1, 5, 'e');
    await ingestBatch(store.pool, catalog, [event], { channel: 'http', now: NOW });
    await catchUpRollups(store.pool);
    const row = (await store.pool.query('SELECT * FROM events WHERE id = $1', [event!.id])).rows[0];
    // Another event like it, written through events, with the seq given or not.
    const copy = (seq: string | undefined) =>
      store.pool.query(
        `INSERT INTO events (${seq ? 'seq, ' : ''}source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id)
         SELECT ${seq ? '$2::bigint, ' : ''}source, 'e-again', type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id
           FROM events WHERE id = $1`,
        seq ? [event!.id, seq] : [event!.id],
      );
    // With a seq the watermark has passed it would never be folded: refused.
    await assert.rejects(copy(row.seq), /non-DEFAULT value into column "seq"/);
    // Without one, it takes the next, above the watermark, and the next catch-up folds it once.
    await copy(undefined);
    const again = (await store.pool.query<{ seq: string }>("SELECT seq FROM events WHERE id = 'e-again'")).rows[0]!;
    assert.ok(BigInt(again.seq) > (await rollupWatermark(store.pool)));
    await catchUpRollups(store.pool);
    await assertFoldedOnce();
  });

  it('the newest seq, read above the watermark (seq has block ranges, no btree), is the newest event this snapshot sees', async () => {
    await catchUpRollups(store.pool);
    const mark = await rollupWatermark(store.pool);
    assert.equal(await newestEventSeq(store.pool), mark.toString(), 'nothing above the watermark: the watermark');
    await ingestBatch(store.pool, catalog, events(30, 9, 'n'), { channel: 'http', now: NOW });
    assert.equal(await newestEventSeq(store.pool), (await maxSeq()).toString(), 'the newest of the events not folded yet');
    assert.ok((await maxSeq()) > mark);
    // A writer in flight has taken a seq above every stored one: only its own snapshot sees it.
    const committed = await maxSeq();
    const writer = await store.pool.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(
        `INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id)
         SELECT source, 'n-in-flight', type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id
           FROM events WHERE seq = $1`,
        [committed.toString()],
      );
      const own = BigInt(await newestEventSeq(writer));
      assert.ok(own > committed, 'the writer sees its own event');
      assert.equal(await newestEventSeq(store.pool), committed.toString(), 'others do not see an event before it commits');
      await writer.query('ROLLBACK');
      // Its seq is a gap now: the catch-up's horizon is the newest committed event, and nothing is above it.
      await catchUpRollups(store.pool);
      assert.equal(await rollupWatermark(store.pool), committed);
      assert.equal(await newestEventSeq(store.pool), committed.toString());
    } finally {
      writer.release();
    }
    await assertFoldedOnce();
  });

  it('a batch takes its seqs as one block: consecutive, shared with no other event, above what was folded', async () => {
    await catchUpRollups(store.pool);
    const mark = await rollupWatermark(store.pool);
    // Batches written at once, then one event written the long way (beside a conflict: a stored key, other content).
    const sizes = [1000, 1, 337, 999, 2, 1000];
    const outcomes = await Promise.all(
      sizes.map((n, b) => ingestBatch(store.pool, catalog, events(n, 20 + b, `blk${b}`), { channel: 'http', now: NOW })),
    );
    assert.deepEqual(
      outcomes.map((o) => o.counts.accepted),
      sizes,
    );
    const [first] = events(1, 20, 'blk0');
    const longWay = await ingestBatch(store.pool, catalog, [{ ...first!, data: { other: 1 } }, ...events(1, 30, 'blk-long')], {
      channel: 'http',
      now: NOW,
    });
    assert.deepEqual([longWay.counts.conflict, longWay.counts.accepted], [1, 1]);
    const rows = (
      await store.pool.query<{ batch_id: string; n: number; lo: string; hi: string; distinct_seqs: number }>(
        `SELECT batch_id, count(*)::int AS n, min(seq)::text AS lo, max(seq)::text AS hi, count(DISTINCT seq)::int AS distinct_seqs
           FROM events WHERE seq > $1 GROUP BY batch_id`,
        [mark.toString()],
      )
    ).rows;
    for (const [b, outcome] of outcomes.entries()) {
      const row = rows.find((r) => r.batch_id === outcome.batch_id)!;
      assert.equal(row.n, sizes[b]);
      assert.equal(BigInt(row.hi) - BigInt(row.lo), BigInt(sizes[b]! - 1), 'one block, its seqs consecutive');
    }
    const all = (
      await store.pool.query<{ n: number; distinct_seqs: number }>(
        'SELECT count(*)::int AS n, count(DISTINCT seq)::int AS distinct_seqs FROM events',
      )
    ).rows[0]!;
    assert.equal(all.distinct_seqs, all.n, 'no two events share a seq');
    await catchUpRollups(store.pool);
    await assertFoldedOnce();
  });

  it('a fold takes at most the limit of events, counted, however far apart their seqs are', async () => {
    await catchUpRollups(store.pool);
    // Seqs that grow from 12 digits to 13 on the way: the bounds must be ordered as numbers, not as their text.
    const below = 10n ** 12n - 12n * 1024n;
    assert.ok((await maxSeq()) < below);
    await store.pool.query("SELECT setval(pg_get_serial_sequence('events', 'seq'), $1::bigint)", [below.toString()]);
    // A batch holding an event of a type no meter reads takes the long way, whose insert gives each accepted event
    // a seq of its own from the identity, a block of SEQ_BLOCK apart: 24 events span about 24 × 1,024 seqs.
    const unknown = { ...events(1, 8, 'g-unknown')[0]!, type: 'com.northwind.unknown' };
    for (let batch = 0; batch < 3; batch += 1) {
      const outcome = await ingestBatch(store.pool, catalog, [...events(8, 20 + batch, `g${batch}`), unknown], {
        channel: 'http',
        now: NOW,
      });
      assert.equal(outcome.counts.accepted, 8);
    }
    const start = await rollupWatermark(store.pool);
    assert.ok((await maxSeq()) - start > 24n * 512n, 'the events are far apart in seqs');
    assert.ok((await maxSeq()) > 10n ** 12n, 'the last seqs have 13 digits');
    const done = await catchUpRollups(store.pool, { foldEventsMax: 10 });
    assert.equal(done.folds, 3, '24 events, at most 10 a fold');
    assert.equal(BigInt(done.watermark), await maxSeq());
    await assertFoldedOnce();
    const exact = await catchUpRollups(store.pool, { foldEventsMax: 10 });
    assert.deepEqual(exact, { watermark: done.watermark, advanced: '0', folds: 0 });
  });

  it('a serving process catches up on its own, one catch-up at a time, and stops cleanly', async () => {
    const logged: Array<Record<string, unknown>> = [];
    const loop = startRollupCatchUp(store.pool, { intervalMs: 5, log: (entry) => logged.push(entry) });
    try {
      await ingestBatch(store.pool, catalog, events(50, 6, 'f'), { channel: 'http', now: NOW });
      const newest = await maxSeq();
      for (let waited = 0; (await rollupWatermark(store.pool)) < newest; waited += 1) {
        assert.ok(waited < 500, 'the loop caught up within 5 s');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      await loop.stop();
    }
    assert.ok(logged.some((e) => e.msg === 'usage rollups caught up'));
    assert.ok(!logged.some((e) => e.msg === 'usage rollups catch-up failed'), JSON.stringify(logged));
    await assertFoldedOnce();
  });

  it('the watermark has one row, which only moves forward and is never deleted or truncated', async () => {
    const refused = async (sql: string, pattern: RegExp) => assert.rejects(store.pool.query(sql), pattern, sql);
    await refused('UPDATE usage_rollup_watermark SET seq = seq - 1', /only moves forward/);
    await refused('DELETE FROM usage_rollup_watermark', /exactly one row/);
    await refused('INSERT INTO usage_rollup_watermark (one, seq) VALUES (true, 0)', /exactly one row/);
    await refused('TRUNCATE usage_rollup_watermark', /refused|TRUNCATE/i);
    assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM usage_rollup_watermark')).rows[0].n, 1);
  });
});
