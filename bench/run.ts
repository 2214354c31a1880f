// npm run bench:ingest: each figure beside its reference, measured side by side in one run on one machine.
//   ingest: HTTP batches of 1,000 (validation, dedup, durable commit) against two references on the same rows:
//     - COPY into a bare table keyed by (source, id): the physical limit of storing deduplicated events (issue 19);
//     - COPY into `events`, with its indexes and triggers: what the storage design costs before any HTTP or validation.
//   usage rollups: the fold that catches up behind ingestion (src/meter/catch-up.ts), timed on its own.
// The HTTP clients run in a worker thread (their own event loop and heap) and the API servers in child processes
// (bench/ingest-server.ts), so each has a server's heap, as in production: one process, then two sharing the clients
// (`accrue serve --role api` runs any number against one Postgres; one Node process uses one core for JavaScript).
// Every figure writes into freshly emptied tables with synchronous_commit on. Set ACCRUE_BENCH_SERVER_PROF=DIR to write
// the servers' CPU profiles there.
// Flags: --events N (default 200000), --concurrency N (HTTP clients, default 4), --rounds N (default 3; best of N: the
// machine's speed moves by 10–20% between rounds, the bare COPY's most),
// --servers LIST (API processes per HTTP figure, default 1,2), --answer minimal|full (the clients' Prefer, default minimal).
// DATABASE_URL to use a server instead of the embedded one.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem, platform, release } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { spawn } from 'node:child_process';
import pgCopy from 'pg-copy-streams';
import { progress } from '../src/cli/progress.js';
import type pg from 'pg';
import { printFigures, type Figure, pgSetting, truncateBehindTriggers, INGEST_TABLES } from './report.js';
import { cpuNow, cpuSpent } from './cpu.js';
import { copyLines } from '../src/store/copy-text.js';

// The HTTP clients: a worker thread with its own event loop and heap, started once with the bodies (copied to it once,
// before any clock starts), sending every body at each step's request with `concurrency` requests in flight over
// keep-alive connections and reporting the events accepted, read from each answer's counts, and the wall time. The
// load generator shares the machine with what it measures, so it does no more than a load generator must:
// node:http (leaner than fetch), bodies encoded once before the clock starts, each batch sent with
// `Prefer: return=minimal` as a high-volume client would (the answer lists only the events not accepted; `--answer
// full` for every event listed), and each answer's counts read without parsing its results (the bench counts what was
// stored in the table afterwards). Plain JavaScript, evaluated by the worker as it is.
const CLIENT = `
const { parentPort, workerData: job } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
function post(url, body) {
  return new Promise((resolve, reject) => {
    const request = http.request(url + '/v1/events', {
      method: 'POST', agent,
      headers: {
        authorization: 'Bearer ' + job.key, 'content-type': 'application/cloudevents-batch+json', 'content-length': body.length,
        ...(job.minimal ? { prefer: 'return=minimal' } : {}),
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}
// One step: every body sent to the API servers at 'urls', answered with the events accepted and the seconds taken.
parentPort.on('message', async ({ urls }) => {
  let next = 0;
  let accepted = 0;
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: job.concurrency }, async (_, client) => {
    const url = urls[client % urls.length];
    while (next < job.bodies.length) {
      const body = job.bodies[next++];
      const res = await post(url, body);
      if (res.status !== 200) throw new Error('HTTP ' + res.status + ': ' + res.text);
      const counts = /"counts":([{][^}]*[}])/.exec(res.text.slice(0, 1000));
      if (!counts) throw new Error('no counts in the answer: ' + res.text.slice(0, 200));
      accepted += JSON.parse(counts[1]).accepted;
    }
  }));
  parentPort.postMessage({ accepted, seconds: Number(process.hrtime.bigint() - start) / 1e9 });
});
`;

/**
 * The physical limit of storing deduplicated events: the same columns, keyed by (source, id), logged, no other index,
 * no trigger. The batch id and late flag are part of the rows COPY sends, so they are columns here too.
 */
const BARE_TABLE = `CREATE TABLE bench_bare_events (
  source text NOT NULL, id text NOT NULL, type text NOT NULL, subject text, customer_id text NOT NULL, time timestamptz NOT NULL,
  data jsonb, meter_values jsonb NOT NULL, dimensions jsonb NOT NULL, content_hash text NOT NULL, batch_id text NOT NULL,
  late boolean NOT NULL, PRIMARY KEY (source, id))`;

async function main(): Promise<void> {
  const { openStore } = await import('../src/store/store.js');
  const { applyCatalog, currentCatalog } = await import('../src/catalog/service.js');
  const { testKey } = await import('../test/support/keys.js');
  const { generateUsage } = await import('../src/demo/generate.js');
  const { validateEvent, INGEST_LIMITS } = await import('../src/ingest/cloudevent.js');
  const { catchUpRollups } = await import('../src/meter/catch-up.js');

  const { values: flags } = parseArgs({
    options: {
      events: { type: 'string', default: '200000' },
      concurrency: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '3' },
      servers: { type: 'string', default: '1,2' },
      answer: { type: 'string', default: 'minimal' },
    },
  });
  const EVENTS = Number.parseInt(flags.events!, 10);
  const CONCURRENCY = Number.parseInt(flags.concurrency!, 10);
  const ROUNDS = Number.parseInt(flags.rounds!, 10);
  // How many API processes (`accrue serve --role api`, any number against one Postgres) the clients share, per figure.
  const SERVERS = flags.servers!.split(',').map((n) => Number.parseInt(n, 10));
  if (SERVERS.some((n) => !(n >= 1))) throw new Error(`--servers: a list of process counts, such as 1,2; got ${flags.servers}`);
  if (flags.answer !== 'minimal' && flags.answer !== 'full') throw new Error(`--answer: minimal or full; got ${flags.answer}`);
  const MINIMAL = flags.answer === 'minimal';
  // A month already past, so no event is refused as being in the future.
  const PERIOD = { from: '2026-10-01T00:00:00.000Z', to: '2026-11-01T00:00:00.000Z' };

  const dataDir = process.env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'accrue-bench-pg-'));
  const store = await openStore({ databaseUrl: process.env.DATABASE_URL, dataDir, poolSize: CONCURRENCY + 4 });
  const figures: Figure[] = [];
  const spent: string[] = [];

  try {
    const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'bench' });
    if (!applied.ok) throw new Error('catalog refused');
    const catalog = (await currentCatalog(store.pool))!;
    const events = [...generateUsage({ catalog: catalog.catalog, period: PERIOD, events: EVENTS, seed: 7 })];
    const setting = (name: string) => pgSetting(store.pool, name);
    const cpu = cpus();
    console.log(
      `machine: ${cpu.length} cores (${cpu[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${release()}; node ${process.version}`,
    );
    console.log(
      `postgres: ${await setting('server_version')} (${store.embedded ? 'embedded, started by the bench' : 'external'}); ` +
        `synchronous_commit=${await setting('synchronous_commit')}, fsync=${await setting('fsync')}, wal_level=${await setting('wal_level')}`,
    );
    const indexes = (
      await store.pool.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'events' ORDER BY indexname")
    ).rows.map((r) => r.indexname);
    console.log(`table: events (logged), indexes: ${indexes.join(', ')}`);
    console.log(
      `events: ${EVENTS}, HTTP batches of ${INGEST_LIMITS.batchEventsMax} (${MINIMAL ? 'Prefer: return=minimal' : 'every event answered'}), ` +
        `${CONCURRENCY} concurrent clients in a worker thread, ` +
        `${SERVERS.join(' then ')} API process(es) in child processes, best of ${ROUNDS} round(s)\n`,
    );

    // The rows exactly as ingestion stores them, for the reference COPY.
    const rows = events.map((raw, i) => {
      const verdict = validateEvent(raw, i, {
        metersByType: catalog.index.metersByType,
        customerByTenant: catalog.index.customerByTenant,
        now: new Date(PERIOD.to),
        futureSkewMsMax: 0,
      });
      if (verdict.status !== 'valid') throw new Error('bench event invalid');
      const e = verdict.event;
      return [
        e.source,
        e.id,
        e.type,
        e.subject,
        e.customer,
        e.time,
        JSON.stringify(e.data),
        JSON.stringify(e.values),
        JSON.stringify(e.dimensions),
        e.content_hash,
        'ub:bench',
        'f',
      ];
    });
    const copyText = copyLines(rows);
    const bodies: Buffer[] = [];
    for (let i = 0; i < events.length; i += INGEST_LIMITS.batchEventsMax)
      bodies.push(Buffer.from(JSON.stringify(events.slice(i, i + INGEST_LIMITS.batchEventsMax))));

    const servers = await Promise.all(Array.from({ length: Math.max(...SERVERS) }, () => startServer(store.url, CONCURRENCY + 4)));
    // CPU seconds by process group over each step: where an event's time goes (the bench's own process is the COPY
    // client or, in the HTTP steps, the clients' worker thread).
    const postmasterPidFile = dataDir ? join(dataDir, 'postmaster.pid') : undefined;
    const cpuTimes = () =>
      cpuNow(
        postmasterPidFile,
        false,
        servers.map((server) => server.pid),
      );
    const key = (await testKey(store.pool, { name: 'bench', roles: ['ingest'] })).secret;

    // Every round starts from an empty table and a checkpoint, so neither figure pays for the other's writes.
    const fresh = async () => {
      await truncateBehindTriggers(store.pool, INGEST_TABLES);
      await store.pool.query('CHECKPOINT');
    };
    const clients = new HttpClients({ key, bodies, concurrency: CONCURRENCY, minimal: MINIMAL });
    // CPU by process of each step's fastest round (the round its figure comes from), by step.
    const fastest = new Map<string, { seconds: number; cpu: string }>();
    const keep = (step: string, seconds: number, cpu: string) => {
      if (seconds < (fastest.get(step)?.seconds ?? Infinity)) fastest.set(step, { seconds, cpu });
    };
    const httpSeconds = SERVERS.map(() => Infinity);
    let copySeconds = Infinity;
    let bareSeconds = Infinity;
    let foldSeconds = Infinity;
    try {
      const bar = progress('bench ingest');
      for (let round = 0; round < ROUNDS; round += 1) {
        bar.update(2 * round, 2 * ROUNDS, `round ${round + 1}: raw COPY`);
        // --- raw COPY of the same rows into the same table ---
        await fresh();
        await store.pool.query(
          "INSERT INTO ingest_batches (id, channel, received, accepted, duplicates, conflicts, rejected, quarantined) VALUES ('ub:bench', 'file', 0, 0, 0, 0, 0, 0)",
        );
        let before = cpuTimes();
        const copied = await timeCopy(store.pool, copyText);
        copySeconds = Math.min(copySeconds, copied);
        keep('COPY into events', copied, cpuSpent(before, cpuTimes(), EVENTS));

        // --- the physical limit: COPY of the same rows into a bare table keyed by (source, id) ---
        await store.pool.query('DROP TABLE IF EXISTS bench_bare_events');
        await store.pool.query(BARE_TABLE);
        await store.pool.query('CHECKPOINT');
        before = cpuTimes();
        const bare = await timeCopy(store.pool, copyText, 'bench_bare_events');
        bareSeconds = Math.min(bareSeconds, bare);
        keep('COPY, bare keyed table', bare, cpuSpent(before, cpuTimes(), EVENTS));
        await store.pool.query('DROP TABLE bench_bare_events');

        // --- HTTP ingest, batches of 1,000, clients in a worker thread, sharing 1 or more API processes ---
        for (const [at, count] of SERVERS.entries()) {
          bar.update(2 * round + 1, 2 * ROUNDS, `round ${round + 1}: HTTP, ${count} API process(es)`);
          await fresh();
          const urls = servers.slice(0, count).map((server) => server.address);
          before = cpuTimes();
          const { accepted, seconds } = await clients.send(urls);
          if (accepted !== EVENTS) throw new Error(`expected ${EVENTS} accepted, got ${accepted}`);
          const stored = Number((await store.pool.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n);
          if (stored !== EVENTS) throw new Error(`expected ${EVENTS} events stored, found ${stored}`);
          httpSeconds[at] = Math.min(httpSeconds[at]!, seconds);
          keep(`HTTP, ${count} API process${count === 1 ? '' : 'es'}`, seconds, cpuSpent(before, cpuTimes(), EVENTS));
          // The fold behind ingestion (src/meter/catch-up.ts), timed on its own: it must keep up with ingestion.
          const foldStart = process.hrtime.bigint();
          const folded = await catchUpRollups(store.pool);
          foldSeconds = Math.min(foldSeconds, Number(process.hrtime.bigint() - foldStart) / 1e9);
          if (BigInt(folded.advanced) < BigInt(EVENTS)) throw new Error(`the catch-up folded ${folded.advanced} seqs, expected ${EVENTS}`);
        }
      }
      bar.update(2 * ROUNDS, 2 * ROUNDS, 'done');
      bar.stop();
      for (const [step, { cpu }] of fastest) spent.push(`${step}: ${cpu}`);
    } finally {
      await clients.stop();
      await Promise.all(servers.map((server) => server.stop()));
    }

    const copyRate = EVENTS / copySeconds;
    const bareRate = EVENTS / bareSeconds;
    for (const [at, count] of SERVERS.entries()) {
      const rate = EVENTS / httpSeconds[at]!;
      figures.push({
        figure: `HTTP, batches of 1,000, ${count} API process${count === 1 ? '' : 'es'} (events/s)`,
        value: rate.toFixed(0),
        reference: `COPY, bare keyed table: ${bareRate.toFixed(0)}`,
        ratio: (rate / bareRate).toFixed(2),
      });
    }
    const httpRate = EVENTS / Math.min(...httpSeconds);
    const foldRate = EVENTS / foldSeconds;
    figures.push({
      figure: 'usage rollups caught up after it (events/s)',
      value: foldRate.toFixed(0),
      reference: `HTTP, the faster: ${httpRate.toFixed(0)}`,
      ratio: (foldRate / httpRate).toFixed(2),
    });
    figures.push({
      figure: 'HTTP, the faster of the above (events/s)',
      value: httpRate.toFixed(0),
      reference: `COPY into events: ${copyRate.toFixed(0)}`,
      ratio: (httpRate / copyRate).toFixed(2),
    });
  } finally {
    await store.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }

  printFigures(figures);
  if (spent.length > 0)
    console.log(
      `\nCPU by process, fastest round of each (node: the bench, its COPY client or the HTTP clients' thread):\n  ${spent.join('\n  ')}`,
    );
}

/** The HTTP clients' worker thread (CLIENT): started once with the bodies, one step at a time. */
class HttpClients {
  private readonly worker: Worker;
  private failed: Error | undefined;
  private waiting: { resolve: (result: { accepted: number; seconds: number }) => void; reject: (error: Error) => void } | undefined;

  constructor(job: { key: string; bodies: Buffer[]; concurrency: number; minimal: boolean }) {
    this.worker = new Worker(CLIENT, { eval: true, workerData: job });
    this.worker.on('message', (result: { accepted: number; seconds: number }) => this.waiting?.resolve(result));
    const fail = (error: Error) => {
      this.failed = error;
      this.waiting?.reject(error);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => code !== 0 && fail(new Error(`client worker exited with ${code}`)));
  }

  /** Every body sent to the servers at `urls`; the events they accepted and the wall time. */
  send(urls: string[]): Promise<{ accepted: number; seconds: number }> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage({ urls });
    });
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}

/** bench/ingest-server.ts in a child process, on the same database; its address once it listens. */
async function startServer(databaseUrl: string, poolSize: number): Promise<{ address: string; pid: number; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      ...(process.env.ACCRUE_BENCH_SERVER_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.ACCRUE_BENCH_SERVER_PROF}`] : []),
      // As bin/accrue.js starts `accrue serve`: the heap an API server runs with (docs/scaling.md).
      '--max-semi-space-size=64',
      '--initial-old-space-size=256',
      '--import',
      'tsx',
      'bench/ingest-server.ts',
    ],
    {
      env: { ...process.env, DATABASE_URL: databaseUrl, ACCRUE_BENCH_POOL: String(poolSize) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
    });
    void exited.then((code) => reject(new Error(`the bench's API server exited with ${code} before it listened`)));
  });
  return {
    address: (JSON.parse(line) as { address: string }).address,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** One COPY of the prepared rows in one transaction (COPY commits like any statement), timed to the commit. */
async function timeCopy(pool: pg.Pool, copyText: Buffer, table = 'events'): Promise<number> {
  const db = await pool.connect();
  try {
    const start = process.hrtime.bigint();
    await pipeline(
      Readable.from([copyText]),
      db.query(
        pgCopy.from(
          `COPY ${table} (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late) FROM STDIN`,
        ),
      ),
    );
    return Number(process.hrtime.bigint() - start) / 1e9;
  } finally {
    db.release();
  }
}

await main();
