// One store: PostgreSQL. DATABASE_URL points at any server; without it Accrue runs an embedded one.
import pg from 'pg';
import { startEmbedded, type EmbeddedServer } from './embedded.js';
import { migrate } from './migrate.js';

// NUMERIC and BIGINT come back as strings, never JS floats.
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => value);
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => value);
// DATE stays the calendar date it is ("2026-11-30"), with no time zone to shift it.
pg.types.setTypeParser(pg.types.builtins.DATE, (value) => value);

export interface StoreOptions {
  databaseUrl?: string;
  dataDir?: string;
  poolSize?: number;
  log?: (line: string) => void;
}

export interface Store {
  pool: pg.Pool;
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

export const DEFAULT_DATA_DIR = '.accrue/pg';
/** How long a pooled connection may stay idle before it is closed. */
const POOL_IDLE_MS = 60_000;

export async function openStore(options: StoreOptions = {}): Promise<Store> {
  let server: EmbeddedServer | undefined;
  let url = options.databaseUrl;
  if (!url) {
    server = await startEmbedded({ dataDir: options.dataDir ?? DEFAULT_DATA_DIR, log: options.log });
    url = server.url;
  }
  // A connection idle for a minute is closed (pg's default is 10 s): each new one is a PostgreSQL process to fork and
  // whose caches fill again, which a server between bursts of batches would otherwise pay every few seconds.
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, idleTimeoutMillis: POOL_IDLE_MS });
  pool.on('error', (error) => options.log?.(`postgres pool: ${error.message}`));
  try {
    await pool.query('SELECT 1');
    await migrate(pool);
  } catch (error) {
    await pool.end().catch(() => {});
    await server?.stop().catch(() => {});
    const where = server ? `embedded Postgres in ${server.dataDir}` : `PostgreSQL at ${redact(url)}`;
    throw new Error(`cannot use ${where}: ${(error as Error).message}`, { cause: error });
  }
  let closed = false;
  return {
    pool,
    url,
    embedded: server !== undefined,
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
      await server?.stop();
    },
  };
}

export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

/** Runs `work` in one transaction; rolls back on any error so nothing is half-written. */
export async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
