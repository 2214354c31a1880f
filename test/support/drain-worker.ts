// A separate worker process for the crash test: drains the NetSuite outbox until killed or done.
import pg from 'pg';
import { drainOutbox } from '../../src/post/outbox.js';
import { netsuiteTarget } from './netsuite-target.js';

const pool = new pg.Pool({ connectionString: process.env.WORKER_DATABASE_URL });
const target = netsuiteTarget(process.env.WORKER_SIM_URL!, { subsidiaries: {}, limits: { concurrency: 2, requestsPerMinute: 60_000 } });
process.stdout.write('started\n');
await drainOutbox(pool, target, { untilEmptyMs: 10_000, backoffBaseMs: 10, leaseMs: 1_000 });
await pool.end();
