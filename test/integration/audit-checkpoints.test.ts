// Signed checkpoints anchor the audit chain outside the database: removing the end of the chain with its head, changing
// a record before a checkpoint (even rehashing everything after it), or forging a checkpoint each fail verification.
// Tampering is done as a superuser would: `SET session_replication_role = replica` switches the append-only triggers off.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { testStore } from '../support/db.js';
import { transaction, type Store } from '../../src/store/store.js';
import { appendAudit, readAudit, verifyAudit } from '../../src/audit/log.js';
import { GENESIS_HASH, auditHash } from '../../src/audit/chain.js';
import { checkpointLine, generateSigningKeys, keyId, signCheckpoint, verifyCheckpoint } from '../../src/audit/checkpoint.js';
import {
  readCheckpointLog,
  startCheckpointer,
  verifyAgainstCheckpoints,
  writeCheckpoint,
  type CheckpointSink,
} from '../../src/audit/checkpoints.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { closeAccountingPeriod } from '../../src/reconcile/period-close.js';
import { natsChannel, publishDue } from '../../src/stream/notifications.js';
import { checkpointSink, loadConfig } from '../../src/cli/config.js';
import { ProblemError } from '../../src/domain/result.js';
import { connect } from 'nats';

const dir = mkdtempSync(join(tmpdir(), 'accrue-checkpoints-'));
const keys = generateSigningKeys();
const privateKey = createPrivateKey(keys.privatePem);
const publicKey = createPublicKey(keys.publicPem);
const publicFile = join(dir, 'signing.pub.pem');
writeFileSync(publicFile, keys.publicPem);
let files = 0;
const sinkFor = (): CheckpointSink => ({ privateKey, file: join(dir, `log-${++files}`, 'audit-checkpoints.jsonl') });

after(() => rmSync(dir, { recursive: true, force: true }));

async function append(store: Store, n: number, prefix = 'r'): Promise<void> {
  for (let i = 1; i <= n; i++)
    await transaction(store.pool, (c) => appendAudit(c, { actor: 'alice', action: 'test.row', subject: `${prefix}${i}` }));
}

/** As a superuser: the triggers off for one transaction. */
async function asSuperuser(store: Store, work: (query: (sql: string, params?: unknown[]) => Promise<unknown>) => Promise<void>) {
  await transaction(store.pool, async (client) => {
    await client.query('SET LOCAL session_replication_role = replica');
    await work((sql, params) => client.query(sql, params));
  });
}

/** Deletes the records after `keep` and rewinds audit_head to the last one kept: invisible to the chain alone. */
async function cutTail(store: Store, keep: bigint): Promise<void> {
  const kept = (await readAudit(store.pool, { after: keep - 1n, limit: 1 }))[0]!;
  await asSuperuser(store, async (query) => {
    await query('DELETE FROM audit_log WHERE seq > $1', [keep.toString()]);
    await query('UPDATE audit_head SET seq = $1, hash = $2 WHERE id', [keep.toString(), kept.hash]);
  });
}

const verify = (store: Store, sink: CheckpointSink, keysGiven: KeyObject[] = [publicKey]) =>
  verifyAgainstCheckpoints(store.pool, readCheckpointLog(sink.file), keysGiven);

describe('audit checkpoints: writing', () => {
  let store: Store;
  before(async () => {
    store = await testStore();
  });
  after(() => store.close());

  it('signs the head, appends one line to the log and enqueues one audit.checkpoint notification', async () => {
    const sink = sinkFor();
    await append(store, 5);
    const first = await writeCheckpoint(store.pool, sink, { now: () => new Date('2026-12-01T00:00:00Z') });
    assert.equal(first.status, 'signed');
    assert.ok(first.status === 'signed');
    assert.deepEqual([first.checkpoint.seq, first.checkpoint.at, first.checkpoint.key_id], ['5', '2026-12-01T00:00:00.000Z', keys.keyId]);
    const head = (await store.pool.query('SELECT seq::text AS seq, hash FROM audit_head')).rows[0];
    assert.deepEqual({ seq: first.checkpoint.seq, hash: first.checkpoint.hash }, head);
    assert.equal(readFileSync(sink.file, 'utf8'), checkpointLine(first.checkpoint));
    const notifications = (await store.pool.query("SELECT id, subject, data FROM notifications WHERE type = 'audit.checkpoint'")).rows;
    assert.deepEqual(notifications, [{ id: first.notification_id, subject: 'audit:5', data: first.checkpoint }]);
    assert.equal(first.notification_id, `ntf:v1:audit.checkpoint:5:${head.hash.slice(0, 16)}:${keys.keyId.slice(0, 16)}`);

    const unchanged = await writeCheckpoint(store.pool, sink, { onlyWhenMoved: true });
    assert.equal(unchanged.status, 'unchanged', 'the head did not move: nothing written');
    assert.equal(readCheckpointLog(sink.file).length, 1);
    await append(store, 2, 's');
    const second = await writeCheckpoint(store.pool, sink, { onlyWhenMoved: true });
    assert.ok(second.status === 'signed' && second.checkpoint.seq === '7');
    assert.equal(readCheckpointLog(sink.file).length, 2);
    const verdict = await verify(store, sink);
    assert.deepEqual([verdict.ok, verdict.checkpoints, verdict.newest?.seq, verdict.failures], [true, 2, '7', []]);
  });

  it('refuses a notification of type audit.checkpoint that is not a well-formed checkpoint under its id (migration 027)', async () => {
    const good = signCheckpoint({ seq: 3n, hash: 'ab'.repeat(32) }, '2026-12-01T00:00:00.000Z', privateKey);
    const id = `ntf:v1:audit.checkpoint:3:abababababababab:${good.key_id.slice(0, 16)}`;
    const insert = (nid: string, type: string, subject: string, data: unknown) =>
      store.pool.query('INSERT INTO notifications (id, type, subject, data) VALUES ($1, $2, $3, $4::jsonb)', [
        nid,
        type,
        subject,
        JSON.stringify(data),
      ]);
    await assert.rejects(insert(`${id}x`, 'audit.checkpoint', 'audit:3', good), /notifications_audit_checkpoint_shape/);
    await assert.rejects(insert(id, 'audit.checkpoint', 'audit:4', good), /notifications_audit_checkpoint_shape/);
    await assert.rejects(insert(id, 'audit.checkpoint', 'audit:3', { ...good, signature: 'x' }), /notifications_audit_checkpoint_shape/);
    await assert.rejects(insert('ntf:v1:audit.bogus:1', 'audit.bogus', 'audit:3', good), /notifications_type_check/);
    await insert(id, 'audit.checkpoint', 'audit:3', good);
  });

  it('signs nothing over a chain that no longer holds its newest checkpoint, or that is broken', async () => {
    const fresh = await testStore();
    try {
      const sink = sinkFor();
      await append(fresh, 6);
      assert.equal((await writeCheckpoint(fresh.pool, sink)).status, 'signed');
      await cutTail(fresh, 4n);
      const refused = await writeCheckpoint(fresh.pool, sink);
      assert.ok(refused.status === 'failed');
      assert.match(refused.message, /checkpoint seq 6 .*: seq 5\.\.6 missing: the chain's head is seq 4/);
      assert.equal(readCheckpointLog(sink.file).length, 1, 'nothing appended');

      const other = sinkFor(); // no checkpoint yet: the whole chain is verified before the first is signed
      await asSuperuser(fresh, (query) => query("UPDATE audit_log SET subject = 'changed' WHERE seq = 2").then(() => undefined));
      const broken = await writeCheckpoint(fresh.pool, other);
      assert.ok(broken.status === 'failed');
      assert.match(broken.message, /broken at seq 2/);
    } finally {
      await fresh.close();
    }
  });

  it('reaches JetStream: the publisher sends the checkpoint to <prefix>.audit.checkpoint, signature intact', async () => {
    const run = randomBytes(4).toString('hex');
    const prefix = `accrue-test-${run}-ckpt`;
    const stream = `ACCRUE_TEST_CKPT_${run}`;
    await store.pool.query('UPDATE notifications SET fanned_out_at = now() WHERE fanned_out_at IS NULL'); // earlier tests' rows
    await append(store, 1, 'js');
    const written = await writeCheckpoint(store.pool, sinkFor());
    assert.ok(written.status === 'signed');
    const nc = await connect({ servers: 'nats://127.0.0.1:4222', timeout: 3000 });
    const channel = await natsChannel({ servers: 'nats://127.0.0.1:4222', stream, subjectPrefix: prefix });
    try {
      const outcome = await publishDue(store.pool, [channel]);
      assert.equal(outcome.delivered, 1);
      const consumer = await nc.jetstream().consumers.get(stream, { filterSubjects: `${prefix}.audit.checkpoint` });
      const messages = await consumer.fetch({ max_messages: 10, expires: 1000 });
      const received: Array<{ id: string; type: string; data: unknown }> = [];
      for await (const m of messages) received.push(JSON.parse(new TextDecoder().decode(m.data)));
      assert.deepEqual(
        received.map((r) => [r.id, r.type]),
        [[written.notification_id, 'accrue.audit.checkpoint']],
      );
      assert.deepEqual(verifyCheckpoint(received[0]!.data, [publicKey]), { ok: true, value: written.checkpoint });
    } finally {
      await channel.close();
      await (await nc.jetstreamManager()).streams.delete(stream).catch(() => false);
      await nc.close();
    }
  });

  it('checkpoints from the serve worker: at start, then each interval only when the head moved', async () => {
    const sink = sinkFor();
    const lines: Array<Record<string, unknown>> = [];
    const checkpointer = startCheckpointer(store.pool, sink, { intervalMs: 40, log: (l) => lines.push(l) });
    try {
      await waitFor(() => readCheckpointLog(sink.file).length === 1);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(readCheckpointLog(sink.file).length, 1, 'the head did not move: no new checkpoint');
      await append(store, 1, 'w');
      await waitFor(() => readCheckpointLog(sink.file).length === 2);
    } finally {
      await checkpointer.stop();
    }
    assert.ok(lines.every((l) => l.level === 'info'));
    assert.equal((await verify(store, sink)).ok, true);
  });
});

describe('audit checkpoints: verifying against tampering', () => {
  let store: Store;
  let sink: CheckpointSink;
  before(async () => {
    store = await testStore();
    sink = sinkFor();
    await append(store, 10);
    assert.equal((await writeCheckpoint(store.pool, sink)).status, 'signed'); // seq 10
    await append(store, 2, 'later');
  });
  after(() => store.close());

  it('fails naming the checkpoint and the missing records when the end of the chain is removed and audit_head rewound', async () => {
    assert.equal((await verify(store, sink)).ok, true);
    await cutTail(store, 7n);
    assert.equal((await verifyAudit(store.pool)).ok, true, 'the chain alone still says intact: the gap this closes');
    const verdict = await verify(store, sink);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.chain.ok, true);
    assert.deepEqual(
      verdict.failures.map((f) => [f.line, f.seq, f.code]),
      [[1, '10', 'missing']],
    );
    assert.match(verdict.failures[0]!.message, /^line 1: checkpoint seq 10 .*: seq 8\.\.10 missing: the chain's head is seq 7/);

    // New records appended after the cut reach past the checkpoint, but not with the records it signed.
    await append(store, 5, 'again');
    const replaced = await verify(store, sink);
    assert.deepEqual(
      replaced.failures.map((f) => [f.seq, f.code]),
      [['10', 'changed']],
    );
    assert.match(replaced.failures[0]!.message, /the record at seq 10 has hash [0-9a-f]{64}: it, or a record before it, was changed/);
  });
});

describe('audit checkpoints: a head rewound over records left in place', () => {
  it('fails: the head must be at or beyond every checkpoint', async () => {
    const store = await testStore();
    try {
      const sink = sinkFor();
      await append(store, 5);
      assert.equal((await writeCheckpoint(store.pool, sink)).status, 'signed');
      const third = (await readAudit(store.pool, { after: 2n, limit: 1 }))[0]!;
      await asSuperuser(store, (query) => query('UPDATE audit_head SET seq = 3, hash = $1 WHERE id', [third.hash]).then(() => undefined));
      assert.equal((await verifyAudit(store.pool)).ok, true, 'the chain up to the head verifies');
      const verdict = await verify(store, sink);
      assert.deepEqual(
        verdict.failures.map((f) => [f.seq, f.code]),
        [['5', 'missing']],
      );
      assert.match(verdict.failures[0]!.message, /seq 4\.\.5 missing: the chain's head is seq 3/);
    } finally {
      await store.close();
    }
  });
});

describe('audit checkpoints: a changed record and forged checkpoints', () => {
  let store: Store;
  let sink: CheckpointSink;
  before(async () => {
    store = await testStore();
    sink = sinkFor();
    await append(store, 8);
    assert.equal((await writeCheckpoint(store.pool, sink)).status, 'signed'); // seq 8
  });
  after(() => store.close());

  it('fails when a record before a checkpoint is changed, and still when every hash after it is recomputed', async () => {
    await asSuperuser(store, (query) => query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3").then(() => undefined));
    const changed = await verify(store, sink);
    assert.equal(changed.ok, false);
    assert.deepEqual(
      changed.failures.map((f) => [f.code, f.seq]),
      [['chain_broken', '3']],
    );
    // Rehash the chain from seq 3 on and move the head: the chain verifies again, the checkpoint does not.
    const records = await readAudit(store.pool, { limit: 1000 });
    await asSuperuser(store, async (query) => {
      let prev = GENESIS_HASH;
      for (const record of records) {
        const hash = auditHash(prev, record);
        await query('UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE seq = $1', [String(record.seq), prev, hash]);
        prev = hash;
      }
      await query('UPDATE audit_head SET hash = $1 WHERE id', [prev]);
    });
    assert.equal((await verifyAudit(store.pool)).ok, true, 'rehashed: the chain alone says intact');
    const rehashed = await verify(store, sink);
    assert.deepEqual(
      rehashed.failures.map((f) => [f.line, f.code, f.seq]),
      [[1, 'changed', '8']],
    );
  });

  it('fails on a checkpoint signed by another key, a changed one, a line that is not JSON, and an empty log', async () => {
    const fresh = await testStore();
    try {
      const own = sinkFor();
      await append(fresh, 3);
      assert.equal((await writeCheckpoint(fresh.pool, own)).status, 'signed');
      const head = (await fresh.pool.query('SELECT seq, hash FROM audit_head')).rows[0];
      const foreign = signCheckpoint(
        { seq: BigInt(head.seq), hash: head.hash },
        new Date().toISOString(),
        generateKeyPairSync('ed25519').privateKey,
      );
      const altered = { ...(JSON.parse(readFileSync(own.file, 'utf8')) as Record<string, unknown>), seq: '2' };
      appendFileSync(own.file, checkpointLine(foreign));
      appendFileSync(own.file, `${JSON.stringify(altered)}\n`);
      appendFileSync(own.file, 'not json\n');
      const verdict = await verify(fresh, own);
      assert.equal(verdict.checkpoints, 1);
      assert.deepEqual(
        verdict.failures.map((f) => [f.line, f.code]),
        [
          [2, 'unknown_key'],
          [3, 'bad_signature'],
          [4, 'not_json'],
        ],
      );
      assert.equal((await writeCheckpoint(fresh.pool, own)).status, 'failed', 'a damaged log is not appended to');
      const empty = join(dir, 'empty.jsonl');
      writeFileSync(empty, '');
      const none = await verifyAgainstCheckpoints(fresh.pool, readCheckpointLog(empty), [publicKey]);
      assert.deepEqual(
        none.failures.map((f) => f.code),
        ['no_checkpoints'],
      );
    } finally {
      await fresh.close();
    }
  });
});

describe('audit checkpoints: at each close', () => {
  let store: Store;
  before(async () => {
    store = await testStore();
    const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'alice' });
    assert.ok(applied.ok);
  });
  after(() => store.close());

  it('signs one after the billing close and the accounting period close commit; without a key the close still closes', async () => {
    const sink = sinkFor();
    const catalog = (await currentCatalog(store.pool))!;
    const billing = await closePeriod(store.pool, catalog, { period: '2026-10', legalEntity: 'nw-us', by: 'bob', checkpoint: sink });
    assert.ok(billing.audit_checkpoint?.status === 'signed');
    const headAfterBilling = (await store.pool.query('SELECT seq::text AS seq FROM audit_head')).rows[0].seq;
    assert.equal(billing.audit_checkpoint.checkpoint.seq, headAfterBilling, 'the checkpoint covers the close record');
    const accounting = await closeAccountingPeriod(store.pool, { legalEntity: 'nw-us', period: '2026-10', by: 'erin', checkpoint: sink });
    assert.ok(accounting.result.ok, JSON.stringify(accounting.result));
    assert.ok(accounting.audit_checkpoint?.status === 'signed');
    const [close] = await readAudit(store.pool, { action: 'accounting_period.close' });
    assert.equal(accounting.audit_checkpoint.checkpoint.seq, String(close!.seq));
    assert.equal(readCheckpointLog(sink.file).length, 2);
    assert.equal((await verify(store, sink)).ok, true);

    const unsigned = await closeAccountingPeriod(store.pool, { legalEntity: 'nw-de', period: '2026-10', by: 'erin' });
    assert.ok(unsigned.result.ok);
    assert.equal(unsigned.audit_checkpoint?.status, 'not_configured');
  });
});

describe('audit checkpoints: configuration', () => {
  it('reads the key file, log and interval from the file keys and the environment; an unreadable or wrong key is refused', () => {
    const file = join(dir, 'accrue.config.yaml');
    const keyFile = join(dir, 'config-key.pem');
    writeFileSync(keyFile, keys.privatePem, { mode: 0o600 });
    writeFileSync(file, `audit_signing_key_file: ${keyFile}\naudit_checkpoint_file: ${join(dir, 'c.jsonl')}\n`);
    const fromFile = loadConfig({ config: file }, {});
    assert.deepEqual(
      [fromFile.auditSigningKeyFile, fromFile.auditCheckpointFile, fromFile.auditCheckpointIntervalSeconds],
      [keyFile, join(dir, 'c.jsonl'), 3600],
    );
    assert.equal(keyId(checkpointSink(fromFile)!.privateKey), keys.keyId);
    const fromEnv = loadConfig({}, { ACCRUE_AUDIT_CHECKPOINT_INTERVAL_SECONDS: '60', ACCRUE_AUDIT_SIGNING_KEY_FILE: '/nonexistent.pem' });
    assert.equal(fromEnv.auditCheckpointIntervalSeconds, 60);
    assert.equal(fromEnv.auditCheckpointFile, './.accrue/audit-checkpoints.jsonl');
    assert.equal(checkpointSink(loadConfig({}, {})), undefined, 'no key: no checkpoints, and closes go on');
    assert.throws(
      () => checkpointSink(fromEnv),
      (e: unknown) => e instanceof ProblemError && /cannot read \/nonexistent\.pem/.test(e.message),
    );
    assert.throws(
      () => checkpointSink({ ...fromEnv, auditSigningKeyFile: publicFile }),
      (e: unknown) => e instanceof ProblemError && e.problems[0]!.code === 'not_a_private_key',
    );
    assert.throws(() => loadConfig({}, { ACCRUE_AUDIT_CHECKPOINT_INTERVAL_SECONDS: 'hourly' }), /ACCRUE_AUDIT_CHECKPOINT_INTERVAL_SECONDS/);
  });
});

describe('accrue audit keygen, checkpoint and verify --checkpoint', () => {
  let store: Store;
  before(async () => {
    store = await testStore();
    await append(store, 4);
  });
  after(() => store.close());
  const accrue = (env: Record<string, string>, ...args: string[]) =>
    spawnSync(process.execPath, ['bin/accrue.js', '--database-url', store.url, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });

  it('makes a key pair, signs a checkpoint with it, verifies, and exits 1 naming the checkpoint after the tail is cut', async () => {
    const out = join(dir, 'cli-keys');
    const made = accrue({}, '--json', 'audit', 'keygen', '--out', out);
    assert.equal(made.status, 0, made.stderr);
    const { private_key_file, public_key_file, key_id } = JSON.parse(made.stdout);
    assert.equal(statSync(private_key_file).mode & 0o777, 0o600);
    assert.equal(accrue({}, 'audit', 'keygen', '--out', out).status, 2, 'an existing key is never overwritten');
    const log = join(dir, 'cli-log.jsonl');
    const env = { ACCRUE_AUDIT_SIGNING_KEY_FILE: private_key_file, ACCRUE_AUDIT_CHECKPOINT_FILE: log };
    const signed = accrue(env, 'audit', 'checkpoint');
    assert.equal(signed.status, 0, signed.stderr);
    assert.match(signed.stdout, new RegExp(`audit checkpoint signed: seq 4 [0-9a-f]{64} \\(key ${key_id.slice(0, 16)}\\)`));
    const intact = accrue({}, 'audit', 'verify', '--checkpoint', log, '--public-key', public_key_file);
    assert.equal(intact.status, 0, intact.stdout + intact.stderr);
    assert.match(intact.stdout, /checkpoints intact: 1 signed checkpoints/);
    assert.equal(accrue(env, 'audit', 'verify', '--checkpoint', log).status, 0, 'the public key from the signing key file');

    await cutTail(store, 2n);
    assert.equal(accrue({}, 'audit', 'verify').status, 0, 'without checkpoints the cut is not seen');
    const cut = accrue({}, 'audit', 'verify', '--checkpoint', log, '--public-key', public_key_file);
    assert.equal(cut.status, 1);
    assert.match(cut.stdout, /checkpoint seq 4 .*: seq 3\.\.4 missing: the chain's head is seq 2/);
    const other = accrue({}, 'audit', 'verify', '--checkpoint', log, '--public-key', publicFile);
    assert.equal(other.status, 1, 'checkpoints verified with another key fail');
    assert.match(other.stdout, /unknown_key|signed by key/);
    assert.equal(accrue({}, 'audit', 'verify', '--checkpoint', log).status, 2, 'no key given or configured');
    assert.equal(accrue({}, 'audit', 'checkpoint').status, 2, 'no signing key configured');
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
