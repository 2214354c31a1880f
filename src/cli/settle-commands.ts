// `accrue settle`: payments back from the ERPs by polling (docs/connectors.md, "Payment polling").
import type { Command } from 'commander';
import { bearerNetSuiteTarget } from '../connectors/netsuite/client.js';
import { xeroTargetWithToken } from '../connectors/xero/client.js';
import { staticMappings } from '../connectors/connection.js';
import { ProblemError } from '../domain/result.js';
import { paymentSyncState, pollPayments, type PaymentSource } from '../settle/poll.js';
import { output, withStore } from './context.js';
import { table } from './table.js';

/** The ERP to poll, with credentials read as `accrue post` reads them (environment, --base-url). */
function paymentSource(target: string, baseUrl: string | undefined): PaymentSource {
  if (target === 'xero') {
    const token = process.env.XERO_TOKEN;
    const tenantId = process.env.XERO_TENANT_ID;
    if (!token || !tenantId) throw new ProblemError([{ path: 'XERO_TOKEN', code: 'required', message: 'set XERO_TOKEN and XERO_TENANT_ID' }]);
    return xeroTargetWithToken({ baseUrl, token, tenantId, mappings: staticMappings('xero', []) });
  }
  if (target !== 'netsuite') throw new ProblemError([{ path: '--target', code: 'unknown_target', message: 'the connectors are: netsuite, xero' }]);
  const url = baseUrl ?? process.env.NETSUITE_BASE_URL;
  const token = process.env.NETSUITE_TOKEN;
  if (!url) throw new ProblemError([{ path: '--base-url', code: 'required', message: 'give the NetSuite REST base URL (or NETSUITE_BASE_URL)' }]);
  if (!token) throw new ProblemError([{ path: 'NETSUITE_TOKEN', code: 'required', message: 'set NETSUITE_TOKEN to an OAuth 2.0 access token' }]);
  return bearerNetSuiteTarget({ baseUrl: url, token, subsidiaryByEntity: {} });
}

export function registerSettleCommands(program: Command): void {
  const settle = program.command('settle').description('payments back from the ERPs: poll them and apply each payment once');
  settle
    .command('poll')
    .description('read payments recorded in the ERP since the last poll, match them to the invoices Accrue posted and apply each once; what cannot be applied becomes an exception')
    .requiredOption('--target <name>', 'the ERP: netsuite (customer payments through SuiteQL) or xero (Payments with If-Modified-Since)')
    .option('--base-url <url>', 'REST base URL (NetSuite: https://<account>.suitetalk.api.netsuite.com, also NETSUITE_BASE_URL; Xero: https://api.xero.com)')
    .action(async (flags: { target: string; baseUrl?: string }) => {
      const source = paymentSource(flags.target, flags.baseUrl);
      await withStore(async (store) => {
        const outcome = await pollPayments(store.pool, source);
        const human =
          outcome.status === 'busy'
            ? `${outcome.target}: another poll is running; nothing done`
            : [
                `${outcome.target}: ${outcome.seen} payments read in ${outcome.pages} pages`,
                `applied ${outcome.applied}, already applied ${outcome.duplicates}, exceptions ${outcome.exceptions}, skipped ${outcome.skipped}`,
                `cursor ${outcome.cursor_before ?? '(start)'} -> ${outcome.cursor_after ?? '(start)'}`,
              ].join('\n');
        output(human, outcome);
      });
    });
  settle
    .command('status')
    .description('per ERP: the poll cursor (newest payment modification time seen) and when the last poll finished')
    .action(async () => {
      await withStore(async (store) => {
        const rows = await paymentSyncState(store.pool);
        output(table(['target', 'cursor', 'last polled at'], rows.map((r) => [r.target, r.cursor ?? '', r.last_polled_at ?? ''])), rows);
      });
    });
}
