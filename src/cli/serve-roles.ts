// `accrue serve --role api|worker|all`: one binary, separate roles, any number of each against one Postgres.
// Nothing is held in a process that another could not pick up: outbox rows are claimed with leases, notifications
// with row locks, stream messages through one durable consumer, so processes start, stop and die independently.
import { startRollupCatchUp } from '../meter/catch-up.js';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../api/server.js';
import { buildMetricsServer } from '../api/metrics.js';
import { checkpointSink, parseListen, type Config } from './config.js';
import { startCheckpointer, type CheckpointSink } from '../audit/checkpoints.js';
import { groupCommitOptionsFromEnv } from '../ingest/group-commit.js';
import { ProblemError } from '../domain/result.js';
import { runOutboxWorker } from '../post/worker.js';
import { openConfigured } from '../connectors/open.js';
import { startStreamConsumer, type StreamSourceOptions } from '../stream/consumer.js';
import { startNotificationPublisher, type PublisherOptions } from '../stream/notifications.js';
import type { Store } from '../store/store.js';
import type { ConnectionSettings } from '../domain/erp.js';
import { config, apiOptions } from './context.js';
import { publisherOptions, runUntilSignal, sourceOptions, type StreamFlags } from './stream-commands.js';

export const SERVE_ROLES = ['api', 'worker', 'all'] as const;
export type ServeRole = (typeof SERVE_ROLES)[number];

export type ServeFlags = StreamFlags & { host?: string; port?: string; role?: string; metricsListen?: string; metricsAccess?: string };

const jsonLog = (line: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);

export function parseRole(value: string | undefined): ServeRole {
  const role = value ?? process.env.ACCRUE_ROLE ?? 'all';
  if (!(SERVE_ROLES as readonly string[]).includes(role))
    throw new ProblemError([{ path: '--role', code: 'unknown_role', message: `must be api, worker or all, got ${JSON.stringify(role)}` }]);
  return role as ServeRole;
}

/**
 * api: the HTTP API (and the JetStream consumer with --source: ingestion belongs to the API role).
 * worker: one outbox worker per configured ERP target, the notification publisher and, with a signing key, the audit
 * checkpoints (every audit_checkpoint_interval_seconds when the audit log grew); no HTTP.
 * all: both, in one process.
 */
export async function serveRole(flags: ServeFlags): Promise<void> {
  const role = parseRole(flags.role);
  const cfg = config(flags);
  const http = role !== 'worker';
  const source = http && flags.source ? sourceOptions(flags, cfg.futureSkewSeconds * 1000) : undefined;
  // A worker posts to every configured ERP connection (erp.connections); their credentials are opened with the store.
  const connections = role === 'api' ? [] : cfg.erpConnections;
  const notifyWanted = role !== 'api' && flags.notify !== false;
  const notify = notifyWanted ? publisherOptions(flags, flags.source !== undefined) : undefined;
  const notifyChannels = notify ? (notify.nats ? 1 : 0) + (notify.webhooks?.urls.length ?? 0) : 0;
  const checkpoints = role !== 'api' && cfg.auditCheckpointIntervalSeconds > 0 ? checkpointSink(cfg) : undefined;
  if (role === 'worker' && connections.length === 0 && notifyChannels === 0 && checkpoints === undefined) {
    throw new ProblemError([
      {
        path: '--role',
        code: 'nothing_to_do',
        message:
          'a worker needs an ERP connection (erp.connections in the configuration), a notification channel (--source, ACCRUE_NOTIFY_WEBHOOK_URLS) or an audit signing key (ACCRUE_AUDIT_SIGNING_KEY_FILE)',
      },
    ]);
  }
  const metricsListen = cfg.metricsListen === undefined ? undefined : parseListen(cfg.metricsListen, '--metrics-listen');
  const connectors = cfg.erpConnections.map((c) => c.name);
  await runUntilSignal(flags, async (store, stoppers, failed) => {
    const running: Running = { store, stoppers, failed };
    const registry = http ? await startApi(running, cfg, metricsListen, connectors) : undefined;
    if (metricsListen) await startMetrics(running, cfg, metricsListen, registry, connectors);
    if (source) await startConsumer(running, source);
    if (http) startCatchUp(running);
    await startOutboxWorkers(running, connections);
    if (notify && notifyChannels > 0) await startPublisher(running, notify);
    if (checkpoints) startCheckpoints(running, checkpoints, cfg.auditCheckpointIntervalSeconds);
    process.stderr.write(`accrue: serving as role ${role}\n`);
  });
}

/** What a serving process's parts share: the store, what stops them on a signal, and what a part's failure ends. */
interface Running {
  store: Store;
  stoppers: Array<() => Promise<unknown>>;
  failed: (error: Error) => void;
}

type Listen = ReturnType<typeof parseListen>;

/** The HTTP API; its metrics registry, which a separate metrics listener serves too. */
async function startApi(
  { store, stoppers }: Running,
  cfg: Config,
  metricsListen: Listen | undefined,
  connectors: string[],
): Promise<FastifyInstance['metricsRegistry']> {
  const metrics = { access: cfg.metricsAccess, route: metricsListen === undefined, connectors };
  const app = await buildServer({
    ...apiOptions(cfg, store.pool),
    groupCommit: groupCommitOptionsFromEnv(),
    metrics,
  });
  await app.listen({ host: cfg.host, port: cfg.port });
  stoppers.push(() => app.close());
  const where = metricsListen
    ? ''
    : `, metrics at /metrics: ${cfg.metricsAccess === 'key' ? 'read key required' : 'no key asked (see metrics_access, --metrics-listen)'}`;
  process.stderr.write(`accrue: listening on http://${cfg.host}:${cfg.port} (OpenAPI at /openapi.json${where})\n`);
  return app.metricsRegistry;
}

async function startMetrics(
  { store, stoppers }: Running,
  cfg: Config,
  metricsListen: Listen,
  registry: FastifyInstance['metricsRegistry'] | undefined,
  connectors: string[],
): Promise<void> {
  const metricsApp = await buildMetricsServer({ pool: store.pool, access: cfg.metricsAccess, registry, connectors });
  await metricsApp.listen(metricsListen);
  stoppers.push(() => metricsApp.close());
  process.stderr.write(
    `accrue: metrics on http://${cfg.metricsListen}/metrics (${cfg.metricsAccess === 'key' ? 'read key required' : 'no key'})\n`,
  );
}

async function startConsumer({ store, stoppers, failed }: Running, source: StreamSourceOptions): Promise<void> {
  const consumer = await startStreamConsumer(store.pool, source);
  stoppers.push(() => consumer.stop());
  consumer.done.catch(failed);
  process.stderr.write(
    `accrue: consuming stream ${source.stream} (${source.subjects.join(', ')}) as ${source.durable} from ${source.servers}\n`,
  );
}

/** One outbox worker per connection, opened with its credentials. */
async function startOutboxWorkers({ store, stoppers, failed }: Running, connections: readonly ConnectionSettings[]): Promise<void> {
  const targets = connections.length ? (await openConfigured(store.pool, connections)).map((c) => c.target) : [];
  for (const target of targets) {
    const abort = new AbortController();
    // Stops after the pass in hand, so rows it claimed are settled rather than left to wait out their lease.
    const running = runOutboxWorker(store.pool, target, { signal: abort.signal, log: jsonLog });
    running.catch(failed);
    stoppers.push(async () => {
      abort.abort();
      const outcome = await running.catch(() => undefined);
      jsonLog({ level: 'info', msg: 'outbox worker stopped', target: target.name, ...outcome });
    });
    process.stderr.write(`accrue: posting the ${target.name} outbox\n`);
  }
}

async function startPublisher({ store, stoppers, failed }: Running, notify: PublisherOptions): Promise<void> {
  const publisher = await startNotificationPublisher(store.pool, notify);
  stoppers.push(() => publisher.stop());
  publisher.done.catch(failed);
  process.stderr.write(`accrue: publishing notifications to ${publisher.channels.join(', ')}\n`);
}

/** Ingestion stores events; the usage rollups catch up with them every few seconds (src/meter/catch-up.ts). */
function startCatchUp({ store, stoppers }: Running): void {
  const catchUp = startRollupCatchUp(store.pool, { log: (entry) => jsonLog({ level: 'info', ...entry }) });
  stoppers.push(() => catchUp.stop());
}

/** Signed checkpoints of the audit chain: one now and one every interval, each only when the head moved. */
function startCheckpoints({ store, stoppers }: Running, sink: CheckpointSink, intervalSeconds: number): void {
  const checkpointer = startCheckpointer(store.pool, sink, { intervalMs: intervalSeconds * 1000, log: jsonLog });
  stoppers.push(() => checkpointer.stop());
  process.stderr.write(`accrue: signing audit checkpoints to ${sink.file} every ${intervalSeconds} s when the audit log grew\n`);
}
