// Rating one customer's period against the catalog in force, with the usage read from the store: the close's
// rating (rateWithStoredUsage) and the read-only estimates' (estimateInput, rateEstimate).
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { contentHash } from '../domain/canonical.js';
import type { Invoice } from '../domain/model.js';
import { formatProblems, type Problem } from '../domain/result.js';
import type { PeriodWindow } from '../meter/period.js';
import type { WindowUsage } from '../meter/windows.js';
import { rateWindows, usageWindowsNeeded, windowKey, type PeriodInput, type UsageWindow, type WindowQuantity } from './rate.js';
import { grantBalancesUsed, readWindows } from './store.js';

export function periodInput(
  catalog: CatalogVersion,
  customer: string,
  window: PeriodWindow,
  grantUsedMinor: ReadonlyMap<string, bigint>,
): PeriodInput {
  return { catalog: catalog.catalog, index: catalog.index, catalogHash: catalog.hash, customer, period: window, grantUsedMinor };
}

/**
 * Rates a customer's period from the stored usage up to the watermark: the windows rating needs are read, and the
 * draft invoices come back each with the usage aggregates its lines read (the rating run's record).
 */
export async function rateWithStoredUsage(
  pool: pg.Pool,
  catalog: CatalogVersion,
  customer: string,
  window: PeriodWindow,
  watermark: string,
  options: { includeLate?: boolean } = {},
): Promise<Array<{ invoice: Invoice; usage: WindowUsage[] }>> {
  const input = periodInput(catalog, customer, window, await grantBalancesUsed(pool, customer, window.period));
  const failed = (problems: readonly Problem[]) => new Error(`rating ${customer} for ${window.period} failed: ${formatProblems(problems)}`);
  const windows = usageWindowsNeeded(input);
  if (!windows.ok) throw failed(windows.problems);
  const answers = await readWindows(pool, catalog, customer, windows.value, watermark, options);
  const usage = [...answers.values()].sort((a, b) => (a.usage_ref < b.usage_ref ? -1 : a.usage_ref > b.usage_ref ? 1 : 0));
  const result = rateWindows(input, answers, contentHash(usage));
  if (!result.ok) throw failed(result.problems);
  return result.value.map((invoice) => ({ invoice, usage: usage.filter((u) => invoice.lines.some((l) => l.usage_ref === u.usage_ref)) }));
}

const estimateFailed = (customer: string, period: string, problems: readonly Problem[]) =>
  new Error(`estimating ${customer} for ${period} failed: ${formatProblems(problems)}`);

/** An estimate's rating input (with the grant balances drawn so far) and the usage windows it needs. */
export async function estimateInput(
  pool: pg.Pool,
  catalog: CatalogVersion,
  customer: string,
  window: PeriodWindow,
): Promise<{ input: PeriodInput; windows: UsageWindow[] }> {
  const input = periodInput(catalog, customer, window, await grantBalancesUsed(pool, customer, window.period));
  const windows = usageWindowsNeeded(input);
  if (!windows.ok) throw estimateFailed(customer, window.period, windows.problems);
  return { input, windows: windows.value };
}

/** Rates an estimate: each window's quantity from `quantityOf`; no usage record and no run id is kept. */
export function rateEstimate(input: PeriodInput, windows: readonly UsageWindow[], quantityOf: (w: UsageWindow) => string): Invoice[] {
  const quantities = new Map<string, WindowQuantity>(
    windows.map((w) => [windowKey(w), { quantity: quantityOf(w), usage_ref: `estimate:${input.customer}:${w.meter}:${w.from}:${w.to}` }]),
  );
  const rated = rateWindows(input, quantities, contentHash([]));
  if (!rated.ok) throw estimateFailed(input.customer, input.period.period, rated.problems);
  return rated.value;
}
