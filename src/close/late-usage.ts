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
import { finalizeInvoice, fromDocument, saveDraft } from '../invoice/store.js';
import { invoiceIdOf, lateAdjustmentKey, lateCreditNoteKey } from '../domain/keys.js';
import { reissued } from '../domain/invoice-terms.js';
import { journalsFor, recordJournals } from '../post/journals.js';
import { erpRouting, type RolloutScope } from '../post/rollout.js';
import { inclusiveEnd } from '../invoice/export.js';
import { documentLogFields } from '../domain/correlation.js';
import type { LogLine } from '../post/correlation.js';
import { rateWithStoredUsage } from '../rate/rate-customer.js';

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
