// Records a run's differences as exceptions: a new difference is opened (through the one exception writer), a known
// one is seen again (reappearing if it had been cleared), and an open one no longer found is cleared. Every move
// goes to exception_events and, last, to the audit log.
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import { invariant } from '../domain/result.js';
import { appendExceptionEvent, openException } from '../store/exceptions.js';
import { transaction } from '../store/store.js';
import type { CheckpointReport, CheckpointResult, ClearedException, DifferenceReport } from './report.js';

type Audit = Parameters<typeof appendAudit>[1];

/** One entity and period being recorded, with what the run opened, found and will audit. */
interface Recording {
  client: pg.PoolClient;
  entity: string;
  period: string;
  actor: string;
  opened: string[];
  found: Set<string>;
  audits: Audit[];
}

/** Opens the exception of a new difference; false when it already exists. */
async function open(r: Recording, report: CheckpointReport, shown: DifferenceReport): Promise<boolean> {
  const written = await openException(
    r.client,
    {
      id: shown.exception_id,
      kind: shown.kind,
      owner_queue: report.owner_queue,
      subject: shown.key.item,
      details: { occurrences: shown.occurrences, description: report.description },
      checkpoint: report.checkpoint,
      period: r.period,
      legal_entity: r.entity,
      customer: shown.key.customer === '' ? null : shown.key.customer,
      currency: shown.key.currency === '' ? null : shown.key.currency,
      connector: report.connector,
      item: shown.key.item,
      left_amount: shown.left,
      right_amount: shown.right,
      difference: shown.difference,
      documents: shown.documents,
      seen: true,
    },
    { actor: r.actor, details: { checkpoint: report.checkpoint, kind: shown.kind, left: shown.left, right: shown.right } },
  );
  if (!written) return false;
  r.audits.push({
    actor: r.actor,
    action: 'exception.open',
    subject: shown.exception_id,
    details: {
      checkpoint: report.checkpoint,
      connector: report.connector,
      legal_entity: r.entity,
      period: r.period,
      item: shown.key.item,
      kind: shown.kind,
      left: shown.left,
      right: shown.right,
    },
  });
  r.opened.push(shown.exception_id);
  shown.opened = true;
  shown.status = 'open';
  return true;
}

/** A difference already recorded: seen again, and reappearing if a run had cleared it while it stayed open. */
async function seeAgain(r: Recording, report: CheckpointReport, shown: DifferenceReport): Promise<void> {
  const existing = (
    await r.client.query<{ status: string; cleared: boolean }>(
      'SELECT status, cleared_at IS NOT NULL AS cleared FROM exceptions WHERE id = $1 FOR UPDATE',
      [shown.exception_id],
    )
  ).rows[0]!;
  shown.status = existing.status;
  if (existing.cleared && (existing.status === 'open' || existing.status === 'assigned')) {
    await appendExceptionEvent(r.client, {
      exception_id: shown.exception_id,
      action: 'reappear',
      from_status: existing.status,
      to_status: existing.status,
      actor: r.actor,
      reason: 'the difference is found again',
    });
    r.audits.push({
      actor: r.actor,
      action: 'exception.reappear',
      subject: shown.exception_id,
      details: { checkpoint: report.checkpoint, period: r.period, legal_entity: r.entity },
    });
  }
  await r.client.query('UPDATE exceptions SET last_seen_at = now(), cleared_at = NULL, updated_at = now() WHERE id = $1', [
    shown.exception_id,
  ]);
}

/** Marks cleared every open exception of the entity, period and connectors that this run no longer found. */
async function clearGone(r: Recording, connectors: readonly string[]): Promise<ClearedException[]> {
  const gone = (
    await r.client.query<{ id: string; checkpoint: string; item: string; status: string }>(
      `SELECT id, checkpoint, item, status FROM exceptions
        WHERE checkpoint IS NOT NULL AND legal_entity = $1 AND period = $2 AND status IN ('open', 'assigned') AND cleared_at IS NULL
          AND (connector IS NULL OR connector = ANY($3)) AND NOT (id = ANY($4))
        ORDER BY id FOR UPDATE`,
      [r.entity, r.period, connectors, [...r.found]],
    )
  ).rows;
  for (const row of gone) {
    await r.client.query('UPDATE exceptions SET cleared_at = now(), updated_at = now() WHERE id = $1', [row.id]);
    await appendExceptionEvent(r.client, {
      exception_id: row.id,
      action: 'clear',
      from_status: row.status,
      to_status: row.status,
      actor: r.actor,
      reason: 'a reconciliation run no longer finds the difference',
    });
    r.audits.push({
      actor: r.actor,
      action: 'exception.clear',
      subject: row.id,
      details: { checkpoint: row.checkpoint, period: r.period, legal_entity: r.entity, item: row.item },
    });
  }
  return gone.map((g) => ({ id: g.id, checkpoint: g.checkpoint, legal_entity: r.entity, item: g.item, status: g.status }));
}

/** Records one entity's results for a period in one transaction; `connectors` are those this run compared. */
export async function recordDifferences(
  pool: pg.Pool,
  entity: string,
  period: string,
  connectors: string[],
  results: readonly CheckpointResult[],
  actor: string,
): Promise<{ opened: string[]; cleared: ClearedException[] }> {
  return transaction(pool, async (client) => {
    // One recorder per entity and period at a time: two runs would otherwise race on the same ids.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`reconcile:${entity}:${period}`]);
    const r: Recording = { client, entity, period, actor, opened: [], found: new Set<string>(), audits: [] };
    for (const { report, differences } of results) {
      report.differences.forEach((shown, index) => {
        invariant(differences[index]!.exception_id === shown.exception_id, 'the report lists the differences in order');
      });
      for (const shown of report.differences) {
        r.found.add(shown.exception_id);
        if (!(await open(r, report, shown))) await seeAgain(r, report, shown);
      }
    }
    const cleared = await clearGone(r, connectors);
    // The audit head is locked by the first append until commit: appends come last (src/audit/log.ts).
    for (const audit of r.audits) await appendAudit(client, audit);
    return { opened: r.opened, cleared };
  });
}
