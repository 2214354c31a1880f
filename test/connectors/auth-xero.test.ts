// Xero OAuth (issue #15): three workers sharing one rotating refresh token never spend it twice; a revoked grant puts
// the connection in needs_reauthorization with an exception, and connecting again clears both; no secret leaks.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { ReauthorizationRequired, type ConnectionSettings } from '../../src/domain/erp.js';
import { directCaller } from '../../src/connectors/caller.js';
import { saveConnections } from '../../src/connectors/connections.js';
import { readCredentials, saveCredentials } from '../../src/connectors/auth/credentials.js';
import { markReauthorized, reauthorizationExceptionId } from '../../src/connectors/auth/reauthorization.js';
import { secretKeyFrom } from '../../src/connectors/auth/secret-box.js';
import { xeroAuthorizeUrl, xeroAuthorizer, xeroExchangeCode, xeroPkce, xeroTenants, XERO_SCOPES } from '../../src/connectors/auth/xero.js';
import { testStore } from '../support/db.js';
import { OAuthSim } from '../support/oauth-sim.js';
import type { Store } from '../../src/store/store.js';

let store: Store;
let sim: OAuthSim;
const key = secretKeyFrom(randomBytes(32));
const CLIENT_SECRET = 'xero-client-secret-DO-NOT-LEAK';

before(async () => {
  store = await testStore();
  sim = new OAuthSim();
  await sim.start();
});
after(async () => {
  await sim.stop();
  await store.close();
});

const settingsOf = (name: string): ConnectionSettings => ({
  name,
  kind: 'xero',
  legal_entities: [`le-${name}`],
  base_url: sim.url,
  token_url: `${sim.url}/connect/token`,
  authorize_url: `${sim.url}/authorize`,
  connections_url: `${sim.url}/connections`,
});

async function connect(settings: ConnectionSettings, accessLifeMs: number) {
  const saved = await saveConnections(store.pool, [settings]);
  assert.ok(saved.ok, JSON.stringify(saved));
  const pair = sim.grantTokens('client-1', accessLifeMs);
  await saveCredentials(
    store.pool,
    settings.name,
    {
      access_token: pair.access_token,
      refresh_token: pair.refresh_token,
      tenant_id: 'tenant-northwind',
      client_id: 'client-1',
      client_secret: CLIENT_SECRET,
    },
    new Date(pair.expiresAt),
    key,
  );
  return pair;
}

test('three workers sharing one expired access token: every call succeeds and each refresh token is spent exactly once', async () => {
  const settings = settingsOf('xero-shared');
  const pair = await connect(settings, -1000); // already expired
  const pools = [0, 1, 2].map(() => new pg.Pool({ connectionString: store.url, max: 4 }));
  try {
    const callers = pools.map((pool) => directCaller(settings.name, xeroAuthorizer(pool, settings, key)));
    const results = await Promise.all(
      callers.flatMap((caller) => Array.from({ length: 5 }, () => caller.call('GET', `${sim.url}/api/ping`))),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      Array(15).fill(200),
    );
    assert.equal(sim.refreshesRefused, 0);
    assert.ok(sim.refreshesSpent >= 1);
    for (const [, times] of sim.spentTokens) assert.equal(times, 1, `refresh token spent ${times} times`);
    assert.equal(sim.spentTokens.get(pair.refresh_token), 1);
    const stored = await readCredentials(store.pool, settings.name, key);
    assert.notEqual(stored!.secrets.refresh_token, pair.refresh_token);
    assert.equal(stored!.generation, 1 + sim.refreshesSpent);

    // A 401 on a token the store still holds (expired at the ERP before its recorded end): one refresh, shared.
    sim.now = () => Date.now() + 31 * 60_000; // the ERP's clock: the access token just issued has expired
    const spentBefore = sim.refreshesSpent;
    const again = await Promise.all(
      callers.flatMap((caller) => Array.from({ length: 3 }, () => caller.call('GET', `${sim.url}/api/ping`))),
    );
    assert.deepEqual(
      again.map((r) => r.status),
      Array(9).fill(200),
    );
    assert.equal(sim.refreshesSpent, spentBefore + 1, 'the 401s of three workers led to exactly one refresh');
    assert.equal(sim.refreshesRefused, 0);
    for (const [, times] of sim.spentTokens) assert.equal(times, 1);
  } finally {
    sim.now = () => Date.now();
    await Promise.all(pools.map((p) => p.end()));
  }
});

test('a revoked grant: needs_reauthorization, an open exception in integration_support, ReauthorizationRequired; connecting again clears it', async () => {
  const settings = settingsOf('xero-revoked');
  await connect(settings, -1000);
  await store.pool.query(`UPDATE erp_connections SET status = 'active' WHERE name = $1`, [settings.name]);
  sim.revoke();
  const caller = directCaller(settings.name, xeroAuthorizer(store.pool, settings, key));
  await assert.rejects(
    caller.call('GET', `${sim.url}/api/ping`),
    (error: unknown) => error instanceof ReauthorizationRequired && error.connection === settings.name,
  );
  const status = (await store.pool.query('SELECT status, status_reason FROM erp_connections WHERE name = $1', [settings.name])).rows[0];
  assert.equal(status.status, 'needs_reauthorization');
  const id = reauthorizationExceptionId(settings.name);
  const exc = (await store.pool.query('SELECT owner_queue, status, cleared_at, subject, connector FROM exceptions WHERE id = $1', [id]))
    .rows[0];
  assert.deepEqual(
    { ...exc },
    { owner_queue: 'integration_support', status: 'open', cleared_at: null, subject: settings.name, connector: settings.name },
  );

  // Connect again (the connect command's path): code with PKCE, tenants, sealed save and markReauthorized in one transaction.
  const pkce = await xeroPkce();
  const redirectUri = 'http://127.0.0.1:8765/callback';
  const url = new URL(xeroAuthorizeUrl(settings, { clientId: 'client-1', redirectUri, pkce }));
  assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(url.searchParams.get('scope'), XERO_SCOPES);
  const code = sim.authorizeCode({
    client_id: 'client-1',
    redirect_uri: redirectUri,
    code_challenge: url.searchParams.get('code_challenge')!,
    scope: url.searchParams.get('scope')!,
  });
  await assert.rejects(
    xeroExchangeCode(settings, { clientId: 'client-1', code, redirectUri, verifier: 'wrong-verifier-wrong-verifier-wrong-verifier' }),
    /invalid_grant/,
  );
  const code2 = sim.authorizeCode({ client_id: 'client-1', redirect_uri: redirectUri, code_challenge: pkce.challenge, scope: XERO_SCOPES });
  const tokens = await xeroExchangeCode(settings, { clientId: 'client-1', code: code2, redirectUri, verifier: pkce.verifier });
  const tenants = await xeroTenants(settings, tokens.access_token);
  assert.deepEqual(
    tenants.map((t) => t.tenantId),
    ['tenant-northwind'],
  );
  const client = await store.pool.connect();
  try {
    await client.query('BEGIN');
    await saveCredentials(
      client,
      settings.name,
      {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        tenant_id: tenants[0]!.tenantId,
        client_id: 'client-1',
        client_secret: CLIENT_SECRET,
      },
      new Date(Date.now() + tokens.expires_in * 1000),
      key,
    );
    await markReauthorized(client, settings.name, 'user:test');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  assert.equal((await store.pool.query('SELECT status FROM erp_connections WHERE name = $1', [settings.name])).rows[0].status, 'active');
  const cleared = (await store.pool.query('SELECT cleared_at FROM exceptions WHERE id = $1', [id])).rows[0];
  assert.ok(cleared.cleared_at instanceof Date);
  const events = (await store.pool.query('SELECT action FROM exception_events WHERE exception_id = $1 ORDER BY ordinal', [id])).rows.map(
    (r) => r.action,
  );
  assert.deepEqual(events, ['open', 'clear']);
  const res = await directCaller(settings.name, xeroAuthorizer(store.pool, settings, key)).call('GET', `${sim.url}/api/ping`);
  assert.equal(res.status, 200);

  // No secret anywhere a person or a log reads.
  const stored = await readCredentials(store.pool, settings.name, key);
  const secrets = [CLIENT_SECRET, stored!.secrets.access_token!, stored!.secrets.refresh_token!];
  const texts = [
    JSON.stringify((await store.pool.query('SELECT * FROM audit_log')).rows),
    JSON.stringify((await store.pool.query('SELECT * FROM exceptions')).rows),
    JSON.stringify((await store.pool.query('SELECT * FROM exception_events')).rows),
    JSON.stringify((await store.pool.query('SELECT * FROM erp_connections')).rows),
    (await store.pool.query('SELECT sealed FROM erp_credentials')).rows.map((r) => (r.sealed as Buffer).toString('latin1')).join(''),
  ];
  for (const secret of secrets) for (const text of texts) assert.ok(!text.includes(secret), 'a secret leaked');
});

test('revoked again after a reconnect: the cleared exception reappears', async () => {
  const settings = settingsOf('xero-revoked');
  sim.revoke();
  sim.now = () => Date.now() + 31 * 60_000;
  try {
    await assert.rejects(
      directCaller(settings.name, xeroAuthorizer(store.pool, settings, key)).call('GET', `${sim.url}/api/ping`),
      ReauthorizationRequired,
    );
  } finally {
    sim.now = () => Date.now();
  }
  const id = reauthorizationExceptionId(settings.name);
  assert.equal((await store.pool.query('SELECT cleared_at FROM exceptions WHERE id = $1', [id])).rows[0].cleared_at, null);
  const events = (await store.pool.query('SELECT action FROM exception_events WHERE exception_id = $1 ORDER BY ordinal', [id])).rows.map(
    (r) => r.action,
  );
  assert.deepEqual(events, ['open', 'clear', 'reappear']);
  assert.equal(
    (await store.pool.query('SELECT status FROM erp_connections WHERE name = $1', [settings.name])).rows[0].status,
    'needs_reauthorization',
  );
});
