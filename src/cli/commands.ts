// Every `accrue` sub-command: each parses its flags, calls one use case, and reports (human or --json).
import type { Command } from 'commander';
import { applyCatalog, currentCatalog, listCatalogVersions } from '../catalog/service.js';
import { ingestFile } from '../ingest/file.js';
import { listQuarantine, replayQuarantine } from '../ingest/quarantine.js';
import { queryUsage } from '../meter/usage.js';
import { monthWindow, parsePeriod } from '../meter/period.js';
import { createKey, listKeys, revokeKey, SCOPES, type Scope } from '../api/keys.js';
import { ProblemError } from '../domain/result.js';
import { migrate } from '../store/migrate.js';
import { EXIT, output, readText, withStore, globals } from './context.js';
import { serveRole, type ServeFlags } from './serve-roles.js';
import { phasedProgress, progress } from './progress.js';
import { jsonLogger, logLine } from '../observe/log.js';
import { runDemo } from './demo.js';
import { table } from './table.js';
import { runPeriodClose } from './reconcile-commands.js';
import { closePeriod } from '../close/close-period.js';
import { bill } from '../close/bill.js';
import { exportInvoice } from '../invoice/export.js';
import { getInvoice, listInvoices, voidInvoice } from '../invoice/store.js';
import { renderInvoicePdf } from '../invoice/pdf.js';
import { writeFileSync } from 'node:fs';
import { readJournals } from '../post/journals.js';
import { listDeadLetters, replayDeadLetter } from '../post/outbox.js';
import { runOutboxWorker } from '../post/worker.js';
import { connectionNames, openConfigured } from '../connectors/open.js';
import { trialBalance } from '../domain/journal.js';
import { formatMajor } from '../domain/money.js';
import { EXPORT_FORMATS, exportJournals, type ExportFormat } from '../post/plaintext/exports.js';
import type { Invoice } from '../domain/model.js';

export function registerCommands(program: Command): void {
  program
    .command('serve')
    .description(
      'run the HTTP API and/or the workers (outbox posting, notifications); any number of each against one Postgres (docs/scaling.md)',
    )
    .option(
      '--role <role>',
      'api (HTTP and --source ingestion only), worker (outbox workers for the ERP targets in NETSUITE_*/XERO_* and the notification publisher; no HTTP) or all (default all); also ACCRUE_ROLE',
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

  const catalog = program.command('catalog').description('load and inspect the catalog (docs/catalog.md)');
  catalog
    .command('apply <file>')
    .description('validate a YAML or JSON catalog and make it the version in force; the same content twice is a no-op')
    .option('--by <who>', 'who applies it, for the version history', process.env.USER ?? 'cli')
    .action(async (file: string, flags: { by: string }) => {
      const text = readText(file);
      await withStore(async (store) => {
        const result = await applyCatalog(store.pool, text, {
          by: flags.by,
          source: file,
          format: /\.json$/i.test(file) ? 'json' : undefined,
        });
        if (!result.ok) throw new ProblemError(result.problems);
        const { version, hash, changed } = result.value;
        output(
          changed
            ? `catalog version ${version} applied (sha256 ${hash})`
            : `unchanged: catalog version ${version} already has this content (sha256 ${hash})`,
          result.value,
        );
      });
    });
  catalog
    .command('show')
    .description('print the catalog in force as JSON')
    .action(async () => {
      await withStore(async (store) => {
        const current = await currentCatalog(store.pool);
        if (!current)
          throw new ProblemError([
            { path: '', code: 'no_catalog', message: 'no catalog has been applied; run `accrue catalog apply FILE`' },
          ]);
        process.stdout.write(`${JSON.stringify({ version: current.version, hash: current.hash, catalog: current.catalog }, null, 2)}\n`);
      });
    });
  catalog
    .command('versions')
    .description('list catalog versions with who applied them, when, and their content hash')
    .action(async () => {
      await withStore(async (store) => {
        const versions = await listCatalogVersions(store.pool);
        output(
          table(
            ['version', 'applied_at', 'applied_by', 'sha256'],
            versions.map((v) => [String(v.version), v.applied_at, v.applied_by, v.hash.slice(0, 16)]),
          ),
          versions,
        );
      });
    });

  program
    .command('ingest <file>')
    .description(
      'ingest an NDJSON file of CloudEvents (one per line, read strictly: docs/ingestion.md#reading-json); prints what was accepted, duplicate, conflicting, rejected or quarantined; exits 2 when a line was rejected, naming its line, field and byte',
    )
    .action(async (file: string) => {
      await withStore(async (store, cfg) => {
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

  const keys = program
    .command('keys')
    .description('API keys: each has one scope (ingest, read, admin) and, for ingest, the sources it may send');
  keys
    .command('create')
    .description('create a key and print it once (only its hash is stored)')
    .requiredOption('--scope <scope>', `one of ${SCOPES.join(', ')}`)
    .option('--name <name>', 'what the key is for', 'unnamed')
    .option('--sources <list>', 'comma-separated CloudEvents sources an ingest key may send (default: any)')
    .action(async (flags: { scope: string; name: string; sources?: string }) => {
      if (!SCOPES.includes(flags.scope as Scope))
        throw new ProblemError([{ path: '--scope', code: 'invalid', message: `must be one of ${SCOPES.join(', ')}` }]);
      await withStore(async (store) => {
        const { key, secret } = await createKey(store.pool, {
          name: flags.name,
          scope: flags.scope as Scope,
          sources: flags.sources
            ?.split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        });
        output(`${secret}\n(key ${key.id}, scope ${key.scope}; store it now: it is not shown again)`, { ...key, secret });
      });
    });
  keys
    .command('list')
    .description('list keys (never their secrets)')
    .action(async () => {
      await withStore(async (store) => {
        const rows = await listKeys(store.pool);
        output(
          table(
            ['id', 'name', 'scope', 'sources', 'revoked'],
            rows.map((r) => [r.id, r.name, r.scope, (r.sources as string[]).join(',') || '*', r.revoked_at ? 'yes' : '']),
          ),
          rows,
        );
      });
    });
  keys
    .command('revoke <id>')
    .description(
      "revoke a key: refused at once by this database's processes that have not used it in the last 5 s, and by every process within 5 s (each caches a key it has checked for that long)",
    )
    .action(async (id: string) => {
      await withStore(async (store) => {
        const done = await revokeKey(store.pool, id);
        if (!done) throw new ProblemError([{ path: 'id', code: 'not_found', message: `no active key ${id}` }]);
        output(`revoked ${id}`, { id, revoked: true });
      });
    });

  const quarantine = program.command('quarantine').description('events held back because the catalog did not know their type or subject');
  quarantine
    .command('list')
    .description('quarantined events waiting for the catalog to know their type or subject (--all: replayed ones too)')
    .option('--all', 'include replayed entries')
    .option('--limit <n>', 'at most this many', '100')
    .action(async (flags: { all?: boolean; limit: string }) => {
      await withStore(async (store) => {
        const rows = await listQuarantine(store.pool, { all: flags.all, limit: Number.parseInt(flags.limit, 10) });
        output(
          table(
            ['seq', 'source', 'id', 'reason', 'replayed'],
            rows.map((r) => [String(r.seq), r.source, r.id, r.reason, r.replay_result ?? '']),
          ),
          rows,
        );
      });
    });
  quarantine
    .command('replay')
    .description('ingest quarantined events the catalog in force now knows')
    .action(async () => {
      await withStore(async (store) => {
        const result = await replayQuarantine(store.pool, await requireCatalog(store.pool));
        output(
          Object.entries(result)
            .map(([k, v]) => `${k}: ${v}`)
            .join('\n'),
          result,
        );
      });
    });

  program
    .command('close <period>')
    .description(
      'billing run for a month (YYYY-MM): rate every subscription, draft, tax and finalize one invoice per customer, legal entity and currency',
    )
    .option('--entity <id>', 'only this legal entity')
    .option('--by <who>', 'who runs it, for the audit log', process.env.USER ?? 'cli')
    .option(
      '--erp <targets>',
      'comma-separated ERP targets to queue the journals for, for legal entities not routed to a connection by erp.connections (those go to their connection); only documents in the rollout scope (docs/configuration.md), the rest are held back',
    )
    .option('--log', 'write a JSON log line to stderr per invoice finalized, with its correlation id (docs/explain.md)')
    .option(
      '--early',
      'close a month that has not ended yet (recorded in the audit log); without it such a month is refused, and a future month always is',
    )
    .action(async (period: string, flags: { entity?: string; erp?: string; by: string; log?: boolean; early?: boolean }) => {
      await withStore(async (store, cfg) => {
        const current = await requireCatalog(store.pool);
        const erpTargets = flags.erp
          ?.split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const bar = phasedProgress('close', { quiet: globals().json });
        let outcome;
        try {
          outcome = await closePeriod(store.pool, current, {
            period,
            legalEntity: flags.entity,
            by: flags.by,
            erpTargets,
            rollout: cfg.rollout,
            early: flags.early,
            log: flags.log ? logLine(jsonLogger()) : undefined,
            progress: (done, total, note) => bar.update(done, total, note),
          });
        } finally {
          bar.stop();
        }
        if (outcome.resumed)
          process.stderr.write(
            `accrue: resumed the close of ${outcome.period}, which another run had begun and not finished: it failed, was killed or still runs (event watermark ${outcome.event_seq_watermark})\n`,
          );
        if (outcome.early) process.stderr.write(`accrue: closed ${outcome.period} before it ended (--early); recorded in the audit log\n`);
        output(invoiceTable(outcome.invoices), outcome.invoices.map(exportInvoice));
      });
    });

  program
    .command('bill')
    .description(
      'one-shot billing in a throw-away embedded database: ingest, meter, rate, invoice and journal; writes DIR/invoices.json, DIR/journals.json and DIR/ledger.journal (hledger)',
    )
    .requiredOption('--catalog <file>', 'catalog (YAML or JSON)')
    .requiredOption('--events <file>', 'usage events, NDJSON CloudEvents')
    .requiredOption('--period <YYYY-MM>', 'the month to bill')
    .requiredOption('--out <dir>', 'where to write invoices.json, journals.json and ledger.journal')
    .action(async (flags: { catalog: string; events: string; period: string; out: string }) => {
      const period = parsePeriod(flags.period, '--period');
      if (!period.ok) throw new ProblemError(period.problems);
      const catalogText = readText(flags.catalog);
      readText(flags.events);
      const bar = progress('ingest', { quiet: globals().json });
      const outcome = await bill({
        catalogText,
        catalogSource: flags.catalog,
        eventsFile: flags.events,
        period: flags.period,
        outDir: flags.out,
        onProgress: (d, t) => bar.update(d, t),
      });
      bar.stop();
      const counts = Object.entries(outcome.ingest.counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      for (const p of outcome.ingest.problems.slice(0, 20)) {
        process.stderr.write(
          `  line ${p.line}: ${p.status}${p.problems?.length ? `: ${p.problems.map((x) => `${x.path}: ${x.message}`).join('; ')}` : ''}\n`,
        );
      }
      output(`events: ${counts}\n${invoiceTable(outcome.invoices)}\nwrote ${outcome.files.join(', ')}`, {
        ingest: outcome.ingest.counts,
        files: outcome.files,
        invoices: outcome.invoices.map(exportInvoice),
      });
    });

  const invoices = program.command('invoices').description('finalized invoices and credit notes');
  invoices
    .command('list')
    .description('invoices and credit notes, optionally of one period or customer')
    .option('--period <YYYY-MM>', 'one billing period')
    .option('--customer <id>', 'one customer')
    .action(async (flags: { period?: string; customer?: string }) => {
      await withStore(async (store) => {
        const rows = await listInvoices(store.pool, flags);
        output(invoiceTable(rows), rows.map(exportInvoice));
      });
    });
  invoices
    .command('show <id-or-number>')
    .description('an invoice as JSON, with its lines and their lineage')
    .action(async (id: string) => {
      await withStore(async (store) => {
        const invoice = await getInvoice(store.pool, id);
        if (!invoice) throw new ProblemError([{ path: 'invoice', code: 'not_found', message: `no invoice ${id}` }]);
        process.stdout.write(`${JSON.stringify(invoice, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
      });
    });
  invoices
    .command('pdf <id-or-number>')
    .description('write an invoice as PDF (deterministic: the same invoice gives the same bytes)')
    .requiredOption('--out <file>', 'where to write the PDF')
    .action(async (id: string, flags: { out: string }) => {
      await withStore(async (store) => {
        const invoice = await getInvoice(store.pool, id);
        if (!invoice) throw new ProblemError([{ path: 'invoice', code: 'not_found', message: `no invoice ${id}` }]);
        const current = await requireCatalog(store.pool);
        const pdf = await renderInvoicePdf({
          invoice,
          legalEntity: current.index.legalEntities.get(invoice.legal_entity)!,
          customer: current.index.customers.get(invoice.customer)!,
          products: new Map(current.catalog.products.map((p) => [p.id, { name: p.name }])),
        });
        writeFileSync(flags.out, pdf);
        output(`wrote ${flags.out}`, { file: flags.out });
      });
    });
  invoices
    .command('void <id-or-number>')
    .description('void a finalized invoice with no payments (a paid one is corrected with a credit note)')
    .option('--by <who>', 'who voids it, for the audit log', process.env.USER ?? 'cli')
    .action(async (id: string, flags: { by: string }) => {
      await withStore(async (store) => {
        const invoice = await voidInvoice(store.pool, id, flags.by);
        output(`${invoice.number ?? invoice.id} is void`, exportInvoice(invoice));
      });
    });

  const ledger = program.command('ledger').description('the built-in general ledger');
  ledger
    .command('trial-balance')
    .description('debits, credits and balance per account for a legal entity and period')
    .requiredOption('--entity <id>', 'legal entity')
    .requiredOption('--period <YYYY-MM>', 'accounting period')
    .action(async (flags: { entity: string; period: string }) => {
      const period = parsePeriod(flags.period, '--period');
      if (!period.ok) throw new ProblemError(period.problems);
      await withStore(async (store) => {
        const journals = await readJournals(store.pool, { entity: flags.entity, from: period.value.start_date, to: period.value.end_date });
        const rows = trialBalance(journals);
        const money = (v: bigint, c: string) => formatMajor(v, c);
        output(
          table(
            ['account', 'currency', 'debit', 'credit', 'balance'],
            rows.map((r) => [
              r.account,
              r.currency,
              money(r.debit_minor, r.currency),
              money(r.credit_minor, r.currency),
              money(r.balance_minor, r.currency),
            ]),
          ),
          rows.map((r) => ({
            ...r,
            debit: money(r.debit_minor, r.currency),
            credit: money(r.credit_minor, r.currency),
            balance: money(r.balance_minor, r.currency),
          })),
        );
      });
    });

  program
    .command('export')
    .description('write the ledger of a legal entity and period as a plain-text accounting journal (hledger or beancount)')
    .requiredOption('--format <format>', `one of ${EXPORT_FORMATS.join(', ')}`)
    .requiredOption('--entity <id>', 'legal entity')
    .requiredOption('--period <YYYY-MM>', 'accounting period')
    .option('--out <file>', 'write to a file instead of standard output')
    .option(
      '--accounts <file>',
      "a ledger in several files: write the declarations (commodities, every account of the entity's whole ledger, opened at first use) to FILE and only the period's transactions to --out; include FILE first, then each period's file",
    )
    .action(async (flags: { format: string; entity: string; period: string; out?: string; accounts?: string }) => {
      if (!EXPORT_FORMATS.includes(flags.format as ExportFormat))
        throw new ProblemError([{ path: '--format', code: 'invalid', message: `must be one of ${EXPORT_FORMATS.join(', ')}` }]);
      const period = parsePeriod(flags.period, '--period');
      if (!period.ok) throw new ProblemError(period.problems);
      await withStore(async (store) => {
        const current = await requireCatalog(store.pool);
        if (!current.index.legalEntities.has(flags.entity))
          throw new ProblemError([{ path: '--entity', code: 'unknown', message: `no legal entity ${flags.entity}` }]);
        const journals = await readJournals(store.pool, { entity: flags.entity, from: period.value.start_date, to: period.value.end_date });
        const format = flags.format as ExportFormat;
        const text = exportJournals(format, journals, current.catalog, flags.accounts ? 'transactions' : 'file');
        let accounts: { file: string; journals: number } | undefined;
        if (flags.accounts) {
          const ledger = await readJournals(store.pool, { entity: flags.entity }); // every period: the declarations cover them all
          writeFileSync(flags.accounts, exportJournals(format, ledger, current.catalog, 'declarations'));
          accounts = { file: flags.accounts, journals: ledger.length };
        }
        const wroteAccounts = accounts ? `; declarations of ${accounts.journals} journals to ${accounts.file}` : '';
        if (flags.out) {
          writeFileSync(flags.out, text);
          output(`wrote ${journals.length} journals to ${flags.out}${wroteAccounts}`, {
            file: flags.out,
            format: flags.format,
            entity: flags.entity,
            period: flags.period,
            journals: journals.length,
            ...(accounts ? { accounts } : {}),
          });
        } else if (globals().json)
          output('', {
            format: flags.format,
            entity: flags.entity,
            period: flags.period,
            journals: journals.length,
            text,
            ...(accounts ? { accounts } : {}),
          });
        else {
          process.stdout.write(text);
          if (accounts) process.stderr.write(`accrue: wrote the declarations of ${accounts.journals} journals to ${accounts.file}\n`);
        }
      });
    });

  const period = program.command('period').description('accounting periods per legal entity (open unless closed)');
  period
    .command('close <entity> <period>')
    .description(
      'close an accounting period once reconciled: it runs reconciliation and refuses while an exception of the period is open; then journals dated in it are refused or moved (ACCRUE_CLOSED_PERIOD_POLICY)',
    )
    .option('--by <who>', 'who closes it', process.env.USER ?? 'cli')
    .option('--erp <names>', 'ERP connections (erp.connections) to reconcile too before closing, comma-separated names')
    .action(async (entity: string, periodText: string, flags: { by: string; erp?: string }) => runPeriodClose(entity, periodText, flags));

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
    .option('--by <who>', 'who replays it, for the audit log', process.env.USER ?? 'cli')
    .action(async (id: string, flags: { by: string }) => {
      await withStore(async (store) => {
        if (!(await replayDeadLetter(store.pool, id, flags.by)))
          throw new ProblemError([{ path: 'id', code: 'not_found', message: `no dead letter ${id}` }]);
        output(`dead letter ${id} queued again`, { id, replayed: true });
      });
    });

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

function invoiceTable(invoices: Invoice[]): string {
  return table(
    ['number', 'customer', 'currency', 'subtotal', 'discount', 'credits', 'tax', 'total'],
    invoices.map((i) => {
      const e = exportInvoice(i);
      return [e.number ?? '(draft)', e.customer, e.currency, e.subtotal, e.discount, e.credits_applied, e.tax, e.total];
    }),
  );
}

async function requireCatalog(pool: import('pg').Pool) {
  const current = await currentCatalog(pool);
  if (!current)
    throw new ProblemError([
      { path: '', code: 'no_catalog', message: 'no catalog has been applied; run `accrue catalog apply FILE` first' },
    ]);
  return current;
}

/**
 * A drain's progress for `accrue post`: entries settled out of those pending when it started, read from the outbox
 * every second (the worker stays unaware of it). Quiet with --json, with --follow and when nothing is pending.
 */
async function withPostingProgress<T>(
  pool: import('pg').Pool,
  target: string,
  follow: boolean | undefined,
  work: () => Promise<T>,
): Promise<T> {
  const pendingNow = async () =>
    Number(
      (await pool.query<{ n: string }>("SELECT count(*) AS n FROM outbox WHERE target = $1 AND status = 'pending'", [target])).rows[0]!.n,
    );
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
