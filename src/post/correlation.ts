// The correlation of the outbox row being worked on, carried to the ERP connectors and the worker's log lines.
// AsyncLocalStorage holds it for the duration of one row, so every request a connector makes for that row (look up,
// post, in whatever document form) carries the header without each port method taking one more argument.
import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';
import { CORRELATION_HEADER, correlationChain, formatCorrelationHeader, type CorrelationChain } from '../domain/correlation.js';

export type LogLine = (line: Record<string, unknown>) => void;

interface RowContext {
  chain: CorrelationChain | undefined;
  log: LogLine | undefined;
}

const current = new AsyncLocalStorage<RowContext>();

/** The chains of claimed outbox rows, by outbox key, from the correlations migration 010 writes with each row. */
export async function outboxCorrelations(db: pg.Pool | pg.PoolClient, keys: readonly string[]): Promise<Map<string, CorrelationChain>> {
  if (keys.length === 0) return new Map();
  const rows = (
    await db.query<{ subject_id: string; rating_run: string | null; invoice: string; journal: string | null }>(
      "SELECT subject_id, rating_run, invoice, journal FROM correlations WHERE subject_kind = 'outbox' AND subject_id = ANY($1)",
      [keys],
    )
  ).rows;
  return new Map(
    rows.map((r) => [
      r.subject_id,
      correlationChain({ invoice: r.invoice, rating_run: r.rating_run }, { journal: r.journal, outbox: r.subject_id }),
    ]),
  );
}

/** Runs the work for one outbox row with its correlation in scope. */
export function withCorrelation<T>(chain: CorrelationChain | undefined, log: LogLine | undefined, work: () => Promise<T>): Promise<T> {
  return current.run({ chain, log }, work);
}

/** Headers for a request to an ERP: `X-Accrue-Correlation` when a row is in scope, nothing otherwise. */
export function correlationHeaders(): Record<string, string> {
  const chain = current.getStore()?.chain;
  return chain ? { [CORRELATION_HEADER]: formatCorrelationHeader(chain) } : {};
}

/** A structured log line for the row in scope, with its correlation id and chain links. */
export function logOutbox(line: Record<string, unknown>): void {
  const context = current.getStore();
  if (!context?.log) return;
  const chain = context.chain;
  context.log({
    ...line,
    ...(chain
      ? {
          correlation: chain.correlation_id,
          rating_run: chain.rating_run,
          invoice: chain.invoice,
          journal: chain.journal,
          outbox: chain.outbox,
        }
      : {}),
  });
}
