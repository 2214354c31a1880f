// The one way to call an ERP connection in production: every call waits for the connection's limits, shared by every
// process and caller through Postgres (a slot of its concurrency; for Xero, room in its sliding minute and day
// windows), is authorized, and after a 401 is authorized again once (the Authorizer refreshes under a row lock). A
// daily-limit 429 parks the connection until the ERP says, without spending anything on the documents waiting.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ConnectionParked, type ConnectionSettings } from '../domain/erp.js';
import { transaction } from '../store/store.js';
import { countCall, type Authorizer, type CallInit, type ErpCaller } from './caller.js';
import { concurrencyOf } from './connections.js';
import { httpSend, retryAfterMs } from './http.js';

/** Xero's documented limits per tenant: 60 calls in a minute, 5,000 in a day (and 5 in flight: the slots). */
export const XERO_WINDOWS = { perMinute: 60, perDay: 5_000 };

/** A Retry-After longer than this is a daily limit, whatever the ERP calls it: the connection is parked. */
export const PARK_AFTER_MS = 60 * 60_000;

export interface SharedCallerOptions {
  /** Window lengths (tests run Xero's ratios in a shortened minute). */
  minuteMs?: number;
  dayMs?: number;
  perMinute?: number;
  perDay?: number;
  timeoutMs?: number;
  /** How long a slot is held at most: a crashed holder's slot comes back after this. */
  leaseMs?: number;
  /** How often a caller waiting for a slot or for room in a window looks again. */
  pollMs?: number;
}

interface Window {
  ms: number;
  limit: number;
}

/** What every step of a shared call needs: the connection, its slots and windows, and the pool they live in. */
interface Shared {
  pool: pg.Pool;
  connection: string;
  slots: number;
  timeoutMs: number;
  leaseMs: number;
  pollMs: number;
  windows: Window[];
  /** How much wider than the ERP's each window is kept. */
  guardMs: number;
  /** The longest window: calls older than it (and the guard) count for nothing. */
  longest: number;
}

function sharedOf(pool: pg.Pool, settings: ConnectionSettings, options: SharedCallerOptions): Shared {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const minuteMs = options.minuteMs ?? 60_000;
  const windows: Window[] =
    settings.kind === 'xero'
      ? [
          { ms: minuteMs, limit: options.perMinute ?? XERO_WINDOWS.perMinute },
          { ms: options.dayMs ?? 86_400_000, limit: options.perDay ?? XERO_WINDOWS.perDay },
        ]
      : [];
  return {
    pool,
    connection: settings.name,
    slots: concurrencyOf(settings),
    timeoutMs,
    leaseMs: options.leaseMs ?? timeoutMs * 2,
    pollMs: options.pollMs ?? 25,
    windows,
    // A call counts from when it is sent until its answer (then from the answer on), and each window is a little wider
    // than the ERP's: the ERP sees a call somewhere in between, never outside.
    guardMs: Math.max(100, Math.ceil(minuteMs * 0.05)),
    longest: Math.max(0, ...windows.map((w) => w.ms)),
  };
}

/** A connection parked by a daily limit is not called before its time: the caller is told at once. */
async function refuseIfParked({ pool, connection }: Shared): Promise<void> {
  const row = (
    await pool.query<{ parked_until: Date; reason: string | null }>(
      'SELECT parked_until, parked_reason AS reason FROM erp_connections WHERE name = $1 AND parked_until > now()',
      [connection],
    )
  ).rows[0];
  if (row) throw new ConnectionParked(connection, row.parked_until, row.reason ?? 'a daily limit');
}

/** A slot of the connection's concurrency, held under a lease. */
async function takeSlot(shared: Shared, holder: string): Promise<number> {
  const { pool, connection, slots, leaseMs, pollMs } = shared;
  await refuseIfParked(shared);
  for (;;) {
    const got = await pool.query<{ slot: number }>(
      `UPDATE erp_call_slots SET holder = $2, lease_until = now() + ($4 || ' milliseconds')::interval
        WHERE (connection, slot) = (SELECT connection, slot FROM erp_call_slots
                                      WHERE connection = $1 AND slot <= $3 AND (lease_until IS NULL OR lease_until < now())
                                      ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING slot`,
      [connection, holder, slots, String(leaseMs)],
    );
    if (got.rows[0]) return got.rows[0].slot;
    await sleep(pollMs);
  }
}

/** One look at every window under the connection's lock: the wait until there is room, or the call logged (its id). */
function logIfRoom(shared: Shared): Promise<{ wait: number; id?: string }> {
  const { pool, connection, windows, guardMs, longest, pollMs } = shared;
  return transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`accrue:erp-calls:${connection}`]);
    let wait = 0;
    for (const w of windows) {
      const row = (
        await client.query<{ calls: number; wait_ms: number | null }>(
          `SELECT count(*)::int AS calls,
                  ceil(extract(epoch FROM (min(at) + ($3 || ' milliseconds')::interval - clock_timestamp())) * 1000)::int AS wait_ms
             FROM (SELECT at FROM erp_call_log WHERE connection = $1 AND at > clock_timestamp() - ($3 || ' milliseconds')::interval ORDER BY at DESC LIMIT $2) recent`,
          [connection, w.limit, String(w.ms + guardMs)],
        )
      ).rows[0]!;
      if (row.calls >= w.limit) wait = Math.max(wait, row.wait_ms ?? pollMs, 1);
    }
    if (wait > 0) return { wait };
    const id = (
      await client.query<{ id: string }>('INSERT INTO erp_call_log (connection, at) VALUES ($1, clock_timestamp()) RETURNING id', [
        connection,
      ])
    ).rows[0]!.id;
    // Calls older than the longest window count for nothing: kept briefly, removed as calls are made.
    await client.query("DELETE FROM erp_call_log WHERE connection = $1 AND at < clock_timestamp() - ($2 || ' milliseconds')::interval", [
      connection,
      String(longest + guardMs),
    ]);
    return { wait, id };
  });
}

/** Room for one call in every window, logged; waits until the oldest call in a full window leaves it. */
async function takeWindows(shared: Shared): Promise<string | undefined> {
  if (shared.windows.length === 0) return undefined;
  for (;;) {
    const logged = await logIfRoom(shared);
    if (logged.id !== undefined) return logged.id;
    await sleep(Math.min(logged.wait, 1_000));
  }
}

async function send(shared: Shared, method: string, url: string, init: CallInit, auth: Record<string, string>): Promise<Response> {
  const logId = await takeWindows(shared);
  countCall();
  try {
    return await httpSend(shared.connection, method, url, {
      headers: { ...init.headers, ...auth },
      body: init.body,
      timeoutMs: init.timeoutMs ?? shared.timeoutMs,
    });
  } finally {
    // The ERP counted the call somewhere between sending and answering: from the answer on, it counts here too, so a
    // window is never shorter than the ERP's however long the call took to arrive.
    if (logId !== undefined) await shared.pool.query('UPDATE erp_call_log SET at = clock_timestamp() WHERE id = $1', [logId]);
  }
}

/** A daily limit (Xero names it; any Retry-After of hours is one): the connection waits until then. */
async function parkIfDaily({ pool, connection }: Shared, res: Response): Promise<void> {
  if (res.status !== 429) return;
  const problem = (res.headers.get('x-rate-limit-problem') ?? '').toLowerCase();
  const waitMs = retryAfterMs(res.headers.get('retry-after'));
  if (problem !== 'day' && !(waitMs !== undefined && waitMs > PARK_AFTER_MS)) return;
  const until = new Date(Date.now() + (waitMs ?? 86_400_000));
  const reason = `${problem === 'day' ? 'daily limit' : 'rate limit'} reached (429, Retry-After ${res.headers.get('retry-after') ?? 'none'})`;
  await res.body?.cancel();
  await pool.query(
    'UPDATE erp_connections SET parked_until = greatest(coalesce(parked_until, $2), $2), parked_reason = $3, updated_at = now() WHERE name = $1',
    [connection, until, reason],
  );
  throw new ConnectionParked(connection, until, reason);
}

export function sharedCaller(
  pool: pg.Pool,
  settings: ConnectionSettings,
  authorizer: Authorizer,
  options: SharedCallerOptions = {},
): ErpCaller {
  const shared = sharedOf(pool, settings, options);
  const { connection, slots } = shared;
  let prepared: Promise<void> | undefined;
  const prepare = () =>
    (prepared ??= pool
      .query('INSERT INTO erp_call_slots (connection, slot) SELECT $1, s FROM generate_series(1, $2::int) AS s ON CONFLICT DO NOTHING', [
        connection,
        slots,
      ])
      .then(() => undefined));

  return {
    connection,
    async call(method, url, init = {}) {
      await prepare();
      const holder = randomUUID();
      const slot = await takeSlot(shared, holder);
      try {
        const auth = await authorizer.authorize(method, url);
        let res = await send(shared, method, url, init, auth);
        if (res.status === 401) {
          await res.body?.cancel();
          await authorizer.refresh(auth);
          res = await send(shared, method, url, init, await authorizer.authorize(method, url));
        }
        await parkIfDaily(shared, res);
        // The body is read while the slot is held: the ERP counts the call in flight until its answer is sent.
        const body = await res.arrayBuffer();
        return new Response(res.status === 204 || res.status === 304 ? null : body, {
          status: res.status,
          statusText: res.statusText,
          headers: res.headers,
        });
      } finally {
        await pool.query(
          'UPDATE erp_call_slots SET holder = NULL, lease_until = NULL WHERE connection = $1 AND slot = $2 AND holder = $3',
          [connection, slot, holder],
        );
      }
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
