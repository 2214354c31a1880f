// A billing run closes a period: rate every subscription, draft one invoice per customer, legal entity and
// currency, and finalize. Every step is keyed, so a re-run on the same inputs returns the same documents.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { contentHash } from '../domain/canonical.js';
import type { Invoice } from '../domain/model.js';
import { ProblemError, type Problem } from '../domain/result.js';
import { parsePeriod, type PeriodWindow } from '../meter/period.js';
import { transaction } from '../store/store.js';
import { appendAudit, type AppendAuditInput } from '../audit/log.js';
import { invoiceAmountProblems } from '../domain/limits.js';
import { finalizeInvoice, fromDocument, saveDraft } from './store.js';
import { invoiceIdOf, lateAdjustmentKey, lateCreditNoteKey } from '../domain/keys.js';
import { reissued } from '../domain/invoice-terms.js';
import { journalsFor, recordJournals } from '../post/journals.js';
import { checkRolloutScope, erpRouting, type RolloutScope } from '../post/rollout.js';
import { inclusiveEnd } from './export.js';
import { documentLogFields } from '../domain/correlation.js';
import type { LogLine } from '../post/correlation.js';
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

export interface CloseOutcome {
  period: string;
  event_seq_watermark: string;
  invoices: Invoice[];
  /** Late usage for earlier closed periods: a credit note against the invoice in force and its replacement. */
  corrections: Array<{ period: string; customer: string; corrected: Invoice; credit_note: Invoice | null; replacement: Invoice | null }>;
  /** The period was left `closing` by an earlier run (failed, killed or still running) and this run took it up. */
  resumed: boolean;
  /** Closed before the period ended (`early`). */
  early: boolean;
}

export interface CloseOptions {
  period: string;
  legalEntity?: string;
  erpTargets?: string[];
  by?: string;
  rollout?: RolloutScope;
  log?: LogLine;
  progress?: (done: number, total: number, note: string) => void;
  /** The clock the period's end is judged by (default: the wall clock). */
  now?: Date;
  /** Close a period that has begun but not ended yet; recorded in the audit log. A future period is always refused. */
  early?: boolean;
}

/** Status of a refused close: the period has not ended (without `early`) or has not begun. */
export const CLOSE_REFUSED_STATUS = 409;
/** Status of a close that found an invoice the store cannot hold (docs/pricing.md#limits). */
export const CLOSE_UNBILLABLE_STATUS = 422;

/**
 * Periods are calendar months in UTC (src/meter/period.ts), for every legal entity alike: a period has ended once
 * `now` reaches its exclusive end. Returns the refusal, or whether the close is early.
 */
export function periodTiming(window: PeriodWindow, now: Date, early: boolean): { refused: Problem } | { early: boolean } {
  if (now.getTime() < Date.parse(window.from)) {
    return {
      refused: {
        path: 'period',
        code: 'period_in_future',
        message: `period ${window.period} has not begun (it starts ${window.from}, now is ${now.toISOString()}); a future period is never closed`,
      },
    };
  }
  if (now.getTime() < Date.parse(window.to)) {
    if (early) return { early: true };
    return {
      refused: {
        path: 'period',
        code: 'period_not_ended',
        message: `period ${window.period} has not ended (it ends ${window.to}, now is ${now.toISOString()}); close it before its end only on purpose, with early (accrue close --early)`,
      },
    };
  }
  return { early: false };
}

interface CloseStart {
  watermark: string;
  /** Some entity's period was `closing` before this run: an earlier run failed, was killed or still runs. */
  resumed: boolean;
  closingSince: string;
}

/**
 * Step 1 of a close: marks the period `closing` for the legal entities and fixes the event watermark. The SHARE lock
 * waits for in-flight ingestion to commit, so no event at or below the watermark commits later. A `closing` period is
 * open to ingestion: events keep arriving un-late (above the watermark) until finishClose marks them late and the
 * period closed in one transaction. A period already `closing` or `closed` keeps its watermark: a resumed or repeated
 * run rates the same usage, so the invoices an earlier attempt finalized come back unchanged.
 */
async function beginClose(
  pool: pg.Pool,
  entities: string[],
  period: string,
  audit: { by: string; early: boolean; now: Date },
): Promise<CloseStart> {
  return transaction(pool, async (client) => {
    await client.query('LOCK TABLE events IN SHARE MODE');
    const mark = (await client.query<{ mark: string }>('SELECT coalesce(max(seq), 0)::text AS mark FROM events')).rows[0]!.mark;
    const before = (
      await client.query<{ legal_entity: string; status: string }>(
        'SELECT legal_entity, status FROM billing_periods WHERE period = $1 AND legal_entity = ANY($2) ORDER BY legal_entity FOR UPDATE',
        [period, entities],
      )
    ).rows;
    for (const entity of entities) {
      await client.query(
        `INSERT INTO billing_periods (legal_entity, period, status, event_seq_watermark, closing_since) VALUES ($1, $2, 'closing', $3, now())
         ON CONFLICT (legal_entity, period) DO UPDATE
           SET status = CASE WHEN billing_periods.status = 'closed' THEN 'closed' ELSE 'closing' END,
               event_seq_watermark = coalesce(billing_periods.event_seq_watermark, EXCLUDED.event_seq_watermark),
               closing_since = coalesce(billing_periods.closing_since, EXCLUDED.closing_since)`,
        [entity, period, mark],
      );
    }
    const stored = (
      await client.query<{ mark: string; since: string | null }>(
        `SELECT max(event_seq_watermark)::text AS mark, to_char(min(closing_since) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since
         FROM billing_periods WHERE period = $1 AND legal_entity = ANY($2)`,
        [period, entities],
      )
    ).rows[0]!;
    const resumed = before.some((row) => row.status === 'closing');
    if (audit.early && !before.some((row) => row.status === 'closed')) {
      await appendAudit(client, {
        actor: audit.by,
        action: 'billing_run.close_early',
        subject: `billing-run:v1:${period}:${entities.join('+')}`,
        reason: 'closed before the period ended (early)',
        details: { period, legal_entities: entities, now: audit.now.toISOString(), event_seq_watermark: stored.mark },
      });
    }
    return { watermark: stored.mark, resumed, closingSince: stored.since ?? '' };
  });
}

/**
 * Step 2 of a close, once every invoice of the run exists: in one transaction, the events of the period that arrived
 * while it was closing (above the watermark, so not billed by this run) are flagged late, to be billed by adjustment
 * like any late usage, and the period is marked closed. The lock holds new inserts until the commit; after it,
 * ingestion flags the period's events late itself.
 */
async function finishClose(
  pool: pg.Pool,
  entities: string[],
  window: PeriodWindow,
  watermark: string,
  customers: string[],
  audit: () => AppendAuditInput,
): Promise<void> {
  await transaction(pool, async (client) => {
    await client.query('LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE');
    const closing =
      (
        await client.query("SELECT 1 FROM billing_periods WHERE period = $1 AND legal_entity = ANY($2) AND status <> 'closed'", [
          window.period,
          entities,
        ])
      ).rowCount ?? 0;
    if (closing > 0 && customers.length > 0) {
      const arrived = await client.query(
        'SELECT 1 FROM events WHERE NOT late AND seq > $1 AND time >= $2 AND time < $3 AND customer_id = ANY($4) LIMIT 1',
        [watermark, window.from, window.to, customers],
      );
      if ((arrived.rowCount ?? 0) > 0) {
        await client.query(
          'UPDATE events SET late = true WHERE NOT late AND seq > $1 AND time >= $2 AND time < $3 AND customer_id = ANY($4)',
          [watermark, window.from, window.to, customers],
        );
      }
    }
    await client.query(
      "UPDATE billing_periods SET status = 'closed', closed_at = coalesce(closed_at, now()) WHERE period = $1 AND legal_entity = ANY($2) AND status <> 'closed'",
      [window.period, entities],
    );
    await appendAudit(client, audit());
  });
}

/** A close that failed after it began (an I/O failure, a bug): nothing was closed, and the message says how to go on. */
export class CloseFailedError extends Error {
  /** What happened to the period, without the cause's text (for an HTTP answer). */
  readonly summary: string;
  constructor(
    readonly period: string,
    readonly reason: unknown,
  ) {
    const summary = `close of ${period} failed, nothing was closed: the period stays open (closing, its events are not late) and a new close of ${period} resumes it`;
    super(`${summary}. ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
    this.summary = summary;
    this.name = 'CloseFailedError';
  }
}

/** `rollout` limits which documents reach `erpTargets`; the others are journaled and recorded as held back (src/post/rollout.ts). */
export function closePeriod(pool: pg.Pool, catalog: CatalogVersion, options: CloseOptions): Promise<CloseOutcome> {
  return inSpan(
    SPANS.closePeriod,
    { [ATTRIBUTES.period]: String(options.period), ...(options.legalEntity ? { [ATTRIBUTES.legalEntity]: options.legalEntity } : {}) },
    async (span) => {
      const outcome = await closePeriodUntraced(pool, catalog, options);
      span.setAttributes({
        'accrue.event_seq_watermark': outcome.event_seq_watermark,
        'accrue.invoices': outcome.invoices.length,
        'accrue.corrections': outcome.corrections.length,
      });
      return outcome;
    },
  );
}

async function closePeriodUntraced(pool: pg.Pool, catalog: CatalogVersion, options: CloseOptions): Promise<CloseOutcome> {
  const parsed = parsePeriod(options.period);
  if (!parsed.ok) throw new ProblemError(parsed.problems);
  const scope = options.rollout ? checkRolloutScope(options.rollout, catalog) : null;
  if (scope && !scope.ok) throw new ProblemError(scope.problems);
  const window = parsed.value;
  const entities = catalog.catalog.legal_entities.map((e) => e.id).filter((id) => !options.legalEntity || id === options.legalEntity);
  if (entities.length === 0)
    throw new ProblemError([{ path: 'legal_entity', code: 'unknown', message: `no legal entity ${options.legalEntity}` }]);
  const by = options.by ?? 'system:billing-run';
  const now = options.now ?? new Date();
  const timing = periodTiming(window, now, options.early === true);
  if ('refused' in timing) {
    await transaction(pool, (client) =>
      appendAudit(client, {
        actor: by,
        action: 'billing_run.close_refused',
        subject: `billing-run:v1:${window.period}:${entities.join('+')}`,
        reason: timing.refused.message,
        details: {
          period: window.period,
          legal_entities: entities,
          code: timing.refused.code,
          now: now.toISOString(),
          early: options.early === true,
        },
      }),
    );
    throw new ProblemError([timing.refused], CLOSE_REFUSED_STATUS);
  }
  const start = await beginClose(pool, entities, window.period, { by, early: timing.early, now });
  if (start.resumed)
    options.log?.({
      level: 'warn',
      msg: 'resuming a close that did not finish',
      period: window.period,
      closing_since: start.closingSince,
      event_seq_watermark: start.watermark,
    });
  try {
    return await rateAndFinalize(pool, catalog, options, { window, entities, by, start, early: timing.early });
  } catch (error) {
    options.log?.({
      level: 'error',
      msg: 'close failed, nothing was closed',
      period: window.period,
      error: error instanceof Error ? error.message : String(error),
    });
    if (error instanceof ProblemError) {
      throw new ProblemError(
        [
          ...error.problems,
          {
            path: 'period',
            code: 'close_failed',
            message: `nothing was closed: period ${window.period} stays open (closing, its events are not late); a new close of ${window.period} resumes it`,
          },
        ],
        error.status,
      );
    }
    throw new CloseFailedError(window.period, error);
  }
}

async function rateAndFinalize(
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

  // Rating only reads, so customers are rated concurrently; finalizing stays sequential in customer order,
  // which keeps invoice numbers deterministic for the same inputs.
  let ratedCount = 0;
  const rated = await mapConcurrent(customers, RATING_CONCURRENCY, async (customer) => {
    const result = await inSpan(SPANS.rateCustomer, { [ATTRIBUTES.customer]: customer.id, [ATTRIBUTES.period]: window.period }, () =>
      rateWithStoredUsage(pool, catalog, customer.id, window, watermark),
    );
    options.progress?.(++ratedCount, customers.length, 'customers rated');
    return result;
  });
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
              const entity = catalog.index.legalEntities.get(invoice.legal_entity)!;
              await client.query(
                `INSERT INTO rating_runs (id, customer, period, catalog_version, catalog_hash, usage_fingerprint, event_seq_watermark, usage)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
                [
                  invoice.rating_run,
                  customer,
                  window.period,
                  catalog.version,
                  catalog.hash,
                  contentHash(usage),
                  watermark,
                  JSON.stringify(usage),
                ],
              );
              const saved = await saveDraft(client, invoice);
              const finalized = await finalizeInvoice(client, saved.invoice.id, entity.invoice_number_prefix);
              // Accrual: the month's invoice posts on the month's last day.
              await recordJournals(
                client,
                journalsFor(finalized, catalog, inclusiveEnd(window.end_date)),
                finalized.number,
                erpRouting(options.erpTargets, options.rollout, finalized),
              );
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
  await finishClose(pool, entities, window, watermark, entityCustomers, () =>
    billingRunAudit(run.by, { period: window.period, entities, watermark, catalog, invoices, corrections, early: run.early }),
  );
  return { period: window.period, event_seq_watermark: watermark, invoices, corrections, resumed: run.start.resumed, early: run.early };
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
      correction_ids_sha256: contentHash(
        sorted(run.corrections.flatMap((c) => [c.credit_note?.id, c.replacement?.id].filter((id): id is string => id !== undefined))),
      ),
      ...(run.early ? { early: true } : {}),
    },
  };
}

/**
 * Late usage (events that arrived after their period closed) is billed in the next run, visibly: the closed period
 * is re-rated with the late events included; when the amounts change, a credit note reverses the invoice in force
 * and a replacement invoice takes its place. Keyed by (customer, currency, period, watermark): a re-run is a no-op.
 */
async function correctLateUsage(
  pool: pg.Pool,
  catalog: CatalogVersion,
  runPeriod: string,
  watermark: string,
  entities: string[],
  erpTargets: string[],
  rollout: RolloutScope | undefined,
  log?: LogLine,
): Promise<CloseOutcome['corrections']> {
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
    const adjustmentKey = lateAdjustmentKey(customer, current.currency, period, watermark);
    const seen = await pool.query('SELECT 1 FROM late_usage_adjustments WHERE key = $1', [adjustmentKey]);
    if ((seen.rowCount ?? 0) > 0) continue;
    const periodWindow = parsePeriod(period);
    if (!periodWindow.ok) continue;
    const rated = (await rateWithStoredUsage(pool, catalog, customer, periodWindow.value, watermark, { includeLate: true })).find(
      (r) => r.invoice.currency === current.currency,
    );
    if (!rated) continue;
    const unbillable = invoiceAmountProblems(rated.invoice);
    if (unbillable.length > 0) throw new ProblemError(unbillable, CLOSE_UNBILLABLE_STATUS);
    // A correction is a financial document: it is issued when an amount changes, not for a quantity that bills the same.
    const amounts = (invoice: Invoice) =>
      contentHash(invoice.lines.map((l) => [l.kind, l.product, l.price_version, l.credit_grant ?? null, l.amount_minor]));
    const changed = rated.invoice.total_minor !== current.total_minor || amounts(rated.invoice) !== amounts(current);
    const entityRow = catalog.index.legalEntities.get(current.legal_entity)!;
    const outcome = await transaction(pool, async (client) => {
      let creditNote: Invoice | null = null;
      let replacement: Invoice | null = null;
      if (changed) {
        const cnKey = lateCreditNoteKey(current.id, watermark);
        // Issued by this run (dated the day after its period, like its invoices); a credit note has no due date.
        const draftCredit: Invoice = {
          ...current,
          id: invoiceIdOf(cnKey),
          key: cnKey,
          kind: 'credit_note',
          corrects: current.id,
          number: null,
          status: 'draft',
          ...reissued(current, 'credit_note', runWindow.value.end_date),
        };
        creditNote = await finalizeInvoice(client, (await saveDraft(client, draftCredit)).invoice.id, entityRow.invoice_number_prefix);
        await recordJournals(
          client,
          journalsFor(creditNote, catalog, postingDate),
          creditNote.number,
          erpRouting(erpTargets, rollout, creditNote),
        );
        const replacementKey = `${current.key}:late:${watermark}`;
        await client.query(
          `INSERT INTO rating_runs (id, customer, period, catalog_version, catalog_hash, usage_fingerprint, event_seq_watermark, usage)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
          [
            rated.invoice.rating_run,
            customer,
            period,
            catalog.version,
            catalog.hash,
            contentHash(rated.usage),
            watermark,
            JSON.stringify(rated.usage),
          ],
        );
        const draftReplacement: Invoice = {
          ...rated.invoice,
          id: invoiceIdOf(replacementKey),
          key: replacementKey,
          corrects: current.id,
          ...reissued(rated.invoice, 'invoice', runWindow.value.end_date),
        };
        replacement = await finalizeInvoice(
          client,
          (await saveDraft(client, draftReplacement)).invoice.id,
          entityRow.invoice_number_prefix,
        );
        await recordJournals(
          client,
          journalsFor(replacement, catalog, postingDate),
          replacement.number,
          erpRouting(erpTargets, rollout, replacement),
        );
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
