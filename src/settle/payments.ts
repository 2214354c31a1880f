// Payments back from the ERP or a signed webhook: each applies once; invoices move to partially paid and paid;
// overpayments, currency mismatches and payments matching no invoice become exceptions for finance operations.
import { paymentOutboxKey } from '../domain/keys.js';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { contentHash } from '../domain/canonical.js';
import { paymentJournal } from '../domain/journal.js';
import { isCurrency, parseMajor } from '../domain/money.js';
import { fail, ok, problem, ProblemError, type Result } from '../domain/result.js';
import { bookingRate, openReceivable, recordJournals } from '../post/journals.js';
import { paymentJournalInFunctional } from '../domain/fx-journals.js';
import { transaction } from '../store/store.js';
import { appendAudit } from '../audit/log.js';
import { openPaymentException } from './exceptions.js';

export interface PaymentInput {
  id: string;
  invoice: string; // number or id
  amount: string; // major units, decimal string
  currency: string;
  received_on: string; // YYYY-MM-DD
}

export type PaymentOutcome =
  | { status: 'applied'; payment_id: string; invoice: string; payment_status: 'partially_paid' | 'paid'; amount_paid: bigint }
  | { status: 'duplicate'; payment_id: string }
  | { status: 'exception'; payment_id: string; exception: string; kind: string };

/** Limits: characters of a payment id or invoice reference (stored as text keys), the years of received_on, the largest amount (Postgres bigint). */
export const PAYMENT_LIMITS = Object.freeze({
  referenceLengthMax: 256,
  yearMin: 1970,
  yearMax: 9998,
  amountMinorMax: 9_223_372_036_854_775_807n,
});

// No control characters and no lone UTF-16 surrogates: Postgres text cannot hold NUL, and a lone surrogate would be stored rewritten.
const REFERENCE = /^[^\u0000-\u001f\u007f\ud800-\udfff]+$/u;

/** YYYY-MM-DD naming a day that exists (no 2026-02-30), within PAYMENT_LIMITS' years. */
function isCalendarDate(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (year < PAYMENT_LIMITS.yearMin || year > PAYMENT_LIMITS.yearMax) return false;
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** The payment's own rules, for the webhook and the ERP poll alike: nothing that passes can fail to be stored. */
export function validatePayment(body: unknown): Result<PaymentInput & { amount_minor: bigint }> {
  const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
  const problems = [];
  for (const field of ['id', 'invoice', 'amount', 'currency', 'received_on'] as const) {
    if (typeof b[field] !== 'string' || b[field] === '') problems.push(problem(field, 'required', 'is required as a string'));
  }
  if (problems.length > 0) return fail(...problems);
  for (const field of ['id', 'invoice'] as const) {
    const text = b[field] as string;
    if (text.length > PAYMENT_LIMITS.referenceLengthMax)
      problems.push(problem(field, 'too_long', `must be at most ${PAYMENT_LIMITS.referenceLengthMax} characters`));
    else if (!REFERENCE.test(text))
      problems.push(problem(field, 'invalid_characters', 'must not contain control characters or lone surrogates'));
  }
  if (problems.length > 0) return fail(...problems);
  if (!isCurrency(b.currency)) return fail(problem('currency', 'unknown_currency', 'must be an ISO 4217 code'));
  if (!isCalendarDate(b.received_on as string)) {
    return fail(
      problem('received_on', 'not_date', `must be a calendar date YYYY-MM-DD from ${PAYMENT_LIMITS.yearMin} to ${PAYMENT_LIMITS.yearMax}`),
    );
  }
  const amount = parseMajor(b.amount, b.currency as string, 'amount');
  if (!amount.ok) return amount;
  if (amount.value <= 0n) return fail(problem('amount', 'not_positive', 'must be greater than 0'));
  if (amount.value > PAYMENT_LIMITS.amountMinorMax)
    return fail(problem('amount', 'too_large', `must be at most ${PAYMENT_LIMITS.amountMinorMax} minor units`));
  return ok({
    id: b.id as string,
    invoice: b.invoice as string,
    amount: b.amount as string,
    currency: b.currency as string,
    received_on: b.received_on as string,
    amount_minor: amount.value,
  });
}

/** The outbox key of a payment pushed to an ERP connection: `out:v1:<connection>:pay:<payment id>`. */
export { paymentOutboxKey } from '../domain/keys.js';

export { exceptionId } from '../domain/keys.js';

/**
 * Applies a payment once. `delivery`: a signed webhook delivery's signature, recorded as received in this same
 * transaction, so a payment refused or failed here leaves the delivery unspent; already received, it throws 409.
 */
export async function applyPayment(
  pool: pg.Pool,
  catalog: CatalogVersion,
  input: PaymentInput & { amount_minor: bigint },
  source: 'webhook' | 'erp',
  options: { delivery?: string } = {},
): Promise<PaymentOutcome> {
  const hash = contentHash({
    invoice: input.invoice,
    amount_minor: input.amount_minor,
    currency: input.currency,
    received_on: input.received_on,
  });
  return transaction(pool, async (client) => {
    const application: PaymentApplication = { client, input, source, hash };
    if (options.delivery !== undefined) await spendDelivery(client, options.delivery);
    const seen = await alreadyReceived(application);
    if (seen) return seen;
    const matches = await lockInvoices(client, input.invoice);
    // A number two legal entities share names neither: the payment waits for a person rather than pay one at random.
    if (matches.length > 1)
      return paymentException(application, 'payment_unmatched', {
        reason: `${input.invoice} names invoices of ${matches.length} legal entities (${matches.map((m) => m.legal_entity).join(', ')}); apply it by invoice id`,
      });
    const invoice = matches[0];
    if (!invoice || invoice.kind !== 'invoice' || invoice.status !== 'finalized')
      return paymentException(application, 'payment_unmatched', {
        reason: invoice ? `invoice is ${invoice.status} ${invoice.kind}` : 'no such invoice',
      });
    if (invoice.currency !== input.currency)
      return paymentException(application, 'payment_currency_mismatch', { invoice: invoice.number, invoice_currency: invoice.currency });
    const paid = BigInt(invoice.amount_paid_minor) + input.amount_minor;
    const total = BigInt(invoice.total_minor);
    if (paid > total)
      return paymentException(application, 'payment_overpayment', {
        invoice: invoice.number,
        total_minor: total.toString(),
        would_be_paid_minor: paid.toString(),
      });
    return applyToInvoice(application, catalog, invoice, paid, total);
  });
}

/** What the steps of one payment's transaction share. */
interface PaymentApplication {
  client: pg.PoolClient;
  input: PaymentInput & { amount_minor: bigint };
  source: 'webhook' | 'erp';
  hash: string;
}

/** The invoice a payment names, as locked for the payment's transaction. */
interface LockedInvoice {
  id: string;
  number: string;
  customer: string;
  legal_entity: string;
  currency: string;
  total_minor: string;
  amount_paid_minor: string;
  status: string;
  kind: string;
}

/** Records a signed delivery as received; already received, it throws 409. */
async function spendDelivery(client: pg.PoolClient, signature: string): Promise<void> {
  const delivery = await client.query('INSERT INTO webhook_deliveries (signature) VALUES ($1) ON CONFLICT DO NOTHING', [signature]);
  if (delivery.rowCount === 0)
    throw new ProblemError([problem('Accrue-Signature', 'replayed_delivery', 'this signed delivery was already received')], 409);
}

/** A payment already received: a duplicate with the same content, a 409 with other content; undefined when new. */
async function alreadyReceived({ client, input, hash }: PaymentApplication): Promise<PaymentOutcome | undefined> {
  const seen = (await client.query<{ content_hash: string }>('SELECT content_hash FROM payments WHERE id = $1 FOR UPDATE', [input.id]))
    .rows[0];
  if (!seen) return undefined;
  if (seen.content_hash === hash) return { status: 'duplicate', payment_id: input.id };
  throw new ProblemError(
    [{ path: 'id', code: 'exists_with_different_content', message: `payment ${input.id} was already received with other content` }],
    409,
  );
}

/** The invoices a payment's reference names, locked: the one with that id, else every one with that number. */
async function lockInvoices(client: pg.PoolClient, reference: string): Promise<LockedInvoice[]> {
  const rows = (
    await client.query<LockedInvoice>(
      'SELECT id, number, customer, legal_entity, currency, total_minor, amount_paid_minor, status, kind FROM invoices WHERE (number = $1 OR id = $1) ORDER BY legal_entity, id FOR UPDATE',
      [reference],
    )
  ).rows;
  const byId = rows.find((r) => r.id === reference);
  return byId ? [byId] : rows;
}

/** The payment is stored as an exception and an exception opened for finance operations. */
async function paymentException(
  { client, input, source, hash }: PaymentApplication,
  kind: string,
  details: Record<string, unknown>,
): Promise<PaymentOutcome> {
  await client.query(
    `INSERT INTO payments (id, source, invoice_ref, currency, amount_minor, received_on, status, content_hash) VALUES ($1, $2, $3, $4, $5, $6, 'exception', $7)`,
    [input.id, source, input.invoice, input.currency, input.amount_minor.toString(), input.received_on, hash],
  );
  const { id } = await openPaymentException(client, kind, input.id, {
    ...details,
    payment: { ...input, amount_minor: input.amount_minor.toString() },
  });
  return { status: 'exception', payment_id: input.id, exception: id, kind };
}

/** The payment applies: the invoice's paid amount, the payment, its journal, its push to the ERP, the audit record. */
async function applyToInvoice(
  application: PaymentApplication,
  catalog: CatalogVersion,
  invoice: LockedInvoice,
  paid: bigint,
  total: bigint,
): Promise<PaymentOutcome> {
  const { client, input, source, hash } = application;
  const paymentStatus = paid === total ? 'paid' : 'partially_paid';
  await client.query('UPDATE invoices SET amount_paid_minor = $2, payment_status = $3 WHERE id = $1', [
    invoice.id,
    paid.toString(),
    paymentStatus,
  ]);
  await client.query(
    `INSERT INTO payments (id, source, invoice_ref, invoice_id, currency, amount_minor, received_on, status, content_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, 'applied', $8)`,
    [input.id, source, input.invoice, invoice.id, input.currency, input.amount_minor.toString(), input.received_on, hash],
  );
  await recordPaymentJournal(client, catalog, input, invoice);
  // A payment received here (the webhook) is pushed to the ERP the invoice's legal entity posts to, and applied to
  // the invoice there, so the ERP's receivable clears; a payment read from the ERP is never pushed back.
  if (source === 'webhook') await queuePaymentPush(client, invoice.legal_entity, input.id);
  await appendAudit(client, {
    actor: `system:payments-${source}`,
    action: 'payment.apply',
    subject: input.id,
    details: {
      invoice: invoice.number,
      invoice_id: invoice.id,
      currency: input.currency,
      amount_minor: input.amount_minor,
      amount_paid_minor: paid,
      payment_status: paymentStatus,
      received_on: input.received_on,
    },
  });
  return { status: 'applied', payment_id: input.id, invoice: invoice.number, payment_status: paymentStatus, amount_paid: paid };
}

async function recordPaymentJournal(
  client: pg.PoolClient,
  catalog: CatalogVersion,
  input: PaymentInput & { amount_minor: bigint },
  invoice: LockedInvoice,
): Promise<void> {
  const customer = catalog.index.customers.get(invoice.customer);
  const accounts = catalog.catalog.accounts[invoice.legal_entity];
  const entity = catalog.index.legalEntities.get(invoice.legal_entity);
  if (!customer || !accounts || !entity) throw new Error(`no customer, accounts or legal entity for invoice ${invoice.number}`);
  if (input.currency !== entity.currency) {
    // An invoice booked from another currency: the payment at the rate of its date, against what the receivable
    // carries at the rate it was booked at; the difference is a realized exchange gain or loss.
    const open = await openReceivable(client, invoice.id, accounts.receivable);
    if (input.amount_minor > open.open_tx_minor)
      throw new ProblemError(
        [
          {
            path: 'amount',
            code: 'exceeds_open_receivable',
            message: `the receivable of invoice ${invoice.number} has ${open.open_tx_minor} minor units of ${input.currency} open in the ledger (credit notes included)`,
          },
        ],
        409,
      );
    const fx = await bookingRate(
      client,
      { id: input.id, currency: input.currency, legal_entity: invoice.legal_entity },
      catalog,
      input.received_on,
    );
    const journal = paymentJournalInFunctional(
      {
        id: input.id,
        invoice_id: invoice.id,
        customer: invoice.customer,
        legal_entity: invoice.legal_entity,
        currency: input.currency,
        amount_minor: input.amount_minor,
        received_on: input.received_on,
      },
      { ...open, customer: open.customer ?? customer.erp_customer_id, currency: input.currency },
      fx!,
      accounts,
      entity.currency,
      entity.rounding,
    );
    await recordJournals(client, [journal], invoice.number);
    return;
  }
  const journal = paymentJournal(
    {
      id: input.id,
      invoice_id: invoice.id,
      customer: invoice.customer,
      erp_customer_id: customer.erp_customer_id,
      legal_entity: invoice.legal_entity,
      currency: input.currency,
      amount_minor: input.amount_minor,
      received_on: input.received_on,
    },
    accounts,
  );
  await recordJournals(client, [journal], invoice.number);
}

/** Queues the payment for the ERP connection the legal entity posts to, if it has one. */
async function queuePaymentPush(client: pg.PoolClient, legalEntity: string, paymentId: string): Promise<void> {
  const connection = (
    await client.query<{ connection: string }>('SELECT connection FROM erp_entity_connections WHERE legal_entity = $1', [legalEntity])
  ).rows[0]?.connection;
  if (connection) {
    await client.query(
      `INSERT INTO outbox (key, target, document_kind, document_id) VALUES ($1, $2, 'payment', $3) ON CONFLICT (key) DO NOTHING`,
      [paymentOutboxKey(connection, paymentId), connection, paymentId],
    );
  }
}

// ---------- signed webhooks ----------

/** Limit: how old a signed delivery may be (seconds) before it is refused as stale. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/** `Accrue-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, the scheme Stripe uses. */
export function signWebhook(secret: string, rawBody: string, timestampSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${rawBody}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

export function verifyWebhook(
  secret: string,
  rawBody: string,
  header: string | undefined,
  nowSeconds: number,
): Result<{ signature: string }> {
  if (!header) return fail(problem('Accrue-Signature', 'missing_signature', 'the Accrue-Signature header is required'));
  const parts = Object.fromEntries(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = Number.parseInt(parts.t ?? '', 10);
  if (!Number.isSafeInteger(t) || !parts.v1)
    return fail(problem('Accrue-Signature', 'malformed_signature', 'must be t=<unix seconds>,v1=<hex>'));
  if (Math.abs(nowSeconds - t) > WEBHOOK_TOLERANCE_SECONDS)
    return fail(problem('Accrue-Signature', 'stale_signature', `the timestamp is more than ${WEBHOOK_TOLERANCE_SECONDS} s from now`));
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${rawBody}`).digest('hex'));
  const given = Buffer.from(parts.v1);
  if (expected.length !== given.length || !timingSafeEqual(expected, given))
    return fail(problem('Accrue-Signature', 'bad_signature', 'the signature does not match the body'));
  return ok({ signature: parts.v1 });
}
