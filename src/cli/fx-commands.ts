// `accrue fx`: exchange rates as data. Import the ECB's reference-rate file or a date,base,quote,rate file (final once
// imported, audited), look up the rate a document of a date would use, list what is stored, and revalue open
// receivables in other currencies at a month end.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { auditActor } from '../domain/controls.js';
import { FX_SOURCE, type FxFormat } from '../domain/fx.js';
import { isCurrency } from '../domain/money.js';
import { ProblemError } from '../domain/result.js';
import { fxRateAt, fxRateSource, importFxRates, listFxRates } from '../map/fx-rates.js';
import { commandActor, readerScope } from './auth.js';
import { output, requireCatalog, withStore } from './context.js';
import { revalueReceivables } from '../post/fx-revaluation.js';
import { table } from './table.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function currencyFlag(value: string, flag: string): string {
  if (!isCurrency(value))
    throw new ProblemError([
      { path: flag, code: 'unknown_currency', message: `must be an ISO 4217 currency code, got ${JSON.stringify(value)}` },
    ]);
  return value;
}

function dateFlag(value: string, flag: string): string {
  if (!DATE.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`)))
    throw new ProblemError([
      { path: flag, code: 'invalid_date', message: `must be a date such as 2026-11-30, got ${JSON.stringify(value)}` },
    ]);
  return value;
}

function sourceFlag(value: string | undefined): string | undefined {
  if (value !== undefined && !FX_SOURCE.test(value))
    throw new ProblemError([
      { path: '--source', code: 'invalid', message: 'must be lowercase letters, digits, ".", "_" or "-", at most 64' },
    ]);
  return value;
}

function readBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ProblemError([{ path: 'FILE', code: 'unreadable', message: `cannot read ${path}: ${(error as Error).message}` }]);
  }
}

export function registerFxCommands(program: Command): void {
  const fx = program.command('fx').description('exchange rates: import (ECB or date,base,quote,rate), look up, list');
  fx.command('import <file>')
    .description("import a rate file: the ECB's eurofxref.csv / eurofxref-hist.csv, or date,base,quote,rate (needs --source)")
    .option('--format <format>', 'ecb or simple (read from the header when absent)')
    .option('--source <name>', 'the source the rates are filed under (ecb for an ECB file)')
    .action(async (file: string, flags: { format?: string; source?: string }) => {
      if (flags.format !== undefined && flags.format !== 'ecb' && flags.format !== 'simple')
        throw new ProblemError([{ path: '--format', code: 'invalid', message: 'must be ecb or simple' }]);
      const source = sourceFlag(flags.source);
      const bytes = readBytes(file);
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'billing.run');
        const outcome = await importFxRates(
          store.pool,
          { bytes, fileName: basename(file), ...(flags.format ? { format: flags.format as FxFormat } : {}), ...(source ? { source } : {}) },
          auditActor(actor),
        );
        output(
          outcome.repeated
            ? `${file}: imported before as ${outcome.import_id}; nothing new`
            : `${file}: ${outcome.added} rates added, ${outcome.unchanged} already held (source ${outcome.source}, ${outcome.first_date ?? '-'}..${outcome.last_date ?? '-'})`,
          outcome,
        );
      });
    });

  registerLookups(fx);
  fx.command('revalue')
    .description("revalue a legal entity's open receivables in other currencies at a month end, reversed the next day")
    .requiredOption('--entity <id>', 'the legal entity')
    .requiredOption('--period <YYYY-MM>', 'the month whose last day the receivables are revalued at')
    .action(async (flags: { entity: string; period: string }) => {
      if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(flags.period))
        throw new ProblemError([
          { path: '--period', code: 'invalid', message: `must be a month YYYY-MM, got ${JSON.stringify(flags.period)}` },
        ]);
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'billing.run');
        const catalog = await requireCatalog(store.pool);
        const outcome = await revalueReceivables(store.pool, catalog, { entity: flags.entity, period: flags.period }, auditActor(actor));
        const moved = outcome.journals[0];
        output(
          moved
            ? `${outcome.open_items} open receivables in other currencies revalued at ${outcome.rates.map((r) => `${r.currency} ${r.rate} (${r.source} ${r.rate_date})`).join(', ')}: ${moved.id} and its reversal ${outcome.journals[1]!.posting_date}`
            : `${outcome.open_items} open receivables in other currencies; nothing to revalue`,
          outcome,
        );
      });
    });
}

/** rate, list */
function registerLookups(fx: Command): void {
  fx.command('rate')
    .description('the rate a document dated --date converting --from into --to would use (1 from = rate to)')
    .requiredOption('--date <date>', 'the document date, YYYY-MM-DD')
    .requiredOption('--from <currency>', 'the currency converted from (the transaction currency)')
    .requiredOption('--to <currency>', 'the currency converted into (the functional currency)')
    .option('--source <name>', 'the rate source (default ACCRUE_FX_RATE_SOURCE or ecb)')
    .action(async (flags: { date: string; from: string; to: string; source?: string }) => {
      const query = {
        date: dateFlag(flags.date, '--date'),
        from: currencyFlag(flags.from, '--from'),
        to: currencyFlag(flags.to, '--to'),
        source: sourceFlag(flags.source) ?? fxRateSource(),
      };
      if (query.from === query.to)
        throw new ProblemError([{ path: '--to', code: 'same_currency', message: `must differ from --from (${query.from})` }]);
      await withStore(async (store) => {
        await readerScope(store.pool);
        const rate = await fxRateAt(store.pool, query);
        if (!rate)
          throw new ProblemError(
            [
              {
                path: '--date',
                code: 'fx_rate_missing',
                message: `no ${query.source} rate for ${query.from}/${query.to} usable on ${query.date}; import one with accrue fx import`,
              },
            ],
            404,
          );
        output(
          `1 ${query.from} = ${rate.rate} ${query.to} (${rate.source} ${rate.rate_date}${rate.derived ? `, ${rate.derived}${rate.via ? ` via ${rate.via}` : ''}` : ''})`,
          rate,
        );
      });
    });

  fx.command('list')
    .description('stored rates, newest first')
    .option('--source <name>', 'only this source')
    .option('--base <currency>', 'only this base currency')
    .option('--quote <currency>', 'only this quote currency')
    .option('--since <date>', 'only rates on or after this date')
    .option('--limit <n>', 'at most this many (default 100, at most 10000)', '100')
    .action(async (flags: { source?: string; base?: string; quote?: string; since?: string; limit: string }) => {
      if (!/^[1-9]\d{0,4}$/.test(flags.limit) || Number(flags.limit) > 10_000)
        throw new ProblemError([{ path: '--limit', code: 'invalid', message: 'must be a whole number from 1 to 10000' }]);
      const filter = {
        ...(flags.source ? { source: sourceFlag(flags.source)! } : {}),
        ...(flags.base ? { base: currencyFlag(flags.base, '--base') } : {}),
        ...(flags.quote ? { quote: currencyFlag(flags.quote, '--quote') } : {}),
        ...(flags.since ? { since: dateFlag(flags.since, '--since') } : {}),
        limit: Number(flags.limit),
      };
      await withStore(async (store) => {
        await readerScope(store.pool);
        const rates = await listFxRates(store.pool, filter);
        output(
          table(
            ['date', 'source', 'base', 'quote', 'rate'],
            rates.map((r) => [r.date, r.source, r.base, r.quote, r.rate]),
          ),
          rates,
        );
      });
    });
}
