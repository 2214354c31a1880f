// The rollups' watermark (migration 032): usage_rollups and usage_unique_keys count every event up to
// usage_rollup_watermark.seq, and the events above it are folded in by catchUpRollups, in order, each fold and the
// watermark's move in one transaction. Ingestion only stores events (issue 19: the fold was most of an event's cost);
// the `serve` worker catches up every few seconds, a close catches up before it rates, and a read of the rollups
// (rollups.ts readUsage) catches up first when they do not reach what it reads.
import pg from 'pg';
import { invariant } from '../domain/result.js';
import { transaction } from '../store/store.js';

type Db = pg.Pool | pg.PoolClient;
const isPool = (db: Db): db is pg.Pool => db instanceof pg.Pool;

/** Limit: events one fold transaction takes, so its aggregation stays within the function's work_mem and locks stay short. */
export const CATCH_UP_FOLD_EVENTS_MAX = 200_000;

export interface CatchUp {
  /** The watermark after the catch-up: every event at or below it is counted in the rollups. */
  watermark: string;
  /** Seqs the catch-up moved the watermark over (an upper bound of the events folded: aborted writers leave gaps). */
  advanced: string;
  /** Fold transactions it took: one per CATCH_UP_FOLD_EVENTS_MAX events at most, whatever the seqs between them. */
  folds: number;
}

/** Every event up to this seq is counted in the rollups. */
export async function rollupWatermark(db: Db): Promise<bigint> {
  const mark = BigInt((await db.query<{ seq: string }>('SELECT seq::text AS seq FROM usage_rollup_watermark')).rows[0]!.seq);
  if (isPool(db)) remember(db, mark);
  return mark;
}

/**
 * The seq of the newest event this snapshot sees, or the rollups' watermark where that is higher (a seq no event
 * took, when the newest writers rolled back): a close's watermark, read under its lock. Found above the watermark,
 * where the events not folded yet are (seq has a block-range index, migration 035: a maximum over all of it would read
 * the table).
 */
export async function newestEventSeq(db: Db): Promise<string> {
  return (await db.query<{ m: string }>(`SELECT ${NEWEST_EVENT_SEQ}::text AS m`)).rows[0]!.m;
}

/** newestEventSeq as an SQL expression (a bigint), for a query that reads it beside other things. */
export const NEWEST_EVENT_SEQ =
  '(SELECT greatest(w.seq, (SELECT max(e.seq) FROM events e WHERE e.seq > w.seq)) FROM usage_rollup_watermark w)';

// The watermark only moves forward (migration 032's trigger), so a pool's highest one seen stays true: a read at or
// below it needs no query (a close rates every customer's windows at one watermark).
const reached = new WeakMap<pg.Pool, bigint>();
function remember(pool: pg.Pool, mark: bigint): void {
  if (mark > (reached.get(pool) ?? -1n)) reached.set(pool, mark);
}

/**
 * Folds every event stored before this call into the rollups. The horizon is read under LOCK TABLE events IN SHARE
 * MODE, which waits for the ingestion in flight (a batch's statement) and holds new batches for as long as reading
 * one maximum takes; the folds then run without it, at most CATCH_UP_FOLD_EVENTS_MAX events a transaction. Two catch-ups
 * at once fold each event once: each fold takes the watermark row first.
 */
export async function catchUpRollups(pool: pg.Pool, options: { foldEventsMax?: number } = {}): Promise<CatchUp> {
  const most = options.foldEventsMax ?? CATCH_UP_FOLD_EVENTS_MAX;
  invariant(Number.isSafeInteger(most) && most > 0, `catch-up: events a fold takes must be a positive whole number, got ${most}`);
  const start = await rollupWatermark(pool);
  // Nothing committed above the watermark: nothing to fold, and no lock that would hold ingestion for a moment.
  if (BigInt(await newestEventSeq(pool)) <= start) return { watermark: start.toString(), advanced: '0', folds: 0 };
  const horizon = await transaction(pool, async (client) => {
    await client.query('LOCK TABLE events IN SHARE MODE');
    return BigInt((await client.query<{ h: string }>('SELECT usage_rollup_horizon()::text AS h')).rows[0]!.h);
  });
  // Fewer seqs than the limit hold fewer events; more may hold few (seqs are taken in blocks, migration 036), so the
  // steps are found by counting the events between.
  const steps = horizon - start > BigInt(most) ? [...(await foldSteps(pool, start, horizon, most)), horizon] : [horizon];
  let mark = start;
  let folds = 0;
  for (const step of steps) {
    if (step <= mark) continue; // another catch-up folded past it meanwhile
    mark = BigInt((await pool.query<{ m: string }>('SELECT usage_rollups_catch_up($1::bigint)::text AS m', [step.toString()])).rows[0]!.m);
    folds += 1;
  }
  remember(pool, mark);
  return { watermark: mark.toString(), advanced: (mark > start ? mark - start : 0n).toString(), folds };
}

/**
 * The seq of every `most`-th event above `mark` and below `horizon`, ascending: where each fold stops, so that none
 * takes more than `most` events. Every event up to the horizon is committed (it was read under the SHARE lock, which
 * waited for the writers then in flight; later ones take seqs above it), so the count is what the folds will find.
 */
async function foldSteps(pool: pg.Pool, mark: bigint, horizon: bigint, most: number): Promise<bigint[]> {
  const found = await pool.query<{ bound: string }>(
    `SELECT seq::text AS bound FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM events WHERE seq > $1 AND seq < $2) AS unfolded
      WHERE n % $3 = 0 ORDER BY n`,
    [mark.toString(), horizon.toString(), most],
  );
  return found.rows.map((row) => BigInt(row.bound));
}

/**
 * Makes the rollups reach what a read needs: every event up to `watermark` (a close's event watermark), or without
 * one every event stored. Cheap when they do (no query for a watermark the pool has seen them reach, else one or two
 * index reads); otherwise a catch-up, which needs the pool: a read inside a transaction must come after one.
 */
export async function ensureRollupsReach(db: Db, watermark?: string): Promise<void> {
  const needed = BigInt(watermark ?? (await newestEventSeq(db)));
  if (isPool(db) && (reached.get(db) ?? -1n) >= needed) return;
  const mark = await rollupWatermark(db);
  if (mark >= needed) return;
  invariant(
    isPool(db),
    `the usage rollups reach event ${mark}, the read needs ${needed}: catch them up (catchUpRollups) before a transaction reads them`,
  );
  await catchUpRollups(db);
}

/** How often a serving process folds what was ingested since (src/cli/serve-roles.ts). */
export const CATCH_UP_INTERVAL_MS = 2_000;

/**
 * Catches the rollups up every interval while the process serves, one catch-up at a time (a tick that finds one still
 * running passes); a failed catch-up is logged and tried again at the next tick (the events are stored; only the fold
 * waits). stop() waits for a catch-up in progress.
 */
export function startRollupCatchUp(
  pool: pg.Pool,
  options: { intervalMs?: number; log: (entry: Record<string, unknown>) => void },
): { stop: () => Promise<void> } {
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    running = catchUpRollups(pool)
      .then((done) => {
        if (done.advanced !== '0')
          options.log({ msg: 'usage rollups caught up', watermark: done.watermark, advanced: done.advanced, folds: done.folds });
      })
      .catch((error: unknown) => options.log({ msg: 'usage rollups catch-up failed', error: (error as Error).message }))
      .finally(() => (running = undefined));
  };
  const timer = setInterval(tick, options.intervalMs ?? CATCH_UP_INTERVAL_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
