// Every operation of the OpenAPI document, driven with generated requests: values valid by the document's own schemas,
// values the running system knows (invoice numbers, customers, periods), and hostile ones (NUL, lone surrogates, huge,
// negative and fractional numbers, 1e309 as raw text, 40-digit numbers, long strings, deep nesting, wrong types, bad
// percent-encoding). Whatever is sent: never a 5xx, every 4xx an RFC 9457 problem with its status documented, every 2xx
// matching the schema the document gives for it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { buildServer } from '../../src/api/server.js';
import { testKey, OPERATOR_AUDITOR } from '../support/keys.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { signWebhook } from '../../src/settle/payments.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const SECRET = 'whsec_fuzz';
/** Requests per operation: enough to reach the schema branches and hostile values, bounded so the file runs in about a minute. */
const RUNS_PER_OPERATION = 100;

type Schema = Record<string, unknown> & {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
};
interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema: Schema;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
  security?: unknown[];
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

let store: Store;
let app: FastifyInstance;
let admin: string;
let doc: Document;
let ajv: Ajv2020;
/** Values the system holds, by parameter or field name, so generated requests also reach the 2xx paths. */
const known = new Map<string, unknown[]>();

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'fuzz' });
  assert.ok(applied.ok);
  const catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(
    store.pool,
    catalog,
    [
      {
        specversion: '1.0',
        id: 'f1',
        source: '//fuzz',
        type: 'com.northwind.api.request',
        subject: 'umbrella',
        time: '2026-10-02T00:00:00Z',
        data: { region: 'eu-west-1' },
      },
      {
        specversion: '1.0',
        id: 'f2',
        source: '//fuzz',
        type: 'com.northwind.api.request',
        subject: 'acme-prod',
        time: '2026-10-03T00:00:00Z',
        data: { region: 'us-east-1' },
      },
    ],
    { channel: 'file', now: new Date('2026-11-01T00:00:00Z') },
  );
  const closed = await closePeriod(store.pool, catalog, { period: '2026-10' });
  // Failed authentication is never the point here: the limit is out of reach.
  app = await buildServer({
    pool: store.pool,
    approvalRequired: [] /* the controls' own tests cover approval */,
    webhookSecret: SECRET,
    authFailureLimit: { failuresMax: Number.MAX_SAFE_INTEGER },
  });
  admin = (await testKey(store.pool, { name: 'fuzz', roles: OPERATOR_AUDITOR })).secret;
  await app.ready();
  doc = JSON.parse(JSON.stringify(app.swagger())) as Document;
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema(doc as unknown as Record<string, unknown>, 'openapi');

  const invoices = closed.invoices.flatMap((i) => [i.id, i.number ?? i.id]);
  const customers = catalog.catalog.customers.map((c) => c.id);
  const entities = [...catalog.index.legalEntities.keys()];
  const seqs = (await store.pool.query<{ seq: string }>('SELECT seq::text FROM audit_log ORDER BY seq LIMIT 3')).rows.map((r) => r.seq);
  known.set('id', [...invoices, ...customers, 'f1']);
  known.set('invoice', invoices);
  known.set('customer', customers);
  known.set('entity', entities);
  known.set('legal_entity', entities);
  known.set('period', ['2026-10', '2026-11']);
  known.set('from', ['2026-10-01', '2026-10-01T00:00:00Z']);
  known.set('to', ['2026-11-01', '2026-11-01T00:00:00+01:00']);
  known.set(
    'meter',
    catalog.catalog.meters.map((m) => m.id),
  );
  known.set('source', ['//fuzz']);
  known.set('after', seqs);
  known.set('currency', ['EUR', 'USD', 'JPY', 'KWD']);
  // The catalog in force, applied again (a no-op answered 200), as YAML text and as a JSON object.
  const catalogYaml = readFileSync('examples/northwind/catalog.yaml', 'utf8');
  known.set('body:applyCatalog', [catalogYaml, parse(catalogYaml)]);
});
after(async () => {
  await app?.close();
  await store?.close();
});

// ---------- values ----------

const HOSTILE_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfffy',
  '\u001b[31m',
  '\u202e',
  '𝟘𝟙',
  '9'.repeat(40),
  '99999999999999999999999',
  '9223372036854775808',
  '9223372036854775807',
  '-1',
  '0',
  '00',
  '1.5',
  '-0',
  '1e309',
  '1e3',
  '0x10',
  'NaN',
  'Infinity',
  '9999-12',
  '0000-01',
  '2026-13',
  '2026-02-30',
  '2026-02-29',
  '0000-01-01',
  '9999-12-31',
  '+275760-09-13',
  '2026-10-01T25:00:00Z',
  '2026-10-01T00:00:00',
  '../../etc/passwd',
  "'; DROP TABLE invoices; --",
  '%00',
  'null',
  '{}',
  'a'.repeat(300),
  'b'.repeat(5000),
];

const hostileString = fc.oneof(
  { arbitrary: fc.constantFrom(...HOSTILE_STRINGS), weight: 6 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 30 }), weight: 2 },
  {
    arbitrary: fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 3 }),
    weight: 1,
  },
);

/** JSON values of every type, numbers at their edges, nested deep. */
const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: hostileString, weight: 8 },
  { arbitrary: fc.constantFrom(0, -1, 1.5, -0, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 2 ** 63, true, false, null, [], {}), weight: 2 },
  { arbitrary: fc.double(), weight: 1 },
  { arbitrary: fc.integer(), weight: 1 },
  { arbitrary: fc.constant(nest(200)), weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 },
);

function nest(depth: number): unknown {
  let value: unknown = 'deep';
  for (let i = 0; i < depth; i += 1) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

function resolve(schema: Schema): Schema {
  let current = schema;
  while (current.$ref) {
    const name = current.$ref.replace('#/components/schemas/', '');
    current = doc.components.schemas[name]!;
  }
  return current;
}

const dateIn = (from: string, to: string) => fc.date({ min: new Date(from), max: new Date(to), noInvalidDate: true });

/** Values valid by the schema (the generator understands the keywords the document uses). */
function valid(schemaIn: Schema, depth = 0, hostile = false): fc.Arbitrary<unknown> {
  const schema = resolve(schemaIn);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) return fc.oneof(...branches.map((b) => valid(b, depth)));
  const types = ([] as string[]).concat(schema.type ?? []);
  if (types.length > 1) return fc.oneof(...types.map((type) => valid({ ...schema, type }, depth)));
  switch (types[0]) {
    case 'string': {
      const minLength = (schema.minLength as number | undefined) ?? 0;
      const maxLength = (schema.maxLength as number | undefined) ?? 64;
      if (schema.format === 'date') return dateIn('1970-01-01', '9998-12-31').map((d) => d.toISOString().slice(0, 10));
      if (schema.format === 'date-time') return dateIn('1970-01-01', '9998-12-31').map((d) => d.toISOString());
      const base = schema.pattern
        ? fc.stringMatching(new RegExp(schema.pattern as string, 'u'))
        : fc.string({ minLength, maxLength: Math.min(maxLength, 64) });
      return base.filter((s) => s.length >= minLength && s.length <= maxLength);
    }
    case 'integer':
      return fc.integer({
        min: (schema.minimum as number | undefined) ?? -1_000_000,
        max: (schema.maximum as number | undefined) ?? 1_000_000,
      });
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return depth > 4
        ? fc.constant([])
        : fc.array(schema.items ? valid(schema.items, depth + 1) : fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 });
    case 'object': {
      if (!schema.properties || depth > 4)
        return fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
      const properties = Object.entries(schema.properties);
      const record = (hostileName?: string) => {
        const model: Record<string, fc.Arbitrary<unknown>> = {};
        for (const [name, property] of properties) model[name] = field(name, property, name === hostileName, depth + 1);
        // The hostile field is always sent; the others as the schema allows.
        return fc.record(model, { requiredKeys: [...(schema.required ?? []), ...(hostileName ? [hostileName] : [])] });
      };
      // Hostile: one field hostile and the others valid, so the hostile value is what the server has to answer.
      return hostile && properties.length > 0 ? fc.constantFrom(...properties.map(([name]) => name)).chain(record) : record();
    }
    default:
      return fc.jsonValue({ maxDepth: 3 });
  }
}

/** Valid text pushed just past what a database column or a calendar holds, or given a character text cannot hold. */
const MUTATIONS: Array<(v: string) => string> = [
  (v) => `${v}\u0000`,
  (v) => `\u0000${v}`,
  (v) => `${v.slice(0, -1)}\ud800`,
  (v) => `${v}9999999999999999999999`,
  (v) => (/^\d+$/.test(v) ? (BigInt(v) + 2n ** 63n).toString() : `${v}0`),
  (v) => `-${v}`,
  (v) => `${v}.5`,
  (v) => v.repeat(Math.ceil(3000 / Math.max(1, v.length))),
  (v) => v.replace(/^\d{4}/, '9999'),
  (v) => v.replace(/^\d{4}/, '0000'),
  (v) => v.replace(/^(\d{4}-\d{2})-\d{2}/, '$1-31'),
  (v) => v.replace(/^(\d{4})-\d{2}/, '$1-02').replace(/^(\d{4}-02)-\d{2}/, '$1-30'),
  (v) => v.replace(/T\d{2}/, 'T24'),
  (v) => v.toLowerCase(),
  (v) => ` ${v}`,
];

/** The value with one of its strings (a leaf or a key, at any depth; `pick` chooses which) mutated. */
function mutateOne(value: unknown, mutate: (v: string) => string, pick: number): unknown {
  let count = 0;
  const countStrings = (node: unknown): void => {
    if (typeof node === 'string') count += 1;
    else if (Array.isArray(node)) node.forEach(countStrings);
    else if (typeof node === 'object' && node !== null)
      for (const [, item] of Object.entries(node)) {
        count += 1;
        countStrings(item);
      }
  };
  countStrings(value);
  if (count === 0) return value;
  let target = pick % count;
  const rebuild = (node: unknown): unknown => {
    if (typeof node === 'string') return target-- === 0 ? mutate(node) : node;
    if (Array.isArray(node)) return node.map(rebuild);
    if (typeof node === 'object' && node !== null) {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [target-- === 0 ? mutate(key) : key, rebuild(item)]));
    }
    return node;
  };
  return rebuild(value);
}

/** A named field or parameter: a known value, a valid one or (when hostile) a hostile one. */
function field(name: string, schema: Schema, hostile: boolean, depth = 0): fc.Arbitrary<unknown> {
  const options: Array<fc.WeightedArbitrary<unknown>> = [{ arbitrary: valid(schema, depth, hostile), weight: hostile ? 2 : 4 }];
  if (hostile) {
    options.push({ arbitrary: hostileJson, weight: 4 });
    const start = known.get(name)?.length ? fc.oneof(valid(schema, depth), fc.constantFrom(...known.get(name)!)) : valid(schema, depth);
    options.push({
      arbitrary: fc.tuple(start, fc.constantFrom(...MUTATIONS), fc.nat()).map(([v, mutate, pick]) => mutateOne(v, mutate, pick)),
      weight: 4,
    });
  }
  const values = known.get(name);
  if (values?.length) options.push({ arbitrary: fc.constantFrom(...values), weight: 3 });
  return fc.oneof(...options);
}

/** Text for a URL: valid, known or hostile strings (numbers and other types as their text). */
const urlText = (name: string, schema: Schema, hostile: boolean) => {
  const text = field(name, schema, hostile).map((v) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? '')));
  return hostile
    ? fc.oneof(
        { arbitrary: text, weight: 10 },
        { arbitrary: fc.constantFrom('%', '%zz', '%C0%AF', '%FF', '%ED%A0%80', '%E0%A4%A'), weight: 1 },
      )
    : text;
};

/** Percent-encodes as UTF-8, a lone surrogate as the three bytes it would have (WTF-8), so the server sees it. Raw `%..` tokens pass through. */
function encode(text: string): string {
  if (/^%/.test(text) && text.length <= 9 && !/[^%0-9A-Za-z]/.test(text)) return text;
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i]!;
    if (/[A-Za-z0-9\-_.~]/.test(ch)) {
      out += ch;
      continue;
    }
    let cp = text.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        cp = ((cp - 0xd800) << 10) + (low - 0xdc00) + 0x10000;
        i += 1;
      }
    }
    const bytes =
      cp < 0x80
        ? [cp]
        : cp < 0x800
          ? [0xc0 | (cp >> 6), 0x80 | (cp & 63)]
          : cp < 0x10000
            ? [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)]
            : [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
    out += bytes.map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}

const HOSTILE_BODIES = [
  '',
  'null',
  '[]',
  '{',
  '{"amount": 1e309}',
  '{"id": "\\u0000", "invoice": "\\ud800"}',
  '{"a": 1, "a": 2}',
  '1234567890123456789012345678901234567890',
  '"\\ud800"',
  '['.repeat(5000) + ']'.repeat(5000),
  '{"a":'.repeat(3000) + '1' + '}'.repeat(3000),
  JSON.stringify({ x: 'y'.repeat(100_000) }),
];

interface Request {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

/**
 * A third of the requests valid by the document (known values mixed in); the others with one hostile part (a path
 * parameter, a query parameter, a body field, the raw body or an extra query parameter) and every other part valid,
 * so each hostile value reaches the code that has to answer it rather than being refused for a neighbour.
 */
const requests = (path: string, method: string, operation: Operation): fc.Arbitrary<Request> => {
  const parameters = (operation.parameters ?? []).filter((p) => p.in === 'path' || p.in === 'query');
  const slots = parameters.length + (operation.requestBody ? 1 : 0) + 1;
  return fc.oneof(
    { arbitrary: requestsOf(path, method, operation, undefined), weight: 1 },
    { arbitrary: fc.integer({ min: 0, max: slots - 1 }).chain((slot) => requestsOf(path, method, operation, slot)), weight: 2 },
  );
};

/** `hostileSlot`: the path and query parameters in order, then the body, then an extra query parameter. */
function requestsOf(path: string, method: string, operation: Operation, hostileSlot: number | undefined): fc.Arbitrary<Request> {
  const parameters = (operation.parameters ?? []).filter((p) => p.in === 'path' || p.in === 'query');
  const hostileParameter = (p: Parameter) => hostileSlot === parameters.indexOf(p);
  const pathParams = parameters.filter((p) => p.in === 'path');
  const queryParams = parameters.filter((p) => p.in === 'query');
  const pathArb = fc.tuple(...pathParams.map((p) => urlText(p.name, p.schema, hostileParameter(p))));
  const queryArb = fc.tuple(
    ...queryParams.map((p) =>
      p.required || hostileParameter(p)
        ? urlText(p.name, p.schema, hostileParameter(p)).map((v) => [p.name, v] as const)
        : fc.option(urlText(p.name, p.schema, false), { nil: undefined }).map((v) => [p.name, v] as const),
    ),
  );
  const hostile = hostileSlot === parameters.length; // the body
  const extraQuery =
    hostileSlot !== undefined && hostileSlot > parameters.length - (operation.requestBody ? 0 : 1)
      ? fc.tuple(fc.constantFrom('unknown', 'limit', '__proto__', 'constructor'), fc.constantFrom(...HOSTILE_STRINGS))
      : fc.constant(undefined);
  const contents = Object.entries(operation.requestBody?.content ?? {});
  const generated =
    contents.length === 0
      ? fc.constant({})
      : fc.constantFrom(...contents).chain(([type, { schema }]) =>
          field(`body:${operation.operationId}`, schema, hostile).map((value) => ({
            type,
            payload: typeof value === 'string' && resolve(schema).type === 'string' ? value : (JSON.stringify(value) ?? 'null'),
          })),
        );
  const body: fc.Arbitrary<{ type?: string; payload?: string | Buffer }> =
    contents.length === 0
      ? fc.constant({})
      : !hostile
        ? generated
        : fc.oneof(
            { arbitrary: generated, weight: 6 },
            {
              arbitrary: fc
                .tuple(fc.constantFrom(...contents.map(([type]) => type)), fc.constantFrom(...HOSTILE_BODIES))
                .map(([type, payload]) => ({ type, payload })),
              weight: 2,
            },
            {
              arbitrary: fc
                .constantFrom(...contents.map(([type]) => type))
                .map((type) => ({ type, payload: Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]) })),
              weight: 1,
            },
            { arbitrary: fc.constantFrom('text/plain', 'application/xml').map((type) => ({ type, payload: '{}' })), weight: 1 },
          );
  return fc.tuple(pathArb, queryArb, extraQuery, body).map(([pathValues, query, extra, { type, payload }]) => {
    let url = path;
    pathParams.forEach((p, i) => {
      url = url.replace(`{${p.name}}`, encode(pathValues[i]!));
    });
    const pairs = query.filter(([, v]) => v !== undefined).map(([k, v]) => `${encode(k)}=${encode(v!)}`);
    if (extra) pairs.push(`${extra[0]}=${encode(extra[1])}`);
    if (pairs.length > 0) url += `?${pairs.join('&')}`;
    const headers: Record<string, string> = { authorization: `Bearer ${admin}` };
    if (type) headers['content-type'] = type;
    if (path === '/v1/payments' && payload !== undefined) {
      headers['accrue-signature'] = signWebhook(
        SECRET,
        typeof payload === 'string' ? payload : payload.toString('utf8'),
        Math.floor(Date.now() / 1000),
      );
    }
    return { method: method.toUpperCase(), url, headers, ...(payload !== undefined ? { payload } : {}) };
  });
}

function responseSchema(path: string, method: string, status: number, type: string): string | undefined {
  const content = doc.paths[path]![method]!.responses[String(status)]?.content;
  if (!content?.[type]) return undefined;
  const pointer = ['paths', path, method, 'responses', String(status), 'content', type, 'schema']
    .map((s) => s.replace(/~/g, '~0').replace(/\//g, '~1'))
    .join('/');
  return `openapi#/${pointer}`;
}

const shown = (request: Request) =>
  JSON.stringify({
    ...request,
    headers: { ...request.headers, authorization: 'Bearer <admin>' },
    payload: typeof request.payload === 'string' ? request.payload.slice(0, 300) : request.payload?.toString('hex'),
  });

async function check(path: string, method: string, request: Request, statuses: Map<number, number>): Promise<void> {
  const response = await app.inject(request);
  statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
  const where = `${method.toUpperCase()} ${path}: ${shown(request)} -> ${response.statusCode} ${response.body.slice(0, 500)}`;
  assert.ok(response.statusCode < 500, `a 5xx: ${where}`);
  const type = String(response.headers['content-type'] ?? '').split(';')[0]!;
  const documented = doc.paths[path]![method]!.responses[String(response.statusCode)];
  if (response.statusCode >= 400) {
    assert.equal(type, 'application/problem+json', `a 4xx that is not a problem: ${where}`);
    const problem = response.json() as { status?: unknown };
    assert.ok(ajv.validate({ $ref: 'openapi#/components/schemas/Problem' }, problem), `not a problem (${ajv.errorsText()}): ${where}`);
    assert.equal(problem.status, response.statusCode, where);
    if (response.statusCode !== 405) assert.ok(documented, `an undocumented ${response.statusCode}: ${where}`);
    return;
  }
  assert.ok(documented, `an undocumented ${response.statusCode}: ${where}`);
  if (type === 'application/pdf') return;
  const ref = responseSchema(path, method, response.statusCode, 'application/json');
  assert.ok(ref, `no JSON schema for ${response.statusCode}: ${where}`);
  assert.ok(
    ajv.validate({ $ref: ref }, response.json()),
    `the ${response.statusCode} body does not match its schema (${ajv.errorsText()}): ${where}`,
  );
}

describe('every operation of openapi.json, fuzzed', () => {
  it('covers every documented operation', () => {
    const operations = Object.values(doc.paths).flatMap((item) => Object.keys(item));
    assert.ok(operations.length >= 29, `${operations.length} operations`);
  });

  // One test per operation, so every operation runs and each failure names its own.
  // The operations are listed from the checked-in document (test/integration/openapi.test.ts keeps it equal to the routes).
  const checkedIn = JSON.parse(readFileSync('openapi.json', 'utf8')) as Document;
  for (const [path, method] of Object.entries(checkedIn.paths).flatMap(([p, item]) => Object.keys(item).map((m) => [p, m] as const))) {
    it(`${method.toUpperCase()} ${path}: never a 5xx, every 4xx a documented problem, every 2xx as documented`, async (t) => {
      const operation = doc.paths[path]?.[method];
      assert.ok(operation, `${method} ${path} is served`);
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(requests(path, method, operation), (request) => check(path, method, request, statuses)),
        { numRuns: RUNS_PER_OPERATION, includeErrorInReport: true },
      );
      t.diagnostic(
        `statuses: ${[...statuses]
          .sort(([a], [b]) => a - b)
          .map(([s, n]) => `${s}×${n}`)
          .join(' ')}`,
      );
    });
  }
});
