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

export async function createKey(
  pool: pg.Pool,
  input: { name: string; scope: Scope; sources?: string[] },
): Promise<{ key: ApiKey; secret: string }> {
  const id = `key_${randomBytes(6).toString('hex')}`;
  const secret = `acc_${input.scope}_${randomBytes(32).toString('base64url')}`;
  await pool.query('INSERT INTO api_keys (id, name, secret_hash, scope, sources) VALUES ($1, $2, $3, $4, $5)', [
    id,
    input.name,
    hashSecret(secret),
    input.scope,
    input.sources ?? [],
  ]);
  negativeCache.get(pool)?.delete(hashSecret(secret));
  return { key: { id, name: input.name, scope: input.scope, sources: input.sources ?? [] }, secret };
}

/**
 * Limit: how long a process trusts a key it has looked up. A revocation takes effect at once in the process that
 * revoked (its cache is cleared) and within this time in every other process (`accrue keys revoke` in docs/cli.md).
 */
export const KEY_CACHE_TTL_MS = 5_000;
/**
 * Limit: how long a process remembers that a secret matched no live key, so a client repeating an unknown key does not
 * reach the database each time. Safe for new keys: a secret is random and shown only when its key is created, so no
 * request can have tried it before (and createKey clears it here anyway).
 */
export const KEY_NEGATIVE_CACHE_TTL_MS = 30_000;
const KEY_CACHE_ENTRIES_MAX = 10_000;
/**
 * Limit: how long a process remembers that a secret was a live key, so a client whose address is over the failed-
 * authentication limit (src/api/auth-limit.ts, an address shared with a key guesser behind one proxy) keeps working:
 * its key is still looked up and checked for revocation, while secrets never seen valid are refused unread.
 */
export const KEY_KNOWN_GOOD_TTL_MS = 60 * 60_000;

// Per pool (one database), by secret hash: the found key and when to look again; the unknown secrets and until when.
const keyCache = new WeakMap<pg.Pool, Map<string, { key: ApiKey; until: number }>>();
const negativeCache = new WeakMap<pg.Pool, Map<string, number>>();
const knownGood = new WeakMap<pg.Pool, Map<string, number>>();

/** Whether this secret matched a live key in this process within KEY_KNOWN_GOOD_TTL_MS (no database read). */
export function knownGoodSecret(pool: pg.Pool, secret: string, now: () => number = Date.now): boolean {
  const until = knownGood.get(pool)?.get(hashSecret(secret));
  return until !== undefined && until > now();
}

/** Sets an entry, dropping the oldest when the map is full (insertion order is age order: entries are re-inserted on refresh). */
function remember<V>(map: Map<string, V>, hash: string, value: V): void {
  map.delete(hash);
  if (map.size >= KEY_CACHE_ENTRIES_MAX) map.delete(map.keys().next().value!);
  map.set(hash, value);
}

export async function findKey(pool: pg.Pool, secret: string, now: () => number = Date.now): Promise<ApiKey | undefined> {
  const hash = hashSecret(secret);
  let cache = keyCache.get(pool);
  if (!cache) keyCache.set(pool, (cache = new Map()));
  let unknown = negativeCache.get(pool);
  if (!unknown) negativeCache.set(pool, (unknown = new Map()));
  const cached = cache.get(hash);
  if (cached && cached.until > now()) return cached.key;
  cache.delete(hash);
  const unknownUntil = unknown.get(hash);
  if (unknownUntil !== undefined && unknownUntil > now()) return undefined;
  unknown.delete(hash);
  const row = (
    await pool.query<ApiKey>('SELECT id, name, scope, sources FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL', [hash])
  ).rows[0];
  if (row) {
    remember(cache, hash, {
      key: Object.freeze({ ...row, sources: Object.freeze([...row.sources]) as string[] }),
      until: now() + KEY_CACHE_TTL_MS,
    });
    let good = knownGood.get(pool);
    if (!good) knownGood.set(pool, (good = new Map()));
    remember(good, hash, now() + KEY_KNOWN_GOOD_TTL_MS);
  } else remember(unknown, hash, now() + KEY_NEGATIVE_CACHE_TTL_MS);
  return row;
}

export async function revokeKey(pool: pg.Pool, id: string): Promise<boolean> {
  const revoked =
    ((await pool.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id])).rowCount ?? 0) > 0;
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
