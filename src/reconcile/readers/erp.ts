// An external ERP's side of invoices_vs_erp_postings: the document journals it should hold (less those the rollout
// scope held back and those still in the outbox) against the documents it lists, matched by our idempotency key.
import type { CatalogVersion } from '../../catalog/service.js';
import { isCurrency, parseMajor } from '../../domain/money.js';
import { invariant } from '../../domain/result.js';
import type { PeriodWindow } from '../../meter/period.js';
import { outboxKey } from '../../post/journals.js';
import type { ErpDocument, ErpTarget } from '../../post/target.js';
import { Sides, type Db, type DocumentRef } from '../sides.js';
import { debitTotal, journalCurrency, journalDocs, journalKey, type ExpectedJournal } from './journals.js';

/** What the outbox and the rollout scope say of the expected journals for one target. */
interface Expectation {
  /** The target's stored key of each expected document journal. */
  known: Map<string, ExpectedJournal>;
  outbox: Map<string, { document_id: string; status: string; id: string }>;
  held: Set<string>;
}

async function tableExists(db: Db, name: string): Promise<boolean> {
  return (await db.query<{ found: string | null }>('SELECT to_regclass($1)::text AS found', [name])).rows[0]?.found !== null;
}

async function heldBack(db: Db, target: string, ids: readonly string[]): Promise<Set<string>> {
  if (!(await tableExists(db, 'rollout_holds'))) return new Set<string>();
  const rows = await db.query<{ journal_id: string }>('SELECT journal_id FROM rollout_holds WHERE target = $1 AND journal_id = ANY($2)', [
    target,
    ids,
  ]);
  return new Set(rows.rows.map((r) => r.journal_id));
}

/** The left side: each document journal the ERP should hold, by its total in the form the target takes it. */
async function expectedSide(
  db: Db,
  entity: string,
  target: ErpTarget,
  expected: readonly ExpectedJournal[],
  sides: Sides,
): Promise<Expectation> {
  const documentJournals = expected.filter((e) => e.source_kind !== 'payment');
  const ids = documentJournals.map((e) => e.journal.id);
  const outbox = new Map(
    (
      await db.query<{ document_id: string; status: string; id: string }>(
        'SELECT document_id, status, id::text AS id FROM outbox WHERE target = $1 AND document_id = ANY($2)',
        [target.name, ids],
      )
    ).rows.map((r) => [r.document_id, r]),
  );
  const held = await heldBack(db, target.name, ids);
  // Invoices and credit notes go as the ERP's own sales document when the target takes one (src/post/outbox.ts):
  // the ERP then holds the document's total; everything else goes as a journal entry, compared by its debit total.
  const asDocument = (e: ExpectedJournal): boolean => e.document_total !== null && typeof target.postDocument === 'function';
  const expectedAmount = (e: ExpectedJournal): bigint => (asDocument(e) ? e.document_total! : debitTotal(e.journal.lines));
  // A document booked from another currency is held by the ERP in its own currency; a journal in the functional one.
  const expectedCurrency = (e: ExpectedJournal): string =>
    asDocument(e) && e.journal.fx ? e.journal.fx.currency : journalCurrency(e.journal.lines);
  const known = new Map<string, ExpectedJournal>();
  for (const e of documentJournals) {
    known.set(storedKey(target, e.journal.id), e);
    // A void's reversal reaches the ERP as a change to the invoice (Xero VOIDED) or a credit memo NetSuite makes from
    // it: known (so never an unknown document) but not yet compared; the ledger and trial-balance checkpoints hold it.
    if (e.journal.reverses !== undefined) continue;
    if (held.has(e.journal.id)) continue;
    if (outbox.get(e.journal.id)?.status === 'pending') {
      sides.pending += 1;
      continue;
    }
    const docs = journalDocs(e.journal.id, e.journal.source_document, e.source_kind);
    const dead = outbox.get(e.journal.id);
    if (dead?.status === 'dead') docs.push({ kind: 'dead_letter', id: dead.id, connector: target.name });
    sides.add('left', journalKey(entity, e.customer, expectedCurrency(e), e.journal.id), expectedAmount(e), docs);
  }
  return { known, outbox, held };
}

const storedKey = (target: ErpTarget, journal: string): string =>
  target.storedKey ? target.storedKey(outboxKey(target.name, journal)) : outboxKey(target.name, journal);

/** The stored keys of other legal entities' journals dated in the period: their business, not unknown documents. */
async function othersKeys(db: Db, entity: string, window: PeriodWindow, target: ErpTarget): Promise<Set<string>> {
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM journals WHERE legal_entity <> $1 AND posting_date >= $2 AND posting_date < $3`,
    [entity, window.start_date, window.end_date],
  );
  return new Set(rows.rows.map((r) => storedKey(target, r.id)));
}

/** Both checkpoints an external ERP answers from one listing of its documents. */
export interface ErpSides {
  /** invoices_vs_erp_postings: every document once, for its total. */
  postings: Sides;
  /** tax_vs_erp: the tax of each invoice and credit note the ERP holds in its own form, Accrue's against the ERP's. */
  tax: Sides;
}

/**
 * What an external ERP should hold for the period (the same journals, less those the rollout scope held back and
 * those still in the outbox) against what it reports. Its documents are matched to journals by our idempotency key;
 * a sales document it reports its tax for is compared with Accrue's tax as well.
 */
export async function erpPostingSides(
  db: Db,
  entity: string,
  window: PeriodWindow,
  target: ErpTarget,
  expected: readonly ExpectedJournal[],
  catalog: CatalogVersion,
): Promise<ErpSides> {
  invariant(typeof target.listDocuments === 'function', `ERP target ${target.name} cannot list its documents`);
  const sides = new Sides();
  const tax = new Sides();
  const taxed = new Set<string>();
  const { known, outbox, held } = await expectedSide(db, entity, target, expected, sides);
  // A document of another legal entity or period (a tenant shared by entities, a journal moved by the closed-period
  // policy) is that one's business: only documents matching nothing Accrue wrote are reported as unknown.
  const others = await othersKeys(db, entity, window, target);
  const entityCurrency = catalog.index.legalEntities.get(entity)?.currency ?? '';
  const documents: ErpDocument[] = await target.listDocuments!(entity, window.period);
  for (const doc of documents) {
    const match = known.get(doc.key);
    if (!match && others.has(doc.key)) continue;
    if (match && (held.has(match.journal.id) || match.journal.reverses !== undefined)) continue;
    if (match && outbox.get(match.journal.id)?.status === 'pending') continue;
    const currency = doc.currency !== '' ? doc.currency : match ? journalCurrency(match.journal.lines) : entityCurrency;
    invariant(isCurrency(currency), `${target.name} document ${doc.reference} has no ISO 4217 currency (${JSON.stringify(doc.currency)})`);
    const amount = parseMajor(doc.amount, currency, 'amount');
    invariant(amount.ok, `${target.name} document ${doc.reference} has an amount that is not ${currency}: ${JSON.stringify(doc.amount)}`);
    const item = match ? match.journal.id : `(unknown to Accrue) ${doc.key === '' ? `ref ${doc.reference}` : doc.key}`;
    const docs: DocumentRef[] = [
      { kind: doc.form === 'journal' ? 'erp_journal' : `erp_${doc.form}`, id: doc.reference, connector: target.name },
    ];
    if (match) docs.unshift(...journalDocs(match.journal.id, match.journal.source_document, match.source_kind));
    const key = journalKey(entity, match?.customer ?? '', currency, item);
    sides.add('right', key, amount.value, docs);
    // Once per document: a document listed twice is invoices_vs_erp_postings' duplicate, not a second tax.
    if (match?.document_tax !== undefined && doc.tax !== undefined && !taxed.has(match.journal.id)) {
      taxed.add(match.journal.id);
      const erpTax = parseMajor(doc.tax, currency, 'tax');
      invariant(erpTax.ok, `${target.name} document ${doc.reference} has a tax that is not ${currency}: ${JSON.stringify(doc.tax)}`);
      tax.add('left', key, match.document_tax, docs);
      tax.add('right', key, erpTax.value);
    }
  }
  return { postings: sides, tax };
}
