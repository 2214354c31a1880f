// A usage event as every stage sees it once ingest has accepted it: the normalized event, its deduplication key, the
// limits on what it may carry and the hash of its content (RFC 8785 canonical JSON, SHA-256). Pure.
import * as crypto from 'node:crypto';
import canonicalize from 'canonicalize';

/** Limits (TigerStyle): everything an event may carry is bounded; beyond a limit the event is rejected, never truncated. */
export const EVENT_LIMITS = Object.freeze({
  /** Events per request or per ingestion batch (HTTP batch, NDJSON chunk, file chunk, replay page). */
  batchEventsMax: 1000,
  /**
   * Lines of one NDJSON request body (blank lines included), counted before any line is read; beyond, 413 and nothing
   * is stored. Bounds the work and the answer of one request; larger loads go through `accrue ingest FILE` or JetStream.
   */
  ndjsonEventsMax: 10_000,
  /** Bytes of one event as RFC 8785 canonical JSON (attributes and data, no insignificant whitespace). */
  eventBytesMax: 64 * 1024,
  /** Characters of `id`. */
  idLengthMax: 256,
  /** Characters of `source`. */
  sourceLengthMax: 1024,
  /** Characters of `type`. */
  typeLengthMax: 256,
  /** Characters of `subject` (the product tenant). */
  subjectLengthMax: 256,
  /** Characters of an extension attribute name; the spec recommends at most 20, Accrue refuses beyond this. */
  attributeNameLengthMax: 64,
  /** Characters of an extension attribute string value. */
  extensionValueLengthMax: 1024,
  /** Nesting depth of `data` (objects and arrays). */
  dataDepthMax: 32,
  /** Characters of a unique_count value. */
  uniqueKeyLengthMax: 256,
  /** Characters of a group_by dimension value. */
  dimensionLengthMax: 256,
});

export interface NormalizedEvent {
  source: string;
  id: string;
  type: string;
  subject: string;
  customer: string;
  time: string; // canonical ISO UTC with milliseconds: 2026-11-03T10:00:00.000Z
  data: Record<string, unknown>; // {} when the event has no data
  /** meter id -> canonical decimal text (sum, max, latest) or the unique key (unique_count); count meters have none. */
  values: Record<string, string>;
  /** meter id -> { group_by key -> value } for meters with group_by; a missing dimension is "". */
  dimensions: Record<string, Record<string, string>>;
  /** SHA-256 hex over RFC 8785 canonical JSON of the event exactly as received. */
  content_hash: string;
  /** `data` as RFC 8785 canonical JSON when validation wrote it (the same JSON value as `data`), for storing it as is. */
  data_json?: string;
}

/** A well-formed event parked until the catalog knows its type or subject. */
export interface QuarantinedEvent {
  source: string;
  id: string;
  type: string;
  subject: string;
  customer: string | null;
  time: string;
  data: Record<string, unknown>;
  content_hash: string;
  raw: Record<string, unknown>;
}

export type QuarantineReason = 'unknown_type' | 'unknown_subject';

/** The deduplication key of an event: (source, id), unambiguous whatever the strings hold. */
export function eventKey(source: string, id: string): string {
  return JSON.stringify([source, id]);
}

/**
 * SHA-256 hex over the RFC 8785 canonical JSON of a JSON value. Total: a value RFC 8785 has no form for (a non-finite
 * number, an unpaired surrogate, nesting too deep to walk) is never an event Accrue keeps, but it still gets a
 * deterministic hash (over a bounded, tagged stand-in), so naming a batch of rejected events cannot throw.
 */
export function eventContentHash(raw: unknown): string {
  const fast = canonicalEventJson(raw, 0);
  if (fast !== undefined) return sha256Hex(fast);
  let text: string | undefined;
  try {
    text = canonicalize(raw);
  } catch {
    return sha256Hex(`accrue:not-canonical:${standIn(raw, 0)}`);
  }
  return sha256Hex(text ?? 'null');
}

// A deterministic, bounded serialization of anything: members sorted, non-JSON numbers and values named, depth capped.
function standIn(value: unknown, depth: number): string {
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : `"#${String(value)}"`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'boolean' || value === null) return String(value);
  if (typeof value !== 'object') return `"#${typeof value}"`;
  if (depth >= 2 * EVENT_LIMITS.dataDepthMax) return '"#deeper"';
  if (Array.isArray(value)) return `[${value.map((item) => standIn(item, depth + 1)).join(',')}]`;
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${standIn(record[key], depth + 1)}`)
    .join(',')}}`;
}

// One-shot crypto.hash (Node >= 20.12) skips the Hash object createHash allocates; same digest either way.
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;
export const sha256Hex = oneShotHash
  ? (text: string): string => oneShotHash('sha256', text, 'hex')
  : (text: string): string => crypto.createHash('sha256').update(text).digest('hex');

// Any character checkShape may refuse in a string (NUL or a surrogate); strings without one need no closer look.
const SUSPECT_TEXT = /[\u0000\uD800-\uDFFF]/;
// Any character JSON (and so RFC 8785) writes escaped, or that checkShape may refuse: without one, a string is written
// as it is between quotes, which is what JSON.stringify writes for it.
const ESCAPED_OR_SUSPECT = /["\\\u0000-\u001F\uD800-\uDFFF]/;

/** A string as RFC 8785 writes it, or undefined for one checkShape may refuse. */
function canonicalString(value: string): string | undefined {
  if (!ESCAPED_OR_SUSPECT.test(value)) return `"${value}"`;
  return SUSPECT_TEXT.test(value) ? undefined : JSON.stringify(value);
}

/**
 * JSON.stringify of a normalized event's `values` or `dimensions` (string members, or members that are records of
 * strings), character for character, written without the engine's general serializer, which cost more than the rest
 * of a COPY row (issue 19). Members in the object's own order, as JSON.stringify writes them.
 */
export function stringRecordJson(record: Readonly<Record<string, string | Readonly<Record<string, string>>>>): string {
  let out = '';
  for (const key of Object.keys(record)) {
    const value = record[key]!;
    out += `${out === '' ? '{' : ','}${jsonString(key)}:${typeof value === 'string' ? jsonString(value) : stringRecordJson(value)}`;
  }
  return out === '' ? '{}' : `${out}}`;
}

/** JSON.stringify of a string: its canonical form, which is JSON.stringify's wherever RFC 8785 has one. */
function jsonString(value: string): string {
  return canonicalString(value) ?? JSON.stringify(value);
}

// Member names repeat from event to event (specversion, id, data and the data's own fields): their canonical form is
// kept rather than written again for each event, as the text that opens a member first in its object (`"name":`)
// and any other (`,"name":`). Bounded: names up to 64 characters, cleared when 1,024 are kept.
const CANONICAL_KEYS_MAX = 1024;
const CANONICAL_KEY_LENGTH_MAX = 64;
const canonicalKeys = new Map<string, readonly [string, string] | undefined>();

/** How a member named `key` opens in canonical JSON, first in its object and after another; undefined as canonicalString. */
function canonicalMember(key: string): readonly [string, string] | undefined {
  if (key.length > CANONICAL_KEY_LENGTH_MAX) return memberOpenings(key);
  let member = canonicalKeys.get(key);
  if (member === undefined && !canonicalKeys.has(key)) {
    member = memberOpenings(key);
    if (canonicalKeys.size >= CANONICAL_KEYS_MAX) canonicalKeys.clear();
    canonicalKeys.set(key, member);
  }
  return member;
}

function memberOpenings(key: string): readonly [string, string] | undefined {
  const name = canonicalString(key);
  return name === undefined ? undefined : [`${name}:`, `,${name}:`];
}

/**
 * RFC 8785 canonical JSON of a JSON value, byte for byte what the `canonicalize` package writes (members sorted by
 * UTF-16 code units, ECMAScript number and string serialization), in one walk that also vouches for the value's shape.
 * Answers undefined whenever the value holds anything checkShape might refuse, or anything that is not plain JSON
 * (a toJSON method, a hole, an undefined member, depth beyond the limit): the caller then takes the exact slow path.
 * `plainText`: the value was read from bytes that vouch for its strings (StrictJsonResult.plainText), which are then
 * written between quotes without a test.
 */
export function canonicalEventJson(value: unknown, depth = 0, plainText = false): string | undefined {
  switch (typeof value) {
    case 'string':
      return plainText ? `"${value}"` : canonicalString(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : undefined;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value === null) return 'null';
  if (depth > EVENT_LIMITS.dataDepthMax || typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i += 1) {
      if (!(i in value)) return undefined;
      const item = canonicalEventJson(value[i], depth + 1, plainText);
      if (item === undefined) return undefined;
      out += i === 0 ? item : `,${item}`;
    }
    return `${out}]`;
  }
  return canonicalObject(value as Record<string, unknown>, depth, plainText);
}

/** An object's members in canonical order; the canonical text of a member named `data` goes to `kept` when given. */
function canonicalObject(record: Record<string, unknown>, depth: number, plainText: boolean, kept?: { data?: string }): string | undefined {
  const keys = sortedKeys(record);
  let out = '{';
  for (let i = 0; i < keys.length; i += 1) {
    const key = keys[i]!;
    const member = canonicalMember(key);
    if (member === undefined) return undefined;
    const item = canonicalEventJson(record[key], depth + 1, plainText);
    if (item === undefined) return undefined;
    if (kept && key === 'data') kept.data = item;
    out = out + member[i === 0 ? 0 : 1] + item;
  }
  return `${out}}`;
}

/**
 * canonicalEventJson of an event (an object), with the canonical text of its `data` member when it has one: written
 * once for the content hash and kept for storing `data` (jsonb reads the same value from it). `plainText` as for
 * canonicalEventJson.
 */
export function canonicalEventParts(
  event: Record<string, unknown>,
  plainText = false,
): { text: string; data: string | undefined } | undefined {
  if (typeof (event as { toJSON?: unknown }).toJSON === 'function') return undefined;
  const kept: { data?: string } = {};
  const text = canonicalObject(event, 0, plainText, kept);
  return text === undefined ? undefined : { text, data: kept.data };
}

/**
 * An object's own keys in UTF-16 code unit order, as Array.prototype.sort orders strings. An event's objects hold a few
 * keys: an insertion sort orders them in place, where sort() allocated about 900 bytes for 8 keys.
 */
function sortedKeys(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record);
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i += 1) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > key; j -= 1) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
  return keys;
}
