// Signed checkpoints of the audit chain, written and checked: the I/O around src/audit/checkpoint.ts.
//   write:  read the newest checkpoint this key signed in the checkpoint log (a JSON Lines file), check that the chain
//           still holds it and verifies from it to the head, sign the head, append the line to the file, and enqueue an
//           'audit.checkpoint' notification (the publisher carries it to JetStream and webhooks). The private key is
//           read from a file by the process that signs; the database never holds it.
//   verify: every line of a checkpoint log is signed by a given public key, the chain verifies from seq 1, the record at
//           each checkpoint's seq has exactly its hash, and so the head is at or beyond the newest checkpoint.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type pg from 'pg';
import { auditCheckpointNotificationId } from '../domain/keys.js';
import { decodeUtf8 } from '../domain/strict-json.js';
import { ProblemError, formatProblems, type Problem } from '../domain/result.js';
import { GENESIS_HASH } from './chain.js';
import { checkpointLine, keyId, privateKeyFromPem, signCheckpoint, verifyCheckpoint, type Checkpoint } from './checkpoint.js';
import { verifyAudit, type AuditVerdict } from './log.js';

/** Where checkpoints go when none is configured (relative to the working directory, like the embedded data dir). */
export const DEFAULT_CHECKPOINT_FILE = './.accrue/audit-checkpoints.jsonl';
/** Seconds between the serve worker's checkpoints (written only when the head moved). */
export const DEFAULT_CHECKPOINT_INTERVAL_SECONDS = 3600;
/** Limit: bytes of one checkpoint log read (about 4 million checkpoints: centuries of hourly ones). */
export const CHECKPOINT_LOG_BYTES_MAX = 1024 * 1024 * 1024;

/** What a signer needs: the private key (read from a file outside the database) and the checkpoint log to append to. */
export interface CheckpointSink {
  privateKey: KeyObject;
  file: string;
}

export type CheckpointOutcome =
  | { status: 'signed'; checkpoint: Checkpoint; file: string; notification_id: string }
  | { status: 'unchanged'; checkpoint: Checkpoint; file: string }
  | { status: 'not_configured'; message: string }
  | { status: 'failed'; message: string };

/** The Ed25519 private key in a PEM file; a problem naming the file when it is unreadable or no such key. */
export function loadSigningKey(file: string, origin = 'audit signing key'): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ProblemError([{ path: origin, code: 'unreadable', message: `cannot read ${file}: ${(error as Error).message}` }]);
  }
  const key = privateKeyFromPem(pem, `${origin} ${file}`);
  if (!key.ok) throw new ProblemError(key.problems);
  return key.value;
}

/** One line of a checkpoint log: its number (from 1) and its JSON, or why it is not JSON. */
export type LogLine = { line: number; value: unknown } | { line: number; error: string };

/** The lines of a checkpoint log (blank lines skipped); an absent file has none. */
export function readCheckpointLog(file: string): LogLine[] {
  if (!existsSync(file)) return [];
  const bytes = readFileSync(file);
  if (bytes.length > CHECKPOINT_LOG_BYTES_MAX)
    throw new ProblemError([
      { path: file, code: 'too_large', message: `a checkpoint log holds at most ${CHECKPOINT_LOG_BYTES_MAX} bytes; start a new file` },
    ]);
  const decoded = decodeUtf8(bytes);
  if (!decoded.ok) throw new ProblemError([{ path: file, code: decoded.problem.code, message: decoded.problem.message }]);
  const lines: LogLine[] = [];
  decoded.text.split('\n').forEach((text, index) => {
    if (text.trim() === '') return;
    try {
      lines.push({ line: index + 1, value: JSON.parse(text) as unknown });
    } catch (error) {
      lines.push({ line: index + 1, error: `not JSON: ${(error as Error).message}` });
    }
  });
  return lines;
}

/** The newest checkpoint (highest seq) signed by this key in the log; lines signed by other keys are skipped. */
function newestOwnCheckpoint(file: string, publicKey: KeyObject): { checkpoint?: Checkpoint; damaged?: string } {
  const ownKey = keyId(publicKey);
  let newest: Checkpoint | undefined;
  for (const entry of readCheckpointLog(file)) {
    if ('error' in entry) return { damaged: `line ${entry.line} of ${file} is ${entry.error}` };
    const value = entry.value as { key_id?: unknown };
    if (value?.key_id !== ownKey) continue; // another key's (before a rotation)
    const verified = verifyCheckpoint(entry.value, [publicKey], `line ${entry.line}`);
    if (!verified.ok) return { damaged: `${file}: ${formatProblems(verified.problems)}` };
    if (newest === undefined || BigInt(verified.value.seq) >= BigInt(newest.seq)) newest = verified.value;
  }
  return { checkpoint: newest };
}

/** The hash of the record at `seq` (GENESIS_HASH at seq 0), or undefined when there is no such record. */
async function hashAt(db: pg.Pool | pg.PoolClient, seq: bigint): Promise<string | undefined> {
  if (seq === 0n) return GENESIS_HASH;
  return (await db.query<{ hash: string }>('SELECT hash FROM audit_log WHERE seq = $1', [seq.toString()])).rows[0]?.hash;
}

/**
 * Signs the chain's head and writes the checkpoint to the sink's file and the notifications outbox. It first checks
 * the chain: the newest checkpoint this key signed in the file must still be in it, and the chain must verify from
 * there (from seq 1 without one) to the head; a broken chain is never signed. With `onlyWhenMoved`, a head equal to
 * that checkpoint's is left alone ('unchanged').
 */
export async function writeCheckpoint(
  pool: pg.Pool,
  sink: CheckpointSink,
  options: { onlyWhenMoved?: boolean; now?: () => Date } = {},
): Promise<CheckpointOutcome> {
  const publicKey = createPublicKey(sink.privateKey);
  const previous = newestOwnCheckpoint(sink.file, publicKey);
  if (previous.damaged !== undefined)
    return { status: 'failed', message: `not signed: the checkpoint log is damaged (${previous.damaged})` };
  const anchor = previous.checkpoint;
  const from = anchor === undefined ? undefined : { seq: BigInt(anchor.seq), hash: anchor.hash };
  if (anchor !== undefined && from !== undefined) {
    const head = (await pool.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_head WHERE id')).rows[0]!;
    if (options.onlyWhenMoved && head.seq === anchor.seq && head.hash === anchor.hash)
      return { status: 'unchanged', checkpoint: anchor, file: sink.file };
    const stored = BigInt(head.seq) < from.seq ? undefined : await hashAt(pool, from.seq);
    if (stored !== from.hash)
      return {
        status: 'failed',
        message: `not signed: ${describeCheckpointBreak(anchor, BigInt(head.seq), stored)} (checkpoint log ${sink.file})`,
      };
  }
  const verdict = await verifyAudit(pool, from === undefined ? {} : { from });
  if (!verdict.ok)
    return { status: 'failed', message: `not signed: the audit chain is broken at seq ${verdict.broken_at_seq}: ${verdict.message}` };
  const checkpoint = signCheckpoint(verdict.head, (options.now?.() ?? new Date()).toISOString(), sink.privateKey);
  mkdirSync(dirname(sink.file), { recursive: true });
  appendFileSync(sink.file, checkpointLine(checkpoint), { mode: 0o644 }); // one write of one line: appends do not interleave
  const notificationId = await announceCheckpoint(pool, checkpoint);
  return { status: 'signed', checkpoint, file: sink.file, notification_id: notificationId };
}

/** Enqueues the 'audit.checkpoint' notification (migration 027); the same head signed again is announced once. */
export async function announceCheckpoint(db: pg.Pool | pg.PoolClient, checkpoint: Checkpoint): Promise<string> {
  const id = auditCheckpointNotificationId(checkpoint.seq, checkpoint.hash, checkpoint.key_id);
  await db.query('SELECT notification_enqueue($1, $2, $3, $4::jsonb)', [
    id,
    'audit.checkpoint',
    `audit:${checkpoint.seq}`,
    JSON.stringify(checkpoint),
  ]);
  return id;
}

/**
 * After a close committed: a checkpoint of the head, or why none was signed. Never throws: the close is done, and the
 * caller reports a checkpoint that failed (`accrue close` and `accrue period close` exit 1 on one).
 */
export async function checkpointAfterClose(pool: pg.Pool, sink: CheckpointSink | undefined): Promise<CheckpointOutcome> {
  if (sink === undefined)
    return {
      status: 'not_configured',
      message: 'no audit checkpoint signed: no signing key is configured (ACCRUE_AUDIT_SIGNING_KEY_FILE, docs/operations.md)',
    };
  try {
    return await writeCheckpoint(pool, sink);
  } catch (error) {
    return { status: 'failed', message: `not signed: ${(error as Error).message}` };
  }
}

/** What a checkpoint the database no longer matches says: records missing past the head, or a different record. */
function describeCheckpointBreak(checkpoint: Checkpoint, headSeq: bigint, stored: string | undefined): string {
  const seq = BigInt(checkpoint.seq);
  const signed = `checkpoint seq ${seq} (signed ${checkpoint.at}, hash ${checkpoint.hash})`;
  if (headSeq < seq)
    return `${signed}: seq ${headSeq + 1n}${seq > headSeq + 1n ? `..${seq}` : ''} missing: the chain's head is seq ${headSeq}, behind the checkpoint (records were removed from the end and the head rewound)`;
  if (stored === undefined) return `${signed}: seq ${seq} is missing from the chain`;
  return `${signed}: the record at seq ${seq} has hash ${stored}: it, or a record before it, was changed or replaced`;
}

export interface CheckpointFailure {
  /** The line of the checkpoint log, when the failure is one checkpoint's. */
  line?: number;
  seq?: string;
  code: 'not_json' | 'invalid' | 'unknown_key' | 'bad_signature' | 'missing' | 'changed' | 'chain_broken' | 'no_checkpoints';
  message: string;
}

export interface CheckpointVerdict {
  ok: boolean;
  /** The chain from seq 1 to the head, as `accrue audit verify` checks it alone. */
  chain: AuditVerdict;
  /** Checkpoints whose signature verified (and then were compared with the chain). */
  checkpoints: number;
  /** The newest of them, by seq. */
  newest?: Checkpoint;
  failures: CheckpointFailure[];
}

/** Verifies the lines of a checkpoint log against the public keys, and the chain in the database against them. */
export async function verifyAgainstCheckpoints(
  db: pg.Pool | pg.PoolClient,
  lines: readonly LogLine[],
  publicKeys: readonly KeyObject[],
  options: { pageSize?: number } = {},
): Promise<CheckpointVerdict> {
  const failures: CheckpointFailure[] = [];
  const signed: Array<{ line: number; checkpoint: Checkpoint }> = [];
  for (const entry of lines) {
    if ('error' in entry) {
      failures.push({ line: entry.line, code: 'not_json', message: `line ${entry.line} is ${entry.error}` });
      continue;
    }
    const verified = verifyCheckpoint(entry.value, publicKeys, `line ${entry.line}`);
    if (verified.ok) signed.push({ line: entry.line, checkpoint: verified.value });
    else failures.push(signatureFailure(entry, verified.problems));
  }
  if (lines.length === 0) failures.push({ code: 'no_checkpoints', message: 'the checkpoint log has no checkpoints' });
  const chain = await verifyAudit(db, options);
  if (!chain.ok)
    failures.push({ code: 'chain_broken', seq: String(chain.broken_at_seq), message: `the chain is broken: ${chain.message}` });
  const head = BigInt((await db.query<{ seq: string }>('SELECT seq FROM audit_head WHERE id')).rows[0]!.seq);
  const seqs = [...new Set(signed.map((s) => s.checkpoint.seq))];
  const stored = new Map(
    (
      await db.query<{ seq: string; hash: string }>('SELECT seq::text AS seq, hash FROM audit_log WHERE seq = ANY($1::bigint[])', [seqs])
    ).rows.map((r) => [r.seq, r.hash]),
  );
  stored.set('0', GENESIS_HASH);
  for (const { line, checkpoint } of signed) {
    const beyondHead = BigInt(checkpoint.seq) > head; // the head must be at or beyond every checkpoint
    const hash = beyondHead ? undefined : stored.get(checkpoint.seq);
    if (hash === checkpoint.hash) continue;
    const missing = hash === undefined;
    failures.push({
      line,
      seq: checkpoint.seq,
      code: missing ? 'missing' : 'changed',
      message: `line ${line}: ${describeCheckpointBreak(checkpoint, head, hash)}`,
    });
  }
  const newest = signed.reduce<Checkpoint | undefined>(
    (a, { checkpoint }) => (a === undefined || BigInt(checkpoint.seq) > BigInt(a.seq) ? checkpoint : a),
    undefined,
  );
  return { ok: failures.length === 0, chain, checkpoints: signed.length, ...(newest ? { newest } : {}), failures };
}

function signatureFailure(entry: { line: number; value: unknown }, problems: readonly Problem[]): CheckpointFailure {
  const seq = (entry.value as { seq?: unknown } | null)?.seq;
  const code = problems.some((p) => p.code === 'unknown_key')
    ? 'unknown_key'
    : problems.some((p) => p.code === 'bad_signature')
      ? 'bad_signature'
      : 'invalid';
  return {
    line: entry.line,
    ...(typeof seq === 'string' ? { seq } : {}),
    code,
    message: formatProblems(problems),
  };
}

/** The serve worker's checkpoints: one at start and then every `intervalMs`, each only when the head moved. */
export function startCheckpointer(
  pool: pg.Pool,
  sink: CheckpointSink,
  options: { intervalMs: number; log?: (line: Record<string, unknown>) => void },
): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const tick = async () => {
    try {
      const outcome = await writeCheckpoint(pool, sink, { onlyWhenMoved: true });
      if (outcome.status === 'signed')
        options.log?.({ level: 'info', msg: 'audit checkpoint signed', seq: outcome.checkpoint.seq, file: outcome.file });
      else if (outcome.status === 'failed') options.log?.({ level: 'error', msg: 'audit checkpoint not signed', error: outcome.message });
    } catch (error) {
      options.log?.({ level: 'error', msg: 'audit checkpoint not signed', error: (error as Error).message });
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().finally(schedule);
    }, options.intervalMs);
  };
  running = tick().finally(schedule);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
