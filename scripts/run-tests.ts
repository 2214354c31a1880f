// The test run: every test file against embedded PostgreSQL, then the database tests once more against the
// system server at 127.0.0.1:5432 (ACCRUE_SYSTEM_DATABASE_URL overrides). A missing server fails the run by name.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbedded } from '../src/store/embedded.js';

const filter = process.env.ACCRUE_TEST_FILTER ?? '';
const SYSTEM_URL = process.env.ACCRUE_SYSTEM_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

/**
 * Runs the files in one child and waits for it without blocking this process: the embedded server's log is a pipe
 * this process reads (src/store/embedded.ts), and a blocked reader would stall the server once the pipe is full.
 */
function run(label: string, files: string[], databaseUrl: string): Promise<number> {
  process.stdout.write(`\n# ${label}: ${files.length} files\n`);
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
    stdio: 'inherit',
    env: { ...process.env, ACCRUE_TEST_DATABASE_URL: databaseUrl },
  });
  return new Promise((done) => {
    child.once('error', () => done(1));
    child.once('exit', (code) => done(code ?? 1));
  });
}

async function reachable(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.end();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const all = testFiles('test')
  .sort()
  .filter((f) => f.includes(filter));
if (all.length === 0) {
  console.error(`no test files match ${JSON.stringify(filter)}`);
  process.exit(1);
}
const dataDir = mkdtempSync(join(tmpdir(), 'accrue-test-pg-'));
const server = await startEmbedded({ dataDir });
let status: number;
try {
  status = await run('embedded PostgreSQL', all, server.url.replace(/\/accrue$/, '/postgres'));
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
const dbFiles = all.filter((f) => f.startsWith(join('test', 'integration')));
if (dbFiles.length > 0 && process.env.ACCRUE_TEST_SYSTEM_PG !== '0') {
  const why = await reachable(SYSTEM_URL);
  if (why) {
    console.error(
      `\nFAIL: the system PostgreSQL at ${SYSTEM_URL} is not reachable (${why}); start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`,
    );
    status = 1;
  } else {
    status = (await run('system PostgreSQL', dbFiles, SYSTEM_URL)) || status;
  }
}
process.exit(status);
