// POST /v1/events fed by the CloudEvents SDK (cloudevents v10), an independent producer: structured mode, a batch of
// SDK events, application/json, NDJSON and binary mode (ce-* headers) are accepted and each event is stored once.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CloudEvent, HTTP } from 'cloudevents';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/api/server.js';
import { testKey } from '../support/keys.js';
import { applyCatalog } from '../../src/catalog/service.js';
import type { Store } from '../../src/store/store.js';
import { testStore } from '../support/db.js';

const SOURCE = '//sdk-test';
const TIME = new Date(Date.now() - 60_000).toISOString();
let store: Store;
let app: FastifyInstance;
let key: string;

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
  assert.ok(applied.ok, JSON.stringify(!applied.ok && applied.problems));
  app = await buildServer({ pool: store.pool, bodyLimitBytes: 256 * 1024 });
  key = (await testKey(store.pool, { name: 'ingest', roles: ['ingest'], sources: [SOURCE] })).secret;
});
after(async () => {
  await app.close();
  await store.close();
});

const sdkEvent = (id: string, extra: Record<string, unknown> = {}) =>
  new CloudEvent({
    id,
    source: SOURCE,
    type: 'com.northwind.api.request',
    subject: 'acme-prod',
    time: TIME,
    data: { region: 'us-east-1' },
    ...extra,
  });

async function post(headers: Record<string, string>, body: string) {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { authorization: `Bearer ${key}`, ...headers },
    payload: body,
  });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json().results as Array<{ status: string; id?: string }>).map((r) => r.status);
}

async function stored(id: string): Promise<Array<{ data: unknown; time: Date; subject: string }>> {
  return (await store.pool.query('SELECT data, time, subject FROM events WHERE source = $1 AND id = $2', [SOURCE, id])).rows;
}

describe('ingest fed by the CloudEvents SDK', () => {
  it('structured mode (HTTP.structured): accepted, then a duplicate; stored once with its data and time', async () => {
    const message = HTTP.structured(sdkEvent('sdk-s1'));
    assert.match(String(message.headers['content-type']), /^application\/cloudevents\+json/);
    assert.deepEqual(await post(message.headers as Record<string, string>, String(message.body)), ['accepted']);
    assert.deepEqual(await post(message.headers as Record<string, string>, String(message.body)), ['duplicate']);
    const rows = await stored('sdk-s1');
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0]!.data, { region: 'us-east-1' });
    assert.equal(rows[0]!.time.toISOString(), TIME);
  });

  it('a batch of SDK events (JSON.stringify of CloudEvent objects) as cloudevents-batch+json and as application/json', async () => {
    const batch = JSON.stringify([sdkEvent('sdk-b1'), sdkEvent('sdk-b2'), sdkEvent('sdk-b3', { region: 'eu' })]);
    const type = { 'content-type': 'application/cloudevents-batch+json' };
    assert.deepEqual(await post(type, batch), ['accepted', 'accepted', 'accepted']);
    assert.deepEqual(await post({ 'content-type': 'application/json' }, batch), ['duplicate', 'duplicate', 'duplicate']);
    const single = JSON.stringify(sdkEvent('sdk-j1'));
    assert.deepEqual(await post({ 'content-type': 'application/json' }, single), ['accepted']);
    for (const id of ['sdk-b1', 'sdk-b2', 'sdk-b3', 'sdk-j1']) assert.equal((await stored(id)).length, 1, id);
  });

  it('NDJSON of SDK events', async () => {
    const lines = [sdkEvent('sdk-n1'), sdkEvent('sdk-n2')].map((e) => JSON.stringify(e)).join('\n');
    assert.deepEqual(await post({ 'content-type': 'application/x-ndjson' }, `${lines}\n`), ['accepted', 'accepted']);
    assert.deepEqual(await post({ 'content-type': 'application/x-ndjson' }, `${lines}\n`), ['duplicate', 'duplicate']);
    for (const id of ['sdk-n1', 'sdk-n2']) assert.equal((await stored(id)).length, 1, id);
  });

  it('binary mode (HTTP.binary): ce-* headers and the data as the body, an extension included; stored once', async () => {
    const event = sdkEvent('sdk-bin1', {
      datacontenttype: 'application/json',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    const message = HTTP.binary(event);
    assert.equal(message.headers['ce-id'], 'sdk-bin1');
    assert.ok(message.headers['ce-traceparent']);
    assert.deepEqual(await post(message.headers as Record<string, string>, String(message.body)), ['accepted']);
    assert.deepEqual(await post(message.headers as Record<string, string>, String(message.body)), ['duplicate']);
    // The same SDK event in structured mode is the same event (datacontenttype set on both): a duplicate.
    const structured = HTTP.structured(event);
    assert.deepEqual(await post(structured.headers as Record<string, string>, String(structured.body)), ['duplicate']);
    const rows = await stored('sdk-bin1');
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0]!.data, { region: 'us-east-1' });
  });

  it('what the SDK refuses to build, built loosely and sent, Accrue refuses too', async () => {
    const loose = new CloudEvent(
      { id: 'sdk-bad1', source: SOURCE, type: '', subject: 'acme-prod', time: TIME, data: { region: 'us-east-1' } },
      false,
    );
    assert.throws(() => loose.validate());
    const message = HTTP.structured(loose);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { authorization: `Bearer ${key}`, ...(message.headers as Record<string, string>) },
      payload: String(message.body),
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.deepEqual(
      res.json().errors.map((e: { path: string }) => e.path),
      ['type'],
    );
    assert.equal((await stored('sdk-bad1')).length, 0);
  });
});
