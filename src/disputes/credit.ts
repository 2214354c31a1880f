// A dispute's resolution by credit note: the amount asked for (tax included) split into net and tax at the original
// invoice's rate, checked against what is left of the line, and — once approved — issued with the late-usage
// corrections' machinery: a credit note numbered per legal entity (finalizeInvoice), its reversing journal and its
// outbox rows to the ERP the invoice went to (recordJournals), keyed so that applying it twice issues it once.
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import { currentCatalog } from '../catalog/service.js';
import { auditActor, type Actor } from '../domain/controls.js';
import { reissued } from '../domain/invoice-terms.js';
import { disputeCreditNoteKey, invoiceIdOf } from '../domain/keys.js';
import type { Invoice } from '../domain/model.js';
import { formatMajor, parseMajor } from '../domain/money.js';
import { ProblemError } from '../domain/result.js';
import { finalizeInvoice, saveDraft } from '../invoice/store.js';
import { bookedJournalsFor, recordJournals } from '../post/journals.js';
import type { ErpRouting } from '../post/rollout.js';
import { transaction } from '../store/store.js';
import { splitCredit, type CreditParts } from './amounts.js';
import { lockOpenDispute, type Dispute } from './disputes.js';
import { lineStanding, reversingCreditNote, type LineStanding } from './standing.js';

/** What a credit-note change request carries: exactly what approval issues. Amounts are minor units as text. */
export interface DisputeCreditPayload {
  dispute_id: string;
  invoice_id: string;
  line_no: number;
  currency: string;
  gross_minor: string;
  net_minor: string;
  tax_minor: string;
  tax_rate: string;
  credit_note_key: string;
}

export interface DisputeCreditPlan {
  dispute: Dispute;
  standing: LineStanding;
  parts: CreditParts;
  full: boolean;
  payload: DisputeCreditPayload;
}

const money = (minor: bigint, currency: string) => `${formatMajor(minor, currency)} ${currency}`;

/**
 * The credit for a dispute: `credit` in major units of the invoice's currency (`field` names it in problems: --credit
 * on the command line, credit over HTTP). More than the line's uncredited remainder is refused (409).
 */
export async function planDisputeCreditParts(
  pool: pg.Pool,
  actor: Actor,
  disputeId: string,
  credit: string,
  field = '--credit',
): Promise<DisputeCreditPlan> {
  const dispute = await transaction(pool, (client) => lockOpenDispute(client, actor, disputeId));
  const gross = parseMajor(credit, dispute.currency, field);
  if (!gross.ok) throw new ProblemError(gross.problems, 400);
  if (gross.value <= 0n) throw new ProblemError([{ path: field, code: 'not_positive', message: 'a credit is more than zero' }], 400);
  const standing = await lineStanding(pool, dispute.invoice_id, dispute.line_no);
  const parts = splitCredit(gross.value, standing.remaining, standing.rate, dispute.currency, standing.invoice.rounding);
  if (!parts)
    throw new ProblemError(
      [
        {
          path: field,
          code: 'over_remainder',
          message: `${money(gross.value, dispute.currency)} is more than what is left to credit on line ${dispute.line_no} of ${dispute.invoice_number ?? dispute.invoice_id}: ${money(standing.remaining.gross, dispute.currency)} (the line's ${money(standing.full.gross, dispute.currency)} with tax, less ${money(standing.full.gross - standing.remaining.gross, dispute.currency)} credited before)`,
        },
      ],
      409,
    );
  return {
    dispute,
    standing,
    parts,
    full: parts.gross === standing.full.gross,
    payload: {
      dispute_id: dispute.id,
      invoice_id: dispute.invoice_id,
      line_no: dispute.line_no,
      currency: dispute.currency,
      gross_minor: parts.gross.toString(),
      net_minor: parts.net.toString(),
      tax_minor: parts.tax.toString(),
      tax_rate: standing.rate,
      credit_note_key: disputeCreditNoteKey(dispute.invoice_id, dispute.id),
    },
  };
}

/** The credit note's document: the disputed line at the credited net, taxed at the original rate; issued today. */
function creditNoteDocument(standing: LineStanding, payload: DisputeCreditPayload, issueDate: string): Invoice {
  const { invoice, line } = standing;
  const net = BigInt(payload.net_minor);
  const tax = BigInt(payload.tax_minor);
  const whole = net === standing.full.net;
  const taxLine = invoice.tax_lines[0];
  return {
    ...invoice,
    id: invoiceIdOf(payload.credit_note_key),
    key: payload.credit_note_key,
    kind: 'credit_note',
    corrects: invoice.id,
    number: null,
    status: 'draft',
    lines: [
      {
        ...line,
        line_no: 1,
        description: `${whole ? 'Credit' : 'Partial credit'} of line ${line.line_no} (dispute ${payload.dispute_id}): ${line.description}`,
        unit_amount: whole ? line.unit_amount : null,
        tiers: whole ? line.tiers : [],
        amount_minor: net,
      },
    ],
    subtotal_minor: net,
    discount_minor: 0n,
    credits_applied_minor: 0n,
    tax_lines: taxLine
      ? [{ jurisdiction: taxLine.jurisdiction, rate: taxLine.rate, taxable_minor: line.taxable ? net : 0n, tax_minor: tax }]
      : [],
    tax_minor: tax,
    total_minor: net + tax,
    ...reissued(invoice, 'credit_note', issueDate),
  };
}

/** Where the credit note's journal goes: where its invoice's went (its outbox targets, or held back as it was). */
async function routingOf(client: pg.PoolClient, invoice: Invoice): Promise<ErpRouting> {
  const targets = async (sql: string) => (await client.query<{ target: string }>(sql, [invoice.id])).rows.map((r) => r.target);
  const queued = await targets(
    'SELECT DISTINCT o.target FROM outbox o JOIN journals j ON j.id = o.document_id WHERE j.source_document = $1 ORDER BY 1',
  );
  if (queued.length > 0) return { targets: queued, customer: invoice.customer, held_back: null };
  const held = await targets('SELECT DISTINCT target FROM rollout_holds WHERE source_document = $1 ORDER BY 1');
  return { targets: held, customer: invoice.customer, held_back: held.length > 0 ? 'rollout_scope' : null };
}

export interface IssuedCredit {
  dispute: string;
  credit_note: string;
  number: string | null;
  credit: string;
  net: string;
  tax: string;
  currency: string;
}

const issued = (payload: DisputeCreditPayload, creditNote: { id: string; number: string | null }): IssuedCredit => ({
  dispute: payload.dispute_id,
  credit_note: creditNote.id,
  number: creditNote.number,
  credit: formatMajor(BigInt(payload.gross_minor), payload.currency),
  net: formatMajor(BigInt(payload.net_minor), payload.currency),
  tax: formatMajor(BigInt(payload.tax_minor), payload.currency),
  currency: payload.currency,
});

/**
 * Issues the approved credit note and resolves the dispute, in one transaction. Idempotent: the dispute already
 * resolved by this very credit note answers what was issued. Refused (409) when the line's remainder moved since the
 * amounts were proposed, or the invoice was voided or reversed meanwhile.
 */
export async function issueDisputeCredit(
  pool: pg.Pool,
  by: Actor,
  payload: DisputeCreditPayload,
  today = new Date(),
): Promise<IssuedCredit> {
  const creditNoteId = invoiceIdOf(payload.credit_note_key);
  return transaction(pool, async (client) => {
    const done = (
      await client.query<{ status: string; credit_note: string | null; number: string | null }>(
        'SELECT d.status, d.credit_note, cn.number FROM disputes d LEFT JOIN invoices cn ON cn.id = d.credit_note WHERE d.id = $1 FOR UPDATE OF d',
        [payload.dispute_id],
      )
    ).rows[0];
    if (done?.status === 'resolved' && done.credit_note === creditNoteId) return issued(payload, { id: creditNoteId, number: done.number });
    const dispute = await lockOpenDispute(client, { entities: [] }, payload.dispute_id);
    const stale = (message: string) => new ProblemError([{ path: 'payload', code: 'stale', message }], 409);
    const standing = await lineStanding(client, dispute.invoice_id, dispute.line_no);
    if (standing.invoice_status !== 'finalized') throw stale(`invoice ${dispute.invoice_number} is ${standing.invoice_status} now`);
    const reversed = await reversingCreditNote(client, dispute.invoice_id);
    if (reversed) throw stale(`invoice ${dispute.invoice_number} was reversed by ${reversed} since this credit was proposed`);
    const parts = splitCredit(
      BigInt(payload.gross_minor),
      standing.remaining,
      payload.tax_rate,
      payload.currency,
      standing.invoice.rounding,
    );
    if (!parts || parts.net.toString() !== payload.net_minor || parts.tax.toString() !== payload.tax_minor)
      throw stale(`what is left to credit on line ${dispute.line_no} changed since this credit was proposed; propose it again`);
    const catalog = await currentCatalog(client);
    const entity = catalog?.index.legalEntities.get(dispute.legal_entity);
    if (!catalog || !entity) throw stale(`the catalog in force has no legal entity ${dispute.legal_entity}`);
    const date = today.toISOString().slice(0, 10);
    const draft = creditNoteDocument(standing, payload, date);
    const creditNote = await finalizeInvoice(
      client,
      (await saveDraft(client, draft)).invoice.id,
      entity.invoice_number_prefix,
      auditActor(by),
    );
    await recordJournals(
      client,
      await bookedJournalsFor(client, creditNote, catalog, date),
      creditNote.number,
      await routingOf(client, standing.invoice),
    );
    await client.query(
      "UPDATE disputes SET status = 'resolved', credit_note = $2, credit_minor = $3, closed_by = $4, closed_at = now() WHERE id = $1",
      [dispute.id, creditNote.id, payload.gross_minor, auditActor(by)],
    );
    const result = issued(payload, creditNote);
    await appendAudit(client, { actor: auditActor(by), action: 'dispute.resolve', subject: dispute.id, details: result });
    return result;
  });
}
