// Month-end at volume: closing a month for N customers over M events, beside a bare GROUP BY over the same events
// in the same database. Events are generated inside Postgres (generate_series), so setup costs no client time.
import type pg from 'pg';
import YAML from 'yaml';
import { readFileSync } from 'node:fs';
import { applyCatalog, currentCatalog } from '../src/catalog/service.js';
import { closePeriod } from '../src/invoice/billing-run.js';
import { phasedProgress } from '../src/cli/progress.js';

export interface CloseFigures {
  customers: number;
  events: number;
  close_seconds: number;
  group_by_seconds: number;
  invoices: number;
}

/** Northwind's plans and products with `customers` generated customers, alternating the USD and EUR plans. */
function scaledCatalog(customers: number): string {
  const base = YAML.parse(readFileSync('examples/northwind/catalog.yaml', 'utf8')) as Record<string, unknown>;
  const list = Array.from({ length: customers }, (_, i) => {
    const us = i % 4 !== 3;
    return {
      id: `c${String(i).padStart(6, '0')}`,
      name: `Customer ${i}`,
      legal_entity: us ? 'nw-us' : 'nw-de',
      tax_jurisdiction: us ? ['US-CA', 'US-NY', 'US-OR'][i % 3] : 'DE',
      erp_customer_id: `B-${i}`,
      tenants: [`t${i}`],
    };
  });
  base.customers = list;
  base.subscriptions = list.map((c) => ({ customer: c.id, plan: c.legal_entity === 'nw-us' ? 'growth-usd' : 'scale-eur', start: '2026-01-01' }));
  base.credit_grants = [];
  base.discounts = [];
  return YAML.stringify(base);
}

export async function benchClose(pool: pg.Pool, customers: number, events: number, log: (line: string) => void): Promise<CloseFigures> {
  const applied = await applyCatalog(pool, scaledCatalog(customers), { by: 'bench' });
  if (!applied.ok) throw new Error(`bench catalog refused: ${applied.problems[0]?.path} ${applied.problems[0]?.message}`);
  const catalog = (await currentCatalog(pool))!;
  log(`close: generating ${events} events for ${customers} customers inside Postgres…`);
  await pool.query("INSERT INTO ingest_batches (id, channel, received, accepted, duplicates, conflicts, rejected, quarantined) VALUES ('ub:bench-close', 'file', 0, 0, 0, 0, 0, 0) ON CONFLICT DO NOTHING");
  // Per customer: mostly api calls, some storage samples, seats and compute samples, spread over September 2026.
  await pool.query(
    `INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id)
     SELECT '//bench', 'e' || g, t.type, 't' || c, 'c' || lpad(c::text, 6, '0'),
            timestamptz '2026-09-01' + ((g * 7919) % 2592000) * interval '1 second',
            t.data, t.vals, t.dims, md5(g::text), 'ub:bench-close'
       FROM generate_series(1, $1::bigint) AS g,
            LATERAL (SELECT (g % $2) AS c) cc,
            LATERAL (SELECT CASE WHEN g % 20 = 0 THEN 'com.northwind.storage.usage'
                                 WHEN g % 20 = 1 THEN 'com.northwind.analytics.session'
                                 WHEN g % 20 = 2 THEN 'com.northwind.compute.sample'
                                 ELSE 'com.northwind.api.request' END AS type) ty,
            LATERAL (SELECT ty.type,
                            CASE WHEN g % 20 = 0 THEN jsonb_build_object('gb_hours', ((g % 997)::numeric / 10)::text)
                                 WHEN g % 20 = 1 THEN jsonb_build_object('user_id', 'u' || (g % 37))
                                 WHEN g % 20 = 2 THEN jsonb_build_object('vcpu', (g % 24)::text)
                                 ELSE jsonb_build_object('region', 'r' || (g % 4)) END AS data,
                            CASE WHEN g % 20 = 0 THEN jsonb_build_object('storage_gb_hours', ((g % 997)::numeric / 10)::text)
                                 WHEN g % 20 = 1 THEN jsonb_build_object('analytics_seats', 'u' || (g % 37))
                                 WHEN g % 20 = 2 THEN jsonb_build_object('peak_vcpu', (g % 24)::text)
                                 ELSE '{}'::jsonb END AS vals,
                            CASE WHEN g % 20 > 2 THEN jsonb_build_object('api_calls', jsonb_build_object('region', 'r' || (g % 4)))
                                 ELSE '{}'::jsonb END AS dims) t`,
    [events, customers],
  );
  await pool.query('ANALYZE events');

  let start = process.hrtime.bigint();
  await pool.query(
    `SELECT customer_id, type, count(*), sum((meter_values->>'storage_gb_hours')::numeric), max((meter_values->>'peak_vcpu')::numeric),
            count(DISTINCT meter_values->>'analytics_seats')
       FROM events WHERE time >= '2026-09-01' AND time < '2026-10-01' GROUP BY customer_id, type`,
  );
  const groupBySeconds = Number(process.hrtime.bigint() - start) / 1e9;

  start = process.hrtime.bigint();
  const bar = phasedProgress('bench close');
  const closed = await closePeriod(pool, catalog, { period: '2026-09', progress: (done, total, note) => bar.update(done, total, note) });
  bar.stop();
  const closeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { customers, events, close_seconds: closeSeconds, group_by_seconds: groupBySeconds, invoices: closed.invoices.length };
}
