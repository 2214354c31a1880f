// Xero OAuth 2.0 (issue #15): bearer access tokens of 30 minutes, refresh tokens that rotate and work once. A refresh
// runs in ONE transaction holding erp_credentials' row lock: another worker that already refreshed is seen by comparing
// the stored access token with the rejected one, and the new pair is saved before the lock is released.
// Xero: https://developer.xero.com/documentation/guides/oauth2/auth-flow (PKCE, refresh_token grant, /connections).
import { transaction } from '../../store/store.js';
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { ReauthorizationRequired, type ConnectionSettings } from '../../domain/erp.js';
import type { Authorizer } from '../caller.js';
import { httpSend, jsonRecord, readAnswer } from '../http.js';
import { readCredentials, saveCredentials, type Secrets } from './credentials.js';
import { markNeedsReauthorization } from './reauthorization.js';
import type { SecretKey } from './secret-box.js';

export const XERO_TOKEN_URL = 'https://identity.xero.com/connect/token';
export const XERO_AUTHORIZE_URL = 'https://login.xero.com/identity/connect/authorize';
export const XERO_CONNECTIONS_URL = 'https://api.xero.com/connections';
/**
 * The scopes Accrue asks for (apps created before 2 March 2026). Xero replaced the broad accounting.transactions scope
 * with granular ones (accounting.invoices, accounting.payments, ...) for apps created from 2 March 2026, and older
 * apps must migrate by September 2027: use XERO_GRANULAR_SCOPES, or any list through XERO_SCOPES at `accrue connect`.
 */
export const XERO_SCOPES = 'offline_access accounting.transactions accounting.contacts accounting.settings.read';
export const XERO_GRANULAR_SCOPES =
  'offline_access accounting.invoices accounting.payments accounting.manualjournals accounting.contacts accounting.settings.read';
/** Refresh proactively when the access token ends within this. */
export const XERO_REFRESH_MARGIN_MS = 60_000;

export interface XeroTokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** POSTs a form to Xero's token endpoint; answers the tokens, or `{refused}` with the OAuth error code (never a secret). */
export async function xeroTokenRequest(
  tokenUrl: string,
  clientId: string,
  clientSecret: string | undefined,
  form: Record<string, string>,
): Promise<XeroTokens | { refused: string; status: number }> {
  const body = new URLSearchParams(form);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (clientSecret) headers.authorization = basic(clientId, clientSecret);
  else body.set('client_id', clientId);
  const res = await readAnswer(await httpSend('Xero token endpoint', 'POST', tokenUrl, { headers, body, timeoutMs: 30_000 }));
  const json = jsonRecord(res);
  if (res.status === 400 || res.status === 401)
    return { refused: typeof json.error === 'string' ? json.error : `http_${res.status}`, status: res.status };
  if (!res.ok) throw new Error(`Xero token endpoint answered ${res.status}`);
  if (typeof json.access_token !== 'string' || typeof json.refresh_token !== 'string')
    throw new Error('Xero token endpoint answered without access_token and refresh_token');
  return {
    access_token: json.access_token,
    refresh_token: json.refresh_token,
    expires_in: typeof json.expires_in === 'number' ? json.expires_in : 1800,
  };
}

export interface XeroAuthorizerOptions {
  now?: () => number;
}

export function xeroAuthorizer(
  pool: pg.Pool,
  settings: ConnectionSettings,
  key: SecretKey,
  options: XeroAuthorizerOptions = {},
): Authorizer {
  const now = options.now ?? Date.now;
  const tokenUrl = settings.token_url ?? XERO_TOKEN_URL;
  let cached: { secrets: Secrets; expiresAt: number } | undefined;

  const headersOf = (secrets: Secrets): Record<string, string> => {
    if (settings.tenant_id && secrets.tenant_id && settings.tenant_id !== secrets.tenant_id)
      throw new ReauthorizationRequired(
        settings.name,
        `configured tenant_id ${settings.tenant_id} differs from the tenant authorized at connect (${secrets.tenant_id})`,
      );
    return { authorization: `Bearer ${secrets.access_token}`, 'xero-tenant-id': secrets.tenant_id ?? settings.tenant_id ?? '' };
  };

  const load = async () => {
    const stored = await readCredentials(pool, settings.name, key);
    if (!stored?.secrets.access_token) throw new ReauthorizationRequired(settings.name, 'no credentials stored: run accrue connect xero');
    cached = { secrets: stored.secrets, expiresAt: stored.accessExpiresAt?.getTime() ?? 0 };
    return cached;
  };

  /** Refreshes unless the stored token is no longer `rejectedAccess` (another worker refreshed): one transaction, row lock. */
  const refreshFrom = async (rejectedAccess: string | undefined, onlyIfExpiring: boolean): Promise<void> => {
    let refused: string | undefined;
    await transaction(pool, async (client) => {
      const stored = await readCredentials(client, settings.name, key, { forUpdate: true });
      if (!stored?.secrets.refresh_token)
        throw new ReauthorizationRequired(settings.name, 'no credentials stored: run accrue connect xero');
      const expiresAt = stored.accessExpiresAt?.getTime() ?? 0;
      const alreadyNew = onlyIfExpiring ? expiresAt - now() > XERO_REFRESH_MARGIN_MS : stored.secrets.access_token !== rejectedAccess;
      if (!alreadyNew) {
        const answer = await xeroTokenRequest(tokenUrl, stored.secrets.client_id ?? '', stored.secrets.client_secret, {
          grant_type: 'refresh_token',
          refresh_token: stored.secrets.refresh_token,
        });
        if ('refused' in answer) refused = answer.refused;
        else {
          const secrets = { ...stored.secrets, access_token: answer.access_token, refresh_token: answer.refresh_token };
          const at = new Date(now() + answer.expires_in * 1000);
          await saveCredentials(client, settings.name, secrets, at, key);
          cached = { secrets, expiresAt: at.getTime() };
        }
      } else cached = { secrets: stored.secrets, expiresAt };
    });
    if (refused !== undefined) {
      cached = undefined;
      const reason = `Xero refused the refresh token: ${refused}`;
      await markNeedsReauthorization(pool, settings.name, reason);
      throw new ReauthorizationRequired(settings.name, reason);
    }
  };

  return {
    async authorize() {
      let current = cached ?? (await load());
      if (current.expiresAt - now() <= XERO_REFRESH_MARGIN_MS) {
        current = await load(); // another worker may have refreshed already
        if (current.expiresAt - now() <= XERO_REFRESH_MARGIN_MS) {
          await refreshFrom(undefined, true);
          current = cached!;
        }
      }
      return headersOf(current.secrets);
    },
    async refresh(rejected) {
      const auth = rejected.authorization ?? '';
      await refreshFrom(auth.startsWith('Bearer ') ? auth.slice(7) : undefined, false);
    },
  };
}

// ---- connect (authorization code with PKCE) ----

export interface XeroPkce {
  verifier: string;
  challenge: string;
  state: string;
}

export function xeroPkce(): XeroPkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url'), state: randomBytes(16).toString('base64url') };
}

export function xeroAuthorizeUrl(
  settings: Pick<ConnectionSettings, 'authorize_url'>,
  input: { clientId: string; redirectUri: string; pkce: XeroPkce; scopes?: string },
): string {
  const url = new URL(settings.authorize_url ?? XERO_AUTHORIZE_URL);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', input.clientId);
  url.searchParams.set('redirect_uri', input.redirectUri);
  url.searchParams.set('scope', input.scopes ?? XERO_SCOPES);
  url.searchParams.set('state', input.pkce.state);
  url.searchParams.set('code_challenge', input.pkce.challenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url.toString();
}

export async function xeroExchangeCode(
  settings: Pick<ConnectionSettings, 'token_url'>,
  input: { clientId: string; clientSecret?: string; code: string; redirectUri: string; verifier: string },
): Promise<XeroTokens> {
  const answer = await xeroTokenRequest(settings.token_url ?? XERO_TOKEN_URL, input.clientId, input.clientSecret, {
    grant_type: 'authorization_code',
    code: input.code,
    redirect_uri: input.redirectUri,
    code_verifier: input.verifier,
  });
  if ('refused' in answer) throw new Error(`Xero refused the authorization code: ${answer.refused}`);
  return answer;
}

export interface XeroTenant {
  tenantId: string;
  tenantName: string;
  tenantType: string;
}

export async function xeroTenants(settings: Pick<ConnectionSettings, 'connections_url'>, accessToken: string): Promise<XeroTenant[]> {
  const res = await readAnswer(
    await httpSend('Xero connections', 'GET', settings.connections_url ?? XERO_CONNECTIONS_URL, {
      headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
      timeoutMs: 30_000,
    }),
  );
  if (!res.ok) throw new Error(`Xero connections answered ${res.status}`);
  if (!Array.isArray(res.json)) throw new Error('Xero connections answered without a list of tenants');
  return (res.json as XeroTenant[]).filter((t) => t.tenantType === undefined || t.tenantType === 'ORGANISATION');
}
