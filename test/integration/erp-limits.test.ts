// Xero's real limits, shared through Postgres: 150 documents posted by three workers (three pools, as three
// processes) at 5 in flight and 60 calls a minute (the minute shortened to two seconds, the ratio kept), with no 429,
// no dead letter, and each row's attempts equal to the calls made for it. A daily limit parks the connection without
// spending attempts; posting resumes once the day is over.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { testStore } from '../support/db.js';
import { XeroSimulator } from '../support/xero-sim.js';
import { northwindMappings, northwindTenant, simAuthorizer } from '../support/xero-target.js';
import type { Store } from '../../src/store/store.js';
import { transaction } from '../../src/store/store.js';
import { staticMappings, type ConnectionSettings } from '../../src/domain/erp.js';
import { saveConnections } from '../../src/connectors/connections.js';
import { sharedCaller, type SharedCallerOptions } from '../../src/connectors/erp-caller.js';
import { XeroTarget } from '../../src/connectors/xero/client.js';
import { recordJournals } from '../../src/post/journals.js';
import { drainOutbox } from '../../src/post/outbox.js';
import type { Journal } from '../../src/domain/model.js';
import { retryAfterMs } from '../../src/connectors/http.js';

let store: Store;
const WINDOW_MS = 2_000;

/** A balanced journal of the US entity: receivable against revenue. */
const journal = (n: number): Journal => ({
  id: `jrn:v1:credit_drawdown:limits-${n}`,
  key: `limits-${n}`,
  legal_entity: 'nw-us',
  posting_date: '2026-10-31',
  source_document: `limits-${n}`,
  kind: 'credit_drawdown',
  memo: `Limits test ${n}`,
  lines: [
    { line_no: 1, account: '1200', debit_minor: BigInt(100 + n), credit_minor: 0n, currency: 'USD' },
    { line_no: 2, account: '4000', debit_minor: 0n, credit_minor: BigInt(100 + n), currency: 'USD' },
  ],
});

async function queue(connection: string, from: number, count: number): Promise<void> {
  await transaction(store.pool, async (client) => {
    for (let n = from; n < from + count; n += 1) await recordJournals(client, [journal(n)], null, [connection]);
  });
}

function worker(
  pool: pg.Pool,
  sim: XeroSimulator,
  settings: ConnectionSettings,
  tenantId: string,
  options: SharedCallerOptions,
): XeroTarget {
  return new XeroTarget({
    settings: { ...settings, base_url: sim.url },
    caller: sharedCaller(pool, settings, simAuthorizer(sim, tenantId), { minuteMs: WINDOW_MS, ...options }),
    mappings: staticMappings(settings.name, northwindMappings()),
    limits: { requestsPerMinute: Number.POSITIVE_INFINITY },
  });
}

before(async () => {
  store = await testStore();
});
after(async () => store.close());

describe('Retry-After', () => {
  it('reads delay-seconds and HTTP-dates, and nothing else', () => {
    const now = Date.parse('2026-12-04T10:00:00Z');
    assert.equal(retryAfterMs('120', now), 120_000);
    assert.equal(retryAfterMs(' 0 ', now), 0);
    assert.equal(retryAfterMs('Fri, 04 Dec 2026 10:01:30 GMT', now), 90_000);
    assert.equal(retryAfterMs('Fri, 04 Dec 2026 09:00:00 GMT', now), 0, 'a date already past: now');
    for (const bad of [null, undefined, '', '-5', '1.5', 'soon', '2026-12-04T10:01:30Z', '99999999999'])
      assert.equal(retryAfterMs(bad, now), undefined, String(bad));
  });
});

describe("Xero's limits shared by three workers", () => {
  it('posts 150 documents with no 429 and no dead letter; each row made exactly the calls its attempts say', async () => {
    const settings: ConnectionSettings = { name: 'xero-limits', kind: 'xero', legal_entities: ['nw-us'], tenant_id: 'org-limits' };
    assert.ok((await saveConnections(store.pool, [settings])).ok);
    const sim = new XeroSimulator({ perMinute: 60, concurrent: 5, minuteWindowMs: WINDOW_MS });
    sim.addTenant('org-limits', northwindTenant());
    await sim.start();
    const pools = [1, 2, 3].map(() => new pg.Pool({ connectionString: store.url, max: 8 }));
    try {
      await queue(settings.name, 0, Number(process.env.LIMITS_N ?? 150));
      const started = Date.now();
      const outcomes = await Promise.all(
        pools.map((pool) => drainOutbox(pool, worker(pool, sim, settings, 'org-limits', {}), { untilEmptyMs: 120_000, backoffBaseMs: 10 })),
      );
      const tenant = sim.tenant('org-limits');
      if (process.env.LIMITS_DEBUG) console.error('elapsed', Date.now() - started, JSON.stringify(outcomes), tenant.calls, sim.refused);
      assert.equal(sim.refused[429], 0, `the simulator never had to refuse a call for a limit: ${sim.limitedBy.join(', ')}`);
      assert.ok(sim.inFlightMax <= 5, `never more than 5 in flight: ${sim.inFlightMax}`);
      const dead = (await store.pool.query("SELECT last_error FROM outbox WHERE status = 'dead' LIMIT 2")).rows;
      assert.equal(
        outcomes.reduce((n, o) => n + o.dead, 0),
        0,
        `no dead letter: ${JSON.stringify(dead)}`,
      );
      assert.equal(tenant.journals.length, Number(process.env.LIMITS_N ?? 150), 'each document posted once');
      const rows = (
        await store.pool.query<{ status: string; attempts: number }>('SELECT status, attempts FROM outbox WHERE target = $1', [
          settings.name,
        ])
      ).rows;
      assert.equal(rows.length, Number(process.env.LIMITS_N ?? 150));
      assert.ok(rows.every((r) => r.status === 'posted'));
      // Attempts are calls: every call the simulator received was made for some row, and counted on it. A row made
      // two (looked up, then posted), the first of each worker a third (the organisation's base currency, then cached).
      assert.equal(
        rows.reduce((n, r) => n + r.attempts, 0),
        tenant.calls,
        "the rows' attempts add up to the calls Xero received",
      );
      assert.ok(
        rows.every((r) => r.attempts === 2 || r.attempts === 3),
        JSON.stringify([...new Set(rows.map((r) => r.attempts))]),
      );
      assert.ok(rows.filter((r) => r.attempts === 3).length <= 3);
      assert.ok(outcomes.filter((o) => o.posted > 0).length >= 2, 'the work was shared');
    } finally {
      await Promise.all(pools.map((p) => p.end()));
      await sim.stop();
    }
  });

  it('a daily limit parks the connection without spending attempts, and posting resumes after it', async () => {
    const settings: ConnectionSettings = { name: 'xero-daily', kind: 'xero', legal_entities: ['nw-de'], tenant_id: 'org-daily' };
    assert.ok((await saveConnections(store.pool, [settings])).ok);
    const sim = new XeroSimulator({ perMinute: 1_000, perDay: 9, concurrent: 5 });
    sim.addTenant('org-daily', northwindTenant());
    await sim.start();
    try {
      await queue(settings.name, 1000, 8);
      const target = worker(store.pool, sim, settings, 'org-daily', { perMinute: 1_000 });
      const first = await drainOutbox(store.pool, target, { untilEmptyMs: 60_000, backoffBaseMs: 10 });
      assert.equal(first.dead, 0, 'nothing dead-lettered');
      const parked = (
        await store.pool.query<{ parked_until: Date; parked_reason: string }>(
          'SELECT parked_until, parked_reason FROM erp_connections WHERE name = $1',
          [settings.name],
        )
      ).rows[0]!;
      assert.ok(parked.parked_until.getTime() > Date.now() + 60 * 60_000, `parked for hours: ${parked.parked_until.toISOString()}`);
      assert.match(parked.parked_reason, /daily limit/);
      const calls = sim.tenant('org-daily').calls;
      assert.ok(
        sim.refused[429] >= 1 && sim.refused[429] <= 5,
        `the calls in flight when the day ran out were refused, no more: ${sim.refused[429]}`,
      );
      const waiting = (
        await store.pool.query<{ n: number; attempts: number }>(
          "SELECT count(*)::int AS n, sum(attempts)::int AS attempts FROM outbox WHERE target = $1 AND status = 'pending'",
          [settings.name],
        )
      ).rows[0]!;
      assert.ok(waiting.n > 0, 'documents wait');
      const all = (
        await store.pool.query<{ attempts: number }>('SELECT sum(attempts)::int AS attempts FROM outbox WHERE target = $1', [settings.name])
      ).rows[0]!;
      assert.equal(all.attempts, calls + sim.refused[429], 'attempts are the calls made: those accepted and those refused');
      // Another drain while parked calls nothing.
      await drainOutbox(store.pool, target, { untilEmptyMs: 0 });
      assert.equal(sim.tenant('org-daily').calls, calls);
      // The next day: the connection is no longer parked and the rest posts.
      sim.options.perDay = 1_000;
      await store.pool.query("UPDATE erp_connections SET parked_until = now() - interval '1 second' WHERE name = $1", [settings.name]);
      // The rows still waiting (a posted row is final, migration 026).
      await store.pool.query("UPDATE outbox SET next_attempt_at = now() WHERE target = $1 AND status = 'pending'", [settings.name]);
      const second = await drainOutbox(store.pool, target, { untilEmptyMs: 60_000, backoffBaseMs: 10 });
      assert.equal(second.dead, 0);
      assert.equal((await store.pool.query("SELECT 1 FROM outbox WHERE target = $1 AND status <> 'posted'", [settings.name])).rowCount, 0);
      assert.equal(sim.tenant('org-daily').journals.length, 8);
    } finally {
      await sim.stop();
    }
  });
});
