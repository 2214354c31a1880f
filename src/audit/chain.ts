// The tamper-evident audit log: each record carries the hash of the one before it, so changing, deleting,
// reordering or inserting a record breaks the chain at that record. Pure: no I/O (the store writes the rows).
//
// The recipe (version 1), exactly:
//   payload = RFC 8785 canonical JSON of
//             { seq: <seq as a decimal string>, at, actor, action, subject, reason: <reason, or null when absent>,
//               details: <details, or null when absent> }
//             with bigint values inside `details` written as decimal strings first (src/domain/canonical.ts);
//   hash    = lowercase hex SHA-256 of the UTF-8 bytes of (prev_hash + payload), where prev_hash is the previous
//             record's `hash`, or GENESIS_HASH (64 zeros) for the first record.
// `prev_hash` and `hash` are not part of the payload: prev_hash enters as the prefix, hash is the output.
// Sequence numbers start at 1 and rise by exactly 1.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../domain/canonical.js';
import { invariant } from '../domain/result.js';

export const GENESIS_HASH = '0'.repeat(64);
export const AUDIT_HASH_VERSION = 'v1';

export interface AuditInput {
  at: string; // ISO timestamp
  actor: string; // who: a user, an API key id, or a service such as `system:billing-run`
  action: string; // what, e.g. `invoice.finalize`, `exception.waive`
  subject: string; // the id of the thing acted on
  reason?: string;
  details: unknown; // JSON-representable; bigint allowed (hashed as a decimal string)
}

export interface AuditRecord extends AuditInput {
  seq: bigint | number;
  prev_hash: string;
  hash: string;
}

/** The fields the hash covers (everything but prev_hash and hash). */
export type AuditFields = Pick<AuditRecord, 'seq' | 'at' | 'actor' | 'action' | 'subject' | 'reason' | 'details'>;

export type ChainVerdict =
  | { ok: true; count: number; head: { seq: bigint; hash: string } }
  | { ok: false; broken_at_seq: bigint; index: number; reason: 'hash_mismatch' | 'prev_mismatch' | 'seq_gap'; message: string };

const HASH = /^[0-9a-f]{64}$/;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** The canonical JSON the hash covers (see the recipe at the top of this file). */
export function auditPayload(record: AuditFields): string {
  return canonicalJson({
    seq: seqOf(record.seq).toString(),
    at: record.at,
    actor: record.actor,
    action: record.action,
    subject: record.subject,
    reason: record.reason ?? null,
    details: record.details ?? null,
  });
}

/** SHA-256 hex over prevHash + the canonical JSON of the record's fields. */
export function auditHash(prevHash: string, record: AuditFields): string {
  return createHash('sha256')
    .update(prevHash + auditPayload(record), 'utf8')
    .digest('hex');
}

/** The record that follows `prev` (or the first record, seq 1, when there is none). */
export function nextRecord(prev: AuditRecord | undefined, input: AuditInput): AuditRecord {
  invariant(typeof input.actor === 'string' && input.actor !== '', 'an audit record names its actor');
  invariant(typeof input.action === 'string' && input.action !== '', 'an audit record names its action');
  invariant(typeof input.subject === 'string' && input.subject !== '', 'an audit record names its subject');
  invariant(
    typeof input.at === 'string' && ISO_TIMESTAMP.test(input.at) && !Number.isNaN(Date.parse(input.at)),
    `audit time must be an ISO timestamp, got ${JSON.stringify(input.at)}`,
  );
  invariant(input.reason === undefined || typeof input.reason === 'string', 'an audit reason is a string');
  if (prev !== undefined) invariant(HASH.test(prev.hash), `the previous audit record (seq ${String(prev.seq)}) has no valid hash`);
  const seq = prev === undefined ? 1n : seqOf(prev.seq) + 1n;
  const prev_hash = prev === undefined ? GENESIS_HASH : prev.hash;
  const fields: AuditFields = {
    seq,
    at: input.at,
    actor: input.actor,
    action: input.action,
    subject: input.subject,
    details: input.details ?? null,
  };
  if (input.reason !== undefined) fields.reason = input.reason;
  return { ...fields, prev_hash, hash: auditHash(prev_hash, fields) };
}

/**
 * Verifies records given in seq order and names the FIRST broken link. Each record is checked in turn for:
 * its seq is the previous seq + 1 (`seq_gap`), its prev_hash is the previous record's stored hash
 * (`prev_mismatch`), and its hash is the recomputed hash (`hash_mismatch`). Without `from` the records must
 * start the chain (seq 1 after GENESIS_HASH); with it they continue from that already-verified record.
 * Removing records from the END cannot be seen in the records alone: keep the returned head elsewhere and compare.
 */
export function verifyChain(
  records: readonly AuditRecord[],
  from: { seq: bigint | number; hash: string } = { seq: 0n, hash: GENESIS_HASH },
): ChainVerdict {
  let prevSeq = seqOf(from.seq);
  let prevHash = from.hash;
  for (let index = 0; index < records.length; index++) {
    const record = records[index]!;
    const seq = toSeq(record.seq);
    const shown = seq ?? -1n;
    if (seq === undefined || seq !== prevSeq + 1n) {
      const message =
        seq === undefined
          ? `record ${index} has no integer seq (${String(record.seq)})`
          : `expected seq ${prevSeq + 1n} after ${prevSeq}, found ${seq}`;
      return { ok: false, broken_at_seq: shown, index, reason: 'seq_gap', message };
    }
    if (record.prev_hash !== prevHash) {
      return {
        ok: false,
        broken_at_seq: seq,
        index,
        reason: 'prev_mismatch',
        message: `seq ${seq} points at ${record.prev_hash} but the record before it has hash ${prevHash}`,
      };
    }
    const expected = auditHash(prevHash, record);
    if (record.hash !== expected) {
      return {
        ok: false,
        broken_at_seq: seq,
        index,
        reason: 'hash_mismatch',
        message: `seq ${seq} has hash ${record.hash} but its contents hash to ${expected}`,
      };
    }
    prevSeq = seq;
    prevHash = record.hash;
  }
  return { ok: true, count: records.length, head: { seq: prevSeq, hash: prevHash } };
}

function toSeq(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^(0|[1-9]\d*)$/.test(value)) return BigInt(value); // pg returns bigint columns as strings
  return undefined;
}

function seqOf(value: unknown): bigint {
  const seq = toSeq(value);
  invariant(seq !== undefined && seq >= 0n, `an audit seq is a non-negative integer, got ${String(value)}`);
  return seq;
}
