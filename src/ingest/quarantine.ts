// Quarantined events (unknown type or subject) are replayed once the catalog knows them.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { ingestBatch } from './service.js';
import { INGEST_LIMITS } from './cloudevent.js';

export interface ReplayOutcome {
  examined: number;
  accepted: number;
  duplicate: number;
  conflict: number;
  rejected: number;
  still_quarantined: number;
}

export async function replayQuarantine(pool: pg.Pool, catalog: CatalogVersion): Promise<ReplayOutcome> {
  const outcome: ReplayOutcome = { examined: 0, accepted: 0, duplicate: 0, conflict: 0, rejected: 0, still_quarantined: 0 };
  let after = 0;
  for (;;) {
    const rows = (
      await pool.query<{ seq: string; event: unknown }>(
        'SELECT seq, event FROM quarantine WHERE replayed_at IS NULL AND seq > $1 ORDER BY seq LIMIT $2',
        [after, INGEST_LIMITS.batchEventsMax],
      )
    ).rows;
    if (rows.length === 0) return outcome;
    after = Number(rows[rows.length - 1]!.seq);
    // Replay is judged by today's clock only for the future-skew rule; a quarantined event was within it when it arrived.
    const result = await ingestBatch(
      pool,
      catalog,
      rows.map((r) => r.event),
      { channel: 'replay', futureSkewMsMax: Number.MAX_SAFE_INTEGER },
    );
    const done: Array<{ seq: string; result: string }> = [];
    result.results.forEach((r, i) => {
      outcome.examined += 1;
      if (r.status === 'quarantined') outcome.still_quarantined += 1;
      else {
        outcome[r.status] += 1;
        done.push({ seq: rows[i]!.seq, result: r.status });
      }
    });
    if (done.length > 0) {
      await pool.query(
        `UPDATE quarantine q SET replayed_at = now(), replay_result = d.result
           FROM jsonb_to_recordset($1::jsonb) AS d(seq bigint, result text) WHERE q.seq = d.seq`,
        [JSON.stringify(done)],
      );
    }
  }
}

export async function listQuarantine(pool: pg.Pool, options: { limit?: number; all?: boolean } = {}) {
  return (
    await pool.query(
      `SELECT seq, source, id, reason, problems, received_at, replayed_at, replay_result FROM quarantine
        ${options.all ? '' : 'WHERE replayed_at IS NULL'} ORDER BY seq LIMIT $1`,
      [options.limit ?? 100],
    )
  ).rows;
}
