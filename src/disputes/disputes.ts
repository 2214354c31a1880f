// Disputes: a customer contests one line of a finalized invoice. Opened with the line's explain walk attached, in an
// owner queue (a team; a person once assigned), closed by a credit note (a change request a controller approves:
// src/disputes/credit.ts and src/controls/credit-notes.ts) or by a rejection with a reason. Every move is one
// transaction that writes the row and the audit log; the database keeps a closed dispute final (migration 029).
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import { auditActor, entityVisible, type Actor } from '../domain/controls.js';
import { disputeIdOf, disputeKey } from '../domain/keys.js';
import { formatMajor } from '../domain/money.js';
import { ProblemError, type Problem } from '../domain/result.js';
import { findInvoice } from '../explain/documents.js';
import { fromDocument } from '../invoice/store.js';
import { OWNER_QUEUES } from '../reconcile/exceptions.js';
import { transaction } from '../store/store.js';
import { disputableLine } from './amounts.js';
import { reversingCreditNote } from './standing.js';
import { walkOfLine, type DisputeWalk } from './walk.js';

export const DISPUTE_STATUSES = ['open', 'resolved', 'rejected'] as const;
export type DisputeStatus = (typeof DISPUTE_STATUSES)[number];
/** The teams a dispute can wait in: the exceptions' owner queues. A new dispute waits in finance_operations. */
export const DISPUTE_QUEUES: readonly string[] = OWNER_QUEUES;
export const DISPUTE_QUEUE_DEFAULT = 'finance_operations';
/** Limits: disputes one list returns; characters of a reason. */
export const DISPUTE_LIST_MAX = 500;
export const DISPUTE_REASON_CHARS_MAX = 2000;

export interface Dispute {
  id: string;
  key: string;
  invoice_id: string;
  invoice_number: string | null;
  line_no: number;
  legal_entity: string;
  customer: string;
  currency: string;
  reason: string;
  queue: string;
  assignee: string | null;
  status: DisputeStatus;
  walk: DisputeWalk;
  opened_by: string;
  opened_at: string;
  change_request: string | null;
  change_status: string | null;
  credit_note: string | null;
  credit_note_number: string | null;
  credit: string | null; // major units, tax included
  rejection: string | null;
  closed_by: string | null;
  closed_at: string | null;
}

const at = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const SELECT = `SELECT d.id, d.key, d.invoice_id, i.number AS invoice_number, d.line_no, d.legal_entity, d.customer, d.currency, d.reason,
       d.queue, d.assignee, d.status, d.walk, d.opened_by, ${at('d.opened_at')} AS opened_at, d.change_request, c.status AS change_status,
       d.credit_note, cn.number AS credit_note_number, d.credit_minor::text AS credit_minor, d.rejection, d.closed_by,
       ${at('d.closed_at')} AS closed_at
  FROM disputes d JOIN invoices i ON i.id = d.invoice_id LEFT JOIN change_requests c ON c.id = d.change_request
  LEFT JOIN invoices cn ON cn.id = d.credit_note`;

type Row = Omit<Dispute, 'credit'> & { credit_minor: string | null };
const fromRow = ({ credit_minor, ...row }: Row): Dispute => ({
  ...row,
  credit: credit_minor === null ? null : formatMajor(BigInt(credit_minor), row.currency),
});

const refused = (status: number, path: string, code: string, message: string) => new ProblemError([{ path, code, message }], status);

export interface OpenInput {
  invoice: string; // id or number
  line: number;
  reason: string;
  queue?: string;
}

function checkOpen(input: OpenInput): void {
  const problems: Problem[] = [];
  if (!Number.isSafeInteger(input.line) || input.line < 1)
    problems.push({
      path: 'line',
      code: 'invalid',
      message: 'must be an invoice line number (1, 2, … as `accrue invoices show` lists them)',
    });
  if (input.reason.trim() === '') problems.push({ path: 'reason', code: 'required', message: 'a dispute says what the customer contests' });
  if (input.reason.length > DISPUTE_REASON_CHARS_MAX)
    problems.push({ path: 'reason', code: 'too_long', message: `at most ${DISPUTE_REASON_CHARS_MAX} characters` });
  if (input.queue !== undefined && !DISPUTE_QUEUES.includes(input.queue))
    problems.push({ path: 'queue', code: 'unknown_queue', message: `must be one of ${DISPUTE_QUEUES.join(', ')}` });
  if (problems.length > 0) throw new ProblemError(problems, 400);
}

/** The invoice and line a dispute may be opened on: a charge of a finalized invoice in force that the actor may see. */
async function disputedLine(pool: pg.Pool, actor: Actor, input: OpenInput) {
  const found = await findInvoice(pool, input.invoice);
  if (!found.ok) throw new ProblemError(found.problems, found.problems.some((p) => p.code === 'not_found') ? 404 : 400);
  const row = found.value;
  if (!entityVisible(actor, row.legal_entity)) throw refused(404, 'invoice', 'not_found', `no invoice ${JSON.stringify(input.invoice)}`);
  const name = row.number ?? row.id;
  if (row.kind !== 'invoice') throw refused(409, 'invoice', 'not_an_invoice', `${name} is a credit note; dispute the invoice it corrects`);
  if (row.status !== 'finalized')
    throw refused(409, 'invoice', 'not_finalized', `${name} is ${row.status}; only a finalized invoice is disputed`);
  const invoice = fromDocument(row.document);
  const line = invoice.lines.find((l) => l.line_no === input.line);
  if (!line) throw refused(400, 'line', 'no_such_line', `${name} has lines 1 to ${invoice.lines.length}; there is no line ${input.line}`);
  if (!disputableLine(line))
    throw refused(
      400,
      'line',
      'not_disputable',
      `line ${input.line} of ${name} is a ${line.kind} line of ${formatMajor(line.amount_minor, row.currency)}; a dispute contests a charge with an amount`,
    );
  const reversed = await reversingCreditNote(pool, row.id);
  if (reversed)
    throw refused(409, 'invoice', 'reversed', `${name} was reversed by credit note ${reversed}; dispute the invoice that replaced it`);
  return { row, name };
}

/**
 * Opens a dispute of one line of a finalized invoice, with the line's explain walk. Opening the same line again with
 * the same reason while it is open returns the open dispute; another reason is a conflict until it is closed.
 */
export async function openDispute(pool: pg.Pool, actor: Actor, input: OpenInput): Promise<{ dispute: Dispute; created: boolean }> {
  checkOpen(input);
  const { row, name } = await disputedLine(pool, actor, input);
  const walk = await walkOfLine(pool, row.id, input.line);
  return transaction(pool, async (client) => {
    // One opener of a line at a time: the count of its disputes gives the next key.
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 31))', [`dispute:${row.id}:${input.line}`]);
    const open = (
      await client.query<Row>(`${SELECT} WHERE d.invoice_id = $1 AND d.line_no = $2 AND d.status = 'open'`, [row.id, input.line])
    ).rows[0];
    if (open) {
      if (open.reason === input.reason) return { dispute: fromRow(open), created: false };
      throw refused(409, 'line', 'dispute_open', `line ${input.line} of ${name} is disputed already (${open.id}); close it first`);
    }
    const n = (
      await client.query<{ n: number }>('SELECT count(*)::int AS n FROM disputes WHERE invoice_id = $1 AND line_no = $2', [
        row.id,
        input.line,
      ])
    ).rows[0]!.n;
    const key = disputeKey(row.id, input.line, n + 1);
    const id = disputeIdOf(key);
    await client.query(
      `INSERT INTO disputes (id, key, invoice_id, line_no, legal_entity, customer, currency, reason, queue, walk, opened_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11)`,
      [
        id,
        key,
        row.id,
        input.line,
        row.legal_entity,
        row.customer,
        row.currency,
        input.reason,
        input.queue ?? DISPUTE_QUEUE_DEFAULT,
        JSON.stringify(walk),
        auditActor(actor),
      ],
    );
    await appendAudit(client, {
      actor: auditActor(actor),
      action: 'dispute.open',
      subject: id,
      reason: input.reason,
      details: {
        invoice: row.id,
        number: row.number,
        line_no: input.line,
        legal_entity: row.legal_entity,
        customer: row.customer,
        queue: input.queue ?? DISPUTE_QUEUE_DEFAULT,
        correlation_id: walk.correlation_id,
      },
    });
    return { dispute: fromRow((await client.query<Row>(`${SELECT} WHERE d.id = $1`, [id])).rows[0]!), created: true };
  });
}

/** The open dispute, locked in the caller's transaction; 404 when the actor may not see it, 409 when it is closed. */
export async function lockOpenDispute(client: pg.PoolClient, actor: Pick<Actor, 'entities'>, id: string): Promise<Dispute> {
  const row = (await client.query<Row>(`${SELECT} WHERE d.id = $1 FOR UPDATE OF d`, [id])).rows[0];
  if (!row || !entityVisible(actor, row.legal_entity)) throw refused(404, 'id', 'not_found', `no dispute ${id}`);
  if (row.status !== 'open') throw refused(409, 'id', 'closed', `dispute ${id} is ${row.status}`);
  return fromRow(row);
}

/** Assigns a dispute to a team (one of DISPUTE_QUEUES) or to a person (an enabled principal, by name). */
export async function assignDispute(pool: pg.Pool, actor: Actor, id: string, assignee: string, note?: string): Promise<Dispute> {
  return transaction(pool, async (client) => {
    const dispute = await lockOpenDispute(client, actor, id);
    let to: { queue: string; assignee: string | null };
    if (DISPUTE_QUEUES.includes(assignee)) to = { queue: assignee, assignee: null };
    else {
      const person = (
        await client.query<{ name: string }>('SELECT name FROM principals WHERE name = $1 AND disabled_at IS NULL', [assignee])
      ).rows[0];
      if (!person)
        throw refused(
          400,
          'assignee',
          'unknown_assignee',
          `${JSON.stringify(assignee)} is neither a team (${DISPUTE_QUEUES.join(', ')}) nor an enabled principal`,
        );
      to = { queue: dispute.queue, assignee: person.name };
    }
    await client.query('UPDATE disputes SET queue = $2, assignee = $3 WHERE id = $1', [id, to.queue, to.assignee]);
    await appendAudit(client, {
      actor: auditActor(actor),
      action: 'dispute.assign',
      subject: id,
      ...(note ? { reason: note } : {}),
      details: { from: { queue: dispute.queue, assignee: dispute.assignee }, to },
    });
    return fromRow((await client.query<Row>(`${SELECT} WHERE d.id = $1`, [id])).rows[0]!);
  });
}

/** Rejects a dispute with the reason: nothing is credited, so no second person is needed. Refused while a credit note is pending. */
export async function rejectDispute(pool: pg.Pool, actor: Actor, id: string, reason: string): Promise<Dispute> {
  if (reason.trim() === '') throw refused(400, 'reason', 'required', 'a rejection says why the charge stands');
  if (reason.length > DISPUTE_REASON_CHARS_MAX) throw refused(400, 'reason', 'too_long', `at most ${DISPUTE_REASON_CHARS_MAX} characters`);
  return transaction(pool, async (client) => {
    const dispute = await lockOpenDispute(client, actor, id);
    if (dispute.change_status === 'pending')
      throw refused(
        409,
        'id',
        'resolution_pending',
        `credit note change ${dispute.change_request} is pending for ${id}; have it rejected or cancelled first`,
      );
    await client.query("UPDATE disputes SET status = 'rejected', rejection = $2, closed_by = $3, closed_at = now() WHERE id = $1", [
      id,
      reason,
      auditActor(actor),
    ]);
    await appendAudit(client, {
      actor: auditActor(actor),
      action: 'dispute.reject',
      subject: id,
      reason,
      details: { invoice: dispute.invoice_id, line_no: dispute.line_no, legal_entity: dispute.legal_entity },
    });
    return fromRow((await client.query<Row>(`${SELECT} WHERE d.id = $1`, [id])).rows[0]!);
  });
}

/** Records that a credit note for the dispute was proposed (the change request an approver decides). */
export async function noteProposedCredit(pool: pg.Pool, actor: Actor, id: string, change: { id: string; summary: string }): Promise<void> {
  await transaction(pool, async (client) => {
    const dispute = await lockOpenDispute(client, actor, id);
    if (dispute.change_request === change.id) return;
    await client.query('UPDATE disputes SET change_request = $2 WHERE id = $1', [id, change.id]);
    await appendAudit(client, {
      actor: auditActor(actor),
      action: 'dispute.credit_proposed',
      subject: id,
      details: { change_request: change.id, summary: change.summary },
    });
  });
}

export async function getDispute(db: pg.Pool | pg.PoolClient, actor: Pick<Actor, 'entities'>, id: string): Promise<Dispute | undefined> {
  const row = (await db.query<Row>(`${SELECT} WHERE d.id = $1`, [id])).rows[0];
  return row && entityVisible(actor, row.legal_entity) ? fromRow(row) : undefined;
}

export interface DisputeFilter {
  status?: string;
  queue?: string;
  assignee?: string;
  entity?: string;
  limit?: number;
}

/** Disputes matching the filter, oldest first (a queue is worked from its oldest). */
export async function listDisputes(
  db: pg.Pool | pg.PoolClient,
  actor: Pick<Actor, 'entities'>,
  filter: DisputeFilter = {},
): Promise<Dispute[]> {
  const problems: Problem[] = [];
  if (filter.status !== undefined && !(DISPUTE_STATUSES as readonly string[]).includes(filter.status))
    problems.push({ path: 'status', code: 'unknown_status', message: `must be one of ${DISPUTE_STATUSES.join(', ')}` });
  if (filter.queue !== undefined && !DISPUTE_QUEUES.includes(filter.queue))
    problems.push({ path: 'queue', code: 'unknown_queue', message: `must be one of ${DISPUTE_QUEUES.join(', ')}` });
  if (filter.limit !== undefined && (!Number.isSafeInteger(filter.limit) || filter.limit < 1 || filter.limit > DISPUTE_LIST_MAX))
    problems.push({ path: 'limit', code: 'out_of_range', message: `must be a whole number from 1 to ${DISPUTE_LIST_MAX}` });
  if (problems.length > 0) throw new ProblemError(problems, 400);
  const rows = (
    await db.query<Row>(
      `${SELECT} WHERE ($1::text IS NULL OR d.status = $1) AND ($2::text IS NULL OR d.queue = $2) AND ($3::text IS NULL OR d.assignee = $3)
          AND ($4::text IS NULL OR d.legal_entity = $4) AND (cardinality($5::text[]) = 0 OR d.legal_entity = ANY ($5::text[]))
        ORDER BY d.opened_at, d.id LIMIT $6`,
      [
        filter.status ?? null,
        filter.queue ?? null,
        filter.assignee ?? null,
        filter.entity ?? null,
        [...actor.entities],
        filter.limit ?? 100,
      ],
    )
  ).rows;
  return rows.map(fromRow);
}
