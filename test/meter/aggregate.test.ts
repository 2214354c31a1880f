import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse } from 'yaml';
import type { Meter, UsageAggregate } from '../../src/domain/model.js';
import { Decimal, decimalText } from '../../src/domain/money.js';
import { validateEvent, type IngestContext, type NormalizedEvent } from '../../src/ingest/cloudevent.js';
import { UsageAccumulator, aggregateEvents, compareText, dedupeEvents } from '../../src/meter/aggregate.js';
import { evaluateJsonPath, formatFieldPath, parseJsonPath, toPostgresJsonPath } from '../../src/domain/jsonpath.js';

const CATALOG = parse(readFileSync(new URL('../../examples/northwind/catalog.yaml', import.meta.url), 'utf8')) as {
  meters: Array<Partial<Meter> & Pick<Meter, 'id' | 'event_type' | 'aggregation'>>;
  customers: Array<{ id: string; tenants: string[] }>;
};
const NORTHWIND: Meter[] = CATALOG.meters.map((m) => ({ ...m, group_by: m.group_by ?? [], allow_negative: m.allow_negative ?? false }));
const TEMPERATURE: Meter = {
  id: 'temperature_peak',
  event_type: 'com.test.temperature',
  aggregation: 'max',
  value: '$.celsius',
  group_by: ['site'],
  allow_negative: true,
};
const METERS = [...NORTHWIND, TEMPERATURE];

const CONTEXT: IngestContext = {
  metersByType: new Map(METERS.map((m) => [m.event_type, [m]])),
  customerByTenant: new Map(CATALOG.customers.flatMap((c) => c.tenants.map((t) => [t, c.id] as const))),
  now: new Date('2026-12-01T00:05:00Z'),
  futureSkewMsMax: 5 * 60 * 1000,
};
const NOV = { from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z' };
const NOV_HALVES = [
  { from: '2026-11-01T00:00:00Z', to: '2026-11-16T00:00:00Z' },
  { from: '2026-11-16T00:00:00Z', to: '2026-12-01T00:00:00Z' },
];

const TYPES = {
  api: 'com.northwind.api.request',
  storage: 'com.northwind.storage.usage',
  seats: 'com.northwind.analytics.session',
  vcpu: 'com.northwind.compute.sample',
  ips: 'com.northwind.network.ip_inventory',
  temp: 'com.test.temperature',
} as const;

/** A raw CloudEvent, validated and normalized the way ingestion does it. */
function ev(
  id: string,
  type: keyof typeof TYPES,
  subject: string,
  time: string,
  data: Record<string, unknown> = {},
  source = '//northwind/test',
): NormalizedEvent {
  const verdict = validateEvent({ specversion: '1.0', id, source, type: TYPES[type], subject, time, data }, 0, CONTEXT);
  assert.equal(verdict.status, 'valid', JSON.stringify(verdict));
  return (verdict as { event: NormalizedEvent }).event;
}

/** [customer, meter, dimensions, quantity, event_count] per row, for compact expectations. */
const brief = (rows: UsageAggregate[]) => rows.map((r) => [r.customer, r.meter, r.dimensions, r.quantity, r.event_count]);

describe('aggregateEvents: worked examples (by hand)', () => {
  const events = [
    ev('a1', 'api', 'acme-prod', '2026-11-03T10:00:00Z', { region: 'us-east-1' }),
    ev('a2', 'api', 'acme-staging', '2026-11-04T10:00:00Z', { region: 'us-east-1' }),
    ev('a3', 'api', 'acme-prod', '2026-11-20T10:00:00Z', { region: 'eu-central-1' }),
    ev('a4', 'api', 'globex', '2026-11-05T00:00:00Z'),
    ev('s1', 'storage', 'globex', '2026-11-01T00:00:00Z', { gb_hours: '0.1' }),
    ev('s2', 'storage', 'globex', '2026-11-15T23:59:59.999Z', { gb_hours: 0.2 }),
    ev('s3', 'storage', 'globex', '2026-11-16T00:00:00Z', { gb_hours: '1000000000000000000000.000000000000000001' }),
    ev('u1', 'seats', 'globex', '2026-11-02T00:00:00Z', { user_id: 'u1' }),
    ev('u2', 'seats', 'globex', '2026-11-03T00:00:00Z', { user_id: 'u1' }),
    ev('u3', 'seats', 'globex', '2026-11-20T00:00:00Z', { user_id: 7 }),
    ev('u4', 'seats', 'globex', '2026-11-21T00:00:00Z', { user_id: '7' }),
    ev('v1', 'vcpu', 'umbrella', '2026-11-02T00:00:00Z', { vcpu: 4 }),
    ev('v2', 'vcpu', 'umbrella', '2026-11-03T00:00:00Z', { vcpu: '12' }),
    ev('v3', 'vcpu', 'umbrella', '2026-11-25T00:00:00Z', { vcpu: '9.5' }),
    ev('i1', 'ips', 'umbrella', '2026-11-05T00:00:00Z', { count: 5 }),
    ev('i3', 'ips', 'umbrella', '2026-11-09T00:00:00Z', { count: 3 }),
    ev('i2', 'ips', 'umbrella', '2026-11-09T00:00:00Z', { count: 7 }),
    ev('oct', 'api', 'acme-prod', '2026-10-31T23:59:59.999Z', { region: 'us-east-1' }),
    ev('dec', 'api', 'acme-prod', '2026-12-01T00:00:00Z', { region: 'us-east-1' }),
  ];

  it('one window: each Northwind meter', () => {
    assert.deepEqual(brief(aggregateEvents(events, NORTHWIND, [NOV])), [
      ['acme', 'api_calls', { region: 'eu-central-1' }, '1', 1],
      ['acme', 'api_calls', { region: 'us-east-1' }, '2', 2], // the October and December events fall outside [from, to)
      ['globex', 'analytics_seats', {}, '2', 4], // u1 twice; 7 and "7" are one key
      ['globex', 'api_calls', { region: '' }, '1', 1], // no region: the dimension is ""
      ['globex', 'storage_gb_hours', {}, '1000000000000000000000.300000000000000001', 3], // exact: 0.1 + 0.2 + 10^21 + 10^-18
      ['umbrella', 'peak_vcpu', {}, '12', 3],
      ['umbrella', 'reserved_ips', {}, '3', 3], // same time 11-09: the greatest id wins, "i3" > "i2"
    ]);
  });

  it('two half-month windows, boundaries inclusive at the start', () => {
    const rows = aggregateEvents(events, NORTHWIND, NOV_HALVES).filter((r) => r.meter === 'storage_gb_hours' || r.meter === 'peak_vcpu');
    assert.deepEqual(
      rows.map((r) => [r.meter, r.window_start, r.quantity, r.event_count, r.first_event_time, r.last_event_time]),
      [
        // globex before umbrella: rows are ordered by customer, meter, window, dimensions
        ['storage_gb_hours', '2026-11-01T00:00:00.000Z', '0.3', 2, '2026-11-01T00:00:00.000Z', '2026-11-15T23:59:59.999Z'],
        [
          'storage_gb_hours',
          '2026-11-16T00:00:00.000Z',
          '1000000000000000000000.000000000000000001',
          1,
          '2026-11-16T00:00:00.000Z',
          '2026-11-16T00:00:00.000Z',
        ],
        ['peak_vcpu', '2026-11-01T00:00:00.000Z', '12', 2, '2026-11-02T00:00:00.000Z', '2026-11-03T00:00:00.000Z'],
        ['peak_vcpu', '2026-11-16T00:00:00.000Z', '9.5', 1, '2026-11-25T00:00:00.000Z', '2026-11-25T00:00:00.000Z'],
      ],
    );
  });

  it('fills window_start and window_end on every row', () => {
    for (const row of aggregateEvents(events, NORTHWIND, [NOV])) {
      assert.equal(row.window_start, '2026-11-01T00:00:00.000Z');
      assert.equal(row.window_end, '2026-12-01T00:00:00.000Z');
    }
  });

  it('groups by a subset of dimensions when asked', () => {
    assert.deepEqual(
      brief(
        aggregateEvents(
          events,
          NORTHWIND.filter((m) => m.id === 'api_calls'),
          [NOV],
          { groupBy: [] },
        ),
      ),
      [
        ['acme', 'api_calls', {}, '3', 3],
        ['globex', 'api_calls', {}, '1', 1],
      ],
    );
    assert.throws(() => aggregateEvents(events, NORTHWIND, [NOV], { groupBy: ['region'] }), /does not group by region/);
  });
});

describe('aggregateEvents: latest, max, unique_count and dedup rules', () => {
  it('latest: the greatest (time, id) wins; a later time beats a greater id; then the greatest source', () => {
    const ips = (id: string, time: string, count: number, source?: string) => ev(id, 'ips', 'umbrella', time, { count }, source);
    const q = (list: NormalizedEvent[]) => aggregateEvents(list, NORTHWIND, [NOV])[0]!.quantity;
    assert.equal(q([ips('m-i2', '2026-11-09T00:00:00Z', 7), ips('m-i3', '2026-11-09T00:00:00Z', 3)]), '3');
    assert.equal(q([ips('m-i3', '2026-11-09T00:00:00Z', 3), ips('m-i2', '2026-11-09T00:00:00Z', 7)]), '3');
    assert.equal(q([ips('z', '2026-11-09T00:00:00Z', 3), ips('a', '2026-11-09T00:00:00.001Z', 7)]), '7');
    assert.equal(q([ips('10', '2026-11-09T00:00:00Z', 1), ips('9', '2026-11-09T00:00:00Z', 2)]), '2'); // text order: "9" > "10"
    assert.equal(q([ips('x', '2026-11-09T00:00:00Z', 1, '//b'), ips('x', '2026-11-09T00:00:00Z', 2, '//a')]), '1');
    // offsets are compared as instants: 12:00+02:00 is 10:00Z, before 11:00Z
    assert.equal(q([ips('b', '2026-11-09T12:00:00+02:00', 1), ips('a', '2026-11-09T11:00:00Z', 2)]), '2');
  });

  it('compares text by code point, as Postgres COLLATE "C"', () => {
    assert.ok(compareText('\uffff', '\u{10000}') < 0); // UTF-16 code units would say the opposite
    assert.ok(compareText('B', 'a') < 0);
    assert.equal(compareText('x', 'x'), 0);
  });

  it('max with negatives where the meter allows them', () => {
    const t = (id: string, celsius: string | number, site = 'oslo') =>
      ev(id, 'temp', 'umbrella', '2026-11-09T00:00:00Z', { celsius, site });
    assert.deepEqual(
      brief(aggregateEvents([t('1', -5), t('2', '-2.25'), t('3', -9), t('4', '-0.5', 'rome'), t('5', '-1', 'rome')], METERS, [NOV])),
      [
        ['umbrella', 'temperature_peak', { site: 'oslo' }, '-2.25', 3],
        ['umbrella', 'temperature_peak', { site: 'rome' }, '-0.5', 2],
      ],
    );
  });

  it('unique_count across duplicates and repeats', () => {
    const s = (id: string, user: string | number) => ev(id, 'seats', 'acme-prod', '2026-11-09T00:00:00Z', { user_id: user });
    const first = s('e1', 'alice');
    const rows = aggregateEvents(
      [first, first, s('e2', 'alice'), s('e3', 'bob'), first, s('e4', 'bob'), s('e5', 3), s('e6', '3')],
      NORTHWIND,
      [NOV],
    );
    assert.deepEqual(brief(rows), [['acme', 'analytics_seats', {}, '3', 6]]);
  });

  it('dedup: the first occurrence wins, identical repeats are ignored, different content is a conflict listed once', () => {
    const a = ev('dup', 'storage', 'globex', '2026-11-09T00:00:00Z', { gb_hours: '1' });
    const b = ev('dup', 'storage', 'globex', '2026-11-09T00:00:00Z', { gb_hours: '5' });
    const same = dedupeEvents([a, a, b, b, a]);
    assert.equal(same.events.length, 1);
    assert.equal(same.events[0], a);
    assert.equal(same.duplicates, 2);
    assert.deepEqual(same.conflicts, [{ source: a.source, id: 'dup', content_hash: b.content_hash, existing_hash: a.content_hash }]);
    assert.equal(aggregateEvents([a, b, a], NORTHWIND, [NOV])[0]!.quantity, '1');
    assert.equal(aggregateEvents([b, a], NORTHWIND, [NOV])[0]!.quantity, '5');
    // the same id from another source is another event
    const other = ev('dup', 'storage', 'globex', '2026-11-09T00:00:00Z', { gb_hours: '1' }, '//elsewhere');
    assert.equal(aggregateEvents([a, other], NORTHWIND, [NOV])[0]!.quantity, '2');
  });

  it('the accumulator deduplicates across batches and reports each batch', () => {
    const acc = new UsageAccumulator(NORTHWIND, [NOV]);
    const a = ev('k1', 'vcpu', 'umbrella', '2026-11-02T00:00:00Z', { vcpu: 2 });
    const a2 = ev('k1', 'vcpu', 'umbrella', '2026-11-02T00:00:00Z', { vcpu: 64 });
    assert.deepEqual(acc.add([a]), { accepted: 1, duplicates: 0, conflicts: [] });
    const second = acc.add([a, a2, ev('k2', 'vcpu', 'umbrella', '2026-11-03T00:00:00Z', { vcpu: 3 })]);
    assert.equal(second.accepted, 1);
    assert.equal(second.duplicates, 1);
    assert.equal(second.conflicts.length, 1);
    assert.deepEqual(acc.add([a2]).conflicts, []); // listed once
    assert.equal(acc.conflicts.length, 1);
    assert.equal(acc.duplicates, 1);
    assert.equal(acc.rows()[0]!.quantity, '3');
  });

  it('skips events lacking a meter value (as SQL does) and events of other types', () => {
    const stray: NormalizedEvent = { ...ev('s', 'storage', 'globex', '2026-11-09T00:00:00Z', { gb_hours: '1' }), values: {} };
    const unknown: NormalizedEvent = { ...stray, id: 'u', type: 'com.other' };
    assert.deepEqual(aggregateEvents([stray, unknown], NORTHWIND, [NOV]), []);
  });

  it('gives no rows without events and refuses an empty window', () => {
    assert.deepEqual(aggregateEvents([], NORTHWIND, [NOV]), []);
    assert.throws(() => aggregateEvents([], NORTHWIND, [{ from: NOV.to, to: NOV.from }]), /invalid window/);
  });
});

describe('aggregateEvents: properties', () => {
  const tenants = ['acme-prod', 'acme-staging', 'globex', 'initech-eu-1', 'umbrella'];
  const dec = fc
    .tuple(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 6 }))
    .map(([n, scale]) => decimalText(new Decimal(n).dividedBy(new Decimal(10).pow(scale))));
  const signed = fc.tuple(dec, fc.boolean()).map(([d, neg]) => (neg && d !== '0' ? `-${d}` : d));
  const rawEvent = fc.oneof(
    fc.record({
      type: fc.constant<keyof typeof TYPES>('api'),
      data: fc.record({ region: fc.constantFrom('us', 'eu') }, { requiredKeys: [] }),
    }),
    fc.record({
      type: fc.constant<keyof typeof TYPES>('storage'),
      data: fc.record({ gb_hours: fc.oneof(dec, fc.integer({ min: 0, max: 1000 })) }),
    }),
    fc.record({
      type: fc.constant<keyof typeof TYPES>('seats'),
      data: fc.record({ user_id: fc.oneof(fc.constantFrom('u1', 'u2', 'u3'), fc.integer({ min: 1, max: 3 })) }),
    }),
    fc.record({ type: fc.constant<keyof typeof TYPES>('vcpu'), data: fc.record({ vcpu: dec }) }),
    fc.record({ type: fc.constant<keyof typeof TYPES>('ips'), data: fc.record({ count: dec }) }),
    fc.record({ type: fc.constant<keyof typeof TYPES>('temp'), data: fc.record({ celsius: signed, site: fc.constantFrom('a', 'b') }) }),
  );
  // A few instants (window edges among them) so equal times, and so the latest tie-breaks, occur often.
  const HOUR = 3_600_000;
  const instants = [-HOUR, 0, 1, 24 * HOUR, 15 * 24 * HOUR - 1, 15 * 24 * HOUR, 20 * 24 * HOUR, 30 * 24 * HOUR - 1, 30 * 24 * HOUR];
  const spec = fc.record({
    body: rawEvent,
    subject: fc.constantFrom(...tenants),
    offset: fc.constantFrom(...instants),
    id: fc.constantFrom('a', 'b', 'c'),
  });
  const eventsArb = fc.array(spec, { minLength: 0, maxLength: 80, size: 'large' }).map((specs) =>
    specs.map((s, i) =>
      // ids repeat across events (different sources), so the (time, id) ties exercise the source tie-break
      ev(`${s.id}`, s.body.type, s.subject, new Date(Date.parse(NOV.from) + s.offset).toISOString(), s.body.data, `//src/${i}`),
    ),
  );
  const windows = [NOV, ...NOV_HALVES];

  it('the same events twice, in any order, give the same rows', () => {
    fc.assert(
      fc.property(
        eventsArb.chain((events) => fc.tuple(fc.constant(events), fc.shuffledSubarray(events, { minLength: events.length }))),
        ([events, shuffled]) => {
          const reference = aggregateEvents(events, METERS, windows);
          assert.deepEqual(aggregateEvents(events, METERS, windows), reference);
          assert.deepEqual(aggregateEvents([...events, ...events], METERS, windows), reference);
          assert.deepEqual(aggregateEvents(shuffled, METERS, windows), reference);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('any batch split, with identical repeats anywhere, gives the same rows', () => {
    fc.assert(
      fc.property(
        eventsArb,
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 10 }),
        (events, repeatPicks, sizes) => {
          const reference = aggregateEvents(events, METERS, windows);
          const stream = [...events];
          for (const pick of repeatPicks)
            if (events.length > 0) stream.splice(pick % (stream.length + 1), 0, events[pick % events.length]!);
          const acc = new UsageAccumulator(METERS, windows);
          let at = 0;
          let k = 0;
          let duplicates = 0;
          while (at < stream.length) {
            const size = sizes[k++ % sizes.length]!;
            const outcome = acc.add(stream.slice(at, at + size));
            assert.deepEqual(outcome.conflicts, []);
            duplicates += outcome.duplicates;
            at += size;
          }
          assert.equal(duplicates, stream.length - events.length);
          assert.deepEqual(acc.rows(), reference);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('sum and count agree with a plain recount; max and latest are values of the group', () => {
    fc.assert(
      fc.property(eventsArb, (events) => {
        const rows = aggregateEvents(events, METERS, [NOV]);
        const inNov = events.filter((e) => e.time >= '2026-11-01T00:00:00.000Z' && e.time < '2026-12-01T00:00:00.000Z');
        const storage = inNov.filter((e) => e.type === TYPES.storage);
        const total = storage.reduce((s, e) => s.plus(e.values.storage_gb_hours!), new Decimal(0));
        const rowsTotal = rows.filter((r) => r.meter === 'storage_gb_hours').reduce((s, r) => s.plus(r.quantity), new Decimal(0));
        assert.equal(decimalText(rowsTotal), decimalText(total));
        assert.equal(
          rows.filter((r) => r.meter === 'api_calls').reduce((n, r) => n + Number(r.quantity), 0),
          inNov.filter((e) => e.type === TYPES.api).length,
        );
        for (const row of rows.filter((r) => r.meter === 'peak_vcpu' || r.meter === 'reserved_ips' || r.meter === 'temperature_peak')) {
          const meter = METERS.find((m) => m.id === row.meter)!;
          const own = inNov.filter(
            (e) =>
              e.type === meter.event_type &&
              e.customer === row.customer &&
              (meter.group_by.length === 0 || e.dimensions[meter.id]!.site === row.dimensions.site),
          );
          const values = own.map((e) => new Decimal(e.values[meter.id]!));
          assert.ok(values.some((v) => decimalText(v) === row.quantity));
          if (meter.aggregation === 'max') assert.ok(values.every((v) => v.lessThanOrEqualTo(row.quantity)));
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('JSONPath subset', () => {
  it('parses and evaluates member, quoted member and index steps', () => {
    const doc = { a: { 'b-c': [10, { d: '1.5' }], e: null }, gb_hours: 2 };
    const cases: Array<[string, unknown]> = [
      ['$.gb_hours', 2],
      ["$.a['b-c'][0]", 10],
      ['$.a["b-c"][1].d', '1.5'],
      ['$.a.e', null],
    ];
    for (const [path, value] of cases) assert.deepEqual(evaluateJsonPath(doc, path), { found: true, value }, path);
    for (const path of ['$.missing', '$.a.b', "$.a['b-c'][2]", '$.gb_hours.x', '$.a[0]', "$.a['b-c'].d", '$.constructor', '$.toString']) {
      assert.deepEqual(evaluateJsonPath(doc, path), { found: false }, path);
    }
  });

  it('refuses anything outside the subset, naming the catalog field', () => {
    for (const path of [
      'gb_hours',
      '$',
      '$..a',
      '$.*',
      '$[*]',
      '$.a[-1]',
      '$.a[01]',
      '$.a[0:2]',
      '$.a[?(@.b)]',
      '$.a.',
      "$['unterminated",
      '$.a-b',
      '$ .a',
      7,
      "$['a\\q']",
    ]) {
      const parsed = parseJsonPath(path, 'meters[1].value');
      assert.equal(parsed.ok, false, String(path));
      assert.equal(!parsed.ok && parsed.problems[0]!.path, 'meters[1].value');
      assert.equal(!parsed.ok && parsed.problems[0]!.code, 'invalid_jsonpath');
    }
    assert.equal(parseJsonPath('$' + '.a'.repeat(17)).ok, false);
  });

  it('formats field paths for problems', () => {
    assert.equal(formatFieldPath('data', '$.gb_hours'), 'data.gb_hours');
    assert.equal(formatFieldPath('data', "$.a['b-c'][0]"), 'data.a["b-c"][0]');
  });

  it('translates to PostgreSQL jsonpath text (strict by default; checked against Postgres 18 by hand)', () => {
    assert.equal(toPostgresJsonPath('$.gb_hours'), 'strict $."gb_hours"');
    assert.equal(toPostgresJsonPath("$.a['b-c'][0]"), 'strict $."a"."b-c"[0]');
    assert.equal(toPostgresJsonPath(`$['q"\\\\x']`), 'strict $."q\\"\\\\x"');
    assert.equal(toPostgresJsonPath('$["tab\\there"]', 'lax'), 'lax $."tab\\u0009here"');
  });
});
