// A customer's events of a meter over a window (src/store/event-window.ts, migrations 034 and 035): the predicate on the
// (customer, type, day) key selects exactly the events `customer_id = c AND type = t AND time >= from AND time < to`
// selects, whatever the bounds (midnights, a microsecond either side, other offsets, an empty or reversed window,
// another session time zone) and whatever the stored times (before 1970 and after 9999, outside the day numbers the
// key holds, as only SQL could store them), and the index of that key serves it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { eventStreamWindow } from '../../src/store/event-window.js';

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
/** Bounds far outside the key's days, either side, as ISO text (a window from 1900, or to the year 20000). */
const farBound = fc.constantFrom(
  '1900-01-01T00:00:00Z',
  '1969-12-31T23:59:59.999999Z',
  '1970-01-01T00:00:00.000001Z',
  '13453-09-24T00:00:00Z',
  '30000-01-01T00:00:00Z',
);

before(async () => {
  store = await testStore();
  // Three customers, two meters; events at every midnight and a microsecond either side, and spread in between.
  const times: string[] = [];
  for (let d = 0; d <= 10; d += 1) for (const e of [-1n, 0n, 1n]) times.push(iso(BigInt(START + d * DAY) * 1000n + e));
  for (let i = 0; i < 4000; i += 1) times.push(iso(BigInt(START) * 1000n + BigInt(i) * 216_000_123n));
  // Beyond the day numbers the key holds (1970-01-01 to 13453-09-23), where it is held at its ends.
  times.push('1969-12-31T23:59:59.999999Z', '1960-05-01T00:00:00Z', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999999Z');
  times.push('13453-09-23T00:00:00Z', '20000-01-01T00:00:00Z');
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
        fc.oneof({ weight: 4, arbitrary: instant.map((t) => ({ t })) }, { weight: 1, arbitrary: farBound.map((text) => ({ text })) }),
        fc.oneof({ weight: 4, arbitrary: instant.map((t) => ({ t })) }, { weight: 1, arbitrary: farBound.map((text) => ({ text })) }),
        fc.constantFrom(0, 330, -480, 765),
        fc.constantFrom('UTC', 'Pacific/Chatham', 'America/St_Johns'),
        fc.constantFrom('acme', 'globex', 'initech', 'nobody'),
        fc.constantFrom('com.example.a', 'com.example.b'),
        async (from, to, offset, zone, customer, type) => {
          const client = await store.pool.connect();
          try {
            await client.query(`SET TIME ZONE '${zone}'`);
            const bound = (b: { t?: bigint; text?: string }) => b.text ?? iso(b.t!, offset);
            const params = [customer, type, bound(from), bound(to)];
            const ids = async (where: string) =>
              (await client.query<{ id: string }>(`SELECT id FROM events WHERE ${where} ORDER BY id`, params)).rows.map((r) => r.id);
            assert.deepEqual(
              await ids(eventStreamWindow({ customer: '$1', type: '$2', from: '$3', to: '$4' })),
              await ids('customer_id = $1 AND type = $2 AND time >= $3 AND time < $4'),
            );
          } finally {
            await client.query('RESET TIME ZONE');
            client.release();
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('is found by the index of the (customer, type, day) key alone, not ANDed with the block ranges of time', async () => {
    const plan = (
      await store.pool.query<{ 'QUERY PLAN': unknown }>(
        `EXPLAIN (FORMAT JSON) SELECT count(*) FROM events WHERE ${eventStreamWindow({ customer: '$1', type: '$2', from: '$3', to: '$4' })}`,
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
      ['events_customer_type_day_key'],
    );
    // One range of keys, its ends computed once from the customer, the meter and the window (the function inlined).
    assert.match(scans[0]!['Index Cond']!, /hashtextextended.*>=.*AND.*<=/);
  });
});
