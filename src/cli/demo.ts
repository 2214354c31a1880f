// The demo: Northwind's month from usage to (in later stages) invoices, the books and cash.
import { createPrincipal, listPrincipals } from '../controls/principals.js';
import { proposeChange } from '../controls/changes.js';
import { decide, planCatalogChange } from '../controls/apply.js';
import { systemActor, type Actor, type Role } from '../domain/controls.js';
import { applyCatalog, type CatalogVersion } from '../catalog/service.js';
import { generateUsage, type CloudEvent } from '../demo/generate.js';
import { INGEST_LIMITS } from '../ingest/cloudevent.js';
import { ingestBatch, type EventStatus } from '../ingest/service.js';
import type { PeriodWindow } from '../meter/period.js';
import { queryUsage } from '../meter/usage.js';
import { ProblemError, valueOf } from '../domain/result.js';
import type { Store } from '../store/store.js';
import { readText, output } from './context.js';
import { progress } from './progress.js';
import { table, trialBalanceTable } from './table.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closePeriod } from '../close/close-period.js';
import { exportInvoice, exportInvoices } from '../invoice/export.js';
import { invoicePdf } from '../invoice/document-pdf.js';
import { readJournals } from '../post/journals.js';
import { trialBalance } from '../domain/journal.js';
import { formatMajor } from '../domain/money.js';
import { exportJournals } from '../post/plaintext/exports.js';
import { applyPayment } from '../settle/payments.js';
import { checkPlanted, writeLegacyOutput } from '../demo/legacy.js';
import { runLegacyComparison } from '../reconcile/legacy-run.js';
import { formatComparison } from '../reconcile/compare.js';
import { reconcilePeriod } from '../reconcile/run.js';
import { reconcileText } from './reconcile-commands.js';
import { explainInvoice } from '../explain/explain-invoice.js';
import { renderInvoiceExplanation } from '../explain/render.js';
import { verifyAudit } from '../audit/log.js';

export interface DemoOptions {
  events: number;
  seed: number;
  period: PeriodWindow;
  catalogFile: string;
  outDir: string;
}

const INGEST_CONCURRENCY = 4;

export async function runDemo(store: Store, options: DemoOptions): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const catalog = await applyDemoCatalog(store, options, log);
  // The demo plays the month back, so its clock stands just after the period ends.
  const demo: Demo = { store, options, catalog, now: new Date(options.period.to), log };
  const counts = await ingestUsage(demo);
  await showUsage(demo, counts);

  // Close the month: rate, draft, tax and finalize every invoice (a re-run returns the same documents).
  const closed = await closePeriod(store.pool, catalog, { period: options.period.period, now: demo.now });
  await showInvoices(demo, closed.invoices);

  // Settle a share of the month: every other invoice is paid in full, as payments from the ERP would report.
  await payEveryOther(demo, closed.invoices);

  // The books: every finalized invoice was journaled into the built-in ledger in the transaction that finalized it.
  await showBooks(demo);

  // The controls: reconciliation of the month (clean), one invoice line explained down to its events, the audit chain verified.
  await showControls(demo, closed.invoices);

  // The parallel run: a legacy export written from these numbers with planted differences, and `accrue compare` finding them.
  await parallelRun(demo);

  // Four eyes: a price change for next month proposed by an operator, refused to her, in force once a controller approves.
  await fourEyes(demo);
  log(
    `\ndashboard of this month: run \`npx accrue serve\` and open http://127.0.0.1:8080/#/overview?period=${options.period.period} with a key from \`npx accrue keys create --principal NAME --name dashboard\` (docs/controls.md)`,
  );
}

/** What the demo's steps share: the store, the options, the catalog in force, the demo's clock and its log. */
interface Demo {
  store: Store;
  options: DemoOptions;
  catalog: CatalogVersion;
  now: Date;
  log: (line: string) => void;
}

type DemoInvoices = Awaited<ReturnType<typeof closePeriod>>['invoices'];

async function applyDemoCatalog(store: Store, options: DemoOptions, log: (line: string) => void): Promise<CatalogVersion> {
  const applied = await applyCatalog(store.pool, readText(options.catalogFile), { by: 'demo', source: options.catalogFile });
  if (!applied.ok) throw new ProblemError(applied.problems);
  const { catalogVersion } = await import('../catalog/service.js');
  const catalog = (await catalogVersion(store.pool, applied.value.version))!;
  log(`catalog ${options.catalogFile}: version ${applied.value.version}${applied.value.changed ? '' : ' (unchanged)'}`);
  return catalog;
}

/** Generates the month's usage and ingests it in batches, INGEST_CONCURRENCY batches in flight. */
async function ingestUsage({ store, options, catalog, now, log }: Demo): Promise<Record<EventStatus, number>> {
  const counts: Record<EventStatus, number> = { accepted: 0, duplicate: 0, conflict: 0, rejected: 0, quarantined: 0 };
  const bar = progress('ingest', {});
  const started = process.hrtime.bigint();
  let done = 0;
  const inFlight = new Set<Promise<void>>();
  let batch: CloudEvent[] = [];
  const send = async (events: CloudEvent[]) => {
    const outcome = await ingestBatch(store.pool, catalog, events, { channel: 'file', now });
    for (const [k, v] of Object.entries(outcome.counts)) counts[k as EventStatus] += v;
    done += events.length;
    bar.update(done, options.events);
  };
  for (const event of generateUsage({ catalog: catalog.catalog, period: options.period, events: options.events, seed: options.seed })) {
    batch.push(event);
    if (batch.length < INGEST_LIMITS.batchEventsMax) continue;
    const task = send(batch).finally(() => inFlight.delete(task));
    inFlight.add(task);
    batch = [];
    if (inFlight.size >= INGEST_CONCURRENCY) await Promise.race(inFlight);
  }
  if (batch.length > 0) await send(batch);
  await Promise.all(inFlight);
  bar.stop();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  log(
    `ingested ${options.events} events in ${seconds.toFixed(1)} s: ${Object.entries(counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  return counts;
}

async function showUsage({ store, options, catalog }: Demo, counts: Record<EventStatus, number>): Promise<void> {
  const usage = await queryUsage(store.pool, catalog.catalog, { from: options.period.from, to: options.period.to });
  if (!usage.ok) throw new ProblemError(usage.problems);
  output(
    `\nUsage for ${options.period.period}\n` +
      table(
        ['customer', 'meter', 'quantity', 'events'],
        usage.value.map((r) => [r.customer, r.meter, r.quantity, String(r.event_count)]),
      ),
    { period: options.period.period, ingest: counts, usage: usage.value },
  );
}

/** The month's invoices as a table, and the first one as a PDF with all of them as JSON. */
async function showInvoices({ options, catalog, log }: Demo, invoices: DemoInvoices): Promise<void> {
  output(
    `\nInvoices for ${options.period.period}\n` +
      table(
        ['number', 'customer', 'currency', 'subtotal', 'discount', 'credits', 'tax', 'total'],
        invoices.map((i) => {
          const e = exportInvoice(i);
          return [e.number ?? '', e.customer, e.currency, e.subtotal, e.discount, e.credits_applied, e.tax, e.total];
        }),
      ),
    { invoices: invoices.map(exportInvoice) },
  );
  const sample = invoices[0];
  if (sample) {
    mkdirSync(options.outDir, { recursive: true });
    const path = join(options.outDir, `${sample.number}.pdf`);
    const pdf = valueOf(await invoicePdf(sample, catalog));
    writeFileSync(path, pdf);
    writeFileSync(join(options.outDir, 'invoices.json'), exportInvoices(invoices));
    log(`\nwrote ${path} and ${join(options.outDir, 'invoices.json')}`);
  }
}

async function payEveryOther({ store, options, catalog, log }: Demo, invoices: DemoInvoices): Promise<void> {
  for (const [i, invoice] of invoices.entries()) {
    if (i % 2 === 1) continue;
    const outcome = await applyPayment(
      store.pool,
      catalog,
      {
        id: `demo-pay-${invoice.number}`,
        invoice: invoice.number!,
        amount: formatMajor(invoice.total_minor, invoice.currency),
        amount_minor: invoice.total_minor,
        currency: invoice.currency,
        received_on: options.period.end_date,
      },
      'erp',
    );
    log(`payment for ${invoice.number}: ${outcome.status}${outcome.status === 'applied' ? ` (${outcome.payment_status})` : ''}`);
  }
}

/** A trial balance per legal entity, and the month's journals as an hledger file. */
async function showBooks({ store, options, catalog, log }: Demo): Promise<void> {
  const periodJournals = await readJournals(store.pool, { from: options.period.start_date, to: options.period.end_date });
  for (const entity of catalog.catalog.legal_entities) {
    const rows = trialBalance(periodJournals.filter((j) => j.legal_entity === entity.id));
    output(`\nTrial balance ${entity.id} ${options.period.period}\n` + trialBalanceTable(rows), { entity: entity.id, trial_balance: rows });
  }
  mkdirSync(options.outDir, { recursive: true });
  const ledgerPath = join(options.outDir, `ledger-${options.period.period}.journal`);
  writeFileSync(ledgerPath, exportJournals('hledger', periodJournals, catalog.catalog));
  log(`wrote ${ledgerPath} (check it with: hledger -f ${ledgerPath} check)`);
}

/** Reconciliation, one metered line explained, the audit chain verified; exit code 1 unless green and intact. */
async function showControls({ store, options }: Demo, invoices: DemoInvoices): Promise<void> {
  const reconciled = await reconcilePeriod(store.pool, { period: options.period.period, actor: 'demo' });
  output(`\nReconciliation ${options.period.period}: ${reconciled.status}\n${reconcileText(reconciled)}`, { reconciliation: reconciled });
  const disputed = invoices.find((i) => i.lines.some((l) => l.meter !== null));
  const disputedLine = disputed?.lines.find((l) => l.meter !== null);
  if (disputed && disputedLine) {
    const explained = await explainInvoice(store.pool, disputed.number!, { line: disputedLine.line_no });
    if (!explained.ok) throw new ProblemError(explained.problems);
    output(
      `\nExplain ${disputed.number} line ${disputedLine.line_no} (accrue explain invoice ${disputed.number} --line ${disputedLine.line_no})\n${renderInvoiceExplanation(explained.value)}`,
      { explained: explained.value },
    );
  }
  const audit = await verifyAudit(store.pool);
  output(
    audit.ok
      ? `\naudit log intact: ${audit.count} records, head seq ${audit.head.seq} (accrue audit verify)`
      : `\naudit log BROKEN at seq ${audit.broken_at_seq}: ${audit.message}`,
    { audit },
  );
  if (reconciled.status !== 'green' || !audit.ok) process.exitCode = 1;
}

/** The example catalog's growth-usd platform fee, as one flat price. */
const PLATFORM_FEE = /( {6}- product: platform\n {8}model: flat\n {8}amount: "99\.00"\n)/;

/** Who plays the two roles of the four-eyes step: found by name when an earlier demo run made them. */
async function demoPrincipal(store: Store, name: string, role: Role): Promise<Actor> {
  const found = (await listPrincipals(store.pool)).find((p) => p.name === name);
  const principal = found ?? (await createPrincipal(store.pool, { name, kind: 'person', roles: [role] }, systemActor('demo')));
  return { principal: principal.id, name: principal.name, roles: principal.roles, entities: [] };
}

async function fourEyes({ store, options, log }: Demo): Promise<void> {
  const text = readText(options.catalogFile);
  if (!PLATFORM_FEE.test(text)) {
    log(`\nfour eyes: skipped (${options.catalogFile} has no growth-usd platform fee of 99.00 to change)`);
    return;
  }
  const next = nextMonthStart(options.period.period);
  const raised = text.replace(
    PLATFORM_FEE,
    `      - product: platform\n        versions:\n          - { effective_from: 2026-01-01, model: flat, amount: "99.00" }\n          - { effective_from: ${next}, model: flat, amount: "109.00" }\n`,
  );
  const olivia = await demoPrincipal(store, 'olivia', 'operator');
  const carlos = await demoPrincipal(store, 'carlos', 'controller');
  const plan = await planCatalogChange(store.pool, raised, {
    source: 'demo: platform fee 2027',
    reason: `platform fee 109.00 from ${next}`,
  });
  const { request } = await proposeChange(store.pool, olivia, plan);
  output(`\nFour eyes: ${olivia.name} (operator) proposes ${request.id}: ${request.summary}\n${request.diff}`, { proposed: request });
  try {
    await decide(store.pool, olivia, request.id, { approve: true });
    throw new Error('invariant violated: a requester approved her own change');
  } catch (error) {
    if (!(error instanceof ProblemError) || error.status !== 403) throw error;
    output(`${olivia.name} approves her own change: refused (${error.problems[0]!.code}: ${error.problems[0]!.message})`, {
      refused: error.problems,
    });
  }
  const approved = await decide(store.pool, carlos, request.id, { approve: true, note: 'matches the 2027 price list' });
  const version = (approved.result as { version?: number } | null)?.version;
  output(`${carlos.name} (controller) approves ${request.id}: catalog version ${version} in force (accrue changes show ${request.id})`, {
    approved,
  });
}

/** The first day of the month after a YYYY-MM period, as YYYY-MM-DD. */
function nextMonthStart(period: string): string {
  const [year, month] = period.split('-').map(Number) as [number, number];
  return month === 12 ? `${year + 1}-01-01` : `${year}-${String(month + 1).padStart(2, '0')}-01`;
}

async function parallelRun({ store, options, catalog, log }: Demo): Promise<void> {
  const legacyDir = join(options.outDir, 'legacy');
  const planted = await writeLegacyOutput(store.pool, options.period.period, legacyDir, { plant: true });
  const comparison = await runLegacyComparison(store.pool, { legacyDir, period: options.period.period, catalog });
  if (!comparison.ok) throw new ProblemError(comparison.problems);
  const check = checkPlanted(planted, comparison.value.report);
  output(`\n${formatComparison(comparison.value.report)}`, { legacy_comparison: comparison.value.report, planted });
  log(
    `planted ${planted.length} differences in ${legacyDir}: ${check.missed.length === 0 && check.unexplained.length === 0 ? 'every one found, nothing else' : `${check.missed.length} missed, ${check.unexplained.length} unexplained`} (accrue compare --legacy ${legacyDir} --period ${options.period.period})`,
  );
}
