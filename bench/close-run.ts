// npm run bench:close -- --customers N --events M[,M2...] --budget-minutes T: closing a month at each size (also part
// of npm run bench). Default: 10,000 customers at 1M, 10M and 100M events.
// npm run bench:close -- --verify-loader --customers 200 --events 200000: loads that size with the plain loader and
// with the fast one (bench/close.ts), each into its own fresh embedded database, and fails unless both leave the
// same rows, sequence, indexes and constraints.
// --loader plain runs the bench on the plain loader, to compare their times.
// Each size runs in its own process on its own embedded Postgres, so each memory peak is its own. A size whose
// generation would overrun --budget-minutes (from the previous size's rate) or the free disk is cut down to the
// largest round size that fits, and the output says so.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openStore } from '../src/store/store.js';
import { benchClose, loadCloseData, loadedDigest, type CloseFigures, type Loader } from './close.js';
import { printFigures, type Figure } from './report.js';

const { values } = parseArgs({
  options: {
    customers: { type: 'string', default: '10000' },
    events: { type: 'string', default: '1000000,10000000,100000000' },
    'budget-minutes': { type: 'string', default: '20' },
    child: { type: 'boolean', default: false },
    loader: { type: 'string', default: 'fast' },
    'verify-loader': { type: 'boolean', default: false },
  },
});
const customers = Number.parseInt(values.customers!, 10);
if (values.loader !== 'fast' && values.loader !== 'plain') throw new Error(`--loader is fast or plain, not ${values.loader}`);
const loader: Loader = values.loader;

/** A fresh embedded database (unless DATABASE_URL) with the bench's WAL settings, for `work`. */
async function inFreshStore<T>(work: (url: string) => Promise<T>): Promise<T> {
  const dataDir = process.env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'accrue-bench-close-'));
  const store = await openStore({ databaseUrl: process.env.DATABASE_URL, dataDir });
  try {
    // A bulk load checkpoints less with room for WAL; durability settings (fsync) stay as they are.
    if (dataDir) {
      await store.pool.query("ALTER SYSTEM SET max_wal_size = '16GB'");
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
  const figures = await inFreshStore((url) => benchClose(url, customers, events, (line) => console.error(line), { loader }));
  console.log(JSON.stringify(figures));
  process.exit(0);
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

for (const asked of sizes) {
  let events = asked;
  let note: string | undefined;
  const previous = [...results].reverse().find((r) => r.figures)?.figures;
  if (previous) {
    const secondsPerEvent = (previous.insert_seconds + previous.rebuild_seconds + previous.checkpoint_seconds + previous.group_by_seconds) / previous.events;
    const bytesPerEvent = previous.database_bytes / previous.events;
    const free = statfsSync(tmpdir());
    const freeBytes = free.bavail * free.bsize * 0.8; // leave a fifth for WAL and everyone else on the machine
    const byTime = budgetSeconds / secondsPerEvent;
    const byDisk = freeBytes / bytesPerEvent;
    if (events > byTime || events > byDisk) {
      events = roundDown(asked, Math.min(byTime, byDisk));
      const why = byTime <= byDisk
        ? `loading ${asked} events, rebuilding their rollups, checkpointing and the reference GROUP BY at this machine's ${Math.round(1 / secondsPerEvent)} events/s would take ${((asked * secondsPerEvent) / 60).toFixed(0)} min, over the ${values['budget-minutes']} min budget`
        : `${asked} events would need ${((asked * bytesPerEvent) / 2 ** 30).toFixed(0)} GiB, more than the ${(freeBytes / 2 ** 30).toFixed(0)} GiB free`;
      note = `${why}: ran ${events} instead`;
    }
  }
  const largest = Math.max(0, ...results.flatMap((r) => (r.figures ? [r.figures.events] : [])));
  if (events <= largest) {
    results.push({ asked, note: `${note ?? 'nothing to run'}; not above the ${largest} already run, so not run` });
    continue;
  }
  console.error(`close: ${events} events for ${customers} customers${note ? ` (${note})` : ''}`);
  const child = spawnSync(process.execPath, ['--import', 'tsx', 'bench/close-run.ts', '--child', '--customers', String(customers), '--events', String(events), '--loader', loader], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 16 * MiB,
  });
  const line = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0 || !line.startsWith('{')) {
    results.push({ asked, note: `${note ? `${note}; ` : ''}the run failed (exit ${child.status})` });
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
  figures.push({ figure: `  memory peak (node RSS; largest pg backend)`, value: mib(f.node_rss_peak_bytes), reference: `pg backend: ${mib(f.postgres_backend_peak_bytes)}`, ratio: '' });
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
console.log(`memory: node RSS is this bench's close process over its whole run; pg backend is the largest VmHWM among the close's own connections, shared buffers it touched included (shared_buffers ${ran[0]?.postgres_shared_buffers ?? '?'})`);
