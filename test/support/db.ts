// Every test file gets its own fresh database on the server named by ACCRUE_TEST_DATABASE_URL
// (set by scripts/run-tests.ts: embedded PostgreSQL, then the system server); run alone, a file starts an embedded one.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbedded } from '../../src/store/embedded.js';
import { openStore, type Store } from '../../src/store/store.js';

// The commands the tests spawn act in the explicit local development mode (src/cli/auth.ts) unless a test gives a key:
// only the tests of the controls themselves (test/integration/controls*.test.ts) set ACCRUE_DEV_MODE to '' for theirs.
process.env.ACCRUE_DEV_MODE ??= '1';

export async function testStore(): Promise<Store> {
  let adminUrl = process.env.ACCRUE_TEST_DATABASE_URL;
  let stopServer: (() => Promise<void>) | undefined;
  if (!adminUrl) {
    const dir = mkdtempSync(join(tmpdir(), 'accrue-test-pg-'));
    const server = await startEmbedded({ dataDir: dir });
    adminUrl = server.url;
    stopServer = async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  const database = `accrue_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`PostgreSQL for the tests is not reachable at ${adminUrl.replace(/:[^:@/]*@/, ':***@')}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const store = await openStore({ databaseUrl: url.toString() });
  return {
    ...store,
    async close() {
      await store.close();
      const cleanup = new pg.Client({ connectionString: adminUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await cleanup.end();
      await stopServer?.();
    },
  };
}
