// Revenue schedules in the store (migration 030) and each month's recognition (docs/accounting.md#revenue-recognition):
// a finalized invoice's lines billed for more than a month get their schedule in the transaction that finalizes it;
// the close of a month (or `accrue revenue recognize`) books that month's part of every schedule of a legal entity.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { contentHash } from '../domain/canonical.js';
import { revenueAccountResolver } from '../domain/journal.js';
import type { Invoice, Journal } from '../domain/model.js';
import { ProblemError } from '../domain/result.js';
import { recognitionJournal, scheduleFor, type RevenueSchedule } from '../domain/revenue.js';
import { recordJournals } from './journals.js';
import { erpRouting, type RolloutScope } from './rollout.js';

/** Saves the schedules of a finalized invoice's multi-month lines: same id and content is nothing to do, other content a conflict. */
export async function saveSchedules(client: pg.PoolClient, invoice: Invoice): Promise<RevenueSchedule[]> {
  const schedules = invoice.lines.map((line) => scheduleFor(invoice, line)).filter((s): s is RevenueSchedule => s !== null);
  for (const s of schedules) {
    const hash = contentHash(s);
    const inserted = await client.query(
      `INSERT INTO revenue_schedules (id, invoice_id, line_no, legal_entity, customer, product, currency, amount_minor, service_start, service_end, months, content_hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING`,
      [
        s.id,
        s.invoice_id,
        s.line_no,
        s.legal_entity,
        s.customer,
        s.product,
        s.currency,
        s.amount_minor.toString(),
        s.service_start,
        s.service_end,
        s.months,
        hash,
      ],
    );
    if (inserted.rowCount === 0) {
      const held = (await client.query<{ content_hash: string }>('SELECT content_hash FROM revenue_schedules WHERE id = $1', [s.id]))
        .rows[0];
      if (held?.content_hash !== hash)
        throw new ProblemError(
          [{ path: 'revenue_schedule', code: 'exists_with_different_content', message: `schedule ${s.id} is stored with other content` }],
          409,
        );
    }
  }
  return schedules;
}

/** The stored schedules of a legal entity (of a customer), by id. */
export async function readSchedules(
  db: pg.Pool | pg.PoolClient,
  filter: { entity?: string; customer?: string } = {},
): Promise<RevenueSchedule[]> {
  const rows = (
    await db.query<Omit<RevenueSchedule, 'amount_minor'> & { amount_minor: string }>(
      `SELECT s.id, s.invoice_id, s.line_no, s.legal_entity, s.customer, s.product, s.currency, s.amount_minor::text,
              to_char(s.service_start, 'YYYY-MM-DD') AS service_start, to_char(s.service_end, 'YYYY-MM-DD') AS service_end, s.months
         FROM revenue_schedules s JOIN invoices i ON i.id = s.invoice_id
        WHERE i.status = 'finalized' AND ($1::text IS NULL OR s.legal_entity = $1) AND ($2::text IS NULL OR s.customer = $2)
        ORDER BY s.id`,
      [filter.entity ?? null, filter.customer ?? null],
    )
  ).rows;
  return rows.map((r) => ({ ...r, amount_minor: BigInt(r.amount_minor) }));
}

/** The recognition journal of an entity's month, from its stored schedules (null when nothing is recognized in it). */
export async function expectedRecognition(
  db: pg.Pool | pg.PoolClient,
  catalog: CatalogVersion,
  entity: string,
  period: string,
): Promise<Journal | null> {
  const accounts = catalog.catalog.accounts[entity];
  if (!accounts)
    throw new ProblemError([
      { path: 'entity', code: 'unknown_legal_entity', message: `no legal entity ${JSON.stringify(entity)} in the catalog in force` },
    ]);
  const erp = (customer: string) => catalog.index.customers.get(customer)?.erp_customer_id ?? customer;
  return recognitionJournal(
    entity,
    period,
    await readSchedules(db, { entity }),
    accounts,
    revenueAccountResolver(catalog.catalog.products, entity),
    erp,
  );
}

/** Books a month's recognition for a legal entity (idempotent: the same schedules write nothing new). */
export async function recognizeRevenue(
  client: pg.PoolClient,
  catalog: CatalogVersion,
  input: { entity: string; period: string; erpTargets?: readonly string[]; rollout?: RolloutScope },
): Promise<Journal | null> {
  const journal = await expectedRecognition(client, catalog, input.entity, input.period);
  if (!journal) return null;
  if (((await client.query('SELECT 1 FROM journals WHERE id = $1', [journal.id])).rowCount ?? 0) > 0) return journal;
  await recordJournals(
    client,
    [journal],
    null,
    erpRouting(input.erpTargets ?? [], input.rollout, { customer: '', legal_entity: input.entity }),
  );
  return journal;
}
