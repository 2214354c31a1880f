// `accrue revenue`: fees billed in advance for a longer term (annual plans) and their recognition month by month.
import type { Command } from 'commander';
import { auditActor } from '../domain/controls.js';
import { formatMajor } from '../domain/money.js';
import { ProblemError } from '../domain/result.js';
import { monthlyAmounts } from '../domain/revenue.js';
import { appendAudit } from '../audit/log.js';
import { readSchedules, recognizeRevenue } from '../post/revenue.js';
import { transaction } from '../store/store.js';
import { commandActor, readerScope } from './auth.js';
import { output, requireCatalog, withStore } from './context.js';
import { table } from './table.js';

const PERIOD = /^\d{4}-(0[1-9]|1[0-2])$/;

export function registerRevenueCommands(program: Command): void {
  const revenue = program.command('revenue').description('revenue schedules of fees billed in advance, and their monthly recognition');
  revenue
    .command('schedule')
    .description('each schedule (an invoice line billed for more than a month) with its monthly parts')
    .option('--entity <id>', 'only this legal entity')
    .option('--customer <id>', 'only this customer')
    .action(async (flags: { entity?: string; customer?: string }) => {
      await withStore(async (store) => {
        const scope = await readerScope(store.pool);
        const schedules = (await readSchedules(store.pool, { entity: flags.entity, customer: flags.customer })).filter(
          (s) => scope.length === 0 || scope.includes(s.legal_entity),
        );
        const rows = schedules.flatMap((s) =>
          monthlyAmounts(s).map((m) => [s.id, s.customer, s.product, m.month, formatMajor(m.amount_minor, s.currency), s.currency]),
        );
        output(
          table(['schedule', 'customer', 'product', 'month', 'amount', 'currency'], rows),
          schedules.map((s) => ({ ...s, months_detail: monthlyAmounts(s) })),
        );
      });
    });
  revenue
    .command('recognize')
    .description("book a month's part of every schedule of a legal entity (the close does it for its month); idempotent")
    .requiredOption('--entity <id>', 'the legal entity')
    .requiredOption('--period <YYYY-MM>', 'the month')
    .action(async (flags: { entity: string; period: string }) => {
      if (!PERIOD.test(flags.period))
        throw new ProblemError([
          { path: '--period', code: 'invalid', message: `must be a month YYYY-MM, got ${JSON.stringify(flags.period)}` },
        ]);
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'billing.run');
        const catalog = await requireCatalog(store.pool);
        const journal = await transaction(store.pool, async (client) => {
          const booked = await recognizeRevenue(client, catalog, { entity: flags.entity, period: flags.period });
          await appendAudit(client, {
            actor: auditActor(actor),
            action: 'revenue.recognize',
            subject: `revrec:${flags.entity}:${flags.period}`,
            details: { journal: booked?.id ?? null },
          });
          return booked;
        });
        output(
          journal
            ? `${journal.id}: ${journal.lines.length} lines, dated ${journal.posting_date}`
            : `nothing to recognize for ${flags.entity} in ${flags.period}`,
          journal,
        );
      });
    });
}
