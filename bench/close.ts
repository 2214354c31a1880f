// Month-end at volume: closing a month for N customers over M events, beside a bare GROUP BY over the same events
// in the same database. Events are generated inside Postgres (generate_series); the rollups are then built by the
// SQL the ingest trigger runs (migration 015). The fast loader (the default) stores exactly the rows the plain one
// (through `events`, its triggers, then usage_rollups_rebuild()) does, several times sooner: see loadFast.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import YAML from 'yaml';
import { applyCatalog, currentCatalog } from '../src/catalog/service.js';
import { closePeriod } from '../src/close/close-period.js';

/** Limit: events per generating statement; each statement's rows pass through the rollup triggers at once. */
export const GENERATE_CHUNK_EVENTS = 1_000_000;
const CLOSE_APPLICATION = 'accrue-bench-close';
/** The bench's month (September 2026) in hours: an hour rollup row per series and hour at most. */
export const CLOSE_MONTH_HOURS = 720;

export interface CloseFigures {
  customers: number;
  events: number;
  generation: string; // how the events and their rollups were made
  insert_seconds: number; // the load: events, their keys and every index
  rebuild_seconds: number; // the rollups from the loaded events
  checkpoint_seconds: number; // writing out what the load left dirty, before measuring
  close_seconds: number;
  group_by_seconds: number;
  invoices: number;
  rollup_rows_month: number;
  rollup_rows_hour: number;
  database_bytes: number;
  rollup_bytes: number; // usage_rollups and usage_unique_keys with their indexes, within database_bytes
  rollup_series_hour: number; // distinct (customer, type, meter, late, valued, dimensions) among the hour rows
  node_rss_peak_bytes: number; // this process over the whole run (the close dominates: generation happens in Postgres)
  postgres_backend_peak_bytes: number; // the largest VmHWM among the close's own backends, shared buffers it touched included
  postgres_shared_buffers: string;
}

/** Northwind's plans and products with `customers` generated customers, alternating the USD and EUR plans. */
function scaledCatalog(customers: number): string {
  const base = YAML.parse(readFileSync('examples/northwind/catalog.yaml', 'utf8')) as Record<string, unknown>;
  const list = Array.from({ length: customers }, (_, i) => {
    const us = i % 4 !== 3;
    return {
      id: `c${String(i).padStart(6, '0')}`,
      name: `Customer ${i}`,
      legal_entity: us ? 'nw-us' : 'nw-de',
      tax_jurisdiction: us ? ['US-CA', 'US-NY', 'US-OR'][i % 3] : 'DE',
      erp_customer_id: `B-${i}`,
      tenants: [`t${i}`],
    };
  });
  base.customers = list;
  base.subscriptions = list.map((c) => ({
    customer: c.id,
    plan: c.legal_entity === 'nw-us' ? 'growth-usd' : 'scale-eur',
    start: '2026-01-01',
  }));
  base.credit_grants = [];
  base.discounts = [];
  return YAML.stringify(base);
}

// Every customer gets every kind, in turn (k counts the customer's events): mostly api calls over four regions, some
// storage samples, seats of 37 users and compute samples, spread over September 2026. Both loaders select these
// columns from this generator ($1..$2 the range of g, $3 the customers), so they store the same rows.
const GENERATED_COLUMNS = `'//bench', 'e' || g, t.type, 't' || c, 'c' || lpad(c::text, 6, '0'),
       timestamptz '2026-09-01' + ((g * 7919) % 2592000) * interval '1 second',
       t.data, t.vals, t.dims, md5(g::text), 'ub:bench-close'`;
const GENERATOR = `
  FROM generate_series($1::bigint, $2::bigint) AS g,
       LATERAL (SELECT (g % $3) AS c, (g / $3) AS k) cc,
       LATERAL (SELECT CASE WHEN k % 20 = 0 THEN 'com.northwind.storage.usage'
                            WHEN k % 20 = 1 THEN 'com.northwind.analytics.session'
                            WHEN k % 20 = 2 THEN 'com.northwind.compute.sample'
                            ELSE 'com.northwind.api.request' END AS type) ty,
       LATERAL (SELECT ty.type,
                       CASE WHEN k % 20 = 0 THEN jsonb_build_object('gb_hours', ((g % 997)::numeric / 10)::text)
                            WHEN k % 20 = 1 THEN jsonb_build_object('user_id', 'u' || (k % 37))
                            WHEN k % 20 = 2 THEN jsonb_build_object('vcpu', (g % 24)::text)
                            ELSE jsonb_build_object('region', 'r' || (k % 4)) END AS data,
                       CASE WHEN k % 20 = 0 THEN jsonb_build_object('storage_gb_hours', ((g % 997)::numeric / 10)::text)
                            WHEN k % 20 = 1 THEN jsonb_build_object('analytics_seats', 'u' || (k % 37))
                            WHEN k % 20 = 2 THEN jsonb_build_object('peak_vcpu', (g % 24)::text)
                            ELSE '{}'::jsonb END AS vals,
                       CASE WHEN k % 20 > 2 THEN jsonb_build_object('api_calls', jsonb_build_object('region', 'r' || (k % 4)))
                            ELSE '{}'::jsonb END AS dims) t`;
const EVENT_COLUMNS = 'source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id';
/** The plain loader's statement: through `events`, seq from its default (nextval, in g order), keys by the trigger. */
const GENERATE = `
INSERT INTO events (${EVENT_COLUMNS})
SELECT ${GENERATED_COLUMNS}${GENERATOR}`;
/** The fast loader's: straight into the month's partition, seq given as the value nextval would have given ($4 + g). */
const generateInto = (partition: string) => `
INSERT INTO ${pg.escapeIdentifier(partition)} (seq, ${EVENT_COLUMNS})
SELECT $4::bigint + g, ${GENERATED_COLUMNS}${GENERATOR}`;

/** Peak resident set (VmHWM) of a process, in bytes; 0 when /proc cannot tell. */
function peakRssBytes(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** How the bench data is made: `fast` (the default) or `plain`, the original path, kept to check that both store the same rows. */
export type Loader = 'plain' | 'fast';
/** Connections the fast loader works on at once: this machine has 2 cores. */
export const LOAD_CONNECTIONS = 2;
/** Events per rollup rebuild statement of the fast loader, so that its sorts stay within the function's work_mem. */
const ROLLUP_PIECE_EVENTS = 1_000_000;
/** The fast loader's session: triggers and the foreign key check off (replica role; both replaced below), room to sort. */
const FAST_SESSION = `SET session_replication_role = replica; SET synchronous_commit = off; SET work_mem = '256MB';
  SET maintenance_work_mem = '1GB'; SET max_parallel_maintenance_workers = 0`;

const GENERATION: Record<Loader, string> = {
  plain: `generate_series into events (${GENERATE_CHUNK_EVENTS} per statement, keys claimed by the trigger, rollup trigger off), then usage_rollups_rebuild(): the ingest trigger's SQL over all events at once`,
  fast:
    `generate_series straight into the month's partition (up to ${GENERATE_CHUNK_EVENTS} per statement on ${LOAD_CONNECTIONS} connections, seq as nextval ` +
    "would give it, triggers and the per-event foreign key check off, synchronous_commit off); events' secondary indexes and the keys of event_keys, " +
    'usage_rollups and usage_unique_keys dropped before and built after by sort (checked identical to the migrated ones); event_keys written from the ' +
    "events joined to their batch; the rollups by usage_rollups_rebuild()'s SQL (the ingest trigger's) over ranges of customers on " +
    `${LOAD_CONNECTIONS} connections, inserted without its ON CONFLICT, which never fires into emptied tables; the same rows as the plain loader ` +
    '(bench:close --verify-loader); CHECKPOINT before measuring',
};

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/** Runs the jobs on the clients at once, each client taking the next job in list order; fails with the first failure once all have stopped. */
async function onClients<T>(clients: readonly pg.ClientBase[], jobs: ReadonlyArray<(client: pg.ClientBase) => Promise<T>>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  let failed = false;
  const settled = await Promise.allSettled(
    clients.map(async (client) => {
      while (!failed && next < jobs.length) {
        const i = next++;
        try {
          results[i] = await jobs[i]!(client);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    }),
  );
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;
  return results;
}

// The relations a load writes, whose indexes, constraints and triggers must end as a migrated database has them.
const LOADED_RELATIONS = `(SELECT relid FROM pg_partition_tree('events')
  UNION ALL SELECT unnest(ARRAY['event_keys'::regclass, 'usage_rollups'::regclass, 'usage_unique_keys'::regclass]))`;

/** The indexes, constraints, triggers and storage options of events (every partition), event_keys and the rollups, one sorted line each. */
export async function loadedSchema(db: pg.ClientBase | pg.Pool): Promise<string[]> {
  const { rows } = await db.query<{ line: string }>(`
    SELECT 'index on ' || i.indrelid::regclass || ': ' || pg_get_indexdef(i.indexrelid)
           || coalesce(' (partition of ' || (SELECT h.inhparent::regclass::text FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) || ')', '')
           || CASE WHEN i.indisvalid AND i.indisready AND i.indislive THEN '' ELSE ' (not valid)' END
           || CASE WHEN i.indisprimary THEN ' (primary)' ELSE '' END || CASE WHEN i.indimmediate THEN '' ELSE ' (deferred)' END
           || CASE WHEN i.indisclustered THEN ' (clustered)' ELSE '' END || CASE WHEN i.indisreplident THEN ' (replica identity)' ELSE '' END AS line
      FROM pg_index i WHERE i.indrelid IN ${LOADED_RELATIONS}
    UNION ALL
    SELECT 'constraint ' || c.conrelid::regclass || '.' || c.conname || ': ' || pg_get_constraintdef(c.oid)
           || coalesce(' using index ' || nullif(c.conindid, 0)::regclass::text, '') || CASE WHEN c.convalidated THEN '' ELSE ' (not validated)' END
      FROM pg_constraint c WHERE c.conrelid IN ${LOADED_RELATIONS}
    UNION ALL
    SELECT 'trigger ' || t.tgrelid::regclass || '.' || t.tgname || ' (enabled ' || t.tgenabled::text || '): ' || pg_get_triggerdef(t.oid)
      FROM pg_trigger t WHERE t.tgrelid IN ${LOADED_RELATIONS} AND NOT t.tgisinternal
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' options ' || coalesce(c.reloptions::text, '{}') FROM pg_class c WHERE c.oid IN ${LOADED_RELATIONS}
     ORDER BY 1`);
  return rows.map((r) => r.line);
}

/** The original load: every chunk through `events` on one connection, keys claimed by the trigger, then usage_rollups_rebuild(). */
async function loadPlain(
  setup: pg.Pool,
  customers: number,
  events: number,
  log: (line: string) => void,
): Promise<{ insertSeconds: number; rebuildSeconds: number }> {
  let start = process.hrtime.bigint();
  // Bulk load: the rollup trigger is off while the events go in, then one rebuild runs the trigger's SQL over all
  // of them at once, which gives the rows ingestion builds batch by batch (test/integration/rollups.test.ts).
  // The key trigger stays on: every event still claims its (source, id).
  await setup.query('ALTER TABLE events DISABLE TRIGGER events_rollups_insert');
  try {
    for (let lo = 1; lo <= events; lo += GENERATE_CHUNK_EVENTS) {
      const hi = Math.min(events, lo + GENERATE_CHUNK_EVENTS - 1);
      await setup.query(GENERATE, [lo, hi, customers]);
      if ((hi / GENERATE_CHUNK_EVENTS) % 10 === 0 || hi === events) log(`close: ${hi} events stored (${seconds(start).toFixed(0)} s)`);
    }
  } finally {
    await setup.query('ALTER TABLE events ENABLE TRIGGER events_rollups_insert');
  }
  const insertSeconds = seconds(start);
  start = process.hrtime.bigint();
  await setup.query('SELECT usage_rollups_rebuild()');
  return { insertSeconds, rebuildSeconds: seconds(start) };
}

interface DroppedIndex {
  table: string;
  name: string;
  def: string; // pg_get_indexdef
  constraint: string | null; // the primary key or unique constraint it backed
  kind: 'p' | 'u' | null;
  deferrable: boolean;
  deferred: boolean;
}

/**
 * Drops the indexes of `tables` (a partitioned table's with its partitions'), with the primary key and unique
 * constraints they back on tables that are not partitioned (those of a partitioned one stay), in one transaction;
 * returns them in the order they were made, for rebuildIndexes.
 */
async function dropIndexes(client: pg.ClientBase, tables: readonly string[]): Promise<DroppedIndex[]> {
  const indexes = (
    await client.query<DroppedIndex & { kind: string | null; partitioned: boolean }>(
      `SELECT i.indrelid::regclass::text AS table, c.relname AS name, pg_get_indexdef(i.indexrelid) AS def, k.conname AS constraint,
              k.contype::text AS kind, coalesce(k.condeferrable, false) AS deferrable, coalesce(k.condeferred, false) AS deferred,
              t.relkind = 'p' AS partitioned
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
         LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
        WHERE i.indrelid = ANY($1::regclass[])
        ORDER BY i.indexrelid`,
      [tables],
    )
  ).rows.filter((i) => i.constraint === null || (!i.partitioned && (i.kind === 'p' || i.kind === 'u')));
  await client.query('BEGIN');
  for (const index of indexes) {
    await client.query(
      index.constraint === null
        ? `DROP INDEX ${pg.escapeIdentifier(index.name)}`
        : `ALTER TABLE ${pg.escapeIdentifier(index.table)} DROP CONSTRAINT ${pg.escapeIdentifier(index.constraint)}`,
    );
  }
  await client.query('COMMIT');
  return indexes.map(({ table, name, def, constraint, kind, deferrable, deferred }) => ({
    table,
    name,
    def,
    constraint,
    kind: kind as DroppedIndex['kind'],
    deferrable,
    deferred,
  }));
}

/**
 * Builds dropped indexes again from their definitions (on a partitioned table without its ONLY, which would make
 * the parent's alone) on the clients at once (one table's indexes may be built at once), the most key columns
 * first as a guess at the longest sort; then puts their constraints back over them, as they were.
 */
async function rebuildIndexes(
  clients: readonly pg.ClientBase[],
  indexes: readonly DroppedIndex[],
  log: (line: string) => void,
): Promise<void> {
  const keyColumns = (def: string) =>
    / USING brin | WHERE /.test(def) ? 0 : (/ USING \w+ \(([^)]*)\)/.exec(def)?.[1]?.split(',').length ?? 1);
  await onClients(
    clients,
    [...indexes]
      .sort((a, b) => keyColumns(b.def) - keyColumns(a.def))
      .map((index) => async (client) => {
        const began = process.hrtime.bigint();
        await client.query(index.def.replace(/ ON ONLY /, ' ON '));
        log(`close: ${index.name} built (${seconds(began).toFixed(0)} s)`);
      }),
  );
  for (const index of indexes) {
    if (index.constraint === null) continue;
    await clients[0]!.query(
      `ALTER TABLE ${pg.escapeIdentifier(index.table)} ADD CONSTRAINT ${pg.escapeIdentifier(index.constraint)} ${index.kind === 'p' ? 'PRIMARY KEY' : 'UNIQUE'}
         USING INDEX ${pg.escapeIdentifier(index.name)}${index.deferrable ? ' DEFERRABLE' : ''}${index.deferred ? ' INITIALLY DEFERRED' : ''}`,
    );
  }
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
 *  - events' secondary indexes and event_keys' keys are dropped first and rebuilt at the end from their recorded
 *    definitions, each by one sort instead of an insert per event; the bench fails unless the indexes, constraints
 *    and triggers then read exactly as before;
 *  - the events go straight into September's partition on LOAD_CONNECTIONS connections over disjoint ranges of g,
 *    with seq given as base + g: the values nextval hands out in g order to the plain loader's single stream. A
 *    statement into a partition fires none of the statement triggers on `events` (keys, rollups), and the replica
 *    role skips the foreign key's per-event check; both are done below instead;
 *  - event_keys gets the columns the key trigger (events_claim_keys, migration 014) writes, from every stored event
 *    joined to its ingest batch: as many keys as events proves the foreign key, and the rebuilt primary key that
 *    every (source, id) is stored once;
 *  - the rollups are rebuilt as usage_rollups_rebuild() does (truncate, then usage_rollup_sql and
 *    usage_unique_keys_sql over the events), over ranges of the customers, two at a time: disjoint customers write
 *    disjoint rollup and key rows, so the ranges add up to the same rows. Each statement keeps its ORDER BY (the
 *    rows lie in key order as the function's do) but not its ON CONFLICT, which never fires into emptied tables
 *    (insertOnly): their primary keys are dropped meanwhile and built after, by one sort each.
 */
async function loadFast(
  setup: pg.Pool,
  partition: string,
  customers: number,
  events: number,
  log: (line: string) => void,
): Promise<{ insertSeconds: number; rebuildSeconds: number }> {
  const clients: pg.PoolClient[] = [];
  const dropped: DroppedIndex[] = [];
  try {
    for (let i = 0; i < LOAD_CONNECTIONS; i++) clients.push(await setup.connect());
    const first = clients[0]!;
    let start = process.hrtime.bigint();
    for (const client of clients) await client.query(FAST_SESSION);
    const empty = (
      await first.query<{ empty: boolean }>('SELECT NOT EXISTS (SELECT 1 FROM events) AND NOT EXISTS (SELECT 1 FROM event_keys) AS empty')
    ).rows[0]!.empty;
    if (!empty) throw new Error('the fast loader fills an empty events table only');
    const schema = await loadedSchema(first);

    // events' own indexes (so every partition's) and event_keys' with its keys: built again once the events are in.
    const eventIndexes = await dropIndexes(first, ['events', 'event_keys']);
    dropped.push(...eventIndexes);

    // seq: the plain loader's nextval gives g its base + g (increment 1, one statement after another in g order).
    const sequence = (
      await first.query<{ last_value: string; is_called: boolean; seqincrement: string }>(
        "SELECT s.last_value, s.is_called, q.seqincrement FROM events_seq_seq s, pg_sequence q WHERE q.seqrelid = 'events_seq_seq'::regclass",
      )
    ).rows[0]!;
    if (sequence.seqincrement !== '1') throw new Error(`events_seq_seq counts by ${sequence.seqincrement}, the fast loader needs 1`);
    const base = BigInt(sequence.last_value) - (sequence.is_called ? 0n : 1n);
    await first.query('SELECT setval($1::regclass, $2::bigint, true)', ['events_seq_seq', String(base + BigInt(events))]);

    // At most GENERATE_CHUNK_EVENTS per statement, and a statement for every connection.
    const chunk = Math.max(1, Math.min(GENERATE_CHUNK_EVENTS, Math.ceil(events / LOAD_CONNECTIONS)));
    const chunks: Array<[number, number]> = [];
    for (let lo = 1; lo <= events; lo += chunk) chunks.push([lo, Math.min(events, lo + chunk - 1)]);
    let stored = 0;
    let done = 0;
    const insert = generateInto(partition);
    await onClients(
      clients,
      chunks.map(([lo, hi]) => async (client) => {
        const inserted = (await client.query(insert, [lo, hi, customers, String(base)])).rowCount ?? 0;
        stored += inserted; // after the await: both clients add to it
        if (++done % 10 === 0 || done === chunks.length) log(`close: ${stored} events stored (${seconds(start).toFixed(0)} s)`);
      }),
    );
    if (stored !== events) throw new Error(`stored ${stored} events of ${events}`);

    // The keys, from halves of the partition's blocks at once. The join is the foreign key's check: an event whose
    // batch is missing gets no key, and fails the count.
    let phase = process.hrtime.bigint();
    const blocks = (
      await first.query<{ n: string }>("SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::bigint)::text AS n", [
        pg.escapeIdentifier(partition),
      ])
    ).rows[0]!.n;
    const half = `(${BigInt(blocks) / 2n},0)`;
    const claim = (where: string) => `
      INSERT INTO event_keys (source, id, seq, content_hash, time)
      SELECT e.source, e.id, e.seq, e.content_hash, e.time FROM ${pg.escapeIdentifier(partition)} e JOIN ingest_batches b ON b.id = e.batch_id
       WHERE e.ctid ${where} $1::tid`;
    const keyed = await onClients(clients, [(c) => c.query(claim('<'), [half]), (c) => c.query(claim('>='), [half])]);
    const keys = keyed.reduce((sum, r) => sum + (r.rowCount ?? 0), 0);
    if (keys !== events) throw new Error(`${events - keys} of ${events} events name no stored ingest batch`);
    log(`close: event keys written (${seconds(phase).toFixed(0)} s)`);

    // Vacuumed now (before their indexes, so that it reads the heaps alone): during the plain loader's long load
    // autovacuum keeps up with them; after a short one it vacuumed the whole partition while the close ran (at 10M).
    phase = process.hrtime.bigint();
    await onClients(
      clients,
      [pg.escapeIdentifier(partition), 'event_keys'].map((table) => (client) => client.query(`VACUUM ${table}`)),
    );
    log(`close: events and keys vacuumed (${seconds(phase).toFixed(0)} s)`);

    phase = process.hrtime.bigint();
    await rebuildIndexes(clients, eventIndexes, log);
    log(`close: indexes and keys rebuilt (${seconds(phase).toFixed(0)} s)`);
    const insertSeconds = seconds(start);

    // usage_rollups_rebuild() over ranges of the customers, ROLLUP_PIECE_EVENTS events or so each, two at a time,
    // with the function's settings (its work_mem, the triggers as they are), into the emptied tables without their
    // keys, which are built again after.
    start = process.hrtime.bigint();
    for (const client of clients) await client.query("RESET session_replication_role; SET work_mem = '256MB'");
    await first.query('TRUNCATE usage_rollups, usage_unique_keys');
    const rollupIndexes = await dropIndexes(first, ['usage_rollups', 'usage_unique_keys']);
    dropped.push(...rollupIndexes);
    const pieces = Math.max(LOAD_CONNECTIONS, Math.min(customers, Math.ceil(events / ROLLUP_PIECE_EVENTS)));
    const bound = (i: number) => pg.escapeLiteral(`c${String(Math.floor((i * customers) / pieces)).padStart(6, '0')}`);
    const ranges = Array.from(
      { length: pieces },
      (_, i) =>
        `(SELECT * FROM events WHERE ${[i > 0 ? `customer_id >= ${bound(i)}` : '', i < pieces - 1 ? `customer_id < ${bound(i + 1)}` : ''].filter(Boolean).join(' AND ')})`,
    );
    const statements = (
      await first.query<{ rollups: string; keys: string }>(
        'SELECT usage_rollup_sql(r) AS rollups, usage_unique_keys_sql(r) AS keys FROM unnest($1::text[]) WITH ORDINALITY AS u (r, n) ORDER BY n',
        [ranges],
      )
    ).rows;
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
    const rebuildSeconds = seconds(start);

    const rebuilt = await loadedSchema(first);
    if (rebuilt.join('\n') !== schema.join('\n')) {
      const missing = schema.filter((line) => !rebuilt.includes(line));
      const extra = rebuilt.filter((line) => !schema.includes(line));
      throw new Error(
        `the rebuilt indexes and constraints differ from the migrated ones: missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)}`,
      );
    }
    return { insertSeconds, rebuildSeconds };
  } catch (error) {
    await clients[0]?.query('ROLLBACK').catch(() => {}); // out of a failed transaction, if in one
    // Whatever was dropped and is not back yet, back if it can be (a database from DATABASE_URL outlives the bench).
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
    throw error;
  } finally {
    for (const client of clients) {
      client.on('error', () => {}); // a server stopping after a failure ends these too: the failure is the thrown one
      client.release(true); // closed, so their session settings go with them
    }
  }
}

/** The bench's catalog and September's partition, then `events` events and their rollups, by `loader`. */
export async function loadCloseData(
  setup: pg.Pool,
  customers: number,
  events: number,
  log: (line: string) => void,
  loader: Loader,
): Promise<{ insertSeconds: number; rebuildSeconds: number }> {
  const applied = await applyCatalog(setup, scaledCatalog(customers), { by: 'bench' });
  if (!applied.ok) throw new Error(`bench catalog refused: ${applied.problems[0]?.path} ${applied.problems[0]?.message}`);
  const partition = (await setup.query<{ name: string }>("SELECT accrue_ensure_event_partition('2026-09-01T00:00:00Z') AS name")).rows[0]!
    .name;
  await setup.query(
    "INSERT INTO ingest_batches (id, channel, received, accepted, duplicates, conflicts, rejected, quarantined) VALUES ('ub:bench-close', 'file', 0, 0, 0, 0, 0, 0) ON CONFLICT DO NOTHING",
  );
  log(
    `close: generating ${events} events for ${customers} customers inside Postgres, ${GENERATE_CHUNK_EVENTS} per statement (${loader} loader)…`,
  );
  const times =
    loader === 'plain' ? await loadPlain(setup, customers, events, log) : await loadFast(setup, partition, customers, events, log);
  log(`close: loaded in ${times.insertSeconds.toFixed(0)} s, rollups rebuilt in ${times.rebuildSeconds.toFixed(0)} s`);
  return times;
}

/**
 * What a load leaves, for comparing loaders: an md5 over the sorted rows of events (with the partition each is in),
 * event_keys, usage_rollups and usage_unique_keys, the sequence, and the schema lines of loadedSchema. received_at
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
      '(SELECT tableoid::regclass::text AS partition, seq, source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late FROM events)',
    ),
    await digest('event_keys', 'event_keys'),
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

export async function benchClose(
  url: string,
  customers: number,
  events: number,
  log: (line: string) => void,
  options: { skipClose?: boolean; loader?: Loader } = {},
): Promise<CloseFigures> {
  const setup = new pg.Pool({ connectionString: url, max: 1 + LOAD_CONNECTIONS });
  try {
    const loader = options.loader ?? 'fast';
    const { insertSeconds, rebuildSeconds } = await loadCloseData(setup, customers, events, log, loader);
    await setup.query('ANALYZE events');
    await setup.query('ANALYZE usage_rollups');
    await setup.query('ANALYZE usage_unique_keys');
    // The load's dirty pages written out now, so neither measurement below pays for them.
    let start = process.hrtime.bigint();
    await setup.query('CHECKPOINT');
    const checkpointSeconds = seconds(start);
    log(`close: checkpoint after loading ${checkpointSeconds.toFixed(0)} s`);

    start = process.hrtime.bigint();
    await setup.query(
      `SELECT customer_id, type, count(*), sum((meter_values->>'storage_gb_hours')::numeric), max((meter_values->>'peak_vcpu')::numeric),
              count(DISTINCT meter_values->>'analytics_seats')
         FROM events WHERE time >= '2026-09-01' AND time < '2026-10-01' GROUP BY customer_id, type`,
    );
    const groupBySeconds = Number(process.hrtime.bigint() - start) / 1e9;
    const rollups = (await setup.query<{ grain: string; n: string }>('SELECT grain, count(*)::text AS n FROM usage_rollups GROUP BY grain'))
      .rows;
    const rows = (grain: string) => Number(rollups.find((r) => r.grain === grain)?.n ?? '0');
    const sharedBuffers = (await setup.query<{ s: string }>("SELECT current_setting('shared_buffers') AS s")).rows[0]!.s;

    if (options.skipClose) throw new Error('generated only (skipClose)');
    // The close on its own connections, so their peak memory is the close's alone.
    const pool = new pg.Pool({ connectionString: url, max: 10, application_name: CLOSE_APPLICATION });
    let closeSeconds: number;
    let invoices: number;
    let backendPeak = 0;
    try {
      const catalog = (await currentCatalog(pool))!;
      start = process.hrtime.bigint();
      const closed = await closePeriod(pool, catalog, { period: '2026-09' });
      closeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
      invoices = closed.invoices.length;
      const pids = (await setup.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [CLOSE_APPLICATION]))
        .rows;
      for (const { pid } of pids) backendPeak = Math.max(backendPeak, peakRssBytes(pid));
    } finally {
      await pool.end();
    }
    const databaseBytes = Number((await setup.query<{ b: string }>('SELECT pg_database_size(current_database())::text AS b')).rows[0]!.b);
    const rollupBytes = Number(
      (
        await setup.query<{ b: string }>(
          "SELECT (pg_total_relation_size('usage_rollups') + pg_total_relation_size('usage_unique_keys'))::text AS b",
        )
      ).rows[0]!.b,
    );
    const series = Number(
      (
        await setup.query<{ n: string }>(
          "SELECT count(*)::text AS n FROM (SELECT DISTINCT customer_id, type, meter_id, late, valued, dimensions FROM usage_rollups WHERE grain = 'hour') s",
        )
      ).rows[0]!.n,
    );
    return {
      customers,
      events,
      generation: GENERATION[loader],
      insert_seconds: insertSeconds,
      rebuild_seconds: rebuildSeconds,
      checkpoint_seconds: checkpointSeconds,
      close_seconds: closeSeconds,
      group_by_seconds: groupBySeconds,
      invoices,
      rollup_rows_month: rows('month'),
      rollup_rows_hour: rows('hour'),
      database_bytes: databaseBytes,
      rollup_bytes: rollupBytes,
      rollup_series_hour: series,
      node_rss_peak_bytes: process.resourceUsage().maxRSS * 1024,
      postgres_backend_peak_bytes: backendPeak,
      postgres_shared_buffers: sharedBuffers,
    };
  } finally {
    await setup.end();
  }
}
