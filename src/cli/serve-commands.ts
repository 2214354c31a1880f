// `accrue serve` and `accrue migrate`: run the API and workers, bring the schema up to date.
import type { Command } from 'commander';
import { migrate } from '../store/migrate.js';
import { output, withStore } from './context.js';
import { serveRole, type ServeFlags } from './serve-roles.js';

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description(
      'run the HTTP API and/or the workers (outbox posting, notifications); any number of each against one Postgres (docs/scaling.md)',
    )
    .option(
      '--role <role>',
      'api (HTTP and --source ingestion only), worker (outbox workers for the ERP targets in NETSUITE_*/XERO_*, the notification publisher and, with ACCRUE_AUDIT_SIGNING_KEY_FILE, audit checkpoints; no HTTP) or all (default all); also ACCRUE_ROLE',
    )
    .option('--host <host>', 'address to listen on (default 127.0.0.1); also ACCRUE_HOST')
    .option('--port <port>', 'port to listen on (default 8080); also ACCRUE_PORT')
    .option(
      '--metrics-listen <host:port>',
      "serve GET /metrics on this address instead of the API's (e.g. 127.0.0.1:9464; also for --role worker); also ACCRUE_METRICS_LISTEN",
    )
    .option(
      '--metrics-access <access>',
      'who may read GET /metrics: public (default: anyone who reaches the address) or key (an API key with the read or admin scope); also ACCRUE_METRICS_ACCESS',
    )
    .option('--source <url>', 'also consume usage CloudEvents from NATS JetStream, e.g. nats://127.0.0.1:4222 (docs/streaming.md)')
    .option('--stream <name>', 'with --source: the JetStream stream, e.g. USAGE (created when absent)')
    .option('--subjects <list>', 'with --source: subjects of the stream when Accrue creates it (default usage.>)')
    .option('--durable <name>', 'with --source: durable consumer name shared by every process (default accrue-ingest)')
    .option('--no-notify', 'with --source: do not publish notifications (accrue.invoice.finalized, ...) from this process')
    .action(async (flags: ServeFlags) => serveRole(flags)); // owns its shutdown: work in hand finishes before the store closes

  program
    .command('migrate')
    .description('apply pending database migrations (every command also does this on start)')
    .action(async () => {
      await withStore(async (store) => {
        const applied = await migrate(store.pool);
        output(applied.length ? `applied migrations ${applied.join(', ')}` : 'the schema is up to date', { applied });
      });
    });
}
