// Rollout scope: during a migration only some customers or legal entities post to an external ERP for real; the
// rest are rated, invoiced and recorded in the built-in ledger, and compared with the legacy system only.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { fail, ok, problem, type Problem, type Result } from '../domain/result.js';

/**
 * Which documents go to external ERP targets. `null` lists are not configured. With no list configured there is
 * no limit; otherwise a document is in scope when its legal entity or its customer is listed.
 */
export interface RolloutScope {
  customers: readonly string[] | null;
  legal_entities: readonly string[] | null;
}

export const NO_ROLLOUT_LIMIT: RolloutScope = { customers: null, legal_entities: null };

export const ROLLOUT_HOLD_REASONS = ['rollout_scope'] as const;
export type RolloutHoldReason = (typeof ROLLOUT_HOLD_REASONS)[number];

export function rolloutLimited(scope: RolloutScope | undefined): boolean {
  return scope !== undefined && (scope.customers !== null || scope.legal_entities !== null);
}

export function inRolloutScope(scope: RolloutScope | undefined, document: { customer: string; legal_entity: string }): boolean {
  if (!rolloutLimited(scope)) return true;
  return (scope!.legal_entities?.includes(document.legal_entity) ?? false) || (scope!.customers?.includes(document.customer) ?? false);
}

/** Where one source document's journals go: the ERP targets, or nowhere external with the reason recorded per target. */
export interface ErpRouting {
  targets: readonly string[];
  customer: string;
  held_back: RolloutHoldReason | null;
}

export function erpRouting(
  targets: readonly string[] | undefined,
  scope: RolloutScope | undefined,
  document: { customer: string; legal_entity: string },
): ErpRouting {
  return { targets: targets ?? [], customer: document.customer, held_back: inRolloutScope(scope, document) ? null : 'rollout_scope' };
}

/** A scope naming a customer or legal entity the catalog does not know is a typo that would hold documents back silently. */
export function checkRolloutScope(scope: RolloutScope, catalog: CatalogVersion): Result<RolloutScope> {
  const problems: Problem[] = [];
  scope.customers?.forEach((id, i) => {
    if (!catalog.index.customers.has(id))
      problems.push(
        problem(
          `rollout.customers[${i}]`,
          'unknown_customer',
          `names no customer of catalog version ${catalog.version}: ${JSON.stringify(id)}`,
        ),
      );
  });
  scope.legal_entities?.forEach((id, i) => {
    if (!catalog.index.legalEntities.has(id)) {
      const known = catalog.catalog.legal_entities.map((e) => e.id).join(', ');
      problems.push(
        problem(
          `rollout.legal_entities[${i}]`,
          'unknown_legal_entity',
          `names no legal entity of the catalog (known: ${known}): ${JSON.stringify(id)}`,
        ),
      );
    }
  });
  return problems.length > 0 ? fail(...problems) : ok(scope);
}

/**
 * Records that a journal was kept from one ERP target, under the outbox key it would have had (so the two can
 * never both exist: the schema refuses it). Reconciliation leaves held-back documents out of the ERP's side.
 */
export async function recordHeldBack(
  client: pg.PoolClient,
  key: string,
  target: string,
  journal: { id: string; source_document: string; legal_entity: string },
  customer: string,
  reason: RolloutHoldReason,
): Promise<void> {
  await client.query(
    `INSERT INTO rollout_holds (key, target, journal_id, source_document, legal_entity, customer, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (key) DO NOTHING`,
    [key, target, journal.id, journal.source_document, journal.legal_entity, customer, reason],
  );
}

export interface HeldBackDocument {
  target: string;
  journal_id: string;
  source_document: string;
  legal_entity: string;
  customer: string;
  reason: RolloutHoldReason;
}

/** Journals held back from ERP targets, for reconciliation (not expected in the ERP) and reports. */
export async function listHeldBack(db: pg.Pool | pg.PoolClient, filter: { target?: string } = {}): Promise<HeldBackDocument[]> {
  return (
    await db.query<HeldBackDocument>(
      `SELECT target, journal_id, source_document, legal_entity, customer, reason FROM rollout_holds
        WHERE ($1::text IS NULL OR target = $1) ORDER BY target, journal_id`,
      [filter.target ?? null],
    )
  ).rows;
}
