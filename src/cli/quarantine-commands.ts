// `accrue quarantine`: events held back for an unknown type or subject, listed and replayed.
import { commandActor } from './auth.js';
import type { Command } from 'commander';
import { listQuarantine, replayQuarantine } from '../ingest/quarantine.js';
import { output, requireCatalog, withStore } from './context.js';
import { table } from './table.js';

export function registerQuarantineCommands(program: Command): void {
  const quarantine = program.command('quarantine').description('events held back because the catalog did not know their type or subject');
  quarantine
    .command('list')
    .description('quarantined events waiting for the catalog to know their type or subject (--all: replayed ones too)')
    .option('--all', 'include replayed entries')
    .option('--limit <n>', 'at most this many', '100')
    .action(async (flags: { all?: boolean; limit: string }) => {
      await withStore(async (store) => {
        const rows = await listQuarantine(store.pool, { all: flags.all, limit: Number.parseInt(flags.limit, 10) });
        output(
          table(
            ['seq', 'source', 'id', 'reason', 'replayed'],
            rows.map((r) => [String(r.seq), r.source, r.id, r.reason, r.replay_result ?? '']),
          ),
          rows,
        );
      });
    });
  quarantine
    .command('replay')
    .description('ingest quarantined events the catalog in force now knows')
    .action(async () => {
      await withStore(async (store) => {
        await commandActor(store.pool, 'billing.run');
        const result = await replayQuarantine(store.pool, await requireCatalog(store.pool));
        output(
          Object.entries(result)
            .map(([k, v]) => `${k}: ${v}`)
            .join('\n'),
          result,
        );
      });
    });
}
