// Pre-aggregated usage (migration 015) against the recount of the stored events, and the events table keyed by (source, id) (033).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import pg from 'pg';
import { testStore } from '../support/db.js';
import { transaction, type Store } from '../../src/store/store.js';
import { loadMigrations, migrate } from '../../src/store/migrate.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch, SEQ_BLOCK } from '../../src/ingest/service.js';
import { queryUsage, recountUsage, type UsageQuery } from '../../src/meter/usage.js';
import { recountWindowUsage, windowUsage } from '../../src/meter/windows.js';
import { catchUpRollups } from '../../src/meter/catch-up.js';
import { readUsage, type ReadStats } from '../../src/meter/rollups.js';
import type { Meter } from '../../src/domain/model.js';

const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
// A later catalog that reads the same event types differently: api_calls without dimensions, storage as distinct
// keys, reserved IPs as a max. Events ingested under each must still read back as their recount.
const VARIANT = NORTHWIND.replace('    aggregation: count\n    group_by: [region]', '    aggregation: count\n    group_by: []')
  .replace(
    '    event_type: com.northwind.storage.usage\n    aggregation: sum',
    '    event_type: com.northwind.storage.usage\n    aggregation: unique_count',
  )
  .replace('    aggregation: latest\n    value: $.count', '    aggregation: max\n    value: $.count');
const NOW = new Date('9000-01-01T00:00:00Z');
const TENANTS = ['acme-prod', 'acme-staging', 'globex', 'initech-eu-1', 'umbrella'] as const;
const TYPES = [
  'com.northwind.api.request',
  'com.northwind.storage.usage',
  'com.northwind.analytics.session',
  'com.northwind.compute.sample',
  'com.northwind.network.ip_inventory',
] as const;

let store: Store;
let northwind: CatalogVersion;
let variant: CatalogVersion;

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, NORTHWIND, { by: 'test' });
  assert.ok(applied.ok);
  northwind = (await currentCatalog(store.pool))!;
  const second = await applyCatalog(store.pool, VARIANT, { by: 'test' });
  assert.ok(second.ok && second.value.changed, 'the variant catalog differs');
  variant = (await currentCatalog(store.pool))!;
  assert.equal(variant.index.meters.get('storage_gb_hours')!.aggregation, 'unique_count');
});
after(() => store.close());

function dataFor(type: string, n: number): Record<string, unknown> {
  switch (type) {
    case 'com.northwind.api.request':
      return { region: ['us-east-1', 'eu-central-1', 'ap-south-1'][n % 3] };
    case 'com.northwind.storage.usage':
      return { gb_hours: `${n % 7}.${String(n % 1000).padStart(3, '0')}` };
    case 'com.northwind.analytics.session':
      return { user_id: `u${n % 5}` };
    case 'com.northwind.compute.sample':
      return { vcpu: n % 13 };
    default:
      return { count: n % 9 };
  }
}

interface Spec {
  id: number;
  source: number;
  tenant: number;
  type: number;
  minute: number; // minutes from the run's origin
  ms: number;
  n: number;
}

const spec = fc.record({
  id: fc.integer({ min: 0, max: 39 }),
  source: fc.integer({ min: 0, max: 1 }),
  tenant: fc.integer({ min: 0, max: TENANTS.length - 1 }),
  type: fc.integer({ min: 0, max: TYPES.length - 1 }),
  // Dense around the month ends and mid-November (the windows' edges): a few days, a few hours each.
  minute: fc
    .tuple(fc.constantFrom(-2, -1, 0, 1, 14, 15, 29, 30, 31), fc.integer({ min: 0, max: 3 * 60 - 1 }))
    .map(([day, minute]) => day * 1440 + minute),
  ms: fc.integer({ min: 0, max: 59_999 }),
  n: fc.integer({ min: 0, max: 1_000_000 }),
});

function toEvent(s: Spec, year: number) {
  const origin = Date.UTC(year, 10, 1);
  return {
    specversion: '1.0',
    id: `r${s.id}`,
    source: `//rollup-test/${year}/${s.source}`,
    type: TYPES[s.type],
    subject: TENANTS[s.tenant],
    time: new Date(origin + s.minute * 60_000 + s.ms).toISOString(),
    data: dataFor(TYPES[s.type]!, s.n),
  };
}

/** Windows over the run's months: whole months, days, hours, and minutes that cut hours. */
function windowsOf(year: number, cuts: number[]): Array<{ from: string; to: string }> {
  const iso = (ms: number) => new Date(ms).toISOString();
  const oct = Date.UTC(year, 9, 1);
  const nov = Date.UTC(year, 10, 1);
  const dec = Date.UTC(year, 11, 1);
  const jan = Date.UTC(year + 1, 0, 1);
  const windows = [
    { from: iso(nov), to: iso(dec) },
    { from: iso(oct), to: iso(jan) },
    { from: iso(nov + 15 * 86_400_000), to: iso(dec) },
    { from: iso(oct + 20 * 86_400_000 + 3 * 3_600_000), to: iso(nov + 2 * 86_400_000 + 7 * 3_600_000) },
    { from: iso(nov + 14 * 86_400_000 + 90 * 60_000 + 250), to: iso(nov + 29 * 86_400_000 + 130 * 60_000) },
  ];
  const [a = 0, b = 1] = [...cuts].sort((x, y) => x - y);
  if (a !== b) windows.push({ from: iso(nov + a * 60_000 + 17), to: iso(nov + b * 60_000 + 5) });
  return windows;
}

async function maxSeq(): Promise<string> {
  return (await store.pool.query<{ m: string }>('SELECT coalesce(max(seq), 0)::text AS m FROM events')).rows[0]!.m;
}

async function closePeriodRow(entity: string, period: string): Promise<void> {
  await store.pool.query(
    `INSERT INTO billing_periods (legal_entity, period, status, closed_at, event_seq_watermark) VALUES ($1, $2, 'closed', now(), (SELECT max(seq) FROM events))
     ON CONFLICT (legal_entity, period) DO NOTHING`,
    [entity, period],
  );
}

async function assertUsageAgrees(catalog: CatalogVersion, query: UsageQuery): Promise<void> {
  const fast = await queryUsage(store.pool, catalog.catalog, query);
  const slow = await recountUsage(store.pool, catalog.catalog, query);
  assert.deepEqual(fast, slow, `queryUsage ${JSON.stringify(query)} under catalog v${catalog.version}`);
}

async function assertWindowAgrees(
  meter: Meter,
  customer: string,
  from: string,
  to: string,
  watermark: string,
  includeLate: boolean,
): Promise<void> {
  const fast = await windowUsage(store.pool, meter, customer, from, to, watermark, { includeLate });
  const slow = await recountWindowUsage(store.pool, meter, customer, from, to, watermark, { includeLate });
  assert.deepEqual(fast, slow, `windowUsage ${meter.id} ${customer} ${from}..${to} at ${watermark}${includeLate ? ' with late' : ''}`);
}

describe('usage from rollups equals the recount of the stored events', () => {
  let year = 2040;

  it('for random events, batch splits, duplicates, conflicts, late arrivals, deletions and catalog changes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(spec, { minLength: 20, maxLength: 80 }),
        fc.array(fc.integer({ min: 1, max: 15 }), { minLength: 2, maxLength: 8 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.constantFrom('nw-us', 'nw-de'), fc.constantFrom('10', '11')), {
          maxLength: 3,
        }),
        fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 2, maxLength: 2 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 3 }),
        async (specs, sizes, closes, cuts, useVariant, deletions) => {
          year += 1;
          const events = specs.map((s) => toEvent(s, year));
          // Repeats: the same event again (a duplicate) and, for one, different content (a conflict).
          events.push(...events.slice(0, 5));
          if (events.length > 1) events.push({ ...events[1]!, data: { ...events[1]!.data, extra: 'changed' } });
          const watermarks: string[] = [];
          let at = 0;
          for (let batch = 0; at < events.length; batch += 1) {
            const size = sizes[batch % sizes.length]!;
            const catalog = useVariant && batch % 2 === 1 ? variant : northwind;
            await ingestBatch(store.pool, catalog, events.slice(at, at + size), { channel: 'http', now: NOW });
            at += size;
            for (const [when, entity, month] of closes) if (when === batch) await closePeriodRow(entity, `${year}-${month}`);
            watermarks.push(await maxSeq());
          }
          if (deletions > 0) {
            // Only a repair deletes events (migrations 026, 033): its flag lets these through, the rollups recount.
            await transaction(store.pool, async (client) => {
              await client.query("SELECT set_config('accrue.event_removal', 'on', true)");
              await client.query(
                `DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE source LIKE $1 ORDER BY md5(seq::text) LIMIT $2)`,
                [`//rollup-test/${year}/%`, deletions],
              );
            });
          }
          const windows = windowsOf(year, cuts);
          for (const catalog of [northwind, variant]) {
            for (const window of windows) {
              for (const late of ['exclude', 'only', 'include'] as const) await assertUsageAgrees(catalog, { ...window, late });
              // By region, over events some of which the variant ingested with no region for api_calls.
              if (catalog === northwind) await assertUsageAgrees(catalog, { ...window, meter: 'api_calls', groupBy: ['region'] });
              await assertUsageAgrees(catalog, {
                ...window,
                customer: 'acme',
                meter: 'api_calls',
                late: 'include',
                groupBy: catalog === northwind ? ['region'] : [],
              });
            }
            for (const watermark of [watermarks[0]!, watermarks[Math.floor(watermarks.length / 2)]!, await maxSeq()]) {
              for (const meter of catalog.catalog.meters) {
                for (const customer of ['acme', 'umbrella']) {
                  for (const window of windows.slice(0, 3)) {
                    await assertWindowAgrees(meter, customer, window.from, window.to, watermark, false);
                    await assertWindowAgrees(meter, customer, window.from, window.to, watermark, true);
                  }
                }
              }
            }
          }
        },
      ),
      { numRuns: 12, endOnFailure: true }, // no shrinking: each run is a few hundred database reads
    );
  });

  it('reads a closed month for a customer from its month rows alone', async () => {
    const events = Array.from({ length: 200 }, (_, i) => ({
      specversion: '1.0',
      id: `month-${i}`,
      source: '//rollup-test/month',
      type: TYPES[i % TYPES.length],
      subject: 'globex',
      time: new Date(Date.UTC(2035, 2, 1) + i * 3_600_000 * 3 + i).toISOString(),
      data: dataFor(TYPES[i % TYPES.length]!, i),
    }));
    await ingestBatch(store.pool, northwind, events, { channel: 'file', now: NOW });
    const watermark = await maxSeq();
    for (const meter of northwind.catalog.meters) {
      const stats: ReadStats = { month_buckets: 0, hour_buckets: 0, recounted_ranges: 0 };
      const groups = await readUsage(
        store.pool,
        {
          meter,
          from: '2035-03-01T00:00:00.000Z',
          to: '2035-04-01T00:00:00.000Z',
          customers: ['globex'],
          late: 'exclude',
          watermark,
          groupBy: [],
        },
        stats,
      );
      assert.deepEqual(stats, { month_buckets: 1, hour_buckets: 0, recounted_ranges: 0 }, meter.id);
      assert.equal(groups[0]!.event_count, 40);
      await assertWindowAgrees(meter, 'globex', '2035-03-01T00:00:00.000Z', '2035-04-01T00:00:00.000Z', watermark, false);
    }
    // An event after the watermark in that month, folded into the month's rows: the reader at the old watermark
    // recounts that hour only.
    await ingestBatch(store.pool, northwind, [{ ...events[0]!, id: 'month-after' }], { channel: 'http', now: NOW });
    const folded = await catchUpRollups(store.pool);
    const stored = (await store.pool.query<{ seq: string }>("SELECT seq::text AS seq FROM events WHERE id = 'month-after'")).rows[0]!.seq;
    assert.notEqual(folded.advanced, '0', 'the event is folded by the catch-up, not by its insert');
    assert.equal(folded.watermark, stored, 'the catch-up stops at the event');
    const meter = northwind.index.meters.get('api_calls')!;
    const stats: ReadStats = { month_buckets: 0, hour_buckets: 0, recounted_ranges: 0 };
    const groups = await readUsage(
      store.pool,
      {
        meter,
        from: '2035-03-01T00:00:00.000Z',
        to: '2035-04-01T00:00:00.000Z',
        customers: ['globex'],
        late: 'exclude',
        watermark,
        groupBy: [],
      },
      stats,
    );
    assert.equal(groups[0]!.quantity, '40');
    assert.deepEqual([stats.month_buckets, stats.recounted_ranges], [0, 1]);
    assert.ok(stats.hour_buckets >= 30);
  });

  it('keeps rollups exact under concurrent ingestion of overlapping batches', async () => {
    const events = Array.from({ length: 300 }, (_, i) => ({
      specversion: '1.0',
      id: `conc-${i}`,
      source: '//rollup-test/concurrent',
      type: TYPES[i % TYPES.length],
      subject: TENANTS[i % TENANTS.length],
      time: new Date(Date.UTC(2036, 4, 1) + (i % 7) * 60_000).toISOString(),
      data: dataFor(TYPES[i % TYPES.length]!, i),
    }));
    // Eight writers, each sending every event in its own order: every event is accepted once, by one writer.
    const shuffled = (k: number) =>
      [...events].sort((a, b) => ((Number(a.id.slice(5)) * (k + 3)) % 301) - ((Number(b.id.slice(5)) * (k + 3)) % 301));
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, async (_, k) => {
        const order = shuffled(k);
        let accepted = 0;
        for (let i = 0; i < order.length; i += 50)
          accepted += (await ingestBatch(store.pool, northwind, order.slice(i, i + 50), { channel: 'http', now: NOW })).counts.accepted;
        return accepted;
      }),
    );
    assert.equal(
      outcomes.reduce((a, b) => a + b, 0),
      300,
    );
    for (const late of ['exclude', 'include'] as const) await assertUsageAgrees(northwind, { from: '2036-05-01', to: '2036-06-01', late });
    await assertUsageAgrees(northwind, { from: '2036-05-01', to: '2036-06-01', meter: 'api_calls', groupBy: ['region'] });
  });
});

describe('rollups built batch by batch', () => {
  it('equal a rebuild from scratch over the same events (what the bench and `Rebuilding` in docs/scaling.md rely on)', async () => {
    const snapshot = async () => ({
      rollups: (
        await store.pool.query('SELECT * FROM usage_rollups ORDER BY grain, type, bucket, customer_id, meter_id, late, valued, dimensions')
      ).rows,
      keys: (
        await store.pool.query('SELECT * FROM usage_unique_keys ORDER BY grain, type, bucket, customer_id, meter_id, late, dimensions, key')
      ).rows,
    });
    await catchUpRollups(store.pool);
    const incremental = await snapshot();
    assert.ok(
      incremental.rollups.length > 500 && incremental.keys.length > 100,
      `the tests above stored enough to compare: ${incremental.rollups.length} rollups, ${incremental.keys.length} keys`,
    );
    await store.pool.query('SELECT usage_rollups_rebuild()');
    assert.deepEqual(await snapshot(), incremental);
  });
});

describe('events keyed by (source, id) (migration 033)', () => {
  it('keeps (source, id) unique whatever the time: the database refuses a second copy, ingestion answers conflict', async () => {
    const event = {
      specversion: '1.0',
      id: 'part-1',
      source: '//rollup-test/part',
      type: TYPES[0],
      subject: 'acme-prod',
      time: '2031-07-04T12:00:00Z',
      data: { region: 'x' },
    };
    await ingestBatch(store.pool, northwind, [event], { channel: 'http', now: NOW });
    // The same identity in another month (once another partition) is refused by the database itself.
    await assert.rejects(
      store.pool.query(
        `INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id)
         SELECT source, id, type, subject, customer_id, time + interval '40 days', data, meter_values, dimensions, content_hash, batch_id FROM events WHERE id = 'part-1'`,
      ),
      /events_pkey/,
    );
    const again = await ingestBatch(store.pool, northwind, [{ ...event, time: '2031-08-04T12:00:00Z' }], { channel: 'http', now: NOW });
    assert.equal(again.results[0]!.status, 'conflict');
  });

  it('migrates events stored before partitions, rollups and the keyed table, keeping them and their usage', async () => {
    const admin = new pg.Client({ connectionString: process.env.ACCRUE_TEST_DATABASE_URL ?? store.url });
    const url = new URL(store.url);
    const name = `${url.pathname.slice(1)}_pre14`;
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
      url.pathname = `/${name}`;
      const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
      // DROP DATABASE ... WITH (FORCE) may reach a connection pool.end() is still closing.
      pool.on('error', () => {});
      try {
        // The schema as it stood before 014, with events written the old way.
        await pool.query(
          'CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
        );
        for (const m of loadMigrations().filter((m) => m.version < 14)) {
          await pool.query(m.sql);
          await pool.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
        }
        const applied = await applyCatalog(pool, NORTHWIND, { by: 'test' });
        assert.ok(applied.ok);
        await pool.query(
          "INSERT INTO ingest_batches (id, channel, received, accepted, duplicates, conflicts, rejected, quarantined) VALUES ('ub:old', 'file', 0, 0, 0, 0, 0, 0)",
        );
        await pool.query(
          `INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late)
           SELECT '//old', 'o' || g, 'com.northwind.analytics.session', 'globex', 'globex', timestamptz '2026-10-30T00:00:00Z' + g * interval '5 hours',
                  jsonb_build_object('user_id', 'u' || (g % 4)), jsonb_build_object('analytics_seats', 'u' || (g % 4)), '{}', md5(g::text), 'ub:old', g % 10 = 0
             FROM generate_series(1, 50) AS g`,
        );
        const old = (await pool.query('SELECT seq, source, id, time, late FROM events ORDER BY seq')).rows;
        assert.deepEqual(
          await migrate(pool),
          loadMigrations()
            .filter((m) => m.version >= 14)
            .map((m) => m.version),
        );
        assert.deepEqual((await pool.query('SELECT seq, source, id, time, late FROM events ORDER BY seq')).rows, old);
        const catalog = (await currentCatalog(pool))!;
        for (const late of ['exclude', 'only'] as const) {
          const query = { from: '2026-10-01', to: '2026-12-01', late };
          assert.deepEqual(await queryUsage(pool, catalog.catalog, query), await recountUsage(pool, catalog.catalog, query));
        }
        // One table, keyed by (source, id), its seq the identity that goes on from the last stored (a block of
        // SEQ_BLOCK from migration 036 on).
        assert.equal((await pool.query("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")).rows[0].relkind, 'r');
        assert.equal(await pool.query("SELECT to_regclass('event_keys') AS t").then((r) => r.rows[0].t), null);
        await pool.query(
          `INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id)
           SELECT source, 'after', type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id FROM events WHERE id = 'o1'`,
        );
        const after = (await pool.query<{ seq: string }>("SELECT seq FROM events WHERE id = 'after'")).rows[0]!.seq;
        assert.equal(BigInt(after), BigInt(old.at(-1)!.seq) + BigInt(SEQ_BLOCK));
      } finally {
        await pool.end();
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});
