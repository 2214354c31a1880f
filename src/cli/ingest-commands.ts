// `accrue ingest`: an NDJSON file of CloudEvents into the store, with what became of each line.
import { commandActor } from './auth.js';
import type { Command } from 'commander';
import { ingestFile } from '../ingest/file.js';
import { EXIT, globals, output, requireCatalog, withStore } from './context.js';
import { progress } from './progress.js';

export function registerIngestCommands(program: Command): void {
  program
    .command('ingest <file>')
    .description(
      'ingest an NDJSON file of CloudEvents (one per line, read strictly: docs/ingestion.md#reading-json); prints what was accepted, duplicate, conflicting, rejected or quarantined; exits 2 when a line was rejected, naming its line, field and byte',
    )
    .action(async (file: string) => {
      await withStore(async (store, cfg) => {
        await commandActor(store.pool, 'events.write');
        const current = await requireCatalog(store.pool);
        const bar = progress('ingest', { quiet: globals().json });
        const result = await ingestFile(store.pool, current, file, {
          futureSkewMsMax: cfg.futureSkewSeconds * 1000,
          onProgress: (done, total) => bar.update(done, total),
        });
        bar.stop();
        const summary = Object.entries(result.counts)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ');
        const details = result.problems
          .slice(0, 20)
          .map(
            (p) =>
              `  line ${p.line}: ${p.status}${p.problems?.length ? `: ${p.problems.map((x) => `${x.path}: ${x.message}`).join('; ')}` : ''}`,
          );
        output(
          [
            `${file}: ${result.lines} lines: ${summary}`,
            ...details,
            result.problems.length > 20 ? `  … ${result.problems.length - 20} more (use --json)` : '',
          ]
            .filter(Boolean)
            .join('\n'),
          result,
        );
        // A line that was refused (not JSON, not UTF-8, a repeated key, an inexact number, an invalid event) makes the
        // file bad input: exit 2 (docs/cli.md). The other lines were ingested; running the fixed file again is safe.
        if (result.counts.rejected > 0) {
          const first = result.problems.find((p) => p.status === 'rejected');
          const where = first?.problems?.[0]
            ? `line ${first.line}: ${first.problems[0].path ? `${first.problems[0].path}: ` : ''}${first.problems[0].message}`
            : '';
          process.stderr.write(`accrue: ${file}: ${result.counts.rejected} line(s) rejected${where ? `, first at ${where}` : ''}\n`);
          process.exitCode = EXIT.badInput;
        }
      });
    });
}
