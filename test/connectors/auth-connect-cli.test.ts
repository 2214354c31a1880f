// `accrue connect xero` as a person runs it: the authorize URL on stderr, the callback on a local port, the tenant
// stored, the secrets sealed (never printed), the connection active.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readCredentials } from '../../src/connectors/auth/credentials.js';
import { secretKeyFrom } from '../../src/connectors/auth/secret-box.js';
import { testStore } from '../support/db.js';
import { OAuthSim } from '../support/oauth-sim.js';
import type { Store } from '../../src/store/store.js';

let store: Store;
let sim: OAuthSim;
let dir: string;
const keyBytes = randomBytes(32);

before(async () => {
  store = await testStore();
  sim = new OAuthSim();
  await sim.start();
  dir = mkdtempSync(join(tmpdir(), 'accrue-connect-'));
});
after(async () => {
  await sim.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('accrue connect xero: callback on the local port, tenant chosen, secrets sealed and never printed, connection active', async () => {
  const config = join(dir, 'accrue.config.yaml');
  writeFileSync(
    config,
    `erp:\n  connections:\n    xero-nw: { kind: xero, legal_entities: [nw-us], base_url: "${sim.url}", token_url: "${sim.url}/connect/token", authorize_url: "${sim.url}/authorize", connections_url: "${sim.url}/connections" }\n`,
  );
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn(
    process.execPath,
    [
      'bin/accrue.js',
      '--database-url',
      store.url,
      '--config',
      config,
      'connect',
      'xero',
      '--connection',
      'xero-nw',
      '--port',
      String(port),
    ],
    {
      env: {
        ...process.env,
        ACCRUE_SECRET_KEY: keyBytes.toString('base64'),
        XERO_CLIENT_ID: 'client-cli',
        XERO_CLIENT_SECRET: 'cli-secret-NEVER-PRINTED',
      },
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  const authorizeUrl = await new Promise<URL>((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+)/.exec(stderr);
      if (m && stderr.includes('Waiting for the callback')) resolve(new URL(m[1]!));
    });
    child.on('exit', () => reject(new Error(`exited early: ${stderr}`)));
  });
  const q = authorizeUrl.searchParams;
  const code = sim.authorizeCode({
    client_id: q.get('client_id')!,
    redirect_uri: q.get('redirect_uri')!,
    code_challenge: q.get('code_challenge')!,
    scope: q.get('scope')!,
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const callback = await fetch(`${q.get('redirect_uri')}?code=${code}&state=${q.get('state')}`);
  assert.equal(callback.status, 200);
  assert.equal(await exited, 0, stderr);
  assert.match(stdout, /connection xero-nw authorized for Northwind \(tenant-northwind\)/);
  const stored = await readCredentials(store.pool, 'xero-nw', secretKeyFrom(keyBytes));
  assert.equal(stored!.secrets.tenant_id, 'tenant-northwind');
  for (const secret of [stored!.secrets.access_token!, stored!.secrets.refresh_token!, 'cli-secret-NEVER-PRINTED'])
    assert.ok(!stdout.includes(secret) && !stderr.includes(secret));
  assert.equal((await store.pool.query(`SELECT status FROM erp_connections WHERE name = 'xero-nw'`)).rows[0].status, 'active');
});
