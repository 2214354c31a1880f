// Rating and finalizing a run: every customer rated on the stored usage, invoices drafted and finalized in batches,
// their journals recorded and routed to the ERP connections; one audit record per run.
import { ensureRollupsReach } from '../meter/catch-up.js';
import { billingRunSubject } from '../domain/keys.js';
import { CLOSE_UNBILLABLE_STATUS, type CloseOptions, type CloseOutcome } from './types.js';
import { finishClose, type CloseStart } from './period-state.js';
import { correctLateUsage } from './late-usage.js';
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { contentHash } from '../domain/canonical.js';
import type { Invoice } from '../domain/model.js';
import { ProblemError } from '../domain/result.js';
import { type PeriodWindow } from '../meter/period.js';
import { transaction } from '../store/store.js';
import { type AppendAuditInput } from '../audit/log.js';
import { invoiceAmountProblems } from '../domain/limits.js';
import { saveRatingRun } from './store.js';
import { finalizeInvoice, saveDraft } from '../invoice/store.js';
import { bookedJournalsFor, recordJournals } from '../post/journals.js';
import { erpRouting } from '../post/rollout.js';
import { inclusiveEnd } from '../invoice/export.js';
import { bookCreditLife } from './credit-life.js';
import { recognizeRevenue, saveSchedules } from '../post/revenue.js';
import { documentLogFields } from '../domain/correlation.js';
import { rateWithStoredUsage } from '../rate/rate-customer.js';
import { ATTRIBUTES, SPANS, correlationAttributes, inSpan } from '../observe/tracing.js';

/** Limit (TigerStyle): customers rated at once; each holds one pooled connection while it reads usage. */
export const RATING_CONCURRENCY = 4;
/** Limit: invoices finalized per transaction. */
export const FINALIZE_BATCH = 100;

async function mapConcurrent<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!);
      }
    }),
  );
  return results;
}

export async function rateAndFinalize(
  pool: pg.Pool,
  catalog: CatalogVersion,
  options: CloseOptions,
  run: { window: PeriodWindow; entities: string[]; by: string; start: CloseStart; early: boolean },
): Promise<CloseOutcome> {
  const { window, entities } = run;
  const watermark = run.start.watermark;
  const entityCustomers = catalog.catalog.customers
    .filter((c) => entities.includes(c.legal_entity))
    .map((c) => c.id)
    .sort();
  const customers = [...catalog.catalog.customers]
    .filter((c) => entities.includes(c.legal_entity))
    .filter((c) =>
      catalog.catalog.subscriptions.some((s) => s.customer === c.id && s.start < window.end_date && (!s.end || s.end > window.start_date)),
    )
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // The close waits for the usage rollups to count every event up to its watermark (src/meter/catch-up.ts).
  await ensureRollupsReach(pool, watermark);
  const rated = await rateCustomers(
    pool,
    catalog,
    options,
    window,
    watermark,
    customers.map((c) => c.id),
  );
  const drafts = customers.flatMap((customer, i) => rated[i]!.map((r) => ({ customer: customer.id, ...r })));
  // Before anything is written: an invoice the store cannot hold refuses the whole run, naming customer and meter.
  const unbillable = drafts.flatMap((d) => invoiceAmountProblems(d.invoice));
  if (unbillable.length > 0) throw new ProblemError(unbillable, CLOSE_UNBILLABLE_STATUS);
  const invoices: Invoice[] = [];
  // Finalized in batches: one commit (one fsync) per FINALIZE_BATCH invoices; a failure rolls back only its batch,
  // and a re-run picks up where it stopped because every write is keyed.
  for (let start = 0; start < drafts.length; start += FINALIZE_BATCH) {
    const batch = drafts.slice(start, start + FINALIZE_BATCH);
    const finalized = await inSpan(SPANS.finalizeBatch, { [ATTRIBUTES.period]: window.period, 'accrue.drafts': batch.length }, () =>
      transaction(pool, async (client) => {
        const done: Invoice[] = [];
        for (const { customer, invoice, usage } of batch)
          await inSpan(
            SPANS.finalize,
            { [ATTRIBUTES.customer]: customer, [ATTRIBUTES.legalEntity]: invoice.legal_entity },
            async (span) => {
              const finalized = await finalizeDraft(client, catalog, options, window, { customer, invoice, usage, watermark });
              span.setAttributes(correlationAttributes(documentLogFields(finalized)));
              done.push(finalized);
            },
          );
        return done;
      }),
    );
    invoices.push(...finalized);
    options.progress?.(invoices.length, drafts.length, 'invoices finalized');
    // Logged once the batch has committed, so a line never names an invoice a rollback took back.
    for (const invoice of finalized)
      options.log?.({ level: 'info', msg: 'invoice finalized', period: window.period, ...documentLogFields(invoice) });
  }
  const corrections = await inSpan(SPANS.correctLateUsage, { [ATTRIBUTES.period]: window.period }, () =>
    correctLateUsage(pool, catalog, window.period, watermark, entities, options.erpTargets ?? [], options.rollout, options.log),
  );
  await bookMonthEnd(pool, catalog, options, run);
  await finishClose(pool, entities, window, watermark, entityCustomers, () =>
    billingRunAudit(run.by, { period: window.period, entities, watermark, catalog, invoices, corrections, early: run.early }),
  );
  return { period: window.period, event_seq_watermark: watermark, invoices, corrections, resumed: run.start.resumed, early: run.early };
}

/**
 * Rates every customer on the stored usage up to the watermark. Rating only reads, so customers are rated
 * concurrently; finalizing stays sequential in customer order, which keeps invoice numbers deterministic.
 */
async function rateCustomers(
  pool: pg.Pool,
  catalog: CatalogVersion,
  options: CloseOptions,
  window: PeriodWindow,
  watermark: string,
  customers: readonly string[],
) {
  let ratedCount = 0;
  return mapConcurrent(customers, RATING_CONCURRENCY, async (customer) => {
    const result = await inSpan(SPANS.rateCustomer, { [ATTRIBUTES.customer]: customer, [ATTRIBUTES.period]: window.period }, () =>
      rateWithStoredUsage(pool, catalog, customer, window, watermark),
    );
    options.progress?.(++ratedCount, customers.length, 'customers rated');
    return result;
  });
}

/** One draft: its rating run recorded, saved, finalized (numbered) and its journals recorded for the ERP routing. */
async function finalizeDraft(
  client: pg.PoolClient,
  catalog: CatalogVersion,
  options: CloseOptions,
  window: PeriodWindow,
  draft: { customer: string; invoice: Invoice; usage: unknown; watermark: string },
): Promise<Invoice> {
  const { customer, invoice, usage, watermark } = draft;
  const entity = catalog.index.legalEntities.get(invoice.legal_entity)!;
  await saveRatingRun(client, { id: invoice.rating_run, customer, period: window.period, catalog, watermark, usage });
  const saved = await saveDraft(client, invoice);
  const finalized = await finalizeInvoice(client, saved.invoice.id, entity.invoice_number_prefix);
  await saveSchedules(client, finalized);
  // Accrual: the month's invoice posts on the month's last day.
  await recordJournals(
    client,
    await bookedJournalsFor(client, finalized, catalog, inclusiveEnd(window.end_date)),
    finalized.number,
    erpRouting(options.erpTargets, options.rollout, finalized),
  );
  return finalized;
}

/**
 * One audit record per run, after its last batch: counts, totals and digests of its ids. The ids themselves are in
 * each invoice's own `invoice.finalize` record (10k ids would not fit one record).
 */
function billingRunAudit(
  actor: string,
  run: {
    period: string;
    entities: string[];
    watermark: string;
    catalog: CatalogVersion;
    invoices: Invoice[];
    corrections: CloseOutcome['corrections'];
    early: boolean;
  },
): AppendAuditInput {
  const totals = new Map<string, bigint>();
  for (const invoice of run.invoices) totals.set(invoice.currency, (totals.get(invoice.currency) ?? 0n) + invoice.total_minor);
  const sorted = (ids: string[]) => [...new Set(ids)].sort();
  return {
    actor,
    action: 'billing_run.close',
    subject: billingRunSubject(run.period, run.entities, run.watermark),
    details: {
      period: run.period,
      legal_entities: run.entities,
      event_seq_watermark: run.watermark,
      catalog_version: run.catalog.version,
      catalog_hash: run.catalog.hash,
      invoices: run.invoices.length,
      credit_notes: run.corrections.filter((c) => c.credit_note).length,
      replacements: run.corrections.filter((c) => c.replacement).length,
      total_minor_by_currency: Object.fromEntries([...totals].sort(([a], [b]) => (a < b ? -1 : 1))),
      invoice_ids_sha256: contentHash(sorted(run.invoices.map((i) => i.id))),
      rating_run_ids_sha256: contentHash(sorted(run.invoices.map((i) => i.rating_run))),
      correction_ids_sha256: contentHash(
        sorted(run.corrections.flatMap((c) => [c.credit_note?.id, c.replacement?.id].filter((id): id is string => id !== undefined))),
      ),
      ...(run.early ? { early: true } : {}),
    },
  };
}

/**
 * After the period's invoices: prepaid credits sold and expired by its end (src/close/credit-life.ts), and each
 * legal entity's part of the fees billed in advance for a longer term (src/post/revenue.ts).
 */
async function bookMonthEnd(
  pool: pg.Pool,
  catalog: CatalogVersion,
  options: CloseOptions,
  run: { window: PeriodWindow; entities: string[] },
) {
  await bookCreditLife(pool, catalog, run.entities, run.window.end_date, options.erpTargets ?? [], options.rollout);
  await transaction(pool, async (client) => {
    for (const entity of run.entities)
      await recognizeRevenue(client, catalog, {
        entity,
        period: run.window.period,
        erpTargets: options.erpTargets ?? [],
        rollout: options.rollout,
      });
  });
}
