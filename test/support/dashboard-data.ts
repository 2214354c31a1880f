// A store filled the way the demo fills it, for the dashboard's browser tests: the Northwind catalog, seeded usage for
// two months, both months closed with NetSuite as ERP target (posted through the simulator, one document refused into
// the dead-letter queue), half of the invoices paid, an overpayment (a finance exception), quarantined events, and a
// reconciliation run recorded against NetSuite.
import { readFileSync } from 'node:fs';
import { applyCatalog, catalogVersion, type CatalogVersion } from '../../src/catalog/service.js';
import type { NetSuiteTarget } from '../../src/connectors/netsuite/client.js';
import { netsuiteTarget } from './netsuite-target.js';
import { generateUsage, type CloudEvent } from '../../src/demo/generate.js';
import { formatMajor } from '../../src/domain/money.js';
import { INGEST_LIMITS } from '../../src/ingest/cloudevent.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { parsePeriod } from '../../src/meter/period.js';
import { drainOutbox } from '../../src/post/outbox.js';
import { reconcilePeriod } from '../../src/reconcile/run.js';
import { applyPayment } from '../../src/settle/payments.js';
import type { Store } from '../../src/store/store.js';
import { NetSuiteSimulator } from './netsuite-sim.js';

export const DASHBOARD_PERIOD = '2026-10';
export const PREVIOUS_PERIOD = '2026-09';

export interface DashboardData {
  catalog: CatalogVersion;
  period: string;
  /** The outbox id of the document NetSuite refused. */
  deadLetterId: string;
  /** The finance_operations exception the overpayment opened (its period is the month it was received). */
  overpaymentException: string;
  /** The integration_support exception of the period: the refused document, missing in NetSuite. */
  postingException: string;
  netsuite: NetSuiteSimulator;
  target: NetSuiteTarget;
}

async function ingestMonth(store: Store, catalog: CatalogVersion, period: string, events: number, seed: number): Promise<void> {
  const window = parsePeriod(period);
  if (!window.ok) throw new Error(period);
  const now = new Date(window.value.to);
  let batch: CloudEvent[] = [];
  for (const event of generateUsage({ catalog: catalog.catalog, period: window.value, events, seed })) {
    batch.push(event);
    if (batch.length < INGEST_LIMITS.batchEventsMax) continue;
    await ingestBatch(store.pool, catalog, batch, { channel: 'file', now });
    batch = [];
  }
  if (batch.length > 0) await ingestBatch(store.pool, catalog, batch, { channel: 'file', now });
}

export async function fillDashboardData(store: Store, options: { events?: number } = {}): Promise<DashboardData> {
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), {
    by: 'e2e',
    source: 'examples/northwind/catalog.yaml',
  });
  if (!applied.ok) throw new Error(JSON.stringify(applied.problems));
  const catalog = (await catalogVersion(store.pool, applied.value.version))!;
  const events = options.events ?? 20_000;
  await ingestMonth(store, catalog, PREVIOUS_PERIOD, Math.floor(events / 2), 7);
  await ingestMonth(store, catalog, DASHBOARD_PERIOD, events, 42);
  // Two events for a tenant the catalog does not know: quarantined, waiting for a catalog that names it.
  const stray = (id: string): CloudEvent => ({
    specversion: '1.0',
    id,
    source: '//e2e/gateway',
    type: 'com.northwind.api.request',
    subject: 'hooli-prod',
    time: '2026-10-20T10:00:00Z',
    datacontenttype: 'application/json',
    data: { region: 'us-east-1' },
  });
  await ingestBatch(store.pool, catalog, [stray('stray-1'), stray('stray-2')], { channel: 'http', now: new Date('2026-10-20T10:05:00Z') });

  const netsuite = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600 });
  await netsuite.start();
  const target = netsuiteTarget(netsuite.url, {
    subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
    timeoutMs: 2_000,
    limits: { concurrency: 4, requestsPerMinute: 60_000 },
  });
  const previous = await closePeriod(store.pool, catalog, { period: PREVIOUS_PERIOD, erpTargets: ['netsuite'] });
  await drainOutbox(store.pool, target, { untilEmptyMs: 5_000, backoffBaseMs: 10 });
  const closed = await closePeriod(store.pool, catalog, { period: DASHBOARD_PERIOD, erpTargets: ['netsuite'] });
  // NetSuite refuses the first document of October (a validation error): it goes to the dead-letter queue.
  netsuite.faults.push('invalid');
  await drainOutbox(store.pool, target, { untilEmptyMs: 5_000, backoffBaseMs: 10 });
  const dead = (await store.pool.query<{ id: string }>("SELECT id::text FROM outbox WHERE status = 'dead' ORDER BY id")).rows;
  if (dead.length !== 1) throw new Error(`expected one dead letter, found ${dead.length}`);

  // Cash, received today (the invoices were finalized today): September paid in full; in October every other
  // invoice is paid and one overpaid (an exception, not applied).
  const today = new Date().toISOString().slice(0, 10);
  const invoices = closed.invoices.filter((i) => i.kind === 'invoice');
  for (const [i, invoice] of invoices.entries()) {
    if (i % 2 === 1) continue;
    const outcome = await applyPayment(
      store.pool,
      catalog,
      {
        id: `e2e-pay-${invoice.number}`,
        invoice: invoice.number!,
        amount: formatMajor(invoice.total_minor, invoice.currency),
        amount_minor: invoice.total_minor,
        currency: invoice.currency,
        received_on: today,
      },
      'erp',
    );
    if (outcome.status !== 'applied') throw new Error(`payment for ${invoice.number}: ${outcome.status}`);
  }
  const overpaid = invoices[1]!;
  const over = await applyPayment(
    store.pool,
    catalog,
    {
      id: 'e2e-overpay',
      invoice: overpaid.number!,
      amount: formatMajor(overpaid.total_minor + 10_000n, overpaid.currency),
      amount_minor: overpaid.total_minor + 10_000n,
      currency: overpaid.currency,
      received_on: today,
    },
    'erp',
  );
  if (over.status !== 'exception') throw new Error(`the overpayment was ${over.status}`);
  for (const invoice of previous.invoices.filter((i) => i.kind === 'invoice')) {
    await applyPayment(
      store.pool,
      catalog,
      {
        id: `e2e-pay-${invoice.number}`,
        invoice: invoice.number!,
        amount: formatMajor(invoice.total_minor, invoice.currency),
        amount_minor: invoice.total_minor,
        currency: invoice.currency,
        received_on: today,
      },
      'erp',
    );
  }
  // Reconciled against NetSuite too: the refused document is missing there, an exception for integration support.
  const report = await reconcilePeriod(store.pool, { period: DASHBOARD_PERIOD, connectors: [target] });
  const missing = report.checkpoints
    .filter((c) => c.checkpoint === 'invoices_vs_erp_postings' && c.connector === 'netsuite')
    .flatMap((c) => c.differences);
  if (missing.length !== 1) throw new Error(`expected the dead letter as the one NetSuite difference, found ${missing.length}`);
  return {
    catalog,
    period: DASHBOARD_PERIOD,
    deadLetterId: dead[0]!.id,
    overpaymentException: over.exception,
    postingException: missing[0]!.exception_id,
    netsuite,
    target,
  };
}
