// The API server of bench:ingest in a process of its own, as it runs in production: its heap holds what a server
// holds, not the bench's events and COPY text (whose size would make every garbage collection of the server's
// heap dearer). Started by bench/run.ts with DATABASE_URL; prints its address as one JSON line; stops on SIGTERM.
import { openStore } from '../src/store/store.js';
import { buildServer } from '../src/api/server.js';

const store = await openStore({ databaseUrl: process.env.DATABASE_URL, poolSize: Number(process.env.ACCRUE_BENCH_POOL ?? 8) });
const app = await buildServer({ pool: store.pool, bodyLimitBytes: 16 * 1024 * 1024 });
const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ address })}\n`);
process.once('SIGTERM', () => {
  void app
    .close()
    .then(() => store.close())
    .finally(() => process.exit(0));
});
