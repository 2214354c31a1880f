// The dashboard's Controls view: change requests waiting for a controller (with the diff each one would apply), the
// latest decisions, the latest refusals (read from the audit log, where src/controls/changes.ts records each refused
// proposal, approval, rejection and cancellation) and counts. A key limited to legal entities sees the requests and
// refusals of those entities only; one that concerns every entity (legal_entity NULL) is shown to unlimited keys only.
import type pg from 'pg';
import { REFUSAL_ACTIONS, type RefusalAction } from '../controls/changes.js';
import type { ChangeKind } from '../domain/controls.js';

/** Limits: rows each list returns (newest first; pending: oldest first, the longest waiting on top). */
export const CONTROLS_LIMITS = { pending: 200, decisions: 50, refusals: 50 } as const;

export interface PendingChange {
  id: string;
  kind: ChangeKind;
  subject: string;
  legal_entity: string | null;
  summary: string;
  diff: string;
  reason: string | null;
  requested_by: string;
  requested_by_name: string;
  requested_at: string;
  age_seconds: number;
}

export interface DecidedChange {
  id: string;
  kind: ChangeKind;
  subject: string;
  legal_entity: string | null;
  summary: string;
  status: 'approved' | 'rejected' | 'cancelled';
  requested_by_name: string;
  decided_by_name: string;
  decided_at: string;
  decision_note: string | null;
}

export interface ChangeRefusal {
  seq: string;
  at: string;
  action: RefusalAction;
  /** The change request id (change.refused) or the subject a proposal concerned (change.propose_refused). */
  subject: string;
  actor: string;
  by_name: string | null;
  attempted: string | null;
  status: number | null;
  code: string | null;
  message: string | null;
  kind: string | null;
  legal_entity: string | null;
}

export interface ControlsView {
  counts: { pending: number; approved: number; rejected: number; cancelled: number; refusals: number };
  oldest_pending_seconds: number | null;
  pending: PendingChange[];
  decisions: DecidedChange[];
  refusals: ChangeRefusal[];
}

const at = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
/** Visible to the key: every row for an unlimited key ($1 empty); rows of its entities otherwise (NULL is not one). */
const visible = (column: string) => `(cardinality($1::text[]) = 0 OR ${column} = ANY ($1::text[]))`;

/** The Controls view for a key that sees `entities` (empty: every entity). */
export async function controlsView(db: pg.Pool | pg.PoolClient, entities: readonly string[]): Promise<ControlsView> {
  const scope = [[...entities]];
  const [counts, refusalCount, pending, decisions, refusals] = await Promise.all([
    db.query<{ status: string; n: number; oldest: number | null }>(
      `SELECT status, count(*)::int AS n, floor(extract(epoch FROM now() - min(requested_at)))::bigint::int AS oldest
         FROM change_requests c WHERE ${visible('c.legal_entity')} GROUP BY status`,
      scope,
    ),
    db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE action = ANY ($2::text[]) AND ${visible("details->>'legal_entity'")}`,
      [...scope, [...REFUSAL_ACTIONS]],
    ),
    db.query<PendingChange>(
      `SELECT c.id, c.kind, c.subject, c.legal_entity, c.summary, c.diff, c.reason, c.requested_by, r.name AS requested_by_name,
              ${at('c.requested_at')} AS requested_at, floor(extract(epoch FROM now() - c.requested_at))::bigint::int AS age_seconds
         FROM change_requests c JOIN principals r ON r.id = c.requested_by
        WHERE c.status = 'pending' AND ${visible('c.legal_entity')}
        ORDER BY c.requested_at, c.id LIMIT ${CONTROLS_LIMITS.pending}`,
      scope,
    ),
    db.query<DecidedChange>(
      `SELECT c.id, c.kind, c.subject, c.legal_entity, c.summary, c.status, r.name AS requested_by_name, d.name AS decided_by_name,
              ${at('c.decided_at')} AS decided_at, c.decision_note
         FROM change_requests c JOIN principals r ON r.id = c.requested_by JOIN principals d ON d.id = c.decided_by
        WHERE c.status <> 'pending' AND ${visible('c.legal_entity')}
        ORDER BY c.decided_at DESC, c.id LIMIT ${CONTROLS_LIMITS.decisions}`,
      scope,
    ),
    db.query<ChangeRefusal>(
      `SELECT seq::text, ${at('at')} AS at, action, subject, actor, details->>'by_name' AS by_name, details->>'attempted' AS attempted,
              (details->>'status')::int AS status, details->>'code' AS code, details->>'message' AS message,
              details->>'kind' AS kind, details->>'legal_entity' AS legal_entity
         FROM audit_log WHERE action = ANY ($2::text[]) AND ${visible("details->>'legal_entity'")}
        ORDER BY seq DESC LIMIT ${CONTROLS_LIMITS.refusals}`,
      [...scope, [...REFUSAL_ACTIONS]],
    ),
  ]);
  const count = (status: string) => counts.rows.find((r) => r.status === status)?.n ?? 0;
  return {
    counts: {
      pending: count('pending'),
      approved: count('approved'),
      rejected: count('rejected'),
      cancelled: count('cancelled'),
      refusals: refusalCount.rows[0]?.n ?? 0,
    },
    oldest_pending_seconds: counts.rows.find((r) => r.status === 'pending')?.oldest ?? null,
    pending: pending.rows,
    decisions: decisions.rows,
    refusals: refusals.rows,
  };
}
