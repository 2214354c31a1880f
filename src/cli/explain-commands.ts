// `accrue explain`: why a document says what it says, from the ERP reference back to the usage events (docs/explain.md).
import type { Command } from 'commander';
import { ProblemError, type Result } from '../domain/result.js';
import { explainEvent } from '../explain/explain-event.js';
import { explainInvoice } from '../explain/explain-invoice.js';
import { explainJournal } from '../explain/explain-journal.js';
import { renderEventExplanation, renderInvoiceExplanation, renderJournalExplanation } from '../explain/render.js';
import { output, withStore } from './context.js';

function lineOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9]\d{0,5}$/.test(text))
    throw new ProblemError([{ path: '--line', code: 'invalid', message: `must be a line number (1, 2, …), got ${JSON.stringify(text)}` }]);
  return Number.parseInt(text, 10);
}

function valueOf<T>(result: Result<T>): T {
  if (!result.ok) throw new ProblemError(result.problems);
  return result.value;
}

export function registerExplainCommands(program: Command): void {
  const explain = program
    .command('explain')
    .description(
      'trace a document to the usage behind it: rating run, price version and tiers, usage aggregate, the events counted, correlation id, journals and ERP references',
    );
  explain
    .command('invoice <number-or-id>')
    .description('an invoice or credit note (by number, id or correlation id), each line down to the events it counted')
    .option('--line <n>', 'only this line')
    .action(async (ref: string, flags: { line?: string }) => {
      const line = lineOption(flags.line);
      await withStore(async (store) => {
        const explained = valueOf(await explainInvoice(store.pool, ref, { line }));
        output(renderInvoiceExplanation(explained), explained);
      });
    });
  explain
    .command('journal <journal-id>')
    .description(
      'a journal (by id, outbox key or ERP reference): which invoice lines each journal line carries; with --line, those lines down to their events',
    )
    .option('--line <n>', 'explain this journal line down to the events')
    .action(async (ref: string, flags: { line?: string }) => {
      const line = lineOption(flags.line);
      await withStore(async (store) => {
        const explained = valueOf(await explainJournal(store.pool, ref, { line }));
        output(renderJournalExplanation(explained), explained);
      });
    });
  explain
    .command('event')
    .description('walk forward from one usage event: its batch, the invoice lines that counted it, their journals and ERP references')
    .requiredOption('--source <source>', 'the CloudEvents source of the event')
    .requiredOption('--id <id>', 'the CloudEvents id of the event')
    .action(async (flags: { source: string; id: string }) => {
      await withStore(async (store) => {
        const explained = valueOf(await explainEvent(store.pool, flags.source, flags.id));
        output(renderEventExplanation(explained), explained);
      });
    });
}
