// Deterministic ids and idempotency keys, each recipe with a version (docs/pricing.md, "Keys and determinism").
// Hashes are SHA-256 (node:crypto) over RFC 8785 canonical JSON (`canonicalize`); bigint values become decimal strings.
// Changing a recipe means a new version prefix, never a silent change of an existing one.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { invariant } from './result.js';

export const KEY_VERSION = 'v1';

export const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** RFC 8785 canonical JSON of a value; bigint values are written as decimal strings first. */
export function canonicalText(value: unknown): string {
  const plain: unknown = JSON.parse(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? 'null');
  const text = canonicalize(plain);
  invariant(text !== undefined, 'a JSON value has a canonical form');
  return text;
}

/** SHA-256 hex of the canonical JSON of a value: the one content hash recipe. */
export const canonicalHash = (value: unknown): string => sha256Hex(canonicalText(value));

/** A key component: non-empty and free of the `:` separator (catalog ids, currencies and periods always are). */
function part(name: string, value: string): string {
  invariant(value.length > 0 && !value.includes(':'), `${name} ${JSON.stringify(value)} is a non-empty key component without ":"`);
  return value;
}

export interface RatingRunKeyInput {
  customer: string;
  period: string; // YYYY-MM
  catalogHash: string; // content hash of the catalog version in force
  usageFingerprint: string; // content hash of the usage aggregates the run read
}

/** `rr:v1:<sha256 of the canonical JSON {catalogHash, customer, period, usageFingerprint}>`: same inputs, same run. */
export const ratingRunId = (input: RatingRunKeyInput): string =>
  `rr:${KEY_VERSION}:${canonicalHash({ catalogHash: input.catalogHash, customer: input.customer, period: input.period, usageFingerprint: input.usageFingerprint })}`;

/** The usage fingerprint of a run: the content hash of the aggregates it read, in the order it read them. */
export const usageFingerprint = (usageRead: readonly unknown[]): string => canonicalHash(usageRead);

/** `inv:v1:<entity>:<customer>:<currency>:<period>`: one invoice per legal entity, customer, currency and period. */
export const invoiceKey = (entity: string, customer: string, currency: string, period: string): string =>
  `inv:${KEY_VERSION}:${part('entity', entity)}:${part('customer', customer)}:${part('currency', currency)}:${part('period', period)}`;

/** `inv_<first 24 hex of sha256(key)>`: the document id of an invoice or credit note, from its key. */
export const invoiceId = (key: string): string => `inv_${sha256Hex(key).slice(0, 24)}`;

/** The hash of why a credit note is issued (e.g. `{ reason: 'late_usage', watermark }`), for its key. */
export const reasonHash = (reason: unknown): string => canonicalHash(reason);

/** `cn:v1:<invoice id>:<reason hash>`: one credit note per corrected invoice and reason. */
export const creditNoteKey = (correctedInvoiceId: string, reason: string): string =>
  `cn:${KEY_VERSION}:${part('invoice id', correctedInvoiceId)}:${part('reason hash', reason)}`;

/** `jrn:v1:<kind>:<source document id>`: the journal's id and idempotency key (same recipe as journal.ts journalId). */
export function journalKey(kind: string, sourceDocumentId: string): string {
  invariant(sourceDocumentId.length > 0, 'a journal names its source document');
  return `jrn:${KEY_VERSION}:${part('kind', kind)}:${sourceDocumentId}`;
}
