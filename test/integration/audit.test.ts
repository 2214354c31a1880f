import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { testStore } from '../support/db.js';
import { transaction, type Store } from '../../src/store/store.js';
import { appendAudit, readAudit, verifyAudit } from '../../src/audit/log.js';
import { GENESIS_HASH, auditHash } from '../../src/audit/chain.js';

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
    const first = await transaction(store.pool, (c) => appendAudit(c, { actor: 'alice', action: 'test.first', subject: 'thing-1', details: { amount_minor: 12345n, list: [1, 'two'] } }));
    const second = await transaction(store.pool, (c) => appendAudit(c, { actor: 'system:test', action: 'test.second', subject: 'thing-2', reason: 'because' }));
    assert.equal(first.seq, 1n);
    assert.equal(first.prev_hash, GENESIS_HASH);
    assert.equal(second.seq, 2n);
    assert.equal(second.prev_hash, first.hash);
    assert.equal(first.hash, auditHash(GENESIS_HASH, { seq: 1n, at: first.at, actor: 'alice', action: 'test.first', subject: 'thing-1', details: { amount_minor: '12345', list: [1, 'two'] } }));
    const [read] = await readAudit(store.pool, { subject: 'thing-2' });
    assert.deepEqual(read, second);
    assert.equal((await readAudit(store.pool, { action: 'test.first' })).length, 1);
    assert.deepEqual((await readAudit(store.pool, { after: 1n })).map((r) => r.seq), [2n]);
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
    assert.equal(verdict.ok, true, JSON.stringify(verdict, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
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
    for (let i = 1; i <= 10; i++) await transaction(fresh.pool, (c) => appendAudit(c, { actor: 'alice', action: 'test.row', subject: `r${i}` }));
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
