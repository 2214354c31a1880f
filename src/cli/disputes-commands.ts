// `accrue disputes`: a customer contests one line of an invoice. Open it (the line's explain walk is attached), assign
// it to a team or a person, and close it by a credit note (a change request a different controller approves, unless
// the policy leaves credit_note.issue out or in development mode) or by rejecting it with the reason.
import type { Command } from 'commander';
import { resolveDisputeByCredit } from '../controls/credit-notes.js';
import { ProblemError } from '../domain/result.js';
import {
  assignDispute,
  DISPUTE_QUEUES,
  DISPUTE_STATUSES,
  getDispute,
  listDisputes,
  openDispute,
  rejectDispute,
  type Dispute,
} from '../disputes/disputes.js';
import { lineCreditView, type LineCreditView } from '../disputes/standing.js';
import { renderWalk } from '../disputes/walk.js';
import { approvalNeeded, commandActor } from './auth.js';
import { output, withStore } from './context.js';
import { table } from './table.js';

function disputeText(d: Dispute, credit?: LineCreditView): string {
  const closed =
    d.status === 'resolved'
      ? `resolved by credit note ${d.credit_note_number ?? d.credit_note} of ${d.credit} ${d.currency}`
      : d.status === 'rejected'
        ? `rejected: ${d.rejection}`
        : d.change_request
          ? `open; credit note change ${d.change_request} is ${d.change_status}`
          : 'open';
  return [
    `dispute ${d.id}: line ${d.line_no} of ${d.invoice_number ?? d.invoice_id} (${d.customer}, ${d.legal_entity})`,
    `status: ${closed}${d.closed_at ? ` — by ${d.closed_by} at ${d.closed_at}` : ''}`,
    `opened by ${d.opened_by} at ${d.opened_at}: ${d.reason}`,
    `queue: ${d.queue}${d.assignee ? `, assigned to ${d.assignee}` : ''}`,
    ...(credit
      ? [`credit: full ${credit.full} ${d.currency} (tax rate ${credit.tax_rate}), credited ${credit.credited}, left ${credit.remaining}`]
      : []),
    '',
    'explain walk when opened:',
    ...renderWalk(d.walk),
    `  the full walk: accrue explain invoice ${d.invoice_number ?? d.invoice_id} --line ${d.line_no}`,
  ].join('\n');
}

const lineNumber = (text: string): number => {
  if (!/^[1-9]\d{0,8}$/.test(text))
    throw new ProblemError([
      { path: '--line', code: 'invalid', message: 'must be an invoice line number (1, 2, … as `accrue invoices show` lists them)' },
    ]);
  return Number(text);
};

export function registerDisputesCommands(program: Command): void {
  const disputes = program.command('disputes').description('disputed invoice lines: open, assign, resolve by credit note, reject');
  registerQueueCommands(disputes);
  registerReadCommands(disputes);
  registerCloseCommands(disputes);
}

/** open, assign */
function registerQueueCommands(disputes: Command): void {
  disputes
    .command('open <invoice>')
    .description("open a dispute of one line of a finalized invoice (id or number), with the line's explain walk attached")
    .requiredOption('--line <n>', 'the line number, as `accrue invoices show` lists them')
    .requiredOption('--reason <text>', 'what the customer contests')
    .option('--queue <team>', `the team it waits for: ${DISPUTE_QUEUES.join(', ')} (default finance_operations)`)
    .action(async (invoice: string, flags: { line: string; reason: string; queue?: string }) => {
      const line = lineNumber(flags.line);
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'disputes.work');
        const { dispute, created } = await openDispute(store.pool, actor, {
          invoice,
          line,
          reason: flags.reason,
          ...(flags.queue ? { queue: flags.queue } : {}),
        });
        output(`${created ? 'opened' : 'already open'}: ${disputeText(dispute)}`, { created, dispute });
      });
    });
  disputes
    .command('assign <id> <assignee>')
    .description(`assign to a team (${DISPUTE_QUEUES.join(', ')}) or to a person (a principal's name)`)
    .option('--note <text>', 'a note for the audit log')
    .action(async (id: string, assignee: string, flags: { note?: string }) => {
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'disputes.work');
        const dispute = await assignDispute(store.pool, actor, id, assignee, flags.note);
        output(`dispute ${dispute.id}: queue ${dispute.queue}${dispute.assignee ? `, assigned to ${dispute.assignee}` : ''}`, dispute);
      });
    });
}

/** list, show */
function registerReadCommands(disputes: Command): void {
  disputes
    .command('list')
    .description('disputes, oldest first')
    .option('--status <status>', DISPUTE_STATUSES.join(', '))
    .option('--queue <team>', DISPUTE_QUEUES.join(', '))
    .option('--assignee <name>', 'the person assigned')
    .option('--entity <id>', 'a legal entity')
    .action(async (flags: { status?: string; queue?: string; assignee?: string; entity?: string }) => {
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'data.read');
        const rows = await listDisputes(store.pool, actor, flags);
        output(
          table(
            ['id', 'status', 'queue', 'assignee', 'invoice', 'line', 'customer', 'opened_at', 'reason'],
            rows.map((d) => [
              d.id,
              d.status,
              d.queue,
              d.assignee ?? '',
              d.invoice_number ?? d.invoice_id,
              String(d.line_no),
              d.customer,
              d.opened_at,
              d.reason,
            ]),
          ),
          rows,
        );
      });
    });
  disputes
    .command('show <id>')
    .description('one dispute with the explain walk of its line and what is left to credit')
    .action(async (id: string) => {
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'data.read');
        const dispute = await getDispute(store.pool, actor, id);
        if (!dispute) throw new ProblemError([{ path: 'id', code: 'not_found', message: `no dispute ${id}` }]);
        const credit = await lineCreditView(store.pool, dispute.invoice_id, dispute.line_no);
        output(disputeText(dispute, credit), { ...dispute, line_credit: credit });
      });
    });
}

/** resolve, reject */
function registerCloseCommands(disputes: Command): void {
  disputes
    .command('resolve <id>')
    .description(
      'resolve by a credit note of --credit (tax included; the full line is its amount and tax share). Proposed for a different controller to approve unless controls.approval_required leaves credit_note.issue out',
    )
    .requiredOption('--credit <amount>', "major units of the invoice's currency, tax included, e.g. 12.50")
    .action(async (id: string, flags: { credit: string }) => {
      await withStore(async (store, cfg) => {
        const actor = await commandActor(store.pool, 'change.propose');
        const outcome = await resolveDisputeByCredit(store.pool, actor, approvalNeeded(cfg, actor, 'credit_note.issue'), id, flags.credit);
        if (outcome.status === 'pending') {
          const r = outcome.request;
          output(
            [
              `${outcome.created ? 'proposed' : 'already proposed'}: change ${r.id} (${r.kind}) — ${r.summary}`,
              `it comes into force when a different principal with the controller role approves it: accrue changes approve ${r.id}`,
            ].join('\n'),
            outcome,
          );
        } else
          output(
            `dispute ${id} resolved: credit note ${outcome.result.number} of ${outcome.result.credit} ${outcome.result.currency} (net ${outcome.result.net}, tax ${outcome.result.tax})`,
            outcome,
          );
      });
    });
  disputes
    .command('reject <id>')
    .description('reject a dispute: the charge stands, nothing is credited (no second person needed)')
    .requiredOption('--reason <text>', 'why the charge stands')
    .action(async (id: string, flags: { reason: string }) => {
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'disputes.work');
        const dispute = await rejectDispute(store.pool, actor, id, flags.reason);
        output(`dispute ${dispute.id} rejected`, dispute);
      });
    });
}
