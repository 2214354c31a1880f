// The unbilled estimate for the dashboard: each customer's period rated as a close would rate it, once per day with
// the usage up to the end of that day, so finance sees the invoice total building up before the month is closed.
// Read-only: nothing is written, no run id is kept; the figures are estimates, the close is what bills.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import type { PeriodWindow } from '../meter/period.js';
import { windowKey } from '../rate/rate.js';
import { estimateInput, rateEstimate } from '../rate/rate-customer.js';
import { cumulativeQuantities } from '../rate/store.js';

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

/** The UTC days from `start` (inclusive) to `end` (exclusive), as YYYY-MM-DD. */
export function daysBetween(startDate: string, endDate: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${startDate}T00:00:00Z`); t < Date.parse(`${endDate}T00:00:00Z`); t += DAY_MS)
    days.push(new Date(t).toISOString().slice(0, 10));
  if (days.length > ESTIMATE_DAYS_MAX) throw new Error(`an estimate covers at most ${ESTIMATE_DAYS_MAX} days, not ${days.length}`);
  return days;
}

/**
 * Rates every customer of the catalog for the period once per day: rating names the usage windows it needs, the
 * store answers each window per day, and a pass per day rates.
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
    const { input, windows } = await estimateInput(pool, catalog, customer.id, window);
    const perDay = new Map<string, string[]>();
    for (const w of windows) {
      const meter = catalog.index.meters.get(w.meter);
      if (!meter) throw new Error(`rating asked for unknown meter ${w.meter}`);
      perDay.set(windowKey(w), await cumulativeQuantities(pool, meter, customer.id, w.from, w.to, days));
    }
    const byDocument = new Map<string, DailyEstimate>();
    days.forEach((_, i) => {
      // A window that has not started by this day's end has no usage yet.
      const rated = rateEstimate(input, windows, (w) => (Date.parse(w.from) >= ends[i]! ? '0' : perDay.get(windowKey(w))![i]!));
      for (const invoice of rated) {
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
