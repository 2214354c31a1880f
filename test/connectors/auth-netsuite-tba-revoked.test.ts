// A 401 to a TBA-signed request means the token was revoked: needs_reauthorization and an exception, no dead letter.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { ReauthorizationRequired, type ConnectionSettings } from '../../src/domain/erp.js';
import { directCaller } from '../../src/connectors/caller.js';
import { saveConnections } from '../../src/connectors/connections.js';
import { authorizerFor } from '../../src/connectors/auth/index.js';
import { saveCredentials } from '../../src/connectors/auth/credentials.js';
import { reauthorizationExceptionId } from '../../src/connectors/auth/reauthorization.js';
import { secretKeyFrom } from '../../src/connectors/auth/secret-box.js';
import { testStore } from '../support/db.js';
import { OAuthSim } from '../support/oauth-sim.js';
import type { Store } from '../../src/store/store.js';

let store: Store;
let sim: OAuthSim;
before(async () => {
  store = await testStore();
  sim = new OAuthSim();
  await sim.start();
});
after(async () => {
  await sim.stop();
  await store.close();
});

test('TBA: every request signed with the realm; a 401 → needs_reauthorization, exception, ReauthorizationRequired; no secret shown', async () => {
  const key = secretKeyFrom(randomBytes(32));
  const settings: ConnectionSettings = {
    name: 'ns-tba',
    kind: 'netsuite',
    legal_entities: ['le'],
    account_id: '1234567_sb1',
    base_url: sim.url,
  };
  assert.ok((await saveConnections(store.pool, [settings])).ok);
  const secrets = { consumer_key: 'ck-1', consumer_secret: 'CONSUMER-SECRET-x', token_id: 'tk-1', token_secret: 'TOKEN-SECRET-y' };
  await saveCredentials(store.pool, settings.name, secrets, null, key);
  const authorizer = authorizerFor(store.pool, settings, key);
  const headers = await authorizer.authorize('GET', `${sim.url}/services/rest/ping?q=1`);
  assert.match(headers.authorization!, /^OAuth realm="1234567_SB1", .*oauth_signature_method="HMAC-SHA256"/);
  const error = await directCaller(settings.name, authorizer)
    .call('GET', `${sim.url}/services/rest/ping`)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.ok(error instanceof ReauthorizationRequired);
  assert.equal(
    (await store.pool.query('SELECT status FROM erp_connections WHERE name = $1', [settings.name])).rows[0].status,
    'needs_reauthorization',
  );
  assert.equal(
    (await store.pool.query('SELECT owner_queue FROM exceptions WHERE id = $1', [reauthorizationExceptionId(settings.name)])).rows[0]
      .owner_queue,
    'integration_support',
  );
  const visible = JSON.stringify([
    (await store.pool.query('SELECT * FROM audit_log')).rows,
    (await store.pool.query('SELECT * FROM exceptions')).rows,
    error.message,
  ]);
  for (const s of [secrets.consumer_secret, secrets.token_secret]) assert.ok(!visible.includes(s));
});
