// NetSuite OAuth 2.0 client credentials (machine to machine, issue #15): a JWT assertion signed with the certificate's
// private key (Oracle: "OAuth 2.0 Client Credentials (M2M) Setup": header kid = certificate id, typ JWT; claims
// iss = client id, scope = ['rest_webservices'], aud = token endpoint, iat, exp ≤ iat + 1 h; alg PS256/PS384/PS512 or
// ES256/ES384/ES512), exchanged at <account>.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token. The 1-hour
// access token is sealed in erp_credentials so every worker shares it, renewed under the row lock 5 minutes before
// its end or after a 401; a refused exchange puts the connection in needs_reauthorization.
import { transaction } from '../../store/store.js';
import { importPKCS8, SignJWT } from 'jose';
import type pg from 'pg';
import { ReauthorizationRequired, type ConnectionSettings } from '../../domain/erp.js';
import type { Authorizer } from '../caller.js';
import { baseUrl } from '../connections.js';
import { httpSend, jsonRecord, readAnswer } from '../http.js';
import { readCredentials, saveCredentials, type Secrets } from './credentials.js';
import { markNeedsReauthorization } from './reauthorization.js';
import type { SecretKey } from './secret-box.js';

export const NETSUITE_RENEW_MARGIN_MS = 5 * 60_000;
export const NETSUITE_ASSERTION_ALG = 'PS256';

export const netsuiteTokenUrl = (settings: ConnectionSettings): string =>
  settings.token_url ?? `${baseUrl(settings)}/services/rest/auth/oauth2/v1/token`;

/** Exchanges a fresh assertion for an access token; `{refused}` carries NetSuite's OAuth error code, never a secret. */
export async function netsuiteClientCredentialsToken(
  tokenUrl: string,
  input: { clientId: string; certificateId: string; privateKeyPem: string; alg?: string },
  now: () => number = Date.now,
): Promise<{ access_token: string; expires_in: number } | { refused: string }> {
  const alg = input.alg ?? NETSUITE_ASSERTION_ALG;
  const iat = Math.floor(now() / 1000);
  let assertion: string;
  try {
    assertion = await new SignJWT({ scope: ['rest_webservices'] })
      .setProtectedHeader({ alg, kid: input.certificateId, typ: 'JWT' })
      .setIssuer(input.clientId)
      .setAudience(tokenUrl)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(await importPKCS8(input.privateKeyPem, alg));
  } catch (error) {
    throw new Error(`the NetSuite private key cannot sign ${alg}: ${(error as Error).name} (a PKCS#8 PEM RSA key is needed for PS256)`, {
      cause: error,
    });
  }
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  });
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const res = await readAnswer(await httpSend('NetSuite token endpoint', 'POST', tokenUrl, { headers, body, timeoutMs: 30_000 }));
  const json = jsonRecord(res);
  if (res.status === 400 || res.status === 401 || res.status === 403)
    return { refused: typeof json.error === 'string' ? json.error : `http_${res.status}` };
  if (!res.ok || typeof json.access_token !== 'string') throw new Error(`NetSuite token endpoint answered ${res.status}`);
  return { access_token: json.access_token, expires_in: Number(json.expires_in ?? 3600) || 3600 };
}

export function netsuiteClientCredentialsAuthorizer(
  pool: pg.Pool,
  settings: ConnectionSettings,
  key: SecretKey,
  options: { now?: () => number } = {},
): Authorizer {
  const now = options.now ?? Date.now;
  const tokenUrl = netsuiteTokenUrl(settings);
  let cached: { token: string; expiresAt: number } | undefined;

  const renew = async (rejected: string | undefined): Promise<void> => {
    let refused: string | undefined;
    await transaction(pool, async (client) => {
      const stored = await readCredentials(client, settings.name, key, { forUpdate: true });
      const s: Secrets | undefined = stored?.secrets;
      if (!s?.client_id || !s.certificate_id || !s.private_key)
        throw new ReauthorizationRequired(settings.name, 'no client-credentials secrets stored: run accrue connect netsuite');
      const expiresAt = stored!.accessExpiresAt?.getTime() ?? 0;
      const usable = s.access_token && s.access_token !== rejected && expiresAt - now() > NETSUITE_RENEW_MARGIN_MS;
      if (usable) cached = { token: s.access_token!, expiresAt };
      else {
        const answer = await netsuiteClientCredentialsToken(
          tokenUrl,
          { clientId: s.client_id, certificateId: s.certificate_id, privateKeyPem: s.private_key },
          now,
        );
        if ('refused' in answer) refused = answer.refused;
        else {
          const at = new Date(now() + answer.expires_in * 1000);
          await saveCredentials(client, settings.name, { ...s, access_token: answer.access_token }, at, key);
          cached = { token: answer.access_token, expiresAt: at.getTime() };
        }
      }
    });
    if (refused !== undefined) {
      cached = undefined;
      const reason = `NetSuite refused the client-credentials exchange: ${refused}`;
      await markNeedsReauthorization(pool, settings.name, reason);
      throw new ReauthorizationRequired(settings.name, reason);
    }
  };

  return {
    async authorize() {
      if (!cached || cached.expiresAt - now() <= NETSUITE_RENEW_MARGIN_MS) await renew(undefined);
      return { authorization: `Bearer ${cached!.token}` };
    },
    async refresh(rejected) {
      const auth = rejected.authorization ?? '';
      await renew(auth.startsWith('Bearer ') ? auth.slice(7) : undefined);
    },
  };
}
