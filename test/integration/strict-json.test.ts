// Issue #14: how Accrue reads JSON and events at the edge. Every body goes through the real Fastify server
// (app.inject): invalid UTF-8, repeated keys, inexact numbers, NUL and lone surrogates, deep nesting, huge NDJSON
// bodies and malformed ce-* headers are answered with a 4xx naming the field and the byte, never a 5xx, never a
// rewrite; a valid event is stored exactly as sent.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { buildServer } from '../../src/api/server.js';
import { testKey, OPERATOR_AUDITOR } from '../support/keys.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { decodeMessage } from '../../src/stream/consumer.js';

const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
const SECRET = 'whsec-strict-json';
const SOURCE = '//strict-json';
let store: Store;
let app: FastifyInstance;
let admin: string;
let ingestKey: string;
const TIME = new Date(Date.now() - 60_000).toISOString();

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const CE = 'application/cloudevents+json';
const BATCH = 'application/cloudevents-batch+json';
const NDJSON = 'application/x-ndjson';

function event(id: string, overrides: Record<string, unknown> = {}) {
  return {
    specversion: '1.0',
    id,
    source: SOURCE,
    type: 'com.northwind.storage.usage',
    subject: 'acme-prod',
    time: TIME,
    data: { gb_hours: '1' },
    ...overrides,
  };
}
const post = (contentType: string, payload: string | Buffer, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/v1/events', headers: { ...auth(ingestKey), 'content-type': contentType, ...headers }, payload });
const bytes = (...parts: Array<string | number[]>) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

async function stored(id: string): Promise<{ id: string; data: unknown; meter_values: Record<string, string> } | undefined> {
  const rows = await store.pool.query('SELECT id, data, meter_values FROM events WHERE source = $1 AND id = $2', [SOURCE, id]);
  return rows.rows[0];
}
async function storedLike(pattern: string): Promise<number> {
  return (await store.pool.query('SELECT count(*)::int AS n FROM events WHERE source = $1 AND id LIKE $2', [SOURCE, pattern])).rows[0].n;
}
function assertProblem(
  res: { statusCode: number; body: string; headers: Record<string, unknown> },
  status: number,
  code: string,
  path: string,
  where?: RegExp,
) {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = JSON.parse(res.body);
  assert.equal(body.type, `https://accrue.dev/problems/${code}`, res.body);
  assert.equal(body.errors?.[0]?.path, path, res.body);
  if (where) assert.match(body.errors[0].message, where, res.body);
  return body;
}

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, NORTHWIND, { by: 'test' });
  assert.ok(applied.ok);
  app = await buildServer({ pool: store.pool, approvalRequired: [] /* the controls' own tests cover approval */, webhookSecret: SECRET });
  admin = (await testKey(store.pool, { name: 'admin', roles: OPERATOR_AUDITOR })).secret;
  ingestKey = (await testKey(store.pool, { name: 'ingest', roles: ['ingest'] })).secret;
});
after(async () => {
  await app.close();
  await store.close();
});

describe('invalid UTF-8 is refused naming the byte, never replaced (#14 item 1)', () => {
  it('keeps collide-\\xfe and collide-\\xff from collapsing: both refused, nothing stored', async () => {
    for (const bad of [0xfe, 0xff]) {
      const body = bytes(
        '{"specversion":"1.0","id":"collide-',
        [bad],
        `","source":"${SOURCE}","type":"com.northwind.storage.usage","subject":"acme-prod","time":"${TIME}","data":{"gb_hours":"1"}}`,
      );
      assertProblem(await post(CE, body), 400, 'invalid_utf8', '', /at byte 35/);
    }
    assert.equal(await storedLike('collide-%'), 0);
    // Ids distinct in bytes stay distinct.
    for (const id of ['collide-þ', 'collide-ÿ', 'collide-\ufffd'])
      assert.equal((await post(CE, JSON.stringify(event(id)))).statusCode, 200);
    assert.equal(await storedLike('collide-%'), 3);
  });

  it('refuses invalid bytes in a batch, in NDJSON, in binary-mode data and in any JSON body', async () => {
    const batch = bytes('[', JSON.stringify(event('u-1')), ',{"id":"u-', [0xc3, 0x28], '"}]');
    assertProblem(await post(BATCH, batch), 400, 'invalid_utf8', '', /byte \d+/);
    const ndjson = bytes(JSON.stringify(event('u-2')), '\n{"id":"', [0xed, 0xa0, 0x80], '"}\n');
    assertProblem(await post(NDJSON, ndjson), 400, 'invalid_utf8', '', /line 2/);
    const binary = await post('application/json', bytes('{"gb_hours":"1","note":"', [0xff], '"}'), {
      'ce-specversion': '1.0',
      'ce-id': 'u-3',
      'ce-source': SOURCE,
      'ce-type': 'com.northwind.storage.usage',
      'ce-subject': 'acme-prod',
      'ce-time': TIME,
    });
    assertProblem(binary, 400, 'invalid_utf8', 'data', /byte 24/);
    assert.equal(await storedLike('u-%'), 0);
    const catalog = await app.inject({
      method: 'PUT',
      url: '/v1/catalog',
      headers: { ...auth(admin), 'content-type': 'application/json' },
      payload: bytes('{"version":1,"x":"', [0xfe], '"}'),
    });
    assertProblem(catalog, 400, 'invalid_utf8', '', /byte 18/);
    const yaml = await app.inject({
      method: 'PUT',
      url: '/v1/catalog',
      headers: { ...auth(admin), 'content-type': 'application/yaml' },
      payload: bytes(NORTHWIND.replace('tenants: [globex]', 'tenants: [globe'), [0xff], ']'),
    });
    assertProblem(yaml, 400, 'invalid_utf8', '', /at byte \d+/);
    assert.equal((await currentCatalog(store.pool))!.version, 1);
  });

  it('refuses invalid bytes in a validly signed payment webhook (the signature is over the raw bytes)', async () => {
    const body = bytes('{"id":"pay-', [0xff], '","invoice":"x","amount":"1.00","currency":"USD","received_on":"2026-11-01"}');
    const t = Math.floor(Date.now() / 1000);
    const mac = createHmac('sha256', SECRET)
      .update(Buffer.concat([Buffer.from(`${t}.`), body]))
      .digest('hex');
    const res = await app.inject({
      method: 'POST',
      url: '/v1/payments',
      headers: { 'content-type': 'application/json', 'accrue-signature': `t=${t},v1=${mac}` },
      payload: body,
    });
    assertProblem(res, 400, 'invalid_utf8', '', /byte 11/);
  });
});

describe('repeated keys are refused naming the key (#14 item 2)', () => {
  it('refuses {"id":"dk-2","id":"dk-3"} and gb_hours twice, storing neither', async () => {
    const dk = JSON.stringify(event('dk-2')).replace('"id":"dk-2"', '"id":"dk-2","id":"dk-3"');
    assertProblem(await post(CE, dk), 400, 'duplicate_key', 'id', /byte 33/);
    const gb = JSON.stringify(event('dk-4', { data: { gb_hours: '1' } })).replace('"gb_hours":"1"', '"gb_hours":"1","gb_hours":"2"');
    assertProblem(await post(CE, gb), 400, 'duplicate_key', 'data.gb_hours');
    assert.equal(await storedLike('dk-%'), 0);
  });

  it('rejects only the event that repeats a key in a batch, naming its path', async () => {
    const body = `[${JSON.stringify(event('dkb-1'))},${JSON.stringify(event('dkb-2')).replace('"subject":"acme-prod"', '"subject":"acme-prod","subject":"globex"')}]`;
    const res = await post(BATCH, body);
    assert.equal(res.statusCode, 200, res.body);
    const results = res.json().results;
    assert.deepEqual(
      results.map((r: { status: string }) => r.status),
      ['accepted', 'rejected'],
    );
    assert.deepEqual([results[1].id, results[1].problems[0].path, results[1].problems[0].code], ['dkb-2', 'subject', 'duplicate_key']);
    assert.equal(await storedLike('dkb-%'), 1);
  });

  it('refuses repeated keys in a catalog and in a payment sent as JSON', async () => {
    const catalog = await app.inject({
      method: 'PUT',
      url: '/v1/catalog',
      headers: { ...auth(admin), 'content-type': 'application/json' },
      payload: '{"version":1,"meters":[{"id":"a","id":"b"}]}',
    });
    assertProblem(catalog, 400, 'duplicate_key', 'meters[0].id');
    const raw = '{"id":"pay-dk","invoice":"x","amount":"1.00","amount":"1000.00","currency":"USD","received_on":"2026-11-01"}';
    const t = Math.floor(Date.now() / 1000);
    const mac = createHmac('sha256', SECRET).update(`${t}.${raw}`).digest('hex');
    const pay = await app.inject({
      method: 'POST',
      url: '/v1/payments',
      headers: { 'content-type': 'application/json', 'accrue-signature': `t=${t},v1=${mac}` },
      payload: raw,
    });
    assertProblem(pay, 400, 'duplicate_key', 'amount');
  });
});

describe('numbers are refused unless carried exactly (#14 item 3)', () => {
  it('refuses 1e-400, 1e309 and a 41-digit number as a meter value, naming the field', async () => {
    const cases = [
      ['n-1', '1e-400', 'inexact_number'],
      ['n-2', '1e309', 'number_out_of_range'],
      ['n-3', '12345678901234567890123456789012345678901', 'inexact_number'],
    ] as const;
    for (const [id, literal, code] of cases) {
      const body = JSON.stringify(event(id, { data: { gb_hours: 'X' } })).replace('"X"', literal);
      assertProblem(await post(CE, body), 400, code, 'data.gb_hours', /byte \d+/);
    }
    assert.equal(await storedLike('n-%'), 0);
  });

  // Within the meter's billable limit (docs/pricing.md#limits: 72,992,700,729,927 gb_hours in this catalog).
  it('stores exact numbers and 40-digit decimal strings exactly', async () => {
    const cases: Array<[string, string, string]> = [
      ['ne-1', '0.5', '0.5'],
      ['ne-2', '1e2', '100'],
      ['ne-3', '12345678901234', '12345678901234'],
      ['ne-4', '"1234567890.123456789012345678901234567891"', '1234567890.123456789012345678901234567891'],
      ['ne-5', '"0.000000000000000000000000000000000000001"', '0.000000000000000000000000000000000000001'],
    ];
    for (const [id, literal, expected] of cases) {
      const res = await post(CE, JSON.stringify(event(id, { data: { gb_hours: 'X' } })).replace('"X"', literal));
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((await stored(id))?.meter_values.storage_gb_hours, expected, id);
    }
  });
});

describe('NDJSON work is bounded (#14 item 4)', () => {
  it('answers a 400,000-line body 413 before reading a line, storing nothing', async () => {
    const res = await post(NDJSON, '{}\n'.repeat(400_000));
    assert.equal(res.statusCode, 413, res.body);
    assert.equal(res.json().type, 'https://accrue.dev/problems/batch_too_large');
    assert.equal(res.json().limit, 10_000);
    const many = await post(NDJSON, Array.from({ length: 10_001 }, (_, i) => JSON.stringify(event(`nd-${i}`))).join('\n'));
    assert.equal(many.statusCode, 413);
    assert.equal(await storedLike('nd-%'), 0);
  });

  it('takes 10,000 lines', async () => {
    const res = await post(NDJSON, `${Array.from({ length: 10_000 }, (_, i) => JSON.stringify(event(`ndok-${i}`))).join('\n')}\n`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().counts.accepted, 10_000);
  });
});

describe('no 500 from the events route (#14 item 5)', () => {
  it('answers a batch whose every event is rejected (1e309, a lone surrogate, nesting 5,000 deep) per event', async () => {
    const deep = `${'['.repeat(5_000)}${']'.repeat(5_000)}`;
    const body = `[${JSON.stringify(event('r-1', { data: { gb_hours: 'X' } })).replace('"X"', '1e309')},${JSON.stringify(event('r-2', { id: 'r-\ud800' }))},${JSON.stringify(event('r-3', { data: { gb_hours: 'X' } })).replace('"X"', deep)}]`;
    const res = await post(BATCH, body);
    assert.equal(res.statusCode, 200, res.body);
    const results = res.json().results;
    assert.deepEqual(
      results.map((r: { status: string; problems: Array<{ code: string }> }) => [r.status, r.problems[0]!.code]),
      [
        ['rejected', 'number_out_of_range'],
        ['rejected', 'invalid_text'],
        ['rejected', 'too_deep'],
      ],
    );
    // The same through NDJSON and application/json.
    const nd = await post(NDJSON, body.slice(1, -1).replace(/\},\{"specversion"/g, '}\n{"specversion"'));
    assert.equal(nd.statusCode, 200, nd.body);
    assert.deepEqual(nd.json().counts.rejected, 3);
    assert.equal((await post('application/json', body)).statusCode, 200);
  });

  it('hashes a batch of events JSON cannot carry without throwing (other channels, e.g. JetStream)', async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 5_000; i += 1) deep = [deep];
    const catalog = (await currentCatalog(store.pool))!;
    const outcome = await ingestBatch(
      store.pool,
      catalog,
      [event('h-1', { data: { gb_hours: Infinity } }), event('h-2', { id: '\ud800' }), event('h-3', { data: { deep } })],
      { channel: 'file' },
    );
    assert.deepEqual(
      outcome.results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    assert.match(outcome.batch_id, /^ub:v1:/);
  });

  it('answers a malformed percent-encoding in a ce-* header 400 naming the header', async () => {
    const res = await post('application/json', '{"gb_hours":"1"}', {
      'ce-specversion': '1.0',
      'ce-id': 'pct-%E0%A4%A',
      'ce-source': SOURCE,
      'ce-type': 'com.northwind.storage.usage',
      'ce-subject': 'acme-prod',
      'ce-time': TIME,
    });
    assertProblem(res, 400, 'malformed_header', 'ce-id');
    const lone = await post('application/json', '{"gb_hours":"1"}', {
      'ce-specversion': '1.0',
      'ce-id': 'pct-%ED%A0%80',
      'ce-source': SOURCE,
      'ce-type': 'com.northwind.storage.usage',
      'ce-subject': 'acme-prod',
      'ce-time': TIME,
    });
    assertProblem(lone, 400, 'malformed_header', 'ce-id');
  });
});

describe('JetStream messages are read as strictly', () => {
  it('refuses repeated keys, inexact numbers and invalid bytes in a message, naming field and byte', () => {
    const dup = decodeMessage(Buffer.from(JSON.stringify(event('js-1')).replace('"id":"js-1"', '"id":"js-1","id":"js-2"')));
    assert.ok(!dup.ok);
    assert.deepEqual([dup.problems[0]!.path, dup.problems[0]!.code], ['id', 'duplicate_key']);
    const num = decodeMessage(Buffer.from(JSON.stringify(event('js-3')).replace('"gb_hours":"1"', '"gb_hours":1e-400')));
    assert.ok(!num.ok);
    assert.deepEqual([num.problems[0]!.path, num.problems[0]!.code], ['data.gb_hours', 'inexact_number']);
    const bad = decodeMessage(bytes('{"id":"', [0xff], '"}'));
    assert.ok(!bad.ok);
    assert.match(bad.problems[0]!.message, /at byte 7/);
  });
});

describe('accrue ingest exits 2 on a file with refused lines (#14 item 6)', () => {
  it('ingests the good lines, names the bad ones by line and byte, and exits 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'accrue-strict-'));
    try {
      const file = join(dir, 'events.ndjson');
      writeFileSync(
        file,
        bytes(
          `${JSON.stringify(event('cli-1'))}\n`,
          `${JSON.stringify(event('cli-2')).replace('"gb_hours":"1"', '"gb_hours":1e309')}\n`,
          '{"id":"cli-',
          [0xfe],
          '"}\n',
          `${JSON.stringify(event('cli-4')).replace('"id":"cli-4"', '"id":"cli-4","id":"cli-5"')}\n`,
        ),
      );
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--database-url', store.url, 'ingest', file], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(run.status, 2, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /line 2: rejected: data\.gb_hours: .*line 2, byte \d+/);
      assert.match(run.stdout, /line 3: rejected: line 3: is not UTF-8.*line 3, byte 11/);
      assert.match(run.stdout, /line 4: rejected: id: repeats the key "id".*line 4, byte \d+/);
      assert.match(run.stderr, /3 line\(s\) rejected, first at line 2/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the OpenAPI document declares the event bodies as JSON (#14 item 7)', () => {
  it('declares a CloudEvent object and a batch array with its limit', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const content = doc.paths['/v1/events'].post.requestBody.content;
    assert.equal(content['application/cloudevents+json'].schema.$ref, '#/components/schemas/CloudEvent');
    assert.equal(content['application/cloudevents-batch+json'].schema.type, 'array');
    assert.equal(content['application/cloudevents-batch+json'].schema.maxItems, 1000);
    assert.equal(doc.components.schemas.CloudEvent.type, 'object');
    // Documentation only: a batch the schema would refuse (a bad time, a missing id) is still answered per event.
    const res = await post(BATCH, JSON.stringify([event('oa-1'), event('oa-2', { time: 'yesterday' }), { specversion: '1.0' }]));
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      res.json().results.map((r: { status: string }) => r.status),
      ['accepted', 'rejected', 'rejected'],
    );
  });
});

// ---------- properties over hostile JSON texts ----------

/** A hostile piece put in place of a placeholder; `expect` says what the answer must name. */
type Hostile = {
  bytes: Buffer;
  code: string;
  /** the whole body is refused (path '') */ whole?: boolean;
  /** where in the piece the answer points */ offset?: number;
};
const HOSTILE: fc.Arbitrary<Hostile> = fc.oneof(
  fc.constantFrom(
    { bytes: Buffer.from('1e309'), code: 'number_out_of_range' },
    { bytes: Buffer.from('-1e309'), code: 'number_out_of_range' },
    { bytes: Buffer.from('1e-400'), code: 'inexact_number' },
    { bytes: Buffer.from('12345678901234567890123456789012345678901234'), code: 'inexact_number' },
    { bytes: Buffer.from('"a\\u0000b"'), code: 'invalid_text' },
    { bytes: Buffer.from('"\\ud800"'), code: 'invalid_text' },
    { bytes: Buffer.from('"x\\udfff"'), code: 'invalid_text' },
    { bytes: Buffer.from(`${'['.repeat(5_000)}${']'.repeat(5_000)}`), code: 'too_deep' },
    { bytes: Buffer.from(`${'{"a":'.repeat(80)}1${'}'.repeat(80)}`), code: 'too_deep' },
    { bytes: Buffer.from([0x22, 0x61, 0x00, 0x62, 0x22]), code: 'malformed_json', whole: true, offset: 2 }, // a raw NUL byte: a control character
  ),
  fc.constantFrom([0xfe], [0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80], [0xf4, 0x90, 0x80, 0x80]).map((b) => ({
    bytes: Buffer.concat([Buffer.from('"'), Buffer.from(b), Buffer.from('"')]),
    code: 'invalid_utf8',
    whole: true,
    offset: 1,
  })),
  fc.constant({ bytes: Buffer.from(''), code: 'duplicate_key' }),
);
const KEY = fc
  .string({ minLength: 1, maxLength: 6, unit: 'grapheme' })
  .filter((k) => k !== 'region' && k !== 'gb_hours' && !k.includes('\u0000'));
const STEP = fc.oneof(KEY, fc.nat(2));
const TEXT = fc.string({
  maxLength: 12,
  unit: fc.oneof(
    fc.constantFrom('a', 'Z', ' ', '"', '\\', 'é', '😀', '\u2028', '\ufeff', '\ufffd'),
    fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }).filter((c) => c !== '\u0000'),
  ),
});
const DATA = fc.dictionary(KEY, fc.jsonValue({ maxDepth: 3, depthSize: 'small' }), { maxKeys: 4 });
const PLACEHOLDER = '\u0001HOSTILE\u0001';

function formatPath(steps: Array<string | number>): string {
  let out = '';
  for (const s of steps)
    out +=
      typeof s === 'number' ? `[${s}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? `${out === '' ? '' : '.'}${s}` : `[${JSON.stringify(s)}]`;
  return out;
}

/** The event as text, with the hostile piece at data.<steps> (a member of an object when the last step is a key). */
function hostileBody(
  base: Record<string, unknown>,
  steps: Array<string | number>,
  hostile: Hostile,
): { body: Buffer; path: string; at: number } {
  let inner: unknown = PLACEHOLDER;
  for (let k = steps.length - 1; k >= 0; k -= 1) {
    const s = steps[k]!;
    inner = typeof s === 'number' ? [...Array.from({ length: s }, () => 0), inner] : { [s]: inner };
  }
  const data = { ...(base.data as object), ...(inner as object) };
  const text = Buffer.from(
    JSON.stringify({ ...base, data: typeof inner === 'object' && !Array.isArray(inner) ? data : { nested: inner } }),
  );
  const fullSteps = typeof inner === 'object' && !Array.isArray(inner) ? ['data', ...steps] : ['data', 'nested', ...steps];
  const placeholder = Buffer.from(JSON.stringify(PLACEHOLDER));
  const at = text.indexOf(placeholder);
  const last = fullSteps[fullSteps.length - 1]!;
  let piece = hostile.bytes;
  if (hostile.code === 'duplicate_key') piece = Buffer.from(`1,${JSON.stringify(last)}:2`);
  const body = Buffer.concat([text.subarray(0, at), piece, text.subarray(at + placeholder.length)]);
  return { body, path: formatPath(fullSteps), at: at + (hostile.code === 'duplicate_key' ? 2 : (hostile.offset ?? 0)) };
}

describe('properties: hostile JSON through the real server', () => {
  let run = 0;
  it('never answers 5xx; a refused event names the field and the byte; an accepted one is stored exactly', async () => {
    await fc.assert(
      fc.asyncProperty(
        TEXT,
        DATA,
        fc.option(
          fc.tuple(
            fc.array(STEP, { minLength: 1, maxLength: 5 }).filter((s) => typeof s[s.length - 1] === 'string'),
            HOSTILE,
          ),
          { freq: 2 },
        ),
        async (idText, data, hostile) => {
          run += 1;
          const id = `p${run}-${idText}`;
          const base = { ...event(id), type: 'com.northwind.api.request', data };
          if (hostile === null) {
            const res = await post(CE, JSON.stringify(base));
            assert.ok(res.statusCode < 500, res.body);
            if (/[\ud800-\udfff]/.test(JSON.stringify(base).replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) {
              assert.equal(res.statusCode, 400, res.body); // a lone surrogate the generator made
              return;
            }
            assert.equal(res.statusCode, 200, res.body);
            const row = await stored(id);
            assert.ok(row, `${id} not stored`);
            assert.equal(row.id, id);
            assert.deepEqual(row.data, JSON.parse(JSON.stringify(data)));
            return;
          }
          const [steps, piece] = hostile;
          const { body, path, at } = hostileBody(base, steps, piece);
          const res = await post(CE, body);
          assert.equal(res.statusCode, 400, res.body);
          const problem = res.json();
          assert.equal(problem.type, `https://accrue.dev/problems/${piece.code}`, res.body);
          const first = problem.errors[0];
          if (piece.whole) assert.equal(first.path, '');
          else if (piece.code === 'too_deep') assert.ok(first.path.startsWith(path), `${first.path} under ${path}`);
          else assert.equal(first.path, path, res.body);
          if (piece.code !== 'too_deep') assert.match(first.message, new RegExp(`byte ${at}\\b`), res.body);
          assert.equal(await stored(id), undefined);
        },
      ),
      { numRuns: 250 },
    );
  });

  it('answers each event of a hostile batch on its own, never 5xx, and stores the valid ones exactly', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            DATA,
            fc.option(
              fc.tuple(
                fc.array(KEY, { minLength: 1, maxLength: 4 }),
                HOSTILE.filter((h) => !h.whole),
              ),
              { freq: 2 },
            ),
          ),
          { minLength: 1, maxLength: 6 },
        ),
        async (items) => {
          run += 1;
          const parts = items.map(([data, hostile], i) => {
            const base = { ...event(`b${run}-${i}`), type: 'com.northwind.api.request', data };
            return hostile ? hostileBody(base, hostile[0], hostile[1]) : { body: Buffer.from(JSON.stringify(base)), path: '', at: -1 };
          });
          const body = Buffer.concat([
            Buffer.from('['),
            ...parts.flatMap((p, i) => (i === 0 ? [p.body] : [Buffer.from(','), p.body])),
            Buffer.from(']'),
          ]);
          const res = await post(BATCH, body);
          assert.equal(res.statusCode, 200, res.body);
          const results = res.json().results as Array<{ index: number; status: string; problems?: Array<{ path: string; code: string }> }>;
          assert.equal(results.length, items.length);
          for (let i = 0; i < items.length; i += 1) {
            const [data, hostile] = items[i]!;
            const row = await stored(`b${run}-${i}`);
            if (hostile) {
              assert.equal(results[i]!.status, 'rejected', JSON.stringify(results[i]));
              assert.equal(results[i]!.problems![0]!.code, hostile[1].code);
              if (hostile[1].code !== 'too_deep') assert.equal(results[i]!.problems![0]!.path, parts[i]!.path);
              assert.equal(row, undefined);
            } else {
              assert.equal(results[i]!.status, 'accepted', JSON.stringify(results[i]));
              assert.deepEqual(row?.data, JSON.parse(JSON.stringify(data)));
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('answers each line of a hostile NDJSON body on its own, naming line and byte, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(DATA, fc.option(fc.tuple(fc.array(KEY, { minLength: 1, maxLength: 4 }), HOSTILE), { freq: 2 }), fc.boolean()), {
          minLength: 1,
          maxLength: 6,
        }),
        async (items) => {
          run += 1;
          const parts = items.map(([data, hostile], i) => {
            const base = { ...event(`l${run}-${i}`), type: 'com.northwind.api.request', data };
            return hostile ? hostileBody(base, hostile[0], hostile[1]) : { body: Buffer.from(JSON.stringify(base)), path: '', at: -1 };
          });
          const body = Buffer.concat(parts.flatMap((p, i) => [p.body, Buffer.from(items[i]![2] ? '\r\n' : '\n')]));
          const res = await post(NDJSON, body);
          const firstBad = items.findIndex(([, hostile]) => hostile?.[1].code === 'invalid_utf8');
          if (firstBad !== -1) {
            // Invalid bytes anywhere refuse the body, naming the byte and its line.
            assert.equal(res.statusCode, 400, res.body);
            assert.match(res.json().errors[0].message, new RegExp(`\\(line ${firstBad + 1}\\)`), res.body);
            for (let i = 0; i < items.length; i += 1) assert.equal(await stored(`l${run}-${i}`), undefined);
            return;
          }
          assert.equal(res.statusCode, 200, res.body);
          const results = res.json().results as Array<{
            status: string;
            problems?: Array<{ path: string; code: string; message: string }>;
          }>;
          assert.equal(results.length, items.length);
          for (let i = 0; i < items.length; i += 1) {
            const [data, hostile] = items[i]!;
            if (hostile) {
              const p = results[i]!.problems![0]!;
              assert.equal(results[i]!.status, 'rejected');
              assert.equal(p.code, hostile[1].code);
              if (hostile[1].whole) assert.equal(p.path, `line ${i + 1}`);
              else if (hostile[1].code !== 'too_deep') assert.equal(p.path, parts[i]!.path);
              if (hostile[1].code !== 'too_deep') assert.match(p.message, new RegExp(`line ${i + 1}, byte ${parts[i]!.at}\\b`), p.message);
              assert.equal(await stored(`l${run}-${i}`), undefined);
            } else {
              assert.equal(results[i]!.status, 'accepted', JSON.stringify(results[i]));
              assert.deepEqual((await stored(`l${run}-${i}`))?.data, JSON.parse(JSON.stringify(data)));
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('events the reader refuses inside a batch are counted (accrue_events_received_total)', () => {
  const rejectedCount = async () =>
    Number((await store.pool.query('SELECT coalesce(sum(rejected), 0)::int AS n FROM ingest_receipts')).rows[0].n);
  it('counts an element refused by the reader as rejected, beside the valid one, and answers it with the reader problem', async () => {
    const before = await rejectedCount();
    const body = `[${JSON.stringify(event('cnt-1'))},${JSON.stringify(event('cnt-2', { data: { gb_hours: 'X' } })).replace('"X"', '1e309')}]`;
    const res = await post(BATCH, body);
    assert.equal(res.statusCode, 200, res.body);
    const answer = res.json();
    assert.deepEqual(
      answer.results.map((r: { status: string }) => r.status),
      ['accepted', 'rejected'],
    );
    assert.equal(answer.results[1].index, 1);
    assert.equal(answer.results[1].problems[0].code, 'number_out_of_range');
    assert.equal(await rejectedCount(), before + 1);
  });
  it('counts every line of an NDJSON body the reader refused, even when no line is valid', async () => {
    const before = await rejectedCount();
    const res = await post(
      NDJSON,
      `{"id":"a","id":"b"}\n${JSON.stringify(event('cnt-3', { data: { gb_hours: 'X' } })).replace('"X"', '1e-400')}\n`,
    );
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      res.json().results.map((r: { status: string }) => r.status),
      ['rejected', 'rejected'],
    );
    assert.match(res.json().batch_id, /^ub:v1:/);
    assert.equal(await rejectedCount(), before + 2);
  });
});
