// Late usage for closed periods: re-rated with the period's own catalog rates, then a credit note and a replacement
// invoice when an amount changes; keyed, so a re-run is a no-op.
import { CLOSE_UNBILLABLE_STATUS, type CloseOutcome } from './types.js';
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { contentHash } from '../domain/canonical.js';
import type { Invoice } from '../domain/model.js';
import { ProblemError } from '../domain/result.js';
import { parsePeriod } from '../meter/period.js';
import { transaction } from '../store/store.js';
import { invoiceAmountProblems } from '../domain/limits.js';
import { finalizeInvoice, saveDraft } from '../invoice/store.js';
import { invoiceInForce, lateAdjustmentDecided, latePeriods, recordLateAdjustment, saveRatingRun } from './store.js';
import { invoiceIdOf, lateAdjustmentKey, lateCreditNoteKey, lateReplacementKey } from '../domain/keys.js';
import { reissued } from '../domain/invoice-terms.js';
import { bookedJournalsFor, recordJournals } from '../post/journals.js';
import { erpRouting, type RolloutScope } from '../post/rollout.js';
import { inclusiveEnd } from '../invoice/export.js';
import { documentLogFields } from '../domain/correlation.js';
import type { LogLine } from '../post/correlation.js';
import { rateWithStoredUsage } from '../rate/rate-customer.js';

/** Where a run's corrections go: the run's period, watermark and entities, and the ERP routing of its documents. */
interface CorrectionRun {
  catalog: CatalogVersion;
  runPeriod: string;
  runEndDate: string; // the run's period end (exclusive): corrections are issued as of it
  postingDate: string; // the last day of the run's period: the closed period stays closed
  watermark: string;
  erpTargets: string[];
  rollout: RolloutScope | undefined;
}

type Correction = CloseOutcome['corrections'][number];

/**
 * Late usage (events that arrived after their period closed) is billed in the next run, visibly: the closed period
 * is re-rated with the late events included; when the amounts change, a credit note reverses the invoice in force
 * and a replacement invoice takes its place. Keyed by (customer, currency, period, watermark): a re-run is a no-op.
 */
export async function correctLateUsage(
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
  const run: CorrectionRun = {
    catalog,
    runPeriod,
    runEndDate: runWindow.value.end_date,
    postingDate: inclusiveEnd(runWindow.value.end_date),
    watermark,
    erpTargets,
    rollout,
  };
  for (const { customer, period } of await latePeriods(pool, watermark, runPeriod)) {
    const entity = catalog.index.customers.get(customer)?.legal_entity;
    if (!entity || !entities.includes(entity)) continue;
    const outcome = await correctPeriod(pool, run, customer, period);
    if (!outcome) continue;
    for (const document of [outcome.credit_note, outcome.replacement]) {
      if (document)
        log?.({ level: 'info', msg: 'late usage corrected', period, corrects: outcome.corrected.id, ...documentLogFields(document) });
    }
    corrections.push(outcome);
  }
  return corrections;
}

/** One customer's closed period with late usage: re-rated, and corrected when an amount changed; undefined if nothing to do. */
async function correctPeriod(pool: pg.Pool, run: CorrectionRun, customer: string, period: string): Promise<Correction | undefined> {
  const current = await invoiceInForce(pool, customer, period);
  if (!current) return undefined; // nothing was billed for that period (no subscription then): the events stay as usage history
  const adjustmentKey = lateAdjustmentKey(customer, current.currency, period, run.watermark);
  if (await lateAdjustmentDecided(pool, adjustmentKey)) return undefined;
  const periodWindow = parsePeriod(period);
  if (!periodWindow.ok) return undefined;
  const rated = (await rateWithStoredUsage(pool, run.catalog, customer, periodWindow.value, run.watermark, { includeLate: true })).find(
    (r) => r.invoice.currency === current.currency,
  );
  if (!rated) return undefined;
  const unbillable = invoiceAmountProblems(rated.invoice);
  if (unbillable.length > 0) throw new ProblemError(unbillable, CLOSE_UNBILLABLE_STATUS);
  // A correction is a financial document: it is issued when an amount changes, not for a quantity that bills the same.
  const amounts = (invoice: Invoice) =>
    contentHash(invoice.lines.map((l) => [l.kind, l.product, l.price_version, l.credit_grant ?? null, l.amount_minor]));
  const changed = rated.invoice.total_minor !== current.total_minor || amounts(rated.invoice) !== amounts(current);
  return transaction(pool, async (client) => {
    const issued = changed ? await issueCorrection(client, run, current, rated, period) : { creditNote: null, replacement: null };
    await recordLateAdjustment(client, {
      key: adjustmentKey,
      customer,
      period,
      watermark: run.watermark,
      corrected: current.id,
      creditNote: issued.creditNote?.id ?? null,
      replacement: issued.replacement?.id ?? null,
      billedIn: run.runPeriod,
    });
    return { period, customer, corrected: current, credit_note: issued.creditNote, replacement: issued.replacement };
  });
}

/** The credit note that reverses the invoice in force and the replacement that bills the re-rated period, journaled. */
async function issueCorrection(
  client: pg.PoolClient,
  run: CorrectionRun,
  current: Invoice,
  rated: { invoice: Invoice; usage: unknown },
  period: string,
): Promise<{ creditNote: Invoice; replacement: Invoice }> {
  const prefix = run.catalog.index.legalEntities.get(current.legal_entity)!.invoice_number_prefix;
  const cnKey = lateCreditNoteKey(current.id, run.watermark);
  // Issued by this run (dated the day after its period, like its invoices); a credit note has no due date.
  const draftCredit: Invoice = {
    ...current,
    id: invoiceIdOf(cnKey),
    key: cnKey,
    kind: 'credit_note',
    corrects: current.id,
    number: null,
    status: 'draft',
    ...reissued(current, 'credit_note', run.runEndDate),
  };
  const creditNote = await finalizeInvoice(client, (await saveDraft(client, draftCredit)).invoice.id, prefix);
  await journal(client, run, creditNote);
  const replacementKey = lateReplacementKey(current.key, run.watermark);
  await saveRatingRun(client, {
    id: rated.invoice.rating_run,
    customer: current.customer,
    period,
    catalog: run.catalog,
    watermark: run.watermark,
    usage: rated.usage,
  });
  const draftReplacement: Invoice = {
    ...rated.invoice,
    id: invoiceIdOf(replacementKey),
    key: replacementKey,
    corrects: current.id,
    ...reissued(rated.invoice, 'invoice', run.runEndDate),
  };
  const replacement = await finalizeInvoice(client, (await saveDraft(client, draftReplacement)).invoice.id, prefix);
  await journal(client, run, replacement);
  return { creditNote, replacement };
}

const journal = async (client: pg.PoolClient, run: CorrectionRun, document: Invoice) =>
  recordJournals(
    client,
    await bookedJournalsFor(client, document, run.catalog, run.postingDate),
    document.number,
    erpRouting(run.erpTargets, run.rollout, document),
  );
