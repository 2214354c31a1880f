// The rating stage's entry: the catalog in force, one customer, one period -> draft invoices (pure, see domain).
import type { CatalogVersion } from '../catalog/service.js';
import { contentHash } from '../domain/canonical.js';
import type { Invoice } from '../domain/model.js';
import type { Result } from '../domain/result.js';
import { rateCustomer, type UsageProvider } from '../domain/rating-engine.js';
import type { PeriodWindow } from '../meter/period.js';

export function rateCustomerPeriod(
  catalog: CatalogVersion,
  customer: string,
  window: PeriodWindow,
  grantUsedMinor: ReadonlyMap<string, bigint>,
  usage: UsageProvider,
  usageRead: readonly unknown[] = [],
): Result<Invoice[]> {
  return rateCustomer({
    catalog: catalog.catalog,
    index: catalog.index,
    catalogHash: catalog.hash,
    customer,
    period: window,
    grantUsedMinor,
    usage,
    usageFingerprint: contentHash(usageRead),
  });
}
