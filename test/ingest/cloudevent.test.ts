import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { parse } from 'yaml';
import type { Meter } from '../../src/domain/model.js';
import { stringRecordJson } from '../../src/domain/event.js';
import {
  INGEST_LIMITS,
  eventContentHash,
  eventKey,
  parseEventTime,
  parseNdjson,
  validateEvent,
  type EventVerdict,
  type IngestContext,
  type NormalizedEvent,
} from '../../src/ingest/cloudevent.js';

// The Northwind meters and tenants, read from the example catalog so the tests follow it.
const CATALOG = parse(readFileSync(new URL('../../examples/northwind/catalog.yaml', import.meta.url), 'utf8')) as {
  meters: Array<Partial<Meter> & Pick<Meter, 'id' | 'event_type' | 'aggregation'>>;
  customers: Array<{ id: string; tenants: string[] }>;
};
const NORTHWIND_METERS: Meter[] = CATALOG.meters.map((m) => ({
  ...m,
  group_by: m.group_by ?? [],
  allow_negative: m.allow_negative ?? false,
}));
const TEMPERATURE: Meter = {
  id: 'temperature_peak',
  event_type: 'com.test.temperature',
  aggregation: 'max',
  value: "$.reading['celsius']",
  group_by: ['site'],
  allow_negative: true,
};
const REQUEST_BYTES: Meter = {
  id: 'request_bytes',
  event_type: 'com.northwind.api.request',
  aggregation: 'sum',
  value: '$.bytes',
  group_by: ['region', 'method'],
  allow_negative: false,
};

function groupByType(meters: readonly Meter[]): Map<string, Meter[]> {
  const map = new Map<string, Meter[]>();
  for (const m of meters) map.set(m.event_type, [...(map.get(m.event_type) ?? []), m]);
  return map;
}

const NOW = new Date('2026-12-01T00:05:00Z');
const CONTEXT: IngestContext = {
  metersByType: groupByType([...NORTHWIND_METERS, TEMPERATURE]),
  customerByTenant: new Map(CATALOG.customers.flatMap((c) => c.tenants.map((t) => [t, c.id] as const))),
  now: NOW,
  futureSkewMsMax: 5 * 60 * 1000,
};

function event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    specversion: '1.0',
    id: 'evt-1',
    source: '//northwind/api-gateway',
    type: 'com.northwind.api.request',
    subject: 'acme-prod',
    time: '2026-11-03T10:00:00Z',
    data: { region: 'us-east-1' },
  };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}
const storage = (gb_hours: unknown) => event({ type: 'com.northwind.storage.usage', data: { gb_hours } });
const seats = (user_id: unknown) => event({ type: 'com.northwind.analytics.session', data: { user_id } });
const vcpu = (v: unknown) => event({ type: 'com.northwind.compute.sample', data: { vcpu: v } });
const ips = (count: unknown) => event({ type: 'com.northwind.network.ip_inventory', data: { count } });

function valid(verdict: EventVerdict): NormalizedEvent {
  assert.equal(verdict.status, 'valid', JSON.stringify(verdict));
  return (verdict as { event: NormalizedEvent }).event;
}

describe('validateEvent: bad input, each rule by path and code', () => {
  const deep: Record<string, unknown> = {};
  let cursor = deep;
  for (let i = 0; i < 40; i++) cursor = cursor.x = {} as Record<string, unknown>;
  const cases: Array<[string, unknown, string, string, IngestContext?]> = [
    ['a string', 'not an event', '', 'not_object'],
    ['an array', [event()], '', 'not_object'],
    ['null', null, '', 'not_object'],
    ['specversion missing', event({ specversion: undefined }), 'specversion', 'required'],
    ['specversion 0.3', event({ specversion: '0.3' }), 'specversion', 'unsupported_specversion'],
    ['specversion as a number', event({ specversion: 1.0 }), 'specversion', 'unsupported_specversion'],
    ['id missing', event({ id: undefined }), 'id', 'required'],
    ['id null (unset)', event({ id: null }), 'id', 'required'],
    ['id empty', event({ id: '' }), 'id', 'empty'],
    ['id a number', event({ id: 7 }), 'id', 'not_string'],
    ['id too long', event({ id: 'x'.repeat(INGEST_LIMITS.idLengthMax + 1) }), 'id', 'too_long'],
    ['source missing', event({ source: undefined }), 'source', 'required'],
    ['source with a space', event({ source: '//north wind' }), 'source', 'not_uri_reference'],
    ['source not allowed for the key', event(), 'source', 'source_not_allowed', { ...CONTEXT, allowedSources: (s) => s === '//other' }],
    ['type missing', event({ type: undefined }), 'type', 'required'],
    ['type empty', event({ type: '' }), 'type', 'empty'],
    ['subject missing (Accrue requires it)', event({ subject: undefined }), 'subject', 'required'],
    ['subject null', event({ subject: null }), 'subject', 'required'],
    ['time missing', event({ time: undefined }), 'time', 'required'],
    ['time without an offset', event({ time: '2026-11-03T10:00:00' }), 'time', 'missing_offset'],
    ['time without an offset, fraction', event({ time: '2026-11-03T10:00:00.250' }), 'time', 'missing_offset'],
    ['time a date only', event({ time: '2026-11-03' }), 'time', 'invalid_time'],
    ['time a word', event({ time: 'yesterday' }), 'time', 'invalid_time'],
    ['time epoch number', event({ time: 1793700000 }), 'time', 'invalid_time'],
    ['time 30 February', event({ time: '2026-02-30T00:00:00Z' }), 'time', 'invalid_time'],
    ['time 29 February, not a leap year', event({ time: '2026-02-29T00:00:00Z' }), 'time', 'invalid_time'],
    ['time hour 24', event({ time: '2026-11-03T24:00:00Z' }), 'time', 'invalid_time'],
    ['time leap second', event({ time: '2026-12-31T23:59:60Z' }), 'time', 'invalid_time'],
    ['time offset +25:00', event({ time: '2026-11-03T10:00:00+25:00' }), 'time', 'invalid_time'],
    ['time offset without colon', event({ time: '2026-11-03T10:00:00+0200' }), 'time', 'invalid_time'],
    ['time the Go zero value', event({ time: '0001-01-01T00:00:00Z' }), 'time', 'out_of_range'],
    // Date.UTC reads the years 0 to 99 as 1900 to 1999: these were taken for 1975 and 1999 once.
    ['time in the year 75', event({ time: '0075-06-01T00:00:00Z' }), 'time', 'out_of_range'],
    ['time in the year 75, canonical', event({ time: '0075-06-01T00:00:00.000Z' }), 'time', 'out_of_range'],
    ['time in the year 99, with an offset', event({ time: '0099-12-31T23:59:59+01:00' }), 'time', 'out_of_range'],
    ['time beyond the skew', event({ time: '2026-12-01T00:10:00.001Z' }), 'time', 'future_time'],
    ['datacontenttype text/plain', event({ datacontenttype: 'text/plain' }), 'datacontenttype', 'unsupported_datacontenttype'],
    [
      'datacontenttype cloudevents+json',
      event({ datacontenttype: 'application/cloudevents+json' }),
      'datacontenttype',
      'unsupported_datacontenttype',
    ],
    ['dataschema not a URI', event({ dataschema: 'not a uri' }), 'dataschema', 'not_uri'],
    ['data_base64', event({ data: undefined, data_base64: 'AAAA' }), 'data_base64', 'binary_data_not_supported'],
    ['data an array', event({ data: [1, 2] }), 'data', 'not_object'],
    ['data a string', event({ data: '<xml/>' }), 'data', 'not_object'],
    ['extension name with upper case', event({ Region: 'x' }), 'Region', 'invalid_attribute_name'],
    ['extension name with a dash', event({ 'trace-id': 'x' }), 'trace-id', 'invalid_attribute_name'],
    [
      'extension name too long',
      event({ ['a'.repeat(INGEST_LIMITS.attributeNameLengthMax + 1)]: 'x' }),
      'a'.repeat(INGEST_LIMITS.attributeNameLengthMax + 1),
      'attribute_name_too_long',
    ],
    ['extension value an object', event({ tenantinfo: { a: 1 } }), 'tenantinfo', 'invalid_extension_value'],
    ['extension value a fraction', event({ weight: 1.5 }), 'weight', 'invalid_extension_value'],
    ['extension value beyond int32', event({ seq: 2 ** 31 }), 'seq', 'invalid_extension_value'],
    ['NUL in data', event({ data: { region: 'us\u0000east' } }), 'data.region', 'invalid_text'],
    ['unpaired surrogate in id', event({ id: 'a\ud800b' }), 'id', 'invalid_text'],
    ['data nested too deep', event({ data: deep }), `data${'.x'.repeat(INGEST_LIMITS.dataDepthMax)}`, 'too_deep'],
    ['event too large', event({ data: { region: 'x'.repeat(INGEST_LIMITS.eventBytesMax) } }), '', 'too_large'],
    // meter values
    ['sum "NaN"', storage('NaN'), 'data.gb_hours', 'not_decimal'],
    ['sum "Infinity"', storage('Infinity'), 'data.gb_hours', 'not_decimal'],
    ['sum exponent "1e3"', storage('1e3'), 'data.gb_hours', 'not_decimal'],
    ['sum hex "0x10"', storage('0x10'), 'data.gb_hours', 'not_decimal'],
    ['sum leading zero "01.5"', storage('01.5'), 'data.gb_hours', 'not_decimal'],
    ['sum "+1"', storage('+1'), 'data.gb_hours', 'not_decimal'],
    ['sum ".5"', storage('.5'), 'data.gb_hours', 'not_decimal'],
    ['sum "1."', storage('1.'), 'data.gb_hours', 'not_decimal'],
    ['sum " 1"', storage(' 1'), 'data.gb_hours', 'not_decimal'],
    ['sum a boolean', storage(true), 'data.gb_hours', 'not_decimal'],
    ['sum an object', storage({ v: 1 }), 'data.gb_hours', 'not_decimal'],
    ['sum null', storage(null), 'data.gb_hours', 'missing_value'],
    ['sum missing', event({ type: 'com.northwind.storage.usage', data: { gb: 1 } }), 'data.gb_hours', 'missing_value'],
    ['sum without data', event({ type: 'com.northwind.storage.usage', data: undefined }), 'data.gb_hours', 'missing_value'],
    ['sum negative string', storage('-1'), 'data.gb_hours', 'negative'],
    ['sum negative number', storage(-0.5), 'data.gb_hours', 'negative'],
    ['sum unsafe integer', storage(2 ** 53), 'data.gb_hours', 'unsafe_integer'],
    ['sum too many digits', storage('1'.repeat(41)), 'data.gb_hours', 'too_many_digits'],
    ['sum a number too small to write', storage(5e-324), 'data.gb_hours', 'too_many_digits'],
    ['max negative, not allowed', vcpu('-2'), 'data.vcpu', 'negative'],
    ['max a word', vcpu('four'), 'data.vcpu', 'not_decimal'],
    ['latest a word', ips('abc'), 'data.count', 'not_decimal'],
    ['latest NaN', ips('NaN'), 'data.count', 'not_decimal'],
    ['unique_count a fraction', seats(1.5), 'data.user_id', 'not_unique_key'],
    ['unique_count a boolean', seats(true), 'data.user_id', 'not_unique_key'],
    ['unique_count empty', seats(''), 'data.user_id', 'empty'],
    ['unique_count too long', seats('u'.repeat(INGEST_LIMITS.uniqueKeyLengthMax + 1)), 'data.user_id', 'too_long'],
    ['unique_count missing', event({ type: 'com.northwind.analytics.session', data: {} }), 'data.user_id', 'missing_value'],
    ['dimension an object', event({ data: { region: { name: 'eu' } } }), 'data.region', 'not_dimension'],
    ['dimension too long', event({ data: { region: 'r'.repeat(INGEST_LIMITS.dimensionLengthMax + 1) } }), 'data.region', 'too_long'],
    [
      'quoted JSONPath member',
      event({ type: 'com.test.temperature', data: { site: 'a', reading: { celsius: 'cold' } } }),
      'data.reading.celsius',
      'not_decimal',
    ],
    [
      'unknown subject with a bad value is rejected, not quarantined',
      event({ subject: 'nobody', type: 'com.northwind.storage.usage', data: { gb_hours: 'NaN' } }),
      'data.gb_hours',
      'not_decimal',
    ],
  ];
  for (const [name, raw, path, code, ctx] of cases) {
    it(`${name} -> ${path || '(event)'}: ${code}`, () => {
      const verdict = validateEvent(raw, 0, ctx ?? CONTEXT);
      assert.equal(verdict.status, 'rejected', JSON.stringify(verdict).slice(0, 300));
      const problems = (verdict as { problems: Array<{ path: string; code: string }> }).problems;
      assert.deepEqual(
        problems.map((p) => [p.path, p.code]),
        [[path, code]],
      );
    });
  }

  it('names the field and the value: data.gb_hours: must be a decimal number, got "NaN"', () => {
    const verdict = validateEvent(storage('NaN'), 0, CONTEXT);
    assert.ok(verdict.status === 'rejected');
    assert.equal(`${verdict.problems[0]!.path}: ${verdict.problems[0]!.message}`, 'data.gb_hours: must be a decimal number, got "NaN"');
  });

  it('lists every problem of an event, not only the first', () => {
    const verdict = validateEvent(event({ specversion: '0.3', id: '', time: '2026-11-03T10:00:00', data: [] }), 0, CONTEXT);
    assert.ok(verdict.status === 'rejected');
    assert.deepEqual(
      verdict.problems.map((p) => p.path),
      ['specversion', 'id', 'time', 'data'],
    );
  });

  it('accepts a time exactly at the future skew limit', () => {
    valid(validateEvent(event({ time: '2026-12-01T00:10:00Z' }), 0, CONTEXT));
  });
});

describe('validateEvent: accepted forms', () => {
  it('normalizes a Northwind api request (count, grouped by region)', () => {
    const e = valid(validateEvent(event(), 0, CONTEXT));
    assert.deepEqual(e, {
      source: '//northwind/api-gateway',
      id: 'evt-1',
      type: 'com.northwind.api.request',
      subject: 'acme-prod',
      customer: 'acme',
      time: '2026-11-03T10:00:00.000Z',
      data: { region: 'us-east-1' },
      values: {},
      dimensions: { api_calls: { region: 'us-east-1' } },
      content_hash: createHash('sha256').update(canonicalize(event())!).digest('hex'),
      data_json: '{"region":"us-east-1"}',
    });
  });

  it('keeps the canonical text of data, the JSON value data holds, for storing it as written for the hash', () => {
    const extra = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 });
    fc.assert(
      fc.property(extra, (fields) => {
        const data = { ...fields, region: 'eu' };
        const verdict = validateEvent(event({ data }), 0, CONTEXT);
        if (verdict.status !== 'valid') return; // a field validation refuses (NUL, a lone surrogate)
        assert.equal(verdict.event.data_json, canonicalize(data));
        assert.deepEqual(JSON.parse(verdict.event.data_json!), JSON.parse(JSON.stringify(verdict.event.data)));
      }),
      { numRuns: 500 },
    );
    // No data, or null: {} is stored, and no text of another value is kept for it.
    for (const data of [undefined, null]) assert.equal(valid(validateEvent(event({ data }), 0, CONTEXT)).data_json, undefined);
  });

  it('reads each Northwind meter value as canonical decimal text or unique key', () => {
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [storage('0.1'), 'storage_gb_hours', '0.1'],
      [storage('1.50'), 'storage_gb_hours', '1.5'],
      [storage('0'), 'storage_gb_hours', '0'],
      [storage('-0'), 'storage_gb_hours', '0'],
      [storage(0.1), 'storage_gb_hours', '0.1'],
      [storage(1e-7), 'storage_gb_hours', '0.0000001'],
      [storage(12), 'storage_gb_hours', '12'],
      [storage(Number.MAX_SAFE_INTEGER), 'storage_gb_hours', '9007199254740991'],
      [storage('123456789012345678901234567890.0123456789'), 'storage_gb_hours', '123456789012345678901234567890.0123456789'],
      [seats('u-17'), 'analytics_seats', 'u-17'],
      [seats(42), 'analytics_seats', '42'],
      [vcpu(4), 'peak_vcpu', '4'],
      [vcpu('12.5'), 'peak_vcpu', '12.5'],
      [ips(7), 'reserved_ips', '7'],
      [ips('0'), 'reserved_ips', '0'],
    ];
    for (const [raw, meter, expected] of cases) {
      const e = valid(validateEvent(raw, 0, CONTEXT));
      assert.deepEqual(e.values, { [meter]: expected }, JSON.stringify(raw.data));
      assert.deepEqual(e.dimensions, {});
    }
  });

  it('takes negative values where the meter allows them, and a quoted JSONPath member', () => {
    const e = valid(
      validateEvent(event({ type: 'com.test.temperature', data: { site: 'oslo', reading: { celsius: -12.5 } } }), 0, CONTEXT),
    );
    assert.deepEqual(e.values, { temperature_peak: '-12.5' });
    assert.deepEqual(e.dimensions, { temperature_peak: { site: 'oslo' } });
  });

  it('fills a missing or null dimension with "" and writes numbers and booleans as text', () => {
    assert.deepEqual(valid(validateEvent(event({ data: undefined }), 0, CONTEXT)).dimensions, { api_calls: { region: '' } });
    assert.deepEqual(valid(validateEvent(event({ data: { region: null } }), 0, CONTEXT)).dimensions, { api_calls: { region: '' } });
    assert.deepEqual(valid(validateEvent(event({ data: { region: 3 } }), 0, CONTEXT)).dimensions, { api_calls: { region: '3' } });
    assert.deepEqual(valid(validateEvent(event({ data: { region: false } }), 0, CONTEXT)).dimensions, { api_calls: { region: 'false' } });
    assert.deepEqual(valid(validateEvent(event({ data: undefined }), 0, CONTEXT)).data, {});
  });

  it('feeds every meter of a shared type', () => {
    const ctx = { ...CONTEXT, metersByType: groupByType([...NORTHWIND_METERS, REQUEST_BYTES]) };
    const e = valid(validateEvent(event({ data: { region: 'eu', bytes: '2048' } }), 0, ctx));
    assert.deepEqual(e.values, { request_bytes: '2048' });
    assert.deepEqual(e.dimensions, { api_calls: { region: 'eu' }, request_bytes: { region: 'eu', method: '' } });
    const bad = validateEvent(event({ data: { region: 'eu' } }), 0, ctx);
    assert.ok(bad.status === 'rejected');
    assert.deepEqual(
      bad.problems.map((p) => p.path),
      ['data.bytes'],
    );
  });

  it('reads RFC 3339 offsets, lower-case t and z, and truncates fractions to milliseconds', () => {
    const cases: Array<[string, string]> = [
      ['2026-11-03T12:00:00+02:00', '2026-11-03T10:00:00.000Z'],
      ['2026-11-03T05:30:00-04:30', '2026-11-03T10:00:00.000Z'],
      ['2026-11-03t10:00:00z', '2026-11-03T10:00:00.000Z'],
      ['2026-11-03T10:00:00-00:00', '2026-11-03T10:00:00.000Z'],
      ['2026-11-03T10:00:00.1Z', '2026-11-03T10:00:00.100Z'],
      ['2026-11-03T10:00:00.123456789Z', '2026-11-03T10:00:00.123Z'],
      ['2026-11-01T00:30:00+01:00', '2026-10-31T23:30:00.000Z'],
      ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
    ];
    for (const [text, iso] of cases) {
      const parsed = parseEventTime(text);
      assert.ok(parsed.ok, text);
      assert.equal(parsed.value.iso, iso, text);
      assert.equal(valid(validateEvent(event({ time: text }), 0, CONTEXT)).time, iso);
    }
  });

  it('reads a canonical time as the general form reads the same time written with a lower-case t', () => {
    const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, '0'));
    const canonical = fc
      .tuple(fc.integer({ min: 0, max: 9999 }), two(19), two(39), two(29), two(69), two(69), fc.integer({ min: 0, max: 999 }))
      .map(([y, mo, d, h, mi, s, ms]) => `${String(y).padStart(4, '0')}-${mo}-${d}T${h}:${mi}:${s}.${String(ms).padStart(3, '0')}Z`);
    const edges = fc.constantFrom(
      '1970-01-01T00:00:00.000Z',
      '1969-12-31T23:59:59.999Z',
      '0070-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
      '2024-02-29T12:00:00.000Z',
      '2100-02-29T00:00:00.000Z',
      '2000-02-29T00:00:00.000Z',
      '2026-12-31T23:59:60.000Z',
    );
    fc.assert(
      fc.property(fc.oneof(canonical, edges), (text) => {
        const fast = parseEventTime(text);
        const general = parseEventTime(text.replace('T', 't'));
        assert.equal(fast.ok, general.ok, text);
        if (fast.ok && general.ok) {
          assert.deepEqual(fast.value, general.value, text);
          // The instant and its text agree: nothing is read as another year.
          assert.equal(new Date(fast.value.ms).toISOString(), fast.value.iso, text);
        } else if (!fast.ok && !general.ok) assert.equal(fast.problems[0]!.code, general.problems[0]!.code, text);
      }),
      { numRuns: 5000 },
    );
  });

  it('treats null optional attributes as unset and accepts spec extensions', () => {
    const e = valid(
      validateEvent(
        event({
          dataschema: null,
          datacontenttype: 'application/json; charset=utf-8',
          traceparent: '00-abc-01',
          seq: -5,
          sampled: true,
          unsetext: null,
          ['x'.repeat(21)]: 'longer than recommended',
        }),
        0,
        CONTEXT,
      ),
    );
    assert.equal(e.id, 'evt-1');
    valid(validateEvent(event({ dataschema: 'https://schemas.northwind.example/api-request/v1' }), 0, CONTEXT));
    valid(validateEvent(event({ data: null }), 0, CONTEXT));
  });
});

describe('validateEvent: quarantine', () => {
  it('quarantines an unknown type with the raw event', () => {
    const raw = event({ type: 'com.northwind.unknown' });
    const verdict = validateEvent(raw, 3, CONTEXT);
    assert.ok(verdict.status === 'quarantined');
    assert.equal(verdict.reason, 'unknown_type');
    assert.deepEqual(
      verdict.problems.map((p) => [p.path, p.code]),
      [['type', 'unknown_type']],
    );
    assert.equal(verdict.event.raw, raw);
    assert.equal(verdict.event.customer, 'acme');
    assert.equal(verdict.event.content_hash, eventContentHash(raw));
  });

  it('quarantines an unknown subject', () => {
    const verdict = validateEvent(event({ subject: 'acme-eu' }), 0, CONTEXT);
    assert.ok(verdict.status === 'quarantined');
    assert.equal(verdict.reason, 'unknown_subject');
    assert.deepEqual(
      verdict.problems.map((p) => [p.path, p.code]),
      [['subject', 'unknown_subject']],
    );
    assert.equal(verdict.event.customer, null);
    assert.equal(verdict.event.time, '2026-11-03T10:00:00.000Z');
  });

  it('names the type when both type and subject are unknown', () => {
    const verdict = validateEvent(event({ subject: 'nobody', type: 'com.nobody' }), 0, CONTEXT);
    assert.ok(verdict.status === 'quarantined');
    assert.equal(verdict.reason, 'unknown_type');
  });

  it('rejects rather than quarantines an event that is malformed as well', () => {
    assert.equal(validateEvent(event({ type: 'com.northwind.unknown', time: 'soon' }), 0, CONTEXT).status, 'rejected');
  });

  it('accepts customers given as catalog records (CatalogIndex.customerByTenant)', () => {
    const ctx = { ...CONTEXT, customerByTenant: new Map([['acme-prod', { id: 'acme', name: 'Acme Corp' }]]) };
    assert.equal(valid(validateEvent(event(), 0, ctx)).customer, 'acme');
  });
});

describe('content hash', () => {
  const hashOf = (raw: unknown) => valid(validateEvent(raw, 0, CONTEXT)).content_hash;

  it('is SHA-256 over RFC 8785 canonical JSON of the event as received: member order does not matter', () => {
    const a = event();
    const b = Object.fromEntries(Object.entries(event()).reverse());
    assert.equal(hashOf(a), hashOf(b));
    assert.equal(hashOf(a), createHash('sha256').update(canonicalize(a)!).digest('hex'));
    assert.equal(hashOf(a), eventContentHash(a));
  });

  it('changes with any difference, even one that normalizes the same', () => {
    const base = hashOf(event());
    const variants = [
      event({ data: { region: 'eu-central-1' } }),
      event({ time: '2026-11-03T10:00:00.000Z' }),
      event({ time: '2026-11-03T11:00:00+01:00' }),
      event({ traceparent: 'x' }),
      event({ datacontenttype: 'application/json' }),
      event({ data: { region: 'us-east-1', extra: 1 } }),
    ];
    for (const v of variants) assert.notEqual(hashOf(v), base, JSON.stringify(v));
  });
});

describe('eventKey and parseNdjson', () => {
  it('keys events by (source, id) unambiguously', () => {
    assert.equal(eventKey('//a', '1'), eventKey('//a', '1'));
    assert.notEqual(eventKey('a\u0000b', 'c'), eventKey('a', 'b\u0000c'));
    assert.notEqual(eventKey('a', 'bc'), eventKey('ab', 'c'));
  });

  it('parses NDJSON line by line, skipping blank lines and naming malformed ones', () => {
    const text = `${JSON.stringify(event())}\r\n\n{not json\n  \n${JSON.stringify({ id: 2 })}\n`;
    const lines = parseNdjson(text);
    assert.deepEqual(
      lines.map((l) => l.line),
      [1, 3, 5],
    );
    assert.deepEqual(lines[0]!.value, event());
    assert.equal(lines[1]!.value, undefined);
    assert.equal(lines[1]!.problem?.path, 'line 3');
    assert.equal(lines[1]!.problem?.code, 'malformed_json');
    assert.deepEqual(lines[2]!.value, { id: 2 });
    assert.deepEqual(parseNdjson(''), []);
  });
});

describe('content hash fast path', () => {
  it('equals SHA-256 over the canonicalize package output for any JSON value', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const expected = createHash('sha256')
          .update(canonicalize(value) ?? 'null')
          .digest('hex');
        assert.equal(eventContentHash(value), expected);
      }),
      { numRuns: 2000 },
    );
  });
  it('equals it for strings of characters JSON escapes, quotes, backslashes, controls and astral ones', async () => {
    const fc = (await import('fast-check')).default;
    const unit = fc.constantFrom('a', '"', '\\', '\n', '\u0001', '\u001f', ' ', '\u007f', 'é', '\u2028', '\uD83D\uDE00', '\uFFFF', '/');
    const text = fc.array(unit, { maxLength: 8 }).map((units) => units.join(''));
    const value = fc.letrec<{ v: unknown }>((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, text, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(text, tie('v'), { maxKeys: 3 })),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        assert.equal(
          eventContentHash(v),
          createHash('sha256')
            .update(canonicalize(v) ?? 'null')
            .digest('hex'),
        );
      }),
      { numRuns: 2000 },
    );
  });
  it('gives the same verdict when the bytes vouch for the strings (plainText) as when they do not', async () => {
    const fc = (await import('fast-check')).default;
    // Printable ASCII without a quote or a backslash: what StrictJsonResult.plainText vouches for.
    const plain = fc.string({
      unit: fc
        .integer({ min: 0x20, max: 0x7e })
        .filter((c) => c !== 0x22 && c !== 0x5c)
        .map((c) => String.fromCharCode(c)),
      maxLength: 12,
    });
    const data = fc.dictionary(
      plain,
      fc.oneof(plain, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.dictionary(plain, plain, { maxKeys: 2 })),
      { maxKeys: 4 },
    );
    const raw = fc.record({
      id: plain,
      source: plain,
      type: fc.constantFrom('com.northwind.api.request', 'com.northwind.storage.usage', 'com.northwind.unknown'),
      subject: fc.constantFrom('acme-prod', 'nobody'),
      data: fc.oneof(
        data,
        data.map((d) => ({ ...d, region: 'eu-west-1', gb_hours: '2.5' })),
      ),
      extension: plain,
    });
    fc.assert(
      fc.property(raw, ({ extension, ...attributes }) => {
        const value = JSON.parse(JSON.stringify(event({ ...attributes, [`x${extension.replace(/[^a-z0-9]/g, '')}`]: extension })));
        assert.deepEqual(validateEvent(value, 0, { ...CONTEXT, plainText: true }), validateEvent(value, 0, CONTEXT));
      }),
      { numRuns: 2000 },
    );
  });
  it('writes values and dimensions as JSON.stringify does, whatever their names and strings hold', async () => {
    const fc = (await import('fast-check')).default;
    const unit = fc.constantFrom(
      'a',
      'z',
      '"',
      '\\',
      '\n',
      '\t',
      '\u0000',
      '\u001f',
      '\u007f',
      'é',
      '\u2028',
      '\uD83D',
      '\uDE00',
      '1',
      '_',
    );
    const text = fc.array(unit, { maxLength: 6 }).map((units) => units.join(''));
    const record = fc.dictionary(text, fc.oneof(text, fc.dictionary(text, text, { maxKeys: 4 })), { maxKeys: 5 });
    fc.assert(
      fc.property(record, (r) => assert.equal(stringRecordJson(r), JSON.stringify(r))),
      { numRuns: 3000 },
    );
    assert.equal(stringRecordJson({ b: '1', 10: 'x', 2: { z: '', a: '"' } }), JSON.stringify({ b: '1', 10: 'x', 2: { z: '', a: '"' } }));
  });
  it('agrees on NUL characters (the slow path) and on number forms', () => {
    for (const value of [{ 'b\u0000': 1 }, ['x\u0000', { z: 1, a: [2] }], { e: 1e21, f: -0, g: 0.1, h: 5e-7 }]) {
      assert.equal(
        eventContentHash(value),
        createHash('sha256')
          .update(canonicalize(value) ?? 'null')
          .digest('hex'),
      );
    }
  });
});

describe('strict NDJSON lines and a total content hash', () => {
  it('reads NDJSON bytes line by line strictly, naming the line and the byte', () => {
    const bytes = Buffer.concat([
      Buffer.from('{"id":"a"}\r\n'),
      Buffer.from('{"id":"collide-'),
      Buffer.from([0xfe]),
      Buffer.from('"}\n'),
      Buffer.from('{"id":"dk-2","id":"dk-3"}\n\n'),
      Buffer.from('{"data":{"gb_hours":1e-400}}'),
    ]);
    const lines = parseNdjson(bytes);
    assert.deepEqual(
      lines.map((l) => l.line),
      [1, 2, 3, 5],
    );
    assert.deepEqual(lines[0]!.value, { id: 'a' });
    assert.deepEqual([lines[1]!.problem?.path, lines[1]!.problem?.code], ['line 2', 'invalid_utf8']);
    assert.match(lines[1]!.problem!.message, /line 2, byte 15/);
    assert.deepEqual([lines[2]!.problem?.path, lines[2]!.problem?.code], ['id', 'duplicate_key']);
    assert.match(lines[2]!.problem!.message, /line 3, byte 13/);
    assert.deepEqual([lines[3]!.problem?.path, lines[3]!.problem?.code], ['data.gb_hours', 'inexact_number']);
    assert.deepEqual(parseNdjson(Buffer.alloc(0)), []);
  });

  it('hashes any value without throwing, deterministically, and valid JSON as RFC 8785 does', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 5000; i += 1) deep = [deep];
    // eslint-disable-next-line no-loss-of-precision -- 1e309 is the point: it overflows to Infinity, which must be refused
    for (const value of [[Infinity], { id: '\ud800' }, deep, [NaN, -Infinity], [{ e: 1e309 }]]) {
      const hash = eventContentHash(value);
      assert.match(hash, /^[0-9a-f]{64}$/);
      assert.equal(eventContentHash(value), hash);
    }
    assert.notEqual(eventContentHash([Infinity]), eventContentHash([-Infinity]));
    assert.notEqual(eventContentHash({ id: '\ud800' }), eventContentHash({ id: '\ud801' }));
  });
});
