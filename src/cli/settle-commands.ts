// `accrue settle`: payments back from the ERPs by polling (docs/connectors.md, "Payment polling").
import { commandActor } from './auth.js';
import type { Command } from 'commander';
import { connectionNames, openConfigured } from '../connectors/open.js';
import { paymentSyncState, pollPayments } from '../settle/poll.js';
import { output, withStore } from './context.js';
import { table } from './table.js';

export function registerSettleCommands(program: Command): void {
  const settle = program.command('settle').description('payments back from the ERPs: poll them and apply each payment once');
  settle
    .command('poll')
    .description(
      'read payments recorded in the ERP since the last poll, match them to the invoices Accrue posted and apply each once; what cannot be applied becomes an exception',
    )
    .option(
      '--connection <name>',
      'the ERP connection (erp.connections): NetSuite customer payments through SuiteQL, Xero Payments with If-Modified-Since (default: every configured connection); comma-separated for several',
    )
    .option('--target <name>', 'the same as --connection (the name used before connections)')
    .action(async (flags: { connection?: string; target?: string }) => {
      await withStore(async (store, cfg) => {
        await commandActor(store.pool, 'billing.run');
        // Every configured connection by default, one after another (each keeps its own cursor).
        const opened = await openConfigured(store.pool, cfg.erpConnections, connectionNames(flags.connection ?? flags.target));
        const outcomes = [];
        for (const { target } of opened) outcomes.push(await pollPayments(store.pool, target));
        const human = outcomes.map((outcome) =>
          outcome.status === 'busy'
            ? `${outcome.target}: another poll is running; nothing done`
            : [
                `${outcome.target}: ${outcome.seen} payments read in ${outcome.pages} pages`,
                `applied ${outcome.applied}, already applied ${outcome.duplicates}, exceptions ${outcome.exceptions}, skipped ${outcome.skipped}`,
                `cursor ${outcome.cursor_before ?? '(start)'} -> ${outcome.cursor_after ?? '(start)'}`,
              ].join('\n'),
        );
        output(human.join('\n\n'), outcomes.length === 1 ? outcomes[0] : outcomes);
      });
    });
  settle
    .command('status')
    .description('per ERP: the poll cursor (newest payment modification time seen) and when the last poll finished')
    .action(async () => {
      await withStore(async (store) => {
        const rows = await paymentSyncState(store.pool);
        output(
          table(
            ['target', 'cursor', 'last polled at'],
            rows.map((r) => [r.target, r.cursor ?? '', r.last_polled_at ?? '']),
          ),
          rows,
        );
      });
    });
}
