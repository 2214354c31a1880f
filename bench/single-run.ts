// npm run bench:single (also part of npm run bench): single-event HTTP requests from 64 concurrent clients, group
// committed, beside the same requests written one transaction per request (the server with groupCommit: false), side
// by side in one run on one machine. Both servers share one pool and write into the same freshly truncated `events`
// table; the clients run in a worker thread (their own event loop), so the server's thread serves only requests.
// Target (issue 6): group commit at least 10 times the per-request rate.
// Flags: --events N (default 10000), --concurrency N (clients, default 64), --rounds N (default 1; best of N),
// --linger-ms N and --commits N (group commit's linger and commits in flight; default the server's).
// DATABASE_URL to use a server instead of the embedded one.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem, platform, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { progress } from '../src/cli/progress.js';
import { cpuNow, cpuSpent } from './cpu.js';
import { printFigures, type Figure, pgSetting, truncateBehindTriggers, INGEST_TABLES } from './report.js';

// The clients: each sends one event per request and waits for its answer; a 429 is retried after its Retry-After.
const CLIENT = `
const { parentPort, workerData: job } = require('node:worker_threads');
const http = require('node:http');
// node:http with keep-alive: fetch (undici) costs the load generator about three times the CPU per request, and the
// clients share the machine's two cores with the server.
const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
const target = new URL(job.url);
function post(body) {
  return new Promise((resolve, reject) => {
    const headers = { authorization: 'Bearer ' + job.key, 'content-type': 'application/cloudevents+json', 'content-length': Buffer.byteLength(body) };
    const req = http.request({ agent, host: target.hostname, port: target.port, path: '/v1/events', method: 'POST', headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
(async () => {
  let next = 0;
  let accepted = 0;
  let refused = 0;
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: job.concurrency }, async () => {
    while (next < job.bodies.length) {
      const body = job.bodies[next++];
      for (;;) {
        const res = await post(body);
        if (res.status === 429) {
          refused += 1;
          await new Promise((r) => setTimeout(r, 1000 * Number(res.retryAfter || 1)));
          continue;
        }
        if (res.status !== 200) throw new Error('HTTP ' + res.status + ': ' + res.body);
        accepted += JSON.parse(res.body).counts.accepted;
        break;
      }
    }
  }));
  agent.destroy();
  parentPort.postMessage({ accepted, refused, seconds: Number(process.hrtime.bigint() - start) / 1e9 });
})();
`;

await main();

async function main(): Promise<void> {
  const { openStore } = await import('../src/store/store.js');
  const { applyCatalog, currentCatalog } = await import('../src/catalog/service.js');
  const { buildServer } = await import('../src/api/server.js');
  const { testKey } = await import('../test/support/keys.js');
  const { generateUsage } = await import('../src/demo/generate.js');
  const { GROUP_COMMIT_LIMITS } = await import('../src/ingest/group-commit.js');

  const { values: flags } = parseArgs({
    options: {
      events: { type: 'string', default: '10000' },
      concurrency: { type: 'string', default: '64' },
      rounds: { type: 'string', default: '1' },
      'linger-ms': { type: 'string' },
      commits: { type: 'string' },
    },
  });
  const EVENTS = Number.parseInt(flags.events!, 10);
  const CONCURRENCY = Number.parseInt(flags.concurrency!, 10);
  const ROUNDS = Number.parseInt(flags.rounds!, 10);
  const LINGER_MS = flags['linger-ms'] === undefined ? GROUP_COMMIT_LIMITS.lingerMsDefault : Number.parseInt(flags['linger-ms'], 10);
  const COMMITS = flags.commits === undefined ? GROUP_COMMIT_LIMITS.commitsInFlightMax : Number.parseInt(flags.commits, 10);
  // Enough connections that the per-request path is never held back by the pool: one per client, up to Postgres's room.
  const POOL_SIZE = Math.min(CONCURRENCY, 64) + 4;
  const PERIOD = { from: '2026-10-01T00:00:00.000Z', to: '2026-11-01T00:00:00.000Z' };

  const dataDir = process.env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'accrue-bench-pg-'));
  const store = await openStore({ databaseUrl: process.env.DATABASE_URL, dataDir, poolSize: POOL_SIZE });
  const figures: Figure[] = [];

  try {
    const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'bench' });
    if (!applied.ok) throw new Error('catalog refused');
    const catalog = (await currentCatalog(store.pool))!;
    const bodies = [...generateUsage({ catalog: catalog.catalog, period: PERIOD, events: EVENTS, seed: 11 })].map((e) => JSON.stringify(e));
    const setting = (name: string) => pgSetting(store.pool, name);
    const cpu = cpus();
    console.log(
      `machine: ${cpu.length} cores (${cpu[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${release()}; node ${process.version}`,
    );
    console.log(
      `postgres: ${await setting('server_version')} (${store.embedded ? 'embedded, started by the bench' : 'external'}); ` +
        `synchronous_commit=${await setting('synchronous_commit')}, fsync=${await setting('fsync')}, max_connections=${await setting('max_connections')}`,
    );
    console.log(
      `events: ${EVENTS} single-event requests, ${CONCURRENCY} concurrent clients in a worker thread, pool of ${POOL_SIZE}; ` +
        `group commit: linger ${LINGER_MS} ms, ${COMMITS} commits in flight; best of ${ROUNDS} round(s)\n`,
    );

    const grouped = await buildServer({ pool: store.pool, groupCommit: { lingerMs: LINGER_MS, commitsInFlightMax: COMMITS } });
    const perRequest = await buildServer({ pool: store.pool, groupCommit: false });
    const groupedUrl = await grouped.listen({ host: '127.0.0.1', port: 0 });
    const perRequestUrl = await perRequest.listen({ host: '127.0.0.1', port: 0 });
    const key = (await testKey(store.pool, { name: 'bench', roles: ['ingest'] })).secret;

    const fresh = async () => {
      await truncateBehindTriggers(store.pool, INGEST_TABLES);
      await store.pool.query('CHECKPOINT');
    };
    const postmasterPidFile = dataDir ? join(dataDir, 'postmaster.pid') : undefined;
    const run = async (url: string) => {
      await fresh();
      const cpu0 = cpuNow(postmasterPidFile, false);
      const outcome = await new Promise<{ accepted: number; refused: number; seconds: number }>((resolve, reject) => {
        const worker = new Worker(CLIENT, { eval: true, workerData: { url, key, bodies, concurrency: CONCURRENCY } });
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => code !== 0 && reject(new Error(`client worker exited with ${code}`)));
      });
      if (outcome.accepted !== EVENTS) throw new Error(`expected ${EVENTS} accepted, got ${outcome.accepted}`);
      const stored = Number((await store.pool.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n);
      if (stored !== EVENTS) throw new Error(`expected ${EVENTS} events stored, found ${stored}`);
      const cpu = cpuSpent(cpu0, cpuNow(postmasterPidFile, false), EVENTS);
      const batches = Number((await store.pool.query<{ n: string }>('SELECT count(*) AS n FROM ingest_batches')).rows[0]!.n);
      return { ...outcome, batches, cpu };
    };

    let groupedBest = { seconds: Infinity, refused: 0, batches: 0, cpu: '' };
    let perRequestBest = { seconds: Infinity, cpu: '' };
    try {
      const bar = progress('bench single');
      for (let round = 0; round < ROUNDS; round += 1) {
        bar.update(2 * round, 2 * ROUNDS, `round ${round + 1}: one transaction per request`);
        const p = await run(perRequestUrl);
        if (p.seconds < perRequestBest.seconds) perRequestBest = p;
        bar.update(2 * round + 1, 2 * ROUNDS, `round ${round + 1}: group commit`);
        const g = await run(groupedUrl);
        if (g.seconds < groupedBest.seconds) groupedBest = g;
      }
      bar.update(2 * ROUNDS, 2 * ROUNDS, 'done');
      bar.stop();
    } finally {
      await grouped.close();
      await perRequest.close();
    }

    const groupedRate = EVENTS / groupedBest.seconds;
    const perRequestRate = EVENTS / perRequestBest.seconds;
    figures.push({
      figure: `single-event HTTP, ${CONCURRENCY} clients, group commit (events/s)`,
      value: groupedRate.toFixed(0),
      reference: `one transaction per request: ${perRequestRate.toFixed(0)}`,
      ratio: (groupedRate / perRequestRate).toFixed(2),
    });
    console.log(`cpu, group commit (${groupedBest.seconds.toFixed(1)} s): ${groupedBest.cpu} (node: the server and the clients' thread)`);
    console.log(`cpu, one transaction per request (${perRequestBest.seconds.toFixed(1)} s): ${perRequestBest.cpu}`);
    console.log(
      `group commit: ${groupedBest.batches} commits for ${EVENTS} events (${(EVENTS / groupedBest.batches).toFixed(1)} a commit), ${groupedBest.refused} answered 429 and retried\n`,
    );
  } finally {
    await store.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }

  printFigures(figures);
}
