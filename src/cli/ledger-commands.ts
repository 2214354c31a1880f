// `accrue ledger`, `accrue export` and `accrue period`: the built-in ledger, its plain-text export, closing periods.
import { readerScope, requireEntityInScope } from './auth.js';
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { readJournals } from '../post/journals.js';
import { parsePeriod } from '../meter/period.js';
import { trialBalance } from '../domain/journal.js';
import { formatMajor } from '../domain/money.js';
import { ProblemError } from '../domain/result.js';
import { EXPORT_FORMATS, exportJournals, type ExportFormat } from '../post/plaintext/exports.js';
import { globals, output, requireCatalog, withStore } from './context.js';
import { runPeriodClose } from './reconcile-commands.js';
import { trialBalanceTable } from './table.js';

export function registerLedgerCommands(program: Command): void {
  registerLedger(program);
  registerExport(program);
  registerPeriod(program);
}

function registerLedger(program: Command): void {
  const ledger = program.command('ledger').description('the built-in general ledger');
  ledger
    .command('trial-balance')
    .description('debits, credits and balance per account for a legal entity and period')
    .requiredOption('--entity <id>', 'legal entity')
    .requiredOption('--period <YYYY-MM>', 'accounting period')
    .action(async (flags: { entity: string; period: string }) => {
      const period = parsePeriod(flags.period, '--period');
      if (!period.ok) throw new ProblemError(period.problems);
      await withStore(async (store) => {
        requireEntityInScope(await readerScope(store.pool), flags.entity, '--entity');
        const journals = await readJournals(store.pool, { entity: flags.entity, from: period.value.start_date, to: period.value.end_date });
        const rows = trialBalance(journals);
        const money = (v: bigint, c: string) => formatMajor(v, c);
        output(
          trialBalanceTable(rows),
          rows.map((r) => ({
            ...r,
            debit: money(r.debit_minor, r.currency),
            credit: money(r.credit_minor, r.currency),
            balance: money(r.balance_minor, r.currency),
          })),
        );
      });
    });
}

function registerExport(program: Command): void {
  program
    .command('export')
    .description('write the ledger of a legal entity and period as a plain-text accounting journal (hledger or beancount)')
    .requiredOption('--format <format>', `one of ${EXPORT_FORMATS.join(', ')}`)
    .requiredOption('--entity <id>', 'legal entity')
    .requiredOption('--period <YYYY-MM>', 'accounting period')
    .option('--out <file>', 'write to a file instead of standard output')
    .option(
      '--accounts <file>',
      "a ledger in several files: write the declarations (commodities, every account of the entity's whole ledger, opened at first use) to FILE and only the period's transactions to --out; include FILE first, then each period's file",
    )
    .action(async (flags: { format: string; entity: string; period: string; out?: string; accounts?: string }) => {
      if (!EXPORT_FORMATS.includes(flags.format as ExportFormat))
        throw new ProblemError([{ path: '--format', code: 'invalid', message: `must be one of ${EXPORT_FORMATS.join(', ')}` }]);
      const period = parsePeriod(flags.period, '--period');
      if (!period.ok) throw new ProblemError(period.problems);
      await withStore(async (store) => {
        requireEntityInScope(await readerScope(store.pool), flags.entity, '--entity');
        const current = await requireCatalog(store.pool);
        if (!current.index.legalEntities.has(flags.entity))
          throw new ProblemError([{ path: '--entity', code: 'unknown', message: `no legal entity ${flags.entity}` }]);
        const journals = await readJournals(store.pool, { entity: flags.entity, from: period.value.start_date, to: period.value.end_date });
        const format = flags.format as ExportFormat;
        const text = exportJournals(format, journals, current.catalog, flags.accounts ? 'transactions' : 'file');
        let accounts: { file: string; journals: number } | undefined;
        if (flags.accounts) {
          const ledger = await readJournals(store.pool, { entity: flags.entity }); // every period: the declarations cover them all
          writeFileSync(flags.accounts, exportJournals(format, ledger, current.catalog, 'declarations'));
          accounts = { file: flags.accounts, journals: ledger.length };
        }
        const wroteAccounts = accounts ? `; declarations of ${accounts.journals} journals to ${accounts.file}` : '';
        if (flags.out) {
          writeFileSync(flags.out, text);
          output(`wrote ${journals.length} journals to ${flags.out}${wroteAccounts}`, {
            file: flags.out,
            format: flags.format,
            entity: flags.entity,
            period: flags.period,
            journals: journals.length,
            ...(accounts ? { accounts } : {}),
          });
        } else if (globals().json)
          output('', {
            format: flags.format,
            entity: flags.entity,
            period: flags.period,
            journals: journals.length,
            text,
            ...(accounts ? { accounts } : {}),
          });
        else {
          process.stdout.write(text);
          if (accounts) process.stderr.write(`accrue: wrote the declarations of ${accounts.journals} journals to ${accounts.file}\n`);
        }
      });
    });
}

function registerPeriod(program: Command): void {
  const period = program.command('period').description('accounting periods per legal entity (open unless closed)');
  period
    .command('close <entity> <period>')
    .description(
      'close an accounting period once reconciled: it runs reconciliation and refuses while an exception of the period is open; then journals dated in it are refused or moved (ACCRUE_CLOSED_PERIOD_POLICY). Proposed for a controller to approve unless controls.approval_required leaves period.close out',
    )
    .option('--erp <names>', 'ERP connections (erp.connections) to reconcile too before closing, comma-separated names')
    .option('--reason <text>', 'why, for the approver and the audit log')
    .action(async (entity: string, periodText: string, flags: { erp?: string; reason?: string }) =>
      runPeriodClose(entity, periodText, flags),
    );
}
