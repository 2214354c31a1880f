// npm run bench:close -- --customers N --events M[,M2...] --budget-minutes T: closing a month at each size (also part
// of npm run bench). Default: 10,000 customers at 1M, 10M and 100M events.
// npm run bench:close -- --verify-loader --customers 200 --events 200000: loads that size with the plain loader and
// with the fast one (bench/close/load.ts), each into its own fresh embedded database, and fails unless both leave the
// same rows, sequence, indexes and constraints.
// --loader plain runs the bench on the plain loader, to compare their times.
// Each size runs in its own process on its own embedded Postgres, so each memory peak is its own. A size whose
// generation would overrun --budget-minutes (from the previous size's rate) or the free disk is cut down to the
// largest round size that fits, and the output says so. The disk projection scales the events, their keys and
// indexes with the events, and the hour rollups with them only up to one row per series and hour; while a size runs,
// a watchdog stops it (and its database goes) if the free disk falls below DISK_FLOOR_BYTES.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openStore } from '../src/store/store.js';
import { CLOSE_MONTH_HOURS } from './close/fixtures.js';
import { loadCloseData, loadedDigest, type Loader } from './close/load.js';
import { benchClose, type CloseFigures } from './close/measure.js';
import { printFigures, type Figure } from './report.js';

const { values } = parseArgs({
  options: {
    customers: { type: 'string', default: '10000' },
    events: { type: 'string', default: '1000000,10000000,100000000' },
    'budget-minutes': { type: 'string', default: '20' },
    child: { type: 'boolean', default: false },
    loader: { type: 'string', default: 'fast' },
    'verify-loader': { type: 'boolean', default: false },
    'data-dir': { type: 'string' }, // --child: the empty directory its embedded database goes in
  },
});
const customers = Number.parseInt(values.customers!, 10);
if (values.loader !== 'fast' && values.loader !== 'plain') throw new Error(`--loader is fast or plain, not ${values.loader}`);
const loader: Loader = values.loader;

/** WAL kept between checkpoints during a load (max_wal_size): fewer checkpoints, this much disk. */
const MAX_WAL = '4GB';
const MAX_WAL_BYTES = 4 * 2 ** 30;
/** A running size is stopped when the free disk falls below this (ACCRUE_BENCH_DISK_FLOOR_GIB, default 2). */
const DISK_FLOOR_BYTES = Number(process.env.ACCRUE_BENCH_DISK_FLOOR_GIB ?? '2') * 2 ** 30;
const freeDiskBytes = () => {
  const free = statfsSync(tmpdir());
  return free.bavail * free.bsize;
};

/** A new empty directory for an embedded database, or none when DATABASE_URL names the server. */
const freshDataDir = (): string | undefined => (process.env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'accrue-bench-close-')));

/** A fresh embedded database (unless DATABASE_URL) with the bench's WAL settings, for `work`. */
async function inFreshStore<T>(work: (url: string) => Promise<T>, emptyDir?: string): Promise<T> {
  const dataDir = emptyDir ?? freshDataDir();
  const store = await openStore({ databaseUrl: process.env.DATABASE_URL, dataDir });
  try {
    // A bulk load checkpoints less with room for WAL; durability settings (fsync) stay as they are.
    if (dataDir) {
      await store.pool.query(`ALTER SYSTEM SET max_wal_size = '${MAX_WAL}'`);
      await store.pool.query("ALTER SYSTEM SET checkpoint_timeout = '30min'");
      await store.pool.query('SELECT pg_reload_conf()');
    }
    return await work(store.url);
  } finally {
    await store.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

if (values['verify-loader']) {
  const events = Number.parseInt(values.events!, 10);
  const digests: Array<Record<string, string>> = [];
  for (const each of ['plain', 'fast'] as const) {
    digests.push(
      await inFreshStore(async (url) => {
        const pool = new pg.Pool({ connectionString: url, max: 3 });
        try {
          await loadCloseData(pool, customers, events, (line) => console.error(line), each);
          return await loadedDigest(pool);
        } finally {
          await pool.end();
        }
      }),
    );
  }
  const [plain, fast] = digests as [Record<string, string>, Record<string, string>];
  let same = true;
  for (const key of Object.keys(plain)) {
    const agree = plain[key] === fast[key];
    same &&= agree;
    console.log(`${key}: ${agree ? `same, ${plain[key]}` : `DIFFERENT: plain ${plain[key]}, fast ${fast[key]}`}`);
  }
  console.log(`loaders at ${customers} customers, ${events} events: ${same ? 'the same rows' : 'NOT the same rows'}`);
  process.exit(same ? 0 : 1);
}

if (values.child) {
  // One size: a fresh database, the figures as one JSON line on stdout.
  const events = Number.parseInt(values.events!, 10);
  const figures = await inFreshStore(
    (url) => benchClose(url, customers, events, (line) => console.error(line), { loader }),
    values['data-dir'],
  );
  console.log(JSON.stringify(figures));
  process.exit(0);
}

/**
 * The database's projected size at `events`, from a smaller size's: the events, their keys and indexes grow with the
 * events; the hour rollups too, but never past one row per series and hour of the month (the month rows and the
 * series are per customer).
 */
function projectedBytes(previous: CloseFigures, events: number): number {
  const scale = events / previous.events;
  const perEvent = previous.database_bytes - previous.rollup_bytes;
  const hourBound = previous.rollup_series_hour * CLOSE_MONTH_HOURS;
  const rollupScale = Math.max(1, Math.min(scale, hourBound / Math.max(1, previous.rollup_rows_hour)));
  return perEvent * scale + previous.rollup_bytes * rollupScale;
}

const MiB = 1024 * 1024;
const sizes = values.events!.split(',').map((s) => Number.parseInt(s, 10));
const budgetSeconds = Number(values['budget-minutes']) * 60;
const results: Array<{ asked: number; figures?: CloseFigures; note?: string }> = [];

/** The largest multiple of a round step (a tenth of the size asked) not above `limit`. */
function roundDown(asked: number, limit: number): number {
  const step = Math.max(1, Math.floor(asked / 10));
  return Math.floor(limit / step) * step;
}

/**
 * One size in its own process group (the child and its embedded Postgres), its database in a directory made here.
 * While it runs, a watchdog kills the group when the free disk falls below DISK_FLOOR_BYTES, before Postgres or
 * anything else on the machine runs out of room; the directory goes either way.
 */
async function runChild(events: number): Promise<{ status: number | null; signal: string | null; stdout: string; stoppedLow?: string }> {
  const dataDir = freshDataDir();
  const args = [
    '--import',
    'tsx',
    'bench/close-run.ts',
    '--child',
    '--customers',
    String(customers),
    '--events',
    String(events),
    '--loader',
    loader,
  ];
  const child = spawn(process.execPath, dataDir ? [...args, '--data-dir', dataDir] : args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  let stoppedLow: string | undefined;
  const watchdog = setInterval(() => {
    const free = freeDiskBytes();
    if (stoppedLow !== undefined || free >= DISK_FLOOR_BYTES) return;
    stoppedLow = `stopped when the free disk fell to ${(free / 2 ** 30).toFixed(1)} GiB, below the bench's floor of ${DISK_FLOOR_BYTES / 2 ** 30} GiB`;
    console.error(`close: ${stoppedLow}`);
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 1000);
  try {
    const [status, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    return { status, signal, stdout, stoppedLow };
  } finally {
    clearInterval(watchdog);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

for (const asked of sizes) {
  let events = asked;
  let note: string | undefined;
  const previous = [...results].reverse().find((r) => r.figures)?.figures;
  if (previous) {
    const secondsPerEvent =
      (previous.insert_seconds + previous.rebuild_seconds + previous.checkpoint_seconds + previous.group_by_seconds) / previous.events;
    const room = freeDiskBytes() - MAX_WAL_BYTES; // the WAL between checkpoints comes on top of the database
    const byTime = budgetSeconds / secondsPerEvent;
    const step = Math.max(1, Math.floor(asked / 10));
    let byDisk = asked;
    while (byDisk > 0 && projectedBytes(previous, byDisk) > room) byDisk -= step;
    if (events > byTime || events > byDisk) {
      events = Math.min(roundDown(asked, byTime), byDisk);
      const why =
        byTime <= byDisk
          ? `loading ${asked} events, rebuilding their rollups, checkpointing and the reference GROUP BY at this machine's ${Math.round(1 / secondsPerEvent)} events/s would take ${((asked * secondsPerEvent) / 60).toFixed(0)} min, over the ${values['budget-minutes']} min budget`
          : `${asked} events would need about ${(projectedBytes(previous, asked) / 2 ** 30).toFixed(0)} GiB, more than the ${(room / 2 ** 30).toFixed(0)} GiB free beside ${MAX_WAL} of WAL`;
      note = `${why}: ran ${events} instead`;
    }
  }
  const largest = Math.max(0, ...results.flatMap((r) => (r.figures ? [r.figures.events] : [])));
  if (events <= largest) {
    results.push({ asked, note: `${note ?? 'nothing to run'}; not above the ${largest} already run, so not run` });
    continue;
  }
  console.error(`close: ${events} events for ${customers} customers${note ? ` (${note})` : ''}`);
  const child = await runChild(events);
  const line = child.stdout.trim().split('\n').pop() ?? '';
  if (child.stoppedLow !== undefined || child.status !== 0 || !line.startsWith('{')) {
    const why = child.stoppedLow ?? `the run failed (exit ${child.status ?? child.signal})`;
    results.push({ asked, note: `${note ? `${note}; ` : ''}${why}` });
    continue;
  }
  results.push({ asked, figures: JSON.parse(line) as CloseFigures, note });
}

const ran = results.flatMap((r) => (r.figures ? [r.figures] : []));
const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;
const figures: Figure[] = [];
for (const f of ran) {
  figures.push({
    figure: `close a month, ${customers} customers, ${f.events / 1e6}M events (s)`,
    value: f.close_seconds.toFixed(1),
    reference: `bare GROUP BY over them: ${f.group_by_seconds.toFixed(1)} s`,
    ratio: (f.close_seconds / f.group_by_seconds).toFixed(2),
  });
  figures.push({
    figure: `  memory peak (node RSS; largest pg backend)`,
    value: mib(f.node_rss_peak_bytes),
    reference: `pg backend: ${mib(f.postgres_backend_peak_bytes)}`,
    ratio: '',
  });
}
const first = ran[0];
for (const f of ran.slice(1)) {
  figures.push({
    figure: `close at ${f.events / 1e6}M vs ${first!.events / 1e6}M events (s)`,
    value: f.close_seconds.toFixed(1),
    reference: `at ${first!.events / 1e6}M: ${first!.close_seconds.toFixed(1)} s`,
    ratio: (f.close_seconds / first!.close_seconds).toFixed(2),
  });
}
console.log(`close a month for ${customers} customers; ${ran[0]?.generation ?? 'nothing ran'}`);
printFigures(figures);
for (const { asked, figures: f, note } of results) {
  if (!f) console.log(`${asked / 1e6}M events: not run: ${note}`);
  else {
    console.log(
      `${f.events / 1e6}M events: ${f.invoices} invoices; rollup rows ${f.rollup_rows_month} month, ${f.rollup_rows_hour} hour; load ${f.insert_seconds.toFixed(0)} s, rollup rebuild ${f.rebuild_seconds.toFixed(0)} s, checkpoint ${f.checkpoint_seconds.toFixed(0)} s; database ${(f.database_bytes / 2 ** 30).toFixed(1)} GiB`,
    );
    if (note) console.log(`  note: ${note}`);
  }
}
const at10M = ran.find((f) => f.events === 10_000_000);
const at100M = ran.find((f) => f.events === 100_000_000);
if (at10M && at100M) {
  const ratio = at100M.close_seconds / at10M.close_seconds;
  console.log(`target, close at 100M within twice 10M: ${ratio.toFixed(2)}x, ${ratio <= 2 ? 'held' : 'MISSED'}`);
} else if (sizes.includes(100_000_000)) {
  console.log('target, close at 100M within twice 10M: not measured in this run (see the notes above)');
}
console.log(
  `memory: node RSS is this bench's close process over its whole run; pg backend is the largest VmHWM among the close's own connections, shared buffers it touched included (shared_buffers ${ran[0]?.postgres_shared_buffers ?? '?'})`,
);
