// The dashboard's read endpoints and the DLQ routes over HTTP: the unbilled estimate of an open month equals what the
// close then invoices, and the routes answer problems by path.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { buildServer } from '../../src/api/server.js';
import { testKey, OPERATOR_AUDITOR } from '../support/keys.js';
import { applyCatalog, catalogVersion, type CatalogVersion } from '../../src/catalog/service.js';
import { generateUsage } from '../../src/demo/generate.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { parsePeriod } from '../../src/meter/period.js';
import { formatMajor } from '../../src/domain/money.js';

let store: Store;
let app: FastifyInstance;
let catalog: CatalogVersion;
let read: string;
let admin: string;
const PERIOD = '2026-10';

const get = async (url: string, key = read) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });

before(async () => {
  store = await testStore();
  app = await buildServer({ pool: store.pool, approvalRequired: [] /* the controls' own tests cover approval */ });
  read = (await testKey(store.pool, { name: 'read', roles: ['auditor'] })).secret;
  admin = (await testKey(store.pool, { name: 'admin', roles: OPERATOR_AUDITOR })).secret;
});
after(async () => {
  await app.close();
  await store.close();
});

interface Overview {
  days: string[];
  totals: Array<Record<string, string> & { invoices: number }>;
  series: Array<{ legal_entity: string; currency: string; usage: string[]; unbilled: string[]; invoiced: string[] }>;
  kpis: Array<{ id: string; value: string | null; previous: string | null }>;
}

describe('dashboard API', () => {
  it('answers 409 with no catalog, and checks its query strings by path', async () => {
    assert.equal((await get(`/v1/dashboard/overview?period=${PERIOD}`)).statusCode, 409);
    const bad = await get('/v1/dashboard/overview?period=2026-13');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().errors[0].path, 'period');
    const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
    assert.ok(applied.ok);
    catalog = (await catalogVersion(store.pool, applied.value.version))!;
    const backwards = await get('/v1/dashboard/customers/acme/usage?from=2026-10-10&to=2026-10-01');
    assert.equal(backwards.statusCode, 400);
    assert.deepEqual(
      backwards.json().errors.map((e: { path: string }) => e.path),
      ['to'],
    );
    assert.equal((await get('/v1/dashboard/customers/nobody/usage?from=2026-10-01&to=2026-11-01')).statusCode, 404);
    assert.equal((await get('/v1/dashboard/pipeline?hours=9999')).statusCode, 400);
  });

  it("estimates an open month day by day, and the close invoices exactly the last day's estimate", async () => {
    const window = parsePeriod(PERIOD);
    assert.ok(window.ok);
    const events = [...generateUsage({ catalog: catalog.catalog, period: window.value, events: 4_000, seed: 11 })];
    for (let i = 0; i < events.length; i += 1000)
      await ingestBatch(store.pool, catalog, events.slice(i, i + 1000), { channel: 'file', now: new Date(window.value.to) });

    const open = await get(`/v1/dashboard/overview?period=${PERIOD}`);
    assert.equal(open.statusCode, 200, open.body);
    const before: Overview = open.json();
    assert.deepEqual(
      [before.days[0], before.days.at(-1), before.days.length],
      ['2026-10-01', '2026-10-31', 31],
      'an open month: the axis is its days',
    );
    for (const s of before.series) {
      // Nothing is invoiced yet, so all of the estimate is unbilled.
      assert.deepEqual(s.unbilled, s.usage);
      assert.notEqual(s.usage[0], s.usage.at(-1), `${s.legal_entity}: the month's usage moves the estimate`);
      assert.ok(s.invoiced.every((v) => /^0\.00$/.test(v)));
    }

    const closed = await closePeriod(store.pool, catalog, { period: PERIOD });
    const after = await get(`/v1/dashboard/overview?period=${PERIOD}`);
    const overview: Overview = after.json();
    for (const total of overview.totals) {
      const invoiced = closed.invoices
        .filter((i) => i.legal_entity === total.legal_entity && i.currency === total.currency)
        .reduce((s, i) => s + i.total_minor, 0n);
      const estimated = before.series.find((s) => s.legal_entity === total.legal_entity && s.currency === total.currency)!.usage.at(-1);
      assert.equal(
        estimated,
        formatMajor(invoiced, total.currency!),
        `${total.legal_entity}: the estimate on the last day is what the close invoiced`,
      );
      assert.equal(total.invoiced, formatMajor(invoiced, total.currency!));
      assert.equal(total.unbilled, formatMajor(0n, total.currency!));
      assert.equal(total.paid, formatMajor(0n, total.currency!));
      assert.equal(total.outstanding, total.invoiced);
    }
    const accepted = overview.kpis.find((k) => k.id === 'events_accepted')!;
    assert.deepEqual(accepted, { ...accepted, value: '4000', previous: '0' });
  });

  it('searches invoices by customer name and number, and serves the PDF', async () => {
    const byName = (await get('/v1/dashboard/invoices?q=globex')).json();
    assert.ok(byName.total >= 1);
    assert.ok(byName.invoices.every((i: { customer: string }) => i.customer === 'globex'));
    const first = byName.invoices[0];
    const byNumber = (await get(`/v1/dashboard/invoices?q=${first.number}`)).json();
    assert.deepEqual(
      byNumber.invoices.map((i: { id: string }) => i.id),
      [first.id],
    );
    const pdf = await get(`/v1/invoices/${first.number}/pdf`);
    assert.equal(pdf.statusCode, 200);
    assert.equal(pdf.headers['content-type'], 'application/pdf');
    assert.equal(pdf.rawPayload.subarray(0, 5).toString(), '%PDF-');
    assert.equal((await get('/v1/invoices/NWUS-999999/pdf')).statusCode, 404);
  });

  it('lists dead letters and replays one with an admin key only; a replayed entry is not dead any more', async () => {
    const [row] = (
      await store.pool.query<{ id: string }>(
        `INSERT INTO outbox (key, target, document_kind, document_id, status, attempts, last_error)
         VALUES ('out:v1:netsuite:jrn:test', 'netsuite', 'journal', 'jrn:test', 'dead', 8, '{"message": "refused", "status": 400}') RETURNING id::text`,
      )
    ).rows;
    const listed = (await get('/v1/dlq')).json();
    assert.deepEqual(
      listed.dead_letters.map((d: { id: string; last_error: unknown }) => [d.id, d.last_error]),
      [[row!.id, { message: 'refused', status: 400 }]],
    );
    const url = `/v1/dlq/${row!.id}/replay`;
    assert.equal((await app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${read}` } })).statusCode, 403);
    const replayed = await app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${admin}` } });
    assert.equal(replayed.statusCode, 200, replayed.body);
    assert.deepEqual(replayed.json(), { id: row!.id, replayed: true });
    const again = await app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${admin}` } });
    assert.equal(again.statusCode, 404);
    assert.equal(again.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.deepEqual((await get('/v1/dlq')).json().dead_letters, []);
    const health = (await get('/v1/dashboard/pipeline?hours=1')).json();
    assert.deepEqual(
      health.connectors.find((c: { target: string }) => c.target === 'netsuite'),
      {
        target: 'netsuite',
        pending: 1,
        posted: 0,
        dead: 0,
        oldest_pending_seconds: health.connectors[0].oldest_pending_seconds,
        replays: 1,
        status: null,
        parked_until: null,
        waiting: 0,
      },
    );
    assert.equal(health.ingestion.totals.received, 4000);
  });
});
