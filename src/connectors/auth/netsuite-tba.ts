// NetSuite Token-Based Authentication (issue #15): OAuth 1.0a, HMAC-SHA256, every request signed, realm = the account
// id upper-cased (Oracle, "The Authorization Header for REST Web Services": realm is the account id, e.g. 1234567_SB1),
// query parameters included in the signature base string (RFC 5849 §3.4.1.3). TBA tokens do not expire: a 401 after
// signing means the token was revoked (or the role lost access) → needs_reauthorization.
import { createHmac, randomBytes } from 'node:crypto';
import OAuth from 'oauth-1.0a';
import type pg from 'pg';
import { ReauthorizationRequired, type ConnectionSettings } from '../../domain/erp.js';
import type { Authorizer } from '../caller.js';
import { readCredentials, type Secrets } from './credentials.js';
import { markNeedsReauthorization } from './reauthorization.js';
import type { SecretKey } from './secret-box.js';

export interface TbaSecrets {
  consumer_key: string;
  consumer_secret: string;
  token_id: string;
  token_secret: string;
}

export interface TbaSignOptions {
  nonce?: string;
  timestamp?: number;
}

/** The Authorization header of one request, signed HMAC-SHA256 with the realm. */
export function tbaAuthorization(realm: string, secrets: TbaSecrets, method: string, url: string, options: TbaSignOptions = {}): string {
  const oauth = new OAuth({
    consumer: { key: secrets.consumer_key, secret: secrets.consumer_secret },
    signature_method: 'HMAC-SHA256',
    realm,
    hash_function: (base, key) => createHmac('sha256', key).update(base).digest('base64'),
  });
  if (options.nonce !== undefined) oauth.getNonce = () => options.nonce!;
  else oauth.getNonce = () => randomBytes(16).toString('hex');
  if (options.timestamp !== undefined) oauth.getTimeStamp = () => options.timestamp!;
  // The query's parameters are parsed here, not by oauth-1.0a (its parser leaves names percent-encoded, which then
  // get encoded twice in the base string: found by the oauthlib comparison in test/connectors/auth-netsuite-tba.test.ts).
  const parsed = new URL(url);
  const query: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const part of parsed.search.slice(1).split('&')) {
    if (!part) continue;
    const at = part.indexOf('=');
    const name = decodeURIComponent(at < 0 ? part : part.slice(0, at));
    const value = at < 0 ? '' : decodeURIComponent(part.slice(at + 1));
    const existing = query[name];
    query[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  const bare = `${parsed.origin}${parsed.pathname}`;
  const data = oauth.authorize(
    { url: bare, method: method.toUpperCase(), data: query },
    { key: secrets.token_id, secret: secrets.token_secret },
  );
  return oauth.toHeader(data).Authorization;
}

export const tbaRealm = (settings: ConnectionSettings): string => {
  if (!settings.account_id) throw new Error(`NetSuite connection ${settings.name} has no account_id (the TBA realm)`);
  return settings.account_id.toUpperCase();
};

const asTba = (connection: string, secrets: Secrets): TbaSecrets => {
  const { consumer_key, consumer_secret, token_id, token_secret } = secrets;
  if (!consumer_key || !consumer_secret || !token_id || !token_secret)
    throw new ReauthorizationRequired(connection, 'no TBA credentials stored: run accrue connect netsuite');
  return { consumer_key, consumer_secret, token_id, token_secret };
};

export function netsuiteTbaAuthorizer(pool: pg.Pool, settings: ConnectionSettings, key: SecretKey): Authorizer {
  const realm = tbaRealm(settings);
  let cached: TbaSecrets | undefined;
  return {
    async authorize(method, url) {
      if (!cached) {
        const stored = await readCredentials(pool, settings.name, key);
        if (!stored) throw new ReauthorizationRequired(settings.name, 'no TBA credentials stored: run accrue connect netsuite');
        cached = asTba(settings.name, stored.secrets);
      }
      return { authorization: tbaAuthorization(realm, cached, method, url) };
    },
    async refresh() {
      // Another process may have stored new tokens (accrue connect): use them once before giving up.
      const stored = await readCredentials(pool, settings.name, key);
      const fresh = stored ? asTba(settings.name, stored.secrets) : undefined;
      if (fresh && cached && fresh.token_id !== cached.token_id) {
        cached = fresh;
        return;
      }
      cached = undefined;
      const reason = 'NetSuite refused the TBA token (revoked, or the role lost access)';
      await markNeedsReauthorization(pool, settings.name, reason);
      throw new ReauthorizationRequired(settings.name, reason);
    },
  };
}
