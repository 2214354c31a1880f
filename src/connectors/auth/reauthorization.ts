// A refused refresh or a revoked grant (issue #15): the connection goes to needs_reauthorization and an exception goes
// to the integration-support queue; nothing is dead-lettered. `accrue connect` clears both.
import { transaction } from '../../store/store.js';
import type pg from 'pg';
import { appendAudit } from '../../audit/log.js';
import { appendExceptionEvent, openException } from '../../store/exceptions.js';
import { exceptionId } from '../../settle/payments.js';
import { setConnectionStatus } from '../connections.js';

export const REAUTHORIZATION_EXCEPTION = 'erp_needs_reauthorization';
export const reauthorizationExceptionId = (connection: string): string => exceptionId(REAUTHORIZATION_EXCEPTION, connection);

/** `reason` must never hold a secret (it is audited and shown): say what the ERP refused, e.g. `refresh refused: invalid_grant`. */
export async function markNeedsReauthorization(pool: pg.Pool, connection: string, reason: string): Promise<void> {
  await transaction(pool, async (client) => {
    const id = reauthorizationExceptionId(connection);
    const existing = (
      await client.query<{ status: string; cleared_at: Date | null }>(
        'SELECT status, cleared_at FROM exceptions WHERE id = $1 FOR UPDATE',
        [id],
      )
    ).rows[0];
    const details = JSON.stringify({ connection, reason, action: `run: accrue connect <kind> --connection ${connection}` });
    if (!existing) {
      // opened with its 'open' event (actor system:settle, as the trigger of migration 008 wrote it)
      await openException(client, {
        id,
        kind: REAUTHORIZATION_EXCEPTION,
        owner_queue: 'integration_support',
        subject: connection,
        details: JSON.parse(details) as unknown,
        connector: connection,
        seen: true,
      });
    } else if (existing.cleared_at && (existing.status === 'open' || existing.status === 'assigned')) {
      // cleared by an earlier `accrue connect`: it reappears (resolved and waived are final in the database: left as they are)
      await client.query(`UPDATE exceptions SET cleared_at = NULL, last_seen_at = now(), details = $2, updated_at = now() WHERE id = $1`, [
        id,
        details,
      ]);
      await appendExceptionEvent(client, {
        exception_id: id,
        action: 'reappear',
        from_status: existing.status,
        to_status: existing.status,
        actor: 'system:auth',
        reason,
      });
    } else {
      await client.query('UPDATE exceptions SET last_seen_at = now(), details = $2, updated_at = now() WHERE id = $1', [id, details]);
    }
    await setConnectionStatus(client, connection, 'needs_reauthorization', reason, 'system:auth');
  });
}

/** After `accrue connect` saved new credentials (same transaction): status active, the exception cleared. */
export async function markReauthorized(client: pg.PoolClient, connection: string, actor = 'system:auth'): Promise<void> {
  await setConnectionStatus(client, connection, 'active', null, actor);
  const id = reauthorizationExceptionId(connection);
  const cleared = await client.query<{ status: string }>(
    `UPDATE exceptions SET cleared_at = now(), updated_at = now() WHERE id = $1 AND cleared_at IS NULL AND status IN ('open', 'assigned') RETURNING status`,
    [id],
  );
  const row = cleared.rows[0];
  if (row) {
    await appendExceptionEvent(client, {
      exception_id: id,
      action: 'clear',
      from_status: row.status,
      to_status: row.status,
      actor,
      reason: 'connection authorized again',
    });
    await appendAudit(client, { actor, action: 'exception.clear', subject: id, details: { connection } });
  }
}
