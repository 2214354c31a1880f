// Accounting documents from finalized invoices: their journals into the built-in ledger and an outbox entry per
// document, in the same transaction that finalizes them (nothing is posted that was not finalized, and the reverse).
import { outboxKey } from '../domain/keys.js';
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { contentHash } from '../domain/canonical.js';
import { assertBalanced, creditNoteJournal, invoiceJournals, revenueAccountResolver } from '../domain/journal.js';
import { inFunctionalCurrency, type OpenReceivable } from '../domain/fx-journals.js';
import { isPromotional } from '../domain/credits.js';
import type { Invoice, Journal, JournalFx } from '../domain/model.js';
import { requireFxRate } from '../map/fx-rates.js';
import { ProblemError } from '../domain/result.js';
import { recordHeldBack, type ErpRouting } from './rollout.js';
import { asJournalFx } from '../domain/fx.js';

/**
 * The built-in ledger is written in the transaction that finalizes a document: its journals table is the ledger.
 * The outbox carries the same documents to external ERP targets (NetSuite, Xero), one entry per document and target.
 */
export { outboxKey } from '../domain/keys.js';

/**
 * The outbox form of a journal: invoices and credit notes go as the ERP's own document (src/post/erp-documents.ts);
 * the reversal of an invoice journal voids (or credits) that document in the ERP; every other journal goes as one.
 */
export type OutboxDocumentKind = 'invoice' | 'credit_note' | 'invoice_void' | 'journal';
export const outboxDocumentKind = (journal: Pick<Journal, 'kind'>): OutboxDocumentKind =>
  journal.kind === 'invoice' || journal.kind === 'credit_note'
    ? journal.kind
    : journal.kind === 'invoice_reversal'
      ? 'invoice_void'
      : 'journal';

/**
 * The journals of a finalized invoice or credit note. A document in a currency other than its legal entity's
 * functional currency is booked in the functional currency at `fx`, the rate of the posting date (required then:
 * see bookedJournalsFor), each line keeping its transaction amount.
 */
export function journalsFor(invoice: Invoice, catalog: CatalogVersion, postingDate: string, fx?: JournalFx): Journal[] {
  const accounts = catalog.catalog.accounts[invoice.legal_entity];
  const customer = catalog.index.customers.get(invoice.customer);
  const entity = catalog.index.legalEntities.get(invoice.legal_entity);
  if (!accounts || !customer || !entity) throw new Error(`no accounts, customer or legal entity for ${invoice.id}`);
  const revenue = revenueAccountResolver(catalog.catalog.products, invoice.legal_entity);
  const journals =
    invoice.kind === 'credit_note'
      ? [creditNoteJournal(invoice, accounts, revenue, customer.erp_customer_id, postingDate)].filter((j): j is Journal => j !== null)
      : invoiceJournals(invoice, accounts, revenue, customer.erp_customer_id, postingDate, promotionalGrants(catalog));
  const foreign = invoice.currency !== entity.currency;
  if (foreign && fx === undefined)
    throw new Error(`${invoice.id} is in ${invoice.currency}, legal entity ${entity.id} books in ${entity.currency}: a rate is needed`);
  const booked = foreign ? journals.map((j) => inFunctionalCurrency(j, fx!, entity.currency, entity.rounding)) : journals;
  for (const journal of booked) assertBalanced(journal);
  return booked;
}

/** The ids of the catalog's promotional grants: drawn as contra-revenue (src/domain/credits.ts). */
const promotionalGrants = (catalog: CatalogVersion): ReadonlySet<string> =>
  new Set(catalog.catalog.credit_grants.filter(isPromotional).map((g) => g.id));

/** The rate a document in another currency is booked at: that of its posting date; undefined in the functional currency. */
export async function bookingRate(
  db: pg.Pool | pg.PoolClient,
  invoice: Pick<Invoice, 'id' | 'currency' | 'legal_entity'>,
  catalog: CatalogVersion,
  postingDate: string,
): Promise<JournalFx | undefined> {
  const functional = catalog.index.legalEntities.get(invoice.legal_entity)?.currency;
  if (functional === undefined || functional === invoice.currency) return undefined;
  const used = await requireFxRate(db, { date: postingDate, from: invoice.currency, to: functional }, `${invoice.id}.currency`);
  return asJournalFx(used);
}

/** journalsFor with the rate of the posting date looked up (409 naming the pair when none was imported). */
export async function bookedJournalsFor(
  db: pg.Pool | pg.PoolClient,
  invoice: Invoice,
  catalog: CatalogVersion,
  postingDate: string,
): Promise<Journal[]> {
  return journalsFor(invoice, catalog, postingDate, await bookingRate(db, invoice, catalog, postingDate));
}

/**
 * What the receivable of an invoice booked from another currency still carries, from the ledger: its transaction
 * amount and its functional amount, over the journals of the invoice, its credit notes and its payments (month-end
 * revaluations are left out: each is reversed the next day, and a gain or loss is realized against the booking rate).
 */
export async function openReceivable(
  db: pg.Pool | pg.PoolClient,
  invoiceId: string,
  receivable: string,
  /** As it stood before this payment was applied (reconciliation rebuilding the payment's journal). */
  beforePayment?: string,
): Promise<Omit<OpenReceivable, 'customer'> & { customer: string | null }> {
  const row = (
    await db.query<{ currency: string | null; open_tx: string; carrying: string; customer: string | null }>(
      `SELECT max(l.tx_currency) AS currency, max(l.customer) AS customer,
              coalesce(sum(CASE WHEN l.debit_minor > 0 THEN l.tx_amount_minor ELSE -l.tx_amount_minor END), 0)::text AS open_tx,
              coalesce(sum(l.debit_minor - l.credit_minor), 0)::text AS carrying
         FROM journals j JOIN journal_lines l ON l.journal_id = j.id
        WHERE l.account = $2 AND l.tx_currency IS NOT NULL AND j.kind NOT IN ('fx_revaluation', 'fx_revaluation_reversal')
          AND (j.source_document = $1
               OR j.source_document IN (SELECT id FROM invoices WHERE corrects = $1)
               OR j.source_document IN (SELECT p.id FROM payments p WHERE p.invoice_id = $1
                                           AND ($3::text IS NULL OR (p.created_at, p.id) < (SELECT q.created_at, q.id FROM payments q WHERE q.id = $3))))`,
      [invoiceId, receivable, beforePayment ?? null],
    )
  ).rows[0]!;
  return {
    invoice: invoiceId,
    currency: row.currency ?? '',
    customer: row.customer,
    open_tx_minor: BigInt(row.open_tx),
    carrying_minor: BigInt(row.carrying),
  };
}

/** Saves journals by id (same id, same content: nothing to do; other content: a conflict) and queues them for ERP targets. */
export type ClosedPeriodPolicy = 'refuse' | 'next_open_period';

/** The policy for a journal dated in a closed accounting period: ACCRUE_CLOSED_PERIOD_POLICY, default refuse. */
export function closedPeriodPolicy(env = process.env): ClosedPeriodPolicy {
  const value = env.ACCRUE_CLOSED_PERIOD_POLICY ?? 'refuse';
  if (value !== 'refuse' && value !== 'next_open_period')
    throw new ProblemError([{ path: 'ACCRUE_CLOSED_PERIOD_POLICY', code: 'invalid', message: 'must be refuse or next_open_period' }]);
  return value;
}

/** Where a journal dated `date` posts: that date if its period is open, else per policy (refused, or the next open period's first day). */
async function postingDateFor(
  client: pg.PoolClient,
  entity: string,
  date: string,
  policy: ClosedPeriodPolicy,
): Promise<{ date: string; moved: boolean }> {
  const closed = new Set(
    (
      await client.query<{ period: string }>(
        "SELECT period FROM accounting_periods WHERE legal_entity = $1 AND status = 'closed' AND period >= $2",
        [entity, date.slice(0, 7)],
      )
    ).rows.map((r) => r.period),
  );
  if (!closed.has(date.slice(0, 7))) return { date, moved: false };
  if (policy === 'refuse') {
    throw new ProblemError(
      [
        {
          path: 'posting_date',
          code: 'period_closed',
          message: `the accounting period ${date.slice(0, 7)} of ${entity} is closed; reopen it or set ACCRUE_CLOSED_PERIOD_POLICY=next_open_period`,
        },
      ],
      409,
    );
  }
  let [year, month] = date.slice(0, 7).split('-').map(Number) as [number, number];
  for (;;) {
    month += 1;
    if (month > 12) {
      month = 1;
      year += 1;
    }
    const period = `${year}-${String(month).padStart(2, '0')}`;
    if (!closed.has(period)) return { date: `${period}-01`, moved: true };
  }
}

export async function recordJournals(
  client: pg.PoolClient,
  dated: readonly Journal[],
  sourceNumber: string | null,
  erpTargets: readonly string[] | ErpRouting = [],
  policy: ClosedPeriodPolicy = closedPeriodPolicy(),
): Promise<void> {
  const routing = 'targets' in erpTargets ? erpTargets : null;
  const targets = 'targets' in erpTargets ? erpTargets.targets : erpTargets;
  for (const asDated of dated) {
    const placed = await postingDateFor(client, asDated.legal_entity, asDated.posting_date, policy);
    const journal = placed.moved ? { ...asDated, posting_date: placed.date } : asDated;
    const hash = contentHash(journal);
    const existing = (await client.query<{ content_hash: string }>('SELECT content_hash FROM journals WHERE id = $1', [journal.id]))
      .rows[0];
    if (existing) {
      if (existing.content_hash !== hash) {
        throw new ProblemError(
          [
            {
              path: 'journal',
              code: 'exists_with_different_content',
              message: `journal ${journal.id} is already posted with other content`,
            },
          ],
          409,
        );
      }
      continue;
    }
    await insertJournal(client, journal, sourceNumber, hash, asDated.posting_date, placed.moved);
    await queueJournal(client, journal, routing, targets);
  }
}

/** Writes a new journal and its lines; `datedOn` is the date it asked for, `moved` whether it was placed later. */
async function insertJournal(
  client: pg.PoolClient,
  journal: Journal,
  sourceNumber: string | null,
  hash: string,
  datedOn: string,
  moved: boolean,
): Promise<void> {
  await client.query(
    `INSERT INTO journals (id, kind, legal_entity, posting_date, source_document, source_number, memo, content_hash, dated_on, posting_policy, reverses,
                           fx_currency, fx_rate, fx_rate_date, fx_source)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
    [
      journal.id,
      journal.kind,
      journal.legal_entity,
      journal.posting_date,
      journal.source_document,
      sourceNumber,
      journal.memo,
      hash,
      datedOn,
      moved ? 'next_open_period' : 'as_dated',
      journal.reverses ?? null,
      journal.fx?.currency ?? null,
      journal.fx?.rate ?? null,
      journal.fx?.rate_date ?? null,
      journal.fx?.source ?? null,
    ],
  );
  await client.query(
    `INSERT INTO journal_lines (journal_id, line_no, account, debit_minor, credit_minor, currency, customer, product, memo, tx_currency, tx_amount_minor)
     SELECT $1, l.line_no, l.account, l.debit_minor, l.credit_minor, l.currency, l.customer, l.product, l.memo, l.tx_currency, l.tx_amount_minor
       FROM jsonb_to_recordset($2::jsonb) AS l(line_no int, account text, debit_minor bigint, credit_minor bigint, currency text, customer text,
                                                product text, memo text, tx_currency text, tx_amount_minor bigint)`,
    [
      journal.id,
      JSON.stringify(
        journal.lines.map((l) => ({
          ...l,
          debit_minor: l.debit_minor.toString(),
          credit_minor: l.credit_minor.toString(),
          tx_amount_minor: l.tx_amount_minor?.toString(),
        })),
      ),
    ],
  );
}

/** Writes the journal's outbox rows (step 1 of src/post/outbox.ts), or records it held back outside the rollout. */
async function queueJournal(
  client: pg.PoolClient,
  journal: Journal,
  routing: ErpRouting | null,
  targets: readonly string[],
): Promise<void> {
  // A legal entity routed to an ERP connection (erp.connections) posts there and only there; the targets named by
  // the caller serve the entities that have no connection.
  const connection = routing
    ? (
        await client.query<{ connection: string }>('SELECT connection FROM erp_entity_connections WHERE legal_entity = $1', [
          journal.legal_entity,
        ])
      ).rows[0]?.connection
    : undefined;
  for (const target of connection ? [connection] : targets) {
    // Outside the rollout scope: kept in the built-in ledger only, and recorded as held back from this target.
    if (routing?.held_back) {
      await recordHeldBack(client, outboxKey(target, journal.id), target, journal, routing.customer, routing.held_back);
      continue;
    }
    await client.query(
      `INSERT INTO outbox (key, target, document_kind, document_id) VALUES ($1, $2, $4, $3) ON CONFLICT (key) DO NOTHING`,
      [outboxKey(target, journal.id), target, journal.id, outboxDocumentKind(journal)],
    );
  }
}

/** A journal line as stored: amounts in minor units as decimal text. */
export interface StoredJournalLine {
  journal_id: string;
  line_no: number;
  account: string;
  debit_minor: string;
  credit_minor: string;
  currency: string;
  customer: string | null;
  product: string | null;
  memo: string | null;
  tx_currency: string | null;
  tx_amount_minor: string | null;
}

/** The stored lines of some journals, by journal then line number. */
export async function readJournalLines(db: pg.Pool | pg.PoolClient, journalIds: readonly string[]): Promise<StoredJournalLine[]> {
  return (
    await db.query<StoredJournalLine>(
      `SELECT journal_id, line_no, account, debit_minor::text, credit_minor::text, currency, customer, product, memo,
              tx_currency, tx_amount_minor::text
         FROM journal_lines WHERE journal_id = ANY($1) ORDER BY journal_id, line_no`,
      [journalIds],
    )
  ).rows;
}

/** Journals read back from the ledger, in posting order, for exports and the trial balance. */
export async function readJournals(
  db: pg.Pool | pg.PoolClient,
  filter: { entity?: string; from?: string; to?: string; ids?: string[] } = {},
): Promise<Array<Journal & { source_number: string | null }>> {
  const heads = (
    await db.query<{
      id: string;
      kind: Journal['kind'];
      legal_entity: string;
      posting_date: string;
      source_document: string;
      source_number: string | null;
      memo: string;
      reverses: string | null;
      fx_currency: string | null;
      fx_rate: string | null;
      fx_rate_date: string | null;
      fx_source: string | null;
    }>(
      `SELECT id, kind, legal_entity, posting_date, source_document, source_number, memo, reverses,
              fx_currency, fx_rate, to_char(fx_rate_date, 'YYYY-MM-DD') AS fx_rate_date, fx_source FROM journals
        WHERE ($1::text IS NULL OR legal_entity = $1) AND ($2::date IS NULL OR posting_date >= $2) AND ($3::date IS NULL OR posting_date < $3)
          AND ($4::text[] IS NULL OR id = ANY($4))
        ORDER BY posting_date, id`,
      [filter.entity ?? null, filter.from ?? null, filter.to ?? null, filter.ids ?? null],
    )
  ).rows;
  if (heads.length === 0) return [];
  const lines = await readJournalLines(
    db,
    heads.map((h) => h.id),
  );
  const byJournal = new Map<string, Journal['lines']>();
  for (const l of lines) {
    const list = byJournal.get(l.journal_id) ?? [];
    list.push({
      line_no: l.line_no,
      account: l.account,
      debit_minor: BigInt(l.debit_minor),
      credit_minor: BigInt(l.credit_minor),
      currency: l.currency,
      ...(l.customer ? { customer: l.customer } : {}),
      ...(l.product ? { product: l.product } : {}),
      ...(l.memo ? { memo: l.memo } : {}),
      ...(l.tx_currency !== null && l.tx_amount_minor !== null
        ? { tx_currency: l.tx_currency, tx_amount_minor: BigInt(l.tx_amount_minor) }
        : {}),
    });
    byJournal.set(l.journal_id, list);
  }
  return heads.map((h) => ({
    id: h.id,
    key: h.id,
    kind: h.kind,
    legal_entity: h.legal_entity,
    posting_date: h.posting_date,
    source_document: h.source_document,
    source_number: h.source_number,
    memo: h.memo,
    lines: byJournal.get(h.id) ?? [],
    ...(h.reverses !== null ? { reverses: h.reverses } : {}),
    ...(h.fx_currency !== null && h.fx_rate !== null && h.fx_rate_date !== null && h.fx_source !== null
      ? { fx: { currency: h.fx_currency, rate: h.fx_rate, rate_date: h.fx_rate_date, source: h.fx_source } }
      : {}),
  }));
}
