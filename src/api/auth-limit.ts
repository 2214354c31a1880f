// Failed authentication, limited per client: a client (by IP address) that sends more than `failuresMax` missing,
// unknown or revoked API keys within `windowMs` is answered 429 with Retry-After until its window ends, before its key
// is looked up, so guessing keys costs the database nothing. Successful requests are never counted or limited.
// One fixed window per client, in this process (each API node limits on its own).

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
