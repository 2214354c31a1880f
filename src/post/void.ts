// Voiding an invoice, as one use case: the invoice becomes void, each of its journals is reversed (every line, debit
// and credit swapped, dated the void date in an open accounting period) and each reversal is queued to the ERP
// targets the invoice went to, where it voids the invoice (Xero) or credits it in full (NetSuite credit memo), all in
// one transaction. The approval step of four-eyes voids calls this with the approved payload.
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import { REVERSIBLE_KINDS, reversingJournal } from '../domain/journal.js';
import { journalId, outboxKey, reversalJournalId } from '../domain/keys.js';
import type { Invoice } from '../domain/model.js';
import { ProblemError, type Problem } from '../domain/result.js';
import { auditSummary, getInvoice, resolveInvoiceId } from '../invoice/store.js';
import { transaction } from '../store/store.js';
import { readJournals, recordJournals } from './journals.js';

/** Limit: characters of a void's reason (it travels into the reversal's memo and the audit record). */
export const VOID_REASON_CHARS_MAX = 500;

export interface VoidRequest {
  /** The invoice's id, or its number (within `entity` when two legal entities share the number). */
  invoice: string;
  entity?: string;
  reason: string;
  /** Who voids it, as the audit log names them (an authenticated principal once controls are in force). */
  actor: string;
  /** When it is voided: an ISO 8601 timestamp; its UTC date is the reversal's date. */
  at: string;
}

export interface VoidOutcome {
  invoice: Invoice;
  /** True when the invoice was void already: the first void's reversals and outbox rows come back, nothing is written. */
  already_void: boolean;
  reversals: Array<{ id: string; reverses: string; posting_date: string; dated_on: string | null }>;
  outbox: Array<{ key: string; target: string; document_kind: string; status: string }>;
}

/** The request's fields checked: a problem per bad field, never a 5xx. */
function checkRequest(request: VoidRequest): { reason: string; actor: string; at: Date } {
  const problems: Problem[] = [];
  const reason = typeof request.reason === 'string' ? request.reason.trim() : '';
  const actor = typeof request.actor === 'string' ? request.actor.trim() : '';
  const at = new Date(typeof request.at === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(request.at) ? request.at : Number.NaN);
  if (typeof request.invoice !== 'string' || request.invoice.trim() === '')
    problems.push({ path: 'invoice', code: 'required', message: 'name the invoice by id or number' });
  if (reason === '') problems.push({ path: 'reason', code: 'required', message: 'say why the invoice is voided' });
  else if (reason.length > VOID_REASON_CHARS_MAX)
    problems.push({ path: 'reason', code: 'too_long', message: `at most ${VOID_REASON_CHARS_MAX} characters` });
  if (actor === '') problems.push({ path: 'actor', code: 'required', message: 'name who voids the invoice' });
  if (Number.isNaN(at.getTime())) problems.push({ path: 'at', code: 'invalid', message: 'must be an ISO 8601 timestamp' });
  if (problems.length > 0) throw new ProblemError(problems, 400);
  return { reason, actor, at };
}

/**
 * Voids a finalized invoice nothing has been paid on and no credit note corrects. Idempotent: voiding a void invoice
 * returns the first void's reversals and outbox rows and writes nothing. A paid or part-paid invoice is refused with
 * 409 naming its payments (the money moved: it is corrected with a credit note, and Xero would refuse the void too).
 */
export async function voidInvoice(pool: pg.Pool, request: VoidRequest): Promise<VoidOutcome> {
  const { reason, actor, at } = checkRequest(request);
  const outcome = await transaction(pool, async (client) => {
    const id = await resolveInvoiceId(client, request.invoice.trim(), { entity: request.entity });
    if (id === undefined) throw new ProblemError([{ path: 'invoice', code: 'not_found', message: `no invoice ${request.invoice}` }], 404);
    const row = (
      await client.query<{ status: string; kind: string; amount_paid_minor: string }>(
        'SELECT status, kind, amount_paid_minor::text FROM invoices WHERE id = $1 FOR UPDATE',
        [id],
      )
    ).rows[0]!;
    if (row.status === 'void') {
      // Voided before voids reversed (migration 028): its journals are reversed now, once; otherwise nothing is written.
      const reversed = await reverseJournals(client, id, at.toISOString().slice(0, 10), reason);
      if (reversed.length > 0)
        await appendAudit(client, { actor, action: 'invoice.void_reversed', subject: id, details: { reason, reversals: reversed } });
      return { id, already_void: true };
    }
    await refuseUnvoidable(client, id, row);
    await client.query(`UPDATE invoices SET status = 'void', voided_at = $2 WHERE id = $1`, [id, at.toISOString()]);
    const reversals = await reverseJournals(client, id, at.toISOString().slice(0, 10), reason);
    const invoice = (await getInvoice(client, id))!;
    await appendAudit(client, {
      actor,
      action: `${invoice.kind}.void`,
      subject: id,
      details: { ...auditSummary(invoice), reason, voided_at: at.toISOString(), reversals },
    });
    return { id, already_void: false };
  });
  return { ...(await readVoid(pool, outcome.id)), already_void: outcome.already_void };
}

/** Refuses a void the books cannot take: not finalized, a credit note, paid or part-paid, or corrected by a credit note. */
async function refuseUnvoidable(client: pg.PoolClient, id: string, row: { status: string; kind: string; amount_paid_minor: string }) {
  const refuse = (code: string, message: string) => {
    throw new ProblemError([{ path: 'invoice', code, message }], 409);
  };
  if (row.status !== 'finalized') refuse('not_voidable', `invoice ${id} is ${row.status}; only a finalized invoice is voided`);
  if (row.kind !== 'invoice') refuse('not_voidable', `${id} is a ${row.kind}; a credit note is not voided, a new invoice replaces it`);
  const payments = (
    await client.query<{ id: string; amount_minor: string; received_on: string }>(
      `SELECT id, amount_minor::text, to_char(received_on, 'YYYY-MM-DD') AS received_on FROM payments
        WHERE invoice_id = $1 AND status = 'applied' ORDER BY received_on, id`,
      [id],
    )
  ).rows;
  if (payments.length > 0 || BigInt(row.amount_paid_minor) !== 0n) {
    const named = payments.map((p) => `${p.id} (${p.amount_minor} minor units, ${p.received_on})`).join(', ');
    refuse(
      'paid',
      `invoice ${id} has payments applied${named ? `: ${named}` : ''}; a paid invoice is not voided, correct it with a credit note (docs/operations.md)`,
    );
  }
  const notes = (
    await client.query<{ number: string | null; id: string }>(
      "SELECT id, number FROM invoices WHERE corrects = $1 AND kind = 'credit_note' AND status = 'finalized' ORDER BY id",
      [id],
    )
  ).rows;
  if (notes.length > 0)
    refuse('credited', `invoice ${id} is corrected by ${notes.map((n) => n.number ?? n.id).join(', ')}; voiding it would reverse it twice`);
}

/**
 * Writes the reversal of each journal of the invoice that has none, dated the void date (never before the journal it reverses) or,
 * when that accounting period is closed, the first day of the next open one; queued to each target the journal was.
 */
async function reverseJournals(client: pg.PoolClient, invoiceId: string, voidDate: string, reason: string): Promise<string[]> {
  const originals = await readJournals(client, { ids: REVERSIBLE_KINDS.map((kind) => journalId(kind, invoiceId)) });
  const written: string[] = [];
  for (const original of originals) {
    if ((await client.query('SELECT 1 FROM journals WHERE reverses = $1', [original.id])).rowCount) continue;
    const reversal = reversingJournal(original, voidDate > original.posting_date ? voidDate : original.posting_date, reason);
    // Where the journal went, its reversal goes (a journal held back by the rollout scope was never sent, nor is this).
    const targets = (
      await client.query<{ target: string }>('SELECT target FROM outbox WHERE document_id = $1 ORDER BY target', [original.id])
    ).rows.map((r) => r.target);
    // A void date in a closed accounting period moves to the first open one (recorded as dated_on / posting_policy).
    await recordJournals(client, [reversal], original.source_number, targets, 'next_open_period');
    written.push(reversal.id);
  }
  return written;
}

/** The void as stored: the invoice, its reversals and their outbox rows. */
async function readVoid(db: pg.Pool, invoiceId: string): Promise<Omit<VoidOutcome, 'already_void'>> {
  const invoice = (await getInvoice(db, invoiceId))!;
  const ids = REVERSIBLE_KINDS.map((k) => reversalJournalId(k, invoiceId));
  const reversals = (
    await db.query<{ id: string; reverses: string; posting_date: string; dated_on: string | null }>(
      `SELECT id, reverses, to_char(posting_date, 'YYYY-MM-DD') AS posting_date, to_char(dated_on, 'YYYY-MM-DD') AS dated_on
         FROM journals WHERE id = ANY($1) ORDER BY id`,
      [ids],
    )
  ).rows;
  const outbox = (
    await db.query<{ key: string; target: string; document_kind: string; status: string }>(
      'SELECT key, target, document_kind, status FROM outbox WHERE document_id = ANY($1) ORDER BY key',
      [reversals.map((r) => r.id)],
    )
  ).rows;
  return { invoice, reversals, outbox };
}

/** The outbox key of an invoice reversal at a target (what the ERP void carries as its idempotency key). */
export const voidOutboxKey = (target: string, invoiceId: string): string => outboxKey(target, reversalJournalId('invoice', invoiceId));
