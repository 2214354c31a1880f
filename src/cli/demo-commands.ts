// `accrue demo`: the Northwind catalog and a month of seeded usage, end to end.
import type { Command } from 'commander';
import { parsePeriod } from '../meter/period.js';
import { ProblemError } from '../domain/result.js';
import { withStore } from './context.js';
import { runDemo } from './demo.js';

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('load the Northwind catalog, generate a month of seeded usage, ingest it and report usage per customer and meter')
    .option('--events <n>', 'how many events to generate', '1000000')
    .option('--seed <n>', 'random seed (same seed, same events)', '42')
    .option('--period <YYYY-MM>', 'the month to simulate', '2026-11')
    .option('--catalog <file>', 'catalog to load', 'examples/northwind/catalog.yaml')
    .option('--out <dir>', 'where to write the sample invoice PDF and invoices.json', 'out/demo')
    .action(async (flags: { events: string; seed: string; period: string; catalog: string; out: string }) => {
      const events = Number.parseInt(flags.events, 10);
      const seed = Number.parseInt(flags.seed, 10);
      if (!Number.isSafeInteger(events) || events < 0)
        throw new ProblemError([{ path: '--events', code: 'invalid', message: 'must be a whole number' }]);
      if (!Number.isSafeInteger(seed)) throw new ProblemError([{ path: '--seed', code: 'invalid', message: 'must be a whole number' }]);
      const period = parsePeriod(flags.period, '--period');
      if (!period.ok) throw new ProblemError(period.problems);
      await withStore((store) => runDemo(store, { events, seed, period: period.value, catalogFile: flags.catalog, outDir: flags.out }));
    });
}
