// Canonical JSON (RFC 8785) and its SHA-256: the one recipe for content hashes. bigint values become decimal strings.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export function toJsonValue(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v)));
}

export function canonicalJson(value: unknown): string {
  const text = canonicalize(toJsonValue(value));
  if (text === undefined) throw new Error('value has no canonical JSON form');
  return text;
}

export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
