// `accrue close`, `accrue bill` and `accrue invoices`: billing runs and the invoices they finalize.
import { approvalNeeded, commandActor, proposeAndReport, readerScope } from './auth.js';
import { planVoid } from '../controls/apply.js';
import { auditActor } from '../domain/controls.js';
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { closePeriod } from '../close/close-period.js';
import { bill } from '../close/bill.js';
import { exportInvoice } from '../invoice/export.js';
import { getInvoice, listInvoices } from '../invoice/store.js';
import { voidInvoice } from '../post/void.js';
import { invoicePdf } from '../invoice/document-pdf.js';
import { parsePeriod } from '../meter/period.js';
import { jsonLogger, logLine } from '../observe/log.js';
import { ProblemError, valueOf } from '../domain/result.js';
import type { Invoice } from '../domain/model.js';
import { globals, output, readText, requireCatalog, withStore } from './context.js';
import { phasedProgress, progress } from './progress.js';
import { table } from './table.js';
import { checkpointSink } from './config.js';
import { reportCheckpoint } from './audit-commands.js';

export function registerInvoiceCommands(program: Command): void {
  registerClose(program);
  registerBill(program);
  registerInvoices(program);
}

function registerClose(program: Command): void {
  program
    .command('close <period>')
    .description(
      'billing run for a month (YYYY-MM): rate every subscription, draft, tax and finalize one invoice per customer, legal entity and currency',
    )
    .option('--entity <id>', 'only this legal entity')
    .option(
      '--erp <targets>',
      'comma-separated ERP targets to queue the journals for, for legal entities not routed to a connection by erp.connections (those go to their connection); only documents in the rollout scope (docs/configuration.md), the rest are held back',
    )
    .option('--log', 'write a JSON log line to stderr per invoice finalized, with its correlation id (docs/explain.md)')
    .option(
      '--early',
      'close a month that has not ended yet (recorded in the audit log); without it such a month is refused, and a future month always is',
    )
    .action(async (period: string, flags: { entity?: string; erp?: string; log?: boolean; early?: boolean }) => {
      await withStore(async (store, cfg) => {
        const actor = await commandActor(store.pool, 'billing.run');
        const current = await requireCatalog(store.pool);
        const checkpoint = checkpointSink(cfg); // read before closing: a key that cannot be read stops nothing half done
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
            by: auditActor(actor),
            erpTargets,
            rollout: cfg.rollout,
            early: flags.early,
            checkpoint,
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
        reportCheckpoint(outcome.audit_checkpoint);
      });
    });
}

function registerBill(program: Command): void {
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
}

function registerInvoices(program: Command): void {
  const invoices = program.command('invoices').description('finalized invoices and credit notes');
  invoices
    .command('list')
    .description('invoices and credit notes, optionally of one period or customer')
    .option('--period <YYYY-MM>', 'one billing period')
    .option('--customer <id>', 'one customer')
    .action(async (flags: { period?: string; customer?: string }) => {
      await withStore(async (store) => {
        const scope = await readerScope(store.pool);
        const rows = await listInvoices(store.pool, { ...flags, entities: scope.length > 0 ? scope : undefined });
        output(invoiceTable(rows), rows.map(exportInvoice));
      });
    });
  invoices
    .command('show <id-or-number>')
    .description('an invoice as JSON, with its lines and their lineage')
    .option('--entity <id>', 'the legal entity whose number it is (needed when two entities share the number)')
    .action(async (id: string, flags: { entity?: string }) => {
      await withStore(async (store) => {
        const invoice = await getInvoice(store.pool, id, { entity: flags.entity, entities: await readerScope(store.pool) });
        if (!invoice) throw new ProblemError([{ path: 'invoice', code: 'not_found', message: `no invoice ${id}` }]);
        process.stdout.write(`${JSON.stringify(invoice, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
      });
    });
  invoices
    .command('pdf <id-or-number>')
    .description('write an invoice as PDF (deterministic: the same invoice gives the same bytes)')
    .requiredOption('--out <file>', 'where to write the PDF')
    .option('--entity <id>', 'the legal entity whose number it is (needed when two entities share the number)')
    .action(async (id: string, flags: { out: string; entity?: string }) => {
      await withStore(async (store) => {
        const invoice = await getInvoice(store.pool, id, { entity: flags.entity, entities: await readerScope(store.pool) });
        if (!invoice) throw new ProblemError([{ path: 'invoice', code: 'not_found', message: `no invoice ${id}` }]);
        const current = await requireCatalog(store.pool);
        const pdf = valueOf(await invoicePdf(invoice, current));
        writeFileSync(flags.out, pdf);
        output(`wrote ${flags.out}`, { file: flags.out });
      });
    });
  registerVoid(invoices);
}

/** `accrue invoices void`: proposed for a controller's approval (src/controls/apply.ts), or the void use case (src/post/void.ts) at once. */
function registerVoid(invoices: Command): void {
  invoices
    .command('void <id-or-number>')
    .description(
      'void a finalized invoice with no payments: reverses its journals (dated today, or the first open accounting period) and voids it in the ERP it went to (Xero: VOIDED; NetSuite: a credit memo transformed from it). A paid one is refused: correct it with a credit note',
    )
    .requiredOption('--reason <text>', 'why it is voided (kept in the audit log and the reversal memo)')
    .option('--entity <id>', 'the legal entity whose number it is (needed when two entities share the number)')
    .action(async (id: string, flags: { reason: string; entity?: string }) => {
      await withStore(async (store, cfg) => {
        const actor = await commandActor(store.pool, 'change.propose');
        if (approvalNeeded(cfg, actor, 'invoice.void')) {
          await proposeAndReport(
            store.pool,
            actor,
            await planVoid(store.pool, actor, { invoice: id, entity: flags.entity, reason: flags.reason }),
          );
          return;
        }
        const outcome = await voidInvoice(store.pool, {
          invoice: id,
          entity: flags.entity,
          reason: flags.reason,
          actor: auditActor(actor),
          at: new Date().toISOString(),
        });
        const name = outcome.invoice.number ?? outcome.invoice.id;
        const lines = [
          outcome.already_void ? `${name} was already void` : `${name} is void`,
          ...outcome.reversals.map(
            (r) =>
              `  reversal ${r.id} dated ${r.posting_date}${r.dated_on && r.dated_on !== r.posting_date ? ` (asked ${r.dated_on}: period closed)` : ''}`,
          ),
          ...outcome.outbox.map((o) => `  outbox ${o.key} (${o.document_kind}) ${o.status}`),
        ];
        output(lines.join('\n'), {
          ...exportInvoice(outcome.invoice),
          already_void: outcome.already_void,
          reversals: outcome.reversals,
          outbox: outcome.outbox,
        });
      });
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
