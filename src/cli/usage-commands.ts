// `accrue usage`: metered usage per customer and meter for a period.
import type { Command } from 'commander';
import { queryUsage } from '../meter/usage.js';
import { monthWindow, parsePeriod } from '../meter/period.js';
import { ProblemError } from '../domain/result.js';
import { output, requireCatalog, withStore } from './context.js';
import { table } from './table.js';

export function registerUsageCommands(program: Command): void {
  program
    .command('usage')
    .description('usage per customer and meter for a period (default: this month), equal to a recount of the stored events')
    .option('--customer <id>', 'one customer')
    .option('--meter <id>', 'one meter')
    .option('--period <YYYY-MM>', 'a calendar month (UTC)')
    .option('--from <time>', 'window start, inclusive (date or RFC 3339)')
    .option('--to <time>', 'window end, exclusive')
    .option('--group-by <keys>', 'comma-separated dimensions')
    .option('--late <mode>', 'exclude (default), include or only late events')
    .action(
      async (flags: {
        customer?: string;
        meter?: string;
        period?: string;
        from?: string;
        to?: string;
        groupBy?: string;
        late?: 'exclude' | 'include' | 'only';
      }) => {
        let window = monthWindow(new Date());
        if (flags.period) {
          const parsed = parsePeriod(flags.period, '--period');
          if (!parsed.ok) throw new ProblemError(parsed.problems);
          window = parsed.value;
        }
        await withStore(async (store) => {
          const current = await requireCatalog(store.pool);
          const result = await queryUsage(store.pool, current.catalog, {
            customer: flags.customer,
            meter: flags.meter,
            from: flags.from ?? window.from,
            to: flags.to ?? window.to,
            groupBy: flags.groupBy
              ?.split(',')
              .map((s) => s.trim())
              .filter(Boolean),
            late: flags.late,
          });
          if (!result.ok) throw new ProblemError(result.problems.map((p) => ({ ...p, path: `--${p.path.replace(/_/g, '-')}` })));
          const dims = [...new Set(result.value.flatMap((r) => Object.keys(r.dimensions)))];
          output(
            table(
              ['customer', 'meter', ...dims, 'quantity', 'events'],
              result.value.map((r) => [r.customer, r.meter, ...dims.map((d) => r.dimensions[d] ?? ''), r.quantity, String(r.event_count)]),
            ),
            result.value,
          );
        });
      },
    );
}
