// credit_note.issue: a credit note against one line of an invoice, proposed by an operator resolving a dispute and
// issued only once a different controller approves (or at once where the policy leaves the kind out, and in the
// development mode). The plan shows the approver the amounts; the applier issues exactly them (src/disputes/credit.ts).
// apply.ts registers the applier (this module does not import apply.ts: no import cycle).
import type pg from 'pg';
import type { Actor } from '../domain/controls.js';
import { formatMajor } from '../domain/money.js';
import { issueDisputeCredit, planDisputeCreditParts, type DisputeCreditPayload, type IssuedCredit } from '../disputes/credit.js';
import { noteProposedCredit } from '../disputes/disputes.js';
import { proposeChange, type ChangeRequest, type ProposeInput } from './changes.js';

/** The change request that resolves a dispute by a credit note of `credit` (major units, tax included). */
export async function planDisputeCredit(
  pool: pg.Pool,
  actor: Actor,
  disputeId: string,
  credit: string,
  field = '--credit',
): Promise<ProposeInput> {
  const plan = await planDisputeCreditParts(pool, actor, disputeId, credit, field);
  const { dispute, standing, parts, payload } = plan;
  const m = (minor: bigint) => `${formatMajor(minor, dispute.currency)} ${dispute.currency}`;
  const invoice = dispute.invoice_number ?? dispute.invoice_id;
  return {
    kind: 'credit_note.issue',
    subject: `dispute:${dispute.id}`,
    legalEntity: dispute.legal_entity,
    summary: `${plan.full ? 'full' : 'partial'} credit note of ${m(parts.gross)} on ${invoice} line ${dispute.line_no} (dispute ${dispute.id}, ${dispute.customer})`,
    diff: [
      `credit note against ${invoice} line ${dispute.line_no}: ${standing.line.description}`,
      `  line ${m(standing.full.net)} + tax ${m(standing.full.tax)} at ${standing.rate} = ${m(standing.full.gross)}; credited before ${m(standing.full.gross - standing.remaining.gross)}`,
      `  credit now: net ${m(parts.net)} + tax ${m(parts.tax)} = ${m(parts.gross)}`,
      `  left to credit after it: ${m(standing.remaining.gross - parts.gross)}`,
      `dispute ${dispute.id}: open -> resolved (reason: ${dispute.reason})`,
    ].join('\n'),
    payload,
    reason: dispute.reason,
  };
}

/** The applier of credit_note.issue (registered in apply.ts): issues exactly the approved credit note. */
export const applyCreditNote = (pool: pg.Pool, payload: DisputeCreditPayload, by: Actor): Promise<IssuedCredit> =>
  issueDisputeCredit(pool, by, payload);

export type DisputeResolution =
  | { status: 'pending'; request: ChangeRequest; created: boolean }
  | { status: 'applied'; result: IssuedCredit; approval: 'not_required' | 'development_mode' };

/**
 * Resolves a dispute by a credit note: proposed (and noted on the dispute) when a second person must approve it,
 * issued at once otherwise (the policy leaves credit_note.issue out, or the explicit development mode).
 */
export async function resolveDisputeByCredit(
  pool: pg.Pool,
  actor: Actor,
  approvalRequired: boolean,
  disputeId: string,
  credit: string,
  field = '--credit',
): Promise<DisputeResolution> {
  const plan = await planDisputeCredit(pool, actor, disputeId, credit, field);
  if (actor.dev || !approvalRequired)
    return {
      status: 'applied',
      result: await applyCreditNote(pool, plan.payload as DisputeCreditPayload, actor),
      approval: actor.dev ? 'development_mode' : 'not_required',
    };
  const { request, created } = await proposeChange(pool, actor, plan);
  await noteProposedCredit(pool, actor, disputeId, request);
  return { status: 'pending', request, created };
}
