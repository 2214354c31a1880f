// Correlation: the chain of ids from usage to the ERP document, and one short id every stage downstream of a rating
// run can carry (documents, outbox rows, log lines, requests to an ERP). Pure: no I/O. See docs/explain.md.
//
//   usage batches --(events counted up to the run's watermark)--> rating run --> invoice --> journal(s) --> outbox
//   row per target --> ERP document (the target's reference)
//
// The correlation id is derived from the invoice and its rating run only, so it is known before the invoice is
// finalized and stays the same for every journal, outbox row and request that follows from that invoice.
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical.js';

export const CORRELATION_VERSION = 'v1';
/** The HTTP header that carries the chain on every request to an ERP target. */
export const CORRELATION_HEADER = 'x-accrue-correlation';
/** Limit: header values past this length are a bug upstream (ids are short and the chain has five links). */
export const CORRELATION_HEADER_CHARS_MAX = 1024;

const ID_PATTERN = /^corr:v1:[0-9a-f]{24}$/;

export interface CorrelationRoot {
  invoice: string; // the invoice or credit note the chain runs through
  rating_run: string | null; // the rating run whose usage it bills (a credit note: the run of the invoice it reverses)
}

/** `corr:v1:<first 24 hex of SHA-256 over the canonical JSON of {invoice, rating_run}>`; migration 010 computes the same. */
export function correlationId(root: CorrelationRoot): string {
  const digest = createHash('sha256')
    .update(canonicalJson({ invoice: root.invoice, rating_run: root.rating_run }))
    .digest('hex');
  return `corr:${CORRELATION_VERSION}:${digest.slice(0, 24)}`;
}

export const isCorrelationId = (text: string): boolean => ID_PATTERN.test(text);

/**
 * One chain, as far as it reaches: an invoice not yet journaled has no journal, a journal not yet posted no ERP
 * document. Usage batches are listed by id (at most a limit; `usage_batch_count` is the full count).
 */
export interface CorrelationChain {
  correlation_id: string;
  usage_batches: string[];
  usage_batch_count: number;
  rating_run: string | null;
  invoice: string;
  journal: string | null;
  outbox: string | null;
  erp_document: string | null;
}

export function correlationChain(
  root: CorrelationRoot,
  links: Partial<Omit<CorrelationChain, 'correlation_id' | 'invoice' | 'rating_run'>> = {},
): CorrelationChain {
  const batches = [...new Set(links.usage_batches ?? [])].sort();
  return {
    correlation_id: correlationId(root),
    usage_batches: batches,
    usage_batch_count: Math.max(links.usage_batch_count ?? 0, batches.length),
    rating_run: root.rating_run,
    invoice: root.invoice,
    journal: links.journal ?? null,
    outbox: links.outbox ?? null,
    erp_document: links.erp_document ?? null,
  };
}

// Header values are visible ASCII; ids are too, but a payment id comes from outside, so anything else is %-encoded.
const headerSafe = (text: string): string =>
  text.replace(/[^A-Za-z0-9_:.-]/gu, (c) =>
    [...new TextEncoder().encode(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );

const HEADER_FIELDS = [
  ['rr', 'rating_run'],
  ['inv', 'invoice'],
  ['jrn', 'journal'],
  ['out', 'outbox'],
  ['batches', 'usage_batch_count'],
] as const;

/**
 * The compact form sent as `X-Accrue-Correlation`: the id first, then the links known when the request leaves,
 * `corr:v1:…;rr=rr:v1:…;inv=inv_…;jrn=jrn:v1:invoice:inv_…;out=out:v1:netsuite:jrn:…`. Batches travel as a count
 * (`accrue explain` lists them): a month of usage can arrive in thousands of batches, too many for a header.
 */
export function formatCorrelationHeader(chain: CorrelationChain): string {
  const parts = [chain.correlation_id];
  for (const [name, field] of HEADER_FIELDS) {
    const value = chain[field];
    if (value === null || (field === 'usage_batch_count' && value === 0)) continue;
    parts.push(`${name}=${headerSafe(String(value))}`);
  }
  const text = parts.join(';');
  if (text.length > CORRELATION_HEADER_CHARS_MAX)
    throw new Error(`invariant violated: a correlation header is at most ${CORRELATION_HEADER_CHARS_MAX} characters, got ${text.length}`);
  return text;
}

export interface ParsedCorrelationHeader {
  correlation_id: string;
  rating_run?: string;
  invoice?: string;
  journal?: string;
  outbox?: string;
  usage_batch_count?: number;
}

/** Reads a header back (support tooling, the simulators in the tests); undefined when it is not one of ours. */
export function parseCorrelationHeader(text: string): ParsedCorrelationHeader | undefined {
  const [id, ...rest] = text.split(';');
  if (!id || !isCorrelationId(id)) return undefined;
  const parsed: ParsedCorrelationHeader = { correlation_id: id };
  for (const part of rest) {
    const at = part.indexOf('=');
    if (at < 1) return undefined;
    const name = part.slice(0, at);
    const value = decodeURIComponent(part.slice(at + 1));
    const field = HEADER_FIELDS.find(([n]) => n === name)?.[1];
    if (!field) continue; // a later version may add links; an unknown one is skipped, not an error
    if (field === 'usage_batch_count') parsed.usage_batch_count = Number.parseInt(value, 10);
    else parsed[field] = value;
  }
  return parsed;
}

/** The fields a log line about a document carries, so one grep for the correlation id finds every stage. */
export function documentLogFields(document: {
  id: string;
  number: string | null;
  kind: string;
  customer: string;
  rating_run: string;
}): Record<string, string | null> {
  return {
    correlation: correlationId({ invoice: document.id, rating_run: document.rating_run }),
    rating_run: document.rating_run,
    invoice: document.id,
    number: document.number,
    kind: document.kind,
    customer: document.customer,
  };
}
