// The CloudEvents SDK (cloudevents v10) as an independent checker of validateEvent: over generated, partly hostile
// CloudEvent-shaped objects, whatever Accrue takes as a CloudEvent (valid, or quarantined for the catalog) the SDK
// takes too; and every event the SDK builds for a known meter and tenant, Accrue takes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CloudEvent } from 'cloudevents';
import fc from 'fast-check';
import { parse } from 'yaml';
import type { Meter } from '../../src/domain/model.js';
import { validateEvent, type IngestContext } from '../../src/ingest/cloudevent.js';

const CATALOG = parse(readFileSync(new URL('../../examples/northwind/catalog.yaml', import.meta.url), 'utf8')) as {
  meters: Array<Partial<Meter> & Pick<Meter, 'id' | 'event_type' | 'aggregation'>>;
  customers: Array<{ id: string; tenants: string[] }>;
};
const METERS: Meter[] = CATALOG.meters.map((m) => ({ ...m, group_by: m.group_by ?? [], allow_negative: m.allow_negative ?? false }));
const NOW = new Date('2026-12-01T00:05:00Z');
const CONTEXT: IngestContext = {
  metersByType: METERS.reduce((map, m) => map.set(m.event_type, [...(map.get(m.event_type) ?? []), m]), new Map<string, Meter[]>()),
  customerByTenant: new Map(CATALOG.customers.flatMap((c) => c.tenants.map((t) => [t, c.id] as const))),
  now: NOW,
  futureSkewMsMax: 5 * 60 * 1000,
};
const TENANT = CATALOG.customers[0]!.tenants[0]!;

type SdkVerdict = { valid: true } | { valid: false; why: string; faults: string[] };

/** The SDK's verdict: the strict constructor (extension names and values, then the JSON schema) and validate(). */
function sdkVerdict(raw: Record<string, unknown>): SdkVerdict {
  try {
    new CloudEvent(raw, true).validate();
    return { valid: true };
  } catch (error) {
    const errors = (error as { errors?: Array<{ instancePath?: string; keyword?: string }> }).errors ?? [];
    const faults = errors.map((e) => `${e.instancePath}:${e.keyword}`);
    return {
      valid: false,
      why: String((error as Error).message)
        .split('\n')
        .slice(0, 2)
        .join(' '),
      faults,
    };
  }
}

/** The SDK refuses `schemaurl` on any 1.0 event (a 0.3 attribute); CloudEvents 1.0 makes it a legal extension name. */
const sdkOverStrict = (sdk: SdkVerdict) => !sdk.valid && sdk.why.startsWith('cannot set schemaurl on version 1.0 event');
const BASE = {
  specversion: '1.0',
  id: 'e1',
  source: '//n',
  type: 'com.northwind.api.request',
  subject: TENANT,
  time: '2026-11-03T10:00:00Z',
  data: { region: 'us-east-1' },
};

/** Attribute names the SDK's constructor reads itself (1.0 and 0.3), never as extensions. */
const SDK_KNOWN = new Set([
  'id',
  'time',
  'type',
  'source',
  'specversion',
  'datacontenttype',
  'subject',
  'datacontentencoding',
  'dataschema',
  'schemaurl',
  'data',
]);

const accrueTakes = (raw: unknown) => validateEvent(raw, 0, CONTEXT).status !== 'rejected';

const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('', ' ', 'a\u0000b', 'x\ud800', '\udc00y', 'a b', 'é', '\u007f'),
);

const goodTime = fc.oneof(
  fc.constantFrom('2026-11-03T10:00:00Z', '2026-11-03T10:00:00.123+05:30', '2026-11-29T23:59:59.999999-08:00'),
  fc.date({ min: new Date('1971-01-01'), max: NOW, noInvalidDate: true }).map((d) => d.toISOString()),
);
const badTime = fc.oneof(
  fc.constantFrom(
    'yesterday',
    '2026-11-03T10:00:00',
    '2026-11-03 10:00:00Z',
    '2026-11-03t10:00:00z',
    '2026-13-03T10:00:00Z',
    '2026-02-30T10:00:00Z',
    '2026-06-30T23:59:60Z',
    '2026-11-03T24:00:00Z',
    '2026-11-03T10:00:00+25:00',
    '2026-11-03',
    '1960-01-01T00:00:00Z',
    '2031-01-01T00:00:00Z',
    '',
  ),
  hostileString,
  fc.integer(),
);
const goodData = fc.record({ region: fc.constantFrom('us-east-1', 'eu-central-1'), bytes: fc.constantFrom(1, '2', 3.5) });
const badData = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 3 }),
  fc.constantFrom(null, 'text', [1, 2]),
);
const extensionName = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z0-9]{1,24}$/) },
  fc.constantFrom('Region', 'tenant_id', 'x-y', 'a.b', 'ümlaut', '', 'schemaurl', 'datacontentencoding', 'traceparent'),
  hostileString,
);
const extensionValue = fc.oneof(
  { weight: 3, arbitrary: fc.oneof(fc.string({ maxLength: 8 }), fc.boolean(), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })) },
  hostileString,
  fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 1.5, Number.NaN, null, {}, [], { a: 1 }),
);

/** Per attribute: right values, and what may replace them (undefined: the attribute is left out). */
const ATTRIBUTES = {
  specversion: [fc.constant('1.0'), fc.oneof(fc.constantFrom('0.3', '2.0', '1', '', '1.0 '), fc.integer())],
  id: [fc.stringMatching(/^[a-z0-9-]{1,12}$/), fc.oneof(hostileString, fc.integer())],
  source: [
    fc.constantFrom('//northwind/api-gateway', 'https://example.com/x', 'urn:x:y', '/rel/path'),
    fc.oneof(hostileString, fc.integer(), fc.constantFrom('{', 'a|b', 'https://example.com/%zz', 'x\\y', '#frag', '?q')),
  ],
  type: [fc.constantFrom(...METERS.map((m) => m.event_type)), hostileString],
  subject: [fc.constant(TENANT), fc.oneof(fc.constant('unknown-tenant'), hostileString)],
  time: [goodTime, badTime],
  datacontenttype: [fc.constantFrom('application/json', 'application/json; charset=utf-8'), fc.constantFrom('text/plain', '', 7)],
  dataschema: [
    fc.constantFrom('https://example.com/schema', 'urn:schema:x'),
    fc.constantFrom('x y', 'rel/path', '', 7, 'https://example.com/{x}', 'urn:é', 'https://example.com/a%zz'),
  ],
  data: [goodData, badData],
} as const;
type Attribute = keyof typeof ATTRIBUTES;
const NAMES = Object.keys(ATTRIBUTES) as Attribute[];
const OPTIONAL = new Set<Attribute>(['datacontenttype', 'dataschema', 'data']);

/** A CloudEvent-shaped object: right attributes with up to three replaced by hostile values or left out, and extensions. */
const shaped = fc
  .record({
    good: fc.record(Object.fromEntries(NAMES.map((n) => [n, ATTRIBUTES[n][0]])) as Record<Attribute, fc.Arbitrary<unknown>>),
    present: fc.subarray([...OPTIONAL]),
    faults: fc.array(
      fc
        .constantFrom(...NAMES)
        .chain((n) => fc.tuple(fc.constant(n), fc.option(ATTRIBUTES[n][1] as fc.Arbitrary<unknown>, { nil: undefined }))),
      { maxLength: 3 },
    ),
    extensions: fc.dictionary(extensionName, extensionValue, { maxKeys: 3 }),
  })
  .map(({ good, present, faults, extensions }) => {
    const attributes: Record<string, unknown> = { ...good };
    for (const name of OPTIONAL) if (!present.includes(name)) delete attributes[name];
    for (const [name, value] of faults) attributes[name] = value;
    const event: Record<string, unknown> = {};
    for (const [name, value] of Object.entries({ ...extensions, ...attributes })) if (value !== undefined) event[name] = value;
    return event;
  });

describe('validateEvent against the CloudEvents SDK', () => {
  it('whatever Accrue takes as a CloudEvent (valid or quarantined), the SDK takes too (but for the two cases below)', () => {
    fc.assert(
      fc.property(shaped, (raw) => {
        if (!accrueTakes(raw)) return;
        const sdk = sdkVerdict(raw);
        if (sdk.valid || sdkOverStrict(sdk)) return;
        assert.fail(`Accrue took ${JSON.stringify(raw)} but the SDK refuses it: ${sdk.why}`);
      }),
      { numRuns: 4000 },
    );
  });

  it('the SDK is wrong to refuse schemaurl on a 1.0 event: in CloudEvents 1.0 it is a plain extension name', () => {
    const raw = { ...BASE, schemaurl: 'https://example.com/s' };
    const sdk = sdkVerdict(raw);
    assert.ok(!sdk.valid && sdkOverStrict(sdk));
    assert.equal(validateEvent(raw, 0, CONTEXT).status, 'valid');
  });

  // Found by the property above; src/ingest is not changed in this task (issue #16 keeps behaviour identical).
  it('a source that is not an RFC 3986 URI-reference is refused, as the SDK does', () => {
    for (const source of ['{', 'a|b', 'é', 'https://example.com/%zz', 'x\\y', '\u200b']) {
      const raw = { ...BASE, source };
      assert.equal(sdkVerdict(raw).valid, false, source);
      assert.equal(validateEvent(raw, 0, CONTEXT).status, 'rejected', `Accrue takes source ${JSON.stringify(source)}`);
    }
  });

  it('a dataschema that is not an RFC 3986 URI is refused, as the SDK does', () => {
    for (const dataschema of ['https://example.com/{x}', 'urn:é', 'https://example.com/a%zz']) {
      const raw = { ...BASE, dataschema };
      assert.equal(sdkVerdict(raw).valid, false, dataschema);
      assert.equal(validateEvent(raw, 0, CONTEXT).status, 'rejected', `Accrue takes dataschema ${JSON.stringify(dataschema)}`);
    }
  });

  it('every event the SDK builds for a known meter and tenant, as structured mode sends it, Accrue answers valid', () => {
    const sdkBuilt = fc.record({
      id: fc.string({ minLength: 1, maxLength: 20 }),
      source: ATTRIBUTES.source[0],
      time: goodTime,
      dataschema: fc.option(ATTRIBUTES.dataschema[0], { nil: undefined }),
      extensions: fc.dictionary(
        fc.stringMatching(/^[a-z0-9]{1,20}$/).filter((n) => !SDK_KNOWN.has(n)),
        fc.oneof(fc.string({ maxLength: 20 }), fc.boolean(), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
        { maxKeys: 4 },
      ),
    });
    fc.assert(
      fc.property(sdkBuilt, ({ extensions, ...attributes }) => {
        const event = new CloudEvent({ ...extensions, ...attributes, type: BASE.type, subject: TENANT, data: BASE.data });
        const sent: unknown = JSON.parse(JSON.stringify(event));
        const verdict = validateEvent(sent, 0, CONTEXT);
        assert.equal(verdict.status, 'valid', `${JSON.stringify(sent)}: ${JSON.stringify(verdict)}`);
      }),
      { numRuns: 1000 },
    );
  });

  it('the SDK refusing an event means Accrue refuses it (spot checks of each kind of fault)', () => {
    const base = {
      specversion: '1.0',
      id: 'e1',
      source: '//n',
      type: METERS[0]!.event_type,
      subject: TENANT,
      time: '2026-11-03T10:00:00Z',
    };
    const faults: Record<string, unknown>[] = [
      { ...base, source: '' },
      { ...base, source: 'a b' },
      { ...base, type: '' },
      { ...base, subject: '' },
      { ...base, id: 5 },
      { ...base, time: 'yesterday' },
      { ...base, time: '2026-13-03T10:00:00Z' },
      { ...base, time: 5 },
      { ...base, dataschema: 'x y' },
      { ...base, Region: 'x' },
      { ...base, 'x-y': 'x' },
      { ...base, ratio: 1.5 },
    ];
    for (const raw of faults) {
      assert.equal(sdkVerdict(raw).valid, false, `the SDK refuses ${JSON.stringify(raw)}`);
      assert.equal(validateEvent(raw, 0, CONTEXT).status, 'rejected', `Accrue refuses ${JSON.stringify(raw)}`);
    }
  });
});
