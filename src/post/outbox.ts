// The transactional outbox, in numbered steps. Each step says what a crash right after it leaves and who picks it up.
//   1. The document and its outbox row are written in the transaction that finalizes it (src/post/journals.ts).
//   2. A worker claims due rows with FOR UPDATE SKIP LOCKED and a lease. Crash after: the lease expires; another
//      worker claims the row again (attempts counts it).
//   3. The worker looks the document up at the target by its idempotency key. Crash after: nothing was written.
//   4. Only if absent, it posts. Crash after (or a lost response): the target has it; the next claim finds it at step 3.
//   5. It records the target's reference and marks the row posted. Crash before: steps 2-3 repeat and find it.
import { invoiceJournalId } from '../domain/keys.js';
import type pg from 'pg';
import type { Journal } from '../domain/model.js';
import { readJournals } from './journals.js';
import { readSalesDocuments, readVoidDocument, type SalesDocument } from './erp-documents.js';
import { TargetError, type ErpTarget } from './target.js';
import { logOutbox, outboxCorrelations, withCorrelation, type LogLine } from './correlation.js';
import type { CorrelationChain } from '../domain/correlation.js';
import { transaction } from '../store/store.js';
import { appendAudit } from '../audit/log.js';
import { ATTRIBUTES, SPANS, correlationAttributes, inSpan } from '../observe/tracing.js';
import { recordErpFailure } from '../observe/counters.js';
import { ConnectionParked, MappingMissing, PeriodLocked, ReauthorizationRequired, type PaymentDocument } from '../domain/erp.js';
import { callScope } from './target.js';
import { currentCatalog } from '../catalog/service.js';
import { clearErpExceptions, openErpException } from './erp-exceptions.js';

export const OUTBOX_LIMITS = {
  attemptsMax: 8,
  leaseMs: 30_000,
  backoffBaseMs: 500,
  backoffMaxMs: 5 * 60_000,
  claimBatch: 50,
  // Rows settled in one transaction at most: one commit, one turn on the audit chain's head.
  settleBatch: 200,
};

export interface OutboxRow {
  id: string;
  key: string;
  target: string;
  document_id: string;
  document_kind: string; // 'journal', or 'invoice' / 'credit_note': sent in the ERP's document form when the target has one
  attempts: number; // calls made to the ERP for this row so far
  failures: number; // transient failures in a row: what dead-letters it
  post_on: string | null; // the date to send the document with, when the ERP's period for its own date is closed
  last_code: string | null; // the code of the last error (mapping_missing, period_locked: the row was waiting)
}

export interface DrainOutcome {
  posted: number;
  found_existing: number;
  retried: number;
  dead: number;
}

/** Exponential backoff with full jitter, never sooner than the target's Retry-After. */
export function backoffMs(
  attempt: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
  baseMs = OUTBOX_LIMITS.backoffBaseMs,
): number {
  const ceiling = Math.min(OUTBOX_LIMITS.backoffMaxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.floor(random() * ceiling);
  return Math.max(jittered, retryAfterMs ?? 0);
}

/**
 * Step 2: claim due rows for one target under a lease; rows another worker holds are skipped, not waited for. A
 * claim is not an attempt (attempts count calls to the ERP). Rows of a connection that needs reauthorization or is
 * parked by a daily limit are not claimed: they wait, and resume by themselves.
 */
export async function claim(pool: pg.Pool, target: string, limit: number, leaseMs = OUTBOX_LIMITS.leaseMs): Promise<OutboxRow[]> {
  const result = await pool.query<OutboxRow>(
    `UPDATE outbox SET lease_until = now() + ($3 || ' milliseconds')::interval
      WHERE id IN (SELECT o.id FROM outbox o LEFT JOIN erp_connections c ON c.name = o.target
                    WHERE o.target = $1 AND o.status = 'pending' AND o.next_attempt_at <= now() AND (o.lease_until IS NULL OR o.lease_until < now())
                      AND (c.name IS NULL OR (c.status <> 'needs_reauthorization' AND (c.parked_until IS NULL OR c.parked_until <= now())))
                    ORDER BY o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED)
      RETURNING id, key, target, document_id, document_kind, attempts, failures, to_char(post_on, 'YYYY-MM-DD') AS post_on, last_error->>'code' AS last_code`,
    [target, limit, String(leaseMs)],
  );
  return result.rows;
}

/** A token bucket per target: the ERP's rate limit, so a month-end backlog drains at the highest allowed rate. */
export class RateLimiter {
  private tokens: number;
  private last = Date.now();
  constructor(private readonly perMinute: number) {
    this.tokens = Math.min(perMinute, 10);
  }
  async take(): Promise<void> {
    // No per-process limit: the target's calls go through a caller that enforces the ERP's limits across processes.
    if (!Number.isFinite(this.perMinute)) return;
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.perMinute, this.tokens + ((now - this.last) * this.perMinute) / 60_000);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute)));
    }
  }
}

/** Limit: characters of a target's error message kept in the audit record (the outbox row keeps the whole error). */
const AUDIT_ERROR_CHARS_MAX = 500;

async function settle(pool: pg.Pool, row: OutboxRow, update: Settlement) {
  const error = (update.error as { message?: unknown } | undefined)?.message;
  logOutbox({
    level: update.status === 'posted' ? 'info' : update.status === 'dead' ? 'error' : 'warn',
    msg: `outbox ${update.status}`,
    target: row.target,
    attempts: row.attempts,
    reference: update.reference ?? null,
    ...(error ? { error } : {}),
  });
  // A retry is routine and not audited; posted and dead-lettered are, in the transaction that records them.
  if (update.status === 'pending') return settleRow(pool, row, update);
  let committer = committers.get(pool);
  if (!committer) committers.set(pool, (committer = new SettleCommitter(pool)));
  await committer.settle(row, update);
}

type Settlement = {
  status: 'posted' | 'pending' | 'dead';
  reference?: string;
  error?: unknown;
  delayMs?: number;
  calls?: number;
  failures?: number;
  postOn?: string | null;
};

/** The audit record of a row posted or dead-lettered. */
function auditEntry(row: OutboxRow, update: Settlement) {
  const message = (update.error as { message?: unknown } | undefined)?.message;
  return {
    actor: 'system:outbox',
    action: update.status === 'posted' ? 'outbox.posted' : 'outbox.dead_letter',
    subject: row.document_id,
    details: {
      target: row.target,
      key: row.key,
      outbox_id: row.id,
      attempts: row.attempts,
      ...(update.status === 'posted'
        ? { reference: update.reference ?? null }
        : { error: typeof message === 'string' ? message.slice(0, AUDIT_ERROR_CHARS_MAX) : null }),
    },
  };
}

/**
 * Step 5 as a group commit: rows settled while a commit is in flight go together in the next transaction, one
 * UPDATE and their audit records, so they share one commit (one WAL flush) and one turn holding the audit head.
 * Each caller still waits for its own row's commit; a failed transaction fails every row in it, none half-recorded.
 */
class SettleCommitter {
  private waiting: Array<{ row: OutboxRow; update: Settlement; resolve: () => void; reject: (error: unknown) => void }> = [];
  private running = false;
  constructor(private readonly pool: pg.Pool) {}

  settle(row: OutboxRow, update: Settlement): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ row, update, resolve, reject });
      if (!this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, OUTBOX_LIMITS.settleBatch);
      try {
        await transaction(this.pool, async (client) => {
          const settled = new Set(
            (
              await client.query<{ id: string }>(
                `UPDATE outbox o SET status = u.status, target_reference = coalesce(u.reference, o.target_reference), last_error = u.error::jsonb,
                        next_attempt_at = now(), lease_until = NULL, posted_at = CASE WHEN u.status = 'posted' THEN now() ELSE o.posted_at END,
                        attempts = o.attempts + u.calls, failures = CASE WHEN u.status = 'posted' THEN 0 ELSE coalesce(u.failures, o.failures) END
                   FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[]) AS u(id, status, reference, error, calls, failures)
                  WHERE o.id = u.id AND o.status = 'pending'
                  RETURNING o.id`,
                [
                  batch.map((s) => s.row.id),
                  batch.map((s) => s.update.status),
                  batch.map((s) => s.update.reference ?? null),
                  batch.map((s) => (s.update.error === undefined ? null : JSON.stringify(s.update.error))),
                  batch.map((s) => s.update.calls ?? 0),
                  batch.map((s) => s.update.failures ?? null),
                ],
              )
            ).rows.map((r) => String(r.id)),
          );
          // Appends come last: the audit head stays locked from the first append to the commit.
          for (const s of batch) if (settled.has(String(s.row.id))) await appendAudit(client, auditEntry(s.row, s.update));
          // A document that waited for a mapping or an open period has posted: its exception clears once none waits.
          for (const s of batch)
            if (
              settled.has(String(s.row.id)) &&
              s.update.status === 'posted' &&
              s.row.last_code !== null &&
              WAITING_CODES.has(s.row.last_code)
            )
              await clearErpExceptions(client, s.row.target, s.row.key);
        });
        for (const s of batch) s.resolve();
      } catch (error) {
        for (const s of batch) s.reject(error);
      }
    }
    this.running = false;
  }
}

const committers = new WeakMap<pg.Pool, SettleCommitter>();

async function settleRow(db: pg.Pool | pg.PoolClient, row: OutboxRow, update: Settlement): Promise<number> {
  const result = await db.query(
    `UPDATE outbox SET status = $2, target_reference = coalesce($3, target_reference), last_error = $4,
            next_attempt_at = now() + ($5 || ' milliseconds')::interval, lease_until = NULL,
            posted_at = CASE WHEN $2 = 'posted' THEN now() ELSE posted_at END,
            attempts = attempts + $6, failures = coalesce($7, failures), post_on = CASE WHEN $8::boolean THEN $9::date ELSE post_on END
      WHERE id = $1 AND status = 'pending'`,
    [
      row.id,
      update.status,
      update.reference ?? null,
      update.error === undefined ? null : JSON.stringify(update.error),
      String(update.delayMs ?? 0),
      update.calls ?? 0,
      update.failures ?? null,
      update.postOn !== undefined,
      update.postOn ?? null,
    ],
  );
  return result.rowCount ?? 0;
}

/** Limits (TigerStyle): how long a row waits before it looks again for a mapping, an open period, a reauthorization. */
export const OUTBOX_WAITS = {
  mappingRecheckMs: 15 * 60_000, // an import of the mapping wakes it at once
  periodRecheckMs: 60 * 60_000,
  reauthorizationRecheckMs: 60_000, // not claimed anyway while the connection needs reauthorization
  invoiceFirstMs: 5_000, // a credit note or payment whose invoice is not in the ERP yet
};

/** Codes of rows that wait for a person (a mapping, an open period): not retries, and `untilEmpty` does not wait for them. */
const WAITING_CODES = new Set(['mapping_missing', 'period_locked', 'needs_reauthorization', 'parked']);

/** The connection's policy for a document dated in a period the ERP has closed or locked. */
async function closedPeriodPolicyOf(pool: pg.Pool, target: string): Promise<'first_open_day' | 'exception'> {
  const row = (
    await pool.query<{ policy: string | null }>("SELECT settings->>'closed_period' AS policy FROM erp_connections WHERE name = $1", [
      target,
    ])
  ).rows[0];
  return row?.policy === 'exception' ? 'exception' : 'first_open_day';
}

async function processRow(
  pool: pg.Pool,
  target: ErpTarget,
  limiter: RateLimiter,
  row: OutboxRow,
  journal: Journal | undefined,
  document: SalesDocument | Error | undefined,
  outcome: DrainOutcome,
  policy: RetryPolicy,
): Promise<void> {
  if (!journal) {
    await settle(pool, row, { status: 'dead', error: { message: `document ${row.document_id} not found` } });
    outcome.dead += 1;
    return;
  }
  // A void goes as the ERP's own cancellation when the target has one; a target that took the invoice as a document
  // but cannot void one dead-letters it (a manual journal would leave the ERP's invoice open); others take the journal.
  if (row.document_kind === 'invoice_void' && target.postVoid !== undefined && target.findVoid !== undefined)
    return processVoid(pool, target, limiter, row, journal, outcome, policy);
  // An invoice or credit note goes in the ERP's own document form when the target has one, else as its journal.
  const asDocument = row.document_kind !== 'journal' && target.findDocument !== undefined && target.postDocument !== undefined;
  if (asDocument && !(document && !(document instanceof Error))) {
    const why = document instanceof Error ? document.message : `no ${row.document_kind} for journal ${row.document_id}`;
    await settle(pool, row, { status: 'dead', error: { message: why, permanent: true } });
    outcome.dead += 1;
    return;
  }
  // Sent dated the ERP's first open day when its period for the document's own date is closed (the stored document
  // keeps its date; the outbox row records the date used).
  const sales = asDocument
    ? row.post_on
      ? { ...(document as SalesDocument), date: row.post_on }
      : (document as SalesDocument)
    : undefined;
  const posting = !sales && row.post_on ? { ...journal, posting_date: row.post_on } : journal;
  const scope = { calls: 0 };
  try {
    const settled = await callScope.run(scope, async () => {
      await limiter.take();
      const existing = sales ? await target.findDocument!(row.key, sales) : await target.find(row.key, posting); // step 3
      if (existing) return { reference: existing.reference, found: true };
      await limiter.take();
      const posted = sales ? await target.postDocument!(row.key, sales) : await target.post(row.key, posting); // step 4
      return { reference: posted.reference, found: false };
    });
    await settle(pool, row, { status: 'posted', reference: settled.reference, calls: scope.calls }); // step 5
    if (settled.found) outcome.found_existing += 1;
    else outcome.posted += 1;
  } catch (error) {
    await failed(pool, row, error, scope.calls, { legal_entity: journal.legal_entity, sales }, outcome, policy);
  }
}

/**
 * An invoice's void, once the invoice itself is posted to this target (until then the row waits, without counting a
 * failure): looked up first (already voided, or its credit memo made), then voided or credited.
 */
async function processVoid(
  pool: pg.Pool,
  target: ErpTarget,
  limiter: RateLimiter,
  row: OutboxRow,
  journal: Journal,
  outcome: DrainOutcome,
  policy: RetryPolicy,
): Promise<void> {
  const read = await readVoidDocument(pool, row.target, journal);
  if (read instanceof Error) {
    await settle(pool, row, { status: 'dead', error: { message: read.message, permanent: true } });
    outcome.dead += 1;
    return;
  }
  if ('waiting' in read) {
    await settle(pool, row, {
      status: 'pending',
      delayMs: OUTBOX_WAITS.invoiceFirstMs,
      error: { message: read.waiting, code: 'invoice_first', permanent: false },
    });
    outcome.retried += 1;
    return;
  }
  const document = row.post_on ? { ...read, date: row.post_on } : read;
  const scope = { calls: 0 };
  try {
    const settled = await callScope.run(scope, async () => {
      await limiter.take();
      const existing = await target.findVoid!(row.key, document); // step 3
      if (existing) return { reference: existing.reference, found: true };
      await limiter.take();
      return { reference: (await target.postVoid!(row.key, document)).reference, found: false }; // step 4
    });
    await settle(pool, row, { status: 'posted', reference: settled.reference, calls: scope.calls }); // step 5
    if (settled.found) outcome.found_existing += 1;
    else outcome.posted += 1;
  } catch (error) {
    await failed(pool, row, error, scope.calls, { legal_entity: journal.legal_entity, sales: undefined }, outcome, policy);
  }
}

/** Payments Accrue received, as the ERP connectors take them (src/domain/erp.ts PaymentDocument). */
async function readPaymentDocuments(pool: pg.Pool, ids: readonly string[]): Promise<Map<string, PaymentDocument>> {
  if (ids.length === 0) return new Map();
  const rows = await pool.query<{
    id: string;
    currency: string;
    amount_minor: string;
    received_on: string;
    invoice_id: string;
    number: string;
    customer: string;
    legal_entity: string;
  }>(
    `SELECT p.id, p.currency, p.amount_minor::text AS amount_minor, to_char(p.received_on, 'YYYY-MM-DD') AS received_on, i.id AS invoice_id, i.number, i.customer, i.legal_entity
       FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE p.id = ANY($1) AND p.status = 'applied'`,
    [ids],
  );
  const catalog = await currentCatalog(pool);
  return new Map(
    rows.rows.map((r) => [
      r.id,
      {
        payment_id: r.id,
        invoice_number: r.number,
        invoice_id: r.invoice_id,
        legal_entity: r.legal_entity,
        customer: r.customer,
        customer_erp_id: catalog?.index.customers.get(r.customer)?.erp_customer_id ?? r.customer,
        currency: r.currency,
        amount_minor: BigInt(r.amount_minor),
        received_on: r.received_on,
      },
    ]),
  );
}

/**
 * A payment pushed to the ERP and applied to its invoice there: only once the invoice itself is posted to this target
 * (until then the row waits, without counting a failure); looked up by its key first, as every document.
 */
async function processPayment(
  pool: pg.Pool,
  target: ErpTarget,
  limiter: RateLimiter,
  row: OutboxRow,
  payment: PaymentDocument | undefined,
  outcome: DrainOutcome,
  policy: RetryPolicy,
): Promise<void> {
  const refuse = async (message: string) => {
    await settle(pool, row, { status: 'dead', error: { message, permanent: true } });
    outcome.dead += 1;
  };
  if (!payment) return refuse(`payment ${row.document_id} not found, or not applied to an invoice`);
  if (!target.findPayment || !target.postPayment) return refuse(`the ${target.name} connector cannot take payments`);
  const invoiceRow = (
    await pool.query<{ status: string }>('SELECT status FROM outbox WHERE target = $1 AND document_id = $2', [
      row.target,
      invoiceJournalId(payment.invoice_id),
    ])
  ).rows[0];
  if (!invoiceRow) return refuse(`invoice ${payment.invoice_number} was not sent to ${row.target}, so its payment cannot be applied there`);
  if (invoiceRow.status !== 'posted') {
    await settle(pool, row, {
      status: 'pending',
      delayMs: OUTBOX_WAITS.invoiceFirstMs,
      error: { message: `waiting for invoice ${payment.invoice_number} to be posted first`, code: 'invoice_first', permanent: false },
    });
    outcome.retried += 1;
    return;
  }
  const scope = { calls: 0 };
  try {
    const settled = await callScope.run(scope, async () => {
      await limiter.take();
      const existing = await target.findPayment!(row.key, payment);
      if (existing) return { reference: existing.reference, found: true };
      await limiter.take();
      return { reference: (await target.postPayment!(row.key, payment)).reference, found: false };
    });
    await settle(pool, row, { status: 'posted', reference: settled.reference, calls: scope.calls });
    if (settled.found) outcome.found_existing += 1;
    else outcome.posted += 1;
  } catch (error) {
    await failed(pool, row, error, scope.calls, { legal_entity: payment.legal_entity, sales: undefined }, outcome, policy);
  }
}

/**
 * A row's work failed. What waits for a person or a time (a mapping, a closed period, a reauthorization, a daily
 * limit, the invoice a credit note needs) waits without counting a failure; a refusal no retry can cure is a dead
 * letter; anything else is a transient failure, retried with backoff until `attemptsMax` failures in a row.
 */
async function failed(
  pool: pg.Pool,
  row: OutboxRow,
  error: unknown,
  calls: number,
  doc: { legal_entity: string; sales: SalesDocument | undefined },
  outcome: DrainOutcome,
  policy: RetryPolicy,
): Promise<void> {
  const failure: FailedRow = { pool, row, calls, message: (error as Error).message, outcome };
  if (error instanceof ConnectionParked)
    return waitRow(failure, 'parked', Math.max(0, error.until.getTime() - Date.now()), { until: error.until.toISOString() });
  if (error instanceof ReauthorizationRequired) return waitRow(failure, 'needs_reauthorization', OUTBOX_WAITS.reauthorizationRecheckMs);
  if (error instanceof MappingMissing) return mappingMissing(failure, error, doc);
  if (error instanceof PeriodLocked) return periodLocked(failure, error, doc.legal_entity);
  return targetFailed(failure, error, policy);
}

/** What the steps of a failed row share: the row, the calls it made, the error's message and the drain's tally. */
interface FailedRow {
  pool: pg.Pool;
  row: OutboxRow;
  calls: number;
  message: string;
  outcome: DrainOutcome;
}

/** The row waits for a person or a time without counting a failure. */
async function waitRow(failure: FailedRow, code: string, delayMs: number, extra: Record<string, unknown> = {}): Promise<void> {
  const { pool, row, calls, message, outcome } = failure;
  await settle(pool, row, { status: 'pending', calls, delayMs, error: { message, code, permanent: false, ...extra } });
  outcome.retried += 1;
}

/** A mapping is missing: an exception for a person, and the row waits for the mapping. */
async function mappingMissing(
  failure: FailedRow,
  error: MappingMissing,
  doc: { legal_entity: string; sales: SalesDocument | undefined },
): Promise<void> {
  const { pool, row, message } = failure;
  const details = { field: error.field, kind: error.kind, source: error.source, refused_by: error.refusedBy ?? null, message };
  await openErpException(pool, {
    kind: 'erp_mapping_missing',
    connection: row.target,
    subject: `${row.target}:${error.kind}:${error.source}`,
    details,
    document: { key: row.key, journal: row.document_id },
    legal_entity: doc.legal_entity,
    ...(doc.sales ? { customer: doc.sales.customer, currency: doc.sales.currency } : {}),
  });
  recordErpFailure(row.target, false, error);
  return waitRow(failure, 'mapping_missing', OUTBOX_WAITS.mappingRecheckMs, details);
}

/** The ERP's period is closed: re-dated to its first open day when the connection's policy says so, else an exception. */
async function periodLocked(failure: FailedRow, error: PeriodLocked, legalEntity: string): Promise<void> {
  const { pool, row } = failure;
  const policyOf = await closedPeriodPolicyOf(pool, row.target);
  if (policyOf === 'first_open_day' && error.firstOpenDay !== null && error.firstOpenDay > error.date) return redateRow(failure, error);
  await openErpException(pool, {
    kind: 'erp_period_locked',
    connection: row.target,
    subject: row.key,
    details: { date: error.date, first_open_day: error.firstOpenDay, detail: error.detail, policy: policyOf },
    document: { key: row.key, journal: row.document_id },
    legal_entity: legalEntity,
  });
  return waitRow(failure, 'period_locked', OUTBOX_WAITS.periodRecheckMs, { date: error.date, first_open_day: error.firstOpenDay });
}

/** The row is sent again at once with the first open day as its date; the move is audited in the same transaction. */
async function redateRow(failure: FailedRow, error: PeriodLocked): Promise<void> {
  const { pool, row, calls, message, outcome } = failure;
  await transaction(pool, async (client) => {
    await settleRow(client, row, {
      status: 'pending',
      calls,
      delayMs: 0,
      postOn: error.firstOpenDay,
      error: { message, code: 'period_locked_moved', permanent: false, date: error.date, post_on: error.firstOpenDay },
    });
    await appendAudit(client, {
      actor: 'system:outbox',
      action: 'outbox.redated',
      subject: row.document_id,
      details: {
        target: row.target,
        key: row.key,
        date: error.date,
        post_on: error.firstOpenDay,
        reason: error.detail.slice(0, AUDIT_ERROR_CHARS_MAX),
      },
    });
  });
  outcome.retried += 1;
}

/** The target refused or failed: a wait, a 429's later, a retry with backoff, or a dead letter. */
async function targetFailed(failure: FailedRow, error: unknown, policy: RetryPolicy): Promise<void> {
  const { pool, row, calls, message, outcome } = failure;
  const details = error instanceof TargetError ? error.details : { permanent: false };
  if (details.code === 'invoice_not_posted') return waitRow(failure, 'invoice_not_posted', OUTBOX_WAITS.invoiceFirstMs);
  const record = { message, ...details };
  recordErpFailure(row.target, details.permanent, error);
  // A 429 is the ERP saying "later", not a failure: honour its Retry-After without moving the row toward the DLQ.
  if (!details.permanent && details.status === 429) {
    await settle(pool, row, {
      status: 'pending',
      calls,
      error: record,
      delayMs: backoffMs(1, details.retryAfterMs, Math.random, policy.backoffBaseMs),
    });
    outcome.retried += 1;
    return;
  }
  const failures = row.failures + 1;
  if (details.permanent || failures >= policy.attemptsMax) {
    await settle(pool, row, { status: 'dead', calls, failures, error: record });
    outcome.dead += 1;
  } else {
    await settle(pool, row, {
      status: 'pending',
      calls,
      failures,
      error: record,
      delayMs: backoffMs(failures, details.retryAfterMs, Math.random, policy.backoffBaseMs),
    });
    outcome.retried += 1;
  }
}

/** Drains what is due for one target, at most `limits.concurrency` requests in flight, until nothing is due. */
export interface RetryPolicy {
  attemptsMax: number;
  backoffBaseMs: number;
}

export async function drainOutbox(
  pool: pg.Pool,
  target: ErpTarget,
  options: { untilEmptyMs?: number; leaseMs?: number; log?: LogLine } & Partial<RetryPolicy> = {},
): Promise<DrainOutcome> {
  const policy: RetryPolicy = {
    attemptsMax: options.attemptsMax ?? OUTBOX_LIMITS.attemptsMax,
    backoffBaseMs: options.backoffBaseMs ?? OUTBOX_LIMITS.backoffBaseMs,
  };
  const outcome: DrainOutcome = { posted: 0, found_existing: 0, retried: 0, dead: 0 };
  const limiter = new RateLimiter(target.limits.requestsPerMinute);
  const deadline = Date.now() + (options.untilEmptyMs ?? 0);
  for (;;) {
    if ((await drainDue(pool, target, limiter, outcome, policy, options.leaseMs ?? OUTBOX_LIMITS.leaseMs, options.log)) > 0) continue;
    // Rows waiting for a person (a mapping, an open period, a reauthorization) or a parked connection are not waited for.
    const waiting = await pool.query(
      `SELECT min(o.next_attempt_at) AS next FROM outbox o LEFT JOIN erp_connections c ON c.name = o.target
        WHERE o.target = $1 AND o.status = 'pending' AND NOT (coalesce(o.last_error->>'code', '') = ANY($2))
          -- a payment waiting for its invoice waits as long as the invoice does
          AND NOT (o.last_error->>'code' = 'invoice_first' AND EXISTS (
                SELECT 1 FROM payments p JOIN outbox i ON i.target = o.target AND i.document_id = 'jrn:v1:invoice:' || p.invoice_id
                 WHERE p.id = o.document_id AND i.status = 'pending' AND coalesce(i.last_error->>'code', '') = ANY($2)))
          AND (c.name IS NULL OR (c.status <> 'needs_reauthorization' AND (c.parked_until IS NULL OR c.parked_until <= now())))`,
      [target.name, [...WAITING_CODES]],
    );
    const next = waiting.rows[0]?.next as Date | null;
    if (!next || Date.now() >= deadline) return outcome;
    await new Promise((r) => setTimeout(r, Math.max(20, Math.min(next.getTime() - Date.now(), deadline - Date.now()))));
  }
}

interface ClaimedRow {
  row: OutboxRow;
  payment?: PaymentDocument | undefined;
  journal: Journal | undefined;
  document: SalesDocument | Error | undefined;
  chain: CorrelationChain | undefined;
  claimedAt: number;
}

/**
 * Works due rows with `concurrency` lanes until a claim finds none, and returns how many it worked. The next batch
 * is claimed while the current one is in flight, so no lane waits for the claim or for the slowest row of a batch.
 */
async function drainDue(
  pool: pg.Pool,
  target: ErpTarget,
  limiter: RateLimiter,
  outcome: DrainOutcome,
  policy: RetryPolicy,
  leaseMs: number,
  log: LogLine | undefined,
): Promise<number> {
  const batch = Math.min(OUTBOX_LIMITS.claimBatch, target.limits.concurrency * 4);
  const queue: ClaimedRow[] = [];
  let exhausted = false;
  let failure: unknown;
  let refilling: Promise<void> | undefined;
  let worked = 0;
  const refill = () =>
    (refilling ??= (async () => {
      const claimed = await claimWithDocuments(pool, target, batch, leaseMs);
      if (claimed.length === 0) {
        exhausted = true;
        return;
      }
      queue.push(...claimed);
    })()
      .catch((error: unknown) => {
        failure ??= error;
        exhausted = true;
      })
      .finally(() => {
        refilling = undefined;
      }));
  const lane = async () => {
    for (;;) {
      if (queue.length <= target.limits.concurrency && !exhausted) void refill();
      const next = queue.shift();
      if (!next) {
        if (exhausted) return;
        await refill();
        continue;
      }
      // A row that waited past half its lease is left to expire and be claimed again, never raced by a second worker.
      if (Date.now() - next.claimedAt > leaseMs / 2) continue;
      worked += 1;
      await workClaimed(pool, target, limiter, next, outcome, policy, log);
    }
  };
  await Promise.all(Array.from({ length: target.limits.concurrency }, lane));
  if (failure !== undefined) throw failure;
  return worked;
}

/** Claims a batch (step 2) and reads what its rows send: journals, correlation chains, sales and payment documents. */
async function claimWithDocuments(pool: pg.Pool, target: ErpTarget, batch: number, leaseMs: number): Promise<ClaimedRow[]> {
  const claimedAt = Date.now();
  const rows = await claim(pool, target.name, batch, leaseMs);
  if (rows.length === 0) return [];
  const journals = new Map(
    (
      await readJournalsById(
        pool,
        rows.map((r) => r.document_id),
      )
    ).map((j) => [j.id, j]),
  );
  const chains = await outboxCorrelations(
    pool,
    rows.map((r) => r.key),
  );
  const documentJournals = rows
    .filter((r) => r.document_kind !== 'journal')
    .map((r) => journals.get(r.document_id))
    .filter((j): j is Journal => j !== undefined);
  const documents = target.postDocument ? await readSalesDocuments(pool, documentJournals) : new Map<string, SalesDocument | Error>();
  const payments = await readPaymentDocuments(
    pool,
    rows.filter((r) => r.document_kind === 'payment').map((r) => r.document_id),
  );
  return rows.map((row) => ({
    row,
    payment: payments.get(row.document_id),
    journal: journals.get(row.document_id),
    document: documents.get(row.document_id),
    chain: chains.get(row.key),
    claimedAt,
  }));
}

/** Works one claimed row inside its correlation and an outbox span: a payment or a journal/document. */
async function workClaimed(
  pool: pg.Pool,
  target: ErpTarget,
  limiter: RateLimiter,
  next: ClaimedRow,
  outcome: DrainOutcome,
  policy: RetryPolicy,
  log: LogLine | undefined,
): Promise<void> {
  const { row, chain } = next;
  await withCorrelation(chain, log, () =>
    inSpan(
      SPANS.outboxPost,
      {
        [ATTRIBUTES.connector]: row.target,
        [ATTRIBUTES.outboxKey]: row.key,
        'accrue.attempt': row.attempts,
        ...(chain
          ? correlationAttributes({
              correlation: chain.correlation_id,
              rating_run: chain.rating_run,
              invoice: chain.invoice,
              journal: chain.journal,
            })
          : {}),
      },
      () =>
        row.document_kind === 'payment'
          ? processPayment(pool, target, limiter, row, next.payment, outcome, policy)
          : processRow(pool, target, limiter, row, next.journal, next.document, outcome, policy),
    ),
  );
}

const readJournalsById = (pool: pg.Pool, ids: string[]): Promise<Journal[]> => readJournals(pool, { ids });

/** Entries still pending for a target: what a drain has left to settle. */
export async function countPending(pool: pg.Pool, target: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>("SELECT count(*) AS n FROM outbox WHERE target = $1 AND status = 'pending'", [target]);
  return Number(rows[0]!.n);
}

// ---------- dead-letter queue ----------

export async function listDeadLetters(pool: pg.Pool, target?: string) {
  return (
    await pool.query(
      `SELECT id, key, target, document_id, attempts, last_error, created_at FROM outbox WHERE status = 'dead' AND ($1::text IS NULL OR target = $1) ORDER BY id`,
      [target ?? null],
    )
  ).rows;
}

/** Puts a dead entry back in line; the next drain looks it up at the target first, so a replay posts at most once. */
export async function replayDeadLetter(pool: pg.Pool, id: string, actor = 'system:dlq'): Promise<boolean> {
  return transaction(pool, async (client) => {
    const result = await client.query<{
      key: string;
      target: string;
      document_id: string;
      replays: number;
      last_error: { message?: unknown } | null;
    }>(
      `UPDATE outbox SET status = 'pending', failures = 0, next_attempt_at = now(), lease_until = NULL, replays = replays + 1 WHERE id = $1 AND status = 'dead'
       RETURNING key, target, document_id, replays, last_error`,
      [id],
    );
    const row = result.rows[0];
    if (!row) return false;
    const message = row.last_error?.message;
    await appendAudit(client, {
      actor,
      action: 'outbox.replay',
      subject: row.document_id,
      details: {
        target: row.target,
        key: row.key,
        outbox_id: id,
        replays: row.replays,
        last_error: typeof message === 'string' ? message.slice(0, AUDIT_ERROR_CHARS_MAX) : null,
      },
    });
    return true;
  });
}
