// Business metrics with real values: a closed period, a backlog an ERP refuses or fails on, a replayed dead letter,
// payments polled back (one applied, one refused), late usage and an open month's unbilled usage, each checked against
// what the store holds; the unbilled estimate equals what the close then bills; `promtool check metrics` accepts it all.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox, replayDeadLetter } from '../../src/post/outbox.js';
import { TargetError, type ErpTarget } from '../../src/post/target.js';
import { pollPayments, type ErpPayment } from '../../src/settle/poll.js';
import { unbilledUsage } from '../../src/rate/unbilled.js';
import { buildServer } from '../../src/api/server.js';
import { buildMetricsServer } from '../../src/api/metrics.js';
import { testKey } from '../support/keys.js';
import { ConfigError, loadConfig, parseListen } from '../../src/cli/config.js';
import { minorToMajor } from '../../src/domain/money.js';

let store: Store;
let catalog: CatalogVersion;
let app: FastifyInstance;

const monthOf = (t: Date) => t.toISOString().slice(0, 7);
const NOW = new Date();
const PREVIOUS = monthOf(new Date(Date.UTC(NOW.getUTCFullYear(), NOW.getUTCMonth() - 1, 1)));
const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id,
  source: '//metrics-test',
  type,
  subject,
  time,
  data,
});
const API = 'com.northwind.api.request';

/** The value of one sample line, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  catalog = (await currentCatalog(store.pool))!;
});
after(async () => {
  await app?.close();
  await store.close();
});

describe('the unbilled estimate', () => {
  // A database of its own: this month is closed here, and the clock's month may be this one.
  let own: Store;
  let catalog: CatalogVersion;
  before(async () => {
    own = await testStore();
    assert.ok((await applyCatalog(own.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
    catalog = (await currentCatalog(own.pool))!;
  });
  after(() => own.close());

  it('rates each open period as the close then bills it, partial windows and credits included', async () => {
    const nov = (day: string) => `2026-11-${day}T12:00:00Z`;
    await ingestBatch(
      own.pool,
      catalog,
      [
        ev('u1', 'acme-prod', API, nov('02')),
        ev('u2', 'acme-prod', API, nov('03')),
        ev('u3', 'acme-prod', 'com.northwind.storage.usage', nov('04'), { gb_hours: '1500.5' }),
        ev('u4', 'initech-eu-1', API, nov('05')), // before initech's subscription starts on the 10th
        ev('u5', 'initech-eu-1', API, nov('15')),
        ev('u6', 'umbrella', API, nov('16')),
      ],
      { channel: 'file', now: new Date('2026-11-20T00:00:00Z') },
    );
    const estimate = await unbilledUsage(own.pool, catalog, new Date('2026-11-20T00:00:00Z'));
    assert.deepEqual(estimate.open_periods, [
      { legal_entity: 'nw-us', periods: ['2026-11'] },
      { legal_entity: 'nw-de', periods: ['2026-11'] },
    ]);
    const quantity = (entity: string, meter: string) =>
      estimate.quantities.find((q) => q.legal_entity === entity && q.meter === meter)?.quantity;
    assert.equal(quantity('nw-us', 'api_calls'), '4'); // acme 2 + initech 2 (the close bills initech from the 10th: the estimate counts the period)
    assert.equal(quantity('nw-us', 'storage_gb_hours'), '1500.5');
    assert.equal(quantity('nw-de', 'api_calls'), '1');
    assert.deepEqual(estimate.events, [
      { legal_entity: 'nw-us', events: 5 },
      { legal_entity: 'nw-de', events: 1 },
    ]);

    const outcome = await closePeriod(own.pool, catalog, { period: '2026-11' });
    const billed = new Map<string, bigint>();
    for (const invoice of outcome.invoices)
      billed.set(
        `${invoice.legal_entity}|${invoice.currency}`,
        (billed.get(`${invoice.legal_entity}|${invoice.currency}`) ?? 0n) + invoice.total_minor,
      );
    assert.ok(billed.size >= 2);
    for (const [key, total] of billed) {
      const [legal_entity, currency] = key.split('|');
      assert.equal(
        estimate.amounts.find((a) => a.legal_entity === legal_entity && a.currency === currency)?.amount_minor,
        total,
        `${key}: estimate = what the close billed`,
      );
    }
    const afterClose = await unbilledUsage(own.pool, catalog, new Date('2026-11-20T00:00:00Z'));
    assert.deepEqual(
      afterClose.open_periods.map((p) => p.periods),
      [[], []],
    );
    assert.deepEqual(afterClose.amounts, []);
  });
});

describe('GET /metrics', () => {
  let text = '';
  before(async () => {
    const day10 = `${PREVIOUS}-10T00:00:00Z`;
    await ingestBatch(
      store.pool,
      catalog,
      [ev('p1', 'acme-prod', API, day10), ev('p2', 'acme-prod', API, day10), ev('p3', 'umbrella', API, day10)],
      { channel: 'file' },
    );
    await closePeriod(store.pool, catalog, { period: PREVIOUS, erpTargets: ['refusing', 'flaky'] });
    // Late usage for the closed month, and usage of the open month.
    await ingestBatch(store.pool, catalog, [ev('late-1', 'acme-prod', API, day10)], { channel: 'file' });
    const recent = new Date(NOW.getTime() - 60_000).toISOString();
    await ingestBatch(
      store.pool,
      catalog,
      [ev('c1', 'acme-prod', API, recent), ev('c2', 'acme-staging', API, recent), ev('c2', 'acme-staging', API, recent)],
      { channel: 'file' },
    );

    const stub = (name: string, error: TargetError): ErpTarget => ({
      name,
      limits: { concurrency: 1, requestsPerMinute: 60_000 },
      find: async () => undefined,
      post: async () => {
        throw error;
      },
    });
    const refusing = stub('refusing', new TargetError('account closed', { status: 400, permanent: true }));
    assert.ok((await drainOutbox(store.pool, refusing)).dead >= 2);
    const dead = (
      await store.pool.query<{ id: string }>(
        "SELECT id::text FROM outbox WHERE target = 'refusing' AND status = 'dead' ORDER BY id LIMIT 1",
      )
    ).rows[0]!.id;
    assert.ok(await replayDeadLetter(store.pool, dead, 'test'));
    await drainOutbox(store.pool, refusing); // refused again: dead again, replayed once
    await drainOutbox(store.pool, stub('flaky', new TargetError('service unavailable', { status: 503, permanent: false })), {
      backoffBaseMs: 60_000,
    });

    const acme = (
      await store.pool.query<{ number: string; total: string }>(
        "SELECT number, total_minor::text AS total FROM invoices WHERE customer = 'acme' AND period = $1",
        [PREVIOUS],
      )
    ).rows[0]!;
    const umbrella = (
      await store.pool.query<{ number: string }>("SELECT number FROM invoices WHERE customer = 'umbrella' AND period = $1", [PREVIOUS])
    ).rows[0]!;
    const modified = new Date(NOW.getTime() - 10 * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const payment = (id: string, invoice: string, amount: string, currency: string): ErpPayment => ({
      id,
      invoice_reference: null,
      invoice_key: null,
      invoice_number: invoice,
      amount,
      currency,
      received_on: NOW.toISOString().slice(0, 10),
      modified_at: modified,
      deleted: false,
    });
    const polled = await pollPayments(store.pool, {
      name: 'netsuite',
      async *paymentPages() {
        yield [
          payment('pay-1', acme.number, minorToMajor(BigInt(acme.total), 'USD').toFixed(2), 'USD'),
          payment('pay-2', umbrella.number, '1.00', 'USD'),
        ];
      },
    });
    assert.equal(polled.applied, 1);
    assert.equal(polled.exceptions, 1);

    app = await buildServer({ pool: store.pool });
    await app.inject({ method: 'GET', url: '/healthz' });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    text = res.body;
  });

  it('passes promtool check metrics', () => {
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (lint.error) throw new Error(`promtool (Debian package prometheus) is needed to check the metrics: ${lint.error.message}`);
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
  });

  it('counts ingestion outcomes and late usage', () => {
    assert.equal(sample(text, 'accrue_events_received_total{outcome="accepted"}'), 3 + 1 + 2);
    assert.equal(sample(text, 'accrue_events_received_total{outcome="duplicate"}'), 1);
    assert.equal(sample(text, 'accrue_events_received_total{outcome="conflict"}'), 0);
    assert.equal(sample(text, 'accrue_late_events_total{legal_entity="nw-us"}'), 1);
  });

  it('reports the open month as unbilled usage with its estimate', async () => {
    assert.equal(sample(text, 'accrue_unbilled_usage_quantity{legal_entity="nw-us",meter="api_calls"}'), 2);
    const estimate = await unbilledUsage(store.pool, catalog);
    const usd = estimate.amounts.find((a) => a.legal_entity === 'nw-us' && a.currency === 'USD')!;
    assert.ok(usd.amount_minor > 0n);
    assert.equal(
      sample(text, 'accrue_unbilled_amount{legal_entity="nw-us",currency="USD"}'),
      minorToMajor(usd.amount_minor, 'USD').toNumber(),
    );
    assert.equal(sample(text, 'accrue_unbilled_events{legal_entity="nw-us"}'), 2);
    assert.ok((sample(text, 'accrue_unbilled_estimate_age_seconds') ?? -1) >= 0);
  });

  it('measures invoice generation latency from period end to finalization', async () => {
    const rows = (
      await store.pool.query<{ legal_entity: string; n: number; total: number; within_day: number }>(
        `SELECT legal_entity, count(*)::int AS n, sum(greatest(0, extract(epoch FROM finalized_at - (period_end::timestamp AT TIME ZONE 'UTC'))))::float8 AS total,
                count(*) FILTER (WHERE greatest(0, extract(epoch FROM finalized_at - (period_end::timestamp AT TIME ZONE 'UTC'))) <= 86400)::int AS within_day
           FROM invoices WHERE kind = 'invoice' AND corrects IS NULL GROUP BY 1`,
      )
    ).rows;
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.equal(sample(text, `accrue_invoice_generation_latency_seconds_count{legal_entity="${row.legal_entity}"}`), row.n);
      assert.equal(sample(text, `accrue_invoice_generation_latency_seconds_bucket{le="+Inf",legal_entity="${row.legal_entity}"}`), row.n);
      assert.equal(
        sample(text, `accrue_invoice_generation_latency_seconds_bucket{le="86400",legal_entity="${row.legal_entity}"}`),
        row.within_day,
      );
      assert.ok(
        Math.abs(sample(text, `accrue_invoice_generation_latency_seconds_sum{legal_entity="${row.legal_entity}"}`)! - row.total) < 1,
      );
    }
  });

  it('reports the posting backlog, failures, dead letters and replays per connector', async () => {
    const journals = (await store.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox WHERE target = 'flaky'")).rows[0]!.n;
    assert.ok(journals >= 2);
    assert.equal(sample(text, 'accrue_outbox_failing_entries{connector="flaky"}'), journals);
    assert.ok((sample(text, 'accrue_outbox_oldest_pending_age_seconds{connector="flaky"}') ?? -1) >= 0);
    assert.equal(sample(text, 'accrue_dead_letter_entries{connector="refusing"}'), journals);
    assert.equal(sample(text, 'accrue_outbox_replays_total{connector="refusing"}'), 1);
    assert.equal(sample(text, 'accrue_outbox_replays_total{connector="flaky"}'), 0);
    assert.equal(sample(text, 'accrue_dead_letter_entries{connector="flaky"}'), 0, 'a connector with no dead letter reads 0');
    assert.equal(sample(text, 'accrue_outbox_failing_entries{connector="refusing"}'), 0);
    assert.equal(sample(text, 'accrue_outbox_entries{connector="refusing",legal_entity="nw-de",status="pending"}'), 0);
    const byEntity = (
      await store.pool.query<{ legal_entity: string; n: number }>(
        "SELECT j.legal_entity, count(*)::int AS n FROM outbox o JOIN journals j ON j.id = o.document_id WHERE o.target = 'flaky' GROUP BY 1",
      )
    ).rows;
    for (const r of byEntity)
      assert.equal(sample(text, `accrue_outbox_entries{connector="flaky",legal_entity="${r.legal_entity}",status="pending"}`), r.n);
    assert.equal(sample(text, 'accrue_erp_call_failures_total{connector="refusing",kind="permanent"}'), journals + 1);
    assert.equal(sample(text, 'accrue_erp_call_failures_total{connector="flaky",kind="transient"}'), journals);
  });

  it('reports charge rejections, open exceptions by queue and the payment sync delay', async () => {
    const refused = (await store.pool.query<{ kind: string }>("SELECT kind FROM exceptions WHERE subject = 'netsuite:pay-2'")).rows[0]!;
    assert.equal(sample(text, `accrue_charge_rejections_total{legal_entity="nw-de",reason="${refused.kind}"}`), 1);
    assert.equal(sample(text, 'accrue_exceptions_open{queue="finance_operations",status="open",legal_entity="nw-de"}'), 1);
    assert.ok((sample(text, 'accrue_payment_sync_last_poll_age_seconds{connector="netsuite"}') ?? -1) >= 0);
    assert.equal(sample(text, 'accrue_payment_sync_delay_seconds_count{connector="netsuite"}'), 1);
    assert.equal(sample(text, 'accrue_payment_sync_delay_seconds_bucket{le="300",connector="netsuite"}'), 0, 'changed ten minutes ago');
    assert.equal(sample(text, 'accrue_payment_sync_delay_seconds_bucket{le="900",connector="netsuite"}'), 1);
  });

  it('serves HTTP and process basics', () => {
    assert.equal(sample(text, 'accrue_http_requests_total{method="GET",route="/healthz",status_code="200"}'), 1);
    assert.match(text, /^accrue_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/healthz"\} \d/m);
    assert.match(text, /^process_cpu_user_seconds_total \d/m);
  });
});

/** promtool's verdict on a scrape. */
function promtoolAccepts(text: string): void {
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (lint.error) throw new Error(`promtool (Debian package prometheus) is needed to check the metrics: ${lint.error.message}`);
  assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
}

describe('series with nothing to count', () => {
  // A database of its own with a catalog and nothing else: no event, invoice, outbox entry or exception.
  let own: Store;
  let server: FastifyInstance;
  let text = '';
  before(async () => {
    own = await testStore();
    assert.ok((await applyCatalog(own.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
    server = await buildServer({ pool: own.pool, metrics: { connectors: ['netsuite', 'xero'] } });
    const res = await server.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    text = res.body;
  });
  after(async () => {
    await server.close();
    await own.close();
  });

  it('read 0 for every known label set: legal entities, meters, configured connectors, queues, statuses, outcomes', () => {
    const zero = [
      'accrue_dead_letter_entries{connector="netsuite"}',
      'accrue_outbox_failing_entries{connector="netsuite"}',
      'accrue_outbox_oldest_pending_age_seconds{connector="netsuite"}',
      'accrue_outbox_replays_total{connector="netsuite"}',
      'accrue_outbox_entries{connector="netsuite",legal_entity="nw-us",status="pending"}',
      'accrue_outbox_entries{connector="netsuite",legal_entity="nw-de",status="dead"}',
      'accrue_erp_call_failures_total{connector="netsuite",kind="permanent"}',
      'accrue_erp_call_failures_total{connector="netsuite",kind="transient"}',
      'accrue_erp_call_failures_total{connector="xero",kind="permanent"}', // no other test here knows xero: set at start
      'accrue_dead_letter_entries{connector="xero"}',
      'accrue_exceptions_open{queue="finance_operations",status="open",legal_entity="nw-us"}',
      'accrue_exceptions_open{queue="billing_engineering",status="assigned",legal_entity="nw-de"}',
      'accrue_exceptions_open{queue="integration_support",status="open",legal_entity="nw-de"}',
      'accrue_invoices{legal_entity="nw-us",kind="invoice",status="finalized"}',
      'accrue_invoices{legal_entity="nw-de",kind="credit_note",status="void"}',
      'accrue_charge_rejections_total{legal_entity="nw-us",reason="payment_unmatched"}',
      'accrue_late_events_total{legal_entity="nw-de"}',
      'accrue_quarantine_pending{reason="unknown_type"}',
      'accrue_quarantine_pending{reason="unknown_subject"}',
      'accrue_unbilled_events{legal_entity="nw-us"}',
      'accrue_unbilled_usage_quantity{legal_entity="nw-de",meter="api_calls"}',
      'accrue_events_received_total{outcome="quarantined"}',
      'accrue_invoice_generation_latency_seconds_count{legal_entity="nw-us"}',
      'accrue_invoice_generation_latency_seconds_bucket{le="+Inf",legal_entity="nw-de"}',
      'accrue_payment_sync_delay_seconds_count{connector="netsuite"}',
      'accrue_payment_sync_delay_seconds_bucket{le="60",connector="netsuite"}',
    ];
    assert.deepEqual(
      zero.filter((series) => sample(text, series) !== 0),
      [],
      'absent or not 0',
    );
    // Flat fees of the open month are unbilled before any usage: the amount is there, in each entity's currency.
    assert.ok(sample(text, 'accrue_unbilled_amount{legal_entity="nw-de",currency="EUR"}') !== undefined);
    assert.ok(sample(text, 'accrue_unbilled_amount{legal_entity="nw-us",currency="USD"}') !== undefined);
  });

  it('still pass promtool check metrics', () => promtoolAccepts(text));
});

describe('protecting /metrics', () => {
  let own: Store;
  let read = '';
  let ingest = '';
  const apps: FastifyInstance[] = [];
  before(async () => {
    own = await testStore();
    read = (await testKey(own.pool, { name: 'prometheus', roles: ['auditor'] })).secret;
    ingest = (await testKey(own.pool, { name: 'producer', roles: ['ingest'] })).secret;
  });
  after(async () => {
    for (const app of apps) await app.close();
    await own.close();
  });
  const get = (app: FastifyInstance, key?: string) =>
    app.inject({ method: 'GET', url: '/metrics', headers: key ? { authorization: `Bearer ${key}` } : {} });

  it('is public by default', async () => {
    const app = await buildServer({ pool: own.pool });
    apps.push(app);
    assert.equal((await get(app)).statusCode, 200);
  });

  it('with access key: a read (or admin) key reads it; no key 401, an ingest key 403', async () => {
    const app = await buildServer({ pool: own.pool, metrics: { access: 'key' } });
    apps.push(app);
    assert.equal((await get(app)).statusCode, 401);
    assert.equal((await get(app, 'acc_read_wrong')).statusCode, 401);
    assert.equal((await get(app, ingest)).statusCode, 403);
    const ok = await get(app, read);
    assert.equal(ok.statusCode, 200);
    assert.match(ok.body, /^# TYPE accrue_invoices gauge$/m);
  });

  it("on a separate address: the API has no /metrics, the metrics server has them with the API's HTTP counts", async () => {
    const api = await buildServer({ pool: own.pool, metrics: { route: false } });
    apps.push(api);
    assert.equal((await get(api)).statusCode, 404);
    await api.inject({ method: 'GET', url: '/healthz' });
    const metrics = await buildMetricsServer({ pool: own.pool, registry: api.metricsRegistry });
    apps.push(metrics);
    const res = await get(metrics);
    assert.equal(res.statusCode, 200);
    assert.equal(sample(res.body, 'accrue_http_requests_total{method="GET",route="/healthz",status_code="200"}'), 1);
    promtoolAccepts(res.body);
    assert.equal((await metrics.inject({ method: 'GET', url: '/v1/invoices' })).statusCode, 404, 'that address serves /metrics only');

    const keyed = await buildMetricsServer({ pool: own.pool, access: 'key' }); // a worker's: the store's and the process's series
    apps.push(keyed);
    assert.equal((await get(keyed)).statusCode, 401);
    assert.equal((await get(keyed, ingest)).statusCode, 403);
    const worker = await get(keyed, read);
    assert.equal(worker.statusCode, 200);
    assert.match(worker.body, /^# TYPE accrue_dead_letter_entries gauge$/m);
  });

  it('is configured by metrics_access and metrics_listen (file, environment, flags), refused when malformed', () => {
    assert.equal(loadConfig({}, {}).metricsAccess, 'public');
    assert.equal(loadConfig({}, {}).metricsListen, undefined);
    assert.equal(loadConfig({}, { ACCRUE_METRICS_ACCESS: 'key' }).metricsAccess, 'key');
    assert.equal(loadConfig({ metricsListen: '127.0.0.1:9464' }, {}).metricsListen, '127.0.0.1:9464');
    assert.deepEqual(parseListen('127.0.0.1:9464', 'x'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListen('[::1]:9464', 'x'), { host: '::1', port: 9464 });
    assert.throws(
      () => loadConfig({}, { ACCRUE_METRICS_ACCESS: 'open' }),
      (e) => e instanceof ConfigError && /metrics access must be one of public, key/.test(e.message),
    );
    for (const bad of ['9464', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', 'host:port']) {
      assert.throws(
        () => loadConfig({ metricsListen: bad }, {}),
        (e) => e instanceof ConfigError && /must be host:port/.test(e.message),
        bad,
      );
    }
  });
});
