import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { testStore } from '../support/db.js';
import { transaction, type Store } from '../../src/store/store.js';
import { appendAudit, readAudit, verifyAudit } from '../../src/audit/log.js';
import { GENESIS_HASH, auditHash, type AuditRecord } from '../../src/audit/chain.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { voidInvoice as voidUseCase } from '../../src/post/void.js';

const voidInvoice = async (pool: pg.Pool, invoice: string, actor: string) =>
  (await voidUseCase(pool, { invoice, reason: 'billed in error', actor, at: new Date().toISOString() })).invoice;
import { drainOutbox, listDeadLetters, replayDeadLetter } from '../../src/post/outbox.js';
import { TargetError, type ErpTarget } from '../../src/post/target.js';
import { applyPayment } from '../../src/settle/payments.js';
import { contentHash } from '../../src/domain/canonical.js';
import { buildServer } from '../../src/api/server.js';
import { testKey, OPERATOR_AUDITOR } from '../support/keys.js';

let store: Store;

before(async () => {
  store = await testStore();
});
after(async () => {
  await store.close();
});

// Tampering needs the triggers off, which only a superuser (the test server's user) may do.
async function tamper(sql: string, params: unknown[] = []): Promise<void> {
  await transaction(store.pool, async (client) => {
    await client.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
    await client.query(sql, params);
    await client.query('ALTER TABLE audit_log ENABLE TRIGGER USER');
  });
}

describe('audit log in the store', () => {
  it('appends a chain that verifies, with the hash recipe of chain.ts, and reads it back by filter', async () => {
    const first = await transaction(store.pool, (c) =>
      appendAudit(c, { actor: 'alice', action: 'test.first', subject: 'thing-1', details: { amount_minor: 12345n, list: [1, 'two'] } }),
    );
    const second = await transaction(store.pool, (c) =>
      appendAudit(c, { actor: 'system:test', action: 'test.second', subject: 'thing-2', reason: 'because' }),
    );
    assert.equal(first.seq, 1n);
    assert.equal(first.prev_hash, GENESIS_HASH);
    assert.equal(second.seq, 2n);
    assert.equal(second.prev_hash, first.hash);
    assert.equal(
      first.hash,
      auditHash(GENESIS_HASH, {
        seq: 1n,
        at: first.at,
        actor: 'alice',
        action: 'test.first',
        subject: 'thing-1',
        details: { amount_minor: '12345', list: [1, 'two'] },
      }),
    );
    const [read] = await readAudit(store.pool, { subject: 'thing-2' });
    assert.deepEqual(read, second);
    assert.equal((await readAudit(store.pool, { action: 'test.first' })).length, 1);
    assert.deepEqual(
      (await readAudit(store.pool, { after: 1n })).map((r) => r.seq),
      [2n],
    );
    const verdict = await verifyAudit(store.pool);
    assert.equal(verdict.ok, true);
    assert.deepEqual(verdict.ok && verdict.head, { seq: 2n, hash: second.hash });
  });

  it('leaves no record when the change it records rolls back', async () => {
    const before = (await readAudit(store.pool, { newestFirst: true, limit: 1 }))[0]!.seq;
    await assert.rejects(
      transaction(store.pool, async (c) => {
        await appendAudit(c, { actor: 'alice', action: 'test.rolled_back', subject: 'x' });
        throw new Error('the change failed');
      }),
      /the change failed/,
    );
    assert.equal((await readAudit(store.pool, { newestFirst: true, limit: 1 }))[0]!.seq, before);
    assert.equal((await readAudit(store.pool, { action: 'test.rolled_back' })).length, 0);
    assert.equal((await verifyAudit(store.pool)).ok, true);
  });

  it('refuses UPDATE, DELETE and TRUNCATE of audit_log, moving the head, and an insert that does not follow the head', async () => {
    await assert.rejects(store.pool.query(`UPDATE audit_log SET details = '{"x":1}' WHERE seq = 1`), /append-only/);
    await assert.rejects(store.pool.query('DELETE FROM audit_log WHERE seq = 1'), /append-only/);
    await assert.rejects(store.pool.query('DELETE FROM audit_log WHERE false'), /append-only/);
    await assert.rejects(store.pool.query('TRUNCATE audit_log'), /append-only/);
    await assert.rejects(store.pool.query('UPDATE audit_head SET seq = seq + 1'), /moves only by appending/);
    await assert.rejects(store.pool.query('DELETE FROM audit_head'), /append-only/);
    const head = (await store.pool.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_head')).rows[0]!;
    const insert = `INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) VALUES ($1, now(), 'mallory', 'forge', 'x', null, $2, $3)`;
    // A fork (a second successor of an earlier record) and a gap are both refused.
    await assert.rejects(store.pool.query(insert, ['2', GENESIS_HASH, 'a'.repeat(64)]), /does not follow the head/);
    await assert.rejects(store.pool.query(insert, [String(BigInt(head.seq) + 2n), head.hash, 'a'.repeat(64)]), /does not follow the head/);
    assert.equal((await verifyAudit(store.pool)).ok, true);
  });

  it('forms one unbroken chain from concurrent appenders on several connections', async () => {
    const before = (await verifyAudit(store.pool)) as { ok: true; count: number };
    const writers = 6;
    const each = 15;
    const pool = new pg.Pool({ connectionString: store.url, max: writers });
    try {
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let i = 0; i < each; i++) {
            await transaction(pool, async (c) => {
              // Some work before the append, so transactions overlap.
              await c.query('SELECT pg_sleep(0.001)');
              await appendAudit(c, { actor: `writer-${w}`, action: 'test.concurrent', subject: `w${w}-${i}` });
            });
          }
        }),
      );
    } finally {
      await pool.end();
    }
    const verdict = await verifyAudit(store.pool, { pageSize: 7 });
    assert.equal(
      verdict.ok,
      true,
      JSON.stringify(verdict, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
    );
    assert.equal(verdict.ok && verdict.count, before.count + writers * each);
    assert.equal((await readAudit(store.pool, { action: 'test.concurrent', limit: 1000 })).length, writers * each);
  });

  it('finds a row changed by a superuser with the triggers off, naming its seq', async () => {
    await tamper(`UPDATE audit_log SET details = '{"amount_minor":"99999","list":[1,"two"]}' WHERE seq = 1`);
    const verdict = await verifyAudit(store.pool, { pageSize: 3 });
    assert.equal(verdict.ok, false);
    assert.ok(!verdict.ok);
    assert.equal(verdict.broken_at_seq, 1n);
    assert.equal(verdict.reason, 'hash_mismatch');
    assert.match(verdict.message, /seq 1 was changed/);
    // Put it back (the original details), and the chain verifies again.
    await tamper(`UPDATE audit_log SET details = '{"amount_minor":"12345","list":[1,"two"]}' WHERE seq = 1`);
    assert.equal((await verifyAudit(store.pool)).ok, true);
  });

  it('finds a changed row deep in the chain across page boundaries, and a changed hash by the broken link after it', async () => {
    const original = (await store.pool.query<{ actor: string }>('SELECT actor FROM audit_log WHERE seq = 50')).rows[0]!.actor;
    await tamper(`UPDATE audit_log SET actor = 'mallory' WHERE seq = 50`);
    const changed = await verifyAudit(store.pool, { pageSize: 7 });
    assert.ok(!changed.ok);
    assert.equal(changed.broken_at_seq, 50n);
    assert.equal(changed.count, 49);
    await tamper(`UPDATE audit_log SET actor = $1 WHERE seq = 50`, [original]);
    assert.equal((await verifyAudit(store.pool)).ok, true);
    // A rewritten hash (contents and hash changed together) breaks the next record's link.
    await tamper(`UPDATE audit_log SET hash = $1 WHERE seq = 40`, ['f'.repeat(64)]);
    const relinked = await verifyAudit(store.pool);
    assert.ok(!relinked.ok);
    assert.equal(relinked.broken_at_seq, 40n);
  });
});

describe('audit log: deleted records', () => {
  let fresh: Store;
  before(async () => {
    fresh = await testStore();
    for (let i = 1; i <= 10; i++)
      await transaction(fresh.pool, (c) => appendAudit(c, { actor: 'alice', action: 'test.row', subject: `r${i}` }));
  });
  after(async () => {
    await fresh.close();
  });
  const remove = (seq: number) =>
    transaction(fresh.pool, async (client) => {
      await client.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
      await client.query('DELETE FROM audit_log WHERE seq = $1', [seq]);
      await client.query('ALTER TABLE audit_log ENABLE TRIGGER USER');
    });

  it('names a deleted middle record, and the missing end of the chain by its head', async () => {
    assert.equal((await verifyAudit(fresh.pool)).ok, true);
    await remove(10);
    const tail = await verifyAudit(fresh.pool);
    assert.ok(!tail.ok);
    assert.equal(tail.reason, 'missing_tail');
    assert.equal(tail.broken_at_seq, 10n);
    await remove(4);
    const middle = await verifyAudit(fresh.pool, { pageSize: 2 });
    assert.ok(!middle.ok);
    assert.equal(middle.reason, 'seq_gap');
    assert.equal(middle.broken_at_seq, 4n);
    assert.match(middle.message, /seq 4 missing: seq 5 follows seq 3/);
  });
});

describe('audited actions', () => {
  let flow: Store;
  // An ERP in memory (the port, swapped): it refuses the documents named in `refuse` once, permanently.
  const posted = new Map<string, string>();
  const refuse = new Set<string>();
  const erp: ErpTarget = {
    name: 'memory',
    limits: { concurrency: 2, requestsPerMinute: 60_000 },
    async find(key) {
      const reference = posted.get(key);
      return reference === undefined ? undefined : { reference };
    },
    async post(key, journal) {
      if (refuse.delete(journal.id))
        throw new TargetError('memory ERP: Invalid account reference key 4000', {
          status: 400,
          code: 'INVALID_FLD_VALUE',
          permanent: true,
        });
      const reference = `mem-${posted.size + 1}`;
      posted.set(key, reference);
      return { reference };
    },
  };
  let app: FastifyInstance;
  const records = (action: string) => readAudit(flow.pool, { action, limit: 1000 });
  const accrue = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/accrue.js', '--database-url', flow.url, ...args], { encoding: 'utf8' });
  /** As a principal: its key in ACCRUE_API_KEY, development mode off, and no second approver wanted for period close. */
  const accrueAs = (secret: string, ...args: string[]) =>
    spawnSync(process.execPath, ['bin/accrue.js', '--database-url', flow.url, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ACCRUE_API_KEY: secret, ACCRUE_DEV_MODE: '', ACCRUE_APPROVAL_REQUIRED: 'none' },
    });
  const ev = (id: string, subject: string) => ({
    specversion: '1.0',
    id,
    source: '//audit-test',
    type: 'com.northwind.storage.usage',
    subject,
    time: '2026-10-10T00:00:00Z',
    data: { gb_hours: '100' },
  });

  before(async () => {
    flow = await testStore();
    app = await buildServer({ pool: flow.pool });
  });
  after(async () => {
    await app.close();
    await flow.close();
  });

  it('records a catalog apply (not a no-op re-apply), the billing run and each finalization', async () => {
    const catalogText = readFileSync('examples/northwind/catalog.yaml', 'utf8');
    const applied = await applyCatalog(flow.pool, catalogText, { by: 'alice', source: 'catalog.yaml' });
    assert.ok(applied.ok);
    assert.ok((await applyCatalog(flow.pool, catalogText, { by: 'alice' })).ok);
    const [apply, ...more] = await records('catalog.apply');
    assert.equal(more.length, 0, 'the same content again changes nothing and records nothing');
    assert.equal(apply!.actor, 'alice');
    assert.equal(apply!.subject, 'catalog:v1');
    assert.deepEqual(apply!.details, { version: 1, hash: applied.value.hash, previous_hash: null, source: 'catalog.yaml' });

    const catalog = (await currentCatalog(flow.pool))!;
    await ingestBatch(flow.pool, catalog, [ev('a1', 'acme-prod'), ev('a2', 'umbrella')], {
      channel: 'file',
      now: new Date('2026-12-01T00:00:00Z'),
    });
    const outcome = await closePeriod(flow.pool, catalog, { period: '2026-10', erpTargets: ['memory'], by: 'bob' });
    assert.ok(outcome.invoices.length >= 2);
    const finalized = await records('invoice.finalize');
    assert.deepEqual(finalized.map((r) => r.subject).sort(), outcome.invoices.map((i) => i.id).sort());
    for (const r of finalized) {
      const invoice = outcome.invoices.find((i) => i.id === r.subject)!;
      assert.equal(r.actor, 'system:billing-run');
      assert.deepEqual(r.details, {
        number: invoice.number,
        kind: 'invoice',
        legal_entity: invoice.legal_entity,
        customer: invoice.customer,
        currency: invoice.currency,
        period_start: invoice.period_start,
        total_minor: invoice.total_minor.toString(),
        corrects: null,
      });
    }
    const [run] = await records('billing_run.close');
    assert.equal(run!.actor, 'bob');
    assert.match(run!.subject, /^billing-run:v1:2026-10:nw-us\+nw-de:\d+$/);
    const details = run!.details as Record<string, unknown>;
    assert.equal(details.invoices, outcome.invoices.length);
    assert.equal(details.invoice_ids_sha256, contentHash(outcome.invoices.map((i) => i.id).sort()));
    assert.equal(details.catalog_version, 1);
    // A re-run returns the same invoices: it is recorded as a run, but finalizes (and records) nothing again.
    await closePeriod(flow.pool, catalog, { period: '2026-10', erpTargets: ['memory'] });
    assert.equal((await records('invoice.finalize')).length, finalized.length);
    const runs = await records('billing_run.close');
    assert.equal(runs.length, 2);
    assert.equal(runs[1]!.actor, 'system:billing-run');
    assert.equal((runs[1]!.details as Record<string, unknown>).invoice_ids_sha256, details.invoice_ids_sha256);
  });

  it('records each posting with the ERP reference, a dead letter with its error, and a replay with who replayed it', async () => {
    const first = (
      await flow.pool.query<{ document_id: string }>("SELECT document_id FROM outbox WHERE target = 'memory' ORDER BY id LIMIT 1")
    ).rows[0]!;
    refuse.add(first.document_id);
    await drainOutbox(flow.pool, erp, { untilEmptyMs: 5_000, backoffBaseMs: 10 });
    const dead = await listDeadLetters(flow.pool, 'memory');
    assert.equal(dead.length, 1);
    const [deadRecord, ...noMore] = await records('outbox.dead_letter');
    assert.equal(noMore.length, 0);
    assert.equal(deadRecord!.actor, 'system:outbox');
    assert.equal(deadRecord!.subject, dead[0].document_id);
    assert.match(String((deadRecord!.details as Record<string, unknown>).error), /Invalid account reference key/);
    const postings = await records('outbox.posted');
    const rows = (
      await flow.pool.query<{ document_id: string; target_reference: string }>(
        "SELECT document_id, target_reference FROM outbox WHERE status = 'posted'",
      )
    ).rows;
    assert.ok(rows.length >= 2);
    assert.equal(postings.length, rows.length);
    for (const row of rows)
      assert.equal(
        (postings.find((r) => r.subject === row.document_id)!.details as Record<string, unknown>).reference,
        row.target_reference,
      );

    assert.ok(await replayDeadLetter(flow.pool, dead[0].id, 'carol'));
    assert.equal(await replayDeadLetter(flow.pool, dead[0].id, 'carol'), false);
    const replays = await records('outbox.replay');
    assert.equal(replays.length, 1, 'a replay of an entry that is no longer dead records nothing');
    assert.equal(replays[0]!.actor, 'carol');
    assert.equal(replays[0]!.subject, dead[0].document_id);
    await drainOutbox(flow.pool, erp, { untilEmptyMs: 5_000, backoffBaseMs: 10 });
    assert.ok((await readAudit(flow.pool, { action: 'outbox.posted', subject: dead[0].document_id })).length === 1);
  });

  it('records a void and an applied payment, and nothing for a refused void', async () => {
    const invoices = (
      await flow.pool.query<{ id: string; number: string; currency: string; total_minor: string }>(
        "SELECT id, number, currency, total_minor FROM invoices WHERE status = 'finalized' ORDER BY number",
      )
    ).rows;
    const [toVoid, toPay] = invoices;
    await voidInvoice(flow.pool, toVoid!.number, 'dave');
    await voidInvoice(flow.pool, toVoid!.number, 'dave');
    const voids = await records('invoice.void');
    assert.equal(voids.length, 1, 'voiding a void invoice again changes nothing and records nothing');
    assert.equal(voids[0]!.actor, 'dave');
    assert.equal(voids[0]!.subject, toVoid!.id);

    const catalog = (await currentCatalog(flow.pool))!;
    const outcome = await applyPayment(
      flow.pool,
      catalog,
      {
        id: 'pay-audit-1',
        invoice: toPay!.number,
        amount: '1.00',
        currency: toPay!.currency,
        received_on: '2026-11-05',
        amount_minor: 100n,
      },
      'erp',
    );
    assert.equal(outcome.status, 'applied');
    const [payment] = await readAudit(flow.pool, { action: 'payment.apply', subject: 'pay-audit-1' });
    assert.equal(payment!.actor, 'system:payments-erp');
    assert.deepEqual(payment!.details, {
      invoice: toPay!.number,
      invoice_id: toPay!.id,
      currency: toPay!.currency,
      amount_minor: '100',
      amount_paid_minor: '100',
      payment_status: BigInt(toPay!.total_minor) === 100n ? 'paid' : 'partially_paid',
      received_on: '2026-11-05',
    });
  });

  it('records a period close from the CLI; `accrue audit list` and `accrue audit verify` read the log', async () => {
    const erin = await testKey(flow.pool, { name: 'erin', roles: ['operator'], kind: 'person' });
    const close = accrueAs(erin.secret, 'period', 'close', 'nw-us', '2026-10');
    assert.equal(close.status, 0, close.stderr);
    const listed = JSON.parse(
      execFileSync(
        process.execPath,
        ['bin/accrue.js', '--database-url', flow.url, '--json', 'audit', 'list', '--action', 'accounting_period.close'],
        { encoding: 'utf8' },
      ),
    ) as Array<AuditRecord & { seq: string }>;
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.actor, `principal:${erin.principal.id}/key:${erin.key.id}`);
    assert.equal(listed[0]!.subject, 'nw-us:2026-10');
    const bySeq = accrue('--json', 'audit', 'list', '--after', String(Number(listed[0]!.seq) - 1), '--limit', '1');
    assert.equal(bySeq.status, 0, bySeq.stderr);
    assert.deepEqual(JSON.parse(bySeq.stdout), listed);
    const intact = accrue('--json', 'audit', 'verify');
    assert.equal(intact.status, 0, intact.stderr);
    assert.equal(JSON.parse(intact.stdout).ok, true);
  });

  it('serves GET /v1/audit in pages and GET /v1/audit/verify to an auditor, not to an operator', async () => {
    const admin = (await testKey(flow.pool, { name: 'admin', roles: OPERATOR_AUDITOR })).secret;
    const read = (await testKey(flow.pool, { name: 'read', roles: ['auditor'] })).secret;
    const get = (url: string, key: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
    const all = await readAudit(flow.pool, { action: 'invoice.finalize', limit: 1000 });
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const res = await get(`/v1/audit?action=invoice.finalize&limit=1${after ? `&after=${after}` : ''}`, read);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as { records: Array<{ seq: string; subject: string; hash: string }>; next_after: string | null };
      seen.push(...body.records.map((r) => r.subject));
      after = body.next_after;
    } while (after !== null);
    assert.deepEqual(
      seen,
      all.map((r) => r.subject),
    );
    assert.equal((await get('/v1/audit?limit=5000', read)).statusCode, 400);
    assert.equal((await get('/v1/audit?after=x', read)).statusCode, 400);
    const operator = (await testKey(flow.pool, { name: 'operator', roles: ['operator'] })).secret;
    assert.equal((await get('/v1/audit/verify', operator)).statusCode, 403, 'an operator may not read the audit log');
    assert.equal((await get('/v1/audit?limit=1', operator)).statusCode, 403);
    const verified = await get('/v1/audit/verify', admin);
    assert.equal(verified.statusCode, 200);
    assert.equal(verified.json().ok, true);
    assert.equal(verified.json().count, Number((await readAudit(flow.pool, { newestFirst: true, limit: 1 }))[0]!.seq));
  });

  it('names a tampered record from the CLI (exit 1) and the API', async () => {
    const target = (await records('billing_run.close'))[0]!;
    await transaction(flow.pool, async (client) => {
      await client.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
      await client.query(`UPDATE audit_log SET details = jsonb_set(details, '{invoices}', '0') WHERE seq = $1`, [String(target.seq)]);
      await client.query('ALTER TABLE audit_log ENABLE TRIGGER USER');
    });
    const broken = accrue('audit', 'verify');
    assert.equal(broken.status, 1);
    assert.match(broken.stdout, new RegExp(`BROKEN at seq ${target.seq} \\(hash_mismatch\\)`));
    const admin = (await testKey(flow.pool, { name: 'admin2', roles: OPERATOR_AUDITOR })).secret;
    const res = await app.inject({ method: 'GET', url: '/v1/audit/verify', headers: { authorization: `Bearer ${admin}` } });
    assert.deepEqual({ ok: res.json().ok, broken_at_seq: res.json().broken_at_seq }, { ok: false, broken_at_seq: String(target.seq) });
  });
});
