// Loading the close bench's data into Postgres: the plain loader (through `events` and its primary key, then
// usage_rollups_rebuild()) and the fast one, which stores the same rows several times sooner (see loadFast).
import { createHash } from 'node:crypto';
import pg from 'pg';
import { applyCatalog } from '../../src/catalog/service.js';
import { onClients, seconds } from './clients.js';
import { GENERATE, GENERATE_CHUNK_EVENTS, GENERATE_WITH_SEQ, scaledCatalog } from './fixtures.js';
import { dropIndexes, loadedSchema, rebuildIndexes, type DroppedIndex } from './schema.js';

/** How the bench data is made: `fast` (the default) or `plain`, the original path, kept to check that both store the same rows. */
export type Loader = 'plain' | 'fast';
/** Connections the fast loader works on at once: this machine has 2 cores. */
export const LOAD_CONNECTIONS = 2;
/** Events per rollup rebuild statement of the fast loader, so that its sorts stay within the function's work_mem. */
const ROLLUP_PIECE_EVENTS = 1_000_000;
/**
 * The fast loader's session: no commit waits for its WAL, room to sort. No trigger to turn off: none fires on an
 * insert into events (migration 033; the rollups are rebuilt below), and no foreign key checks its rows.
 */
const FAST_SESSION = `SET synchronous_commit = off; SET work_mem = '256MB'; SET maintenance_work_mem = '1GB';
  SET max_parallel_maintenance_workers = 0`;

export const GENERATION: Record<Loader, string> = {
  plain: `generate_series into events (${GENERATE_CHUNK_EVENTS} per statement, each key checked by the primary key), then usage_rollups_rebuild(): the catch-up's SQL over all events at once`,
  fast:
    `generate_series into events (up to ${GENERATE_CHUNK_EVENTS} per statement on ${LOAD_CONNECTIONS} connections, seq as the identity ` +
    "would give it, synchronous_commit off); events' indexes and keys (the primary key among them), " +
    'usage_rollups and usage_unique_keys dropped before and built after by sort (checked identical to the migrated ones); ' +
    "the rollups by usage_rollups_rebuild()'s SQL (the catch-up's) over ranges of customers on " +
    `${LOAD_CONNECTIONS} connections, inserted without its ON CONFLICT, which never fires into emptied tables; the same rows as the plain loader ` +
    '(bench:close --verify-loader); CHECKPOINT before measuring',
};

/** The original load: every chunk through `events` on one connection, each key checked by the primary key, then usage_rollups_rebuild(). */
async function loadPlain(
  setup: pg.Pool,
  customers: number,
  events: number,
  log: (line: string) => void,
): Promise<{ insertSeconds: number; rebuildSeconds: number }> {
  let start = process.hrtime.bigint();
  // Bulk load: the events go in, then one rebuild runs the catch-up's SQL over all of them at once, which gives the
  // rows the catch-ups build step by step (test/integration/rollups.test.ts, rollup-watermark.test.ts).
  for (let lo = 1; lo <= events; lo += GENERATE_CHUNK_EVENTS) {
    const hi = Math.min(events, lo + GENERATE_CHUNK_EVENTS - 1);
    await setup.query(GENERATE, [lo, hi, customers]);
    if ((hi / GENERATE_CHUNK_EVENTS) % 10 === 0 || hi === events) log(`close: ${hi} events stored (${seconds(start).toFixed(0)} s)`);
  }
  const insertSeconds = seconds(start);
  start = process.hrtime.bigint();
  await setup.query('SELECT usage_rollups_rebuild()');
  return { insertSeconds, rebuildSeconds: seconds(start) };
}

/**
 * usage_rollup_sql and usage_unique_keys_sql's statement without its ON CONFLICT clause, for tables rebuilt from
 * empty whose keys are dropped meanwhile: no statement's rows conflict with each other (they are its GROUP BY's
 * groups; the function's own upsert would fail on a row affected twice), nor with another range's (other customers),
 * so no upsert ever updates; rebuilding the primary key fails on any duplicate.
 */
function insertOnly(sql: string): string {
  const at = sql.indexOf('\nON CONFLICT (');
  if (
    at < 0 ||
    sql.indexOf('ON CONFLICT', at + 2) >= 0 ||
    !/^\nON CONFLICT \([^)]*\) DO UPDATE SET\s[^;]*$/.test(sql.slice(at)) ||
    /RETURNING/i.test(sql.slice(at))
  ) {
    throw new Error('the rollup SQL (migration 015) no longer ends in one ON CONFLICT ... DO UPDATE: the fast loader needs a look');
  }
  return sql.slice(0, at);
}

/**
 * The same rows as loadPlain, several times faster (checked by `npm run bench:close -- --verify-loader`):
 *  - events' indexes and keys are dropped first and rebuilt at the end from their recorded definitions, each by one
 *    sort instead of an insert per event (the rebuilt primary key proves every (source, id) stored once); the bench
 *    fails unless the indexes, constraints and triggers then read exactly as before;
 *  - the events go into `events` on LOAD_CONNECTIONS connections over disjoint ranges of g, with seq given as
 *    base + g × the identity's increment (1,024 since migration 036): the values the identity hands out in g order to
 *    the plain loader's single stream;
 *  - the rollups are rebuilt as usage_rollups_rebuild() does (truncate, then usage_rollup_sql and
 *    usage_unique_keys_sql over the events), over ranges of the customers, two at a time: disjoint customers write
 *    disjoint rollup and key rows, so the ranges add up to the same rows. Each statement keeps its ORDER BY (the
 *    rows lie in key order as the function's do) but not its ON CONFLICT, which never fires into emptied tables
 *    (insertOnly): their primary keys are dropped meanwhile and built after, by one sort each.
 */
async function loadFast(
  setup: pg.Pool,
  customers: number,
  events: number,
  log: (line: string) => void,
): Promise<{ insertSeconds: number; rebuildSeconds: number }> {
  const clients: pg.PoolClient[] = [];
  const dropped: DroppedIndex[] = [];
  try {
    for (let i = 0; i < LOAD_CONNECTIONS; i++) clients.push(await setup.connect());
    const load: FastLoad = { clients, first: clients[0]!, customers, events, log, dropped };
    let start = process.hrtime.bigint();
    const { schema, eventIndexes, base, increment } = await prepareEvents(load);
    await generateEvents(load, base, increment, start);
    await indexEvents(load, eventIndexes);
    const insertSeconds = seconds(start);
    start = process.hrtime.bigint();
    await rebuildRollups(load, start);
    // The rollups now count every loaded event: the watermark says so, or the next catch-up would fold them again.
    await load.first.query('UPDATE usage_rollup_watermark SET seq = greatest(seq, (SELECT coalesce(max(seq), 0) FROM events))');
    const rebuildSeconds = seconds(start);
    await checkSchema(load.first, schema);
    return { insertSeconds, rebuildSeconds };
  } catch (error) {
    await restoreDropped(clients, dropped, log);
    throw error;
  } finally {
    for (const client of clients) {
      client.on('error', () => {}); // a server stopping after a failure ends these too: the failure is the thrown one
      client.release(true); // closed, so their session settings go with them
    }
  }
}

/** One fast load: its connections (the first runs the one-connection steps), what it loads, what it has dropped. */
interface FastLoad {
  clients: pg.PoolClient[];
  first: pg.PoolClient;
  customers: number;
  events: number;
  log: (line: string) => void;
  dropped: DroppedIndex[];
}

/** The sessions set, the tables checked empty, the schema recorded, events' indexes dropped, seq claimed for the events. */
async function prepareEvents(load: FastLoad): Promise<{ schema: string[]; eventIndexes: DroppedIndex[]; base: bigint; increment: bigint }> {
  const { clients, first, events } = load;
  for (const client of clients) await client.query(FAST_SESSION);
  const empty = (await first.query<{ empty: boolean }>('SELECT NOT EXISTS (SELECT 1 FROM events) AS empty')).rows[0]!.empty;
  if (!empty) throw new Error('the fast loader fills an empty events table only');
  const schema = await loadedSchema(first);

  // events' indexes, its keys with them: built again once the events are in.
  const eventIndexes = await dropIndexes(first, ['events']);
  load.dropped.push(...eventIndexes);

  // seq: the plain loader's identity gives g its base + g × increment (one statement after another in g order).
  const sequence = (
    await first.query<{ last_value: string; is_called: boolean; seqincrement: string }>(
      "SELECT s.last_value, s.is_called, q.seqincrement FROM events_seq_seq s, pg_sequence q WHERE q.seqrelid = 'events_seq_seq'::regclass",
    )
  ).rows[0]!;
  const increment = BigInt(sequence.seqincrement);
  if (increment < 1n) throw new Error(`events_seq_seq counts by ${sequence.seqincrement}, the fast loader needs an increasing one`);
  const base = BigInt(sequence.last_value) - (sequence.is_called ? 0n : increment);
  await first.query('SELECT setval($1::regclass, $2::bigint, true)', ['events_seq_seq', String(base + BigInt(events) * increment)]);
  return { schema, eventIndexes, base, increment };
}

/** The events: at most GENERATE_CHUNK_EVENTS per statement, and a statement for every connection. */
async function generateEvents(load: FastLoad, base: bigint, increment: bigint, start: bigint): Promise<void> {
  const { clients, customers, events, log } = load;
  const chunk = Math.max(1, Math.min(GENERATE_CHUNK_EVENTS, Math.ceil(events / LOAD_CONNECTIONS)));
  const chunks: Array<[number, number]> = [];
  for (let lo = 1; lo <= events; lo += chunk) chunks.push([lo, Math.min(events, lo + chunk - 1)]);
  let stored = 0;
  let done = 0;
  await onClients(
    clients,
    chunks.map(([lo, hi]) => async (client) => {
      const inserted = (await client.query(GENERATE_WITH_SEQ, [lo, hi, customers, String(base), String(increment)])).rowCount ?? 0;
      stored += inserted; // after the await: both clients add to it
      if (++done % 10 === 0 || done === chunks.length) log(`close: ${stored} events stored (${seconds(start).toFixed(0)} s)`);
    }),
  );
  if (stored !== events) throw new Error(`stored ${stored} events of ${events}`);
}

/** The events vacuumed, then their dropped indexes and keys built again. */
async function indexEvents(load: FastLoad, eventIndexes: readonly DroppedIndex[]): Promise<void> {
  const { first, clients, log } = load;
  // Vacuumed now (before its indexes, so that it reads the heap alone): during the plain loader's long load
  // autovacuum keeps up with it; after a short one it vacuumed the whole table while the close ran (at 10M).
  let phase = process.hrtime.bigint();
  await first.query('VACUUM events');
  log(`close: events vacuumed (${seconds(phase).toFixed(0)} s)`);

  phase = process.hrtime.bigint();
  await rebuildIndexes(clients, eventIndexes, log);
  log(`close: indexes and keys rebuilt (${seconds(phase).toFixed(0)} s)`);
}

/** The statements usage_rollups_rebuild() runs, one pair (rollups, unique keys) per range of the customers. */
async function rollupStatements(load: FastLoad, pieces: number): Promise<Array<{ rollups: string; keys: string }>> {
  const { first, customers } = load;
  const bound = (i: number) => pg.escapeLiteral(`c${String(Math.floor((i * customers) / pieces)).padStart(6, '0')}`);
  const ranges = Array.from(
    { length: pieces },
    (_, i) =>
      `(SELECT * FROM events WHERE ${[i > 0 ? `customer_id >= ${bound(i)}` : '', i < pieces - 1 ? `customer_id < ${bound(i + 1)}` : ''].filter(Boolean).join(' AND ')})`,
  );
  return (
    await first.query<{ rollups: string; keys: string }>(
      'SELECT usage_rollup_sql(r) AS rollups, usage_unique_keys_sql(r) AS keys FROM unnest($1::text[]) WITH ORDINALITY AS u (r, n) ORDER BY n',
      [ranges],
    )
  ).rows;
}

/**
 * usage_rollups_rebuild() over ranges of the customers, ROLLUP_PIECE_EVENTS events or so each, two at a time,
 * with the function's settings (its work_mem, the triggers as they are), into the emptied tables without their
 * keys, which are built again after.
 */
async function rebuildRollups(load: FastLoad, start: bigint): Promise<void> {
  const { clients, first, customers, events, log } = load;
  for (const client of clients) await client.query("SET work_mem = '256MB'");
  await first.query('TRUNCATE usage_rollups, usage_unique_keys');
  const rollupIndexes = await dropIndexes(first, ['usage_rollups', 'usage_unique_keys']);
  load.dropped.push(...rollupIndexes);
  const pieces = Math.max(LOAD_CONNECTIONS, Math.min(customers, Math.ceil(events / ROLLUP_PIECE_EVENTS)));
  const statements = await rollupStatements(load, pieces);
  let rebuiltPieces = 0;
  await onClients(
    clients,
    [...statements.map((s) => s.rollups), ...statements.map((s) => s.keys)].map((sql) => async (client) => {
      await client.query(insertOnly(sql));
      if (++rebuiltPieces % 10 === 0)
        log(`close: ${rebuiltPieces} of ${2 * pieces} rollup statements done (${seconds(start).toFixed(0)} s)`);
    }),
  );
  // Two keys, one much the larger: its sort gets a parallel worker.
  for (const client of clients) await client.query('SET max_parallel_maintenance_workers = 1');
  await rebuildIndexes(clients, rollupIndexes, log);
}

/** Fails unless the indexes, constraints and triggers read as they did before the load (loadedSchema). */
async function checkSchema(first: pg.ClientBase, schema: readonly string[]): Promise<void> {
  const rebuilt = await loadedSchema(first);
  if (rebuilt.join('\n') !== schema.join('\n')) {
    const missing = schema.filter((line) => !rebuilt.includes(line));
    const extra = rebuilt.filter((line) => !schema.includes(line));
    throw new Error(
      `the rebuilt indexes and constraints differ from the migrated ones: missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)}`,
    );
  }
}

/** After a failed load: whatever was dropped and is not back yet, back if it can be (a database from DATABASE_URL outlives the bench). */
async function restoreDropped(
  clients: readonly pg.PoolClient[],
  dropped: readonly DroppedIndex[],
  log: (line: string) => void,
): Promise<void> {
  await clients[0]?.query('ROLLBACK').catch(() => {}); // out of a failed transaction, if in one
  const missing = [];
  for (const index of dropped) {
    const there = await clients[0]
      ?.query<{ there: boolean }>('SELECT to_regclass($1) IS NOT NULL AS there', [pg.escapeIdentifier(index.name)])
      .catch(() => undefined);
    if (there && !there.rows[0]!.there) missing.push(index);
  }
  if (missing.length > 0) {
    log(`close: the fast load failed; building ${missing.map((i) => i.name).join(', ')} again`);
    await rebuildIndexes(clients.slice(0, 1), missing, log).catch((restoring: Error) => log(`close: could not: ${restoring.message}`));
  }
}

/** The bench's catalog, then `events` events and their rollups, by `loader`. */
export async function loadCloseData(
  setup: pg.Pool,
  customers: number,
  events: number,
  log: (line: string) => void,
  loader: Loader,
): Promise<{ insertSeconds: number; rebuildSeconds: number }> {
  const applied = await applyCatalog(setup, scaledCatalog(customers), { by: 'bench' });
  if (!applied.ok) throw new Error(`bench catalog refused: ${applied.problems[0]?.path} ${applied.problems[0]?.message}`);
  await setup.query(
    "INSERT INTO ingest_batches (id, channel, received, accepted, duplicates, conflicts, rejected, quarantined) VALUES ('ub:bench-close', 'file', 0, 0, 0, 0, 0, 0) ON CONFLICT DO NOTHING",
  );
  log(
    `close: generating ${events} events for ${customers} customers inside Postgres, ${GENERATE_CHUNK_EVENTS} per statement (${loader} loader)…`,
  );
  const times = loader === 'plain' ? await loadPlain(setup, customers, events, log) : await loadFast(setup, customers, events, log);
  log(`close: loaded in ${times.insertSeconds.toFixed(0)} s, rollups rebuilt in ${times.rebuildSeconds.toFixed(0)} s`);
  return times;
}

/**
 * What a load leaves, for comparing loaders: an md5 over the sorted rows of events, usage_rollups and
 * usage_unique_keys, the sequence, and the schema lines of loadedSchema. received_at
 * is left out of the events: it is now() of the inserting transaction, so no two loads agree on it (nor does
 * anything after the load read it: the close, the rollups and the keys do not).
 */
export async function loadedDigest(db: pg.Pool): Promise<Record<string, string>> {
  const digest = async (label: string, relation: string) => {
    const row = (
      await db.query<{ n: string; md5: string | null }>(
        `SELECT count(*)::text AS n, md5(string_agg(t::text, ',' ORDER BY t::text)) AS md5 FROM ${relation} t`,
      )
    ).rows[0]!;
    return [label, `${row.n} rows, md5 ${row.md5}`] as const;
  };
  const entries = [
    await digest(
      'events',
      '(SELECT seq, source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late FROM events)',
    ),
    await digest('usage_rollups', 'usage_rollups'),
    await digest('usage_unique_keys', 'usage_unique_keys'),
  ];
  const sequence = (
    await db.query<{ s: string }>("SELECT last_value || CASE WHEN is_called THEN ' (called)' ELSE '' END AS s FROM events_seq_seq")
  ).rows[0]!.s;
  const schema = await loadedSchema(db);
  return {
    ...Object.fromEntries(entries),
    events_seq_seq: sequence,
    schema: `${schema.length} lines, md5 ${createHash('md5').update(schema.join('\n')).digest('hex')}`,
  };
}
