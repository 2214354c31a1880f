// A customer's events over a window (src/store/event-window.ts, migration 034): the day-keyed predicate selects exactly
// the events `time >= from AND time < to` selects, whatever the bounds (midnights, a microsecond either side, other
// offsets, an empty or reversed window, another session time zone), and the (customer, type, day) index serves it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { eventTimeWindow } from '../../src/store/event-window.js';

let store: Store;
const DAY = 86_400_000;
const START = Date.parse('2026-09-28T00:00:00Z');
/** Instants in microseconds since the epoch as ISO text with six decimals (what timestamptz keeps). */
const iso = (micros: bigint, offsetMinutes = 0): string => {
  const ms = Number(micros / 1000n) + offsetMinutes * 60_000;
  const base = new Date(ms).toISOString().slice(0, 19);
  const fraction = (micros % 1_000_000n).toString().padStart(6, '0');
  if (offsetMinutes === 0) return `${base}.${fraction}Z`;
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${base}.${fraction}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
};
/** Near a UTC midnight of the days around the end of September (a microsecond either side, or the midnight itself), or anywhere. */
const instant = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 9 }), fc.constantFrom(-1n, 0n, 1n)).map(([d, e]) => BigInt(START + d * DAY) * 1000n + e),
  fc.bigInt({ min: BigInt(START) * 1000n, max: BigInt(START + 10 * DAY) * 1000n }),
);

before(async () => {
  store = await testStore();
  // Three customers, two meters; events at every midnight and a microsecond either side, and spread in between.
  const times: string[] = [];
  for (let d = 0; d <= 10; d += 1) for (const e of [-1n, 0n, 1n]) times.push(iso(BigInt(START + d * DAY) * 1000n + e));
  for (let i = 0; i < 4000; i += 1) times.push(iso(BigInt(START) * 1000n + BigInt(i) * 216_000_123n));
  await store.pool.query(
    `INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late)
     SELECT '//window', c || '-' || t || '-' || n, t, c, c, time::timestamptz, '{}', '{}', '{}', md5(c || t || n), 'ub:window', false
       FROM unnest($1::text[]) WITH ORDINALITY AS x (time, n), unnest(ARRAY['acme', 'globex', 'initech']) AS c,
            unnest(ARRAY['com.example.a', 'com.example.b']) AS t`,
    [times],
  );
  await store.pool.query('ANALYZE events');
});

after(async () => {
  await store?.close();
});

describe('a window of event time', () => {
  it('selects exactly the events within its bounds, for any bounds and session time zone', async () => {
    await fc.assert(
      fc.asyncProperty(
        instant,
        instant,
        fc.constantFrom(0, 330, -480, 765),
        fc.constantFrom('UTC', 'Pacific/Chatham', 'America/St_Johns'),
        async (from, to, offset, zone) => {
          const client = await store.pool.connect();
          try {
            await client.query(`SET TIME ZONE '${zone}'`);
            const params = ['acme', 'com.example.a', iso(from, offset), iso(to, offset)];
            const ids = async (where: string) =>
              (
                await client.query<{ id: string }>(
                  `SELECT id FROM events WHERE customer_id = $1 AND type = $2 AND ${where} ORDER BY id`,
                  params,
                )
              ).rows.map((r) => r.id);
            assert.deepEqual(await ids(eventTimeWindow('$3', '$4')), await ids('time >= $3 AND time < $4'));
          } finally {
            await client.query('RESET TIME ZONE');
            client.release();
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('is found by the (customer, type, day) index alone, not ANDed with the block ranges of time', async () => {
    const plan = (
      await store.pool.query<{ 'QUERY PLAN': unknown }>(
        `EXPLAIN (FORMAT JSON) SELECT count(*) FROM events WHERE customer_id = $1 AND type = $2 AND ${eventTimeWindow('$3', '$4')}`,
        ['acme', 'com.example.a', '2026-10-01T00:00:00Z', '2026-10-02T00:00:00Z'],
      )
    ).rows[0]!['QUERY PLAN'];
    type Node = { 'Index Name'?: string; 'Index Cond'?: string; Plans?: Node[] };
    const nodes: Node[] = [];
    const walk = (node: Node) => (nodes.push(node), node.Plans?.forEach(walk));
    walk((plan as Array<{ Plan: Node }>)[0]!.Plan);
    const scans = nodes.filter((n) => n['Index Name'] !== undefined);
    assert.deepEqual(
      scans.map((n) => n['Index Name']),
      ['events_customer_type_day'],
    );
    assert.match(scans[0]!['Index Cond']!, /::date >= '2026-10-01'::date/);
  });
});
