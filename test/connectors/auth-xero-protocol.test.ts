// The Xero token endpoint's protocol as oauth4webapi speaks it: PKCE S256, client_secret_basic or the client_id in the
// body, plain http only to loopback, refusals as OAuth error codes, bad answers refused, transport failures transient.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { TargetError } from '../../src/post/target.js';
import { OAuthSim } from '../support/oauth-sim.js';
import {
  isLoopbackHttp,
  xeroAuthorizationServer,
  xeroAuthorizeUrl,
  xeroExchangeCode,
  xeroPkce,
  xeroTokenRequest,
  XERO_AUTHORIZE_URL,
  XERO_ISSUER,
  XERO_TOKEN_URL,
} from '../../src/connectors/auth/xero.js';

interface Seen {
  headers: IncomingMessage['headers'];
  form: URLSearchParams;
}
let server: Server;
let url = '';
let seen: Seen[] = [];
let answer: { status: number; body: string; headers?: Record<string, string> } = { status: 200, body: '{}' };

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      seen.push({ headers: req.headers, form: new URLSearchParams(body) });
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/connect/token`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const answerWith = (status: number, body: unknown, headers?: Record<string, string>) => {
  seen = [];
  answer = { status, body: typeof body === 'string' ? body : JSON.stringify(body), headers };
};
const TOKENS = { access_token: 'xat_1', refresh_token: 'xrt_1', expires_in: 1800, token_type: 'Bearer', scope: 'offline_access' };
const refresh = (clientSecret?: string, tokenUrl = url) =>
  xeroTokenRequest(tokenUrl, 'client-1', clientSecret, { grant_type: 'refresh_token', refresh_token: 'xrt_0' });

test("Xero's documented endpoints are the defaults; a connection's URLs override them", () => {
  const as = xeroAuthorizationServer();
  assert.deepEqual([as.issuer, as.authorization_endpoint, as.token_endpoint], [XERO_ISSUER, XERO_AUTHORIZE_URL, XERO_TOKEN_URL]);
  assert.equal(XERO_ISSUER, 'https://identity.xero.com');
  assert.equal(xeroAuthorizationServer({ token_url: url }).token_endpoint, url);
  const authorize = new URL(
    xeroAuthorizeUrl(
      {},
      { clientId: 'c', redirectUri: 'http://127.0.0.1:1/callback', pkce: { verifier: 'v', challenge: 'ch', state: 'st' } },
    ),
  );
  assert.equal(`${authorize.origin}${authorize.pathname}`, XERO_AUTHORIZE_URL);
});

test('PKCE: a 43-character verifier, its S256 challenge, a fresh state each time', async () => {
  const a = await xeroPkce();
  const b = await xeroPkce();
  assert.match(a.verifier, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(a.challenge, createHash('sha256').update(a.verifier).digest('base64url'));
  assert.notEqual(a.verifier, b.verifier);
  assert.notEqual(a.state, b.state);
});

test('plain http only to a loopback host', async () => {
  for (const ok of ['http://127.0.0.1:9/t', 'http://localhost/t', 'http://[::1]:9/t', 'http://127.8.9.10/t'])
    assert.ok(isLoopbackHttp(ok), ok);
  for (const no of ['https://127.0.0.1/t', 'http://example.com/t', 'http://127.0.0.1.example.com/t', 'http://10.0.0.1/t', 'not a url'])
    assert.ok(!isLoopbackHttp(no), no);
  answerWith(200, TOKENS);
  await assert.rejects(refresh('s', 'http://identity.example.invalid/connect/token'), /only requests to HTTPS are allowed/);
  assert.equal(seen.length, 0, 'nothing was sent over plain http to a non-loopback host');
});

test('refresh_token grant with client_secret_basic: the tokens; with no secret the client_id goes in the body', async () => {
  answerWith(200, TOKENS);
  assert.deepEqual(await refresh('s3cr:et'), { access_token: 'xat_1', refresh_token: 'xrt_1', expires_in: 1800 });
  const [basic] = seen;
  // RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic; the server decodes them back.
  const [scheme, encoded] = (basic!.headers.authorization ?? '').split(' ');
  assert.equal(scheme, 'Basic');
  const [id, secret] = Buffer.from(encoded!, 'base64').toString().split(':');
  assert.deepEqual([decodeURIComponent(id!), decodeURIComponent(secret!)], ['client-1', 's3cr:et']);
  assert.deepEqual(Object.fromEntries(basic!.form), { grant_type: 'refresh_token', refresh_token: 'xrt_0' });
  assert.match(basic!.headers['content-type'] ?? '', /^application\/x-www-form-urlencoded/);
  answerWith(200, { ...TOKENS, expires_in: undefined });
  assert.equal(((await refresh()) as { expires_in: number }).expires_in, 1800, 'expires_in defaults to 30 minutes');
  assert.equal(seen[0]!.headers.authorization, undefined);
  assert.equal(seen[0]!.form.get('client_id'), 'client-1');
});

test('authorization_code grant: code, redirect_uri and code_verifier sent; no ID token demanded', async () => {
  answerWith(200, TOKENS);
  const tokens = await xeroExchangeCode(
    { token_url: url },
    { clientId: 'client-1', code: 'c0de', redirectUri: 'http://127.0.0.1:1/cb', verifier: 'v'.repeat(43) },
  );
  assert.equal(tokens.refresh_token, 'xrt_1');
  assert.deepEqual(Object.fromEntries(seen[0]!.form), {
    grant_type: 'authorization_code',
    code: 'c0de',
    redirect_uri: 'http://127.0.0.1:1/cb',
    code_verifier: 'v'.repeat(43),
    client_id: 'client-1',
  });
});

test('refusals answer the OAuth error code and the status, never a secret', async () => {
  answerWith(400, { error: 'invalid_grant', error_description: 'spent' });
  assert.deepEqual(await refresh('s'), { refused: 'invalid_grant', status: 400 });
  answerWith(401, { error: 'invalid_client' });
  assert.deepEqual(await refresh('s'), { refused: 'invalid_client', status: 401 });
  answerWith(401, '', { 'www-authenticate': 'Basic realm="xero", error="invalid_client"' });
  assert.deepEqual(await refresh('s'), { refused: 'invalid_client', status: 401 });
  answerWith(400, '<html>bad</html>', { 'content-type': 'text/html' });
  assert.deepEqual(await refresh('s'), { refused: 'http_400', status: 400 });
  answerWith(400, { error: 'invalid_grant' });
  await assert.rejects(
    xeroExchangeCode({ token_url: url }, { clientId: 'c', code: 'x', redirectUri: 'http://127.0.0.1:1/cb', verifier: 'v'.repeat(43) }),
    /^Error: Xero refused the authorization code: invalid_grant$/,
  );
});

test('answers oauth4webapi rightly refuses are errors naming no token', async () => {
  answerWith(503, { error: 'temporarily_unavailable' });
  await assert.rejects(refresh('s'), /^Error: Xero token endpoint answered 503$/);
  answerWith(200, { ...TOKENS, token_type: undefined });
  await assert.rejects(refresh('s'), (error: Error) => /not valid OAuth 2.0/.test(error.message) && !/xat_1|xrt_1/.test(error.message));
  answerWith(200, { ...TOKENS, token_type: 'mac' });
  await assert.rejects(refresh('s'), /not valid OAuth 2.0/);
  answerWith(200, { ...TOKENS, refresh_token: undefined });
  await assert.rejects(refresh('s'), /^Error: Xero token endpoint answered without access_token and refresh_token$/);
  answerWith(200, 'not json');
  await assert.rejects(refresh('s'), /not valid OAuth 2.0/);
});

test('a transport failure is a transient TargetError', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await assert.rejects(
    refresh('s', `http://127.0.0.1:${port}/connect/token`),
    (error: unknown) =>
      error instanceof TargetError && error.details.permanent === false && /Xero token endpoint POST \/connect\/token/.test(error.message),
  );
});

test('the simulator authenticates the client as Xero does: none is invalid_client, another client is invalid_grant', async () => {
  const sim = new OAuthSim();
  await sim.start();
  try {
    const tokenUrl = `${sim.url}/connect/token`;
    const pair = sim.grantTokens('client-1');
    const bare = await fetch(tokenUrl, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: pair.refresh_token }),
    });
    assert.equal(bare.status, 401);
    assert.deepEqual(await bare.json(), { error: 'invalid_client' });
    const other = await xeroTokenRequest(tokenUrl, 'client-2', 'secret', {
      grant_type: 'refresh_token',
      refresh_token: pair.refresh_token,
    });
    assert.deepEqual(other, { refused: 'invalid_grant', status: 400 });
    const own = await xeroTokenRequest(tokenUrl, 'client-1', 'secret', { grant_type: 'refresh_token', refresh_token: pair.refresh_token });
    assert.ok('access_token' in own && own.access_token.startsWith('xat_'));
    const publicClient = sim.grantTokens('client-pkce');
    const none = await xeroTokenRequest(tokenUrl, 'client-pkce', undefined, {
      grant_type: 'refresh_token',
      refresh_token: publicClient.refresh_token,
    });
    assert.ok('access_token' in none);
  } finally {
    await sim.stop();
  }
});
