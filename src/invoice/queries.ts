// Read queries over billing periods and invoices for the adapters (the dashboard's period picker).
import type pg from 'pg';

/** A month with usage, invoices or a billing period: the legal entities closed for it and its finalized invoices. */
export interface BillingMonth {
  period: string;
  closed_entities: string[];
  invoices: number;
}

/** Months with usage, invoices or a billing period, newest first, at most `limit` (240: twenty years). */
/**
 * Months with events, invoices or a billing period, newest first. With `scope` (a key's entity limit), only those legal
 * entities' invoices and periods and the events of `scope.customers` (theirs, from the catalog) count.
 */
export async function listBillingMonths(
  pool: pg.Pool,
  limit = 240,
  scope?: { entities: readonly string[]; customers: readonly string[] },
): Promise<BillingMonth[]> {
  const { rows } = await pool.query<BillingMonth>(
    `WITH months AS (
       SELECT to_char(m, 'YYYY-MM') AS period
         FROM (SELECT min(time) AS lo, max(time) AS hi FROM events WHERE $3::text[] IS NULL OR customer_id = ANY($3)) b,
              generate_series(date_trunc('month', b.lo AT TIME ZONE 'UTC'), date_trunc('month', b.hi AT TIME ZONE 'UTC'), interval '1 month') AS m
        WHERE b.lo IS NOT NULL
       UNION SELECT period FROM invoices WHERE $2::text[] IS NULL OR legal_entity = ANY($2)
       UNION SELECT period FROM billing_periods WHERE $2::text[] IS NULL OR legal_entity = ANY($2)
     )
     SELECT m.period,
            coalesce((SELECT array_agg(legal_entity ORDER BY legal_entity) FROM billing_periods b
                       WHERE b.period = m.period AND b.status = 'closed' AND ($2::text[] IS NULL OR b.legal_entity = ANY($2))), '{}') AS closed_entities,
            (SELECT count(*)::int FROM invoices i WHERE i.period = m.period AND i.kind = 'invoice' AND i.status = 'finalized'
                AND ($2::text[] IS NULL OR i.legal_entity = ANY($2))) AS invoices
       FROM months m ORDER BY m.period DESC LIMIT $1`,
    [limit, scope?.entities ?? null, scope?.customers ?? null],
  );
  return rows;
}
