// API keys: shown once, stored as SHA-256 hashes (keys are 256-bit random, so a fast hash is enough).
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';

export type Scope = 'ingest' | 'read' | 'admin';
export const SCOPES: readonly Scope[] = ['ingest', 'read', 'admin'];

export interface ApiKey {
  id: string;
  name: string;
  scope: Scope;
  sources: string[];
}

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('hex');

export async function createKey(pool: pg.Pool, input: { name: string; scope: Scope; sources?: string[] }): Promise<{ key: ApiKey; secret: string }> {
  const id = `key_${randomBytes(6).toString('hex')}`;
  const secret = `acc_${input.scope}_${randomBytes(32).toString('base64url')}`;
  await pool.query('INSERT INTO api_keys (id, name, secret_hash, scope, sources) VALUES ($1, $2, $3, $4, $5)', [
    id,
    input.name,
    hashSecret(secret),
    input.scope,
    input.sources ?? [],
  ]);
  return { key: { id, name: input.name, scope: input.scope, sources: input.sources ?? [] }, secret };
}

/**
 * Limit: how long a process trusts a key it has looked up. A revocation takes effect at once in the process that
 * revoked (its cache is cleared) and within this time in every other process (`accrue keys revoke` in docs/cli.md). Unknown keys are
 * never cached, so a key created elsewhere works on its first request.
 */
export const KEY_CACHE_TTL_MS = 5_000;
const KEY_CACHE_ENTRIES_MAX = 10_000;

// Per pool (one database), by secret hash: the found key and when to look again.
const keyCache = new WeakMap<pg.Pool, Map<string, { key: ApiKey; until: number }>>();

export async function findKey(pool: pg.Pool, secret: string, now: () => number = Date.now): Promise<ApiKey | undefined> {
  const hash = hashSecret(secret);
  let cache = keyCache.get(pool);
  if (!cache) keyCache.set(pool, (cache = new Map()));
  const cached = cache.get(hash);
  if (cached && cached.until > now()) return cached.key;
  cache.delete(hash);
  const row = (await pool.query<ApiKey>('SELECT id, name, scope, sources FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL', [hash])).rows[0];
  if (row) {
    if (cache.size >= KEY_CACHE_ENTRIES_MAX) cache.delete(cache.keys().next().value!); // the oldest entry
    cache.set(hash, { key: Object.freeze({ ...row, sources: Object.freeze([...row.sources]) as string[] }), until: now() + KEY_CACHE_TTL_MS });
  }
  return row;
}

export async function revokeKey(pool: pg.Pool, id: string): Promise<boolean> {
  const revoked = ((await pool.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id])).rowCount ?? 0) > 0;
  keyCache.delete(pool);
  return revoked;
}

export async function listKeys(pool: pg.Pool) {
  return (await pool.query('SELECT id, name, scope, sources, created_at, revoked_at FROM api_keys ORDER BY created_at, id')).rows;
}

/** Which scopes a key's scope grants: admin does everything, read reads, ingest only sends events. */
export function grants(held: Scope, needed: Scope): boolean {
  if (held === 'admin') return true;
  return held === needed;
}
