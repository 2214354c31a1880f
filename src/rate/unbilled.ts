// Unbilled usage: metered but not yet invoiced. For every billing period a legal entity has not closed (the current
// month, and any earlier month holding usage), the usage per meter and what it would bill if the period closed now:
// each subscribed customer rated with the catalog in force, as a close rates it. Read-only: nothing is written and
// no run id is kept; the close is what bills. Late usage of closed periods is counted apart (accrue_late_events_total).
import { newestEventSeq } from '../meter/catch-up.js';
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { Decimal, decimalText } from '../domain/money.js';
import { monthWindow, parsePeriod, type PeriodWindow } from '../meter/period.js';
import { windowKey, type UsageWindow } from './rate.js';
import { estimateInput, rateEstimate } from './rate-customer.js';
import { periodQuantities, readWindows } from './store.js';

/** Limit: open periods one estimate covers per legal entity (a backlog of unclosed months beyond this is a finding in itself). */
export const UNBILLED_PERIODS_MAX = 24;

export interface UnbilledUsage {
  computed_at: string;
  /** Open periods per legal entity, oldest first. */
  open_periods: Array<{ legal_entity: string; periods: string[] }>;
  /** Quantity per meter summed over the customers and open periods of a legal entity, as each customer's bill would count it. */
  quantities: Array<{ legal_entity: string; meter: string; quantity: string }>;
  /** Estimated invoice totals (tax included) per legal entity and currency, in minor units. */
  amounts: Array<{ legal_entity: string; currency: string; amount_minor: bigint }>;
  /** Usage events in the open periods per legal entity. */
  events: Array<{ legal_entity: string; events: number }>;
}

export async function unbilledUsage(pool: pg.Pool, catalog: CatalogVersion, now: Date = new Date()): Promise<UnbilledUsage> {
  const entities = catalog.catalog.legal_entities.map((e) => e.id);
  const closed = new Set(
    (
      await pool.query<{ legal_entity: string; period: string }>("SELECT legal_entity, period FROM billing_periods WHERE status = 'closed'")
    ).rows.map((r) => `${r.legal_entity}|${r.period}`),
  );
  const watermark = await newestEventSeq(pool);
  // Any month may hold unclosed usage (a month skipped by the closes), so every event is counted once per estimate;
  // the metrics serve the estimate from a cache (UNBILLED_CACHE_MS) to keep that off the scrape path.
  const withUsage = (
    await pool.query<{ customer: string; period: string; events: string }>(
      `SELECT customer_id AS customer, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM') AS period, count(*)::text AS events
         FROM events WHERE NOT late AND seq <= $1 GROUP BY 1, 2`,
      [watermark],
    )
  ).rows;
  const current = monthWindow(now).period;
  const customerEntity = new Map(catalog.catalog.customers.map((c) => [c.id, c.legal_entity]));

  const open_periods: UnbilledUsage['open_periods'] = [];
  const eventsByEntity = new Map<string, number>();
  const quantities = new Map<string, Decimal>();
  const amounts = new Map<string, bigint>();
  const quantitiesByPeriod = new Map<string, Map<string, Map<string, Decimal>>>();
  for (const entity of entities) {
    const periods = [...new Set([current, ...withUsage.filter((r) => customerEntity.get(r.customer) === entity).map((r) => r.period)])]
      .filter((p) => !closed.has(`${entity}|${p}`) && p <= current)
      .sort()
      .slice(-UNBILLED_PERIODS_MAX);
    open_periods.push({ legal_entity: entity, periods });
    for (const period of periods) {
      const parsed = parsePeriod(period);
      if (!parsed.ok) continue;
      const window = parsed.value;
      for (const r of withUsage)
        if (r.period === period && customerEntity.get(r.customer) === entity)
          eventsByEntity.set(entity, (eventsByEntity.get(entity) ?? 0) + Number(r.events));
      const perMeter = quantitiesByPeriod.get(period) ?? (await periodQuantities(pool, catalog, window, watermark));
      quantitiesByPeriod.set(period, perMeter); // entities share a period's grouped quantities
      const customers = catalog.catalog.customers
        .filter((c) => c.legal_entity === entity)
        .filter((c) =>
          catalog.catalog.subscriptions.some(
            (s) => s.customer === c.id && s.start < window.end_date && (!s.end || s.end > window.start_date),
          ),
        );
      for (const customer of customers) {
        for (const [meter, byCustomer] of perMeter) {
          const q = byCustomer.get(customer.id);
          if (q !== undefined) quantities.set(`${entity}|${meter}`, (quantities.get(`${entity}|${meter}`) ?? new Decimal(0)).plus(q));
        }
        for (const invoice of await estimateCustomer(pool, catalog, customer.id, window, watermark, perMeter)) {
          const key = `${invoice.legal_entity}|${invoice.currency}`;
          amounts.set(key, (amounts.get(key) ?? 0n) + invoice.total_minor);
        }
      }
    }
  }
  const split = (key: string) => key.split('|') as [string, string];
  return {
    computed_at: now.toISOString(),
    open_periods,
    quantities: [...quantities].map(([key, q]) => ({ legal_entity: split(key)[0], meter: split(key)[1], quantity: decimalText(q) })),
    amounts: [...amounts].map(([key, amount_minor]) => ({ legal_entity: split(key)[0], currency: split(key)[1], amount_minor })),
    events: entities.map((legal_entity) => ({ legal_entity, events: eventsByEntity.get(legal_entity) ?? 0 })),
  };
}

/**
 * Rates one customer's open period as a close would: the whole period is answered from the grouped quantities, a
 * part of it (a price version or subscription starting mid-month) from the store.
 */
async function estimateCustomer(
  pool: pg.Pool,
  catalog: CatalogVersion,
  customer: string,
  window: PeriodWindow,
  watermark: string,
  perMeter: Map<string, Map<string, Decimal>>,
) {
  const { input, windows } = await estimateInput(pool, catalog, customer, window);
  const whole = (w: UsageWindow) => Date.parse(w.from) === Date.parse(window.from) && Date.parse(w.to) === Date.parse(window.to);
  const parts = await readWindows(
    pool,
    catalog,
    customer,
    windows.filter((w) => !whole(w)),
    watermark,
  );
  return rateEstimate(input, windows, (w) =>
    whole(w) ? decimalText(perMeter.get(w.meter)?.get(customer) ?? new Decimal(0)) : parts.get(windowKey(w))!.quantity,
  );
}
