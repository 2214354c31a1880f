// What rating reads from the store: the usage windows it needs (as of a watermark), the grant balances earlier
// finalized invoices drew, and the grouped and per-day quantities the estimates rate from. Read-only.
import { aggregateSql, carriesValueSql, meterValueSql } from '../meter/usage.js';
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import type { Meter } from '../domain/model.js';
import { Decimal, decimalText } from '../domain/money.js';
import type { PeriodWindow } from '../meter/period.js';
import { windowUsage, type WindowUsage } from '../meter/windows.js';
import { windowKey, type UsageWindow } from './rate.js';
import { eventStreamWindow } from '../store/event-window.js';

type Db = pg.Pool | pg.PoolClient;

/**
 * What finalized invoices already drew from each of a customer's grants (minor units), leaving out the
 * period being rated itself, so that re-running a period sees the same balances it saw the first time. An invoice a
 * credit note reversed gave its drawdowns back; a dispute's credit note (part of a charge line) gives none back.
 */
export async function grantBalancesUsed(db: Db, customer: string, ratingPeriod: string): Promise<Map<string, bigint>> {
  const rows = (
    await db.query<{ grant_id: string; used: string }>(
      `SELECT d.grant_id, sum(d.amount_minor)::text AS used FROM credit_drawdowns d JOIN invoices i ON i.id = d.invoice_id
      WHERE d.customer = $1 AND i.status = 'finalized' AND NOT (i.kind = 'invoice' AND i.period = $2)
        AND NOT EXISTS (SELECT 1 FROM invoices cn WHERE cn.corrects = i.id AND cn.kind = 'credit_note' AND cn.status = 'finalized'
                          AND NOT EXISTS (SELECT 1 FROM disputes x WHERE x.credit_note = cn.id))
      GROUP BY d.grant_id
      UNION ALL
      -- What expired unused was released as breakage (src/close/credit-life.ts): it is never drawn again.
      SELECT j.source_document, sum(l.debit_minor)::text FROM journals j JOIN journal_lines l ON l.journal_id = j.id
       WHERE j.kind = 'credit_expiry' AND split_part(j.source_document, ':', 1) = $1 AND l.debit_minor > 0
       GROUP BY j.source_document`,
      [customer, ratingPeriod],
    )
  ).rows;
  const used = new Map<string, bigint>();
  for (const r of rows) used.set(r.grant_id, (used.get(r.grant_id) ?? 0n) + BigInt(r.used));
  return used;
}

/** The usage of each window (keyed by windowKey), read up to the watermark; late events only when asked. */
export async function readWindows(
  db: Db,
  catalog: CatalogVersion,
  customer: string,
  windows: readonly UsageWindow[],
  watermark: string,
  options: { includeLate?: boolean } = {},
): Promise<Map<string, WindowUsage>> {
  const answers = new Map<string, WindowUsage>();
  for (const w of windows) {
    const meter = catalog.index.meters.get(w.meter);
    if (!meter) throw new Error(`rating asked for unknown meter ${w.meter}`);
    answers.set(windowKey(w), await windowUsage(db, meter, customer, w.from, w.to, watermark, options));
  }
  return answers;
}

/** A meter's aggregate, value and carried-value condition over `events`, the meter id being the parameter `idParam`. */
function aggregateOf(meter: Meter, idParam: string): { aggregate: string; value: string; present: string } {
  return { aggregate: aggregateSql(meter, idParam), value: meterValueSql(idParam), present: carriesValueSql(meter, idParam) };
}

/** One grouped query per meter: every customer's quantity over the whole period (not late, up to the watermark). */
export async function periodQuantities(
  db: Db,
  catalog: CatalogVersion,
  window: PeriodWindow,
  watermark: string,
): Promise<Map<string, Map<string, Decimal>>> {
  const result = new Map<string, Map<string, Decimal>>();
  for (const meter of catalog.catalog.meters as Meter[]) {
    const { aggregate, present } = aggregateOf(meter, '$5');
    const params = [meter.event_type, window.from, window.to, watermark, ...(meter.aggregation === 'count' ? [] : [meter.id])];
    const rows = (
      await db.query<{ customer: string; quantity: string }>(
        `SELECT customer_id AS customer, (${aggregate})::text AS quantity FROM events
          WHERE type = $1 AND time >= $2 AND time < $3 AND seq <= $4 AND NOT late${present} GROUP BY 1`,
        params,
      )
    ).rows;
    result.set(meter.id, new Map(rows.filter((r) => r.quantity !== null).map((r) => [r.customer, new Decimal(r.quantity)])));
  }
  return result;
}

/**
 * Per day of `days`, the meter's quantity over [from, min(to, end of that day)) with its aggregation, from one
 * query grouped by day: count and sum add up, max keeps the highest, unique_count counts keys on their first day,
 * latest carries the last value forward. Late events are left out, as the rating of a period leaves them out.
 */
export async function cumulativeQuantities(
  db: Db,
  meter: Meter,
  customer: string,
  from: string,
  to: string,
  days: readonly string[],
): Promise<string[]> {
  const { value, present } = aggregateOf(meter, '$5');
  const where = `${eventStreamWindow({ customer: '$1', type: '$2', from: '$3', to: '$4' })} AND NOT late${present}`;
  const day = `((time AT TIME ZONE 'UTC')::date)::text`;
  const sql = {
    count: `SELECT ${day} AS day, count(*)::text AS q FROM events WHERE ${where} GROUP BY 1`,
    sum: `SELECT ${day} AS day, sum(${value}::numeric)::text AS q FROM events WHERE ${where} GROUP BY 1`,
    max: `SELECT ${day} AS day, max(${value}::numeric)::text AS q FROM events WHERE ${where} GROUP BY 1`,
    unique_count: `SELECT ((first AT TIME ZONE 'UTC')::date)::text AS day, count(*)::text AS q FROM (SELECT min(time) AS first FROM events WHERE ${where} GROUP BY ${value}) k GROUP BY 1`,
    latest: `SELECT DISTINCT ON (1) ${day} AS day, (${value}::numeric)::text AS q FROM events WHERE ${where} ORDER BY 1, time DESC, id COLLATE "C" DESC, source COLLATE "C" DESC`,
  }[meter.aggregation];
  const params = [customer, meter.event_type, new Date(from).toISOString(), new Date(to).toISOString()];
  const rows = (await db.query<{ day: string; q: string }>(sql, meter.aggregation === 'count' ? params : [...params, meter.id])).rows;
  const byDay = new Map(rows.map((r) => [r.day, new Decimal(r.q)]));
  let running: Decimal | null = null;
  return days.map((d) => {
    const q = byDay.get(d);
    if (q !== undefined) {
      if (running === null || meter.aggregation === 'latest') running = q;
      else if (meter.aggregation === 'max') running = Decimal.max(running, q);
      else running = running.plus(q);
    }
    return running === null ? '0' : decimalText(running);
  });
}
