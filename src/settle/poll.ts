// Payments polled back from an ERP: read what the ERP recorded since the stored cursor, match each payment to the
// Accrue invoice it pays, and apply it once with applyPayment (source 'erp'). In numbered steps:
//   1. Take the target's cursor under a lease (one poll per target at a time). Crash after: the lease expires.
//   2. Read a page of payments modified at or after the cursor, oldest first.
//   3. Apply each; the payment id `<target>:<ERP payment id>` makes a repeat a 'duplicate'. Crash after: the page
//      is read again next time and applies nothing twice.
//   4. Move the cursor to the newest modification time of the page. Crash before: step 3 repeats harmlessly.
// A payment that cannot be applied safely (no matching invoice, overpayment, other currency, changed at the ERP,
// deleted at the ERP after it was applied) becomes an exception for finance operations, as on the webhook path.
import type pg from 'pg';
import { currentCatalog } from '../catalog/service.js';
import { Decimal, decimalText } from '../domain/money.js';
import { formatProblems, ProblemError } from '../domain/result.js';
import { applyPayment, validatePayment, type PaymentOutcome } from './payments.js';
import { openPaymentException } from './exceptions.js';

/** One payment as an ERP reports it, in the shapes Accrue needs; the connectors map their APIs to this. */
export interface ErpPayment {
  id: string; // the ERP's id of the payment (of its application to one invoice, when a payment pays several)
  invoice_reference: string | null; // the ERP's id of the invoice paid: the reference Accrue recorded when posting it
  invoice_key: string | null; // our idempotency key as the ERP stores it on the invoice (NetSuite externalId), if it says
  invoice_number: string | null; // the invoice number as the ERP shows it (Accrue's number: it is posted with it)
  amount: string; // major units, decimal string
  currency: string;
  received_on: string; // YYYY-MM-DD
  modified_at: string; // the ERP's last modification time, sortable text: the cursor
  deleted: boolean; // removed or voided at the ERP
}

/** The port a connector implements to be polled. */
export interface PaymentSource {
  readonly name: string;
  /** Pages of payments modified at or after `since` (null: from the beginning), oldest first. */
  paymentPages(since: string | null): AsyncIterable<ErpPayment[]>;
}

export const POLL_LIMITS = {
  /** Pages read in one poll; the cursor moves page by page, so the next poll carries on where this one stopped. */
  pagesMax: 200,
  leaseMs: 10 * 60_000,
};

export interface PollOutcome {
  target: string;
  status: 'polled' | 'busy';
  pages: number;
  seen: number;
  applied: number;
  duplicates: number;
  exceptions: number;
  skipped: number;
  cursor_before: string | null;
  cursor_after: string | null;
  last_polled_at: string | null;
}

type SyncOutcome = 'applied' | 'duplicate' | 'exception' | 'skipped';

/** The Accrue invoice an ERP payment pays: by the ERP's id of what we posted, by our key as stored there, else by number. */
async function matchInvoice(pool: pg.Pool, target: string, payment: ErpPayment): Promise<string> {
  if (payment.invoice_reference !== null || payment.invoice_key !== null) {
    const found = (
      await pool.query<{ invoice_id: string }>(
        `SELECT j.source_document AS invoice_id FROM outbox o JOIN journals j ON j.id = o.document_id
          WHERE o.target = $1 AND o.document_kind = 'invoice'
            AND (o.target_reference = $2 OR o.key = $3 OR regexp_replace(o.key, '[^A-Za-z0-9_-]', '-', 'g') = $3)
          ORDER BY o.id LIMIT 1`,
        [target, payment.invoice_reference, payment.invoice_key],
      )
    ).rows[0];
    if (found) return found.invoice_id;
  }
  // applyPayment takes a number or an id; what matches nothing becomes a payment_unmatched exception there.
  return payment.invoice_number ?? payment.invoice_reference ?? payment.invoice_key ?? '(none)';
}

/** "100.5000" (Xero with unitdp=4) -> "100.5": trailing zeros dropped exactly, anything else left for validation. */
const plainAmount = (text: string) => (/^\d+\.\d*0$/.test(text) ? decimalText(new Decimal(text)) : text);

/** Raises an exception once: 'exception' the first time, 'duplicate' when a repeat poll meets it again. */
async function raiseException(pool: pg.Pool, kind: string, subject: string, details: Record<string, unknown>): Promise<SyncOutcome> {
  return (await openPaymentException(pool, kind, subject, details)).opened ? 'exception' : 'duplicate';
}

async function applyOne(
  pool: pg.Pool,
  source: PaymentSource,
  payment: ErpPayment,
  catalog: NonNullable<Awaited<ReturnType<typeof currentCatalog>>>,
): Promise<SyncOutcome> {
  const paymentId = `${source.name}:${payment.id}`;
  if (payment.deleted) {
    // Accrue never un-applies a payment on its own: a deletion after the fact is for a person to look at.
    const applied = (await pool.query<{ status: string }>('SELECT status FROM payments WHERE id = $1', [paymentId])).rows[0];
    if (applied?.status !== 'applied') return 'skipped';
    return raiseException(pool, 'payment_deleted_at_source', paymentId, { target: source.name, erp_payment: payment });
  }
  const invoice = await matchInvoice(pool, source.name, payment);
  const input = validatePayment({
    id: paymentId,
    invoice,
    amount: plainAmount(payment.amount),
    currency: payment.currency,
    received_on: payment.received_on,
  });
  if (!input.ok) {
    return raiseException(pool, 'payment_unreadable', paymentId, { target: source.name, erp_payment: payment, problems: input.problems });
  }
  let outcome: PaymentOutcome;
  try {
    outcome = await applyPayment(pool, catalog, input.value, 'erp');
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    // Changed at the ERP after it was applied, or dated in a closed period: refused, and a person decides.
    return raiseException(pool, 'payment_refused', paymentId, {
      target: source.name,
      erp_payment: payment,
      problems: error.problems,
      message: formatProblems(error.problems),
    });
  }
  return outcome.status;
}

/** Step 1: the cursor under a lease, or null while another poll of the same target holds it. */
async function takeCursor(pool: pg.Pool, target: string): Promise<{ cursor: string | null } | null> {
  await pool.query('INSERT INTO payment_sync_cursors (target) VALUES ($1) ON CONFLICT (target) DO NOTHING', [target]);
  const row = (
    await pool.query<{ cursor: string | null }>(
      `UPDATE payment_sync_cursors SET lease_until = now() + ($2 || ' milliseconds')::interval
        WHERE target = $1 AND (lease_until IS NULL OR lease_until < now()) RETURNING cursor`,
      [target, String(POLL_LIMITS.leaseMs)],
    )
  ).rows[0];
  return row ?? null;
}

/** Polls one ERP for payments since the stored cursor and applies them; safe to run again at any time. */
export async function pollPayments(pool: pg.Pool, source: PaymentSource): Promise<PollOutcome> {
  const catalog = await currentCatalog(pool);
  if (!catalog) throw new ProblemError([{ path: '', code: 'no_catalog', message: 'no catalog has been applied' }]);
  const outcome: PollOutcome = {
    target: source.name,
    status: 'polled',
    pages: 0,
    seen: 0,
    applied: 0,
    duplicates: 0,
    exceptions: 0,
    skipped: 0,
    cursor_before: null,
    cursor_after: null,
    last_polled_at: null,
  };
  const taken = await takeCursor(pool, source.name);
  if (!taken) return { ...outcome, status: 'busy' };
  outcome.cursor_before = taken.cursor;
  let cursor = taken.cursor;
  try {
    for await (const page of source.paymentPages(cursor)) {
      outcome.pages += 1;
      for (const payment of page) {
        outcome.seen += 1;
        const result = await applyOne(pool, source, payment, catalog);
        if (result === 'applied') outcome.applied += 1;
        else if (result === 'duplicate') outcome.duplicates += 1;
        else if (result === 'exception') outcome.exceptions += 1;
        else outcome.skipped += 1;
        await pool.query(
          `INSERT INTO erp_payment_sync (target, erp_payment_id, payment_id, erp_modified_at, outcome) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (target, erp_payment_id) DO NOTHING`,
          [source.name, payment.id, `${source.name}:${payment.id}`, payment.modified_at, result],
        );
        if (cursor === null || payment.modified_at > cursor) cursor = payment.modified_at;
      }
      // Step 4, page by page: a poll stopped halfway keeps what it did.
      await pool.query('UPDATE payment_sync_cursors SET cursor = $2, newest_erp_modified_at = $2 WHERE target = $1', [source.name, cursor]);
      if (outcome.pages >= POLL_LIMITS.pagesMax) break;
    }
    outcome.cursor_after = cursor;
    const finished = (
      await pool.query<{ last_polled_at: Date }>(
        'UPDATE payment_sync_cursors SET last_polled_at = now(), last_outcome = $2, lease_until = NULL WHERE target = $1 RETURNING last_polled_at',
        [source.name, JSON.stringify({ ...outcome, last_polled_at: undefined })],
      )
    ).rows[0]!;
    outcome.last_polled_at = finished.last_polled_at.toISOString();
    return outcome;
  } catch (error) {
    // Free the target for the next poll; the cursor already reflects every page that was applied.
    await pool.query('UPDATE payment_sync_cursors SET lease_until = NULL WHERE target = $1', [source.name]).catch(() => undefined);
    throw error;
  }
}

/** The sync state of every polled target: cursor, newest ERP modification time seen, last poll. */
export async function paymentSyncState(pool: pg.Pool) {
  return (
    await pool.query<{
      target: string;
      cursor: string | null;
      newest_erp_modified_at: string | null;
      last_polled_at: Date | null;
      last_outcome: unknown;
    }>('SELECT target, cursor, newest_erp_modified_at, last_polled_at, last_outcome FROM payment_sync_cursors ORDER BY target')
  ).rows.map((r) => ({ ...r, last_polled_at: r.last_polled_at?.toISOString() ?? null }));
}
