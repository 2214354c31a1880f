import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { spawnSync } from 'node:child_process';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog } from '../../src/catalog/service.js';
import { buildServer } from '../../src/api/server.js';
import { findKey, KEY_CACHE_TTL_MS, revokeKey } from '../../src/controls/keys.js';
import { testKey, OPERATOR_AUDITOR, TEST_ADMIN } from '../support/keys.js';

const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
let store: Store;
let app: FastifyInstance;
let admin: string;
let ingestKey: string;
let readKey: string;

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
// One time for every event of the file, so a repeated event is identical content.
const RECENT = new Date(Date.now() - 60_000).toISOString();
const recent = () => RECENT;

function event(id: string, overrides: Record<string, unknown> = {}) {
  return {
    specversion: '1.0',
    id,
    source: '//api-test',
    type: 'com.northwind.api.request',
    subject: 'acme-prod',
    time: recent(),
    data: { region: 'us-east-1' },
    ...overrides,
  };
}

before(async () => {
  store = await testStore();
  app = await buildServer({
    pool: store.pool,
    approvalRequired: [] /* the controls' own tests cover approval */,
    bodyLimitBytes: 256 * 1024,
  });
  admin = (await testKey(store.pool, { name: 'admin', roles: OPERATOR_AUDITOR })).secret;
  ingestKey = (await testKey(store.pool, { name: 'ingest', roles: ['ingest'], sources: ['//api-test'] })).secret;
  readKey = (await testKey(store.pool, { name: 'read', roles: ['auditor'] })).secret;
});
after(async () => {
  await app.close();
  await store.close();
});

describe('catalog over HTTP', () => {
  it('refuses events before any catalog is in force', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents+json' },
      payload: JSON.stringify(event('early')),
    });
    assert.equal(res.statusCode, 409);
    assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
  });

  it('applies a YAML catalog with an admin key, and refuses it with an ingest key', async () => {
    const denied = await app.inject({
      method: 'PUT',
      url: '/v1/catalog',
      headers: { ...auth(ingestKey), 'content-type': 'application/yaml' },
      payload: NORTHWIND,
    });
    assert.equal(denied.statusCode, 403);
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/catalog',
      headers: { ...auth(admin), 'content-type': 'application/yaml' },
      payload: NORTHWIND,
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().version, 1);
    const again = await app.inject({
      method: 'PUT',
      url: '/v1/catalog',
      headers: { ...auth(admin), 'content-type': 'application/yaml' },
      payload: NORTHWIND,
    });
    assert.equal(again.json().changed, false);
  });

  it('lists every problem of an invalid catalog by path', async () => {
    const bad = NORTHWIND.replace('{ up_to: "1000000", unit_amount: "0.0004" }', '{ up_to: "10", unit_amount: "0.0004" }');
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/catalog',
      headers: { ...auth(admin), 'content-type': 'application/yaml' },
      payload: bad,
    });
    assert.equal(res.statusCode, 400);
    const body = res.json();
    assert.ok(
      body.errors.some((e: { path: string }) => e.path === 'plans[0].prices[1].versions[0].tiers[1].up_to'),
      res.body,
    );
  });

  it('refuses tax rate versions from one date twice with a 400 naming the field', async () => {
    const bad = NORTHWIND.replace(
      '  - jurisdiction: US-CA\n    rate: "0.0725"\n',
      '  - jurisdiction: US-CA\n    versions:\n      - { effective_from: 2026-12-01, rate: "0.0725" }\n      - { effective_from: 2026-12-01, rate: "0.08" }\n',
    );
    assert.notEqual(bad, NORTHWIND);
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/catalog',
      headers: { ...auth(admin), 'content-type': 'application/yaml' },
      payload: bad,
    });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(
      res.json().errors.map((e: { path: string; code: string }) => [e.path, e.code]),
      [['tax_rates[0].versions[1].effective_from', 'duplicate_effective_from']],
    );
  });
});

describe('events over HTTP', () => {
  it('takes one structured event, a batch, binary mode and NDJSON', async () => {
    const single = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents+json' },
      payload: JSON.stringify(event('h-1')),
    });
    assert.equal(single.statusCode, 200, single.body);
    assert.equal(single.json().results[0].status, 'accepted');
    const batch = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents-batch+json' },
      payload: JSON.stringify([event('h-1'), event('h-2'), event('h-3', { time: 'yesterday' })]),
    });
    assert.equal(batch.statusCode, 200);
    assert.deepEqual(
      batch.json().results.map((r: { status: string }) => r.status),
      ['duplicate', 'accepted', 'rejected'],
    );
    assert.equal(batch.json().results[2].problems[0].path, 'time');
    const binary = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: {
        ...auth(ingestKey),
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': 'h-bin',
        'ce-source': '//api-test',
        'ce-type': 'com.northwind.api.request',
        'ce-subject': 'acme-prod',
        'ce-time': recent(),
      },
      payload: JSON.stringify({ region: 'eu-central-1' }),
    });
    assert.equal(binary.statusCode, 200, binary.body);
    const ndjson = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/x-ndjson' },
      payload: `${JSON.stringify(event('h-4'))}\n{not json\n${JSON.stringify(event('h-5'))}\n`,
    });
    assert.equal(ndjson.statusCode, 200);
    assert.deepEqual(
      ndjson.json().results.map((r: { status: string }) => r.status),
      ['accepted', 'rejected', 'accepted'],
    );
  });

  it('answers a batch with its counts and only the events not accepted when asked Prefer: return=minimal', async () => {
    // Globex's events, so the other tests' counts of acme's are unchanged.
    const body = (tag: string) => {
      const e = (n: number, overrides: Record<string, unknown> = {}) => event(`pm-${tag}-${n}`, { subject: 'globex', ...overrides });
      return JSON.stringify([e(0), e(1), e(2, { time: 'yesterday' }), e(3), e(0)]);
    };
    const post = (tag: string, prefer?: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents-batch+json', ...(prefer ? { prefer } : {}) },
        payload: body(tag),
      });
    for (const [tag, prefer] of [
      ['a', 'return=minimal'],
      ['b', 'respond-async, RETURN="minimal"; ignored=1'],
      ['c', 'wait=5,return=minimal'],
    ] as const) {
      const minimal = await post(tag, prefer);
      assert.equal(minimal.statusCode, 200, minimal.body);
      assert.equal(minimal.headers['preference-applied'], 'return=minimal');
      assert.deepEqual(minimal.json().counts, { accepted: 3, duplicate: 1, conflict: 0, rejected: 1, quarantined: 0 });
      assert.deepEqual(
        minimal.json().results.map((r: { index: number; status: string }) => [r.index, r.status]),
        [
          [2, 'rejected'],
          [4, 'duplicate'],
        ],
      );
      assert.equal(minimal.json().results[0].problems[0].path, 'time');
    }
    // Without it, or with another preference, every event is listed.
    for (const [tag, prefer] of [
      ['d', undefined],
      ['e', 'return=representation'],
      ['f', 'minimal'],
    ] as const) {
      const full = await post(tag, prefer);
      assert.equal(full.headers['preference-applied'], undefined);
      assert.deepEqual(
        full.json().results.map((r: { status: string }) => r.status),
        ['accepted', 'accepted', 'rejected', 'accepted', 'duplicate'],
      );
    }
  });

  it('validates a batch against the catalog applied since the last one, in this process and from another', async () => {
    // Tenant globex is moved to customer umbrella by one version and back by the next: the customer each event is
    // stored under names the version it was validated against (globex's and umbrella's counts are no other test's).
    const status = async (id: string) => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents-batch+json' },
        payload: JSON.stringify([event(id, { subject: 'globex' })]),
      });
      assert.equal(res.statusCode, 200, res.body);
      return res.json().results[0].status as string;
    };
    const moved = NORTHWIND.replace('tenants: [globex]', 'tenants: [globex-eu]').replace(
      'tenants: [umbrella]',
      'tenants: [umbrella, globex]',
    );
    assert.equal(moved.includes('tenants: [umbrella, globex]') && moved.includes('tenants: [globex-eu]'), true);
    // The route has read the head by now.
    assert.equal(await status('ch-1'), 'accepted');
    // A version applied over HTTP, then one applied by another process (straight into the database): each batch after
    // it is validated against it, not against the head the route read before.
    const put = await app.inject({
      method: 'PUT',
      url: '/v1/catalog',
      headers: { ...auth(admin), 'content-type': 'application/yaml' },
      payload: moved,
    });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(await status('ch-2'), 'accepted');
    assert.ok((await applyCatalog(store.pool, NORTHWIND, { by: 'another process' })).ok);
    assert.equal(await status('ch-3'), 'accepted');
    const stored = await store.pool.query("SELECT id, customer_id FROM events WHERE id LIKE 'ch-%' ORDER BY id");
    assert.deepEqual(stored.rows, [
      { id: 'ch-1', customer_id: 'globex' },
      { id: 'ch-2', customer_id: 'umbrella' },
      { id: 'ch-3', customer_id: 'globex' },
    ]);
  });

  it('answers a single conflicting or invalid event with problem details naming the field', async () => {
    const conflict = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents+json' },
      payload: JSON.stringify(event('h-1', { data: { region: 'x' } })),
    });
    assert.equal(conflict.statusCode, 409);
    const invalid = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents+json' },
      payload: JSON.stringify(event('h-9', { specversion: '0.3' })),
    });
    assert.equal(invalid.statusCode, 400);
    assert.equal(invalid.json().errors[0].path, 'specversion');
  });

  it('refuses malformed JSON, oversize bodies and oversize batches without harm', async () => {
    const malformed = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents+json' },
      payload: '{"id": ',
    });
    assert.equal(malformed.statusCode, 400);
    assert.equal(malformed.json().type, 'https://accrue.dev/problems/malformed_json');
    const huge = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents-batch+json' },
      payload: 'x'.repeat(300 * 1024),
    });
    assert.equal(huge.statusCode, 413);
    const many = Array.from({ length: 1001 }, (_, i) => ({ id: `m${i}` }));
    const tooMany = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents-batch+json' },
      payload: JSON.stringify(many),
    });
    assert.equal(tooMany.statusCode, 413);
    const count = await store.pool.query("SELECT count(*)::int AS n FROM events WHERE id LIKE 'm%'");
    assert.equal(count.rows[0].n, 0);
  });

  it('keeps an ingest key to its sources and away from reads', async () => {
    const other = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents+json' },
      payload: JSON.stringify(event('h-src', { source: '//elsewhere' })),
    });
    assert.equal(other.statusCode, 400);
    assert.equal(other.json().errors[0].path, 'source');
    const read = await app.inject({ method: 'GET', url: '/v1/usage', headers: auth(ingestKey) });
    assert.equal(read.statusCode, 403);
    const anonymous = await app.inject({ method: 'GET', url: '/v1/usage' });
    assert.equal(anonymous.statusCode, 401);
  });

  it('stops a revoked key at once in the revoking process, and in others once the key cache expires', async () => {
    const created = await testKey(store.pool, { name: 'short-lived', roles: ['auditor'] });
    const ok = await app.inject({ method: 'GET', url: '/v1/usage', headers: auth(created.secret) });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(await revokeKey(store.pool, created.key.id, TEST_ADMIN), true);
    const refused = await app.inject({ method: 'GET', url: '/v1/usage', headers: auth(created.secret) });
    assert.equal(refused.statusCode, 401);
    assert.equal(await revokeKey(store.pool, created.key.id, TEST_ADMIN), false); // already revoked

    // Another process: it revokes in the database only, so a key this process has cached lives out its TTL.
    const other = await testKey(store.pool, { name: 'revoked-elsewhere', roles: ['auditor'] });
    let now = 1_000_000;
    const clock = () => now;
    assert.equal((await findKey(store.pool, other.secret, clock))?.id, other.key.id);
    await store.pool.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [other.key.id]);
    assert.equal((await findKey(store.pool, other.secret, clock))?.id, other.key.id, 'cached within the TTL');
    now += KEY_CACHE_TTL_MS;
    assert.equal(await findKey(store.pool, other.secret, clock), undefined, 'looked up again once the TTL is over');
    assert.equal(await findKey(store.pool, 'acc_read_not-a-key'), undefined);
  });

  it('reports usage to a read key', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/usage?customer=acme&meter=api_calls&group_by=region', headers: auth(readKey) });
    assert.equal(res.statusCode, 200, res.body);
    const rows = res.json().usage as Array<{ dimensions: { region: string }; quantity: string }>;
    const total = rows.reduce((sum, r) => sum + BigInt(r.quantity), 0n);
    assert.equal(total, 5n); // h-1, h-2, h-bin, h-4, h-5
  });

  it('closes a period and serves the invoices as JSON and PDF', async () => {
    const month = RECENT.slice(0, 7);
    const denied = await app.inject({ method: 'POST', url: `/v1/periods/${month}/close`, headers: auth(readKey) });
    assert.equal(denied.statusCode, 403);
    const bad = await app.inject({ method: 'POST', url: '/v1/periods/2026-13/close', headers: auth(admin) });
    assert.equal(bad.statusCode, 400);
    // The month we are in has not ended: refused without early, and nothing is marked closed or closing.
    const current = new Date().toISOString().slice(0, 7);
    const unended = await app.inject({ method: 'POST', url: `/v1/periods/${current}/close`, headers: auth(admin) });
    assert.equal(unended.statusCode, 409, unended.body);
    assert.equal(unended.json().type, 'https://accrue.dev/problems/period_not_ended');
    assert.match(unended.json().detail, new RegExp(`period ${current} has not ended`));
    assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM billing_periods WHERE period = $1', [current])).rows[0].n, 0);
    const future = await app.inject({ method: 'POST', url: '/v1/periods/2099-01/close?early=true', headers: auth(admin) });
    assert.equal(future.statusCode, 409, future.body);
    assert.equal(future.json().type, 'https://accrue.dev/problems/period_in_future');
    assert.equal((await store.pool.query("SELECT count(*)::int AS n FROM invoices WHERE period = '2099-01'")).rows[0].n, 0);
    const closed = await app.inject({ method: 'POST', url: `/v1/periods/${month}/close?early=true`, headers: auth(admin) });
    assert.equal(closed.statusCode, 200, closed.body);
    const early = month === current; // RECENT is a minute ago: in a month's first minute, its month has ended
    assert.equal(closed.json().early, early);
    const audit = (
      await store.pool.query("SELECT action, details->>'code' AS code FROM audit_log WHERE action LIKE 'billing_run.close%' ORDER BY seq")
    ).rows;
    assert.deepEqual(
      audit.map((r) => `${r.action}${r.code ? ` ${r.code}` : ''}`),
      [
        'billing_run.close_refused period_not_ended',
        'billing_run.close_refused period_in_future',
        ...(early ? ['billing_run.close_early'] : []),
        'billing_run.close',
      ],
    );
    const invoices = closed.json().invoices as Array<{ id: string; number: string; customer: string; total: string }>;
    const acme = invoices.find((i) => i.customer === 'acme')!;
    assert.match(acme.number, /^NWUS-\d{6}$/);
    const json = await app.inject({ method: 'GET', url: `/v1/invoices/${acme.number}`, headers: auth(readKey) });
    assert.equal(json.statusCode, 200);
    assert.equal(json.json().id, acme.id);
    assert.ok(
      json.json().lines.some((l: { usage_ref?: string; rating_run?: string }) => typeof l.usage_ref === 'string'),
      'lines carry their usage aggregate',
    );
    const pdf = await app.inject({
      method: 'GET',
      url: `/v1/invoices/${acme.id}`,
      headers: { ...auth(readKey), accept: 'application/pdf' },
    });
    assert.equal(pdf.statusCode, 200);
    assert.equal(pdf.headers['content-type'], 'application/pdf');
    assert.equal(pdf.rawPayload.subarray(0, 5).toString(), '%PDF-');
    const missing = await app.inject({ method: 'GET', url: '/v1/invoices/NWUS-999999', headers: auth(readKey) });
    assert.equal(missing.statusCode, 404);
  });

  it('serves Prometheus metrics with ingestion outcomes and the quarantine', async () => {
    await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(ingestKey), 'content-type': 'application/cloudevents+json' },
      payload: JSON.stringify(event('h-q', { subject: 'unknown-tenant' })),
    });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /accrue_events_received_total\{outcome="accepted"\} [1-9]/);
    assert.match(res.body, /accrue_quarantine_pending\{reason="unknown_subject"\} 1/);
    assert.match(res.body, /process_cpu_user_seconds_total/);
    // After the close above: its invoices, their generation latency, and the HTTP requests of this file.
    assert.match(res.body, /^accrue_invoices\{legal_entity="nw-us",kind="invoice",status="finalized"\} [1-9]/m);
    assert.match(res.body, /^accrue_invoice_generation_latency_seconds_count\{legal_entity="nw-us"\} [1-9]/m);
    assert.match(res.body, /^accrue_http_requests_total\{method="POST",route="\/v1\/events",status_code="200"\} [1-9]/m);
    for (const family of [
      'accrue_unbilled_estimate_age_seconds',
      'accrue_unbilled_amount',
      'accrue_outbox_entries',
      'accrue_exceptions_open',
      'accrue_charge_rejections_total',
      'accrue_payment_sync_delay_seconds',
    ]) {
      assert.match(res.body, new RegExp(`^# TYPE ${family} `, 'm'), family);
    }
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: res.body, encoding: 'utf8' });
    if (lint.error) throw new Error(`promtool (Debian package prometheus) is needed to check the metrics: ${lint.error.message}`);
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
  });

  it('serves an OpenAPI 3.1 document covering the routes', async () => {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    const doc = res.json();
    assert.equal(doc.openapi, '3.1.0');
    for (const path of ['/v1/events', '/v1/catalog', '/v1/usage', '/v1/periods/{period}/close', '/v1/invoices/{id}'])
      assert.ok(doc.paths[path], path);
  });
});
