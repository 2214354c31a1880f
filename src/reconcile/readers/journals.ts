// The journals of a period: those the ledger holds (stored), and those Accrue's own documents and payments imply
// (expected), built again with the catalog in force when each was written. The ledger, ERP and trial-balance
// checkpoints compare them.
import { paymentJournal, REVERSIBLE_KINDS, reversingJournal } from '../../domain/journal.js';
import type { Journal, JournalFx } from '../../domain/model.js';
import { inFunctionalCurrency, paymentJournalInFunctional, revaluationJournals } from '../../domain/fx-journals.js';
import { creditExpiryJournal, creditGrantJournal } from '../../domain/credits.js';
import { grantBalancesUsed } from '../../rate/store.js';
import { fxRateAt } from '../../map/fx-rates.js';
import { openForeignReceivables } from '../../post/fx-revaluation.js';
import { invariant } from '../../domain/result.js';
import { inclusiveEnd } from '../../invoice/export.js';
import { fromDocument } from '../../invoice/store.js';
import type { PeriodWindow } from '../../meter/period.js';
import { journalsFor, openReceivable } from '../../post/journals.js';
import { expectedRecognition } from '../../post/revenue.js';
import type { Catalogs } from '../catalogs.js';
import type { ReconKey } from '../checkpoints.js';
import type { Db, DocumentRef } from '../sides.js';
import type { AppliedPayment } from './applied-payments.js';
import { lastDayOfMonth } from '../../domain/calendar.js';
import { asJournalFx } from '../../domain/fx.js';

export interface ExpectedJournal {
  journal: Journal;
  customer: string;
  source_kind: 'invoice' | 'credit_note' | 'payment' | 'fx_revaluation' | 'credit_grant' | 'revenue_recognition';
  /** The invoice's or credit note's total: what the ERP books when it takes the document in its own form. */
  document_total: bigint | null;
  /** The invoice's or credit note's tax, which the ERP holds on the document it takes (tax_vs_erp). */
  document_tax?: bigint;
}

export interface StoredJournal {
  id: string;
  kind: string;
  source_document: string;
  posting_date: string;
  customer: string | null;
  /**
   * Booked in the functional currency; a journal booked from another currency keeps each line's transaction amount
   * (tx_currency, tx_amount_minor) beside it, which the document-currency checkpoints compare.
   */
  lines: Array<{
    account: string;
    currency: string;
    debit_minor: bigint;
    credit_minor: bigint;
    tx_currency?: string;
    tx_amount_minor?: bigint;
  }>;
}

export const debitTotal = (lines: ReadonlyArray<{ debit_minor: bigint }>): bigint => lines.reduce((sum, l) => sum + l.debit_minor, 0n);

export const journalKey = (entity: string, customer: string | null, currency: string, id: string): ReconKey => ({
  legal_entity: entity,
  customer: customer ?? '',
  currency,
  item: id,
});

export const journalDocs = (journalIdText: string, source: string, sourceKind: string): DocumentRef[] => [
  { kind: 'journal', id: journalIdText },
  { kind: sourceKind, id: source },
];

/** The single currency of a journal (Accrue writes one currency per journal; a manual edit might not). */
export const journalCurrency = (lines: ReadonlyArray<{ currency: string }>): string => lines[0]?.currency ?? '';

/** The ledger's journals of one legal entity dated in the period, with their lines and the customer behind each. */
export async function storedJournals(db: Db, entity: string, window: PeriodWindow): Promise<StoredJournal[]> {
  const heads = (
    await db.query<{ id: string; kind: string; source_document: string; posting_date: string; customer: string | null }>(
      `SELECT j.id, j.kind, j.source_document, to_char(j.posting_date, 'YYYY-MM-DD') AS posting_date,
              coalesce(i.customer, pi.customer,
                       CASE WHEN j.kind IN ('credit_grant', 'credit_expiry') THEN split_part(j.source_document, ':', 1) END) AS customer
         FROM journals j
         LEFT JOIN invoices i ON i.id = j.source_document AND j.kind <> 'payment'
         LEFT JOIN payments p ON p.id = j.source_document AND j.kind = 'payment'
         LEFT JOIN invoices pi ON pi.id = p.invoice_id
        WHERE j.legal_entity = $1 AND j.posting_date >= $2 AND j.posting_date < $3 ORDER BY j.id`,
      [entity, window.start_date, window.end_date],
    )
  ).rows;
  if (heads.length === 0) return [];
  const lines = (
    await db.query<{
      journal_id: string;
      account: string;
      currency: string;
      debit_minor: string;
      credit_minor: string;
      tx_currency: string | null;
      tx_amount_minor: string | null;
    }>(
      `SELECT journal_id, account, currency, debit_minor::text AS debit_minor, credit_minor::text AS credit_minor,
              tx_currency, tx_amount_minor::text AS tx_amount_minor
         FROM journal_lines WHERE journal_id = ANY($1) ORDER BY journal_id, line_no`,
      [heads.map((h) => h.id)],
    )
  ).rows;
  const byJournal = new Map<string, StoredJournal['lines']>();
  for (const l of lines) {
    const list = byJournal.get(l.journal_id) ?? [];
    list.push({
      account: l.account,
      currency: l.currency,
      debit_minor: BigInt(l.debit_minor),
      credit_minor: BigInt(l.credit_minor),
      ...(l.tx_currency !== null && l.tx_amount_minor !== null
        ? { tx_currency: l.tx_currency, tx_amount_minor: BigInt(l.tx_amount_minor) }
        : {}),
    });
    byJournal.set(l.journal_id, list);
  }
  return heads.map((h) => ({ ...h, lines: byJournal.get(h.id) ?? [] }));
}

/**
 * The rate each document booked from another currency was booked at, by source document (what its journals record):
 * the expected journals are built again at that rate, so the checkpoints compare what was booked with what the
 * documents imply at the rate they were booked at.
 */
async function bookedRates(db: Db, entity: string): Promise<Map<string, JournalFx>> {
  const rows = (
    await db.query<{ source_document: string; fx_currency: string; fx_rate: string; fx_rate_date: string; fx_source: string }>(
      `SELECT DISTINCT ON (source_document) source_document, fx_currency, fx_rate, to_char(fx_rate_date, 'YYYY-MM-DD') AS fx_rate_date, fx_source
         FROM journals WHERE legal_entity = $1 AND fx_currency IS NOT NULL ORDER BY source_document, id`,
      [entity],
    )
  ).rows;
  return new Map(
    rows.map((r) => [r.source_document, { currency: r.fx_currency, rate: r.fx_rate, rate_date: r.fx_rate_date, source: r.fx_source }]),
  );
}

/** The journals of the finalized invoices and credit notes the period concerns (dated in it, or of it and never posted). */
async function documentJournals(
  db: Db,
  entity: string,
  window: PeriodWindow,
  datedBySource: ReadonlyMap<string, string>,
  catalogs: Catalogs,
  rates: ReadonlyMap<string, JournalFx>,
): Promise<ExpectedJournal[]> {
  const expected: ExpectedJournal[] = [];
  const lastDay = inclusiveEnd(window.end_date);
  const documents = (
    await db.query<{ id: string; customer: string; document: unknown; finalized_at: Date }>(
      `SELECT i.id, i.customer, i.document, i.finalized_at FROM invoices i
        WHERE i.legal_entity = $1 AND i.status <> 'draft' AND (
              EXISTS (SELECT 1 FROM journals j WHERE j.source_document = i.id AND j.kind <> 'payment' AND j.reverses IS NULL AND j.posting_date >= $2 AND j.posting_date < $3)
           OR (i.period = $4 AND NOT EXISTS (SELECT 1 FROM journals j WHERE j.source_document = i.id AND j.kind <> 'payment' AND j.reverses IS NULL)))
        ORDER BY i.id`,
      [entity, window.start_date, window.end_date, window.period],
    )
  ).rows;
  for (const row of documents) {
    // The document is the finalized snapshot (voiding moves only the status column): it is what was posted.
    const invoice = { ...fromDocument(row.document), status: 'finalized' as const };
    const catalog = await catalogs.at(row.finalized_at);
    const date = datedBySource.get(row.id) ?? lastDay;
    const fx = rates.get(row.id);
    if (invoice.currency !== catalog.index.legalEntities.get(entity)?.currency && fx === undefined) continue; // booked nothing
    for (const journal of journalsFor(invoice, catalog, date, fx)) {
      expected.push({
        journal,
        customer: row.customer,
        source_kind: invoice.kind,
        document_total: journal.kind === invoice.kind ? invoice.total_minor : null,
        ...(journal.kind === invoice.kind ? { document_tax: invoice.tax_minor } : {}),
      });
    }
  }
  return expected;
}

/**
 * The reversals a void implies, for those the ledger dates in the period: the invoice's journals built again from its
 * finalized snapshot, each reversed on the date the ledger holds its reversal (a void dated in the period).
 */
async function reversalJournals(
  db: Db,
  entity: string,
  window: PeriodWindow,
  catalogs: Catalogs,
  rates: ReadonlyMap<string, JournalFx>,
): Promise<ExpectedJournal[]> {
  const rows = (
    await db.query<{ id: string; customer: string; document: unknown; finalized_at: Date; kind: string; posting_date: string }>(
      `SELECT i.id, i.customer, i.document, i.finalized_at, r.kind, to_char(r.posting_date, 'YYYY-MM-DD') AS posting_date
         FROM journals r JOIN invoices i ON i.id = r.source_document
        WHERE r.legal_entity = $1 AND r.reverses IS NOT NULL AND r.posting_date >= $2 AND r.posting_date < $3
        ORDER BY r.id`,
      [entity, window.start_date, window.end_date],
    )
  ).rows;
  const expected: ExpectedJournal[] = [];
  for (const row of rows) {
    const invoice = { ...fromDocument(row.document), status: 'finalized' as const };
    const catalog = await catalogs.at(row.finalized_at);
    const original = journalsFor(invoice, catalog, row.posting_date, rates.get(row.id)).find((j) => `${j.kind}_reversal` === row.kind);
    if (!original || !(REVERSIBLE_KINDS as readonly string[]).includes(original.kind)) continue;
    expected.push({
      journal: reversingJournal(original, row.posting_date, ''),
      customer: row.customer,
      source_kind: 'invoice',
      document_total: null,
    });
  }
  return expected;
}

/**
 * The month-end revaluations the ledger holds in the period (and their reversals), built again from the ledger's
 * open receivables in other currencies at that month end and the rates in force then (rates are final once
 * imported): a revaluation booked at another rate or amount shows as a difference.
 */
async function revaluationsExpected(
  db: Db,
  entity: string,
  stored: readonly StoredJournal[],
  catalogs: Catalogs,
): Promise<ExpectedJournal[]> {
  const sources = [...new Set(stored.filter((j) => j.kind.startsWith('fx_revaluation')).map((j) => j.source_document))].sort();
  const expected: ExpectedJournal[] = [];
  for (const source of sources) {
    const period = source.split(':').at(-1)!;
    const catalog = await catalogs.at(new Date());
    const legal = catalog.index.legalEntities.get(entity);
    const accounts = catalog.catalog.accounts[entity];
    if (!legal || !accounts) continue;
    const lastDay = lastDayOfMonth(period);
    const items = await openForeignReceivables(db, entity, accounts.receivable, lastDay);
    const rates = new Map<string, JournalFx>();
    for (const currency of new Set(items.map((i) => i.currency))) {
      const used = await fxRateAt(db, { date: lastDay, from: currency, to: legal.currency });
      if (used) rates.set(currency, asJournalFx(used));
    }
    if (items.some((i) => !rates.has(i.currency))) continue;
    const built = revaluationJournals(entity, period, items, rates, accounts, legal.currency, legal.rounding);
    if (!built) continue;
    for (const journal of [built.revaluation, built.reversal])
      if (stored.some((j) => j.id === journal.id))
        expected.push({ journal, customer: '', source_kind: 'fx_revaluation', document_total: null });
  }
  return expected;
}

/**
 * The prepaid-credit journals the ledger holds in the period (a paid grant sold, a paid grant's unused part released),
 * built again from the catalog's grant and what finalized invoices drew from it.
 */
async function creditLifeExpected(db: Db, stored: readonly StoredJournal[], catalogs: Catalogs): Promise<ExpectedJournal[]> {
  const expected: ExpectedJournal[] = [];
  const catalog = await catalogs.at(new Date());
  for (const s of stored.filter((j) => j.kind === 'credit_grant' || j.kind === 'credit_expiry')) {
    const grant = catalog.catalog.credit_grants.find((g) => g.id === s.source_document);
    const customer = grant ? catalog.index.customers.get(grant.customer) : undefined;
    const accounts = customer ? catalog.catalog.accounts[customer.legal_entity] : undefined;
    const entity = customer ? catalog.index.legalEntities.get(customer.legal_entity) : undefined;
    if (!grant || !customer || !accounts || !entity) continue; // a grant the catalog no longer has: the stored side shows it
    let journal: Journal | null;
    if (s.kind === 'credit_grant') journal = creditGrantJournal(grant, entity.id, accounts, customer.erp_customer_id);
    else {
      // What was drawn: every use the rating counts, less the release itself.
      const used = (await grantBalancesUsed(db, grant.customer, '')).get(grant.id) ?? 0n;
      const released = s.lines.reduce(
        (sum, l) => sum + (l.tx_amount_minor !== undefined && l.debit_minor > 0n ? l.tx_amount_minor : l.debit_minor),
        0n,
      );
      journal = creditExpiryJournal(grant, used - released, entity.id, accounts, customer.erp_customer_id);
    }
    if (!journal) continue;
    const fx =
      grant.currency === entity.currency
        ? undefined
        : await fxRateAt(db, { date: journal.posting_date, from: grant.currency, to: entity.currency });
    const booked = fx ? inFunctionalCurrency(journal, asJournalFx(fx), entity.currency, entity.rounding) : journal;
    expected.push({ journal: booked, customer: grant.customer, source_kind: 'credit_grant', document_total: null });
  }
  return expected;
}

/** The revenue recognitions the ledger holds in the period, built again from the stored schedules of finalized invoices. */
async function recognitionsExpected(
  db: Db,
  entity: string,
  stored: readonly StoredJournal[],
  catalogs: Catalogs,
): Promise<ExpectedJournal[]> {
  const expected: ExpectedJournal[] = [];
  const catalog = await catalogs.at(new Date());
  for (const s of stored.filter((j) => j.kind === 'revenue_recognition')) {
    const journal = await expectedRecognition(db, catalog, entity, s.source_document.split(':').at(-1)!);
    if (journal) expected.push({ journal, customer: '', source_kind: 'revenue_recognition', document_total: null });
  }
  return expected;
}

/** The journals of the period's applied payments, with the accounts of the catalog in force when each was applied. */
async function paymentJournals(
  db: Db,
  entity: string,
  payments: readonly AppliedPayment[],
  datedBySource: ReadonlyMap<string, string>,
  catalogs: Catalogs,
  rates: ReadonlyMap<string, JournalFx>,
): Promise<ExpectedJournal[]> {
  const expected: ExpectedJournal[] = [];
  for (const p of payments) {
    const catalog = await catalogs.at(p.created_at);
    const accounts = catalog.catalog.accounts[entity];
    const customer = catalog.index.customers.get(p.customer);
    invariant(
      accounts !== undefined && customer !== undefined,
      `catalog version ${catalog.version} has the accounts of ${entity} and customer ${p.customer}`,
    );
    const functional = catalog.index.legalEntities.get(entity);
    invariant(functional !== undefined, `catalog version ${catalog.version} has legal entity ${entity}`);
    const fx = rates.get(p.id);
    if (p.currency !== functional.currency) {
      // Booked from another currency: at the rate the payment was booked at, against the receivable as it stood.
      if (fx === undefined) continue; // never booked: the stored side shows it missing
      const open = await openReceivable(db, p.invoice_id, accounts.receivable, p.id);
      const journal = paymentJournalInFunctional(
        {
          id: p.id,
          invoice_id: p.invoice_id,
          customer: p.customer,
          legal_entity: entity,
          currency: p.currency,
          amount_minor: BigInt(p.amount_minor),
          received_on: datedBySource.get(p.id) ?? p.received_on,
        },
        { ...open, customer: open.customer ?? customer.erp_customer_id, currency: p.currency },
        fx,
        accounts,
        functional.currency,
        functional.rounding,
      );
      expected.push({ journal, customer: p.customer, source_kind: 'payment', document_total: null });
      continue;
    }
    const journal = paymentJournal(
      {
        id: p.id,
        invoice_id: p.invoice_id,
        customer: p.customer,
        erp_customer_id: customer.erp_customer_id,
        legal_entity: entity,
        currency: p.currency,
        amount_minor: BigInt(p.amount_minor),
        received_on: datedBySource.get(p.id) ?? p.received_on,
      },
      accounts,
    );
    expected.push({ journal, customer: p.customer, source_kind: 'payment', document_total: null });
  }
  return expected;
}

/**
 * The journals Accrue's own records imply for the period, built again from the finalized documents and applied
 * payments with the catalog in force when they were written: the documents whose ledger journals are dated in the
 * period, and those of the period that have no journal at all (a journal that never reached the ledger).
 */
export async function expectedJournals(
  db: Db,
  entity: string,
  window: PeriodWindow,
  stored: readonly StoredJournal[],
  payments: readonly AppliedPayment[],
  catalogs: Catalogs,
): Promise<ExpectedJournal[]> {
  const datedBySource = new Map<string, string>();
  // A reversal is dated apart from the journal it reverses: the documents' own journals are dated by theirs.
  for (const j of stored)
    if (!j.kind.endsWith('_reversal') && !datedBySource.has(j.source_document)) datedBySource.set(j.source_document, j.posting_date);
  const rates = await bookedRates(db, entity);
  return [
    ...(await documentJournals(db, entity, window, datedBySource, catalogs, rates)),
    ...(await reversalJournals(db, entity, window, catalogs, rates)),
    ...(await paymentJournals(db, entity, payments, datedBySource, catalogs, rates)),
    ...(await revaluationsExpected(db, entity, stored, catalogs)),
    ...(await creditLifeExpected(db, stored, catalogs)),
    ...(await recognitionsExpected(db, entity, stored, catalogs)),
  ];
}
