// Failed authentication, limited per client: a client (by IP address) that sends more than `failuresMax` missing,
// unknown or revoked API keys within `windowMs` is answered 429 with Retry-After until its window ends, before its key
// is looked up, so guessing keys costs the database nothing. Successful requests are never counted or limited.
// One fixed window per client, in this process (each API node limits on its own).

import type pg from 'pg';
import { findKey, knownGoodSecret, type ApiKey } from '../controls/keys.js';
import { rolesGrant, rolesWith, type Permission } from '../domain/controls.js';
import { problemDetails, type ProblemDetails } from './problem.js';

/** Limits (docs/api.md): failed authentications a client may make per window, the window, and clients tracked at once. */
export const AUTH_FAILURE_LIMITS = Object.freeze({ failuresMax: 20, windowMs: 60_000, clientsMax: 10_000 });

export interface AuthFailureLimitOptions {
  failuresMax?: number;
  windowMs?: number;
  clientsMax?: number;
  now?: () => number;
}

export class AuthFailureLimiter {
  private readonly failuresMax: number;
  private readonly windowMs: number;
  private readonly clientsMax: number;
  private readonly now: () => number;
  // Per client: failures in its current window and when that window ends. Insertion order is age order.
  private readonly clients = new Map<string, { failures: number; until: number }>();

  constructor(options: AuthFailureLimitOptions = {}) {
    this.failuresMax = options.failuresMax ?? AUTH_FAILURE_LIMITS.failuresMax;
    this.windowMs = options.windowMs ?? AUTH_FAILURE_LIMITS.windowMs;
    this.clientsMax = options.clientsMax ?? AUTH_FAILURE_LIMITS.clientsMax;
    this.now = options.now ?? Date.now;
  }

  /** Seconds until the client may try again when it has used up its failures, else undefined. */
  blockedFor(client: string): number | undefined {
    const entry = this.clients.get(client);
    if (!entry) return undefined;
    const now = this.now();
    if (entry.until <= now) {
      this.clients.delete(client);
      return undefined;
    }
    return entry.failures >= this.failuresMax ? Math.max(1, Math.ceil((entry.until - now) / 1000)) : undefined;
  }

  /** Counts a failed authentication. */
  fail(client: string): void {
    const now = this.now();
    const entry = this.clients.get(client);
    if (entry && entry.until > now) {
      entry.failures += 1;
      return;
    }
    this.clients.delete(client);
    if (this.clients.size >= this.clientsMax) this.evict(now);
    this.clients.set(client, { failures: 1, until: now + this.windowMs });
  }

  /** Drops ended windows; when none has ended, the oldest one. Windows all last windowMs and enter in the order they start, so the ended ones come first. */
  private evict(now: number): void {
    for (const [client, entry] of this.clients) {
      if (entry.until > now) break;
      this.clients.delete(client);
    }
    if (this.clients.size >= this.clientsMax) this.clients.delete(this.clients.keys().next().value!);
  }
}

/**
 * The bearer key of a request, checked for the permission it needs, with failures counted per client: the key, or the
 * problem to answer (401, 403, or 429 with its Retry-After). An address over the limit is refused unread, except for
 * a key this process has seen valid: a client sharing the address (one proxy, one NAT) with a key guesser keeps
 * working, and its key is still looked up, so revocation holds.
 */
export async function authenticate(
  pool: pg.Pool,
  failures: AuthFailureLimiter,
  request: { ip: string; headers: { authorization?: string } },
  needed: Permission,
): Promise<{ key: ApiKey } | { problem: ProblemDetails; retryAfterSeconds?: number }> {
  const header = request.headers.authorization;
  const secret = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
  const blocked = failures.blockedFor(request.ip);
  if (blocked !== undefined && !(secret && knownGoodSecret(pool, secret))) {
    return {
      problem: problemDetails(
        429,
        'too_many_failed_authentications',
        `too many requests with a missing, unknown or revoked API key from this client; retry after ${blocked} s`,
        undefined,
        { retry_after_seconds: blocked },
      ),
      retryAfterSeconds: blocked,
    };
  }
  if (!secret) {
    failures.fail(request.ip);
    return { problem: problemDetails(401, 'unauthorized', 'send an API key as `Authorization: Bearer <key>`') };
  }
  const key = await findKey(pool, secret);
  if (!key) {
    failures.fail(request.ip);
    return { problem: problemDetails(401, 'unauthorized', 'unknown or revoked API key') };
  }
  if (!rolesGrant(key.principal.roles, needed))
    return {
      problem: problemDetails(
        403,
        'forbidden',
        `${key.principal.name} (roles ${key.principal.roles.join(', ')}) may not ${needed}; the roles that may: ${rolesWith(needed).join(', ')}`,
      ),
    };
  return { key };
}
