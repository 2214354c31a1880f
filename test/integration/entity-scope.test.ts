// Keys limited to legal entities (docs/controls-entities.md): a read key for nw-de sees nothing of nw-us on any GET
// route of the OpenAPI document (a route this test has no request for fails it), single nw-us resources answer 404, a
// filter naming nw-us 403, an ingest key for nw-de has an nw-us customer's event rejected, and writes stay in the
// key's entities. A key without limits still sees both.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { buildServer } from '../../src/api/server.js';
import { buildMetricsServer } from '../../src/api/metrics.js';
import { testKey } from '../support/keys.js';
import { openException } from '../../src/store/exceptions.js';
import { DASHBOARD_PERIOD, fillDashboardData, type DashboardData } from '../support/dashboard-data.js';

let store: Store;
let app: FastifyInstance;
let data: DashboardData;
let deReader: string;
let everyReader: string;
let deIngest: string;
let deOperator: string;
const US = { invoice: '', number: '', journal: '', exception: '', event: { source: '', id: '' } };
const DE = { invoice: '', number: '', journal: '', exception: '', event: { source: '', id: '' } };
/** Strings that name nw-us or one of its things: none may appear in an answer to the nw-de key. */
let usMarkers: string[] = [];

const get = (url: string, key: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
const post = (url: string, key: string, body: unknown = {}) =>
  app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${key}` }, payload: body as object });

async function one<T extends Record<string, unknown>>(sql: string, params: unknown[]): Promise<T> {
  const row = (await store.pool.query<T>(sql, params)).rows[0];
  assert.ok(row, `the fixture has a row for ${sql} ${JSON.stringify(params)}`);
  return row;
}

async function thingsOf(entity: string, into: typeof US): Promise<void> {
  const invoice = await one<{ id: string; number: string }>(
    "SELECT id, number FROM invoices WHERE legal_entity = $1 AND kind = 'invoice' AND number IS NOT NULL ORDER BY id LIMIT 1",
    [entity],
  );
  into.invoice = invoice.id;
  into.number = invoice.number;
  into.journal = (await one<{ id: string }>('SELECT id FROM journals WHERE legal_entity = $1 ORDER BY id LIMIT 1', [entity])).id;
  const customers = data.catalog.catalog.customers.filter((c) => c.legal_entity === entity).map((c) => c.id);
  into.event = await one<{ source: string; id: string }>('SELECT source, id FROM events WHERE customer_id = ANY($1) ORDER BY seq LIMIT 1', [
    customers,
  ]);
  const exception = (
    await store.pool.query<{ id: string }>('SELECT id FROM exceptions WHERE legal_entity = $1 ORDER BY id LIMIT 1', [entity])
  ).rows[0];
  into.exception = exception?.id ?? '';
}

before(async () => {
  store = await testStore();
  data = await fillDashboardData(store, { events: 1_500 });
  app = await buildServer({ pool: store.pool, approvalRequired: [] });
  deReader = (await testKey(store.pool, { name: 'de-reader', roles: ['auditor'], entities: ['nw-de'] })).secret;
  everyReader = (await testKey(store.pool, { name: 'every-reader', roles: ['auditor'] })).secret;
  deIngest = (await testKey(store.pool, { name: 'de-ingest', roles: ['ingest'], entities: ['nw-de'] })).secret;
  deOperator = (await testKey(store.pool, { name: 'de-operator', roles: ['operator'], entities: ['nw-de'] })).secret;
  await thingsOf('nw-us', US);
  await thingsOf('nw-de', DE);
  // An exception of each entity for certain (the fixture's are of either), written the way reconciliation writes one.
  for (const [entity, things] of [
    ['nw-us', US],
    ['nw-de', DE],
  ] as const) {
    if (things.exception) continue;
    things.exception = `exc-scope-${entity}`;
    await openException(store.pool, {
      id: things.exception,
      kind: 'difference',
      owner_queue: 'finance_operations',
      subject: things.invoice,
      details: {},
      checkpoint: 'trial_balance',
      period: DASHBOARD_PERIOD,
      legal_entity: entity,
      item: things.invoice,
    });
  }
  const usCustomers = data.catalog.catalog.customers.filter((c) => c.legal_entity === 'nw-us');
  const usNumbers = (
    await store.pool.query<{ number: string }>("SELECT number FROM invoices WHERE legal_entity = 'nw-us' AND number IS NOT NULL")
  ).rows;
  usMarkers = [
    'nw-us',
    US.invoice,
    US.journal,
    US.exception,
    ...usNumbers.map((r) => r.number),
    ...usCustomers.flatMap((c) => [c.name, ...c.tenants]),
  ];
});
after(async () => {
  await app.close();
  await data.netsuite.stop();
  await store.close();
});

/** A request for every GET route of the document, with nw-de things as its parameters. A new route must be added here. */
function requestFor(path: string): string | undefined {
  const P = DASHBOARD_PERIOD;
  const table: Record<string, string> = {
    '/v1/catalog': '/v1/catalog',
    '/v1/catalog/versions': '/v1/catalog/versions',
    '/v1/usage': '/v1/usage?from=2026-09-01&to=2026-11-01',
    '/v1/invoices/{id}': `/v1/invoices/${DE.invoice}`,
    '/v1/periods/{period}/reconciliation': `/v1/periods/${P}/reconciliation`,
    '/v1/exceptions': '/v1/exceptions?limit=1000',
    '/v1/exceptions/{id}': `/v1/exceptions/${DE.exception}`,
    '/v1/invoices/{id}/explain': `/v1/invoices/${DE.invoice}/explain`,
    '/v1/journals/{id}/explain': `/v1/journals/${DE.journal}/explain`,
    '/v1/events/explain': `/v1/events/explain?source=${encodeURIComponent(DE.event.source)}&id=${encodeURIComponent(DE.event.id)}`,
    '/v1/audit': '/v1/audit',
    '/v1/audit/verify': '/v1/audit/verify',
    '/v1/dlq': '/v1/dlq',
    '/v1/dashboard/whoami': '/v1/dashboard/whoami',
    '/v1/dashboard/periods': '/v1/dashboard/periods',
    '/v1/dashboard/overview': `/v1/dashboard/overview?period=${P}`,
    '/v1/dashboard/pipeline': '/v1/dashboard/pipeline',
    '/v1/dashboard/invoices': '/v1/dashboard/invoices?limit=200',
    '/v1/dashboard/invoices/{id}': `/v1/dashboard/invoices/${DE.invoice}`,
    '/v1/dashboard/customers': '/v1/dashboard/customers',
    '/v1/dashboard/customers/{id}/usage': '/v1/dashboard/customers/umbrella/usage?from=2026-10-01&to=2026-11-01',
    '/v1/invoices/{id}/pdf': `/v1/invoices/${DE.invoice}/pdf`,
    '/v1/changes': '/v1/changes',
    '/v1/changes/{id}': '/v1/changes/chg-none',
    '/v1/dashboard/controls': '/v1/dashboard/controls',
    '/v1/disputes': '/v1/disputes',
    '/v1/disputes/{id}': '/v1/disputes/dsp-none',
    '/v1/fx/rates': '/v1/fx/rates',
  };
  return table[path];
}

describe('keys limited to legal entities', () => {
  it('on every GET route of the document: no nw-us id, number, customer or name in the answer, or the route refuses the key', async () => {
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, unknown>>;
    };
    const gets = Object.entries(document.paths)
      .filter(([, methods]) => 'get' in methods)
      .map(([path]) => path);
    assert.ok(gets.length >= 20, `the document lists the GET routes (${gets.length})`);
    const answered: Record<string, number> = {};
    for (const path of gets) {
      const url = requestFor(path);
      assert.ok(url, `GET ${path} is a route this test does not know: add it to requestFor, scoped by entity or refused`);
      const answer = await get(url, deReader);
      answered[path] = answer.statusCode;
      assert.ok([200, 403, 404].includes(answer.statusCode), `GET ${url}: ${answer.statusCode} ${answer.body.slice(0, 300)}`);
      if (answer.statusCode === 403) assert.equal(answer.json().type, 'https://accrue.dev/problems/entity_limited_key', url);
      const text = answer.headers['content-type']?.toString().includes('pdf') ? answer.rawPayload.toString('latin1') : answer.body;
      for (const marker of usMarkers) assert.ok(!text.includes(marker), `GET ${url} answered the nw-de key with ${JSON.stringify(marker)}`);
    }
    // The scoped routes answer (not merely refuse): what the nw-de key reads is there.
    for (const path of [
      '/v1/usage',
      '/v1/invoices/{id}',
      '/v1/invoices/{id}/explain',
      '/v1/journals/{id}/explain',
      '/v1/events/explain',
      '/v1/periods/{period}/reconciliation',
      '/v1/exceptions',
      '/v1/exceptions/{id}',
      '/v1/dashboard/whoami',
      '/v1/dashboard/periods',
      '/v1/dashboard/overview',
      '/v1/dashboard/invoices',
      '/v1/dashboard/invoices/{id}',
      '/v1/dashboard/customers',
      '/v1/dashboard/customers/{id}/usage',
      '/v1/invoices/{id}/pdf',
      '/v1/changes',
    ])
      assert.equal(answered[path], 200, `GET ${path} answers the nw-de key`);
    // The routes that span every entity refuse it.
    for (const path of ['/v1/audit', '/v1/audit/verify', '/v1/catalog', '/v1/dlq'])
      assert.equal(answered[path], 403, `GET ${path} refuses the nw-de key`);
    const invoices = (await get('/v1/dashboard/invoices?limit=200', deReader)).json() as { invoices: Array<{ legal_entity: string }> };
    assert.ok(invoices.invoices.length > 0);
    assert.ok(invoices.invoices.every((i) => i.legal_entity === 'nw-de'));
    assert.deepEqual((await get('/v1/dashboard/whoami', deReader)).json().entities, ['nw-de']);
    const overview = (await get(`/v1/dashboard/overview?period=${DASHBOARD_PERIOD}`, deReader)).json();
    assert.deepEqual(
      overview.entities.map((e: { id: string }) => e.id),
      ['nw-de'],
    );
    assert.deepEqual([...new Set(overview.series.map((s: { legal_entity: string }) => s.legal_entity))], ['nw-de']);
    const everyOverview = (await get(`/v1/dashboard/overview?period=${DASHBOARD_PERIOD}`, everyReader)).json();
    const accepted = (o: { kpis: Array<{ id: string; value: string }> }) => BigInt(o.kpis.find((k) => k.id === 'events_accepted')!.value);
    assert.ok(accepted(overview) > 0n && accepted(overview) < accepted(everyOverview), "the nw-de key counts only nw-de customers' events");
    assert.equal(
      overview.kpis.find((k: { id: string }) => k.id === 'invoiced_USD'),
      undefined,
      'no USD (nw-us) money for the nw-de key',
    );
    const customers = (await get('/v1/dashboard/customers', deReader)).json() as { customers: Array<{ id: string }> };
    assert.deepEqual(
      customers.customers.map((c) => c.id),
      ['umbrella'],
    );
  });

  it('answers 404 for a single nw-us resource, as for one that does not exist', async () => {
    const ev = `source=${encodeURIComponent(US.event.source)}&id=${encodeURIComponent(US.event.id)}`;
    for (const url of [
      `/v1/invoices/${US.invoice}`,
      `/v1/invoices/${US.number}`,
      `/v1/invoices/${US.invoice}/pdf`,
      `/v1/invoices/${US.number}/explain`,
      `/v1/dashboard/invoices/${US.invoice}`,
      `/v1/journals/${US.journal}/explain`,
      `/v1/events/explain?${ev}`,
      `/v1/exceptions/${US.exception}`,
      '/v1/dashboard/customers/acme/usage?from=2026-10-01&to=2026-11-01',
    ]) {
      const answer = await get(url, deReader);
      assert.equal(answer.statusCode, 404, `GET ${url}: ${answer.body.slice(0, 200)}`);
      assert.equal((await get(url, everyReader)).statusCode, 200, `GET ${url} with a key for every entity`);
    }
    const usage = await get('/v1/usage?customer=acme&from=2026-10-01&to=2026-11-01', deReader);
    assert.equal(usage.statusCode, 400);
    assert.equal(usage.json().errors[0].code, 'unknown_customer');
  });

  it('refuses a filter naming nw-us with 403 naming the field', async () => {
    for (const [url, field] of [
      ['/v1/exceptions?entity=nw-us', 'entity'],
      [`/v1/periods/${DASHBOARD_PERIOD}/reconciliation?entity=nw-us`, 'entity'],
      ['/v1/dashboard/invoices?legal_entity=nw-us', 'legal_entity'],
    ] as const) {
      const answer = await get(url, deReader);
      assert.equal(answer.statusCode, 403, url);
      assert.equal(answer.json().errors[0].path, field, url);
    }
    assert.equal((await get('/v1/exceptions?entity=nw-de', deReader)).statusCode, 200);
  });

  it('a key for every entity still sees both', async () => {
    const invoices = (await get('/v1/dashboard/invoices?limit=200', everyReader)).json() as { invoices: Array<{ legal_entity: string }> };
    assert.deepEqual([...new Set(invoices.invoices.map((i) => i.legal_entity))].sort(), ['nw-de', 'nw-us']);
    const report = (await get(`/v1/periods/${DASHBOARD_PERIOD}/reconciliation`, everyReader)).json();
    assert.deepEqual([...report.legal_entities].sort(), ['nw-de', 'nw-us']);
    const deReport = (await get(`/v1/periods/${DASHBOARD_PERIOD}/reconciliation`, deReader)).json();
    assert.deepEqual(deReport.legal_entities, ['nw-de']);
    const usage = (await get('/v1/usage?from=2026-10-01&to=2026-11-01', everyReader)).json() as { usage: Array<{ customer: string }> };
    assert.ok(usage.usage.some((u) => u.customer === 'acme'));
    assert.equal((await get('/v1/audit', everyReader)).statusCode, 200);
  });

  it("rejects an nw-de ingest key's event for an nw-us customer, per event, naming the customer", async () => {
    const event = (id: string, subject: string) => ({
      specversion: '1.0',
      id,
      source: '//scope/test',
      type: 'com.northwind.api.request',
      subject,
      time: '2026-12-01T10:00:00Z',
      data: { region: 'eu-central-1' },
    });
    const answer = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { authorization: `Bearer ${deIngest}`, 'content-type': 'application/cloudevents-batch+json' },
      payload: JSON.stringify([event('de-1', 'umbrella'), event('us-1', 'acme-prod'), event('unknown-1', 'nobody-tenant')]),
    });
    assert.equal(answer.statusCode, 200, answer.body);
    const results = answer.json().results as Array<{ status: string; problems?: Array<{ path: string; code: string; message: string }> }>;
    assert.equal(results[0]!.status, 'accepted');
    assert.equal(results[1]!.status, 'rejected');
    assert.equal(results[1]!.problems![0]!.code, 'entity_not_permitted');
    assert.match(results[1]!.problems![0]!.message, /"acme"/);
    assert.equal(results[2]!.status, 'rejected', 'an unknown tenant could become any entity: refused to a limited key');
    const stored = await store.pool.query("SELECT 1 FROM events WHERE source = '//scope/test' AND id = 'us-1'");
    assert.equal(stored.rowCount, 0);
    // The single-event path (group commit) judges the same way.
    const single = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { authorization: `Bearer ${deIngest}`, 'content-type': 'application/cloudevents+json' },
      payload: JSON.stringify(event('us-2', 'globex')),
    });
    assert.equal(single.statusCode, 400, single.body);
    assert.equal(single.json().errors[0].code, 'entity_not_permitted');
  });

  it('limits writes to the key: a close of nw-us or of every entity 403, another entity’s exception 404', async () => {
    const every = await post('/v1/periods/2026-11/close', deOperator);
    assert.equal(every.statusCode, 403, every.body);
    assert.equal(every.json().errors[0].path, 'entity');
    const us = await post('/v1/periods/2026-11/close?entity=nw-us', deOperator);
    assert.equal(us.statusCode, 403, us.body);
    assert.equal(us.json().errors[0].path, 'entity');
    const assign = await post(`/v1/exceptions/${US.exception}/assign`, deOperator, { assignee: 'someone' });
    assert.equal(assign.statusCode, 404, assign.body);
    const status = await store.pool.query<{ status: string }>('SELECT status FROM exceptions WHERE id = $1', [US.exception]);
    assert.notEqual(status.rows[0]!.status, 'assigned');
    const refused = await app.inject({
      method: 'PUT',
      url: '/v1/catalog',
      headers: { authorization: `Bearer ${deOperator}`, 'content-type': 'application/json' },
      payload: '{}',
    });
    assert.equal(refused.statusCode, 403);
    assert.equal(refused.json().type, 'https://accrue.dev/problems/entity_limited_key');
  });

  it('the command line honours a key: invoices list/show/pdf and the ledger show only its entities', () => {
    const accrue = (key: string | undefined, ...args: string[]) =>
      spawnSync(process.execPath, ['bin/accrue.js', '--database-url', store.url, '--json', ...args], {
        encoding: 'utf8',
        env: { ...process.env, ACCRUE_API_KEY: key ?? '', ACCRUE_DEV_MODE: '' },
      });
    const listed = accrue(deReader, 'invoices', 'list', '--period', DASHBOARD_PERIOD);
    assert.equal(listed.status, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as Array<{ legal_entity: string }>;
    assert.ok(rows.length > 0);
    assert.deepEqual([...new Set(rows.map((r) => r.legal_entity))], ['nw-de']);
    const everyone = JSON.parse(accrue(undefined, 'invoices', 'list', '--period', DASHBOARD_PERIOD).stdout) as Array<{
      legal_entity: string;
    }>;
    assert.deepEqual([...new Set(everyone.map((r) => r.legal_entity))].sort(), ['nw-de', 'nw-us']);
    const hidden = accrue(deReader, 'invoices', 'show', US.number);
    assert.notEqual(hidden.status, 0);
    assert.match(hidden.stderr, /no invoice/);
    assert.equal(accrue(deReader, 'invoices', 'show', DE.number).status, 0);
    const pdf = accrue(deReader, 'invoices', 'pdf', US.invoice, '--out', '/dev/null');
    assert.notEqual(pdf.status, 0);
    assert.match(pdf.stderr, /no invoice/);
    const ledger = accrue(deReader, 'ledger', 'trial-balance', '--entity', 'nw-us', '--period', DASHBOARD_PERIOD);
    assert.notEqual(ledger.status, 0);
    assert.match(ledger.stderr, /--entity.*limited to nw-de|limited to nw-de/);
    const exported = accrue(deReader, 'export', '--format', 'hledger', '--entity', 'nw-us', '--period', DASHBOARD_PERIOD);
    assert.notEqual(exported.status, 0);
    assert.match(exported.stderr, /limited to nw-de/);
    assert.equal(accrue(deReader, 'ledger', 'trial-balance', '--entity', 'nw-de', '--period', DASHBOARD_PERIOD).status, 0);
  });

  it('GET /metrics with key access refuses a key limited to entities (the series are not labelled by entity)', async () => {
    const keyed = await buildServer({ pool: store.pool, metrics: { access: 'key' } });
    const worker = await buildMetricsServer({ pool: store.pool, access: 'key' });
    try {
      for (const server of [keyed, worker]) {
        const refused = await server.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${deReader}` } });
        assert.equal(refused.statusCode, 403, refused.body);
        assert.equal(refused.json().type, 'https://accrue.dev/problems/entity_limited_key');
        const served = await server.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${everyReader}` } });
        assert.equal(served.statusCode, 200);
      }
    } finally {
      await keyed.close();
      await worker.close();
    }
  });
});
