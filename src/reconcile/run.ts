// Reconciliation of one period: wires the readers of each checkpoint's sides (src/reconcile/readers/), compares them
// with the pure core (checkpoints.ts) and hands the differences to the recorder, which opens each as an exception with
// the core's deterministic id, so a re-run opens nothing twice. docs/reconciliation.md describes what each side holds.
import type pg from 'pg';
import { currentCatalog, type CatalogVersion } from '../catalog/service.js';
import { invariant, ProblemError } from '../domain/result.js';
import { parsePeriod, type PeriodWindow } from '../meter/period.js';
import type { ErpTarget } from '../post/target.js';
import { Catalogs } from './catalogs.js';
import { CHECKPOINTS } from './checkpoints.js';
import { appliedPayments } from './readers/applied-payments.js';
import { erpPostingSides } from './readers/erp.js';
import { invoiceLineSides } from './readers/invoices.js';
import { expectedJournals, storedJournals } from './readers/journals.js';
import { ledgerPostingSides, trialBalanceSides } from './readers/ledger.js';
import { paymentSides } from './readers/payments.js';
import { ratedSides } from './readers/rated.js';
import { eventSides, ratingRuns } from './readers/usage.js';
import { recordDifferences } from './recorder.js';
import {
  checkpointReport as report,
  type CheckpointReport,
  type CheckpointResult,
  type ClearedException,
  type ReconcileReport,
} from './report.js';
import type { Db } from './sides.js';

export { DIFFERENCES_PER_CHECKPOINT_MAX } from './report.js';
export type { CheckpointReport, ClearedException, DifferenceReport, ReconcileReport } from './report.js';
export type { DocumentRef } from './sides.js';

/** The built-in ledger is a connector of `invoices_vs_erp_postings` like any ERP: its journals are what it holds. */
export const LEDGER_CONNECTOR = 'ledger';
export const RECONCILE_ACTOR = 'system:reconcile';

export interface ReconcileOptions {
  period: string;
  legalEntity?: string;
  /** Only these legal entities (a key's entity limit); absent: every entity of the catalog. */
  legalEntities?: readonly string[];
  /** External ERP targets to compare besides the built-in ledger; each must implement listDocuments. */
  connectors?: readonly ErpTarget[];
  /** false: compare and report only, opening and clearing nothing (the read-only API). Default true. */
  record?: boolean;
  actor?: string;
}

/** Compares every checkpoint of one legal entity and period; nothing is written. */
async function compareEntity(
  db: Db,
  entity: string,
  window: PeriodWindow,
  connectors: readonly ErpTarget[],
  catalog: CatalogVersion,
  catalogs: Catalogs,
): Promise<CheckpointResult[]> {
  const results: CheckpointResult[] = [];
  const runs = await ratingRuns(db, entity, window.period);
  results.push(report('usage_events_vs_aggregates', entity, null, await eventSides(db, entity, runs, catalogs)));
  results.push(report('aggregates_vs_rated', entity, null, await ratedSides(db, entity, window.period, runs)));
  results.push(report('rated_vs_invoice_lines', entity, null, await invoiceLineSides(db, entity, window.period)));
  const stored = await storedJournals(db, entity, window);
  const payments = await appliedPayments(db, entity, window);
  const expected = await expectedJournals(db, entity, window, stored, payments, catalogs);
  results.push(report('invoices_vs_erp_postings', entity, LEDGER_CONNECTOR, ledgerPostingSides(entity, expected, stored)));
  for (const target of connectors) {
    const erp = await erpPostingSides(db, entity, window, target, expected, catalog);
    results.push(report('invoices_vs_erp_postings', entity, target.name, erp.postings));
    results.push(report('tax_vs_erp', entity, target.name, erp.tax));
  }
  results.push(report('payments_vs_receivable', entity, null, await paymentSides(db, entity, window, stored, payments, catalog)));
  results.push(report('trial_balance', entity, null, trialBalanceSides(entity, window.period, expected, stored)));
  // The ERP checkpoints run once per connector; tax_vs_erp has no built-in ledger side (the ledger holds Accrue's tax).
  invariant(results.length === CHECKPOINTS.length - 1 + 2 * connectors.length, 'every checkpoint ran once, the ERP ones per connector');
  return results;
}

/** The legal entities to reconcile: the catalog's, or the one asked for (404 when the catalog has none of that id). */
function chooseEntities(catalog: CatalogVersion, legalEntity: string | undefined, within?: readonly string[]): string[] {
  const all = catalog.catalog.legal_entities.map((e) => e.id).filter((id) => within === undefined || within.includes(id));
  const entities = all.filter((id) => legalEntity === undefined || id === legalEntity);
  if (entities.length === 0)
    throw new ProblemError(
      [{ path: 'legal_entity', code: 'unknown', message: `no legal entity ${legalEntity}; the catalog has ${all.join(', ')}` }],
      404,
    );
  return entities;
}

/** The connector names of the run, the built-in ledger first; a connector that cannot list or is named twice is refused. */
function connectorNames(connectors: readonly ErpTarget[]): Set<string> {
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
  return names;
}

/**
 * A connector that is a configured connection holds only the books of the legal entities routed to it: another
 * entity's documents are never looked for there (two entities on two Xero organisations never mix).
 */
async function routedEntities(pool: pg.Pool): Promise<Map<string, string[]>> {
  const routed = new Map<string, string[]>();
  const rows = await pool.query<{ connection: string; legal_entity: string }>(
    'SELECT connection, legal_entity FROM erp_entity_connections',
  );
  for (const row of rows.rows) routed.set(row.connection, [...(routed.get(row.connection) ?? []), row.legal_entity]);
  return routed;
}

async function openExceptions(pool: pg.Pool, entities: readonly string[], period: string): Promise<ReconcileReport['open_exceptions']> {
  return (
    await pool.query<{ legal_entity: string; owner_queue: string; open: number; assigned: number }>(
      `SELECT legal_entity, owner_queue, count(*) FILTER (WHERE status = 'open')::int AS open, count(*) FILTER (WHERE status = 'assigned')::int AS assigned
         FROM exceptions WHERE legal_entity = ANY($1) AND period = $2 AND status IN ('open', 'assigned')
        GROUP BY legal_entity, owner_queue ORDER BY legal_entity, owner_queue`,
      [entities, period],
    )
  ).rows;
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
  const entities = chooseEntities(catalog, options.legalEntity, options.legalEntities);
  const connectors = options.connectors ?? [];
  const names = connectorNames(connectors);
  const record = options.record ?? true;
  const catalogs = new Catalogs(pool);
  const checkpoints: CheckpointReport[] = [];
  const opened: string[] = [];
  const cleared: ClearedException[] = [];
  const routed = await routedEntities(pool);
  for (const entity of entities) {
    const here = connectors.filter((target) => routed.get(target.name)?.includes(entity) ?? true);
    const results = await compareEntity(pool, entity, window.value, here, catalog, catalogs);
    if (record) {
      const compared = [LEDGER_CONNECTOR, ...here.map((t) => t.name)];
      const outcome = await recordDifferences(pool, entity, window.value.period, compared, results, options.actor ?? RECONCILE_ACTOR);
      opened.push(...outcome.opened);
      cleared.push(...outcome.cleared);
    }
    checkpoints.push(...results.map((r) => r.report));
  }
  return {
    period: window.value.period,
    legal_entities: entities,
    connectors: [...names],
    recorded: record,
    status: checkpoints.every((c) => c.status === 'green') ? 'green' : 'red',
    checkpoints,
    opened,
    cleared,
    open_exceptions: await openExceptions(pool, entities, window.value.period),
  };
}
