// The group reporting currency (docs/configuration.md#reporting-currency): amounts held in several currencies shown
// as one total in a currency the group reports in, each converted at a named rate source's rate of the day. For
// dashboards and metrics only: the books stay in each legal entity's functional currency.
import type pg from 'pg';
import { convertMinor, FX_SOURCE, type UsedRate } from '../domain/fx.js';
import { isCurrency } from '../domain/money.js';
import { ProblemError } from '../domain/result.js';
import { fxRateAt, fxRateSource } from './fx-rates.js';

export interface ReportingSettings {
  currency: string;
  source: string;
}

/** ACCRUE_REPORTING_CURRENCY (none: no group total) and ACCRUE_REPORTING_RATE_SOURCE (default ACCRUE_FX_RATE_SOURCE, ecb). */
export function reportingSettings(env: NodeJS.ProcessEnv = process.env): ReportingSettings | undefined {
  const currency = env.ACCRUE_REPORTING_CURRENCY;
  if (currency === undefined || currency === '') return undefined;
  if (!isCurrency(currency))
    throw new ProblemError([
      {
        path: 'ACCRUE_REPORTING_CURRENCY',
        code: 'unknown_currency',
        message: `must be an ISO 4217 currency code, got ${JSON.stringify(currency)}`,
      },
    ]);
  const source = env.ACCRUE_REPORTING_RATE_SOURCE || fxRateSource(env);
  if (!FX_SOURCE.test(source))
    throw new ProblemError([
      { path: 'ACCRUE_REPORTING_RATE_SOURCE', code: 'invalid', message: 'must be lowercase letters, digits, ".", "_" or "-"' },
    ]);
  return { currency, source };
}

export interface ReportingTotal {
  currency: string;
  source: string;
  date: string;
  amount_minor: bigint;
  /** The rate each other currency was converted at. */
  rates: UsedRate[];
  /** Currencies with no usable rate on the date: left out of the total, and named. */
  missing: string[];
}

/**
 * The sum of `amounts` (minor units, per currency) in the reporting currency: each currency's sum converted once at
 * the source's rate for `date` (half-even); a currency without a usable rate is left out and named in `missing`.
 */
export async function inReportingCurrency(
  db: pg.Pool | pg.PoolClient,
  settings: ReportingSettings,
  date: string,
  amounts: ReadonlyArray<{ currency: string; amount_minor: bigint }>,
): Promise<ReportingTotal> {
  const byCurrency = new Map<string, bigint>();
  for (const a of amounts) byCurrency.set(a.currency, (byCurrency.get(a.currency) ?? 0n) + a.amount_minor);
  let total = 0n;
  const rates: UsedRate[] = [];
  const missing: string[] = [];
  for (const [currency, amount] of [...byCurrency.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (currency === settings.currency) {
      total += amount;
      continue;
    }
    const rate = await fxRateAt(db, { date, from: currency, to: settings.currency, source: settings.source });
    if (!rate) {
      missing.push(currency);
      continue;
    }
    rates.push(rate);
    total += convertMinor(amount, currency, settings.currency, rate.rate, 'half_even');
  }
  return { currency: settings.currency, source: settings.source, date, amount_minor: total, rates, missing };
}

/** Finalized invoices' open amounts (total - paid; credit notes count against), per currency. */
export async function openReceivablesByCurrency(db: pg.Pool | pg.PoolClient): Promise<Array<{ currency: string; amount_minor: bigint }>> {
  return (
    await db.query<{ currency: string; amount: string }>(
      `SELECT currency, sum(CASE WHEN kind = 'credit_note' THEN -total_minor ELSE total_minor - amount_paid_minor END)::text AS amount
         FROM invoices WHERE status = 'finalized' GROUP BY currency ORDER BY currency`,
    )
  ).rows.map((r) => ({ currency: r.currency, amount_minor: BigInt(r.amount) }));
}
