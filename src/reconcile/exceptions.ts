// Exceptions in the store: list a queue, show one with its history, and move it through the lifecycle of the pure
// core (assign, resolve with the correcting document, waive with a reason and who). Every move is one transaction
// that updates the row, appends to exception_events and to the audit log.
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import { fail, invariant, ok, problem, type Problem, type Result } from '../domain/result.js';
import { appendExceptionEvent } from '../store/exceptions.js';
import { transaction } from '../store/store.js';
import {
  applyTransition,
  type CheckpointId,
  type DifferenceKind,
  type ExceptionAction,
  type ExceptionStatus,
  type OwnerQueue,
  type ReconException,
} from './checkpoints.js';

export const EXCEPTION_STATUSES: readonly ExceptionStatus[] = ['open', 'assigned', 'resolved', 'waived'];
export const OWNER_QUEUES: readonly OwnerQueue[] = ['billing_engineering', 'integration_support', 'finance_operations'];
/** Limit: rows one list returns. */
export const EXCEPTIONS_LIST_MAX = 1000;

export interface ExceptionRecord {
  id: string;
  kind: string;
  owner_queue: OwnerQueue;
  status: ExceptionStatus;
  subject: string;
  checkpoint: CheckpointId | null; // null: a settlement exception (payment_overpayment, ...)
  period: string | null;
  legal_entity: string | null;
  customer: string | null;
  currency: string | null;
  connector: string | null;
  item: string | null;
  left_amount: string | null;
  right_amount: string | null;
  difference: string | null;
  documents: Array<{ kind: string; id: string; connector?: string }>;
  details: unknown;
  assigned_to: string | null;
  resolution_document: string | null;
  waived_reason: string | null;
  waived_by: string | null;
  created_at: string;
  updated_at: string;
  last_seen_at: string | null;
  cleared_at: string | null;
}

export interface ExceptionEventRecord {
  ordinal: number;
  action: string;
  from_status: ExceptionStatus | null;
  to_status: ExceptionStatus;
  actor: string;
  at: string;
  reason: string | null;
  details: unknown;
}

const COLUMNS = `id, kind, owner_queue, status, subject, checkpoint, period, legal_entity, customer, currency, connector, item,
  left_amount, right_amount, difference, documents, details, assigned_to, resolution_document, waived_reason, waived_by,
  created_at, updated_at, last_seen_at, cleared_at`;

type Row = Omit<ExceptionRecord, 'created_at' | 'updated_at' | 'last_seen_at' | 'cleared_at'> & {
  created_at: Date;
  updated_at: Date;
  last_seen_at: Date | null;
  cleared_at: Date | null;
};

const fromRow = (row: Row): ExceptionRecord => ({
  ...row,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
  last_seen_at: row.last_seen_at?.toISOString() ?? null,
  cleared_at: row.cleared_at?.toISOString() ?? null,
});

export interface ExceptionFilter {
  queue?: string;
  /** A status, or `unresolved` for open and assigned together. */
  status?: string;
  period?: string;
  legalEntity?: string;
  /** Only these legal entities' exceptions (a key's entity limit); absent: every entity. */
  legalEntities?: readonly string[];
  checkpoint?: string;
  limit?: number;
}

export function checkFilter(filter: ExceptionFilter): Result<ExceptionFilter> {
  const problems: Problem[] = [];
  if (filter.queue !== undefined && !OWNER_QUEUES.includes(filter.queue as OwnerQueue))
    problems.push(problem('queue', 'unknown_queue', `must be one of ${OWNER_QUEUES.join(', ')}`));
  if (filter.status !== undefined && filter.status !== 'unresolved' && !EXCEPTION_STATUSES.includes(filter.status as ExceptionStatus)) {
    problems.push(problem('status', 'unknown_status', `must be one of ${EXCEPTION_STATUSES.join(', ')} or unresolved`));
  }
  if (filter.period !== undefined && !/^\d{4}-(0[1-9]|1[0-2])$/.test(filter.period))
    problems.push(problem('period', 'not_period', 'must be a month as YYYY-MM'));
  if (filter.limit !== undefined && (!Number.isSafeInteger(filter.limit) || filter.limit < 1 || filter.limit > EXCEPTIONS_LIST_MAX)) {
    problems.push(problem('limit', 'out_of_range', `must be a whole number from 1 to ${EXCEPTIONS_LIST_MAX}`));
  }
  return problems.length > 0 ? fail(...problems) : ok(filter);
}

/** Exceptions matching the filter, oldest first. */
export async function listExceptions(db: pg.Pool | pg.PoolClient, filter: ExceptionFilter = {}): Promise<Result<ExceptionRecord[]>> {
  const checked = checkFilter(filter);
  if (!checked.ok) return checked;
  const statuses = filter.status === undefined ? null : filter.status === 'unresolved' ? ['open', 'assigned'] : [filter.status];
  const rows = (
    await db.query<Row>(
      `SELECT ${COLUMNS} FROM exceptions
        WHERE ($1::text IS NULL OR owner_queue = $1) AND ($2::text[] IS NULL OR status = ANY($2)) AND ($3::text IS NULL OR period = $3)
          AND ($4::text IS NULL OR legal_entity = $4) AND ($5::text IS NULL OR checkpoint = $5)
          AND ($7::text[] IS NULL OR legal_entity = ANY($7))
        ORDER BY created_at, id LIMIT $6`,
      [
        filter.queue ?? null,
        statuses,
        filter.period ?? null,
        filter.legalEntity ?? null,
        filter.checkpoint ?? null,
        filter.limit ?? 100,
        filter.legalEntities ?? null,
      ],
    )
  ).rows;
  return ok(rows.map(fromRow));
}

export async function getException(
  db: pg.Pool | pg.PoolClient,
  id: string,
): Promise<{ exception: ExceptionRecord; events: ExceptionEventRecord[] } | undefined> {
  const row = (await db.query<Row>(`SELECT ${COLUMNS} FROM exceptions WHERE id = $1`, [id])).rows[0];
  if (!row) return undefined;
  const events = (
    await db.query<Omit<ExceptionEventRecord, 'at'> & { at: Date }>(
      'SELECT ordinal, action, from_status, to_status, actor, at, reason, details FROM exception_events WHERE exception_id = $1 ORDER BY ordinal',
      [id],
    )
  ).rows.map((e) => ({ ...e, at: e.at.toISOString() }));
  return { exception: fromRow(row), events };
}

/** The HTTP status of a refused move: 404 unknown id, 409 a move the lifecycle does not allow, 400 missing facts. */
export function problemStatus(problems: readonly Problem[]): 400 | 404 | 409 {
  if (problems.some((p) => p.code === 'not_found')) return 404;
  if (problems.some((p) => p.code === 'terminal' || p.code === 'not_allowed')) return 409;
  return 400;
}

export type ExceptionMove =
  | { action: 'assign'; assignee: string; by: string; note?: string }
  | { action: 'resolve'; correcting_document: string; by: string; note?: string }
  | { action: 'waive'; reason: string; by: string };

// The core's lifecycle reads the status and id; the other fields come along for its messages and history.
function asCoreException(row: ExceptionRecord): ReconException {
  return {
    id: row.id,
    checkpoint: (row.checkpoint ?? row.kind) as CheckpointId,
    connector: row.connector,
    key: {
      legal_entity: row.legal_entity ?? '',
      customer: row.customer ?? '',
      currency: row.currency ?? '',
      item: row.item ?? row.subject,
    },
    kind: row.kind as DifferenceKind,
    left: row.left_amount,
    right: row.right_amount,
    difference: row.difference ?? '0',
    owner_queue: row.owner_queue,
    status: row.status,
    opened_at: row.created_at,
    history: [],
  };
}

/** What a correcting document is in Accrue, when it is one (an ERP adjustment is accepted by its id as given). */
async function documentKind(client: pg.PoolClient, id: string): Promise<string | null> {
  const found = (
    await client.query<{ kind: string }>(
      `SELECT kind FROM (
         SELECT kind, 1 AS rank FROM invoices WHERE id = $1 OR number = $1
         UNION ALL SELECT 'journal', 2 FROM journals WHERE id = $1
         UNION ALL SELECT 'payment', 3 FROM payments WHERE id = $1) d ORDER BY rank LIMIT 1`,
      [id],
    )
  ).rows[0];
  return found?.kind ?? null;
}

/** The core's action for a requested move, its names trimmed. */
function coreAction(move: ExceptionMove, at: string): ExceptionAction {
  if (move.action === 'assign') return { action: 'assign', assignee: move.assignee?.trim() ?? '', by: move.by?.trim() ?? '', at };
  if (move.action === 'resolve')
    return { action: 'resolve', correcting_document: move.correcting_document?.trim() ?? '', by: move.by?.trim() ?? '', at };
  return { action: 'waive', reason: move.reason?.trim() ?? '', by: move.by?.trim() ?? '', at };
}

/** Applies one move: the lifecycle's rules from the core, then the row, its history and the audit log, in one transaction. */
export async function moveException(pool: pg.Pool, id: string, move: ExceptionMove): Promise<Result<ExceptionRecord>> {
  return transaction(pool, async (client) => {
    const row = (await client.query<Row>(`SELECT ${COLUMNS} FROM exceptions WHERE id = $1 FOR UPDATE`, [id])).rows[0];
    if (!row) return fail(problem('id', 'not_found', `no exception ${id}`));
    const current = fromRow(row);
    const action = coreAction(move, new Date().toISOString());
    const moved = applyTransition(asCoreException(current), action);
    if (!moved.ok) return moved;
    const next = moved.value;
    const by = action.by;
    let reason: string | null;
    let details: Record<string, unknown>;
    if (action.action === 'assign') {
      await client.query('UPDATE exceptions SET status = $2, assigned_to = $3, updated_at = now() WHERE id = $1', [
        id,
        next.status,
        action.assignee,
      ]);
      details = { assignee: action.assignee, previous_assignee: current.assigned_to };
      reason = move.action === 'assign' ? (move.note ?? null) : null;
    } else if (action.action === 'resolve') {
      const kind = await documentKind(client, action.correcting_document);
      const documents = [...current.documents, { kind: 'correcting', id: action.correcting_document }];
      await client.query('UPDATE exceptions SET status = $2, resolution_document = $3, documents = $4, updated_at = now() WHERE id = $1', [
        id,
        next.status,
        action.correcting_document,
        JSON.stringify(documents),
      ]);
      details = { correcting_document: action.correcting_document, document_kind: kind };
      reason = move.action === 'resolve' ? (move.note ?? null) : null;
    } else {
      await client.query('UPDATE exceptions SET status = $2, waived_reason = $3, waived_by = $4, updated_at = now() WHERE id = $1', [
        id,
        next.status,
        action.reason,
        by,
      ]);
      details = {};
      reason = action.reason;
    }
    await appendExceptionEvent(client, {
      exception_id: id,
      action: action.action,
      from_status: current.status,
      to_status: next.status,
      actor: by,
      reason,
      details,
    });
    const updated = (await client.query<Row>(`SELECT ${COLUMNS} FROM exceptions WHERE id = $1`, [id])).rows[0];
    invariant(updated !== undefined && updated.status === next.status, `exception ${id} moved to ${next.status}`);
    // Last step: the audit head stays locked until commit (src/audit/log.ts).
    await appendAudit(client, {
      actor: by,
      action: `exception.${action.action}`,
      subject: id,
      ...(reason === null ? {} : { reason }),
      details: {
        from: current.status,
        to: next.status,
        checkpoint: current.checkpoint,
        kind: current.kind,
        period: current.period,
        legal_entity: current.legal_entity,
        ...details,
      },
    });
    return ok(fromRow(updated));
  });
}

export const assignException = (pool: pg.Pool, id: string, input: { assignee: string; by: string; note?: string }) =>
  moveException(pool, id, { action: 'assign', ...input });
export const resolveException = (pool: pg.Pool, id: string, input: { correcting_document: string; by: string; note?: string }) =>
  moveException(pool, id, { action: 'resolve', ...input });
export const waiveException = (pool: pg.Pool, id: string, input: { reason: string; by: string }) =>
  moveException(pool, id, { action: 'waive', ...input });
