// The close's own reads and writes: rating runs, late usage waiting for a correction, the invoice in force of a period
// and the late-usage adjustments already decided. Values are query parameters; every insert is keyed.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { contentHash } from '../domain/canonical.js';
import type { Invoice } from '../domain/model.js';
import { fromDocument } from '../invoice/store.js';

type Db = pg.Pool | pg.PoolClient;

/** Records the rating run an invoice came from (the usage it read), once per run id. */
export async function saveRatingRun(
  client: pg.PoolClient,
  run: { id: string; customer: string; period: string; catalog: CatalogVersion; watermark: string; usage: unknown },
): Promise<void> {
  await client.query(
    `INSERT INTO rating_runs (id, customer, period, catalog_version, catalog_hash, usage_fingerprint, event_seq_watermark, usage)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
    [
      run.id,
      run.customer,
      run.period,
      run.catalog.version,
      run.catalog.hash,
      contentHash(run.usage),
      run.watermark,
      JSON.stringify(run.usage),
    ],
  );
}

/** (customer, period) pairs with late events up to the watermark in periods before `runPeriod`, in order. */
export async function latePeriods(db: Db, watermark: string, runPeriod: string): Promise<Array<{ customer: string; period: string }>> {
  return (
    await db.query<{ customer: string; period: string }>(
      `SELECT DISTINCT e.customer_id AS customer, to_char(e.time AT TIME ZONE 'UTC', 'YYYY-MM') AS period
         FROM events e
        WHERE e.late AND e.seq <= $1 AND to_char(e.time AT TIME ZONE 'UTC', 'YYYY-MM') < $2
        ORDER BY 1, 2`,
      [watermark, runPeriod],
    )
  ).rows;
}

/**
 * The finalized invoice in force for a customer's period: the latest one no credit note has reversed. A dispute's
 * credit note (part of one line, migration 031) reverses nothing: the invoice stays in force.
 */
export async function invoiceInForce(db: Db, customer: string, period: string): Promise<Invoice | undefined> {
  const row = (
    await db.query<{ document: unknown }>(
      `SELECT i.document FROM invoices i
        WHERE i.customer = $1 AND i.period = $2 AND i.kind = 'invoice' AND i.status = 'finalized'
          AND NOT EXISTS (SELECT 1 FROM invoices cn WHERE cn.corrects = i.id AND cn.kind = 'credit_note' AND cn.status <> 'void'
                            AND NOT EXISTS (SELECT 1 FROM disputes d WHERE d.credit_note = cn.id))
        ORDER BY i.finalized_at DESC, i.id LIMIT 1`,
      [customer, period],
    )
  ).rows[0];
  return row ? fromDocument(row.document) : undefined;
}

/** Whether the late-usage adjustment with this key was decided already. */
export async function lateAdjustmentDecided(db: Db, key: string): Promise<boolean> {
  return ((await db.query('SELECT 1 FROM late_usage_adjustments WHERE key = $1', [key])).rowCount ?? 0) > 0;
}

/** Records a late-usage adjustment: the invoice it corrected and the credit note and replacement it issued, if any. */
export async function recordLateAdjustment(
  client: pg.PoolClient,
  adjustment: {
    key: string;
    customer: string;
    period: string;
    watermark: string;
    corrected: string;
    creditNote: string | null;
    replacement: string | null;
    billedIn: string;
  },
): Promise<void> {
  await client.query(
    `INSERT INTO late_usage_adjustments (key, customer, period, event_seq_watermark, corrected_invoice, credit_note, replacement, billed_in_period)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING`,
    [
      adjustment.key,
      adjustment.customer,
      adjustment.period,
      adjustment.watermark,
      adjustment.corrected,
      adjustment.creditNote,
      adjustment.replacement,
      adjustment.billedIn,
    ],
  );
}
