// The outbox worker: drains one target again and again, and rides out the database going away (a restart, a
// failover, a dropped connection) by waiting and carrying on. Nothing is lost meanwhile: a row claimed when the
// connection dropped keeps its lease, the lease expires, and the next claim looks the document up before posting.
import type pg from 'pg';
import { drainOutbox, type DrainOutcome, type RetryPolicy } from './outbox.js';
import type { ErpTarget } from './target.js';

export const WORKER_LIMITS = {
  reconnectDelayMsMin: 100,
  reconnectDelayMsMax: 5_000,
  idlePollMs: 1_000,
  // A database that stays away this long is an outage for a human, not a blip to wait out.
  reconnectAttemptsMax: 120,
};

/** Errors that mean "the database is (briefly) not there", as opposed to a bug or a refused statement. */
export function isConnectionLoss(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now; class 08 is connection exceptions.
  if (code === '57P01' || code === '57P02' || code === '57P03' || code.startsWith('08')) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN'].includes(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|terminating connection|Client has encountered a connection error|the database system is (starting up|shutting down)/i.test(
    message,
  );
}

export interface WorkerOptions extends Partial<RetryPolicy> {
  /** Stop once nothing is pending for the target (claimed rows of a dead worker count as pending until their lease ends). */
  untilEmpty?: boolean;
  signal?: AbortSignal;
  leaseMs?: number;
  log?: (line: Record<string, unknown>) => void;
}

export interface WorkerOutcome extends DrainOutcome {
  reconnects: number;
}

export async function runOutboxWorker(pool: pg.Pool, target: ErpTarget, options: WorkerOptions = {}): Promise<WorkerOutcome> {
  const total: WorkerOutcome = { posted: 0, found_existing: 0, retried: 0, dead: 0, reconnects: 0 };
  let failures = 0;
  while (!options.signal?.aborted) {
    try {
      // untilEmpty: wait out backoffs and foreign leases until no row is pending; otherwise one pass, then idle.
      const outcome = await drainOutbox(pool, target, {
        untilEmptyMs: options.untilEmpty ? Number.POSITIVE_INFINITY : 0,
        leaseMs: options.leaseMs,
        attemptsMax: options.attemptsMax,
        backoffBaseMs: options.backoffBaseMs,
        log: options.log,
      });
      failures = 0;
      total.posted += outcome.posted;
      total.found_existing += outcome.found_existing;
      total.retried += outcome.retried;
      total.dead += outcome.dead;
      if (options.untilEmpty) return total;
      if (outcome.posted + outcome.found_existing + outcome.retried + outcome.dead === 0)
        await sleep(WORKER_LIMITS.idlePollMs, options.signal);
    } catch (error) {
      if (!isConnectionLoss(error)) throw error;
      failures += 1;
      total.reconnects += 1;
      if (failures > WORKER_LIMITS.reconnectAttemptsMax)
        throw new Error(
          `the database stayed unreachable through ${WORKER_LIMITS.reconnectAttemptsMax} attempts: ${(error as Error).message}`,
          { cause: error },
        );
      const delayMs = Math.min(WORKER_LIMITS.reconnectDelayMsMax, WORKER_LIMITS.reconnectDelayMsMin * 2 ** Math.min(failures - 1, 10));
      options.log?.({
        level: 'warn',
        msg: 'database connection lost; waiting to reconnect',
        target: target.name,
        attempt: failures,
        delay_ms: delayMs,
        error: (error as Error).message,
      });
      await sleep(delayMs, options.signal);
    }
  }
  return total;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
