// A billing run closes a period: rate every subscription, draft one invoice per customer, legal entity and
// currency, and finalize. Every step is keyed, so a re-run on the same inputs returns the same documents.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { contentHash } from '../domain/canonical.js';
import type { Invoice } from '../domain/model.js';
import { ProblemError, formatProblems } from '../domain/result.js';
import { parsePeriod, type PeriodWindow } from '../meter/period.js';
import { windowUsage, type WindowUsage } from '../meter/windows.js';
import { transaction } from '../store/store.js';
import { appendAudit } from '../audit/log.js';
import { finalizeInvoice, fromDocument, grantBalancesUsed, saveDraft } from './store.js';
import { invoiceIdOf } from '../domain/rating-engine.js';
import { reissued } from '../domain/invoice-terms.js';
import { journalsFor, recordJournals } from '../post/journals.js';
import { checkRolloutScope, erpRouting, type RolloutScope } from '../post/rollout.js';
import { inclusiveEnd } from './export.js';
import { documentLogFields } from '../domain/correlation.js';
import type { LogLine } from '../post/correlation.js';
import { rateCustomerPeriod } from '../rate/rate-customer.js';
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

export interface CloseOutcome {
  period: string;
  event_seq_watermark: string;
  invoices: Invoice[];
  /** Late usage for earlier closed periods: a credit note against the invoice in force and its replacement. */
  corrections: Array<{ period: string; customer: string; corrected: Invoice; credit_note: Invoice | null; replacement: Invoice | null }>;
}

/**
 * Marks the period closed for the legal entities, then takes the event watermark. The SHARE lock waits for
 * in-flight ingestion to commit and holds new inserts until the close commits, so every event is either
 * at or below the watermark (billed now) or flagged late (billed by adjustment): none falls between.
 */
async function closeAndWatermark(pool: pg.Pool, entities: string[], period: string): Promise<string> {
  return transaction(pool, async (client) => {
    for (const entity of entities) {
      await client.query(
        `INSERT INTO billing_periods (legal_entity, period, status, closed_at) VALUES ($1, $2, 'closed', now())
         ON CONFLICT (legal_entity, period) DO UPDATE SET status = 'closed', closed_at = coalesce(billing_periods.closed_at, now())`,
        [entity, period],
      );
    }
    await client.query('LOCK TABLE events IN SHARE MODE');
    const mark = (await client.query<{ mark: string }>('SELECT coalesce(max(seq), 0)::text AS mark FROM events')).rows[0]!.mark;
    for (const entity of entities) {
      await client.query('UPDATE billing_periods SET event_seq_watermark = coalesce(event_seq_watermark, $3) WHERE legal_entity = $1 AND period = $2', [entity, period, mark]);
    }
    const stored = (await client.query<{ mark: string }>('SELECT max(event_seq_watermark)::text AS mark FROM billing_periods WHERE period = $1 AND legal_entity = ANY($2)', [period, entities])).rows[0]!.mark;
    return stored;
  });
}

/** `rollout` limits which documents reach `erpTargets`; the others are journaled and recorded as held back (src/post/rollout.ts). */
export function closePeriod(pool: pg.Pool, catalog: CatalogVersion, options: { period: string; legalEntity?: string; erpTargets?: string[]; by?: string; rollout?: RolloutScope; log?: LogLine; progress?: (done: number, total: number, note: string) => void }): Promise<CloseOutcome> {
  return inSpan(SPANS.closePeriod, { [ATTRIBUTES.period]: String(options.period), ...(options.legalEntity ? { [ATTRIBUTES.legalEntity]: options.legalEntity } : {}) }, async (span) => {
    const outcome = await closePeriodUntraced(pool, catalog, options);
    span.setAttributes({ 'accrue.event_seq_watermark': outcome.event_seq_watermark, 'accrue.invoices': outcome.invoices.length, 'accrue.corrections': outcome.corrections.length });
    return outcome;
  });
}

async function closePeriodUntraced(pool: pg.Pool, catalog: CatalogVersion, options: Parameters<typeof closePeriod>[2]): Promise<CloseOutcome> {
  const parsed = parsePeriod(options.period);
  if (!parsed.ok) throw new ProblemError(parsed.problems);
  const scope = options.rollout ? checkRolloutScope(options.rollout, catalog) : null;
  if (scope && !scope.ok) throw new ProblemError(scope.problems);
  const window = parsed.value;
  const entities = catalog.catalog.legal_entities.map((e) => e.id).filter((id) => !options.legalEntity || id === options.legalEntity);
  if (entities.length === 0) throw new ProblemError([{ path: 'legal_entity', code: 'unknown', message: `no legal entity ${options.legalEntity}` }]);
  const watermark = await closeAndWatermark(pool, entities, window.period);

  const customers = [...catalog.catalog.customers]
    .filter((c) => entities.includes(c.legal_entity))
    .filter((c) => catalog.catalog.subscriptions.some((s) => s.customer === c.id && s.start < window.end_date && (!s.end || s.end > window.start_date)))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // Rating only reads, so customers are rated concurrently; finalizing stays sequential in customer order,
  // which keeps invoice numbers deterministic for the same inputs.
  let ratedCount = 0;
  const rated = await mapConcurrent(customers, RATING_CONCURRENCY, async (customer) => {
    const result = await inSpan(SPANS.rateCustomer, { [ATTRIBUTES.customer]: customer.id, [ATTRIBUTES.period]: window.period }, () => rateWithStoredUsage(pool, catalog, customer.id, window, watermark));
    options.progress?.(++ratedCount, customers.length, 'customers rated');
    return result;
  });
  const drafts = customers.flatMap((customer, i) => rated[i]!.map((r) => ({ customer: customer.id, ...r })));
  const invoices: Invoice[] = [];
  // Finalized in batches: one commit (one fsync) per FINALIZE_BATCH invoices; a failure rolls back only its batch,
  // and a re-run picks up where it stopped because every write is keyed.
  for (let start = 0; start < drafts.length; start += FINALIZE_BATCH) {
    const batch = drafts.slice(start, start + FINALIZE_BATCH);
    const finalized = await inSpan(SPANS.finalizeBatch, { [ATTRIBUTES.period]: window.period, 'accrue.drafts': batch.length }, () => transaction(pool, async (client) => {
      const done: Invoice[] = [];
      for (const { customer, invoice, usage } of batch) await inSpan(SPANS.finalize, { [ATTRIBUTES.customer]: customer, [ATTRIBUTES.legalEntity]: invoice.legal_entity }, async (span) => {
        const entity = catalog.index.legalEntities.get(invoice.legal_entity)!;
        await client.query(
          `INSERT INTO rating_runs (id, customer, period, catalog_version, catalog_hash, usage_fingerprint, event_seq_watermark, usage)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
          [invoice.rating_run, customer, window.period, catalog.version, catalog.hash, contentHash(usage), watermark, JSON.stringify(usage)],
        );
        const saved = await saveDraft(client, invoice);
        const finalized = await finalizeInvoice(client, saved.invoice.id, entity.invoice_number_prefix);
        // Accrual: the month's invoice posts on the month's last day.
        await recordJournals(client, journalsFor(finalized, catalog, inclusiveEnd(window.end_date)), finalized.number, erpRouting(options.erpTargets, options.rollout, finalized));
        span.setAttributes(correlationAttributes(documentLogFields(finalized)));
        done.push(finalized);
      });
      return done;
    }));
    invoices.push(...finalized);
    options.progress?.(invoices.length, drafts.length, 'invoices finalized');
    // Logged once the batch has committed, so a line never names an invoice a rollback took back.
    for (const invoice of finalized) options.log?.({ level: 'info', msg: 'invoice finalized', period: window.period, ...documentLogFields(invoice) });
  }
  const corrections = await inSpan(SPANS.correctLateUsage, { [ATTRIBUTES.period]: window.period }, () => correctLateUsage(pool, catalog, window.period, watermark, entities, options.erpTargets ?? [], options.rollout, options.log));
  await auditBillingRun(pool, options.by ?? 'system:billing-run', { period: window.period, entities, watermark, catalog, invoices, corrections });
  return { period: window.period, event_seq_watermark: watermark, invoices, corrections };
}

/**
 * One audit record per run, after its last batch: counts, totals and digests of its ids. The ids themselves are in
 * each invoice's own `invoice.finalize` record (10k ids would not fit one record).
 */
async function auditBillingRun(pool: pg.Pool, actor: string, run: { period: string; entities: string[]; watermark: string; catalog: CatalogVersion; invoices: Invoice[]; corrections: CloseOutcome['corrections'] }): Promise<void> {
  const totals = new Map<string, bigint>();
  for (const invoice of run.invoices) totals.set(invoice.currency, (totals.get(invoice.currency) ?? 0n) + invoice.total_minor);
  const sorted = (ids: string[]) => [...new Set(ids)].sort();
  await transaction(pool, (client) =>
    appendAudit(client, {
      actor,
      action: 'billing_run.close',
      subject: `billing-run:v1:${run.period}:${run.entities.join('+')}:${run.watermark}`,
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
        correction_ids_sha256: contentHash(sorted(run.corrections.flatMap((c) => [c.credit_note?.id, c.replacement?.id].filter((id): id is string => id !== undefined)))),
      },
    }),
  );
}

/**
 * Late usage (events that arrived after their period closed) is billed in the next run, visibly: the closed period
 * is re-rated with the late events included; when the amounts change, a credit note reverses the invoice in force
 * and a replacement invoice takes its place. Keyed by (customer, currency, period, watermark): a re-run is a no-op.
 */
async function correctLateUsage(pool: pg.Pool, catalog: CatalogVersion, runPeriod: string, watermark: string, entities: string[], erpTargets: string[], rollout: RolloutScope | undefined, log?: LogLine): Promise<CloseOutcome['corrections']> {
  const corrections: CloseOutcome['corrections'] = [];
  const runWindow = parsePeriod(runPeriod);
  if (!runWindow.ok) throw new ProblemError(runWindow.problems);
  // The closed period stays closed: corrections post on the last day of the run that issues them.
  const postingDate = inclusiveEnd(runWindow.value.end_date);
  const pending = (
    await pool.query<{ customer: string; period: string }>(
      `SELECT DISTINCT e.customer_id AS customer, to_char(e.time AT TIME ZONE 'UTC', 'YYYY-MM') AS period
         FROM events e
        WHERE e.late AND e.seq <= $1 AND to_char(e.time AT TIME ZONE 'UTC', 'YYYY-MM') < $2
        ORDER BY 1, 2`,
      [watermark, runPeriod],
    )
  ).rows;
  for (const { customer, period } of pending) {
    const entity = catalog.index.customers.get(customer)?.legal_entity;
    if (!entity || !entities.includes(entity)) continue;
    const inForce = (
      await pool.query<{ document: unknown }>(
        `SELECT i.document FROM invoices i
          WHERE i.customer = $1 AND i.period = $2 AND i.kind = 'invoice' AND i.status = 'finalized'
            AND NOT EXISTS (SELECT 1 FROM invoices cn WHERE cn.corrects = i.id AND cn.kind = 'credit_note' AND cn.status <> 'void')
          ORDER BY i.finalized_at DESC, i.id LIMIT 1`,
        [customer, period],
      )
    ).rows[0];
    if (!inForce) continue; // nothing was billed for that period (no subscription then): the events stay as usage history
    const current = fromDocument(inForce.document);
    const adjustmentKey = `adj:v1:${customer}:${current.currency}:${period}:${watermark}`;
    const seen = await pool.query('SELECT 1 FROM late_usage_adjustments WHERE key = $1', [adjustmentKey]);
    if ((seen.rowCount ?? 0) > 0) continue;
    const periodWindow = parsePeriod(period);
    if (!periodWindow.ok) continue;
    const rated = (await rateWithStoredUsage(pool, catalog, customer, periodWindow.value, watermark, { includeLate: true })).find((r) => r.invoice.currency === current.currency);
    if (!rated) continue;
    // A correction is a financial document: it is issued when an amount changes, not for a quantity that bills the same.
    const amounts = (invoice: Invoice) => contentHash(invoice.lines.map((l) => [l.kind, l.product, l.price_version, l.credit_grant ?? null, l.amount_minor]));
    const changed = rated.invoice.total_minor !== current.total_minor || amounts(rated.invoice) !== amounts(current);
    const entityRow = catalog.index.legalEntities.get(current.legal_entity)!;
    const outcome = await transaction(pool, async (client) => {
      let creditNote: Invoice | null = null;
      let replacement: Invoice | null = null;
      if (changed) {
        const cnKey = `cn:v1:${current.id}:late:${watermark}`;
        // Issued by this run (dated the day after its period, like its invoices); a credit note has no due date.
        const draftCredit: Invoice = { ...current, id: invoiceIdOf(cnKey), key: cnKey, kind: 'credit_note', corrects: current.id, number: null, status: 'draft', ...reissued(current, 'credit_note', runWindow.value.end_date) };
        creditNote = await finalizeInvoice(client, (await saveDraft(client, draftCredit)).invoice.id, entityRow.invoice_number_prefix);
        await recordJournals(client, journalsFor(creditNote, catalog, postingDate), creditNote.number, erpRouting(erpTargets, rollout, creditNote));
        const replacementKey = `${current.key}:late:${watermark}`;
        await client.query(
          `INSERT INTO rating_runs (id, customer, period, catalog_version, catalog_hash, usage_fingerprint, event_seq_watermark, usage)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
          [rated.invoice.rating_run, customer, period, catalog.version, catalog.hash, contentHash(rated.usage), watermark, JSON.stringify(rated.usage)],
        );
        const draftReplacement: Invoice = { ...rated.invoice, id: invoiceIdOf(replacementKey), key: replacementKey, corrects: current.id, ...reissued(rated.invoice, 'invoice', runWindow.value.end_date) };
        replacement = await finalizeInvoice(client, (await saveDraft(client, draftReplacement)).invoice.id, entityRow.invoice_number_prefix);
        await recordJournals(client, journalsFor(replacement, catalog, postingDate), replacement.number, erpRouting(erpTargets, rollout, replacement));
      }
      await client.query(
        `INSERT INTO late_usage_adjustments (key, customer, period, event_seq_watermark, corrected_invoice, credit_note, replacement, billed_in_period)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING`,
        [adjustmentKey, customer, period, watermark, current.id, creditNote?.id ?? null, replacement?.id ?? null, runPeriod],
      );
      return { period, customer, corrected: current, credit_note: creditNote, replacement };
    });
    for (const document of [outcome.credit_note, outcome.replacement]) {
      if (document) log?.({ level: 'info', msg: 'late usage corrected', period, corrects: current.id, ...documentLogFields(document) });
    }
    corrections.push(outcome);
  }
  return corrections;
}

/**
 * Rating is pure and asks for usage by window; the windows depend only on dates (price versions, the
 * subscription), so a first pass records which windows it needs, the store answers them, and a second pass rates.
 */
async function rateWithStoredUsage(pool: pg.Pool, catalog: CatalogVersion, customer: string, window: PeriodWindow, watermark: string, options: { includeLate?: boolean } = {}) {
  const needed = new Map<string, { meter: string; from: string; to: string }>();
  const keyOf = (meter: string, from: string, to: string) => `${meter}|${from}|${to}`;
  const balancesUsed = await grantBalancesUsed(pool, customer, window.period);
  rateCustomerPeriod(catalog, customer, window, balancesUsed, (meter, from, to) => {
    needed.set(keyOf(meter, from, to), { meter, from, to });
    return { quantity: '0', usage_ref: '' };
  });
  const answers = new Map<string, WindowUsage>();
  for (const [key, w] of needed) {
    const meter = catalog.index.meters.get(w.meter);
    if (!meter) throw new Error(`rating asked for unknown meter ${w.meter}`);
    answers.set(key, await windowUsage(pool, meter, customer, w.from, w.to, watermark, options));
  }
  const usage = [...answers.values()].sort((a, b) => (a.usage_ref < b.usage_ref ? -1 : a.usage_ref > b.usage_ref ? 1 : 0));
  const result = rateCustomerPeriod(catalog, customer, window, balancesUsed, (meter, from, to) => {
    const answer = answers.get(keyOf(meter, from, to));
    if (!answer) throw new Error(`rating asked for a window it did not ask for before: ${meter} ${from} ${to}`);
    return { quantity: answer.quantity, usage_ref: answer.usage_ref };
  }, usage);
  if (!result.ok) throw new Error(`rating ${customer} for ${window.period} failed: ${formatProblems(result.problems)}`);
  return result.value.map((invoice) => ({ invoice, usage: usage.filter((u) => invoice.lines.some((l) => l.usage_ref === u.usage_ref)) }));
}
