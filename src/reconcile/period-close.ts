// Closing an accounting period is gated by reconciliation: the period is reconciled first, and it closes only when
// every exception of that legal entity and period is resolved or waived. A closed period is locked: journals dated
// in it are refused or moved by the policy in src/post/journals.ts.
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import { checkpointAfterClose, type CheckpointOutcome, type CheckpointSink } from '../audit/checkpoints.js';
import { fail, ok, problem, type Problem, type Result } from '../domain/result.js';
import type { ErpTarget } from '../post/target.js';
import { transaction } from '../store/store.js';
import { reconcilePeriod, type ReconcileReport } from './run.js';

export interface OpenException {
  id: string;
  checkpoint: string | null;
  kind: string;
  item: string;
  owner_queue: string;
  status: string;
  assigned_to: string | null;
}

export interface PeriodClosed {
  legal_entity: string;
  period: string;
  closed_at: string;
  closed_by: string;
  already_closed: boolean;
}

export interface PeriodCloseOutcome {
  result: Result<PeriodClosed>;
  /** The exceptions that hold the close (empty once closed). */
  open: OpenException[];
  /** The reconciliation run before closing; absent when the period was already closed. */
  reconciliation?: ReconcileReport;
  /** The signed checkpoint of the audit chain written after this close committed, or why none was; absent when no close happened. */
  audit_checkpoint?: CheckpointOutcome;
}

/** Limit: open exceptions named one by one in a refusal; the rest are counted. */
export const REFUSAL_LISTED_MAX = 50;

export async function closeAccountingPeriod(
  pool: pg.Pool,
  input: { legalEntity: string; period: string; by: string; connectors?: readonly ErpTarget[]; checkpoint?: CheckpointSink },
): Promise<PeriodCloseOutcome> {
  const by = input.by?.trim() ?? '';
  if (by === '') return { result: fail(problem('by', 'required', 'must name who closes the period')), open: [] };
  const already = await alreadyClosed(pool, input.legalEntity, input.period);
  if (already) return { result: ok(already), open: [] };
  // Checks the entity and period (ProblemError) and records every difference before the gate is read.
  const reconciliation = await reconcilePeriod(pool, {
    period: input.period,
    legalEntity: input.legalEntity,
    connectors: input.connectors ?? [],
    actor: 'system:period-close',
  });
  const outcome = await transaction(pool, async (client): Promise<PeriodCloseOutcome> => {
    // The same lock as the reconciliation recorder: no exception is opened between this check and the close.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`reconcile:${input.legalEntity}:${input.period}`]);
    const open = await openExceptions(client, input.legalEntity, input.period);
    if (open.length > 0) return { result: fail(...refusal(open)), open, reconciliation };
    const closed = await closePeriod(client, { legalEntity: input.legalEntity, period: input.period, by }, reconciliation);
    return { result: ok(closed), open: [], reconciliation };
  });
  // Committed: anchor the audit chain outside the database; a failed checkpoint does not reopen the period.
  if (!outcome.result.ok) return outcome;
  return { ...outcome, audit_checkpoint: await checkpointAfterClose(pool, input.checkpoint) };
}

/** The period as already closed, or undefined when it is open. */
async function alreadyClosed(pool: pg.Pool, legalEntity: string, period: string): Promise<PeriodClosed | undefined> {
  const row = (
    await pool.query<{ closed_at: Date; closed_by: string | null }>(
      "SELECT closed_at, closed_by FROM accounting_periods WHERE legal_entity = $1 AND period = $2 AND status = 'closed'",
      [legalEntity, period],
    )
  ).rows[0];
  if (!row) return undefined;
  return {
    legal_entity: legalEntity,
    period,
    closed_at: row.closed_at.toISOString(),
    closed_by: row.closed_by ?? '',
    already_closed: true,
  };
}

/** The exceptions of the entity and period still open or assigned: what holds the close. */
async function openExceptions(client: pg.PoolClient, legalEntity: string, period: string): Promise<OpenException[]> {
  return (
    await client.query<OpenException>(
      `SELECT id, checkpoint, kind, coalesce(item, subject) AS item, owner_queue, status, assigned_to FROM exceptions
        WHERE legal_entity = $1 AND period = $2 AND status IN ('open', 'assigned') ORDER BY owner_queue, checkpoint NULLS LAST, id`,
      [legalEntity, period],
    )
  ).rows;
}

/** The refusal: the first REFUSAL_LISTED_MAX open exceptions one by one, the rest counted. */
function refusal(open: readonly OpenException[]): Problem[] {
  const problems: Problem[] = open
    .slice(0, REFUSAL_LISTED_MAX)
    .map((e) =>
      problem(
        `exceptions[${e.id}]`,
        'open_exception',
        `${e.checkpoint ?? e.kind} ${e.item} is ${e.status}${e.assigned_to ? ` (assigned to ${e.assigned_to})` : ''} in ${e.owner_queue}; resolve or waive it first`,
      ),
    );
  if (open.length > REFUSAL_LISTED_MAX)
    problems.push(problem('exceptions', 'open_exceptions', `and ${open.length - REFUSAL_LISTED_MAX} more open exceptions`));
  return problems;
}

/** Marks the period closed and audits the close with the reconciliation and the exceptions settled per status. */
async function closePeriod(
  client: pg.PoolClient,
  close: { legalEntity: string; period: string; by: string },
  reconciliation: ReconcileReport,
): Promise<PeriodClosed> {
  const { legalEntity, period, by } = close;
  const closed = (
    await client.query<{ closed_at: Date }>(
      `INSERT INTO accounting_periods (legal_entity, period, status, closed_at, closed_by) VALUES ($1, $2, 'closed', now(), $3)
       ON CONFLICT (legal_entity, period) DO UPDATE SET status = 'closed', closed_at = now(), closed_by = $3 RETURNING closed_at`,
      [legalEntity, period, by],
    )
  ).rows[0]!;
  const settled = (
    await client.query<{ status: string; n: number }>(
      'SELECT status, count(*)::int AS n FROM exceptions WHERE legal_entity = $1 AND period = $2 GROUP BY status ORDER BY status',
      [legalEntity, period],
    )
  ).rows;
  await appendAudit(client, {
    actor: by,
    action: 'accounting_period.close',
    subject: `${legalEntity}:${period}`,
    details: {
      legal_entity: legalEntity,
      period,
      reconciliation: reconciliation.status,
      connectors: reconciliation.connectors,
      exceptions: Object.fromEntries(settled.map((r) => [r.status, r.n])),
    },
  });
  return { legal_entity: legalEntity, period, closed_at: closed.closed_at.toISOString(), closed_by: by, already_closed: false };
}
