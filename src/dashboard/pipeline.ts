// Pipeline health for the billing engineer on call: how fast usage comes in and what it becomes, what waits in
// quarantine, and per ERP connector the posting backlog, its oldest entry and the dead-letter queue.
import type pg from 'pg';

/** Limits: the longest look back, and the most recent quarantined events shown. */
export const PIPELINE_LIMITS = { hoursMax: 24 * 90, quarantineRecentMax: 20 } as const;

export type Bucket = 'minute' | 'hour' | 'day';

export interface IngestBucket {
  at: string;
  received: number;
  accepted: number;
  duplicates: number;
  conflicts: number;
  rejected: number;
  quarantined: number;
}

export interface PipelineHealth {
  window: { from: string; to: string; hours: number; bucket: Bucket };
  ingestion: {
    totals: Omit<IngestBucket, 'at'> & { batches: number };
    /** Events received per second over the last 5 minutes and the last hour (decimal strings). */
    rate_per_second: { last_5_minutes: string; last_hour: string };
    series: IngestBucket[];
  };
  quarantine: {
    pending: number;
    by_reason: Array<{ reason: string; pending: number; oldest: string }>;
    recent: Array<{ seq: string; source: string; id: string; reason: string; received_at: string }>;
  };
  /**
   * Per ERP target: the outbox, and for a configured connection its status (needs_reauthorization: a person must run
   * accrue connect), when a daily limit parked it until, and the documents waiting for a person (a mapping, an open
   * period) rather than for a retry.
   */
  connectors: Array<{
    target: string;
    pending: number;
    posted: number;
    dead: number;
    oldest_pending_seconds: number | null;
    replays: number;
    status: string | null;
    parked_until: string | null;
    waiting: number;
  }>;
}

/** Minutes up to two hours, hours up to four days, days beyond: about a hundred bars at most. */
export function bucketFor(hours: number): Bucket {
  return hours <= 2 ? 'minute' : hours <= 96 ? 'hour' : 'day';
}

const COUNTS = ['received', 'accepted', 'duplicates', 'conflicts', 'rejected', 'quarantined'] as const;

export async function pipelineHealth(pool: pg.Pool, options: { hours: number; now?: Date }): Promise<PipelineHealth> {
  const hours = Math.min(Math.max(1, Math.floor(options.hours)), PIPELINE_LIMITS.hoursMax);
  const bucket = bucketFor(hours);
  const to = options.now ?? new Date();
  const from = new Date(to.getTime() - hours * 3_600_000);
  const sums = COUNTS.map((c) => `coalesce(sum(${c}), 0)::int AS ${c}`).join(', ');
  const series = (
    await pool.query<IngestBucket>(
      `SELECT to_char(date_trunc($3::text, received_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at, ${sums}
         FROM ingest_receipts WHERE received_at >= $1 AND received_at < $2 GROUP BY 1 ORDER BY 1`,
      [from, to, bucket],
    )
  ).rows;
  const totals = (
    await pool.query<Omit<IngestBucket, 'at'> & { batches: number }>(
      `SELECT ${sums}, count(*)::int AS batches FROM ingest_receipts WHERE received_at >= $1 AND received_at < $2`,
      [from, to],
    )
  ).rows[0]!;
  const rate = (
    await pool.query<{ last_5_minutes: string; last_hour: string }>(
      `SELECT round(coalesce(sum(received) FILTER (WHERE received_at >= $1::timestamptz - interval '5 minutes'), 0) / 300.0, 3)::text AS last_5_minutes,
              round(coalesce(sum(received), 0) / 3600.0, 3)::text AS last_hour
         FROM ingest_receipts WHERE received_at >= $1::timestamptz - interval '1 hour' AND received_at < $1`,
      [to],
    )
  ).rows[0]!;
  const byReason = (
    await pool.query<{ reason: string; pending: number; oldest: Date }>(
      'SELECT reason, count(*)::int AS pending, min(received_at) AS oldest FROM quarantine WHERE replayed_at IS NULL GROUP BY reason ORDER BY reason',
    )
  ).rows;
  const recent = (
    await pool.query<{ seq: string; source: string; id: string; reason: string; received_at: Date }>(
      'SELECT seq::text, source, id, reason, received_at FROM quarantine WHERE replayed_at IS NULL ORDER BY seq DESC LIMIT $1',
      [PIPELINE_LIMITS.quarantineRecentMax],
    )
  ).rows;
  const connectors = (
    await pool.query<Omit<PipelineHealth['connectors'][number], 'parked_until'> & { parked_until: Date | null }>(
      `SELECT t.target, coalesce(o.pending, 0) AS pending, coalesce(o.posted, 0) AS posted, coalesce(o.dead, 0) AS dead,
              o.oldest_pending_seconds, coalesce(o.replays, 0) AS replays, c.status, CASE WHEN c.parked_until > now() THEN c.parked_until END AS parked_until,
              coalesce(o.waiting, 0) AS waiting
         FROM (SELECT target FROM outbox UNION SELECT name FROM erp_connections) t
         LEFT JOIN (SELECT target,
                           count(*) FILTER (WHERE status = 'pending')::int AS pending,
                           count(*) FILTER (WHERE status = 'posted')::int AS posted,
                           count(*) FILTER (WHERE status = 'dead')::int AS dead,
                           floor(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')))::int AS oldest_pending_seconds,
                           coalesce(sum(replays), 0)::int AS replays,
                           count(*) FILTER (WHERE status = 'pending' AND last_error->>'code' IN ('mapping_missing', 'period_locked', 'needs_reauthorization', 'parked'))::int AS waiting
                      FROM outbox GROUP BY target) o ON o.target = t.target
         LEFT JOIN erp_connections c ON c.name = t.target
        ORDER BY t.target`,
    )
  ).rows.map((r) => ({ ...r, parked_until: r.parked_until?.toISOString() ?? null }));
  return {
    window: { from: from.toISOString(), to: to.toISOString(), hours, bucket },
    ingestion: { totals, rate_per_second: rate, series },
    quarantine: {
      pending: byReason.reduce((s, r) => s + r.pending, 0),
      by_reason: byReason.map((r) => ({ reason: r.reason, pending: r.pending, oldest: r.oldest.toISOString() })),
      recent: recent.map((r) => ({ ...r, received_at: r.received_at.toISOString() })),
    },
    connectors,
  };
}
