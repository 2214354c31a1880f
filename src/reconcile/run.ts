// Reconciliation of one period: gathers both sides of every checkpoint from the store (and from each ERP connector),
// compares them with the pure core (checkpoints.ts), and records each difference as an exception with the core's
// deterministic id, so a re-run opens nothing twice. docs/reconciliation.md describes what each side holds.
import type pg from 'pg';
import { catalogVersion, currentCatalog, type CatalogVersion } from '../catalog/service.js';
import { paymentJournal, trialBalance, type TrialBalanceRow } from '../domain/journal.js';
import type { Journal, Meter } from '../domain/model.js';
import { Decimal, decimalText, isCurrency, parseMajor } from '../domain/money.js';
import { invariant, ProblemError } from '../domain/result.js';
import { fromDocument } from '../invoice/store.js';
import { inclusiveEnd } from '../invoice/export.js';
import { parsePeriod, type PeriodWindow } from '../meter/period.js';
import { aggregateSql } from '../meter/usage.js';
import type { WindowUsage } from '../meter/windows.js';
import { journalsFor, outboxKey } from '../post/journals.js';
import type { ErpDocument, ErpTarget } from '../post/target.js';
import { transaction } from '../store/store.js';
import { appendAudit } from '../audit/log.js';
import { nextOrdinal } from './exceptions.js';
import {
  CHECKPOINTS,
  checkpointById,
  compareSides,
  trialBalanceSide,
  type Amount,
  type CheckpointId,
  type Difference,
  type OwnerQueue,
  type ReconKey,
  type SideEntry,
} from './checkpoints.js';

/** The built-in ledger is a connector of `invoices_vs_erp_postings` like any ERP: its journals are what it holds. */
export const LEDGER_CONNECTOR = 'ledger';
export const RECONCILE_ACTOR = 'system:reconcile';
/** Limit (TigerStyle): differences one checkpoint may record in one run; more means something upstream is broken wholesale. */
export const DIFFERENCES_PER_CHECKPOINT_MAX = 10_000;

/** Journal kinds that carry a finalized invoice or credit note to the books (payments come back from the ERP instead). */
const DOCUMENT_JOURNAL_KINDS = ['invoice', 'credit_drawdown', 'credit_note'] as const;

export interface ReconcileOptions {
  period: string;
  legalEntity?: string;
  /** External ERP targets to compare besides the built-in ledger; each must implement listDocuments. */
  connectors?: readonly ErpTarget[];
  /** false: compare and report only, opening and clearing nothing (the read-only API). Default true. */
  record?: boolean;
  actor?: string;
}

/** A document a difference concerns: an invoice, journal, payment, rating run, usage aggregate or ERP record. */
export interface DocumentRef {
  kind: string;
  id: string;
  connector?: string;
}

export interface DifferenceReport {
  exception_id: string;
  kind: Difference['kind'];
  key: ReconKey;
  left: string | null;
  right: string | null;
  difference: string;
  occurrences: Difference['occurrences'];
  documents: DocumentRef[];
  /** Opened by this run (false: it was already there, or nothing was recorded). */
  opened: boolean;
  status: string | null;
}

export interface CheckpointReport {
  checkpoint: CheckpointId;
  legal_entity: string;
  connector: string | null;
  owner_queue: OwnerQueue;
  description: string;
  status: 'green' | 'red';
  compared: { left: number; right: number };
  /** ERP connectors: documents still waiting in the outbox, left out of the comparison until posted or dead. */
  pending: number;
  differences: DifferenceReport[];
}

export interface ClearedException {
  id: string;
  checkpoint: string;
  legal_entity: string;
  item: string;
  status: string;
}

export interface ReconcileReport {
  period: string;
  legal_entities: string[];
  connectors: string[];
  recorded: boolean;
  status: 'green' | 'red';
  checkpoints: CheckpointReport[];
  opened: string[];
  /** Exceptions whose difference a run no longer finds: still open until a person resolves or waives them. */
  cleared: ClearedException[];
  /** Open and assigned exceptions of the period, per legal entity and queue (settlement's included). */
  open_exceptions: Array<{ legal_entity: string; owner_queue: string; open: number; assigned: number }>;
}

type Db = pg.Pool | pg.PoolClient;

const keyText = (key: ReconKey): string => JSON.stringify([key.legal_entity, key.customer, key.currency, key.item]);
const amountText = (value: Amount | null): string | null => (value === null ? null : typeof value === 'bigint' ? value.toString() : value);

/** Both sides of one checkpoint plus the documents behind each key, for the exception. */
class Sides {
  readonly left: SideEntry[] = [];
  readonly right: SideEntry[] = [];
  readonly documents = new Map<string, DocumentRef[]>();
  pending = 0;

  add(side: 'left' | 'right', key: ReconKey, value: bigint | string, documents: DocumentRef[] = []): void {
    (side === 'left' ? this.left : this.right).push([key, value]);
    if (documents.length === 0) return;
    const list = this.documents.get(keyText(key)) ?? [];
    for (const doc of documents)
      if (!list.some((d) => d.kind === doc.kind && d.id === doc.id && d.connector === doc.connector)) list.push(doc);
    this.documents.set(keyText(key), list);
  }
}

// ---------- catalogs ----------

/** Catalog versions by number, loaded once per run; `at` answers which one was in force at a moment. */
class Catalogs {
  private readonly loaded = new Map<number, CatalogVersion>();
  private applied: Array<{ version: number; at: number }> | undefined;
  constructor(private readonly db: Db) {}

  async version(version: number): Promise<CatalogVersion> {
    const cached = this.loaded.get(version);
    if (cached) return cached;
    const loaded = await catalogVersion(this.db, version);
    invariant(loaded !== undefined, `catalog version ${version} exists`);
    this.loaded.set(version, loaded);
    return loaded;
  }

  /** The version in force at a moment: what the billing run or payment that wrote a journal used. */
  async at(moment: Date): Promise<CatalogVersion> {
    this.applied ??= (
      await this.db.query<{ version: number; applied_at: Date }>('SELECT version, applied_at FROM catalog_versions ORDER BY version')
    ).rows.map((r) => ({ version: r.version, at: r.applied_at.getTime() }));
    invariant(this.applied.length > 0, 'a catalog has been applied');
    let chosen = this.applied[0]!.version;
    for (const v of this.applied) if (v.at <= moment.getTime()) chosen = v.version;
    return this.version(chosen);
  }
}

// ---------- usage: events, rating runs, invoice lines ----------

interface RunUsage {
  run: string;
  customer: string;
  catalog_version: number;
  watermark: string;
  include_late: boolean;
  usage: WindowUsage[];
}

const usageItem = (u: { usage_ref: string }, run: { watermark: string; include_late: boolean }) =>
  `${u.usage_ref} @seq<=${run.watermark}${run.include_late ? ' +late' : ''}`;

async function ratingRuns(db: Db, entity: string, period: string): Promise<RunUsage[]> {
  // Credit notes carry the run of the invoice they correct; a replacement invoice (corrects set) read late usage too.
  const rows = (
    await db.query<{
      id: string;
      customer: string;
      catalog_version: number;
      watermark: string;
      usage: WindowUsage[];
      include_late: boolean;
    }>(
      `SELECT r.id, r.customer, r.catalog_version, r.event_seq_watermark::text AS watermark, r.usage, bool_or(i.corrects IS NOT NULL) AS include_late
         FROM rating_runs r JOIN invoices i ON i.rating_run = r.id
        WHERE i.legal_entity = $1 AND i.period = $2 AND i.kind = 'invoice' AND i.status <> 'draft'
        GROUP BY r.id ORDER BY r.id`,
      [entity, period],
    )
  ).rows;
  return rows.map((r) => ({
    run: r.id,
    customer: r.customer,
    catalog_version: r.catalog_version,
    watermark: r.watermark,
    include_late: r.include_late,
    usage: r.usage,
  }));
}

/**
 * Recounts the events behind every usage aggregate a rating run read, with the run's own watermark and late rule,
 * one query per (meter, window, watermark) over all customers that share it.
 */
async function recount(db: Db, runs: readonly RunUsage[], catalogs: Catalogs): Promise<Map<string, string>> {
  const groups = new Map<string, { meter: Meter; from: string; to: string; watermark: string; late: boolean; customers: Set<string> }>();
  for (const run of runs) {
    const catalog = await catalogs.version(run.catalog_version);
    for (const u of run.usage) {
      const meter = catalog.index.meters.get(u.meter);
      invariant(meter !== undefined, `rating run ${run.run} read meter ${u.meter}, which catalog version ${run.catalog_version} has`);
      const key = JSON.stringify([run.catalog_version, u.meter, u.from, u.to, run.watermark, run.include_late]);
      const group = groups.get(key) ?? {
        meter,
        from: u.from,
        to: u.to,
        watermark: run.watermark,
        late: run.include_late,
        customers: new Set<string>(),
      };
      group.customers.add(u.customer);
      groups.set(key, group);
    }
  }
  const counted = new Map<string, string>(); // JSON [customer, meter, from, to, watermark, late] -> quantity
  for (const g of groups.values()) {
    const hasValue = g.meter.aggregation === 'count' ? '' : ` AND meter_values ? '${g.meter.id.replace(/'/g, "''")}'`;
    const rows = (
      await db.query<{ customer_id: string; quantity: string }>(
        `SELECT customer_id, coalesce(${aggregateSql(g.meter)}, 0)::text AS quantity FROM events
          WHERE customer_id = ANY($1) AND type = $2 AND time >= $3 AND time < $4 AND seq <= $5${g.late ? '' : ' AND NOT late'}${hasValue}
          GROUP BY customer_id`,
        [[...g.customers], g.meter.event_type, new Date(g.from).toISOString(), new Date(g.to).toISOString(), g.watermark],
      )
    ).rows;
    const found = new Map(rows.map((r) => [r.customer_id, r.quantity]));
    for (const customer of g.customers)
      counted.set(
        JSON.stringify([customer, g.meter.id, g.from, g.to, g.watermark, g.late]),
        decimalText(new Decimal(found.get(customer) ?? '0')),
      );
  }
  return counted;
}

async function usageSides(db: Db, entity: string, period: string, catalogs: Catalogs): Promise<{ events: Sides; rated: Sides }> {
  const runs = await ratingRuns(db, entity, period);
  const counted = await recount(db, runs, catalogs);
  const events = new Sides();
  const rated = new Sides();
  const itemByRef = new Map<string, string>(); // run + usage_ref -> item
  for (const run of runs) {
    for (const u of run.usage) {
      const key: ReconKey = { legal_entity: entity, customer: run.customer, currency: '', item: usageItem(u, run) };
      const docs: DocumentRef[] = [
        { kind: 'rating_run', id: run.run },
        { kind: 'usage_aggregate', id: u.usage_ref },
      ];
      const recounted = counted.get(JSON.stringify([u.customer, u.meter, u.from, u.to, run.watermark, run.include_late]));
      invariant(recounted !== undefined, `usage ${u.usage_ref} was recounted`);
      events.add('left', key, recounted, docs);
      events.add('right', key, u.quantity, docs);
      rated.add('left', key, u.quantity, docs);
      itemByRef.set(`${run.run}\n${u.usage_ref}`, key.item);
    }
  }
  // A usage aggregate priced by more than one line (two prices on one meter) is one quantity: each distinct quantity counts once.
  const lines = (
    await db.query<{
      invoice_id: string;
      number: string | null;
      customer: string;
      rating_run: string;
      usage_ref: string;
      quantity: string;
      line_no: number;
    }>(
      `SELECT l.invoice_id, i.number, i.customer, i.rating_run, l.usage_ref, l.quantity::text AS quantity, l.line_no
         FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
        WHERE i.legal_entity = $1 AND i.period = $2 AND i.kind = 'invoice' AND i.status <> 'draft' AND l.usage_ref IS NOT NULL
        ORDER BY l.invoice_id, l.line_no`,
      [entity, period],
    )
  ).rows;
  const seen = new Set<string>();
  const runsById = new Map(runs.map((r) => [r.run, r]));
  for (const line of lines) {
    const run = runsById.get(line.rating_run);
    const item =
      itemByRef.get(`${line.rating_run}\n${line.usage_ref}`) ?? (run ? usageItem(line, run) : `${line.usage_ref} (no rating run)`);
    const quantity = decimalText(new Decimal(line.quantity));
    const once = JSON.stringify([line.customer, item, quantity]);
    if (seen.has(once)) continue;
    seen.add(once);
    rated.add('right', { legal_entity: entity, customer: line.customer, currency: '', item }, quantity, [
      { kind: 'invoice', id: line.invoice_id },
      { kind: 'usage_aggregate', id: line.usage_ref },
    ]);
  }
  return { events, rated };
}

/** Rated charges (the finalized document's lines) against the stored invoice lines, per line. */
async function invoiceLineSides(db: Db, entity: string, period: string): Promise<Sides> {
  const sides = new Sides();
  const invoices = (
    await db.query<{
      id: string;
      number: string | null;
      customer: string;
      currency: string;
      document: { lines: Array<{ line_no: number; kind: string; price_id: string | null; product: string; amount_minor: string }> };
    }>(
      `SELECT id, number, customer, currency, document FROM invoices
        WHERE legal_entity = $1 AND period = $2 AND status <> 'draft' ORDER BY id`,
      [entity, period],
    )
  ).rows;
  const item = (number: string, l: { line_no: number; kind: string; price_id: string | null; product: string }) =>
    `${number} line ${l.line_no} ${l.kind}:${l.price_id ?? l.product}`;
  const byId = new Map(invoices.map((i) => [i.id, i]));
  for (const invoice of invoices) {
    for (const line of invoice.document.lines) {
      sides.add(
        'left',
        { legal_entity: entity, customer: invoice.customer, currency: invoice.currency, item: item(invoice.number ?? invoice.id, line) },
        BigInt(line.amount_minor),
        [{ kind: 'invoice', id: invoice.id }],
      );
    }
  }
  const rows = (
    await db.query<{ invoice_id: string; line_no: number; kind: string; price_id: string | null; product: string; amount_minor: string }>(
      `SELECT l.invoice_id, l.line_no, l.kind, l.price_id, l.product, l.amount_minor::text AS amount_minor
         FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
        WHERE i.legal_entity = $1 AND i.period = $2 AND i.status <> 'draft' ORDER BY l.invoice_id, l.line_no`,
      [entity, period],
    )
  ).rows;
  for (const row of rows) {
    const invoice = byId.get(row.invoice_id)!;
    sides.add(
      'right',
      { legal_entity: entity, customer: invoice.customer, currency: invoice.currency, item: item(invoice.number ?? invoice.id, row) },
      BigInt(row.amount_minor),
      [{ kind: 'invoice', id: invoice.id }],
    );
  }
  return sides;
}

// ---------- journals: what Accrue's documents imply, and what the ledger holds ----------

interface ExpectedJournal {
  journal: Journal;
  customer: string;
  source_kind: 'invoice' | 'credit_note' | 'payment';
  /** The invoice's or credit note's total: what the ERP books when it takes the document in its own form. */
  document_total: bigint | null;
}

interface StoredJournal {
  id: string;
  kind: string;
  source_document: string;
  posting_date: string;
  customer: string | null;
  lines: Array<{ account: string; currency: string; debit_minor: bigint; credit_minor: bigint }>;
}

const debitTotal = (lines: ReadonlyArray<{ debit_minor: bigint }>): bigint => lines.reduce((sum, l) => sum + l.debit_minor, 0n);

async function storedJournals(db: Db, entity: string, window: PeriodWindow): Promise<StoredJournal[]> {
  const heads = (
    await db.query<{ id: string; kind: string; source_document: string; posting_date: string; customer: string | null }>(
      `SELECT j.id, j.kind, j.source_document, to_char(j.posting_date, 'YYYY-MM-DD') AS posting_date,
              coalesce(i.customer, pi.customer) AS customer
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
    await db.query<{ journal_id: string; account: string; currency: string; debit_minor: string; credit_minor: string }>(
      `SELECT journal_id, account, currency, debit_minor::text AS debit_minor, credit_minor::text AS credit_minor
         FROM journal_lines WHERE journal_id = ANY($1) ORDER BY journal_id, line_no`,
      [heads.map((h) => h.id)],
    )
  ).rows;
  const byJournal = new Map<string, StoredJournal['lines']>();
  for (const l of lines) {
    const list = byJournal.get(l.journal_id) ?? [];
    list.push({ account: l.account, currency: l.currency, debit_minor: BigInt(l.debit_minor), credit_minor: BigInt(l.credit_minor) });
    byJournal.set(l.journal_id, list);
  }
  return heads.map((h) => ({ ...h, lines: byJournal.get(h.id) ?? [] }));
}

/**
 * The journals Accrue's own records imply for the period, built again from the finalized documents and applied
 * payments with the catalog in force when they were written: the documents whose ledger journals are dated in the
 * period, and those of the period that have no journal at all (a journal that never reached the ledger).
 */
async function expectedJournals(
  db: Db,
  entity: string,
  window: PeriodWindow,
  stored: readonly StoredJournal[],
  catalogs: Catalogs,
): Promise<ExpectedJournal[]> {
  const expected: ExpectedJournal[] = [];
  const datedBySource = new Map<string, string>();
  for (const j of stored) if (!datedBySource.has(j.source_document)) datedBySource.set(j.source_document, j.posting_date);
  const lastDay = inclusiveEnd(window.end_date);
  const documents = (
    await db.query<{ id: string; customer: string; document: unknown; finalized_at: Date }>(
      `SELECT i.id, i.customer, i.document, i.finalized_at FROM invoices i
        WHERE i.legal_entity = $1 AND i.status <> 'draft' AND (
              EXISTS (SELECT 1 FROM journals j WHERE j.source_document = i.id AND j.kind <> 'payment' AND j.posting_date >= $2 AND j.posting_date < $3)
           OR (i.period = $4 AND NOT EXISTS (SELECT 1 FROM journals j WHERE j.source_document = i.id AND j.kind <> 'payment')))
        ORDER BY i.id`,
      [entity, window.start_date, window.end_date, window.period],
    )
  ).rows;
  for (const row of documents) {
    // The document is the finalized snapshot (voiding moves only the status column): it is what was posted.
    const invoice = { ...fromDocument(row.document), status: 'finalized' as const };
    const catalog = await catalogs.at(row.finalized_at);
    for (const journal of journalsFor(invoice, catalog, datedBySource.get(row.id) ?? lastDay)) {
      expected.push({
        journal,
        customer: row.customer,
        source_kind: invoice.kind,
        document_total: journal.kind === invoice.kind ? invoice.total_minor : null,
      });
    }
  }
  const payments = (
    await db.query<{
      id: string;
      invoice_id: string;
      customer: string;
      currency: string;
      amount_minor: string;
      received_on: string;
      created_at: Date;
    }>(
      `SELECT p.id, p.invoice_id, i.customer, p.currency, p.amount_minor::text AS amount_minor, to_char(p.received_on, 'YYYY-MM-DD') AS received_on, p.created_at
         FROM payments p JOIN invoices i ON i.id = p.invoice_id
        WHERE p.status = 'applied' AND i.legal_entity = $1 AND (
              EXISTS (SELECT 1 FROM journals j WHERE j.kind = 'payment' AND j.source_document = p.id AND j.posting_date >= $2 AND j.posting_date < $3)
           OR (p.received_on >= $2 AND p.received_on < $3 AND NOT EXISTS (SELECT 1 FROM journals j WHERE j.kind = 'payment' AND j.source_document = p.id)))
        ORDER BY p.id`,
      [entity, window.start_date, window.end_date],
    )
  ).rows;
  for (const p of payments) {
    const catalog = await catalogs.at(p.created_at);
    const accounts = catalog.catalog.accounts[entity];
    const customer = catalog.index.customers.get(p.customer);
    invariant(
      accounts !== undefined && customer !== undefined,
      `catalog version ${catalog.version} has the accounts of ${entity} and customer ${p.customer}`,
    );
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

const journalKey = (entity: string, customer: string | null, currency: string, id: string): ReconKey => ({
  legal_entity: entity,
  customer: customer ?? '',
  currency,
  item: id,
});
const journalDocs = (journalIdText: string, source: string, sourceKind: string): DocumentRef[] => [
  { kind: 'journal', id: journalIdText },
  { kind: sourceKind, id: source },
];

/** The single currency of a journal (Accrue writes one currency per journal; a manual edit might not). */
const journalCurrency = (lines: ReadonlyArray<{ currency: string }>): string => lines[0]?.currency ?? '';

function ledgerPostingSides(entity: string, expected: readonly ExpectedJournal[], stored: readonly StoredJournal[]): Sides {
  const sides = new Sides();
  for (const e of expected) {
    if (e.source_kind === 'payment') continue;
    sides.add(
      'left',
      journalKey(entity, e.customer, journalCurrency(e.journal.lines), e.journal.id),
      debitTotal(e.journal.lines),
      journalDocs(e.journal.id, e.journal.source_document, e.source_kind),
    );
  }
  for (const s of stored) {
    if (!(DOCUMENT_JOURNAL_KINDS as readonly string[]).includes(s.kind)) continue;
    const currencies = [...new Set(s.lines.map((l) => l.currency))];
    for (const currency of currencies) {
      const lines = s.lines.filter((l) => l.currency === currency);
      sides.add(
        'right',
        journalKey(entity, s.customer, currency, s.id),
        debitTotal(lines),
        journalDocs(s.id, s.source_document, s.kind === 'credit_note' ? 'credit_note' : 'invoice'),
      );
    }
  }
  return sides;
}

async function tableExists(db: Db, name: string): Promise<boolean> {
  return (await db.query<{ found: string | null }>('SELECT to_regclass($1)::text AS found', [name])).rows[0]?.found !== null;
}

/**
 * What an external ERP should hold for the period (the same journals, less those the rollout scope held back and
 * those still in the outbox) against what it reports. Its documents are matched to journals by our idempotency key.
 */
async function erpPostingSides(
  db: Db,
  entity: string,
  window: PeriodWindow,
  target: ErpTarget,
  expected: readonly ExpectedJournal[],
  catalog: CatalogVersion,
): Promise<Sides> {
  invariant(typeof target.listDocuments === 'function', `ERP target ${target.name} cannot list its documents`);
  const sides = new Sides();
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
  const held = (await tableExists(db, 'rollout_holds'))
    ? new Set(
        (
          await db.query<{ journal_id: string }>('SELECT journal_id FROM rollout_holds WHERE target = $1 AND journal_id = ANY($2)', [
            target.name,
            ids,
          ])
        ).rows.map((r) => r.journal_id),
      )
    : new Set<string>();
  // Invoices and credit notes go as the ERP's own sales document when the target takes one (src/post/outbox.ts):
  // the ERP then holds the document's total; everything else goes as a journal entry, compared by its debit total.
  const expectedAmount = (e: ExpectedJournal): bigint =>
    e.document_total !== null && typeof target.postDocument === 'function' ? e.document_total : debitTotal(e.journal.lines);
  const storedKey = (journal: string) =>
    target.storedKey ? target.storedKey(outboxKey(target.name, journal)) : outboxKey(target.name, journal);
  const known = new Map<string, ExpectedJournal>();
  for (const e of documentJournals) {
    known.set(storedKey(e.journal.id), e);
    if (held.has(e.journal.id)) continue;
    if (outbox.get(e.journal.id)?.status === 'pending') {
      sides.pending += 1;
      continue;
    }
    const docs = journalDocs(e.journal.id, e.journal.source_document, e.source_kind);
    const dead = outbox.get(e.journal.id);
    if (dead?.status === 'dead') docs.push({ kind: 'dead_letter', id: dead.id, connector: target.name });
    sides.add('left', journalKey(entity, e.customer, journalCurrency(e.journal.lines), e.journal.id), expectedAmount(e), docs);
  }
  // A document of another legal entity or period (a tenant shared by entities, a journal moved by the closed-period
  // policy) is that one's business: only documents matching nothing Accrue wrote are reported as unknown.
  const others = new Set(
    (
      await db.query<{ id: string }>(`SELECT id FROM journals WHERE legal_entity <> $1 AND posting_date >= $2 AND posting_date < $3`, [
        entity,
        window.start_date,
        window.end_date,
      ])
    ).rows.map((r) => storedKey(r.id)),
  );
  const entityCurrency = catalog.index.legalEntities.get(entity)?.currency ?? '';
  const documents: ErpDocument[] = await target.listDocuments!(entity, window.period);
  for (const doc of documents) {
    const match = known.get(doc.key);
    if (!match && others.has(doc.key)) continue;
    if (match && held.has(match.journal.id)) continue;
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
    sides.add('right', journalKey(entity, match?.customer ?? '', currency, item), amount.value, docs);
  }
  return sides;
}

/** Payments applied (received in the period, or whose journal is dated in it) against the receivable their journals cleared. */
async function paymentSides(
  db: Db,
  entity: string,
  window: PeriodWindow,
  stored: readonly StoredJournal[],
  catalog: CatalogVersion,
): Promise<Sides> {
  const sides = new Sides();
  const receivable = catalog.catalog.accounts[entity]?.receivable;
  invariant(receivable !== undefined, `the catalog has a receivable account for ${entity}`);
  const item = (invoice: string) => `${invoice}@${window.period}`;
  const payments = (
    await db.query<{ id: string; invoice_id: string; customer: string; currency: string; amount_minor: string }>(
      `SELECT p.id, p.invoice_id, i.customer, p.currency, p.amount_minor::text AS amount_minor
         FROM payments p JOIN invoices i ON i.id = p.invoice_id
        WHERE p.status = 'applied' AND i.legal_entity = $1 AND (
              EXISTS (SELECT 1 FROM journals j WHERE j.kind = 'payment' AND j.source_document = p.id AND j.posting_date >= $2 AND j.posting_date < $3)
           OR (p.received_on >= $2 AND p.received_on < $3 AND NOT EXISTS (SELECT 1 FROM journals j WHERE j.kind = 'payment' AND j.source_document = p.id)))
        ORDER BY p.id`,
      [entity, window.start_date, window.end_date],
    )
  ).rows;
  // Several payments on one invoice in a period are one entry per side: the sums are what must agree.
  const byInvoice = new Map<string, { key: ReconKey; amount: bigint; docs: DocumentRef[] }>();
  for (const p of payments) {
    const key: ReconKey = { legal_entity: entity, customer: p.customer, currency: p.currency, item: item(p.invoice_id) };
    const slot = byInvoice.get(keyText(key)) ?? { key, amount: 0n, docs: [{ kind: 'invoice', id: p.invoice_id }] };
    slot.amount += BigInt(p.amount_minor);
    slot.docs.push({ kind: 'payment', id: p.id });
    byInvoice.set(keyText(key), slot);
  }
  for (const slot of byInvoice.values()) sides.add('left', slot.key, slot.amount, slot.docs);
  const invoiceOf = new Map(
    (
      await db.query<{ id: string; invoice_id: string | null }>('SELECT id, invoice_id FROM payments WHERE id = ANY($1)', [
        stored.filter((s) => s.kind === 'payment').map((s) => s.source_document),
      ])
    ).rows.map((r) => [r.id, r.invoice_id]),
  );
  const cleared = new Map<string, { key: ReconKey; amount: bigint; docs: DocumentRef[] }>();
  for (const s of stored) {
    if (s.kind !== 'payment') continue;
    const invoice = invoiceOf.get(s.source_document) ?? null;
    for (const line of s.lines) {
      if (line.account !== receivable) continue;
      const key: ReconKey = {
        legal_entity: entity,
        customer: s.customer ?? '',
        currency: line.currency,
        item: invoice ? item(invoice) : `(journal ${s.id})@${window.period}`,
      };
      const slot = cleared.get(keyText(key)) ?? { key, amount: 0n, docs: invoice ? [{ kind: 'invoice', id: invoice }] : [] };
      slot.amount += line.credit_minor - line.debit_minor;
      if (!slot.docs.some((d) => d.id === s.id)) slot.docs.push({ kind: 'journal', id: s.id });
      cleared.set(keyText(key), slot);
    }
  }
  for (const slot of cleared.values()) sides.add('right', slot.key, slot.amount, slot.docs);
  return sides;
}

/** Balances the documents imply against the ledger's own trial balance for the period's postings, `(net)` included. */
function trialBalanceSides(entity: string, period: string, expected: readonly ExpectedJournal[], stored: readonly StoredJournal[]): Sides {
  const sides = new Sides();
  // The period is in the item: the same account and amounts in another month are another exception.
  const withPeriod = (entries: SideEntry[]): SideEntry[] =>
    entries.map(([key, value]) => [{ ...key, item: `${key.item}@${period}` }, value]);
  for (const [key, value] of withPeriod(trialBalanceSide(trialBalance(expected.map((e) => e.journal)))))
    sides.add('left', key, value as bigint);
  const rows = new Map<string, TrialBalanceRow>();
  for (const s of stored) {
    for (const l of s.lines) {
      const id = JSON.stringify([l.account, l.currency]);
      const row = rows.get(id) ?? {
        legal_entity: entity,
        account: l.account,
        currency: l.currency,
        debit_minor: 0n,
        credit_minor: 0n,
        balance_minor: 0n,
      };
      row.debit_minor += l.debit_minor;
      row.credit_minor += l.credit_minor;
      row.balance_minor = row.debit_minor - row.credit_minor;
      rows.set(id, row);
    }
  }
  for (const [key, value] of withPeriod(trialBalanceSide([...rows.values()]))) sides.add('right', key, value as bigint);
  // Which journals touched an account: named on the exception, so the reviewer starts from them.
  for (const s of stored) {
    for (const l of s.lines) {
      const docs = [{ kind: 'journal', id: s.id }];
      for (const item of [`${l.account}@${period}`, `(net)@${period}`]) {
        const text = keyText({ legal_entity: entity, customer: '', currency: l.currency, item });
        const list = sides.documents.get(text) ?? [];
        if (!list.some((d) => d.id === s.id)) list.push(...docs);
        sides.documents.set(text, list);
      }
    }
  }
  return sides;
}

// ---------- the run ----------

function report(
  checkpoint: CheckpointId,
  entity: string,
  connector: string | null,
  sides: Sides,
): { report: CheckpointReport; differences: Difference[] } {
  const differences = compareSides(checkpoint, sides.left, sides.right, connector === null ? {} : { connector });
  invariant(
    differences.length <= DIFFERENCES_PER_CHECKPOINT_MAX,
    `${checkpoint} found ${differences.length} differences for ${entity}; more than ${DIFFERENCES_PER_CHECKPOINT_MAX} means a stage failed wholesale`,
  );
  const definition = checkpointById(checkpoint);
  return {
    differences,
    report: {
      checkpoint,
      legal_entity: entity,
      connector,
      owner_queue: definition.owner_queue,
      description: definition.description,
      status: differences.length === 0 ? 'green' : 'red',
      compared: { left: sides.left.length, right: sides.right.length },
      pending: sides.pending,
      differences: differences.map((d) => ({
        exception_id: d.exception_id,
        kind: d.kind,
        key: d.key,
        left: amountText(d.left),
        right: amountText(d.right),
        difference: amountText(d.difference)!,
        occurrences: d.occurrences,
        documents: sides.documents.get(keyText(d.key)) ?? [],
        opened: false,
        status: null,
      })),
    },
  };
}

/** Compares every checkpoint of one legal entity and period; nothing is written. */
async function compareEntity(
  db: Db,
  entity: string,
  window: PeriodWindow,
  connectors: readonly ErpTarget[],
  catalog: CatalogVersion,
  catalogs: Catalogs,
): Promise<Array<{ report: CheckpointReport; differences: Difference[] }>> {
  const results: Array<{ report: CheckpointReport; differences: Difference[] }> = [];
  const { events, rated } = await usageSides(db, entity, window.period, catalogs);
  results.push(report('usage_events_vs_aggregates', entity, null, events));
  results.push(report('aggregates_vs_rated', entity, null, rated));
  results.push(report('rated_vs_invoice_lines', entity, null, await invoiceLineSides(db, entity, window.period)));
  const stored = await storedJournals(db, entity, window);
  const expected = await expectedJournals(db, entity, window, stored, catalogs);
  results.push(report('invoices_vs_erp_postings', entity, LEDGER_CONNECTOR, ledgerPostingSides(entity, expected, stored)));
  for (const target of connectors)
    results.push(
      report('invoices_vs_erp_postings', entity, target.name, await erpPostingSides(db, entity, window, target, expected, catalog)),
    );
  results.push(report('payments_vs_receivable', entity, null, await paymentSides(db, entity, window, stored, catalog)));
  results.push(report('trial_balance', entity, null, trialBalanceSides(entity, window.period, expected, stored)));
  invariant(results.length === CHECKPOINTS.length + connectors.length, 'every checkpoint ran once, the ERP one per connector');
  return results;
}

/**
 * Reconciles a period: per legal entity, every checkpoint, the ERP one for the built-in ledger and each connector.
 * With `record` (the default) each difference becomes an exception (a known one is only marked seen again) and an
 * exception whose difference is gone is marked cleared; every move goes to exception_events and the audit log.
 */
export async function reconcilePeriod(pool: pg.Pool, options: ReconcileOptions): Promise<ReconcileReport> {
  const window = parsePeriod(options.period, 'period');
  if (!window.ok) throw new ProblemError(window.problems);
  const catalog = await currentCatalog(pool);
  if (!catalog)
    throw new ProblemError(
      [{ path: '', code: 'no_catalog', message: 'no catalog has been applied; run `accrue catalog apply FILE` first' }],
      409,
    );
  const entities = catalog.catalog.legal_entities
    .map((e) => e.id)
    .filter((id) => options.legalEntity === undefined || id === options.legalEntity);
  if (entities.length === 0)
    throw new ProblemError(
      [
        {
          path: 'legal_entity',
          code: 'unknown',
          message: `no legal entity ${options.legalEntity}; the catalog has ${catalog.catalog.legal_entities.map((e) => e.id).join(', ')}`,
        },
      ],
      404,
    );
  const connectors = options.connectors ?? [];
  const names = new Set<string>([LEDGER_CONNECTOR]);
  for (const [index, target] of connectors.entries()) {
    if (typeof target.listDocuments !== 'function')
      throw new ProblemError([
        { path: `connectors[${index}]`, code: 'cannot_list', message: `the ${target.name} connector cannot list its documents` },
      ]);
    if (names.has(target.name))
      throw new ProblemError([{ path: `connectors[${index}]`, code: 'duplicate', message: `connector ${target.name} is named twice` }]);
    names.add(target.name);
  }
  const record = options.record ?? true;
  const actor = options.actor ?? RECONCILE_ACTOR;
  const catalogs = new Catalogs(pool);
  const checkpoints: CheckpointReport[] = [];
  const opened: string[] = [];
  const cleared: ClearedException[] = [];
  // A connector that is a configured connection holds only the books of the legal entities routed to it: another
  // entity's documents are never looked for there (two entities on two Xero organisations never mix).
  const routed = new Map<string, string[]>();
  for (const row of (
    await pool.query<{ connection: string; legal_entity: string }>('SELECT connection, legal_entity FROM erp_entity_connections')
  ).rows) {
    routed.set(row.connection, [...(routed.get(row.connection) ?? []), row.legal_entity]);
  }
  for (const entity of entities) {
    const here = connectors.filter((target) => routed.get(target.name)?.includes(entity) ?? true);
    const results = await compareEntity(pool, entity, window.value, here, catalog, catalogs);
    if (record) {
      const outcome = await recordDifferences(
        pool,
        entity,
        window.value.period,
        [LEDGER_CONNECTOR, ...here.map((t) => t.name)],
        results,
        actor,
      );
      opened.push(...outcome.opened);
      cleared.push(...outcome.cleared);
    }
    checkpoints.push(...results.map((r) => r.report));
  }
  const open_exceptions = (
    await pool.query<{ legal_entity: string; owner_queue: string; open: number; assigned: number }>(
      `SELECT legal_entity, owner_queue, count(*) FILTER (WHERE status = 'open')::int AS open, count(*) FILTER (WHERE status = 'assigned')::int AS assigned
         FROM exceptions WHERE legal_entity = ANY($1) AND period = $2 AND status IN ('open', 'assigned')
        GROUP BY legal_entity, owner_queue ORDER BY legal_entity, owner_queue`,
      [entities, window.value.period],
    )
  ).rows;
  return {
    period: window.value.period,
    legal_entities: entities,
    connectors: [...names],
    recorded: record,
    status: checkpoints.every((c) => c.status === 'green') ? 'green' : 'red',
    checkpoints,
    opened,
    cleared,
    open_exceptions,
  };
}

async function recordDifferences(
  pool: pg.Pool,
  entity: string,
  period: string,
  connectors: string[],
  results: Array<{ report: CheckpointReport; differences: Difference[] }>,
  actor: string,
): Promise<{ opened: string[]; cleared: ClearedException[] }> {
  return transaction(pool, async (client) => {
    // One recorder per entity and period at a time: two runs would otherwise race on the same ids.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`reconcile:${entity}:${period}`]);
    const opened: string[] = [];
    const audits: Array<Parameters<typeof appendAudit>[1]> = [];
    const found = new Set<string>();
    for (const { report, differences } of results) {
      report.differences.forEach((shown, index) => {
        invariant(differences[index]!.exception_id === shown.exception_id, 'the report lists the differences in order');
      });
      for (const shown of report.differences) {
        found.add(shown.exception_id);
        const inserted = await client.query(
          `INSERT INTO exceptions (id, kind, owner_queue, status, subject, details, checkpoint, period, legal_entity, customer, currency, connector, item,
                                   left_amount, right_amount, difference, documents, last_seen_at)
           VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, now())
           ON CONFLICT (id) DO NOTHING RETURNING id`,
          [
            shown.exception_id,
            shown.kind,
            report.owner_queue,
            shown.key.item,
            JSON.stringify({ occurrences: shown.occurrences, description: report.description }),
            report.checkpoint,
            period,
            entity,
            shown.key.customer === '' ? null : shown.key.customer,
            shown.key.currency === '' ? null : shown.key.currency,
            report.connector,
            shown.key.item,
            shown.left,
            shown.right,
            shown.difference,
            JSON.stringify(shown.documents),
          ],
        );
        if ((inserted.rowCount ?? 0) > 0) {
          await client.query(
            `INSERT INTO exception_events (exception_id, ordinal, action, from_status, to_status, actor, details) VALUES ($1, 1, 'open', NULL, 'open', $2, $3)`,
            [
              shown.exception_id,
              actor,
              JSON.stringify({ checkpoint: report.checkpoint, kind: shown.kind, left: shown.left, right: shown.right }),
            ],
          );
          audits.push({
            actor,
            action: 'exception.open',
            subject: shown.exception_id,
            details: {
              checkpoint: report.checkpoint,
              connector: report.connector,
              legal_entity: entity,
              period,
              item: shown.key.item,
              kind: shown.kind,
              left: shown.left,
              right: shown.right,
            },
          });
          opened.push(shown.exception_id);
          shown.opened = true;
          shown.status = 'open';
          continue;
        }
        const existing = (
          await client.query<{ status: string; cleared: boolean }>(
            'SELECT status, cleared_at IS NOT NULL AS cleared FROM exceptions WHERE id = $1 FOR UPDATE',
            [shown.exception_id],
          )
        ).rows[0]!;
        shown.status = existing.status;
        if (existing.cleared && (existing.status === 'open' || existing.status === 'assigned')) {
          await client.query(
            `INSERT INTO exception_events (exception_id, ordinal, action, from_status, to_status, actor, reason) VALUES ($1, $2, 'reappear', $3, $3, $4, 'the difference is found again')`,
            [shown.exception_id, await nextOrdinal(client, shown.exception_id), existing.status, actor],
          );
          audits.push({
            actor,
            action: 'exception.reappear',
            subject: shown.exception_id,
            details: { checkpoint: report.checkpoint, period, legal_entity: entity },
          });
        }
        await client.query('UPDATE exceptions SET last_seen_at = now(), cleared_at = NULL, updated_at = now() WHERE id = $1', [
          shown.exception_id,
        ]);
      }
    }
    const gone = (
      await client.query<{ id: string; checkpoint: string; item: string; status: string }>(
        `SELECT id, checkpoint, item, status FROM exceptions
          WHERE checkpoint IS NOT NULL AND legal_entity = $1 AND period = $2 AND status IN ('open', 'assigned') AND cleared_at IS NULL
            AND (connector IS NULL OR connector = ANY($3)) AND NOT (id = ANY($4))
          ORDER BY id FOR UPDATE`,
        [entity, period, connectors, [...found]],
      )
    ).rows;
    for (const row of gone) {
      await client.query('UPDATE exceptions SET cleared_at = now(), updated_at = now() WHERE id = $1', [row.id]);
      await client.query(
        `INSERT INTO exception_events (exception_id, ordinal, action, from_status, to_status, actor, reason) VALUES ($1, $2, 'clear', $3, $3, $4, 'a reconciliation run no longer finds the difference')`,
        [row.id, await nextOrdinal(client, row.id), row.status, actor],
      );
      audits.push({
        actor,
        action: 'exception.clear',
        subject: row.id,
        details: { checkpoint: row.checkpoint, period, legal_entity: entity, item: row.item },
      });
    }
    // The audit head is locked by the first append until commit: appends come last (src/audit/log.ts).
    for (const audit of audits) await appendAudit(client, audit);
    return {
      opened,
      cleared: gone.map((g) => ({ id: g.id, checkpoint: g.checkpoint, legal_entity: entity, item: g.item, status: g.status })),
    };
  });
}
