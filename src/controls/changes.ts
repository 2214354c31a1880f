// Change requests (maker-checker): a money-moving change is proposed with the exact payload that will be applied and a
// readable diff, and comes into force only when a different principal with the controller role approves it. The
// database is the last guard (migration 025: no decision by the requester, none by a non-controller, nothing edited
// once decided); these functions refuse the same things first with problems that name them.
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import { canonicalJson } from '../domain/canonical.js';
import { auditActor, entityVisible, rolesGrant, type Actor, type ChangeKind } from '../domain/controls.js';
import { ProblemError } from '../domain/result.js';
import { transaction } from '../store/store.js';

export const CHANGE_STATUSES = ['pending', 'approved', 'rejected', 'cancelled'] as const;
export type ChangeStatus = (typeof CHANGE_STATUSES)[number];

export interface ChangeRequest {
  id: string;
  kind: ChangeKind;
  subject: string;
  legal_entity: string | null;
  summary: string;
  diff: string;
  payload: unknown;
  payload_hash: string;
  reason: string | null;
  requested_by: string;
  requested_by_name: string;
  requested_at: string;
  status: ChangeStatus;
  decided_by: string | null;
  decided_by_name: string | null;
  decided_at: string | null;
  decision_note: string | null;
  result: unknown;
}

export interface ProposeInput {
  kind: ChangeKind;
  subject: string;
  legalEntity?: string;
  summary: string;
  diff: string;
  payload: unknown;
  reason?: string;
}

/** SHA-256 of the payload's RFC 8785 canonical JSON: what the approver approved, byte for byte. */
export const payloadHash = (payload: unknown): string => createHash('sha256').update(canonicalJson(payload)).digest('hex');

const at = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const SELECT = `SELECT c.id, c.kind, c.subject, c.legal_entity, c.summary, c.diff, c.payload, c.payload_hash, c.reason,
       c.requested_by, r.name AS requested_by_name, ${at('c.requested_at')} AS requested_at, c.status, c.decided_by,
       d.name AS decided_by_name, ${at('c.decided_at')} AS decided_at, c.decision_note, c.result
  FROM change_requests c JOIN principals r ON r.id = c.requested_by LEFT JOIN principals d ON d.id = c.decided_by`;

const refused = (status: number, path: string, code: string, message: string) => new ProblemError([{ path, code, message }], status);

/**
 * Records a proposal. The same payload proposed again while the first is pending returns the first (idempotent); a
 * different payload for the same subject is a conflict until the first is decided or cancelled.
 */
export async function proposeChange(
  pool: pg.Pool,
  actor: Actor,
  input: ProposeInput,
): Promise<{ request: ChangeRequest; created: boolean }> {
  try {
    return await proposeOnce(pool, actor, input);
  } catch (error) {
    const problem = refusal(error);
    if (problem)
      await recordRefusal(pool, actor, 'change.propose_refused', input.subject, {
        attempted: 'propose',
        ...problem,
        kind: input.kind,
        subject: input.subject,
        legal_entity: input.legalEntity ?? null,
        summary: input.summary,
      });
    throw error;
  }
}

async function proposeOnce(pool: pg.Pool, actor: Actor, input: ProposeInput): Promise<{ request: ChangeRequest; created: boolean }> {
  if (actor.dev)
    throw refused(409, 'ACCRUE_API_KEY', 'development_mode', 'development mode applies changes at once; a proposal needs a principal');
  if (!rolesGrant(actor.roles, 'change.propose'))
    throw refused(403, 'ACCRUE_API_KEY', 'forbidden', `${actor.name} may not propose changes (the operator role may)`);
  if (input.legalEntity === undefined ? actor.entities.length > 0 : !entityVisible(actor, input.legalEntity))
    throw refused(
      403,
      'legal_entity',
      'forbidden',
      `this key is limited to ${actor.entities.join(', ')}; the change concerns ${input.legalEntity ?? 'every entity'}`,
    );
  const hash = payloadHash(input.payload);
  return transaction(pool, async (client) => {
    const open = (
      await client.query<ChangeRequest>(`${SELECT} WHERE c.kind = $1 AND c.subject = $2 AND c.status = 'pending' FOR UPDATE OF c`, [
        input.kind,
        input.subject,
      ])
    ).rows[0];
    if (open) {
      if (open.payload_hash === hash) return { request: open, created: false };
      throw refused(
        409,
        'subject',
        'pending_change',
        `change ${open.id} for ${input.kind} ${input.subject} is pending with other content; have it decided or cancelled first`,
      );
    }
    const id = `chg_${randomBytes(8).toString('hex')}`;
    await client.query(
      `INSERT INTO change_requests (id, kind, subject, legal_entity, summary, diff, payload, payload_hash, reason, requested_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)`,
      [
        id,
        input.kind,
        input.subject,
        input.legalEntity ?? null,
        input.summary,
        input.diff,
        canonicalJson(input.payload),
        hash,
        input.reason ?? null,
        actor.principal,
      ],
    );
    await appendAudit(client, {
      actor: auditActor(actor),
      action: 'change.propose',
      subject: id,
      ...(input.reason === undefined ? {} : { reason: input.reason }),
      details: {
        kind: input.kind,
        subject: input.subject,
        legal_entity: input.legalEntity ?? null,
        payload_hash: hash,
        summary: input.summary,
      },
    });
    const request = (await client.query<ChangeRequest>(`${SELECT} WHERE c.id = $1`, [id])).rows[0]!;
    return { request, created: true };
  });
}

/**
 * Approves or rejects a pending request. An approval runs `apply` (which applies the payload in its own transaction)
 * while the request is locked, and records the approval and the result only once it has succeeded: a failed
 * application leaves the request pending and nothing applied. Appliers are idempotent, so a crash between the
 * application and the approval's commit is repaired by approving again.
 */
export async function decideChange(
  pool: pg.Pool,
  actor: Actor,
  id: string,
  decision: { approve: boolean; note?: string },
  apply: (request: ChangeRequest) => Promise<unknown>,
): Promise<ChangeRequest> {
  try {
    return await decideOnce(pool, actor, id, decision, apply);
  } catch (error) {
    await refusedDecision(pool, actor, id, decision.approve ? 'approve' : 'reject', error);
    throw error;
  }
}

async function decideOnce(
  pool: pg.Pool,
  actor: Actor,
  id: string,
  decision: { approve: boolean; note?: string },
  apply: (request: ChangeRequest) => Promise<unknown>,
): Promise<ChangeRequest> {
  if (actor.dev)
    throw refused(
      403,
      'ACCRUE_API_KEY',
      'development_mode',
      'development mode cannot approve: a second principal with the controller role must',
    );
  if (!rolesGrant(actor.roles, 'change.approve'))
    throw refused(403, 'ACCRUE_API_KEY', 'forbidden', `${actor.name} may not decide change requests (the controller role may)`);
  return transaction(pool, async (client) => {
    const request = await lockVisible(client, actor, id);
    if (request.status !== 'pending') throw refused(409, 'id', 'already_decided', `change ${id} is ${request.status}`);
    if (request.legal_entity === null && actor.entities.length > 0)
      throw refused(403, 'id', 'forbidden', `change ${id} concerns every entity; this key is limited to ${actor.entities.join(', ')}`);
    if (request.requested_by === actor.principal)
      throw refused(403, 'id', 'self_approval', `change ${id} was requested by ${actor.name}: a different principal must decide it`);
    const result = decision.approve ? ((await apply(request)) ?? null) : null;
    await client.query(
      `UPDATE change_requests SET status = $2, decided_by = $3, decided_at = now(), decision_note = $4, result = $5::jsonb WHERE id = $1`,
      [
        id,
        decision.approve ? 'approved' : 'rejected',
        actor.principal,
        decision.note ?? null,
        result === null ? null : canonicalJson(result),
      ],
    );
    await appendAudit(client, {
      actor: auditActor(actor),
      action: decision.approve ? 'change.approve' : 'change.reject',
      subject: id,
      ...(decision.note === undefined ? {} : { reason: decision.note }),
      details: {
        kind: request.kind,
        subject: request.subject,
        payload_hash: request.payload_hash,
        requested_by: request.requested_by,
        result,
      },
    });
    return (await client.query<ChangeRequest>(`${SELECT} WHERE c.id = $1`, [id])).rows[0]!;
  });
}

/** Withdraws a pending request; only its requester may. */
export async function cancelChange(pool: pg.Pool, actor: Actor, id: string, note?: string): Promise<ChangeRequest> {
  try {
    return await cancelOnce(pool, actor, id, note);
  } catch (error) {
    await refusedDecision(pool, actor, id, 'cancel', error);
    throw error;
  }
}

async function cancelOnce(pool: pg.Pool, actor: Actor, id: string, note?: string): Promise<ChangeRequest> {
  return transaction(pool, async (client) => {
    const request = await lockVisible(client, actor, id);
    if (request.requested_by !== actor.principal)
      throw refused(403, 'id', 'not_requester', `only ${request.requested_by_name} may cancel ${id}`);
    if (request.status !== 'pending') throw refused(409, 'id', 'already_decided', `change ${id} is ${request.status}`);
    await client.query(
      `UPDATE change_requests SET status = 'cancelled', decided_by = $2, decided_at = now(), decision_note = $3 WHERE id = $1`,
      [id, actor.principal, note ?? null],
    );
    await appendAudit(client, {
      actor: auditActor(actor),
      action: 'change.cancel',
      subject: id,
      details: { kind: request.kind, subject: request.subject },
    });
    return (await client.query<ChangeRequest>(`${SELECT} WHERE c.id = $1`, [id])).rows[0]!;
  });
}

// ---- refusals ------------------------------------------------------------------------------------------------------
// A refused proposal or decision leaves no trace in its own transaction (it rolls back), so each is recorded after it in
// a transaction of its own, then the refusal is rethrown unchanged. Recorded: every problem answered with a 4xx status
// (forbidden, self-approval, already decided, stale, invalid payload), under the change's id. Not recorded: an id that
// names no change request (404): there is nothing to attach the record to, and recording any id asked for would let a
// key write what it likes into the log. A change that exists but lies outside the key's entities is answered 404 like an
// unknown one, and is recorded (code not_found, its legal_entity in the details), since someone reached for it.

/** The audit actions of refusals (the dashboard and /metrics read them). */
export const REFUSAL_ACTIONS = ['change.refused', 'change.propose_refused'] as const;
export type RefusalAction = (typeof REFUSAL_ACTIONS)[number];

/** What a refusal's audit record says about the problem: the status and the first problem's code and message. */
function refusal(error: unknown): { status: number; code: string; message: string } | undefined {
  if (!(error instanceof ProblemError) || error.status < 400 || error.status >= 500) return undefined;
  const first = error.problems[0];
  return { status: error.status, code: first?.code ?? 'refused', message: first?.message ?? error.message };
}

async function recordRefusal(pool: pg.Pool, actor: Actor, action: RefusalAction, subject: string, details: Record<string, unknown>) {
  await transaction(pool, (client) =>
    appendAudit(client, { actor: auditActor(actor), action, subject, details: { ...details, by: actor.principal, by_name: actor.name } }),
  );
}

async function refusedDecision(pool: pg.Pool, actor: Actor, id: string, attempted: 'approve' | 'reject' | 'cancel', error: unknown) {
  const problem = refusal(error);
  if (!problem) return;
  const request = (
    await pool.query<Pick<ChangeRequest, 'kind' | 'subject' | 'legal_entity' | 'status'>>(
      'SELECT kind, subject, legal_entity, status FROM change_requests WHERE id = $1',
      [id],
    )
  ).rows[0];
  if (!request) return;
  await recordRefusal(pool, actor, 'change.refused', id, {
    attempted,
    ...problem,
    kind: request.kind,
    subject: request.subject,
    legal_entity: request.legal_entity,
    change_status: request.status,
  });
}

async function lockVisible(client: pg.PoolClient, actor: Actor, id: string): Promise<ChangeRequest> {
  const request = (await client.query<ChangeRequest>(`${SELECT} WHERE c.id = $1 FOR UPDATE OF c`, [id])).rows[0];
  if (!request || (request.legal_entity !== null && !entityVisible(actor, request.legal_entity)))
    throw refused(404, 'id', 'not_found', `no change request ${id}`);
  return request;
}

export async function getChange(
  db: pg.Pool | pg.PoolClient,
  actor: Pick<Actor, 'entities'>,
  id: string,
): Promise<ChangeRequest | undefined> {
  const request = (await db.query<ChangeRequest>(`${SELECT} WHERE c.id = $1`, [id])).rows[0];
  return request && (request.legal_entity === null || entityVisible(actor, request.legal_entity)) ? request : undefined;
}

/** Limit: requests one list returns (newest first). */
export const CHANGE_LIST_MAX = 500;

export async function listChanges(
  db: pg.Pool | pg.PoolClient,
  actor: Pick<Actor, 'entities'>,
  filter: { status?: ChangeStatus; kind?: ChangeKind } = {},
): Promise<ChangeRequest[]> {
  const rows = (
    await db.query<ChangeRequest>(
      `${SELECT} WHERE ($1::text IS NULL OR c.status = $1) AND ($2::text IS NULL OR c.kind = $2)
         AND (c.legal_entity IS NULL OR cardinality($3::text[]) = 0 OR c.legal_entity = ANY ($3::text[]))
       ORDER BY c.requested_at DESC, c.id LIMIT ${CHANGE_LIST_MAX}`,
      [filter.status ?? null, filter.kind ?? null, [...actor.entities]],
    )
  ).rows;
  return rows;
}

/** Counts by status, for the dashboard and /metrics. */
export async function changeCounts(db: pg.Pool | pg.PoolClient): Promise<Record<ChangeStatus, number>> {
  const counts: Record<ChangeStatus, number> = { pending: 0, approved: 0, rejected: 0, cancelled: 0 };
  for (const row of (
    await db.query<{ status: ChangeStatus; n: number }>('SELECT status, count(*)::int AS n FROM change_requests GROUP BY status')
  ).rows)
    counts[row.status] = row.n;
  return counts;
}
