// NetSuite OAuth 2.0 client credentials: the token is obtained once and shared by every worker through the store,
// renewed 5 minutes before its hour ends and after a 401; a refused exchange → needs_reauthorization.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import pg from 'pg';
import { ReauthorizationRequired, type ConnectionSettings } from '../../src/domain/erp.js';
import { directCaller } from '../../src/connectors/caller.js';
import { saveConnections } from '../../src/connectors/connections.js';
import { authorizerFor } from '../../src/connectors/auth/index.js';
import { saveCredentials } from '../../src/connectors/auth/credentials.js';
import { reauthorizationExceptionId } from '../../src/connectors/auth/reauthorization.js';
import { netsuiteClientCredentialsAuthorizer } from '../../src/connectors/auth/netsuite-client-credentials.js';
import { secretKeyFrom } from '../../src/connectors/auth/secret-box.js';
import { testStore } from '../support/db.js';
import { OAuthSim } from '../support/oauth-sim.js';
import type { Store } from '../../src/store/store.js';

let store: Store;
let sim: OAuthSim;
const key = secretKeyFrom(randomBytes(32));

before(async () => {
  store = await testStore();
  sim = new OAuthSim();
  await sim.start();
});
after(async () => {
  await sim.stop();
  await store.close();
});

test('one token obtained and shared by two authorizers, renewed when near its end; a refused exchange needs reauthorization', async () => {
  const { publicKey, privateKey } = await generateKeyPair('PS256', { extractable: true });
  sim.registerNetsuiteClient('ns-client', 'cert-1', await exportJWK(publicKey));
  const pem = await exportPKCS8(privateKey);
  const settings: ConnectionSettings = {
    name: 'ns-m2m',
    kind: 'netsuite',
    legal_entities: ['le-ns'],
    account_id: '1234567_SB1',
    auth: 'client_credentials',
    base_url: sim.url,
  };
  assert.ok((await saveConnections(store.pool, [settings])).ok);
  await saveCredentials(store.pool, settings.name, { client_id: 'ns-client', certificate_id: 'cert-1', private_key: pem }, null, key);
  let clock = Date.now();
  const now = () => clock;
  sim.now = now;
  const pools = [0, 1].map(() => new pg.Pool({ connectionString: store.url, max: 3 }));
  try {
    const callers = pools.map((pool) => directCaller(settings.name, netsuiteClientCredentialsAuthorizer(pool, settings, key, { now })));
    const url = `${sim.url}/services/rest/ping`;
    const first = await Promise.all(callers.flatMap((c) => [c.call('GET', url), c.call('GET', url), c.call('GET', url)]));
    assert.deepEqual(
      first.map((r) => r.status),
      Array(6).fill(200),
    );
    assert.equal(sim.ccTokensIssued, 1, 'one token for both workers');

    clock += 50 * 60_000; // 10 minutes left: still used
    await Promise.all(callers.map((c) => c.call('GET', url)));
    assert.equal(sim.ccTokensIssued, 1);
    clock += 6 * 60_000; // 4 minutes left: renewed once, shared
    const renewed = await Promise.all(callers.flatMap((c) => [c.call('GET', url), c.call('GET', url)]));
    assert.deepEqual(
      renewed.map((r) => r.status),
      Array(4).fill(200),
    );
    assert.equal(sim.ccTokensIssued, 2);

    // The integration record was disabled: the next exchange is refused.
    sim.revokeNetsuite();
    clock += 60 * 60_000;
    const fresh = authorizerFor(store.pool, settings, key);
    await assert.rejects(directCaller(settings.name, fresh).call('GET', url), ReauthorizationRequired);
    assert.equal(
      (await store.pool.query('SELECT status FROM erp_connections WHERE name = $1', [settings.name])).rows[0].status,
      'needs_reauthorization',
    );
    const exc = (
      await store.pool.query('SELECT owner_queue, status, details FROM exceptions WHERE id = $1', [
        reauthorizationExceptionId(settings.name),
      ])
    ).rows[0];
    assert.equal(exc.owner_queue, 'integration_support');
    assert.equal(exc.status, 'open');
    const visible = JSON.stringify([
      (await store.pool.query('SELECT * FROM audit_log')).rows,
      (await store.pool.query('SELECT * FROM exceptions')).rows,
    ]);
    assert.ok(!visible.includes('PRIVATE KEY') && !visible.includes(pem.split('\n')[1]!), 'the private key leaked');
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});
