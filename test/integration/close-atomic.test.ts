// The month close and the billing limits (issue #14): what ingestion accepts can be billed; a close that fails or is
// killed leaves the period open (closing) and a new close completes it; months that have not ended are refused
// unless closed early on purpose, future months always; both recorded in the audit log.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, catalogVersion, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { buildServer } from '../../src/api/server.js';
import { testKey, OPERATOR_AUDITOR } from '../support/keys.js';
import { ProblemError } from '../../src/domain/result.js';
import { Decimal } from '../../src/domain/money.js';
import { EVENT_AMOUNT_MINOR_MAX, MONEY_MINOR_MAX } from '../../src/domain/limits.js';

const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
// The same catalog with storage at the dearest unit price the limits allow: 10^10 USD = 10^12 minor units a GB-hour.
const DEAR_STORAGE = NORTHWIND.replace('unit_amount: "0.000137"', 'unit_amount: "10000000000"');
const AFTER_NOVEMBER = new Date('2026-12-04T12:00:00Z');

let store: Store;
let catalog: CatalogVersion;

const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//close-test',
  type,
  subject,
  time,
  data,
});
const storage = (id: string, time: string, gbHours: string) =>
  ev(id, 'acme-prod', 'com.northwind.storage.usage', time, { gb_hours: gbHours });

async function apply(text: string): Promise<CatalogVersion> {
  const applied = await applyCatalog(store.pool, text, { by: 'test' });
  assert.ok(applied.ok, JSON.stringify(!applied.ok && applied.problems));
  return (await catalogVersion(store.pool, applied.value.version))!;
}

async function ingest(events: unknown[], on = catalog) {
  return ingestBatch(store.pool, on, events, { channel: 'file', now: AFTER_NOVEMBER });
}

async function periodStatus(period: string): Promise<string[]> {
  return (
    await store.pool.query<{ status: string }>('SELECT status FROM billing_periods WHERE period = $1 ORDER BY legal_entity', [period])
  ).rows.map((r) => r.status);
}

async function invoiceCount(period: string): Promise<number> {
  return (await store.pool.query("SELECT count(*)::int AS n FROM invoices WHERE period = $1 AND kind = 'invoice'", [period])).rows[0].n;
}

async function lateOf(id: string): Promise<boolean> {
  return (await store.pool.query("SELECT late FROM events WHERE source = '//close-test' AND id = $1", [id])).rows[0].late;
}

before(async () => {
  store = await testStore();
  catalog = await apply(NORTHWIND);
});
after(() => store.close());

describe('limits: what ingestion accepts can be billed', () => {
  it('refuses a 40-digit gb_hours at ingest naming the field, and bills one at the meter limit without error', async () => {
    const limit = catalog.index.meterValueMax.get('storage_gb_hours')!;
    // By hand: 10^12 minor units / (0.000137 USD × 100) = 72 992 700 729 927.007… GB-hours, floored.
    assert.equal(limit.toFixed(), '72992700729927');
    const outcome = await ingest([
      storage('big-40', '2026-11-05T00:00:00Z', '9'.repeat(40)),
      storage('at-limit', '2026-11-06T00:00:00Z', limit.toFixed()),
      storage('over', '2026-11-06T00:00:00Z', limit.plus(1).toFixed()),
    ]);
    assert.deepEqual(
      outcome.results.map((r) => r.status),
      ['rejected', 'accepted', 'rejected'],
    );
    for (const rejected of [outcome.results[0]!, outcome.results[2]!]) {
      assert.equal(rejected.problems?.[0]?.path, 'data.gb_hours');
      assert.equal(rejected.problems?.[0]?.code, 'too_large');
      assert.match(rejected.problems![0]!.message, /storage_gb_hours/);
    }
    const closed = await closePeriod(store.pool, catalog, { period: '2026-11', now: AFTER_NOVEMBER });
    assert.deepEqual(await periodStatus('2026-11'), ['closed', 'closed']);
    assert.equal(await invoiceCount('2026-11'), closed.invoices.length);
    const acme = closed.invoices.find((i) => i.customer === 'acme')!;
    const line = acme.lines.find((l) => l.meter === 'storage_gb_hours')!;
    assert.equal(line.quantity, limit.toFixed());
    assert.ok(line.amount_minor <= EVENT_AMOUNT_MINOR_MAX, `${line.amount_minor}`);
    assert.equal(line.amount_minor, BigInt(limit.times('0.0137').toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toFixed()));
  });

  it('refuses at catalog apply a unit price one unit of which bills more than one event may, and a fixed amount beyond the limit', async () => {
    const tooDear = await applyCatalog(store.pool, NORTHWIND.replace('unit_amount: "0.000137"', 'unit_amount: "10000000000.01"'), {
      by: 'test',
    });
    assert.ok(!tooDear.ok);
    assert.ok(
      tooDear.problems.some((p) => p.code === 'too_large' && /unit_amount$/.test(p.path)),
      JSON.stringify(tooDear.problems),
    );
    const grant = await applyCatalog(
      store.pool,
      NORTHWIND.replace('amount: "200.00", currency: USD', 'amount: "10000000000000.01", currency: USD'),
      { by: 'test' },
    );
    assert.ok(!grant.ok);
    assert.ok(
      grant.problems.some((p) => p.code === 'too_large' && p.path === 'credit_grants[0].amount'),
      JSON.stringify(grant.problems),
    );
  });
});

describe('an atomic close', () => {
  it('a close that cannot be billed fails with 422 naming customer and meter, closes nothing, and a later close completes it', async () => {
    const limit = catalog.index.meterValueMax.get('storage_gb_hours')!.toFixed();
    assert.equal(
      (await ingest([storage('oct-1', '2026-10-05T00:00:00Z', limit), storage('oct-2', '2026-10-06T00:00:00Z', limit)])).counts.accepted,
      2,
    );
    // A dearer price afterwards: 2 × 72 992 700 729 927 GB-hours × 10^12 minor units is far beyond an int8.
    const dear = await apply(DEAR_STORAGE);
    // Over HTTP: a 422 problem naming the customer and meter, never a 500.
    const app = await buildServer({ pool: store.pool });
    try {
      const admin = (await testKey(store.pool, { name: 'admin', roles: OPERATOR_AUDITOR })).secret;
      const res = await app.inject({ method: 'POST', url: '/v1/periods/2026-10/close', headers: { authorization: `Bearer ${admin}` } });
      assert.equal(res.statusCode, 422, res.body);
      const errors = res.json().errors as Array<{ path: string; code: string }>;
      assert.deepEqual(
        errors.map((e) => `${e.path} ${e.code}`),
        ['customers.acme.meters.storage_gb_hours amount_out_of_range', 'period close_failed'],
      );
    } finally {
      await app.close();
    }
    assert.deepEqual(await periodStatus('2026-10'), ['closing', 'closing']);
    await assert.rejects(closePeriod(store.pool, dear, { period: '2026-10', now: AFTER_NOVEMBER }), (error: unknown) => {
      assert.ok(error instanceof ProblemError, String(error));
      assert.equal(error.status, 422);
      assert.equal(error.problems[0]!.code, 'amount_out_of_range');
      assert.equal(error.problems[0]!.path, 'customers.acme.meters.storage_gb_hours');
      assert.match(error.problems[0]!.message, new RegExp(`beyond the ${MONEY_MINOR_MAX} minor units`));
      assert.ok(error.problems.some((p) => p.code === 'close_failed' && /nothing was closed/.test(p.message)));
      return true;
    });
    assert.deepEqual(await periodStatus('2026-10'), ['closing', 'closing'], 'open to ingestion, not closed');
    assert.equal(await invoiceCount('2026-10'), 0);
    // Usage arriving now is not late: the month is still open.
    assert.equal((await ingest([storage('oct-after-failure', '2026-10-20T00:00:00Z', '10')])).counts.accepted, 1);
    assert.equal(await lateOf('oct-after-failure'), false);

    // Back to the billable price: the next close resumes with the first attempt's watermark and completes.
    const fixed = await apply(NORTHWIND);
    const closed = await closePeriod(store.pool, fixed, { period: '2026-10', now: AFTER_NOVEMBER });
    assert.equal(closed.resumed, true);
    assert.deepEqual(await periodStatus('2026-10'), ['closed', 'closed']);
    assert.equal(await invoiceCount('2026-10'), closed.invoices.length);
    assert.ok(closed.invoices.length > 0);
    // The event that arrived while the month was closing is above the watermark: flagged late as the month closed,
    // so the next run bills it by adjustment; the invoice holds the two events at the watermark.
    assert.equal(await lateOf('oct-after-failure'), true);
    const line = closed.invoices.find((i) => i.customer === 'acme')!.lines.find((l) => l.meter === 'storage_gb_hours')!;
    assert.equal(line.quantity, new Decimal(limit).times(2).toFixed());
  });

  it('a killed `accrue close` leaves the month open, and a second close completes it', async () => {
    assert.equal((await ingest([storage('sep-1', '2026-09-05T00:00:00Z', '1000')])).counts.accepted, 1);
    // Rating reads the credit drawdowns first: holding them locked stops the child inside rating, after it began.
    const blocker = await store.pool.connect();
    let child: ChildProcess | undefined;
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE credit_drawdowns IN ACCESS EXCLUSIVE MODE');
      child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--database-url', store.url, 'close', '2026-09'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      let stderr = '';
      child.stderr!.on('data', (chunk) => (stderr += chunk));
      // Wait (no time limit beyond the test runner's) until the child is blocked in rating.
      for (;;) {
        const waiting = (
          await store.pool.query(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%credit_drawdowns%' AND pid <> pg_backend_pid()",
          )
        ).rows[0].n;
        if (waiting > 0) break;
        if (child.exitCode !== null) assert.fail(`the close exited before rating: ${stderr}`);
        await sleep(50);
      }
      assert.deepEqual(await periodStatus('2026-09'), ['closing', 'closing']);
      child.kill('SIGKILL');
      await exited;
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    assert.equal(child!.signalCode, 'SIGKILL');
    assert.deepEqual(await periodStatus('2026-09'), ['closing', 'closing'], 'a killed close closed nothing');
    assert.equal(await invoiceCount('2026-09'), 0);
    assert.equal((await ingest([storage('sep-after-kill', '2026-09-20T00:00:00Z', '5')])).counts.accepted, 1);
    assert.equal(await lateOf('sep-after-kill'), false, 'the month is open: not late');

    const closed = await closePeriod(store.pool, catalog, { period: '2026-09', now: AFTER_NOVEMBER });
    assert.equal(closed.resumed, true);
    assert.deepEqual(await periodStatus('2026-09'), ['closed', 'closed']);
    assert.equal(await invoiceCount('2026-09'), closed.invoices.length);
    assert.ok(closed.invoices.some((i) => i.customer === 'acme'));
    // Closed now: an event for September is late from here on.
    assert.equal((await ingest([storage('sep-after-close', '2026-09-21T00:00:00Z', '5')])).counts.accepted, 1);
    assert.equal(await lateOf('sep-after-close'), true);
  });
});

describe('which months may be closed', () => {
  it('refuses a month that has not ended unless early, a future month always, and records both in the audit log', async () => {
    const during = new Date('2026-12-04T10:00:00Z');
    await assert.rejects(closePeriod(store.pool, catalog, { period: '2026-12', now: during, by: 'alice' }), (error: unknown) => {
      assert.ok(error instanceof ProblemError);
      assert.equal(error.status, 409);
      assert.equal(error.problems[0]!.code, 'period_not_ended');
      assert.match(error.problems[0]!.message, /period 2026-12 has not ended/);
      return true;
    });
    await assert.rejects(
      closePeriod(store.pool, catalog, { period: '2027-01', now: during, early: true, by: 'alice' }),
      (error: unknown) => {
        assert.ok(error instanceof ProblemError);
        assert.equal(error.status, 409);
        assert.equal(error.problems[0]!.code, 'period_in_future');
        return true;
      },
    );
    assert.deepEqual(await periodStatus('2026-12'), []);
    assert.deepEqual(await periodStatus('2027-01'), []);
    assert.equal((await store.pool.query("SELECT count(*)::int AS n FROM invoices WHERE period IN ('2026-12', '2027-01')")).rows[0].n, 0);
    const early = await closePeriod(store.pool, catalog, { period: '2026-12', now: during, early: true, by: 'alice' });
    assert.equal(early.early, true);
    assert.deepEqual(await periodStatus('2026-12'), ['closed', 'closed']);
    const audit = (
      await store.pool.query(
        "SELECT action, actor, details FROM audit_log WHERE action LIKE 'billing_run.close%' AND details->>'period' IN ('2026-12', '2027-01') ORDER BY seq",
      )
    ).rows;
    assert.deepEqual(
      audit.map((r) => [r.action, r.actor, r.details.period, r.details.code ?? r.details.early ?? null]),
      [
        ['billing_run.close_refused', 'alice', '2026-12', 'period_not_ended'],
        ['billing_run.close_refused', 'alice', '2027-01', 'period_in_future'],
        ['billing_run.close_early', 'alice', '2026-12', null],
        ['billing_run.close', 'alice', '2026-12', true],
      ],
    );
  });

  it('`accrue close` refuses a future month with exit code 2 naming it, and takes no invoice number', async () => {
    const before = (await store.pool.query('SELECT coalesce(sum(last_number), 0)::int AS n FROM invoice_number_sequences')).rows[0].n;
    const run = await cli(['close', '2099-01', '--early']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /period 2099-01 has not begun/);
    assert.deepEqual(await periodStatus('2099-01'), []);
    assert.equal(
      (await store.pool.query('SELECT coalesce(sum(last_number), 0)::int AS n FROM invoice_number_sequences')).rows[0].n,
      before,
    );
  });
});

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--database-url', store.url, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}
