// An OAuth simulator as strict as the real identity servers (issue #15): Xero's token endpoint (client authenticated
// by Basic or a public client_id; authorization code with PKCE S256; refresh tokens that rotate and work ONCE; access tokens of 30 minutes on an injectable clock; revocation),
// GET /connections, a tiny bearer-checked API route, and NetSuite's client-credentials token endpoint verifying the
// JWT assertion with the registered public key and issuing 60-minute tokens.
import { createHash, randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { importJWK, jwtVerify, type JWK } from 'jose';

/**
 * The client a token request authenticates as: HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1),
 * or a public client's client_id in the body; undefined when there is neither (Xero answers 401 invalid_client).
 */
function clientOf(authorization: string | undefined, form: Record<string, string>): string | undefined {
  if (authorization?.startsWith('Basic ')) {
    const decoded = Buffer.from(authorization.slice(6), 'base64').toString();
    const colon = decoded.indexOf(':');
    if (colon <= 0) return undefined;
    const decode = (part: string) => decodeURIComponent(part.replace(/\+/g, ' '));
    return decode(decoded.slice(0, colon)) || undefined;
  }
  return form.client_id || undefined;
}

export interface SimTenant {
  tenantId: string;
  tenantName: string;
  tenantType: 'ORGANISATION';
}

interface Grant {
  clientId: string;
  tenants: SimTenant[];
  revoked: boolean;
}

export class OAuthSim {
  readonly app: FastifyInstance;
  url = '';
  now = () => Date.now();
  /** Refresh tokens spent successfully, and presented again after being spent (refused). */
  refreshesSpent = 0;
  refreshesRefused = 0;
  readonly spentTokens = new Map<string, number>();
  apiCalls = 0;
  apiRejected = 0;
  ccTokensIssued = 0;
  ccRefused = 0;
  private grants: Grant[] = [];
  private codes = new Map<string, { grant: Grant; redirectUri: string; challenge: string }>();
  private refreshTokens = new Map<string, { grant: Grant; used: boolean }>();
  private accessTokens = new Map<string, { grant: Grant; expiresAt: number }>();
  private netsuiteClients = new Map<string, { certificateId: string; jwk: JWK; alg: string }>();
  private netsuiteTokens = new Map<string, number>();

  constructor(readonly tenants: SimTenant[] = [{ tenantId: 'tenant-northwind', tenantName: 'Northwind', tenantType: 'ORGANISATION' }]) {
    this.app = Fastify();
    this.app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
      done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    this.app.post('/connect/token', async (req, reply) => {
      const form = req.body as Record<string, string>;
      const grantType = form.grant_type;
      // Xero authenticates the client on both grants (client_secret_basic, or the client_id in the body with PKCE).
      const clientId = grantType === 'authorization_code' || grantType === 'refresh_token' ? clientOf(req.headers.authorization, form) : '';
      if (clientId === undefined) return reply.code(401).send({ error: 'invalid_client' });
      if (form.grant_type === 'authorization_code') {
        const code = this.codes.get(form.code ?? '');
        this.codes.delete(form.code ?? '');
        if (
          code?.grant.clientId !== clientId ||
          code.redirectUri !== form.redirect_uri ||
          createHash('sha256')
            .update(form.code_verifier ?? '')
            .digest('base64url') !== code.challenge
        )
          return reply.code(400).send({ error: 'invalid_grant' });
        return this.issue(code.grant);
      }
      if (form.grant_type === 'refresh_token') {
        const token = form.refresh_token ?? '';
        const entry = this.refreshTokens.get(token);
        this.spentTokens.set(token, (this.spentTokens.get(token) ?? 0) + 1);
        if (!entry || entry.used || entry.grant.revoked || entry.grant.clientId !== clientId) {
          this.refreshesRefused += 1;
          return reply.code(400).send({ error: 'invalid_grant' });
        }
        entry.used = true;
        this.refreshesSpent += 1;
        return this.issue(entry.grant);
      }
      if (form.grant_type === 'client_credentials') return this.clientCredentials(form, reply);
      return reply.code(400).send({ error: 'unsupported_grant_type' });
    });
    this.app.post('/services/rest/auth/oauth2/v1/token', async (req, reply) => {
      const form = req.body as Record<string, string>;
      if (form.grant_type !== 'client_credentials') return reply.code(400).send({ error: 'unsupported_grant_type' });
      return this.clientCredentials(form, reply);
    });
    this.app.get('/services/rest/ping', async (req, reply) => {
      this.apiCalls += 1;
      if (!this.checkNetsuiteBearer(req.headers.authorization)) {
        this.apiRejected += 1;
        return reply.code(401).send({ 'o:errorDetails': [{ detail: 'Invalid login attempt.', 'o:errorCode': 'INVALID_LOGIN' }] });
      }
      return { ok: true };
    });
    this.app.get('/connections', async (req, reply) => {
      const check = this.checkBearer(req.headers.authorization);
      if (!check.ok) return reply.code(401).send({ Title: 'Unauthorized' });
      return check.tenants;
    });
    this.app.get('/api/ping', async (req, reply) => {
      this.apiCalls += 1;
      const check = this.checkBearer(req.headers.authorization);
      const tenant = req.headers['xero-tenant-id'];
      if (!check.ok || !check.tenants.some((t) => t.tenantId === tenant)) {
        this.apiRejected += 1;
        return reply.code(401).send({ Title: 'Unauthorized', Detail: 'TokenExpired: token expired' });
      }
      return { ok: true };
    });
  }

  async start(): Promise<string> {
    this.url = await this.app.listen({ port: 0, host: '127.0.0.1' });
    return this.url;
  }

  async stop(): Promise<void> {
    await this.app.close();
  }

  private issue(grant: Grant) {
    const access = `xat_${randomBytes(12).toString('hex')}`;
    const refresh = `xrt_${randomBytes(12).toString('hex')}`;
    this.accessTokens.set(access, { grant, expiresAt: this.now() + 30 * 60_000 });
    this.refreshTokens.set(refresh, { grant, used: false });
    return { access_token: access, refresh_token: refresh, expires_in: 1800, token_type: 'Bearer' };
  }

  /** Stands in for the browser: the person consents; answers the code the redirect would carry. */
  authorizeCode(input: { client_id: string; redirect_uri: string; code_challenge: string; scope: string }): string {
    if (!input.scope.split(' ').includes('offline_access')) throw new Error('offline_access is required for a refresh token');
    const grant: Grant = { clientId: input.client_id, tenants: this.tenants, revoked: false };
    this.grants.push(grant);
    const code = `code_${randomBytes(8).toString('hex')}`;
    this.codes.set(code, { grant, redirectUri: input.redirect_uri, challenge: input.code_challenge });
    return code;
  }

  /** A token pair issued directly (a connection set up before the test), with the access token's remaining life. */
  grantTokens(clientId: string, accessLifeMs = 30 * 60_000): { access_token: string; refresh_token: string; expiresAt: number } {
    const grant: Grant = { clientId, tenants: this.tenants, revoked: false };
    this.grants.push(grant);
    const pair = this.issue(grant);
    const expiresAt = this.now() + accessLifeMs;
    this.accessTokens.get(pair.access_token)!.expiresAt = expiresAt;
    return { access_token: pair.access_token, refresh_token: pair.refresh_token, expiresAt };
  }

  /** The person disconnected the app (or Xero revoked the grant): every token of every grant stops working. */
  revoke(): void {
    for (const grant of this.grants) grant.revoked = true;
  }

  checkBearer(header: string | undefined): { ok: true; tenants: SimTenant[] } | { ok: false } {
    const token = header?.startsWith('Bearer ') ? header.slice(7) : '';
    const entry = this.accessTokens.get(token);
    if (!entry || entry.grant.revoked || entry.expiresAt <= this.now()) return { ok: false };
    return { ok: true, tenants: entry.grant.tenants };
  }

  // ---- NetSuite OAuth 2.0 client credentials ----

  registerNetsuiteClient(clientId: string, certificateId: string, publicJwk: JWK, alg = 'PS256'): void {
    this.netsuiteClients.set(clientId, { certificateId, jwk: publicJwk, alg });
  }

  checkNetsuiteBearer(header: string | undefined): boolean {
    const token = header?.startsWith('Bearer ') ? header.slice(7) : '';
    const until = this.netsuiteTokens.get(token);
    return until !== undefined && until > this.now();
  }

  private async clientCredentials(form: Record<string, string>, reply: { code(n: number): { send(b: unknown): unknown } }) {
    const refuse = () => {
      this.ccRefused += 1;
      return reply.code(400).send({ error: 'invalid_request' });
    };
    if (form.client_assertion_type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' || !form.client_assertion) return refuse();
    const [headerPart, payloadPart] = form.client_assertion.split('.');
    let iss: string;
    try {
      iss = JSON.parse(Buffer.from(payloadPart ?? '', 'base64url').toString()).iss;
      JSON.parse(Buffer.from(headerPart ?? '', 'base64url').toString());
    } catch {
      return refuse();
    }
    const client = this.netsuiteClients.get(iss);
    if (!client) return refuse();
    try {
      const { payload, protectedHeader } = await jwtVerify(form.client_assertion, await importJWK(client.jwk, client.alg), {
        algorithms: [client.alg],
        audience: `${this.url}/services/rest/auth/oauth2/v1/token`,
        currentDate: new Date(this.now()),
      });
      if (protectedHeader.kid !== client.certificateId || protectedHeader.typ !== 'JWT') return refuse();
      if (typeof payload.exp !== 'number' || typeof payload.iat !== 'number' || payload.exp - payload.iat > 3600) return refuse();
      const scope = payload.scope;
      if (!(Array.isArray(scope) ? scope.includes('rest_webservices') : String(scope).split(/[ ,]/).includes('rest_webservices')))
        return refuse();
    } catch {
      return refuse();
    }
    const token = `nsat_${randomBytes(12).toString('hex')}`;
    this.netsuiteTokens.set(token, this.now() + 3600_000);
    this.ccTokensIssued += 1;
    return { access_token: token, expires_in: '3600', token_type: 'bearer' };
  }

  /** Revokes every NetSuite client (the integration record was disabled). */
  revokeNetsuite(): void {
    this.netsuiteClients.clear();
  }
}
