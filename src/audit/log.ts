// The audit log in the store: append in the caller's transaction (so a rolled-back change leaves no record),
// read with filters and a seq cursor, and verify the whole chain page by page.
import type pg from 'pg';
import { toJsonValue } from '../domain/canonical.js';
import { invariant } from '../domain/result.js';
import { GENESIS_HASH, nextRecord, verifyChain, type AuditRecord } from './chain.js';

export type { AuditRecord } from './chain.js';

export interface AppendAuditInput {
  actor: string; // a principal and its key (`principal:<id>/key:<id>`, src/domain/controls.ts auditActor), `dev:<os user>` in development mode, or a component (`system:<component>`)
  action: string; // `<noun>.<verb>`, e.g. `invoice.finalize`
  subject: string; // the id of the thing acted on
  reason?: string;
  details?: unknown; // JSON-representable; bigint is written as a decimal string
}

/** Limit: the canonical JSON of one record's details; a bigger record is a bug (summarize, or hash a list). */
export const AUDIT_DETAILS_BYTES_MAX = 64 * 1024;
/** Limit: records one read returns. */
export const AUDIT_READ_LIMIT_MAX = 1000;
/** Records verifyAudit holds in memory at once. */
export const AUDIT_VERIFY_PAGE = 5000;

// Milliseconds in UTC: the exact text the hash covers, which timestamptz stores and gives back unchanged.
const AT_SQL = `to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const AT_COLUMN = `to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const COLUMNS = `seq, ${AT_COLUMN} AS at, actor, action, subject, reason, details, prev_hash, hash`;

interface AuditRow {
  seq: string;
  at: string;
  actor: string;
  action: string;
  subject: string;
  reason: string | null;
  details: unknown;
  prev_hash: string;
  hash: string;
}

/**
 * Appends one record in the caller's transaction. It locks the chain's head until that transaction ends, so
 * call it as the transaction's last step: concurrent appenders wait only for the rest of a commit.
 */
export async function appendAudit(db: pg.PoolClient, input: AppendAuditInput): Promise<AuditRecord> {
  const details = input.details === undefined ? null : toJsonValue(input.details);
  const detailsText = JSON.stringify(details);
  invariant(
    Buffer.byteLength(detailsText, 'utf8') <= AUDIT_DETAILS_BYTES_MAX,
    `audit details for ${input.action} ${input.subject} exceed ${AUDIT_DETAILS_BYTES_MAX} bytes`,
  );
  const head = (
    await db.query<{ seq: string; hash: string; at: string }>(`SELECT seq, hash, ${AT_SQL} AS at FROM audit_head WHERE id FOR UPDATE`)
  ).rows[0];
  invariant(head !== undefined, 'audit_head has its row (migration 007)');
  const prev = head.seq === '0' ? undefined : headAsRecord(head.seq, head.hash);
  const record = nextRecord(prev, {
    at: head.at,
    actor: input.actor,
    action: input.action,
    subject: input.subject,
    ...(input.reason === undefined ? {} : { reason: input.reason }),
    details,
  });
  // The database checks the link again and advances the head (audit_log_link in 007_audit.sql).
  await db.query(
    'INSERT INTO audit_log (seq, at, actor, action, subject, reason, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)',
    [
      record.seq.toString(),
      record.at,
      record.actor,
      record.action,
      record.subject,
      record.reason ?? null,
      detailsText,
      record.prev_hash,
      record.hash,
    ],
  );
  return { ...record, seq: BigInt(record.seq) };
}

export interface AuditFilter {
  subject?: string;
  action?: string;
  actor?: string;
  /** Records with seq above this, oldest first (the paging cursor). */
  after?: bigint;
  /** Newest first instead (for "the last N"). */
  newestFirst?: boolean;
  limit?: number;
}

/** Records matching the filter, oldest first unless `newestFirst`, at most `limit` (≤ AUDIT_READ_LIMIT_MAX). */
export async function readAudit(db: pg.Pool | pg.PoolClient, filter: AuditFilter = {}): Promise<AuditRecord[]> {
  const limit = filter.limit ?? 100;
  invariant(
    Number.isSafeInteger(limit) && limit >= 1 && limit <= AUDIT_READ_LIMIT_MAX,
    `an audit read returns 1 to ${AUDIT_READ_LIMIT_MAX} records, asked for ${limit}`,
  );
  const rows = (
    await db.query<AuditRow>(
      `SELECT ${COLUMNS} FROM audit_log
        WHERE ($1::text IS NULL OR subject = $1) AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR actor = $3)
          AND ($4::bigint IS NULL OR seq > $4)
        ORDER BY seq ${filter.newestFirst ? 'DESC' : 'ASC'} LIMIT $5`,
      [filter.subject ?? null, filter.action ?? null, filter.actor ?? null, filter.after?.toString() ?? null, limit],
    )
  ).rows;
  return rows.map(fromRow);
}

export type AuditVerdict =
  | { ok: true; count: number; head: { seq: bigint; hash: string } }
  | {
      ok: false;
      count: number; // records checked before the broken one
      broken_at_seq: bigint;
      reason: 'hash_mismatch' | 'prev_mismatch' | 'seq_gap' | 'missing_tail' | 'head_mismatch';
      message: string;
    };

/**
 * Verifies the chain from seq 1 (or from after `from`) to the head, AUDIT_VERIFY_PAGE records at a time, and names the
 * first broken link. The head is read first: records appended while this runs are left for the next verification.
 */
export async function verifyAudit(
  db: pg.Pool | pg.PoolClient,
  options: { pageSize?: number; from?: { seq: bigint; hash: string } } = {},
): Promise<AuditVerdict> {
  const pageSize = options.pageSize ?? AUDIT_VERIFY_PAGE;
  invariant(Number.isSafeInteger(pageSize) && pageSize >= 1, 'the verify page size is a positive integer');
  const headRow = (await db.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_head WHERE id')).rows[0];
  invariant(headRow !== undefined, 'audit_head has its row (migration 007)');
  const head = { seq: BigInt(headRow.seq), hash: headRow.hash };
  // `from`: a record whose hash is known from elsewhere (a signed checkpoint, src/audit/checkpoints.ts) and that the
  // caller checked is still in the chain; verification continues after it instead of from seq 1.
  let from = options.from ?? { seq: 0n, hash: GENESIS_HASH };
  if (head.seq < from.seq)
    return {
      ok: false,
      count: 0,
      broken_at_seq: head.seq + 1n,
      reason: 'missing_tail',
      message: `seq ${head.seq + 1n}..${from.seq} missing: the head is at seq ${head.seq}, behind the known seq ${from.seq}`,
    };
  let count = 0;
  for (;;) {
    const page = (
      await db.query<AuditRow>(`SELECT ${COLUMNS} FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`, [
        from.seq.toString(),
        head.seq.toString(),
        pageSize,
      ])
    ).rows.map(fromRow);
    if (page.length === 0) break;
    const verdict = verifyChain(page, from);
    if (!verdict.ok) {
      const previous = verdict.index === 0 ? from.seq : BigInt(page[verdict.index - 1]!.seq);
      const missing = verdict.reason === 'seq_gap' && verdict.broken_at_seq > previous + 1n;
      const message = missing
        ? `seq ${previous + 1n}${verdict.broken_at_seq - previous > 2n ? `..${verdict.broken_at_seq - 1n}` : ''} missing: seq ${verdict.broken_at_seq} follows seq ${previous}`
        : verdict.reason === 'hash_mismatch'
          ? `seq ${verdict.broken_at_seq} was changed: ${verdict.message}`
          : verdict.message;
      return {
        ok: false,
        count: count + verdict.index,
        broken_at_seq: missing ? previous + 1n : verdict.broken_at_seq,
        reason: verdict.reason,
        message,
      };
    }
    count += verdict.count;
    from = verdict.head;
    if (page.length < pageSize) break;
  }
  if (from.seq !== head.seq) {
    return {
      ok: false,
      count,
      broken_at_seq: from.seq + 1n,
      reason: 'missing_tail',
      message: `seq ${from.seq + 1n}..${head.seq} missing: the chain ends at seq ${from.seq} but its head is seq ${head.seq}`,
    };
  }
  if (from.hash !== head.hash) {
    return {
      ok: false,
      count,
      broken_at_seq: head.seq,
      reason: 'head_mismatch',
      message: `seq ${head.seq} has hash ${from.hash} but the head records ${head.hash}`,
    };
  }
  return { ok: true, count, head };
}

function fromRow(row: AuditRow): AuditRecord {
  return {
    seq: BigInt(row.seq),
    at: row.at,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    ...(row.reason === null ? {} : { reason: row.reason }),
    details: row.details,
    prev_hash: row.prev_hash,
    hash: row.hash,
  };
}

// nextRecord reads only seq and hash of the record before; the head carries exactly those.
function headAsRecord(seq: string, hash: string): AuditRecord {
  return { seq: BigInt(seq), hash, prev_hash: '', at: '', actor: '', action: '', subject: '', details: null };
}
