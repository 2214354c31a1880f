// The HTTP edge (issue #14): values the database cannot hold are refused by the route schemas with a 400 naming the
// field; a signed payment delivery is spent only by the transaction that applies it; failed authentication is limited
// per client and unknown keys are remembered briefly; a known path asked with another method is a 405 with Allow.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { parse } from 'yaml';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { buildServer } from '../../src/api/server.js';
import { findKey, KEY_NEGATIVE_CACHE_TTL_MS, revokeKey } from '../../src/controls/keys.js';
import { testKey, OPERATOR_AUDITOR, TEST_ADMIN } from '../support/keys.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { signWebhook } from '../../src/settle/payments.js';

const SECRET = 'whsec_edge';
let store: Store;
let app: FastifyInstance;
let admin: string;
let clock = 1_000_000;

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const PROBLEM = 'application/problem+json; charset=utf-8';

before(async () => {
  store = await testStore();
  app = await buildServer({
    pool: store.pool,
    approvalRequired: [], // the controls' own tests cover approval
    webhookSecret: SECRET,
    authFailureLimit: { failuresMax: 3, windowMs: 60_000, now: () => clock },
  });
  admin = (await testKey(store.pool, { name: 'edge-admin', roles: OPERATOR_AUDITOR })).secret;
});
after(async () => {
  await app.close();
  await store.close();
});

async function refused(url: string, field: string, method: 'GET' | 'POST' = 'GET', payload?: unknown) {
  const res = await app.inject({
    method,
    url,
    headers: { ...auth(admin), ...(payload ? { 'content-type': 'application/json' } : {}) },
    ...(payload ? { payload: JSON.stringify(payload) } : {}),
  });
  assert.equal(res.statusCode, 400, `${method} ${url}: ${res.body}`);
  assert.equal(res.headers['content-type'], PROBLEM);
  const paths = (res.json().errors ?? []).map((e: { path: string }) => e.path);
  assert.ok(paths.includes(field), `${method} ${url} names ${field}: ${res.body}`);
}

describe('every parameter is checked against what the database holds, before any handler', () => {
  it('refuses NUL in every path and query parameter with a 400 naming it', async () => {
    const cases: Array<[string, string]> = [
      ['/v1/invoices/%00', 'id'],
      ['/v1/invoices/%00/pdf', 'id'],
      ['/v1/invoices/%00/explain', 'id'],
      ['/v1/journals/%00/explain', 'id'],
      ['/v1/exceptions/%00', 'id'],
      ['/v1/dashboard/customers/%00/usage?from=2026-10-01&to=2026-11-01', 'id'],
      ['/v1/events/explain?source=%00&id=x', 'source'],
      ['/v1/events/explain?source=x&id=a%00', 'id'],
      ['/v1/audit?subject=%00', 'subject'],
      ['/v1/audit?action=%00', 'action'],
      ['/v1/audit?actor=%00', 'actor'],
      ['/v1/dlq?target=%00', 'target'],
      ['/v1/usage?customer=%00', 'customer'],
      ['/v1/usage?meter=%00', 'meter'],
      ['/v1/usage?group_by=%00', 'group_by'],
      ['/v1/exceptions?entity=%00', 'entity'],
      ['/v1/exceptions?checkpoint=%00', 'checkpoint'],
      ['/v1/periods/2026-10/reconciliation?entity=%00', 'entity'],
      ['/v1/dashboard/invoices?q=%00', 'q'],
      ['/v1/dashboard/invoices?customer=%00', 'customer'],
      ['/v1/dashboard/invoices?legal_entity=%00', 'legal_entity'],
    ];
    for (const [url, field] of cases) await refused(url, field);
    await refused('/v1/periods/2026-10/close?entity=%00', 'entity', 'POST');
    // A lone surrogate would be stored as U+FFFD: refused too, in a body as in a URL.
    await refused('/v1/exceptions/x/assign', 'assignee', 'POST', { assignee: 'a\ud800' });
    await refused('/v1/exceptions/x/waive', 'reason', 'POST', { reason: 'because\u0000' });
  });

  it('refuses a catalog holding text the database cannot store, naming the field, whatever its format', async () => {
    const yaml = readFileSync('examples/northwind/catalog.yaml', 'utf8');
    const catalog = parse(yaml) as { customers: Array<{ name: string }> };
    const put = (type: string, payload: string) =>
      app.inject({ method: 'PUT', url: '/v1/catalog', headers: { ...auth(admin), 'content-type': type }, payload });
    const named = (name: string) =>
      JSON.stringify({ ...catalog, customers: [{ ...catalog.customers[0], name }, ...catalog.customers.slice(1)] });
    for (const [type, payload] of [
      ['application/json', named('Acme\u0000')],
      ['application/json', named('Acme\ud800')],
      ['application/yaml', yaml.replace(/name: ([^\n]+)/, 'name: "Acme\\0"')],
    ] as const) {
      const res = await put(type, payload);
      assert.equal(res.statusCode, 400, `${type}: ${res.body}`);
      assert.deepEqual(
        res
          .json()
          .errors.map((e: { path: string }) => e.path)
          .filter((p: string) => p.startsWith('customers') || p.startsWith('legal')).length,
        1,
        res.body,
      );
    }
    assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM catalog_versions')).rows[0].n, 0, 'nothing applied');
  });

  it('refuses numbers beyond a bigint, periods and dates outside the calendar or the supported years', async () => {
    await refused('/v1/audit?after=99999999999999999999999', 'after');
    await refused('/v1/audit?after=9223372036854775808', 'after');
    await refused('/v1/audit?limit=1001', 'limit');
    await refused('/v1/dlq/9223372036854775808/replay', 'id', 'POST');
    await refused('/v1/periods/9999-12/reconciliation', 'period');
    await refused('/v1/periods/0000-01/reconciliation', 'period');
    await refused('/v1/periods/9999-12/close', 'period', 'POST');
    await refused('/v1/dashboard/overview?period=1969-12', 'period');
    await refused('/v1/usage?from=2026-02-30&to=2026-03-01', 'from');
    await refused('/v1/usage?from=0000-01-01&to=2026-03-01', 'from');
    await refused('/v1/usage?from=2026-01-01&to=2026-01-01T25:00:00Z', 'to');
    await refused('/v1/dashboard/customers/acme/usage?from=2026-02-30&to=2026-03-01', 'from');
    await refused('/v1/dashboard/invoices?limit=201', 'limit');
    await refused('/v1/dashboard/pipeline?hours=2161', 'hours');
    await refused('/v1/exceptions?limit=0', 'limit');
    await refused('/v1/invoices/x/explain?line=1e3', 'line');
    await refused(`/v1/invoices/${'x'.repeat(257)}`, 'id');
    // The edges themselves pass validation: the largest bigint is looked up (and not found).
    const largest = await app.inject({ method: 'POST', url: '/v1/dlq/9223372036854775807/replay', headers: auth(admin) });
    assert.equal(largest.statusCode, 404, largest.body);
    const lastSeq = await app.inject({ method: 'GET', url: '/v1/audit?after=9223372036854775807&limit=1000', headers: auth(admin) });
    assert.equal(lastSeq.statusCode, 200, lastSeq.body);
    assert.deepEqual(lastSeq.json().records, []);
  });
});

describe('the payment webhook spends a delivery only when it applies the payment', () => {
  const post = (raw: string, signature = signWebhook(SECRET, raw, Math.floor(Date.now() / 1000))) =>
    app.inject({
      method: 'POST',
      url: '/v1/payments',
      headers: { 'content-type': 'application/json', 'accrue-signature': signature },
      payload: raw,
    });
  const deliveries = async () => Number((await store.pool.query('SELECT count(*) FROM webhook_deliveries')).rows[0].count);

  it('refuses amounts, dates and ids the database cannot hold with a 400 naming the field, spending nothing', async () => {
    const base = { id: 'pay-edge-1', invoice: 'NWDE-000001', amount: '1.00', currency: 'EUR', received_on: '2026-11-05' };
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ ...base, amount: '1'.repeat(30) }, 'amount'],
      [{ ...base, amount: '9223372036854775807' }, 'amount'],
      [{ ...base, amount: 1 }, 'amount'],
      [{ ...base, amount: '1e3' }, 'amount'],
      [{ ...base, received_on: '2026-02-30' }, 'received_on'],
      [{ ...base, received_on: '0000-01-01' }, 'received_on'],
      [{ ...base, id: 'p\u0000' }, 'id'],
      [{ ...base, invoice: 'x'.repeat(300) }, 'invoice'],
      [{ ...base, currency: 'eur' }, 'currency'],
    ];
    for (const [body, field] of bad) {
      const raw = JSON.stringify(body);
      const signature = signWebhook(SECRET, raw, Math.floor(Date.now() / 1000));
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const res = await post(raw, signature);
        assert.equal(res.statusCode, 400, `${raw}: ${res.body}`);
        assert.ok(
          res.json().errors.some((e: { path: string }) => e.path === field),
          `${raw} names ${field}: ${res.body}`,
        );
      }
    }
    const malformed = await post('{"id": ');
    assert.equal(malformed.statusCode, 400);
    assert.equal(malformed.json().type, 'https://accrue.dev/problems/malformed_json');
    // Unsigned, the body is not looked at.
    const unsigned = await post(JSON.stringify({ ...base, amount: 'x' }), 't=1,v1=00');
    assert.equal(unsigned.statusCode, 401);
    assert.equal(await deliveries(), 0);
  });

  it('leaves a delivery refused for no catalog unspent, so its retry is applied', async () => {
    const raw = JSON.stringify({ id: 'pay-edge-2', invoice: 'NWDE-000001', amount: '1.00', currency: 'EUR', received_on: '2026-11-05' });
    const signature = signWebhook(SECRET, raw, Math.floor(Date.now() / 1000));
    const early = await post(raw, signature);
    assert.equal(early.statusCode, 409, early.body);
    assert.equal(early.json().type, 'https://accrue.dev/problems/no_catalog');
    assert.equal(await deliveries(), 0);

    assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'edge' })).ok);
    const catalog = (await currentCatalog(store.pool))!;
    await ingestBatch(
      store.pool,
      catalog,
      [
        {
          specversion: '1.0',
          id: 'e1',
          source: '//edge',
          type: 'com.northwind.api.request',
          subject: 'umbrella',
          time: '2026-10-02T00:00:00Z',
          data: {},
        },
      ],
      { channel: 'file', now: new Date('2026-11-01T00:00:00Z') },
    );
    await closePeriod(store.pool, catalog, { period: '2026-10' });

    const retried = await post(raw, signature);
    assert.equal(retried.statusCode, 200, retried.body);
    assert.equal(retried.json().status, 'applied');
    assert.equal(await deliveries(), 1);
    const replayed = await post(raw, signature);
    assert.equal(replayed.statusCode, 409);
    assert.equal(replayed.json().type, 'https://accrue.dev/problems/replayed_delivery');

    // A payment refused as a conflict (same id, other content) spends nothing either.
    const changed = JSON.stringify({
      id: 'pay-edge-2',
      invoice: 'NWDE-000001',
      amount: '2.00',
      currency: 'EUR',
      received_on: '2026-11-05',
    });
    const conflict = await post(changed);
    assert.equal(conflict.statusCode, 409);
    assert.equal(conflict.json().type, 'https://accrue.dev/problems/payment_conflict');
    assert.equal(await deliveries(), 1);
  });
});

describe('failed authentication', () => {
  it('answers 429 with Retry-After once a client has failed too often, without looking the key up, until its window ends', async () => {
    const from = (remoteAddress: string, key?: string) =>
      app.inject({ method: 'GET', url: '/v1/dlq', remoteAddress, headers: key ? auth(key) : {} });
    const ok = await from('10.0.0.1', admin);
    assert.equal(ok.statusCode, 200, 'a successful request is not counted');
    for (const key of [undefined, 'acc_admin_guess-1', 'acc_admin_guess-2']) assert.equal((await from('10.0.0.1', key)).statusCode, 401);
    const limited = await from('10.0.0.1', 'acc_admin_guess-3');
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.headers['content-type'], PROBLEM);
    assert.equal(limited.headers['retry-after'], '60');
    assert.equal(limited.json().type, 'https://accrue.dev/problems/too_many_failed_authentications');
    // A key never seen valid in this process is refused unread until the window ends; one seen valid keeps working
    // (a client behind the same proxy as the guesser), and is still checked for revocation.
    const unseen = (await testKey(store.pool, { name: 'unseen', roles: OPERATOR_AUDITOR })).secret;
    assert.equal((await from('10.0.0.1', unseen)).statusCode, 429, 'until the window ends, a key not seen valid from that client');
    assert.equal((await from('10.0.0.1', admin)).statusCode, 200, 'a key seen valid keeps working from a limited address');
    const seen = await testKey(store.pool, { name: 'seen-then-revoked', roles: OPERATOR_AUDITOR });
    assert.equal((await from('10.0.0.3', seen.secret)).statusCode, 200);
    assert.ok(await revokeKey(store.pool, seen.key.id, TEST_ADMIN));
    assert.equal((await from('10.0.0.1', seen.secret)).statusCode, 401, 'a revoked key is refused even when it was seen valid');
    assert.equal((await from('10.0.0.2', unseen)).statusCode, 200, 'other clients are not affected');
    clock += 30_000;
    assert.equal((await from('10.0.0.1', 'acc_admin_guess-5')).headers['retry-after'], '30');
    clock += 30_000;
    assert.equal((await from('10.0.0.1', 'acc_admin_guess-4')).statusCode, 401, 'a new window');
    assert.equal((await from('10.0.0.1', admin)).statusCode, 200);
  });

  it('remembers an unknown key briefly, so repeating it does not reach the database', async () => {
    let queries = 0;
    const counting = {
      query: (...args: unknown[]) => ((queries += 1), (store.pool.query as (...a: unknown[]) => unknown)(...args)),
      connect: () => store.pool.connect(), // creating a key writes it and its audit record in one transaction
    } as unknown as pg.Pool;
    let now = 0;
    const at = () => now;
    assert.equal(await findKey(counting, 'acc_read_unknown', at), undefined);
    assert.equal(await findKey(counting, 'acc_read_unknown', at), undefined);
    assert.equal(queries, 1, 'the second lookup is answered from memory');
    now += KEY_NEGATIVE_CACHE_TTL_MS;
    assert.equal(await findKey(counting, 'acc_read_unknown', at), undefined);
    assert.equal(queries, 2, 'looked up again once the time is over');
    // A key created in this process after its secret was tried is found at once (its secret was never known before).
    const created = await testKey(counting, { name: 'fresh', roles: ['auditor'] });
    const before = queries;
    assert.equal((await findKey(counting, created.secret, at))?.id, created.key.id);
    assert.equal(queries, before + 1);
  });
});

describe('methods', () => {
  it('answers a known path with another method 405, an RFC 9457 problem with Allow; an unknown path 404', async () => {
    for (const [method, url, allow] of [
      ['DELETE', '/v1/dlq', 'GET, HEAD'],
      ['PUT', '/v1/invoices/NWDE-000001', 'GET, HEAD'],
      ['GET', '/v1/payments', 'POST'],
      ['PATCH', '/v1/catalog', 'GET, HEAD, PUT'],
      ['GET', '/v1/dlq/1/replay', 'POST'],
    ] as const) {
      const res = await app.inject({ method, url, headers: auth(admin) });
      assert.equal(res.statusCode, 405, `${method} ${url}: ${res.body}`);
      assert.equal(res.headers.allow, allow);
      assert.equal(res.headers['content-type'], PROBLEM);
      assert.equal(res.json().status, 405);
    }
    const missing = await app.inject({ method: 'GET', url: '/v1/nothing', headers: auth(admin) });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.headers['content-type'], PROBLEM);
    const badUrl = await app.inject({ method: 'GET', url: '/v1/invoices/%', headers: auth(admin) });
    assert.equal(badUrl.statusCode, 400);
    assert.equal(badUrl.headers['content-type'], PROBLEM);
  });
});
