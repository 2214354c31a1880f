import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { migrate } from '../../src/store/migrate.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { CatalogMovedError, ingestBatch } from '../../src/ingest/service.js';
import { replayQuarantine } from '../../src/ingest/quarantine.js';
import { queryUsage, recountUsage } from '../../src/meter/usage.js';

const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
const NOW = new Date('2026-12-01T00:05:00Z');
const NOV = { from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z' };

let store: Store;
let catalog: CatalogVersion;

function event(id: string, overrides: Record<string, unknown> = {}) {
  return {
    specversion: '1.0',
    id,
    source: '//northwind/api-gateway',
    type: 'com.northwind.api.request',
    subject: 'acme-prod',
    time: '2026-11-03T10:00:00Z',
    data: { region: 'us-east-1' },
    ...overrides,
  };
}

const ingest = (events: unknown[]) => ingestBatch(store.pool, catalog, events, { channel: 'http', now: NOW });

async function usageOf(customer: string, meter: string) {
  const result = await queryUsage(store.pool, catalog.catalog, { customer, meter, ...NOV });
  assert.ok(result.ok);
  return result.value;
}

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, NORTHWIND, { by: 'test' });
  assert.ok(applied.ok, JSON.stringify(!applied.ok && applied.problems));
  catalog = (await currentCatalog(store.pool))!;
});
after(() => store.close());

describe('store and catalog', () => {
  it('runs migrations safely a second time', async () => {
    assert.deepEqual(await migrate(store.pool), []);
  });

  it('applying the same catalog again is a no-op; a changed one is a new version', async () => {
    const again = await applyCatalog(store.pool, NORTHWIND, { by: 'test' });
    assert.ok(again.ok);
    assert.equal(again.value.changed, false);
    assert.equal(again.value.version, catalog.version);
  });

  it('refuses an invalid catalog whole and keeps the one in force', async () => {
    const broken = NORTHWIND.replace('rate: "0.19"', 'rate: 0.19').replace(
      'invoice_number_prefix: "NWDE-"\n',
      'invoice_number_prefix: "NWDE-"\n    rounding_typo: x\n',
    );
    const result = await applyCatalog(store.pool, broken, { by: 'test' });
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.problems.length >= 2, 'every problem is listed');
    assert.ok(!result.ok && result.problems.some((p) => p.path === 'tax_rates[3].rate'));
    assert.equal((await currentCatalog(store.pool))!.version, catalog.version);
  });
});

describe('ingestion', () => {
  it('accepts, then answers duplicate for identical content and conflict for different content', async () => {
    const first = await ingest([event('dup-1')]);
    assert.equal(first.results[0]!.status, 'accepted');
    const again = await ingest([event('dup-1')]);
    assert.equal(again.results[0]!.status, 'duplicate');
    const changed = await ingest([event('dup-1', { data: { region: 'eu-central-1' } })]);
    assert.equal(changed.results[0]!.status, 'conflict');
    assert.equal(changed.results[0]!.problems?.[0]?.path, 'id');
    const stored = await store.pool.query("SELECT data FROM events WHERE id = 'dup-1'");
    assert.deepEqual(stored.rows[0].data, { region: 'us-east-1' });
    const conflicts = await store.pool.query("SELECT count(*)::int AS n FROM event_conflicts WHERE id = 'dup-1'");
    assert.equal(conflicts.rows[0].n, 1);
  });

  it('answers each event of a mixed batch and keeps the valid ones', async () => {
    const outcome = await ingest([
      event('mix-ok'),
      event('mix-bad-time', { time: '2026-11-03T10:00:00' }),
      event('mix-nan', { type: 'com.northwind.storage.usage', data: { gb_hours: 'NaN' } }),
      event('mix-neg', { type: 'com.northwind.storage.usage', data: { gb_hours: '-1' } }),
      event('mix-future', { time: '2026-12-02T00:00:00Z' }),
      event('mix-subject', { subject: 'nobody' }),
      event('mix-type', { type: 'com.northwind.unknown' }),
      'not an object',
    ]);
    assert.deepEqual(
      outcome.results.map((r) => r.status),
      ['accepted', 'rejected', 'rejected', 'rejected', 'rejected', 'quarantined', 'quarantined', 'rejected'],
    );
    assert.equal(outcome.results[1]!.problems?.[0]?.path, 'time');
    assert.equal(outcome.results[2]!.problems?.[0]?.path, 'data.gb_hours');
    assert.equal(outcome.results[3]!.problems?.[0]?.path, 'data.gb_hours');
    assert.equal(outcome.results[4]!.problems?.[0]?.path, 'time');
    const stored = await store.pool.query("SELECT id FROM events WHERE id LIKE 'mix-%'");
    assert.deepEqual(
      stored.rows.map((r) => r.id),
      ['mix-ok'],
    );
    const quarantined = await store.pool.query("SELECT id, reason FROM quarantine WHERE id LIKE 'mix-%' ORDER BY id");
    assert.deepEqual(quarantined.rows, [
      { id: 'mix-subject', reason: 'unknown_subject' },
      { id: 'mix-type', reason: 'unknown_type' },
    ]);
    const batch = await store.pool.query('SELECT received, accepted, rejected, quarantined FROM ingest_batches WHERE id = $1', [
      outcome.batch_id,
    ]);
    assert.deepEqual(batch.rows[0], { received: 8, accepted: 1, rejected: 5, quarantined: 2 });
  });

  it('records on the batch what it answered: duplicates and conflicts against earlier batches, inside the batch and in the quarantine', async () => {
    await ingest([event('rec-old'), event('rec-old-2'), event('rec-q-old', { subject: 'acme-staging' })]);
    const outcome = await ingest([
      event('rec-new'),
      event('rec-old'), // duplicate of an earlier batch
      event('rec-old-2', { data: { region: 'eu-west-1' } }), // conflict with an earlier batch
      event('rec-twice'),
      event('rec-twice'), // duplicate inside the batch
      event('rec-clash'),
      event('rec-clash', { data: { region: 'ap-south-1' } }), // conflict inside the batch
      event('rec-q-old', { subject: 'nobody-knows' }), // quarantined, but its key was accepted with other content
      event('rec-q-new', { subject: 'nobody-knows' }),
      event('rec-bad', { time: 'yesterday' }),
    ]);
    assert.deepEqual(
      outcome.results.map((r) => r.status),
      ['accepted', 'duplicate', 'conflict', 'accepted', 'duplicate', 'accepted', 'conflict', 'conflict', 'quarantined', 'rejected'],
    );
    const row = async () =>
      (
        await store.pool.query(
          'SELECT received, accepted, duplicates, conflicts, rejected, quarantined, repeats FROM ingest_batches WHERE id = $1',
          [outcome.batch_id],
        )
      ).rows[0];
    assert.deepEqual(await row(), { received: 10, accepted: 3, duplicates: 2, conflicts: 3, rejected: 1, quarantined: 1, repeats: 0 });
    const conflicts = await store.pool.query("SELECT id FROM event_conflicts WHERE id LIKE 'rec-%' ORDER BY id");
    assert.deepEqual(
      conflicts.rows.map((r) => r.id),
      ['rec-clash', 'rec-old-2', 'rec-q-old'],
    );

    // The same batch again: every valid event a duplicate, the record counts a repeat and keeps its first counts.
    const again = await ingest([
      event('rec-new'),
      event('rec-old'),
      event('rec-old-2', { data: { region: 'eu-west-1' } }),
      event('rec-twice'),
      event('rec-twice'),
      event('rec-clash'),
      event('rec-clash', { data: { region: 'ap-south-1' } }),
      event('rec-q-old', { subject: 'nobody-knows' }),
      event('rec-q-new', { subject: 'nobody-knows' }),
      event('rec-bad', { time: 'yesterday' }),
    ]);
    assert.equal(again.batch_id, outcome.batch_id);
    assert.deepEqual(again.counts, { accepted: 0, duplicate: 5, conflict: 3, rejected: 1, quarantined: 1 });
    assert.deepEqual(await row(), { received: 10, accepted: 3, duplicates: 2, conflicts: 3, rejected: 1, quarantined: 1, repeats: 1 });
  });

  it('replays quarantined events once the catalog knows their tenant', async () => {
    await ingest([event('late-tenant', { subject: 'acme-eu' })]);
    const before = await replayQuarantine(store.pool, catalog);
    assert.ok(before.still_quarantined >= 1);
    const extended = NORTHWIND.replace('tenants: [acme-prod, acme-staging]', 'tenants: [acme-prod, acme-staging, acme-eu]');
    const applied = await applyCatalog(store.pool, extended, { by: 'test' });
    assert.ok(applied.ok && applied.value.changed);
    const newer = (await currentCatalog(store.pool))!;
    const replayed = await replayQuarantine(store.pool, newer);
    assert.ok(replayed.accepted >= 1);
    const row = await store.pool.query("SELECT customer_id FROM events WHERE id = 'late-tenant'");
    assert.equal(row.rows[0].customer_id, 'acme');
    await applyCatalog(store.pool, NORTHWIND, { by: 'test' });
  });

  it('flags events for a closed period as late and keeps them out of the total', async () => {
    await store.pool.query(
      "INSERT INTO billing_periods (legal_entity, period, status, closed_at) VALUES ('nw-de', '2026-10', 'closed', now())",
    );
    const before = await queryUsage(store.pool, catalog.catalog, {
      customer: 'umbrella',
      meter: 'api_calls',
      from: '2026-10-01',
      to: '2026-11-01',
    });
    const outcome = await ingest([event('oct-late', { subject: 'umbrella', time: '2026-10-20T00:00:00Z' })]);
    assert.equal(outcome.results[0]!.status, 'accepted');
    const late = await store.pool.query("SELECT late FROM events WHERE id = 'oct-late'");
    assert.equal(late.rows[0].late, true);
    const after = await queryUsage(store.pool, catalog.catalog, {
      customer: 'umbrella',
      meter: 'api_calls',
      from: '2026-10-01',
      to: '2026-11-01',
    });
    assert.deepEqual(after, before);
    const lateOnly = await queryUsage(store.pool, catalog.catalog, {
      customer: 'umbrella',
      meter: 'api_calls',
      from: '2026-10-01',
      to: '2026-11-01',
      late: 'only',
    });
    assert.ok(lateOnly.ok);
    assert.equal(lateOnly.value[0]?.quantity, '1');
  });
});

describe('ingestion by COPY: text as sent', () => {
  // COPY's text format gives backslash, tab, newline and carriage return a meaning (and \N is its NULL): every value is
  // escaped on the way, so what is stored is exactly what was sent, and both ways of writing (COPY, and the long way's
  // INSERT) store the same.
  const unit = fc.constantFrom('a', '\\', '\\N', '\\.', '\t', '\n', '\r', '"', ' ', 'é', '\u2028', '\uD83D\uDE00', '\u007f', '/', ':');
  const text = fc.array(unit, { minLength: 1, maxLength: 6 }).map((units) => units.join(''));
  it('stores ids, data and dimensions exactly as sent, whichever way the batch was written', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(text, text), { minLength: 1, maxLength: 5 }), fc.boolean(), async (pairs, longWay) => {
        round += 1;
        const source = `//northwind/copy-text/${round}`;
        const sent = pairs.map(([id, value], i) => event(`${i}${id}`, { source, data: { region: value, note: { [value]: id } } }));
        // The long way: one key of the batch stored already (the same content), so every event is judged against it.
        if (longWay) await ingest([sent[0]]);
        const outcome = await ingest(sent);
        assert.deepEqual(
          outcome.results.map((r) => r.status),
          sent.map((_, i) => (longWay && i === 0 ? 'duplicate' : 'accepted')),
        );
        const stored = await store.pool.query<{ id: string; data: unknown; dimensions: Record<string, Record<string, string>> }>(
          'SELECT id, data, dimensions FROM events WHERE source = $1',
          [source],
        );
        const expected = sent.map((e) => ({ id: e.id, data: e.data, region: e.data.region })).sort((a, b) => (a.id < b.id ? -1 : 1));
        assert.deepEqual(
          stored.rows
            .map((r) => ({ id: r.id, data: r.data, region: r.dimensions.api_calls?.region }))
            .sort((a, b) => (a.id < b.id ? -1 : 1)),
          expected,
        );
      }),
      { numRuns: 40 },
    );
  });
});

describe('ingestion by COPY', () => {
  // A batch with no repeat is written by COPY, judged as if none of its keys were stored. A writer whose transaction
  // is still open holds one of them: that writer's key must still be judged, and the batch not half written.
  it('sends a batch the long way when another writer claims one of its keys meanwhile: nothing lost, nothing doubled', async () => {
    const source = '//northwind/race';
    const holder = await store.pool.connect();
    try {
      // Another writer (a bulk load, say) has inserted race-1, with content of its own, and not yet committed.
      await holder.query('BEGIN');
      await holder.query(
        "INSERT INTO ingest_batches (id, channel, received, accepted, duplicates, conflicts, rejected, quarantined) VALUES ('ub:race', 'file', 1, 1, 0, 0, 0, 0)",
      );
      await holder.query(
        `INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late)
         VALUES ($1, 'race-1', 'com.northwind.api.request', 'acme-prod', 'acme', '2026-11-04T10:00:00Z', '{"region":"us-east-1"}', '{}', '{}', 'other-content', 'ub:race', false)`,
        [source],
      );
      const pending = ingestBatch(store.pool, catalog, [event('race-0', { source }), event('race-1', { source })], {
        channel: 'http',
        now: NOW,
      });
      // Wait until the statement waits on the holder's key: it found the key free, and now must not write half a batch.
      for (let waited = 0; ; waited += 10) {
        const blocked = await store.pool.query(
          "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'COPY events%' AND datname = current_database()",
        );
        if (blocked.rowCount) break;
        assert.ok(waited < 10_000, "the batch's COPY never waited on the key held by the open transaction");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await holder.query('COMMIT');
      const outcome = await pending;
      assert.deepEqual(
        outcome.results.map((r) => [r.id, r.status]),
        [
          ['race-0', 'accepted'],
          ['race-1', 'conflict'],
        ],
      );
      const batch = await store.pool.query('SELECT received, accepted, duplicates, conflicts, repeats FROM ingest_batches WHERE id = $1', [
        outcome.batch_id,
      ]);
      assert.deepEqual(batch.rows, [{ received: 2, accepted: 1, duplicates: 0, conflicts: 1, repeats: 0 }]);
      const events = await store.pool.query('SELECT id, content_hash = $2 AS theirs FROM events WHERE source = $1 ORDER BY id', [
        source,
        'other-content',
      ]);
      assert.deepEqual(events.rows, [
        { id: 'race-0', theirs: false },
        { id: 'race-1', theirs: true },
      ]);
      assert.equal(
        (await store.pool.query("SELECT count(*)::int AS n FROM event_conflicts WHERE source = $1 AND id = 'race-1'", [source])).rows[0].n,
        1,
      );
      // The rollups count what the events say: the aborted statement's rollup rows went with it.
      const query = { from: NOV.from, to: NOV.to };
      assert.deepEqual(await queryUsage(store.pool, catalog.catalog, query), await recountUsage(store.pool, catalog.catalog, query));
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
  });

  it('with requireHead, writes nothing once a newer catalog version is in force, and says which', async () => {
    const moved = await applyCatalog(store.pool, NORTHWIND.replace('name: Globex LLC', 'name: Globex L.L.C.'), { by: 'test' });
    assert.ok(moved.ok && moved.value.changed);
    try {
      for (const batch of [
        [event('head-1')],
        [event('head-2'), event('head-2', { data: { region: 'eu-west-1' } }), event('head-3', { subject: 'nobody' })],
      ]) {
        await assert.rejects(
          ingestBatch(store.pool, catalog, batch, { channel: 'http', now: NOW, requireHead: true }),
          (error: unknown) => error instanceof CatalogMovedError && error.given === catalog.version && error.head === moved.value.version,
        );
      }
      const written = await store.pool.query(
        "SELECT (SELECT count(*)::int FROM events WHERE id LIKE 'head-%') AS events, (SELECT count(*)::int FROM quarantine WHERE id LIKE 'head-%') AS quarantined",
      );
      assert.deepEqual(written.rows, [{ events: 0, quarantined: 0 }]);
      const head = (await currentCatalog(store.pool))!;
      const outcome = await ingestBatch(store.pool, head, [event('head-1')], { channel: 'http', now: NOW, requireHead: true });
      assert.equal(outcome.results[0]!.status, 'accepted');
    } finally {
      // The rest of this file reads with the first version; put its content back in force as a newer version.
      assert.ok((await applyCatalog(store.pool, NORTHWIND, { by: 'test' })).ok);
    }
  });
});

describe('metering', () => {
  it('aggregates each Northwind meter exactly', async () => {
    await ingest([
      event('m-s1', { subject: 'globex', type: 'com.northwind.storage.usage', data: { gb_hours: '0.1' } }),
      event('m-s2', { subject: 'globex', type: 'com.northwind.storage.usage', data: { gb_hours: '0.2' } }),
      event('m-u1', { subject: 'globex', type: 'com.northwind.analytics.session', data: { user_id: 'u1' } }),
      event('m-u2', { subject: 'globex', type: 'com.northwind.analytics.session', data: { user_id: 'u1' } }),
      event('m-u3', { subject: 'globex', type: 'com.northwind.analytics.session', data: { user_id: 'u2' } }),
      event('m-v1', { subject: 'umbrella', type: 'com.northwind.compute.sample', data: { vcpu: 4 } }),
      event('m-v2', { subject: 'umbrella', type: 'com.northwind.compute.sample', data: { vcpu: '12' } }),
      event('m-i1', { subject: 'umbrella', type: 'com.northwind.network.ip_inventory', time: '2026-11-05T00:00:00Z', data: { count: 5 } }),
      event('m-i3', { subject: 'umbrella', type: 'com.northwind.network.ip_inventory', time: '2026-11-09T00:00:00Z', data: { count: 3 } }),
      event('m-i2', { subject: 'umbrella', type: 'com.northwind.network.ip_inventory', time: '2026-11-09T00:00:00Z', data: { count: 7 } }),
    ]);
    assert.equal((await usageOf('globex', 'storage_gb_hours'))[0]?.quantity, '0.3');
    assert.equal((await usageOf('globex', 'analytics_seats'))[0]?.quantity, '2');
    assert.equal((await usageOf('umbrella', 'peak_vcpu'))[0]?.quantity, '12');
    // Same time: the greatest id wins ("m-i3" > "m-i2").
    assert.equal((await usageOf('umbrella', 'reserved_ips'))[0]?.quantity, '3');
  });

  it('groups by the meter dimensions', async () => {
    await ingest([
      event('g-1', { subject: 'initech-eu-1', time: '2026-11-12T00:00:00Z', data: { region: 'eu-central-1' } }),
      event('g-2', { subject: 'initech-eu-1', time: '2026-11-12T00:00:00Z', data: { region: 'eu-central-1' } }),
      event('g-3', { subject: 'initech-eu-1', time: '2026-11-12T00:00:00Z', data: { region: 'us-east-1' } }),
    ]);
    const result = await queryUsage(store.pool, catalog.catalog, { customer: 'initech', meter: 'api_calls', groupBy: ['region'], ...NOV });
    assert.ok(result.ok);
    assert.deepEqual(
      result.value.map((r) => [r.dimensions.region, r.quantity]),
      [
        ['eu-central-1', '2'],
        ['us-east-1', '1'],
      ],
    );
    const bad = await queryUsage(store.pool, catalog.catalog, { meter: 'storage_gb_hours', groupBy: ['region'], ...NOV });
    assert.equal(bad.ok, false);
    assert.equal(!bad.ok && bad.problems[0]?.path, 'group_by');
  });

  it('gives the same usage for the same events in any order, batch split and repetition (property)', async () => {
    const base = Array.from({ length: 30 }, (_, i) =>
      event(`p-${i}`, {
        source: '//prop',
        subject: i % 3 === 0 ? 'acme-staging' : 'acme-prod',
        type: i % 2 === 0 ? 'com.northwind.storage.usage' : 'com.northwind.analytics.session',
        time: `2026-11-${String(1 + (i % 28)).padStart(2, '0')}T0${i % 10}:00:00Z`,
        data: i % 2 === 0 ? { gb_hours: `${i}.${i % 7}5` } : { user_id: `u${i % 4}` },
      }),
    );
    const expected = async () => [await usageOf('acme', 'storage_gb_hours'), await usageOf('acme', 'analytics_seats')];
    await ingest(base);
    const reference = await expected();
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray(base, { minLength: 1 }), fc.integer({ min: 1, max: 30 }), async (events, size) => {
        for (let i = 0; i < events.length; i += size) await ingest(events.slice(i, i + size));
        assert.deepEqual(await expected(), reference);
      }),
      { numRuns: 15 },
    );
    // 0.05 + 2.25 + 4.45 + … + 28.05 over the even i: 210 whole units and 4.95 in fractions, by hand.
    assert.equal(reference[0]![0]!.quantity, '214.95');
    assert.equal(reference[1]![0]!.quantity, '2'); // odd i: user_id u1 and u3 only
  });
});
