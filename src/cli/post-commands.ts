// `accrue post` and `accrue dlq`: drain the outbox to the ERPs, inspect and replay dead letters.
import { commandActor } from './auth.js';
import { auditActor } from '../domain/controls.js';
import type { Command } from 'commander';
import type pg from 'pg';
import { countPending, listDeadLetters, replayDeadLetter } from '../post/outbox.js';
import { runOutboxWorker } from '../post/worker.js';
import { connectionNames, openConfigured } from '../connectors/open.js';
import { jsonLogger, logLine } from '../observe/log.js';
import { ProblemError } from '../domain/result.js';
import { globals, output, withStore } from './context.js';
import { progress } from './progress.js';
import { table } from './table.js';

export function registerPostCommands(program: Command): void {
  registerPost(program);
  registerDlq(program);
}

function registerPost(program: Command): void {
  program
    .command('post')
    .description(
      'drain the outbox to the configured ERP connections (erp.connections): look each document up by its key, post what is missing, retry, wait or dead-letter',
    )
    .option('--connection <names>', 'the connections to post to, comma-separated (default: every configured connection)')
    .option('--target <names>', 'the same as --connection (the name used before connections)')
    .option('--follow', 'keep running as a worker (until Ctrl-C) instead of stopping when nothing is pending')
    .action(async (flags: { connection?: string; target?: string; follow?: boolean }) => {
      const abort = new AbortController();
      const work = { untilEmpty: !flags.follow, signal: abort.signal, log: logLine(jsonLogger()) };
      if (flags.follow) process.once('SIGTERM', () => abort.abort());
      await withStore(async (store, cfg) => {
        await commandActor(store.pool, 'billing.run');
        const opened = await openConfigured(store.pool, cfg.erpConnections, connectionNames(flags.connection ?? flags.target));
        const outcomes = await Promise.all(
          opened.map(async ({ target }) => ({
            connection: target.name,
            ...(await withPostingProgress(store.pool, target.name, flags.follow, () => runOutboxWorker(store.pool, target, work))),
          })),
        );
        output(
          outcomes
            .map((o) =>
              Object.entries(o)
                .map(([k, v]) => `${k}: ${v}`)
                .join('\n'),
            )
            .join('\n\n'),
          outcomes.length === 1 ? outcomes[0] : outcomes,
        );
      });
    });
}

function registerDlq(program: Command): void {
  const dlq = program.command('dlq').description('the dead-letter queue: documents an ERP refused or that ran out of retries');
  dlq
    .command('list')
    .description('dead letters with their target, document, attempts and last error')
    .option('--target <name>', 'one target')
    .action(async (flags: { target?: string }) => {
      await withStore(async (store) => {
        const rows = await listDeadLetters(store.pool, flags.target);
        output(
          table(
            ['id', 'target', 'document', 'attempts', 'error'],
            rows.map((r) => [String(r.id), r.target, r.document_id, String(r.attempts), String(r.last_error?.message ?? '')]),
          ),
          rows,
        );
      });
    });
  dlq
    .command('show <id>')
    .description("one dead letter as JSON, with the target's last answer")
    .action(async (id: string) => {
      await withStore(async (store) => {
        const row = (await listDeadLetters(store.pool)).find((r) => String(r.id) === id);
        if (!row) throw new ProblemError([{ path: 'id', code: 'not_found', message: `no dead letter ${id}` }]);
        process.stdout.write(`${JSON.stringify(row, null, 2)}\n`);
      });
    });
  dlq
    .command('replay <id>')
    .description('put a dead letter back in the outbox; the next `accrue post` looks it up first, so it posts at most once')
    .action(async (id: string) => {
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'billing.run');
        if (!(await replayDeadLetter(store.pool, id, auditActor(actor))))
          throw new ProblemError([{ path: 'id', code: 'not_found', message: `no dead letter ${id}` }]);
        output(`dead letter ${id} queued again`, { id, replayed: true });
      });
    });
}

/**
 * A drain's progress for `accrue post`: entries settled out of those pending when it started, read from the outbox
 * every second (the worker stays unaware of it). Quiet with --json, with --follow and when nothing is pending.
 */
async function withPostingProgress<T>(pool: pg.Pool, target: string, follow: boolean | undefined, work: () => Promise<T>): Promise<T> {
  const pendingNow = () => countPending(pool, target);
  const initial = await pendingNow();
  const bar = progress(`post ${target}`, { quiet: globals().json || follow || initial === 0 });
  const show = (pending: number) => bar.update(Math.max(0, initial - pending), initial, 'settled');
  show(initial);
  const timer = setInterval(() => void pendingNow().then(show, () => undefined), 1_000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    await pendingNow().then(show, () => undefined);
    bar.stop();
  }
}
