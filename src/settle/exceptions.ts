// Settlement's exceptions (a payment that cannot be applied, one deleted at its source): opened once, through the
// one exception writer, in the finance-operations queue.
import type pg from 'pg';
import { exceptionId } from '../domain/keys.js';
import { openException } from '../store/exceptions.js';

/** Opens the exception of `kind` for `subject` (a payment id); true when this call opened it, false when it existed. */
export async function openPaymentException(
  db: pg.Pool | pg.PoolClient,
  kind: string,
  subject: string,
  details: Record<string, unknown>,
): Promise<{ id: string; opened: boolean }> {
  const id = exceptionId(kind, subject);
  const opened = await openException(db, { id, kind, owner_queue: 'finance_operations', subject, details });
  return { id, opened };
}
