// End to end through the client generated from openapi.json (openapi-typescript types, openapi-fetch calls) against
// a listening server: if the document and the routes disagreed on a path, a parameter or a body, these calls would
// not type-check or would be refused. Errors come back as RFC 9457 problems, typed from the document too.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import createClient, { type Client } from 'openapi-fetch';
import type { paths } from '../../src/api/client/schema.js';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { buildServer } from '../../src/api/server.js';
import { testKey, OPERATOR_AUDITOR } from '../support/keys.js';
import { drainOutbox } from '../../src/post/outbox.js';
import { TargetError, type ErpTarget } from '../../src/post/target.js';

const SECRET = 'whsec-api-client-test';
let store: Store;
let app: FastifyInstance;
let admin: Client<paths>;
let reader: Client<paths>;
let ingest: Client<paths>;
let anonymous: Client<paths>;
let baseUrl: string;

const raw = (body: unknown) => String(body); // bodies the client sends as given: CloudEvents batches, YAML, signed webhooks
const ev = (id: string, subject: string, type: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//client-test',
  type,
  subject,
  time: '2026-10-10T00:00:00Z',
  data,
});

before(async () => {
  store = await testStore();
  app = await buildServer({ pool: store.pool, approvalRequired: [] /* the controls' own tests cover approval */, webhookSecret: SECRET });
  await app.listen({ host: '127.0.0.1', port: 0 });
  baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const client = (secret?: string) => createClient<paths>({ baseUrl, headers: secret ? { authorization: `Bearer ${secret}` } : {} });
  admin = client((await testKey(store.pool, { name: 'admin', roles: OPERATOR_AUDITOR })).secret);
  reader = client((await testKey(store.pool, { name: 'read', roles: ['auditor'] })).secret);
  ingest = client((await testKey(store.pool, { name: 'ingest', roles: ['ingest'], sources: ['//client-test'] })).secret);
  anonymous = client();
});
after(async () => {
  await app.close();
  await store.close();
});

describe('the generated client, end to end', () => {
  it('applies the catalog as YAML', async () => {
    const { data, error, response } = await admin.PUT('/v1/catalog', {
      body: readFileSync('examples/northwind/catalog.yaml', 'utf8'),
      headers: { 'content-type': 'application/yaml' },
      bodySerializer: raw,
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.equal(data && 'version' in data ? data.version : undefined, 1);
  });

  it('ingests a batch and answers each event', async () => {
    const batch = [
      ev('c1', 'acme-prod', 'com.northwind.storage.usage', { gb_hours: '100000' }),
      ev('c2', 'umbrella', 'com.northwind.api.request', {}),
      ev('c3', 'umbrella', 'com.northwind.api.request', {}),
      ev('c2', 'umbrella', 'com.northwind.api.request', {}),
    ];
    const { data, response } = await ingest.POST('/v1/events', {
      body: JSON.stringify(batch),
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      bodySerializer: raw,
    });
    assert.equal(response.status, 200);
    // The document says a batch is answered with counts and results, a single event with one result.
    assert.ok(data && 'counts' in data, 'a batch answer');
    assert.deepEqual(data.counts, { accepted: 3, duplicate: 1, conflict: 0, rejected: 0, quarantined: 0 });
    assert.match(data.batch_id ?? '', /^ub:v1:/);
    assert.deepEqual(
      data.results?.map((r) => r.status),
      ['accepted', 'accepted', 'accepted', 'duplicate'],
    );
  });

  it('reads usage with typed query parameters', async () => {
    const { data, response } = await reader.GET('/v1/usage', {
      params: { query: { customer: 'umbrella', meter: 'api_calls', from: '2026-10-01', to: '2026-11-01' } },
    });
    assert.equal(response.status, 200);
    const total = (data?.usage ?? []).reduce((sum, row) => sum + BigInt(row.quantity ?? '0'), 0n);
    assert.equal(total, 2n);
  });

  it('gets typed problem details for refusals', async () => {
    const unauthorized = await anonymous.GET('/v1/usage', {});
    assert.equal(unauthorized.response.status, 401);
    assert.equal(unauthorized.response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(unauthorized.error?.type, 'https://accrue.dev/problems/unauthorized');
    const forbidden = await reader.POST('/v1/periods/{period}/close', { params: { path: { period: '2026-10' } } });
    assert.equal(forbidden.response.status, 403);
    assert.equal(forbidden.error?.status, 403);
    const invalid = await admin.POST('/v1/periods/{period}/close', { params: { path: { period: '2026-13' } } });
    assert.equal(invalid.response.status, 400);
    assert.equal(invalid.error?.errors?.[0]?.path, 'period');
  });

  let invoiceNumber = '';
  it('closes a period and reads an invoice', async () => {
    const closed = await admin.POST('/v1/periods/{period}/close', { params: { path: { period: '2026-10' } } });
    assert.equal(closed.response.status, 200, JSON.stringify(closed.error));
    const umbrella = closed.data?.invoices?.find((i) => i.customer === 'umbrella');
    assert.ok(umbrella, 'umbrella is invoiced');
    invoiceNumber = umbrella.number ?? '';
    assert.match(invoiceNumber, /^NWDE-\d{6}$/);
    const invoice = await reader.GET('/v1/invoices/{id}', { params: { path: { id: invoiceNumber } } });
    assert.equal(invoice.response.status, 200);
    assert.equal(invoice.data?.number, invoiceNumber);
    assert.equal(invoice.data?.customer, 'umbrella');
    assert.equal(invoice.data?.period_start, '2026-10-01');
    assert.equal(invoice.data?.total_minor, String(BigInt(umbrella.total.replace('.', '')))); // the stored minor units are the reported total
    const missing = await reader.GET('/v1/invoices/{id}', { params: { path: { id: 'NWUS-999999' } } });
    assert.equal(missing.response.status, 404);
    assert.equal(missing.error?.type, 'https://accrue.dev/problems/not_found');
  });

  it('posts a signed payment webhook; an overpayment becomes an exception listed for finance operations', async () => {
    const invoice = (await reader.GET('/v1/invoices/{id}', { params: { path: { id: invoiceNumber } } })).data!;
    const payment = {
      id: 'pay-client-1',
      invoice: invoiceNumber,
      amount: '999999.00',
      currency: invoice.currency,
      received_on: '2026-11-05',
    };
    const body = JSON.stringify(payment);
    const t = Math.floor(Date.now() / 1000);
    const signature = createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex');
    const paid = await anonymous.POST('/v1/payments', {
      body: payment,
      headers: { 'content-type': 'application/json', 'accrue-signature': `t=${t},v1=${signature}` },
      bodySerializer: () => body,
    });
    assert.equal(paid.response.status, 200, JSON.stringify(paid.error));
    assert.equal(paid.data?.status, 'exception');
    const replayed = await anonymous.POST('/v1/payments', {
      body: payment,
      headers: { 'content-type': 'application/json', 'accrue-signature': `t=${t},v1=${signature}` },
      bodySerializer: () => body,
    });
    assert.equal(replayed.response.status, 409);
    const listed = await reader.GET('/v1/exceptions', { params: { query: { queue: 'finance_operations', status: 'open' } } });
    assert.equal(listed.response.status, 200);
    const exception = listed.data?.exceptions.find((e) => e.subject === 'pay-client-1');
    assert.ok(exception, 'the overpayment is an open exception');
    assert.equal(exception.owner_queue, 'finance_operations');
  });

  it('lists a dead letter and replays it', async () => {
    // An ERP that refuses every document permanently: the outbox dead-letters the journal at once.
    const journal = (await store.pool.query<{ id: string }>("SELECT id FROM journals WHERE kind = 'invoice' ORDER BY id LIMIT 1")).rows[0]!
      .id;
    await store.pool.query("INSERT INTO outbox (key, target, document_kind, document_id) VALUES ($1, 'refusing', 'journal', $2)", [
      `out:v1:refusing:${journal}`,
      journal,
    ]);
    const refusing: ErpTarget = {
      name: 'refusing',
      limits: { concurrency: 1, requestsPerMinute: 60_000 },
      find: async () => undefined,
      post: async () => {
        throw new TargetError('the ledger account is closed', { status: 400, code: 'ACCOUNT_CLOSED', permanent: true });
      },
    };
    assert.equal((await drainOutbox(store.pool, refusing)).dead, 1);
    const listed = await reader.GET('/v1/dlq', { params: { query: { target: 'refusing' } } });
    assert.equal(listed.response.status, 200);
    const [letter] = listed.data?.dead_letters ?? [];
    assert.equal(letter?.document_id, journal);
    assert.equal(letter?.last_error?.message, 'the ledger account is closed');
    const denied = await reader.POST('/v1/dlq/{id}/replay', { params: { path: { id: letter!.id } } });
    assert.equal(denied.response.status, 403);
    const replayed = await admin.POST('/v1/dlq/{id}/replay', { params: { path: { id: letter!.id } } });
    assert.equal(replayed.response.status, 200);
    assert.deepEqual(replayed.data, { id: letter!.id, replayed: true });
    assert.equal((await reader.GET('/v1/dlq', { params: { query: { target: 'refusing' } } })).data?.dead_letters.length, 0);
  });

  it('serves the same document it was generated from', async () => {
    const served = await (await fetch(`${baseUrl}/openapi.json`)).json();
    assert.deepEqual(served, JSON.parse(readFileSync('openapi.json', 'utf8')));
  });
});
