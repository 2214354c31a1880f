// `accrue changes`: the maker-checker queue. An operator's money-moving command (catalog, mappings, period close,
// waiver, void, credit note) becomes a change request when the configuration wants a second person for it; a
// different principal with the controller role approves (applying exactly the proposed payload) or rejects it.
import type { Command } from 'commander';
import { decide } from '../controls/apply.js';
import { cancelChange, CHANGE_STATUSES, getChange, listChanges, type ChangeRequest, type ChangeStatus } from '../controls/changes.js';
import { CHANGE_KINDS, isChangeKind, type ChangeKind } from '../domain/controls.js';
import { ProblemError } from '../domain/result.js';
import { commandActor } from './auth.js';
import { output, withStore } from './context.js';
import { erpConnectors } from './reconcile-commands.js';
import { table } from './table.js';

function changeText(c: ChangeRequest): string {
  return [
    `change ${c.id}: ${c.kind} ${c.subject}`,
    `status: ${c.status}${c.decided_by_name ? ` by ${c.decided_by_name} at ${c.decided_at}` : ''}${c.decision_note ? ` (${c.decision_note})` : ''}`,
    `requested by ${c.requested_by_name} at ${c.requested_at}${c.reason ? `: ${c.reason}` : ''}`,
    ...(c.legal_entity ? [`legal entity: ${c.legal_entity}`] : []),
    `summary: ${c.summary}`,
    `payload sha256: ${c.payload_hash}`,
    ...(c.result === null || c.result === undefined ? [] : [`result: ${JSON.stringify(c.result)}`]),
    '',
    c.diff,
  ].join('\n');
}

export function registerChangesCommands(program: Command): void {
  const changes = program.command('changes').description('change requests awaiting, or decided by, a second person (maker-checker)');
  changes
    .command('list')
    .description('change requests, newest first (a key limited to entities sees only theirs and the ones of every entity… it may read)')
    .option('--status <status>', `one of ${CHANGE_STATUSES.join(', ')}`)
    .option('--kind <kind>', `one of ${CHANGE_KINDS.join(', ')}`)
    .action(async (flags: { status?: string; kind?: string }) => {
      if (flags.status && !(CHANGE_STATUSES as readonly string[]).includes(flags.status))
        throw new ProblemError([{ path: '--status', code: 'invalid', message: `must be one of ${CHANGE_STATUSES.join(', ')}` }]);
      if (flags.kind && !isChangeKind(flags.kind))
        throw new ProblemError([{ path: '--kind', code: 'invalid', message: `must be one of ${CHANGE_KINDS.join(', ')}` }]);
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'data.read');
        const rows = await listChanges(store.pool, actor, {
          status: flags.status as ChangeStatus | undefined,
          kind: flags.kind as ChangeKind | undefined,
        });
        output(
          table(
            ['id', 'kind', 'status', 'requested_by', 'requested_at', 'decided_by', 'summary'],
            rows.map((c) => [c.id, c.kind, c.status, c.requested_by_name, c.requested_at, c.decided_by_name ?? '', c.summary]),
          ),
          rows,
        );
      });
    });
  changes
    .command('show <id>')
    .description('one change request with its diff')
    .action(async (id: string) => {
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'data.read');
        const found = await getChange(store.pool, actor, id);
        if (!found) throw new ProblemError([{ path: 'id', code: 'not_found', message: `no change request ${id}` }]);
        output(changeText(found), found);
      });
    });
  registerDecisions(changes);
  changes
    .command('cancel <id>')
    .description('withdraw a pending change you requested')
    .option('--note <text>', 'why, for the audit log')
    .action(async (id: string, flags: { note?: string }) => {
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'change.propose');
        const cancelled = await cancelChange(store.pool, actor, id, flags.note);
        output(`change ${cancelled.id} cancelled`, cancelled);
      });
    });
}

function registerDecisions(changes: Command): void {
  for (const approve of [true, false]) {
    changes
      .command(`${approve ? 'approve' : 'reject'} <id>`)
      .description(
        approve
          ? 'approve and apply a pending change (controller role; never one you requested): exactly the proposed payload is applied'
          : 'reject a pending change (controller role; never one you requested)',
      )
      .option('--note <text>', 'why, for the audit log')
      .action(async (id: string, flags: { note?: string }) => {
        await withStore(async (store, cfg) => {
          const actor = await commandActor(store.pool, 'change.approve');
          const decided = await decide(
            store.pool,
            actor,
            id,
            { approve, ...(flags.note ? { note: flags.note } : {}) },
            {
              erpConnectors: (names) => erpConnectors(store.pool, cfg, names.join(',')),
            },
          );
          output(`change ${decided.id} ${decided.status}${decided.result ? `: ${JSON.stringify(decided.result)}` : ''}`, decided);
        });
      });
  }
}
