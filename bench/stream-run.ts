// npm run bench:stream (also part of npm run bench): JetStream ingest into Accrue beside the stream's own publish rate,
// side by side in one run on one machine.
//   reference: the events published into a fresh JetStream stream (file storage) with up to 1,000 publishes in flight,
//              timed until the server has acknowledged every one (PubAck): how fast this NATS server takes them in.
//   measured:  the same events, already in that stream, read by Accrue's consumer (startStreamConsumer, the code
//              `accrue serve --source nats://... --stream ...` runs, with its default batch settings) until every one
//              is durable in Postgres (its onBatchCommitted signal, then count(*) checked).
//   end to end: publishing and consuming at once into a fresh stream, from the first publish to the last commit.
// The publisher runs in a worker thread with its own NATS connection and event loop, so it does not share the
// consumer's thread. Nothing is gated on timing: exactly N events stored and none quarantined or rejected is checked.
// NATS JetStream at 127.0.0.1:4222 (NATS_URL to change it) is required: unreachable is a failure, never a skip. Every
// stream the bench creates has a unique name and is deleted at the end, also on failure.
// Flags: --events N (default 200000), --rounds N (default 1; best of N). DATABASE_URL to use a server instead of the
// embedded one.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem, platform, release, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { progress } from '../src/cli/progress.js';
import { cpuNow, cpuSpent } from './cpu.js';
import { printFigures, type Figure, pgSetting, truncateBehindTriggers, INGEST_TABLES } from './report.js';

// The publisher: its own connection, every payload published with up to `inFlight` PubAcks outstanding (a sliding
// window), timed from the first publish to the last PubAck. Reports its start on the process-wide monotonic clock so
// the end-to-end figure can be timed from it. Plain JavaScript, evaluated by the worker as it is.
const PUBLISHER = `
const { parentPort, workerData: job } = require('node:worker_threads');
const { connect } = require('nats');
(async () => {
  const nc = await connect({ servers: job.servers, name: 'accrue-bench-publisher' });
  const js = nc.jetstream();
  const encoder = new TextEncoder();
  const payloads = job.bodies.map((b) => encoder.encode(b));
  let inFlight = 0;
  let acked = 0;
  let lastSeq = 0;
  let failure;
  let slot;
  const start = process.hrtime.bigint();
  for (const payload of payloads) {
    if (failure) break;
    while (inFlight >= job.inFlight) await new Promise((resolve) => (slot = resolve));
    inFlight += 1;
    js.publish(job.subject, payload).then(
      (ack) => {
        if (ack.duplicate) failure = failure || new Error('publish answered duplicate at seq ' + ack.seq);
        acked += 1;
        lastSeq = Math.max(lastSeq, ack.seq);
      },
      (error) => { failure = failure || error; },
    ).finally(() => {
      inFlight -= 1;
      if (slot) { const s = slot; slot = undefined; s(); }
    });
  }
  while (inFlight > 0) await new Promise((resolve) => (slot = resolve));
  const end = process.hrtime.bigint();
  await nc.drain();
  if (failure) throw failure;
  parentPort.postMessage({ acked, lastSeq, start: String(start), seconds: Number(end - start) / 1e9 });
})().catch((error) => { parentPort.postMessage({ error: String(error && error.stack || error) }); });
`;

interface Published {
  acked: number;
  lastSeq: number;
  start: bigint;
  seconds: number;
}

await main();

async function main(): Promise<void> {
  const { openStore } = await import('../src/store/store.js');
  const { applyCatalog, currentCatalog } = await import('../src/catalog/service.js');
  const { generateUsage } = await import('../src/demo/generate.js');
  const { startStreamConsumer, STREAM_LIMITS } = await import('../src/stream/consumer.js');
  const { INGEST_LIMITS } = await import('../src/ingest/cloudevent.js');

  const { values: flags } = parseArgs({
    options: { events: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '1' } },
  });
  const EVENTS = Number.parseInt(flags.events!, 10);
  const ROUNDS = Number.parseInt(flags.rounds!, 10);
  if (!(EVENTS > 0) || !(ROUNDS > 0)) throw new RangeError('--events and --rounds must be positive integers');
  const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
  const IN_FLIGHT = 1000;
  const DURABLE = 'accrue-ingest'; // serve's default
  // No batch for this long means the consumer is stuck: fail with what it logged instead of hanging (not a timing gate).
  const STALL_MS = 120_000;
  const PERIOD = { from: '2026-10-01T00:00:00.000Z', to: '2026-11-01T00:00:00.000Z' };
  const RUN = `${process.pid}_${Date.now()}`;

  // NATS first: without it there is nothing to measure.
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  try {
    nc = await connect({ servers: NATS_URL.split(','), timeout: 3000, name: 'accrue-bench-admin' });
    jsm = await nc.jetstreamManager();
  } catch (error) {
    throw new Error(
      `NATS JetStream is not reachable at ${NATS_URL} (${(error as Error).message}); bench:stream needs it. ` +
        'Start one with `nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server`, or set NATS_URL.',
      { cause: error },
    );
  }
  const streams: string[] = [];
  const freshStream = async (what: string) => {
    const name = `ACCRUE_BENCH_${RUN}_${what}`;
    const subject = `accrue-bench-${RUN}-${what}.usage`.toLowerCase();
    streams.push(name);
    await jsm.streams.add({ name, subjects: [subject] }); // file storage, limits retention: what `serve --source` creates
    return { name, subject };
  };

  const dataDir = process.env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'accrue-bench-pg-'));
  let store: Awaited<ReturnType<typeof openStore>> | undefined;
  const figures: Figure[] = [];
  try {
    store = await openStore({ databaseUrl: process.env.DATABASE_URL, dataDir });
    const pool = store.pool;
    const applied = await applyCatalog(pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'bench' });
    if (!applied.ok) throw new Error('catalog refused');
    const catalog = (await currentCatalog(pool))!;
    const bodies = [...generateUsage({ catalog: catalog.catalog, period: PERIOD, events: EVENTS, seed: 13 })].map((e) => JSON.stringify(e));
    const bytes = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0);

    const setting = (name: string) => pgSetting(pool, name);
    const cpu = cpus();
    const load = loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
    console.log(
      `machine: ${cpu.length} cores (${cpu[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${release()}; node ${process.version}; load average ${load} at start`,
    );
    console.log(
      `postgres: ${await setting('server_version')} (${store.embedded ? 'embedded, started by the bench' : 'external'}); ` +
        `synchronous_commit=${await setting('synchronous_commit')}, fsync=${await setting('fsync')}`,
    );
    const account = await jsm.getAccountInfo();
    console.log(
      `nats: server ${nc.info?.version ?? '?'} at ${NATS_URL} (JetStream, file storage; account holds ${account.streams} stream(s), ${account.storage} bytes on file before the bench)`,
    );
    console.log(
      `events: ${EVENTS} (${(bytes / EVENTS).toFixed(0)} bytes each on average), one structured-mode CloudEvent per message; ` +
        `publisher in a worker thread, ${IN_FLIGHT} publishes in flight; best of ${ROUNDS} round(s)`,
    );
    console.log(
      `consumer: startStreamConsumer with serve's defaults: durable pull consumer '${DURABLE}', explicit acks after commit, ` +
        `fetch up to ${STREAM_LIMITS.batchMessagesDefault} messages (at most ${INGEST_LIMITS.batchEventsMax}) waiting up to ${STREAM_LIMITS.batchWaitMsDefault} ms, ` +
        `max_ack_pending ${STREAM_LIMITS.ackPendingDefault}, ack_wait ${STREAM_LIMITS.ackWaitMsDefault / 1000} s, one ingestBatch transaction per fetched batch\n`,
    );

    const publish = (subject: string) =>
      new Promise<Published>((resolve, reject) => {
        const worker = new Worker(PUBLISHER, {
          eval: true,
          workerData: { servers: NATS_URL.split(','), subject, bodies, inFlight: IN_FLIGHT },
        });
        worker.once('message', (m: { error?: string; acked: number; lastSeq: number; start: string; seconds: number }) => {
          if (m.error) reject(new Error(`publisher: ${m.error}`));
          else if (m.acked !== EVENTS) reject(new Error(`publisher: ${m.acked} PubAcks for ${EVENTS} events`));
          else resolve({ acked: m.acked, lastSeq: m.lastSeq, start: BigInt(m.start), seconds: m.seconds });
        });
        worker.once('error', reject);
        worker.once('exit', (code) => code !== 0 && reject(new Error(`publisher worker exited with ${code}`)));
      });

    const fresh = async () => {
      await truncateBehindTriggers(pool, [...INGEST_TABLES, 'stream_rejections']);
      await pool.query('CHECKPOINT');
    };

    // Starts the consumer exactly as serve does (its defaults), resolves `all` once EVENTS messages are committed.
    const consume = async (stream: { name: string; subject: string }) => {
      const warnings: string[] = [];
      let committed = 0;
      let lastProgress = Date.now();
      let reached!: (at: bigint) => void;
      const all = new Promise<bigint>((resolve) => (reached = resolve));
      const consumer = await startStreamConsumer(pool, {
        servers: NATS_URL,
        stream: stream.name,
        subjects: [stream.subject],
        durable: DURABLE,
        log: (line) => {
          if (line.level !== 'info') warnings.push(JSON.stringify(line));
        },
        onBatchCommitted: (messages) => {
          committed += messages;
          lastProgress = Date.now();
          if (committed >= EVENTS) reached(process.hrtime.bigint());
        },
      });
      // Fails instead of hanging when the consumer makes no progress or stops early (a liveness check, not a timing gate).
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setInterval(() => {
          if (Date.now() - lastProgress > STALL_MS) {
            reject(
              new Error(
                `consumer made no progress for ${STALL_MS / 1000} s at ${committed}/${EVENTS} messages; warnings: ${warnings.slice(-5).join(' | ') || 'none'}`,
              ),
            );
          }
        }, 1000);
      });
      let stopping = false;
      const early = consumer.done.then(() =>
        stopping ? new Promise<never>(() => {}) : Promise.reject(new Error('consumer stopped before all events were committed')),
      );
      const finished = async () => {
        try {
          const end = await Promise.race([all, stalled, early]);
          stopping = true;
          const stats = await consumer.stop();
          return { end, stats, warnings };
        } finally {
          clearInterval(timer);
          if (!stopping) void consumer.stop().catch(() => {}); // failing: let go of the connection
          stopping = true;
          stalled.catch(() => {});
          early.catch(() => {});
        }
      };
      return { consumer, finished };
    };

    const check = async (stats: { messages: number; batches: number; counts: Record<string, number>; retries: number }) => {
      const stored = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n);
      const quarantined = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM quarantine')).rows[0]!.n);
      const rejected = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM stream_rejections')).rows[0]!.n);
      if (stored !== EVENTS) throw new Error(`expected ${EVENTS} events stored, found ${stored}`);
      if (quarantined !== 0 || rejected !== 0)
        throw new Error(`expected nothing quarantined or rejected, found ${quarantined} quarantined, ${rejected} rejected`);
      if (stats.counts.accepted !== EVENTS || stats.messages !== EVENTS) throw new Error(`consumer counted ${JSON.stringify(stats)}`);
    };

    let publishBest = Infinity;
    let consumeBest = { seconds: Infinity, batches: 0, retries: 0 };
    let e2eBest = { seconds: Infinity, publishSeconds: 0, batches: 0 };
    const postmasterPidFile = dataDir ? join(dataDir, 'postmaster.pid') : undefined;
    const natsLocal = NATS_URL.split(',').every((u) => /^nats:\/\/(127\.0\.0\.1|localhost)(:\d+)?\/?$/.test(u));
    const cpuTimes = () => cpuNow(postmasterPidFile, natsLocal);
    let publishCpu = '';
    let consumeCpu = '';
    const bar = progress('bench stream');
    for (let round = 0; round < ROUNDS; round += 1) {
      // --- reference: publish into a fresh stream, timed to the last PubAck ---
      bar.update(3 * round, 3 * ROUNDS, `round ${round + 1}: publish to JetStream`);
      const stream = await freshStream(`R${round + 1}`);
      const publishCpu0 = cpuTimes();
      const published = await publish(stream.subject);
      const publishCpu1 = cpuTimes();
      const info = await jsm.streams.info(stream.name);
      if (info.state.messages !== EVENTS)
        throw new Error(`stream ${stream.name} holds ${info.state.messages} messages, expected ${EVENTS}`);
      if (published.seconds < publishBest) {
        publishBest = published.seconds;
        publishCpu = cpuSpent(publishCpu0, publishCpu1, EVENTS);
      }

      // --- measured: Accrue's consumer drains that stream into Postgres ---
      bar.update(3 * round + 1, 3 * ROUNDS, `round ${round + 1}: consume into Postgres`);
      await fresh();
      const consumeCpu0 = cpuTimes();
      const start = process.hrtime.bigint();
      const { finished } = await consume(stream);
      const consumed = await finished();
      const consumeCpu1 = cpuTimes();
      const seconds = Number(consumed.end - start) / 1e9;
      await check(consumed.stats);
      if (seconds < consumeBest.seconds) {
        consumeBest = { seconds, batches: consumed.stats.batches, retries: consumed.stats.retries };
        consumeCpu = cpuSpent(consumeCpu0, consumeCpu1, EVENTS);
      }
      const left = await jsm.consumers.info(stream.name, DURABLE);
      if (left.num_pending !== 0 || left.num_ack_pending !== 0)
        throw new Error(`consumer left ${left.num_pending} pending, ${left.num_ack_pending} unacked`);
      await jsm.streams.delete(stream.name);

      // --- end to end: consumer running, then publish; first publish to last commit ---
      bar.update(3 * round + 2, 3 * ROUNDS, `round ${round + 1}: publish and consume at once`);
      await fresh();
      const e2eStream = await freshStream(`E${round + 1}`);
      const running = await consume(e2eStream);
      const [e2ePublished, e2eConsumed] = await Promise.all([publish(e2eStream.subject), running.finished()]);
      await check(e2eConsumed.stats);
      const e2eSeconds = Number(e2eConsumed.end - e2ePublished.start) / 1e9;
      if (e2eSeconds < e2eBest.seconds)
        e2eBest = { seconds: e2eSeconds, publishSeconds: e2ePublished.seconds, batches: e2eConsumed.stats.batches };
      await jsm.streams.delete(e2eStream.name);
    }
    bar.update(3 * ROUNDS, 3 * ROUNDS, 'done');
    bar.stop();

    const publishRate = EVENTS / publishBest;
    const consumeRate = EVENTS / consumeBest.seconds;
    const e2eRate = EVENTS / e2eBest.seconds;
    figures.push({
      figure: 'JetStream ingest, stream to Postgres (events/s)',
      value: consumeRate.toFixed(0),
      reference: `JetStream publish+PubAck: ${publishRate.toFixed(0)}`,
      ratio: (consumeRate / publishRate).toFixed(2),
    });
    figures.push({
      figure: 'JetStream publish and consume at once (events/s)',
      value: e2eRate.toFixed(0),
      reference: `JetStream publish+PubAck: ${publishRate.toFixed(0)}`,
      ratio: (e2eRate / publishRate).toFixed(2),
    });
    console.log(`cpu, publishing step (${publishBest.toFixed(1)} s): ${publishCpu}`);
    console.log(`cpu, consuming step (${consumeBest.seconds.toFixed(1)} s): ${consumeCpu}`);
    console.log(
      `batches: consumer ${consumeBest.batches} for ${EVENTS} events (${(EVENTS / consumeBest.batches).toFixed(0)} a batch), ${consumeBest.retries} retried; ` +
        `end to end: ${e2eBest.batches} batches (${(EVENTS / e2eBest.batches).toFixed(0)} a batch), publishing took ${e2eBest.publishSeconds.toFixed(1)} s of ${e2eBest.seconds.toFixed(1)} s; ` +
        `load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')} at the end\n`,
    );
  } finally {
    for (const name of streams) await jsm.streams.delete(name).catch(() => false);
    await nc.close();
    await store?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }

  printFigures(figures);
}
