// The unbilled estimate for the dashboard: each customer's period rated as a close would rate it, once per day with
// the usage up to the end of that day, so finance sees the invoice total building up before the month is closed.
// Read-only: nothing is written, no run id is kept; the figures are estimates, the close is what bills.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import type { Meter } from '../domain/model.js';
import { Decimal, decimalText } from '../domain/money.js';
import { formatProblems } from '../domain/result.js';
import { grantBalancesUsed } from '../invoice/store.js';
import type { PeriodWindow } from '../meter/period.js';
import { rateCustomerPeriod } from '../rate/rate-customer.js';

/** Limit: days one estimate covers (a month plus the weeks a close may take). */
export const ESTIMATE_DAYS_MAX = 100;

export interface DailyEstimate {
  customer: string;
  legal_entity: string;
  currency: string;
  /** Estimated invoice total (minor units, tax included) if the period had ended with the usage up to each day's end. */
  total_minor: bigint[];
}

const DAY_MS = 86_400_000;
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** The UTC days from `start` (inclusive) to `end` (exclusive), as YYYY-MM-DD. */
export function daysBetween(startDate: string, endDate: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${startDate}T00:00:00Z`); t < Date.parse(`${endDate}T00:00:00Z`); t += DAY_MS)
    days.push(new Date(t).toISOString().slice(0, 10));
  if (days.length > ESTIMATE_DAYS_MAX) throw new Error(`an estimate covers at most ${ESTIMATE_DAYS_MAX} days, not ${days.length}`);
  return days;
}

/**
 * Per day of `days`, the meter's quantity over [from, min(to, end of that day)) with its aggregation, from one
 * query grouped by day: count and sum add up, max keeps the highest, unique_count counts keys on their first day,
 * latest carries the last value forward. Late events are left out, as the rating of a period leaves them out.
 */
export async function cumulativeQuantities(
  db: pg.Pool | pg.PoolClient,
  meter: Meter,
  customer: string,
  from: string,
  to: string,
  days: readonly string[],
): Promise<string[]> {
  const value = `(meter_values->>${literal(meter.id)})`;
  const where = `customer_id = $1 AND type = $2 AND time >= $3 AND time < $4 AND NOT late${meter.aggregation === 'count' ? '' : ` AND meter_values ? ${literal(meter.id)}`}`;
  const day = `((time AT TIME ZONE 'UTC')::date)::text`;
  const sql = {
    count: `SELECT ${day} AS day, count(*)::text AS q FROM events WHERE ${where} GROUP BY 1`,
    sum: `SELECT ${day} AS day, sum(${value}::numeric)::text AS q FROM events WHERE ${where} GROUP BY 1`,
    max: `SELECT ${day} AS day, max(${value}::numeric)::text AS q FROM events WHERE ${where} GROUP BY 1`,
    unique_count: `SELECT ((first AT TIME ZONE 'UTC')::date)::text AS day, count(*)::text AS q FROM (SELECT min(time) AS first FROM events WHERE ${where} GROUP BY ${value}) k GROUP BY 1`,
    latest: `SELECT DISTINCT ON (1) ${day} AS day, (${value}::numeric)::text AS q FROM events WHERE ${where} ORDER BY 1, time DESC, id COLLATE "C" DESC, source COLLATE "C" DESC`,
  }[meter.aggregation];
  const rows = (
    await db.query<{ day: string; q: string }>(sql, [customer, meter.event_type, new Date(from).toISOString(), new Date(to).toISOString()])
  ).rows;
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

/**
 * Rates every customer of the catalog for the period once per day. Rating asks for usage by window; the windows
 * depend on dates only, so a first pass learns them, the store answers each window per day, and a pass per day rates.
 */
export async function estimateDaily(
  pool: pg.Pool,
  catalog: CatalogVersion,
  window: PeriodWindow,
  days: readonly string[],
): Promise<DailyEstimate[]> {
  const estimates: DailyEstimate[] = [];
  const ends = days.map((d) => Date.parse(`${d}T00:00:00Z`) + DAY_MS);
  for (const customer of catalog.catalog.customers) {
    const needed = new Map<string, { meter: string; from: string; to: string }>();
    const balances = await grantBalancesUsed(pool, customer.id, window.period);
    const probe = rateCustomerPeriod(catalog, customer.id, window, balances, (meter, from, to) => {
      needed.set(`${meter}|${from}|${to}`, { meter, from, to });
      return { quantity: '0', usage_ref: '' };
    });
    if (!probe.ok) throw new Error(`estimating ${customer.id} for ${window.period} failed: ${formatProblems(probe.problems)}`);
    if (probe.value.length === 0) continue;
    const perDay = new Map<string, string[]>();
    for (const [key, w] of needed) {
      const meter = catalog.index.meters.get(w.meter);
      if (!meter) throw new Error(`rating asked for unknown meter ${w.meter}`);
      perDay.set(key, await cumulativeQuantities(pool, meter, customer.id, w.from, w.to, days));
    }
    const byDocument = new Map<string, DailyEstimate>();
    days.forEach((_, i) => {
      const rated = rateCustomerPeriod(catalog, customer.id, window, balances, (meter, from, to) => {
        // A window that has not started by this day's end has no usage yet.
        const quantity = Date.parse(from) >= ends[i]! ? '0' : perDay.get(`${meter}|${from}|${to}`)![i]!;
        return { quantity, usage_ref: `estimate:${customer.id}:${meter}:${from}:${to}` };
      });
      if (!rated.ok) throw new Error(`estimating ${customer.id} for ${window.period} failed: ${formatProblems(rated.problems)}`);
      for (const invoice of rated.value) {
        const key = `${invoice.legal_entity}|${invoice.currency}`;
        let estimate = byDocument.get(key);
        if (!estimate) {
          estimate = {
            customer: customer.id,
            legal_entity: invoice.legal_entity,
            currency: invoice.currency,
            total_minor: days.map(() => 0n),
          };
          byDocument.set(key, estimate);
        }
        estimate.total_minor[i] = invoice.total_minor;
      }
    });
    estimates.push(...byDocument.values());
  }
  return estimates;
}
