// The close bench's fixtures: the scaled Northwind catalog and the SQL that generates September's events inside
// Postgres (generate_series), the same rows whichever loader stores them (bench/close/load.ts).
import { readFileSync } from 'node:fs';
import YAML from 'yaml';

/** Limit: events per generating statement. */
export const GENERATE_CHUNK_EVENTS = 1_000_000;
/** The bench's month (September 2026) in hours: an hour rollup row per series and hour at most. */
export const CLOSE_MONTH_HOURS = 720;

/** Northwind's plans and products with `customers` generated customers, alternating the USD and EUR plans. */
export function scaledCatalog(customers: number): string {
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
  base.subscriptions = list.map((c) => ({
    customer: c.id,
    plan: c.legal_entity === 'nw-us' ? 'growth-usd' : 'scale-eur',
    start: '2026-01-01',
  }));
  base.credit_grants = [];
  base.discounts = [];
  return YAML.stringify(base);
}

// Every customer gets every kind, in turn (k counts the customer's events): mostly api calls over four regions, some
// storage samples, seats of 37 users and compute samples, spread over September 2026. Both loaders select these
// columns from this generator ($1..$2 the range of g, $3 the customers), so they store the same rows.
const GENERATED_COLUMNS = `'//bench', 'e' || g, t.type, 't' || c, 'c' || lpad(c::text, 6, '0'),
       timestamptz '2026-09-01' + ((g * 7919) % 2592000) * interval '1 second',
       t.data, t.vals, t.dims, md5(g::text), 'ub:bench-close'`;
const GENERATOR = `
  FROM generate_series($1::bigint, $2::bigint) AS g,
       LATERAL (SELECT (g % $3) AS c, (g / $3) AS k) cc,
       LATERAL (SELECT CASE WHEN k % 20 = 0 THEN 'com.northwind.storage.usage'
                            WHEN k % 20 = 1 THEN 'com.northwind.analytics.session'
                            WHEN k % 20 = 2 THEN 'com.northwind.compute.sample'
                            ELSE 'com.northwind.api.request' END AS type) ty,
       LATERAL (SELECT ty.type,
                       CASE WHEN k % 20 = 0 THEN jsonb_build_object('gb_hours', ((g % 997)::numeric / 10)::text)
                            WHEN k % 20 = 1 THEN jsonb_build_object('user_id', 'u' || (k % 37))
                            WHEN k % 20 = 2 THEN jsonb_build_object('vcpu', (g % 24)::text)
                            ELSE jsonb_build_object('region', 'r' || (k % 4)) END AS data,
                       CASE WHEN k % 20 = 0 THEN jsonb_build_object('storage_gb_hours', ((g % 997)::numeric / 10)::text)
                            WHEN k % 20 = 1 THEN jsonb_build_object('analytics_seats', 'u' || (k % 37))
                            WHEN k % 20 = 2 THEN jsonb_build_object('peak_vcpu', (g % 24)::text)
                            ELSE '{}'::jsonb END AS vals,
                       CASE WHEN k % 20 > 2 THEN jsonb_build_object('api_calls', jsonb_build_object('region', 'r' || (k % 4)))
                            ELSE '{}'::jsonb END AS dims) t`;
const EVENT_COLUMNS = 'source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id';
/** The plain loader's statement: through `events`, seq from its identity (in g order), each key checked by the primary key. */
export const GENERATE = `
INSERT INTO events (${EVENT_COLUMNS})
SELECT ${GENERATED_COLUMNS}${GENERATOR}`;
/**
 * The fast loader's: seq given as the value the identity would have given ($4 + g × $5, $5 the identity's increment),
 * its indexes dropped meanwhile.
 */
export const GENERATE_WITH_SEQ = `
INSERT INTO events (seq, ${EVENT_COLUMNS}) OVERRIDING SYSTEM VALUE
SELECT $4::bigint + g * $5::bigint, ${GENERATED_COLUMNS}${GENERATOR}`;
