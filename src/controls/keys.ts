// API keys: each belongs to one principal (src/controls/principals.ts) and acts with its roles, limited to the legal
// entities the key names (none: every entity) and, for sending events, to the CloudEvents sources it names. A secret is
// shown once and stored as a SHA-256 hash (secrets are 256-bit random, so a fast hash is enough).
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import { auditActor, isRole, type Actor, type Role } from '../domain/controls.js';
import { ProblemError } from '../domain/result.js';
import { transaction } from '../store/store.js';

export interface ApiKey {
  id: string;
  name: string;
  principal: { id: string; name: string; kind: 'person' | 'service'; roles: Role[] };
  /** Legal entities the key may see and act on; empty: every entity. */
  entities: string[];
  /** CloudEvents sources the key may send; empty: any. */
  sources: string[];
}

/** The actor a key authenticates. */
export function keyActor(key: ApiKey): Actor {
  return {
    principal: key.principal.id,
    name: key.principal.name,
    roles: key.principal.roles,
    entities: key.entities,
    keyId: key.id,
  };
}

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('hex');

/** Creates a key for an enabled principal (by id or name) and returns its secret, which is not stored. */
export async function createKey(
  pool: pg.Pool,
  input: { principal: string; name: string; entities?: string[]; sources?: string[] },
  by: Actor,
): Promise<{ key: ApiKey; secret: string }> {
  const id = `key_${randomBytes(6).toString('hex')}`;
  const secret = `acc_${randomBytes(32).toString('base64url')}`;
  const entities = [...new Set(input.entities ?? [])].sort();
  const sources = [...new Set(input.sources ?? [])].sort();
  const key = await transaction(pool, async (client) => {
    const principal = (
      await client.query<ApiKey['principal'] & { disabled_at: Date | null }>(
        'SELECT id, name, kind, roles, disabled_at FROM principals WHERE id = $1 OR name = $1 FOR SHARE',
        [input.principal],
      )
    ).rows[0];
    if (!principal || principal.disabled_at)
      throw new ProblemError([
        { path: 'principal', code: 'not_found', message: `no enabled principal ${JSON.stringify(input.principal)}` },
      ]);
    await client.query('INSERT INTO api_keys (id, name, secret_hash, principal_id, entities, sources) VALUES ($1, $2, $3, $4, $5, $6)', [
      id,
      input.name,
      hashSecret(secret),
      principal.id,
      entities,
      sources,
    ]);
    await appendAudit(client, {
      actor: auditActor(by),
      action: 'key.create',
      subject: id,
      details: {
        principal: principal.id,
        principal_name: principal.name,
        roles: principal.roles,
        entities,
        sources,
        dev_mode: by.dev ?? false,
      },
    });
    const { disabled_at: _disabled, ...owner } = principal;
    return { id, name: input.name, principal: { ...owner, roles: owner.roles.filter(isRole) }, entities, sources };
  });
  negativeCache.get(pool)?.delete(hashSecret(secret));
  return { key, secret };
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
  const found = (
    await pool.query<{ id: string; name: string; entities: string[]; sources: string[]; principal: ApiKey['principal'] }>(
      `SELECT k.id, k.name, k.entities, k.sources, json_build_object('id', p.id, 'name', p.name, 'kind', p.kind, 'roles', p.roles) AS principal
         FROM api_keys k JOIN principals p ON p.id = k.principal_id
        WHERE k.secret_hash = $1 AND k.revoked_at IS NULL AND p.disabled_at IS NULL`,
      [hash],
    )
  ).rows[0];
  const row: ApiKey | undefined = found && {
    ...found,
    principal: Object.freeze({ ...found.principal, roles: Object.freeze(found.principal.roles.filter(isRole)) as Role[] }),
    entities: Object.freeze([...found.entities]) as string[],
    sources: Object.freeze([...found.sources]) as string[],
  };
  if (row) {
    remember(cache, hash, {
      key: Object.freeze(row),
      until: now() + KEY_CACHE_TTL_MS,
    });
    let good = knownGood.get(pool);
    if (!good) knownGood.set(pool, (good = new Map()));
    remember(good, hash, now() + KEY_KNOWN_GOOD_TTL_MS);
  } else remember(unknown, hash, now() + KEY_NEGATIVE_CACHE_TTL_MS);
  return row;
}

export async function revokeKey(pool: pg.Pool, id: string, by: Actor): Promise<boolean> {
  const revoked = await transaction(pool, async (client) => {
    const done =
      ((await client.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id])).rowCount ?? 0) > 0;
    if (done)
      await appendAudit(client, { actor: auditActor(by), action: 'key.revoke', subject: id, details: { dev_mode: by.dev ?? false } });
    return done;
  });
  forgetKeys(pool);
  return revoked;
}

/** Drops this process's cached keys for the database (after a revocation or a principal's change). */
export function forgetKeys(pool: pg.Pool): void {
  keyCache.delete(pool);
}

export async function listKeys(pool: pg.Pool) {
  return (
    await pool.query<{
      id: string;
      name: string;
      principal: string;
      roles: string[];
      entities: string[];
      sources: string[];
      created_at: Date;
      revoked_at: Date | null;
    }>(
      `SELECT k.id, k.name, p.name AS principal, p.roles, k.entities, k.sources, k.created_at, k.revoked_at
         FROM api_keys k JOIN principals p ON p.id = k.principal_id ORDER BY k.created_at, k.id`,
    )
  ).rows;
}
