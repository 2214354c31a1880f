// Every versioned key recipe in one place. A key is an idempotency key and usually an id: the same inputs give the
// same key in every process and every run, and a unique constraint in the schema is the last guard behind it. A
// recipe never changes once shipped: a new shape is a new version (`v2`), and the old one stays readable.
import { createHash } from 'node:crypto';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The version of the journal key recipe (`jrn:v1:`); the schema's checks name it too. */
export const JOURNAL_KEY_VERSION = 'v1';

/** `ub:v1:<32 hex>`: a usage batch, from its events' (source, id, content hash) in order; the same batch twice has one id. */
export function usageBatchId(keys: ReadonlyArray<{ source: string; id: string; hash: string }>): string {
  // The lines are fed to the digest some kilobytes at a time rather than one call per event (the same digest): fewer
  // calls into the hash, and no text so large it would be allocated outside V8's young generation.
  const digest = createHash('sha256');
  let text = '';
  for (const key of keys) {
    text += `${key.source}\u0000${key.id}\u0000${key.hash}\n`;
    if (text.length >= 16_384) {
      digest.update(text);
      text = '';
    }
  }
  return `ub:v1:${digest.update(text).digest('hex').slice(0, 32)}`;
}

/** `ua:v1:<customer>:<meter>:<from>:<to>`: one usage aggregate window read for a line. */
export const usageRef = (customer: string, meter: string, from: string, to: string): string => `ua:v1:${customer}:${meter}:${from}:${to}`;

/** The prefix every usage window of one customer and meter starts with. */
export const usageRefPrefix = (customer: string, meter: string): string => `ua:v1:${customer}:${meter}:`;

/** `rr:v1:<32 hex>`: a rating run, from the customer, period, catalog version and the usage it read. */
export const ratingRunId = (customer: string, period: string, catalogHash: string, usageFingerprint: string): string =>
  `rr:v1:${sha256(`${customer}\n${period}\n${catalogHash}\n${usageFingerprint}`).slice(0, 32)}`;

/** `inv:v1:<entity>:<customer>:<currency>:<period>`: the invoice of one customer, currency and period at one entity. */
export const invoiceKey = (entity: string, customer: string, currency: string, period: string): string =>
  `inv:v1:${entity}:${customer}:${currency}:${period}`;

/** `inv_<24 hex>`: the id of the invoice or credit note with that key. */
export const invoiceIdOf = (key: string): string => `inv_${sha256(key).slice(0, 24)}`;

/** `cn:v1:<invoice id>:late:<watermark>`: the credit note that reverses an invoice for late usage up to a watermark. */
export const lateCreditNoteKey = (invoiceId: string, watermark: string): string => `cn:v1:${invoiceId}:late:${watermark}`;

/** `<invoice key>:late:<watermark>`: the replacement invoice a late-usage correction issues for an invoice key. */
export const lateReplacementKey = (invoiceKey: string, watermark: string): string => `${invoiceKey}:late:${watermark}`;

/** `adj:v1:<customer>:<currency>:<period>:<watermark>`: one late-usage adjustment of a period, decided once. */
export const lateAdjustmentKey = (customer: string, currency: string, period: string, watermark: string): string =>
  `adj:v1:${customer}:${currency}:${period}:${watermark}`;

/**
 * `billing-run:v1:<period>:<entity>+<entity>[:<watermark>]`: the audit subject of one close of a period (with its
 * watermark), or of a close begun or refused before it has one.
 */
export const billingRunSubject = (period: string, entities: readonly string[], watermark?: string): string =>
  `billing-run:v1:${period}:${entities.join('+')}${watermark === undefined ? '' : `:${watermark}`}`;

/** `acc:contact:v1:<connection>:<customer>:<16 hex of the body>`: one create or update of an ERP contact. */
export const contactRequestKey = (connection: string, customer: string, body: string): string =>
  `acc:contact:v1:${connection}:${customer}:${sha256(body).slice(0, 16)}`;

/** `jrn:v1:<kind>:<source document id>`: the journal's id and idempotency key. */
export const journalId = (kind: string, sourceDocument: string): string => `jrn:${JOURNAL_KEY_VERSION}:${kind}:${sourceDocument}`;

/** `jrn:v1:invoice:<invoice id>`: the journal of an invoice. */
export const invoiceJournalId = (invoiceId: string): string => journalId('invoice', invoiceId);

/**
 * `jrn:v1:<kind>_reversal:<source document id>`: the journal that reverses journal `jrn:v1:<kind>:<source document id>`
 * when its document is voided (one reversal per journal: the schema's `journals.reverses` is unique).
 */
export const reversalJournalId = (kind: string, sourceDocument: string): string => journalId(`${kind}_reversal`, sourceDocument);

/** `out:v1:<target>:<document id>`: a document's row in the outbox of one ERP target. */
export const outboxKey = (target: string, documentId: string): string => `out:v1:${target}:${documentId}`;

/** `out:v1:<connection>:pay:<payment id>`: a payment pushed to an ERP connection. */
export const paymentOutboxKey = (connection: string, paymentId: string): string => outboxKey(connection, `pay:${paymentId}`);

/** `exc:v1:<32 hex of kind and subject>`: an operational exception (payments, ERP waits, reauthorization). */
export const exceptionId = (kind: string, subject: string): string => `exc:v1:${sha256(`${kind}\n${subject}`).slice(0, 32)}`;

/**
 * `ntf:v1:audit.checkpoint:<seq>:<16 hex of the head hash>:<16 hex of the key id>`: the notification announcing a
 * signed checkpoint of the audit chain's head (src/audit/checkpoints.ts); the same head signed again by the same key is
 * the same fact, announced once.
 */
export const auditCheckpointNotificationId = (seq: string, hash: string, keyId: string): string =>
  `ntf:v1:audit.checkpoint:${seq}:${hash.slice(0, 16)}:${keyId.slice(0, 16)}`;

/** `dsp:v1:<invoice id>:<line no>:<n>`: the n-th dispute (1-based) of one invoice line; one is open at a time. */
export const disputeKey = (invoiceId: string, lineNo: number, n: number): string => `dsp:v1:${invoiceId}:${lineNo}:${n}`;

/** `dsp_<24 hex>`: the id of the dispute with that key. */
export const disputeIdOf = (key: string): string => `dsp_${sha256(key).slice(0, 24)}`;

/** `cn:v1:<invoice id>:dispute:<dispute id>`: the credit note that resolves a dispute of a line of that invoice (one per dispute). */
export const disputeCreditNoteKey = (invoiceId: string, disputeId: string): string => `cn:v1:${invoiceId}:dispute:${disputeId}`;
