// `accrue compare`: the parallel run against a legacy billing system's export (docs/legacy-format.md).
import type { Command } from 'commander';
import { currentCatalog } from '../catalog/service.js';
import { ProblemError } from '../domain/result.js';
import { formatComparison } from '../reconcile/compare.js';
import { runLegacyComparison } from '../reconcile/legacy-run.js';
import { EXIT, globals, output, withStore } from './context.js';
import { progress } from './progress.js';

/** Exit codes of `accrue compare`: everything matched, differences found, bad input (as every command). */
export const COMPARE_EXIT = { matched: EXIT.ok, differences: 1, badInput: EXIT.badInput } as const;

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerCompareCommands(program: Command): void {
  program
    .command('compare')
    .description(
      "parallel run: compare a period's finalized invoice lines (per customer, product, currency, legal entity) and journal lines " +
        '(per entity, account, currency) with a legacy export DIR/invoices.csv (+ DIR/journal_lines.csv); ' +
        `exit ${COMPARE_EXIT.matched} when everything matches, ${COMPARE_EXIT.differences} when differences exist, ${COMPARE_EXIT.badInput} on bad input`,
    )
    .requiredOption('--legacy <dir>', 'directory with invoices.csv and optionally journal_lines.csv (docs/legacy-format.md)')
    .requiredOption('--period <YYYY-MM>', 'the billing period to compare')
    .option(
      '--scope <name=value>',
      'narrow the comparison: customers=a,b (invoices only) or entity=<legal entity>; repeatable',
      collect,
      [] as string[],
    )
    .option('--all', 'list matched rows too, not only the differences')
    // A missing or unknown flag is bad input (2), not "differences" (1), which commander's default exit code would claim.
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : COMPARE_EXIT.badInput))
    .addHelpText(
      'after',
      '\nExit codes: 0 everything compared matches; 1 differences (differing amounts or lines missing on either side); 2 bad input.',
    )
    .action(async (flags: { legacy: string; period: string; scope: string[]; all?: boolean }) => {
      await withStore(async (store) => {
        const bar = progress('compare', { quiet: globals().json });
        const run = await runLegacyComparison(store.pool, {
          legacyDir: flags.legacy,
          period: flags.period,
          scope: flags.scope,
          catalog: await currentCatalog(store.pool),
          onProgress: (done, total, note) => bar.update(done, total, note),
        });
        bar.stop();
        if (!run.ok) throw new ProblemError(run.problems);
        const { report, left_out } = run.value;
        const notes = [
          left_out.other_periods.invoices + left_out.other_periods.journal_lines > 0
            ? `Left out: ${left_out.other_periods.invoices} invoice rows and ${left_out.other_periods.journal_lines} journal rows of other periods than ${run.value.period}.`
            : '',
          left_out.zero_invoice_keys > 0 ? `Left out: ${left_out.zero_invoice_keys} legacy invoice keys summing to zero.` : '',
        ].filter(Boolean);
        output(
          `Period ${run.value.period}, legacy export ${run.value.legacy_dir}\n${formatComparison(report, { all: flags.all })}${notes.join('\n')}`.trimEnd(),
          run.value,
        );
        process.exitCode = report.matches ? COMPARE_EXIT.matched : COMPARE_EXIT.differences;
      });
    });
}
