// The period's side of a close: whether it may close now, step 1 (closing, the event watermark) and step 2
// (late events flagged, the period closed), each in one transaction.
import { newestEventSeq } from '../meter/catch-up.js';
import { billingRunSubject } from '../domain/keys.js';
import type pg from 'pg';
import { type Problem } from '../domain/result.js';
import { type PeriodWindow } from '../meter/period.js';
import { transaction } from '../store/store.js';
import { appendAudit, type AppendAuditInput } from '../audit/log.js';

/**
 * Periods are calendar months in UTC (src/meter/period.ts), for every legal entity alike: a period has ended once
 * `now` reaches its exclusive end. Returns the refusal, or whether the close is early.
 */
export function periodTiming(window: PeriodWindow, now: Date, early: boolean): { refused: Problem } | { early: boolean } {
  if (now.getTime() < Date.parse(window.from)) {
    return {
      refused: {
        path: 'period',
        code: 'period_in_future',
        message: `period ${window.period} has not begun (it starts ${window.from}, now is ${now.toISOString()}); a future period is never closed`,
      },
    };
  }
  if (now.getTime() < Date.parse(window.to)) {
    if (early) return { early: true };
    return {
      refused: {
        path: 'period',
        code: 'period_not_ended',
        message: `period ${window.period} has not ended (it ends ${window.to}, now is ${now.toISOString()}); close it before its end only on purpose, with early (accrue close --early)`,
      },
    };
  }
  return { early: false };
}

export interface CloseStart {
  watermark: string;
  /** Some entity's period was `closing` before this run: an earlier run failed, was killed or still runs. */
  resumed: boolean;
  closingSince: string;
}

/**
 * Step 1 of a close: marks the period `closing` for the legal entities and fixes the event watermark. The SHARE lock
 * waits for in-flight ingestion to commit, so no event at or below the watermark commits later. A `closing` period is
 * open to ingestion: events keep arriving un-late (above the watermark) until finishClose marks them late and the
 * period closed in one transaction. A period already `closing` or `closed` keeps its watermark: a resumed or repeated
 * run rates the same usage, so the invoices an earlier attempt finalized come back unchanged.
 */
export async function beginClose(
  pool: pg.Pool,
  entities: string[],
  period: string,
  audit: { by: string; early: boolean; now: Date },
): Promise<CloseStart> {
  return transaction(pool, async (client) => {
    await client.query('LOCK TABLE events IN SHARE MODE');
    const mark = await newestEventSeq(client);
    const before = (
      await client.query<{ legal_entity: string; status: string }>(
        'SELECT legal_entity, status FROM billing_periods WHERE period = $1 AND legal_entity = ANY($2) ORDER BY legal_entity FOR UPDATE',
        [period, entities],
      )
    ).rows;
    for (const entity of entities) {
      await client.query(
        `INSERT INTO billing_periods (legal_entity, period, status, event_seq_watermark, closing_since) VALUES ($1, $2, 'closing', $3, now())
         ON CONFLICT (legal_entity, period) DO UPDATE
           SET status = CASE WHEN billing_periods.status = 'closed' THEN 'closed' ELSE 'closing' END,
               event_seq_watermark = coalesce(billing_periods.event_seq_watermark, EXCLUDED.event_seq_watermark),
               closing_since = coalesce(billing_periods.closing_since, EXCLUDED.closing_since)`,
        [entity, period, mark],
      );
    }
    const stored = (
      await client.query<{ mark: string; since: string | null }>(
        `SELECT max(event_seq_watermark)::text AS mark, to_char(min(closing_since) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since
         FROM billing_periods WHERE period = $1 AND legal_entity = ANY($2)`,
        [period, entities],
      )
    ).rows[0]!;
    const resumed = before.some((row) => row.status === 'closing');
    if (audit.early && !before.some((row) => row.status === 'closed')) {
      await appendAudit(client, {
        actor: audit.by,
        action: 'billing_run.close_early',
        subject: billingRunSubject(period, entities),
        reason: 'closed before the period ended (early)',
        details: { period, legal_entities: entities, now: audit.now.toISOString(), event_seq_watermark: stored.mark },
      });
    }
    return { watermark: stored.mark, resumed, closingSince: stored.since ?? '' };
  });
}

/**
 * Events of the period's customers ($4) in its window ($2, $3), beside `seq > $1` (the close's watermark): the events
 * above a watermark are the newest, found by the block ranges of seq (migration 035).
 */
const ARRIVED_IN_WINDOW = 'time >= $2::timestamptz AND time < $3::timestamptz AND customer_id = ANY($4)';

/**
 * Step 2 of a close, once every invoice of the run exists: in one transaction, the events of the period that arrived
 * while it was closing (above the watermark, so not billed by this run) are flagged late, to be billed by adjustment
 * like any late usage, and the period is marked closed. The lock holds new inserts until the commit; after it,
 * ingestion flags the period's events late itself.
 */
export async function finishClose(
  pool: pg.Pool,
  entities: string[],
  window: PeriodWindow,
  watermark: string,
  customers: string[],
  audit: () => AppendAuditInput,
): Promise<void> {
  await transaction(pool, async (client) => {
    await client.query('LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE');
    const closing =
      (
        await client.query("SELECT 1 FROM billing_periods WHERE period = $1 AND legal_entity = ANY($2) AND status <> 'closed'", [
          window.period,
          entities,
        ])
      ).rowCount ?? 0;
    if (closing > 0 && customers.length > 0) {
      const arrived = await client.query(`SELECT 1 FROM events WHERE NOT late AND seq > $1 AND ${ARRIVED_IN_WINDOW} LIMIT 1`, [
        watermark,
        window.from,
        window.to,
        customers,
      ]);
      if ((arrived.rowCount ?? 0) > 0) {
        await client.query(`UPDATE events SET late = true WHERE NOT late AND seq > $1 AND ${ARRIVED_IN_WINDOW}`, [
          watermark,
          window.from,
          window.to,
          customers,
        ]);
      }
    }
    await client.query(
      "UPDATE billing_periods SET status = 'closed', closed_at = coalesce(closed_at, now()) WHERE period = $1 AND legal_entity = ANY($2) AND status <> 'closed'",
      [window.period, entities],
    );
    await appendAudit(client, audit());
  });
}
