// Xero OAuth 2.0 (issue #15) on oauth4webapi: bearer access tokens of 30 minutes, refresh tokens that rotate and work
// once. A refresh runs in ONE transaction holding erp_credentials' row lock: another worker that already refreshed is
// seen by comparing the stored access token with the rejected one, and the new pair is saved before the lock is released.
// Xero: https://developer.xero.com/documentation/guides/oauth2/auth-flow (PKCE, refresh_token grant, /connections).
import * as oauth from 'oauth4webapi';
import type pg from 'pg';
import { ReauthorizationRequired, type ConnectionSettings } from '../../domain/erp.js';
import { TargetError } from '../../post/target.js';
import { transaction } from '../../store/store.js';
import type { Authorizer } from '../caller.js';
import { httpSend, readAnswer } from '../http.js';
import { readCredentials, saveCredentials, type Secrets } from './credentials.js';
import { markNeedsReauthorization } from './reauthorization.js';
import type { SecretKey } from './secret-box.js';

export const XERO_ISSUER = 'https://identity.xero.com';
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
const TOKEN_TIMEOUT_MS = 30_000;

export interface XeroTokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

export type XeroRefusal = { refused: string; status: number };

/** Xero's authorization server as documented (no discovery at run time); the endpoints a connection sets override it. */
export function xeroAuthorizationServer(settings: Pick<ConnectionSettings, 'token_url' | 'authorize_url'> = {}): oauth.AuthorizationServer {
  return {
    issuer: XERO_ISSUER,
    authorization_endpoint: settings.authorize_url ?? XERO_AUTHORIZE_URL,
    token_endpoint: settings.token_url ?? XERO_TOKEN_URL,
    code_challenge_methods_supported: ['S256'],
  };
}

/** Plain http is allowed only to a loopback host (the test simulators); https and every other host stay enforced. */
export function isLoopbackHttp(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'http:') return false;
  return parsed.hostname === 'localhost' || parsed.hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(parsed.hostname);
}

/** fetch for oauth4webapi: a transport failure (refused, reset, DNS, timeout) is a transient TargetError, as in httpSend. */
const transport = async (url: string, init: oauth.CustomFetchOptions<'POST', URLSearchParams>): Promise<Response> => {
  try {
    return await fetch(url, init);
  } catch (error) {
    throw new TargetError(`Xero token endpoint POST ${new URL(url).pathname}: ${(error as Error).message}`, {
      permanent: false,
      code: (error as Error).name,
    });
  }
};

function requestOptions(as: oauth.AuthorizationServer): oauth.TokenEndpointRequestOptions {
  return {
    signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
    [oauth.customFetch]: transport,
    [oauth.allowInsecureRequests]: isLoopbackHttp(String(as.token_endpoint)),
  };
}

/** The OAuth error code of a refused answer (400/401), never a secret. */
function refusalCode(error: unknown, status: number): string {
  if (error instanceof oauth.ResponseBodyError) return error.error;
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    const code = error.cause.find((challenge) => typeof challenge.parameters.error === 'string')?.parameters.error;
    if (code) return code;
  }
  return `http_${status}`;
}

/** Reads a token endpoint answer with oauth4webapi: the tokens, `{refused}` on 400/401, an Error otherwise. */
async function tokenAnswer(
  response: Response,
  read: (response: Response) => Promise<oauth.TokenEndpointResponse>,
): Promise<XeroTokens | XeroRefusal> {
  let json: oauth.TokenEndpointResponse;
  try {
    json = await read(response);
  } catch (error) {
    await response.body?.cancel().catch(() => undefined);
    if (response.status === 400 || response.status === 401)
      return { refused: refusalCode(error, response.status), status: response.status };
    if (response.status !== 200) throw new Error(`Xero token endpoint answered ${response.status}`, { cause: error });
    // oauth4webapi's error carries the body (tokens included) as its cause: only its message travels on.
    if (error instanceof oauth.OperationProcessingError || error instanceof oauth.UnsupportedOperationError)
      // eslint-disable-next-line preserve-caught-error -- the cause would carry the access and refresh tokens
      throw new Error(`Xero token endpoint answered a token response that is not valid OAuth 2.0: ${error.message}`);
    throw error;
  }
  if (typeof json.refresh_token !== 'string') throw new Error('Xero token endpoint answered without access_token and refresh_token');
  return { access_token: json.access_token, refresh_token: json.refresh_token, expires_in: json.expires_in ?? 1800 };
}

export type XeroGrant =
  | { grant_type: 'refresh_token'; refresh_token: string }
  | { grant_type: 'authorization_code'; code: string; redirect_uri: string; code_verifier: string };

/**
 * One grant at Xero's token endpoint through oauth4webapi: client_secret_basic for a web app, the client_id in the
 * body for a PKCE app without a secret. Answers the tokens, or `{refused}` with the OAuth error code (never a secret).
 */
export async function xeroTokenRequest(
  tokenUrl: string,
  clientId: string,
  clientSecret: string | undefined,
  grant: XeroGrant,
): Promise<XeroTokens | XeroRefusal> {
  const as = xeroAuthorizationServer({ token_url: tokenUrl });
  const client: oauth.Client = { client_id: clientId };
  const auth = clientSecret ? oauth.ClientSecretBasic(clientSecret) : oauth.None();
  const options = requestOptions(as);
  if (grant.grant_type === 'refresh_token') {
    const response = await oauth.refreshTokenGrantRequest(as, client, auth, grant.refresh_token, options);
    return tokenAnswer(response, (r) => oauth.processRefreshTokenResponse(as, client, r));
  }
  // The caller has checked the callback's state and error (accrue connect); the code alone goes to the grant.
  const callback = oauth.validateAuthResponse(as, client, new URLSearchParams({ code: grant.code }), oauth.skipStateCheck);
  const response = await oauth.authorizationCodeGrantRequest(as, client, auth, callback, grant.redirect_uri, grant.code_verifier, options);
  // No nonce, max_age nor requireIdToken: Xero issues no ID token without the openid scope, and none is demanded.
  return tokenAnswer(response, (r) => oauth.processAuthorizationCodeResponse(as, client, r));
}

export interface XeroAuthorizerOptions {
  now?: () => number;
}

type Cached = { secrets: Secrets; expiresAt: number };

/**
 * Refreshes unless the stored token is no longer `rejectedAccess` (another worker refreshed), or, with `onlyIfExpiring`,
 * unless it no longer ends within the margin: one transaction, the row lock held from the read to the save. Answers
 * what is stored now, or the OAuth error code Xero refused the refresh token with.
 */
async function refreshUnderLock(
  pool: pg.Pool,
  settings: ConnectionSettings,
  key: SecretKey,
  now: () => number,
  rejectedAccess: string | undefined,
  onlyIfExpiring: boolean,
): Promise<Cached | { refused: string }> {
  return transaction(pool, async (client) => {
    const stored = await readCredentials(client, settings.name, key, { forUpdate: true });
    if (!stored?.secrets.refresh_token) throw new ReauthorizationRequired(settings.name, 'no credentials stored: run accrue connect xero');
    const expiresAt = stored.accessExpiresAt?.getTime() ?? 0;
    const alreadyNew = onlyIfExpiring ? expiresAt - now() > XERO_REFRESH_MARGIN_MS : stored.secrets.access_token !== rejectedAccess;
    if (alreadyNew) return { secrets: stored.secrets, expiresAt };
    const answer = await xeroTokenRequest(
      settings.token_url ?? XERO_TOKEN_URL,
      stored.secrets.client_id ?? '',
      stored.secrets.client_secret,
      {
        grant_type: 'refresh_token',
        refresh_token: stored.secrets.refresh_token,
      },
    );
    if ('refused' in answer) return { refused: answer.refused };
    const secrets = { ...stored.secrets, access_token: answer.access_token, refresh_token: answer.refresh_token };
    const at = new Date(now() + answer.expires_in * 1000);
    await saveCredentials(client, settings.name, secrets, at, key);
    return { secrets, expiresAt: at.getTime() };
  });
}

export function xeroAuthorizer(
  pool: pg.Pool,
  settings: ConnectionSettings,
  key: SecretKey,
  options: XeroAuthorizerOptions = {},
): Authorizer {
  const now = options.now ?? Date.now;
  let cached: Cached | undefined;

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

  const refreshFrom = async (rejectedAccess: string | undefined, onlyIfExpiring: boolean): Promise<Cached> => {
    const outcome = await refreshUnderLock(pool, settings, key, now, rejectedAccess, onlyIfExpiring);
    if (!('refused' in outcome)) return (cached = outcome);
    cached = undefined;
    const reason = `Xero refused the refresh token: ${outcome.refused}`;
    await markNeedsReauthorization(pool, settings.name, reason);
    throw new ReauthorizationRequired(settings.name, reason);
  };

  return {
    async authorize() {
      let current = cached ?? (await load());
      if (current.expiresAt - now() <= XERO_REFRESH_MARGIN_MS) {
        current = await load(); // another worker may have refreshed already
        if (current.expiresAt - now() <= XERO_REFRESH_MARGIN_MS) current = await refreshFrom(undefined, true);
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

/** A PKCE verifier, its S256 challenge and a state, from oauth4webapi. */
export async function xeroPkce(): Promise<XeroPkce> {
  const verifier = oauth.generateRandomCodeVerifier();
  return { verifier, challenge: await oauth.calculatePKCECodeChallenge(verifier), state: oauth.generateRandomState() };
}

export function xeroAuthorizeUrl(
  settings: Pick<ConnectionSettings, 'authorize_url'>,
  input: { clientId: string; redirectUri: string; pkce: XeroPkce; scopes?: string },
): string {
  const url = new URL(String(xeroAuthorizationServer(settings).authorization_endpoint));
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
