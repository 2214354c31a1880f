// `accrue reconcile` and `accrue exceptions`: where a period stands, and the exception queues worked by hand.
import { approvalNeeded, commandActor, proposeAndReport } from './auth.js';
import { auditActor } from '../domain/controls.js';
import { planPeriodClose, planWaiver } from '../controls/apply.js';
import type { Command } from 'commander';
import type pg from 'pg';
import { connectionNames, openConfigured } from '../connectors/open.js';
import { checkpointSink, type Config } from './config.js';
import { formatProblems, ProblemError, type Result } from '../domain/result.js';
import type { ErpTarget } from '../post/target.js';
import {
  assignException,
  getException,
  listExceptions,
  resolveException,
  waiveException,
  type ExceptionRecord,
} from '../reconcile/exceptions.js';
import { reconcilePeriod, type ReconcileReport } from '../reconcile/run.js';
import { closeAccountingPeriod } from '../reconcile/period-close.js';
import { parsePeriod } from '../meter/period.js';
import { EXIT, output, withStore } from './context.js';
import { table } from './table.js';
import { reportCheckpoint } from './audit-commands.js';

/** The ERP connections named by --erp (comma-separated names of erp.connections), opened; none without --erp. */
export async function erpConnectors(pool: pg.Pool, cfg: Config, names: string | undefined): Promise<ErpTarget[]> {
  const list = connectionNames(names);
  if (!list) return [];
  return (await openConfigured(pool, cfg.erpConnections, list)).map((c) => c.target);
}

/** The human report: one row per checkpoint, then each difference, then the open exceptions per queue. */
export function reconcileText(report: ReconcileReport): string {
  const rows = report.checkpoints.map((c) => [
    c.legal_entity,
    c.checkpoint,
    c.connector ?? '',
    c.status === 'green' ? 'green' : 'RED',
    String(c.compared.left),
    String(c.compared.right),
    String(c.differences.length),
    c.pending > 0 ? String(c.pending) : '',
  ]);
  const parts = [
    `period ${report.period}: ${report.status === 'green' ? 'green' : 'RED'}${report.recorded ? '' : ' (not recorded)'}`,
    table(['entity', 'checkpoint', 'connector', 'status', 'left', 'right', 'differences', 'pending'], rows),
  ];
  const differences = report.checkpoints.flatMap((c) =>
    c.differences.map((d) => [
      c.checkpoint + (c.connector ? `/${c.connector}` : ''),
      d.kind,
      [d.key.customer, d.key.currency, d.key.item].filter(Boolean).join(' '),
      d.left ?? '-',
      d.right ?? '-',
      d.status ?? '',
      d.opened ? 'new' : '',
    ]),
  );
  if (differences.length > 0) parts.push('', table(['checkpoint', 'kind', 'key', 'left', 'right', 'exception', ''], differences));
  if (report.cleared.length > 0)
    parts.push('', `no longer found (still to resolve or waive): ${report.cleared.map((c) => `${c.checkpoint} ${c.item}`).join('; ')}`);
  parts.push(
    '',
    report.open_exceptions.length === 0
      ? 'no open exceptions'
      : table(
          ['entity', 'queue', 'open', 'assigned'],
          report.open_exceptions.map((q) => [q.legal_entity, q.owner_queue, String(q.open), String(q.assigned)]),
        ),
  );
  return parts.join('\n');
}

function exceptionTable(rows: ExceptionRecord[]): string {
  return table(
    ['id', 'queue', 'status', 'period', 'entity', 'checkpoint', 'kind', 'item', 'left', 'right', 'assigned'],
    rows.map((e) => [
      e.id,
      e.owner_queue,
      e.status + (e.cleared_at ? ' (cleared)' : ''),
      e.period ?? '',
      e.legal_entity ?? '',
      e.checkpoint ?? '',
      e.kind,
      e.item ?? e.subject,
      e.left_amount ?? '',
      e.right_amount ?? '',
      e.assigned_to ?? '',
    ]),
  );
}

function moved(result: Result<ExceptionRecord>, verb: string): void {
  if (!result.ok) {
    process.stderr.write(`accrue: ${formatProblems(result.problems).split('\n').join('\naccrue: ')}\n`);
    process.exitCode = result.problems.some((p) => p.code === 'not_found' || p.code === 'terminal' || p.code === 'not_allowed')
      ? EXIT.failed
      : EXIT.badInput;
    return;
  }
  output(`exception ${result.value.id} ${verb}`, result.value);
}

/** `accrue period close <entity> <period>`: reconcile, then close only if no exception of the period is open. */
export async function runPeriodClose(entity: string, periodText: string, flags: { erp?: string; reason?: string }): Promise<void> {
  const parsed = parsePeriod(periodText, 'period');
  if (!parsed.ok) throw new ProblemError(parsed.problems);
  await withStore(async (store, cfg) => {
    const actor = await commandActor(store.pool, 'change.propose');
    if (actor.entities.length > 0 && !actor.entities.includes(entity))
      throw new ProblemError([{ path: 'entity', code: 'forbidden', message: `this key is limited to ${actor.entities.join(', ')}` }], 403);
    if (approvalNeeded(cfg, actor, 'period.close')) {
      await proposeAndReport(store.pool, actor, planPeriodClose(entity, periodText, connectionNames(flags.erp) ?? [], flags.reason));
      return;
    }
    const connectors = await erpConnectors(store.pool, cfg, flags.erp);
    const checkpoint = checkpointSink(cfg);
    const outcome = await closeAccountingPeriod(store.pool, {
      legalEntity: entity,
      period: periodText,
      by: auditActor(actor),
      connectors,
      checkpoint,
    });
    if (!outcome.result.ok) {
      const refused = outcome.open.length > 0;
      process.stderr.write(
        `accrue: ${refused ? `accounting period ${entity} ${periodText} stays open: ${outcome.open.length} exception(s) to resolve or waive\naccrue: ` : ''}${formatProblems(outcome.result.problems).split('\n').join('\naccrue: ')}\n`,
      );
      output('', {
        entity,
        period: periodText,
        status: 'open',
        problems: outcome.result.problems,
        open_exceptions: outcome.open,
        reconciliation: outcome.reconciliation,
      });
      process.exitCode = refused ? EXIT.failed : EXIT.badInput;
      return;
    }
    const closed = outcome.result.value;
    output(`accounting period ${entity} ${periodText} is closed${closed.already_closed ? ` (since ${closed.closed_at})` : ''}`, {
      entity,
      status: 'closed',
      ...closed,
      reconciliation: outcome.reconciliation,
      ...(outcome.audit_checkpoint ? { audit_checkpoint: outcome.audit_checkpoint } : {}),
    });
    reportCheckpoint(outcome.audit_checkpoint);
  });
}

export function registerReconcileCommands(program: Command): void {
  program
    .command('reconcile <period>')
    .description('reconcile a month: compare usage, rating, invoices, ledger, ERP postings and payments; open an exception per difference')
    .option('--entity <id>', 'one legal entity (default: all)')
    .option('--erp <names>', 'ERP connections (erp.connections) to compare too, comma-separated names')
    .option('--dry-run', 'compare and report only: open and clear no exception')
    .action(async (period: string, flags: { entity?: string; erp?: string; dryRun?: boolean }) => {
      await withStore(async (store, cfg) => {
        await commandActor(store.pool, flags.dryRun ? 'data.read' : 'billing.run');
        const connectors = await erpConnectors(store.pool, cfg, flags.erp);
        const report = await reconcilePeriod(store.pool, { period, legalEntity: flags.entity, connectors, record: !flags.dryRun });
        output(reconcileText(report), report);
      });
    });

  const exceptions = program
    .command('exceptions')
    .description('exception queues: differences found by reconciliation and payments settlement could not apply');
  registerExceptionsRead(exceptions);
  registerExceptionsActions(exceptions);
}

function registerExceptionsRead(exceptions: Command): void {
  exceptions
    .command('list')
    .description('exceptions, oldest first')
    .option('--queue <queue>', 'billing_engineering, integration_support or finance_operations')
    .option('--status <status>', 'open, assigned, resolved, waived, or unresolved (open and assigned)')
    .option('--period <YYYY-MM>', 'one period')
    .option('--entity <id>', 'one legal entity')
    .option('--checkpoint <id>', 'one checkpoint')
    .option('--limit <n>', 'at most this many (1..1000)', '100')
    .action(async (flags: { queue?: string; status?: string; period?: string; entity?: string; checkpoint?: string; limit: string }) => {
      await withStore(async (store) => {
        const limit = /^\d+$/.test(flags.limit) ? Number.parseInt(flags.limit, 10) : Number.NaN;
        const rows = await listExceptions(store.pool, {
          queue: flags.queue,
          status: flags.status,
          period: flags.period,
          legalEntity: flags.entity,
          checkpoint: flags.checkpoint,
          limit,
        });
        if (!rows.ok) throw new ProblemError(rows.problems);
        output(rows.value.length === 0 ? 'no exceptions' : exceptionTable(rows.value), rows.value);
      });
    });
  exceptions
    .command('show <id>')
    .description('one exception: both sides, the documents involved and every move')
    .action(async (id: string) => {
      await withStore(async (store) => {
        const found = await getException(store.pool, id);
        if (!found) throw new ProblemError([{ path: 'id', code: 'not_found', message: `no exception ${id}` }]);
        const e = found.exception;
        const human = [
          `${e.id}  ${e.status}${e.cleared_at ? ' (no longer found since ' + e.cleared_at + ')' : ''}  ${e.owner_queue}`,
          `${e.checkpoint ?? e.kind}${e.connector ? ` / ${e.connector}` : ''}  ${e.kind}  ${[e.legal_entity, e.period, e.customer, e.currency].filter(Boolean).join(' ')}`,
          `item: ${e.item ?? e.subject}`,
          `left: ${e.left_amount ?? '-'}  right: ${e.right_amount ?? '-'}  difference: ${e.difference ?? '-'}`,
          `documents: ${e.documents.map((d) => `${d.kind} ${d.id}${d.connector ? ` (${d.connector})` : ''}`).join(', ') || '-'}`,
          ...(e.assigned_to ? [`assigned to: ${e.assigned_to}`] : []),
          ...(e.resolution_document ? [`corrected by: ${e.resolution_document}`] : []),
          ...(e.waived_reason ? [`waived by ${e.waived_by}: ${e.waived_reason}`] : []),
          '',
          table(
            ['#', 'at', 'action', 'from', 'to', 'by', 'why'],
            found.events.map((v) => [String(v.ordinal), v.at, v.action, v.from_status ?? '', v.to_status, v.actor, v.reason ?? '']),
          ),
        ];
        output(human.join('\n'), found);
      });
    });
}

function registerExceptionsActions(exceptions: Command): void {
  exceptions
    .command('assign <id> <assignee>')
    .description('assign (or reassign) an exception to a person or team')
    .option('--note <text>', 'a note kept in its history')
    .action(async (id: string, assignee: string, flags: { note?: string }) => {
      await withStore(async (store) => {
        const by = auditActor(await commandActor(store.pool, 'exceptions.work'));
        moved(
          await assignException(store.pool, id, { assignee, by, ...(flags.note ? { note: flags.note } : {}) }),
          `assigned to ${assignee}`,
        );
      });
    });
  exceptions
    .command('resolve <id>')
    .description('resolve an assigned exception with the document that corrects it (credit note, re-posting, adjustment)')
    .requiredOption(
      '--document <id>',
      'the correcting document: an invoice or credit note number or id, a journal id, a payment id, or the ERP reference',
    )
    .option('--note <text>', 'a note kept in its history')
    .action(async (id: string, flags: { document: string; note?: string }) => {
      await withStore(async (store) => {
        const by = auditActor(await commandActor(store.pool, 'exceptions.work'));
        moved(
          await resolveException(store.pool, id, { correcting_document: flags.document, by, ...(flags.note ? { note: flags.note } : {}) }),
          `resolved by ${flags.document}`,
        );
      });
    });
  exceptions
    .command('waive <id>')
    .description(
      'accept an assigned exception as it is, saying why; final. Proposed for a second person (controller) to approve unless controls.approval_required leaves exception.waive out',
    )
    .requiredOption('--reason <text>', 'why the difference is accepted')
    .action(async (id: string, flags: { reason: string }) => {
      await withStore(async (store, cfg) => {
        const actor = await commandActor(store.pool, 'change.propose');
        if (approvalNeeded(cfg, actor, 'exception.waive')) {
          await proposeAndReport(store.pool, actor, await planWaiver(store.pool, id, flags.reason));
          return;
        }
        moved(await waiveException(store.pool, id, { reason: flags.reason, by: auditActor(actor) }), 'waived');
      });
    });
}
