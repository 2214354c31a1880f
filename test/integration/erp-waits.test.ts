// What the outbox does when an ERP connection cannot take a document now: a connection that needs reauthorization
// keeps its documents waiting (not claimed, never dead-lettered) until it is active again; a document dated in a
// period the ERP has closed is re-sent dated the first open day (audited), or waits on a finance exception.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { transaction } from '../../src/store/store.js';
import { PeriodLocked, ReauthorizationRequired, type ConnectionSettings } from '../../src/domain/erp.js';
import { saveConnections, setConnectionStatus } from '../../src/connectors/connections.js';
import { recordJournals } from '../../src/post/journals.js';
import { drainOutbox } from '../../src/post/outbox.js';
import type { ErpTarget, PostedReference } from '../../src/post/target.js';
import type { Journal } from '../../src/domain/model.js';
import { readAudit } from '../../src/audit/log.js';

let store: Store;

const journal = (n: number, date = '2026-10-31'): Journal => ({
  id: `jrn:v1:credit_drawdown:waits-${n}`,
  key: `waits-${n}`,
  legal_entity: 'nw-us',
  posting_date: date,
  source_document: `waits-${n}`,
  kind: 'credit_drawdown',
  memo: `Waits test ${n}`,
  lines: [
    { line_no: 1, account: '1200', debit_minor: 100n, credit_minor: 0n, currency: 'USD' },
    { line_no: 2, account: '4000', debit_minor: 0n, credit_minor: 100n, currency: 'USD' },
  ],
});

/** A target that records what it holds, and refuses as the scenario says. */
class ScriptedTarget implements ErpTarget {
  readonly limits = { concurrency: 2, requestsPerMinute: 60_000 };
  readonly held = new Map<string, string>(); // key -> posting date sent
  calls = 0;
  refuse: ((journal: Journal) => Error | undefined) | undefined;
  constructor(readonly name: string) {}
  async find(key: string): Promise<PostedReference | undefined> {
    this.calls += 1;
    return this.held.has(key) ? { reference: `ref-${key}` } : undefined;
  }
  async post(key: string, journal: Journal): Promise<PostedReference> {
    this.calls += 1;
    const refusal = this.refuse?.(journal);
    if (refusal) throw refusal;
    this.held.set(key, journal.posting_date);
    return { reference: `ref-${key}` };
  }
}

async function queue(connection: string, journals: Journal[]): Promise<void> {
  await transaction(store.pool, async (client) => {
    for (const j of journals) await recordJournals(client, [j], null, [connection]);
  });
}

const rows = async (target: string) =>
  (
    await store.pool.query<{ status: string; attempts: number; failures: number; code: string | null; post_on: string | null }>(
      "SELECT status, attempts, failures, last_error->>'code' AS code, to_char(post_on, 'YYYY-MM-DD') AS post_on FROM outbox WHERE target = $1 ORDER BY id",
      [target],
    )
  ).rows;

before(async () => {
  store = await testStore();
});
after(async () => store.close());

describe('a connection that needs reauthorization', () => {
  it('keeps its documents waiting, unclaimed and never dead-lettered, and posts them once it is active again', async () => {
    const settings: ConnectionSettings = { name: 'reauth', kind: 'xero', legal_entities: ['nw-us'] };
    assert.ok((await saveConnections(store.pool, [settings])).ok);
    await queue('reauth', [journal(1), journal(2), journal(3)]);
    const target = new ScriptedTarget('reauth');
    // The refresh token was refused: the authorizer marks the connection and throws.
    target.refuse = () => new ReauthorizationRequired('reauth', 'invalid_grant');
    target.find = async () => {
      target.calls += 1;
      await transaction(store.pool, (c) => setConnectionStatus(c, 'reauth', 'needs_reauthorization', 'invalid_grant', 'system:test'));
      throw new ReauthorizationRequired('reauth', 'invalid_grant');
    };
    const first = await drainOutbox(store.pool, target, { untilEmptyMs: 5_000, backoffBaseMs: 10 });
    assert.equal(first.dead, 0);
    const waiting = await rows('reauth');
    assert.ok(
      waiting.every((r) => r.status === 'pending' && r.failures === 0),
      JSON.stringify(waiting),
    );
    assert.ok(waiting.some((r) => r.code === 'needs_reauthorization'));
    const callsWhileRefused = target.calls;
    assert.ok(callsWhileRefused <= 3, `only the rows already claimed when it was refused are tried: ${callsWhileRefused}`);
    // While it needs reauthorization nothing is claimed, whatever the retry time says.
    await store.pool.query("UPDATE outbox SET next_attempt_at = now() WHERE target = 'reauth'");
    await drainOutbox(store.pool, target, { untilEmptyMs: 0 });
    assert.equal(target.calls, callsWhileRefused, 'no call to a connection that needs reauthorization');
    // accrue connect: the connection is active again, and posting resumes by itself.
    delete (target as { find?: unknown }).find;
    target.refuse = undefined;
    await transaction(store.pool, (c) => setConnectionStatus(c, 'reauth', 'active', null, 'system:test'));
    const second = await drainOutbox(store.pool, target, { untilEmptyMs: 5_000, backoffBaseMs: 10 });
    assert.equal(second.dead, 0);
    assert.ok((await rows('reauth')).every((r) => r.status === 'posted'));
    assert.equal(target.held.size, 3);
    const attempts = (await rows('reauth')).reduce((n, r) => n + r.attempts, 0);
    assert.equal(attempts, 0, 'a scripted target makes no counted HTTP call; attempts count only calls through an ErpCaller');
  });
});

describe('a document dated in a period the ERP has closed', () => {
  it('first_open_day: re-sent dated the first open day, the stored journal unchanged, the move audited', async () => {
    const settings: ConnectionSettings = {
      name: 'locked-move',
      kind: 'netsuite',
      account_id: '1234567',
      legal_entities: ['nw-us'],
      closed_period: 'first_open_day',
    };
    assert.ok((await saveConnections(store.pool, [settings])).ok);
    await queue('locked-move', [journal(10)]);
    const target = new ScriptedTarget('locked-move');
    target.refuse = (j) =>
      j.posting_date < '2026-12-01'
        ? new PeriodLocked('locked-move', j.posting_date, '2026-12-01', 'The accounting period is closed')
        : undefined;
    const outcome = await drainOutbox(store.pool, target, { untilEmptyMs: 5_000, backoffBaseMs: 10 });
    assert.equal(outcome.dead, 0);
    const [row] = await rows('locked-move');
    assert.deepEqual([row!.status, row!.post_on], ['posted', '2026-12-01']);
    assert.equal(target.held.get('out:v1:locked-move:jrn:v1:credit_drawdown:waits-10'), '2026-12-01', 'sent dated the first open day');
    const stored = (
      await store.pool.query<{ posting_date: string }>(
        "SELECT to_char(posting_date, 'YYYY-MM-DD') AS posting_date FROM journals WHERE id = 'jrn:v1:credit_drawdown:waits-10'",
      )
    ).rows[0]!;
    assert.equal(stored.posting_date, '2026-10-31', 'the stored journal keeps its date');
    const audit = await readAudit(store.pool, { action: 'outbox.redated' });
    assert.equal(audit.length, 1);
    assert.deepEqual(
      [(audit[0]!.details as { date: string }).date, (audit[0]!.details as { post_on: string }).post_on],
      ['2026-10-31', '2026-12-01'],
    );
  });

  it('exception: the document waits on a finance-operations exception instead', async () => {
    const settings: ConnectionSettings = {
      name: 'locked-hold',
      kind: 'netsuite',
      account_id: '1234567',
      legal_entities: ['nw-de'],
      closed_period: 'exception',
    };
    assert.ok((await saveConnections(store.pool, [settings])).ok);
    await queue('locked-hold', [journal(20)]);
    const target = new ScriptedTarget('locked-hold');
    target.refuse = (j) => new PeriodLocked('locked-hold', j.posting_date, '2026-12-01', 'The accounting period is closed');
    const outcome = await drainOutbox(store.pool, target, { untilEmptyMs: 5_000, backoffBaseMs: 10 });
    assert.equal(outcome.dead, 0);
    const [row] = await rows('locked-hold');
    assert.deepEqual([row!.status, row!.code, row!.failures], ['pending', 'period_locked', 0]);
    const exception = (
      await store.pool.query<{ owner_queue: string; status: string; connector: string }>(
        "SELECT owner_queue, status, connector FROM exceptions WHERE kind = 'erp_period_locked'",
      )
    ).rows;
    assert.deepEqual(exception, [{ owner_queue: 'finance_operations', status: 'open', connector: 'locked-hold' }]);
  });
});
