// The rating entry, worked by hand on the Northwind catalog: the usage windows a period needs, then the period
// rated from those windows' quantities.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { indexCatalog, parseCatalog } from '../../src/domain/catalog.js';
import { rateWindows, usageWindowsNeeded, windowKey, type PeriodInput } from '../../src/rate/rate.js';

const parsed = parseCatalog(readFileSync('examples/northwind/catalog.yaml', 'utf8'));
assert.ok(parsed.ok);
const { catalog, hash } = parsed.value;
const index = indexCatalog(catalog);
const input = (customer: string): PeriodInput => ({
  catalog,
  index,
  catalogHash: hash,
  customer,
  period: { period: '2026-11', start_date: '2026-11-01', end_date: '2026-12-01' },
  grantUsedMinor: new Map(),
});
const at = (date: string) => `${date}T00:00:00.000Z`;

describe('usageWindowsNeeded', () => {
  // [customer, expected windows [meter, from, to]]
  const table: Array<[string, Array<[string, string, string]>]> = [
    // growth-usd: api_calls changes version on the 16th, so two windows; storage and analytics the whole month
    [
      'acme',
      [
        ['api_calls', '2026-11-01', '2026-11-16'],
        ['api_calls', '2026-11-16', '2026-12-01'],
        ['storage_gb_hours', '2026-11-01', '2026-12-01'],
        ['analytics_seats', '2026-11-01', '2026-12-01'],
      ],
    ],
    // subscribed from the 10th: every window starts there
    [
      'initech',
      [
        ['api_calls', '2026-11-10', '2026-11-16'],
        ['api_calls', '2026-11-16', '2026-12-01'],
        ['storage_gb_hours', '2026-11-10', '2026-12-01'],
        ['analytics_seats', '2026-11-10', '2026-12-01'],
      ],
    ],
    // scale-eur: three metered prices, one version each
    [
      'umbrella',
      [
        ['api_calls', '2026-11-01', '2026-12-01'],
        ['peak_vcpu', '2026-11-01', '2026-12-01'],
        ['reserved_ips', '2026-11-01', '2026-12-01'],
      ],
    ],
  ];
  for (const [customer, expected] of table) {
    it(customer, () => {
      const windows = usageWindowsNeeded(input(customer));
      assert.ok(windows.ok);
      assert.deepEqual(
        windows.value,
        expected.map(([meter, from, to]) => ({ meter, from: at(from), to: at(to) })),
      );
    });
  }
  it('an unknown customer is a problem', () => {
    const windows = usageWindowsNeeded(input('nobody'));
    assert.ok(!windows.ok);
    assert.equal(windows.problems[0]?.code, 'unknown_customer');
  });
});

describe('rateWindows', () => {
  it('rates umbrella from its windows', () => {
    const windows = usageWindowsNeeded(input('umbrella'));
    assert.ok(windows.ok);
    const quantity: Record<string, string> = { api_calls: '34573', peak_vcpu: '8', reserved_ips: '2' };
    const answers = new Map(windows.value.map((w) => [windowKey(w), { quantity: quantity[w.meter]!, usage_ref: `u:${w.meter}` }]));
    const rated = rateWindows(input('umbrella'), answers, 'f');
    assert.ok(rated.ok);
    const [invoice] = rated.value;
    // platform 249.00; api 35 packages × 0.30 = 10.50; compute 8 vCPU = tier 1 flat 40.00; 2 IPs × 3.00 = 6.00
    // subtotal 305.50; 10% off api 1.05; taxable 304.45; DE 19% = 57.8455 -> 57.85; total 362.30
    assert.deepEqual(
      [invoice?.currency, invoice?.subtotal_minor, invoice?.discount_minor, invoice?.tax_minor, invoice?.total_minor],
      ['EUR', 30550n, 105n, 5785n, 36230n],
    );
    assert.deepEqual(
      invoice?.lines.map((l) => [l.kind, l.amount_minor]),
      [
        ['flat', 24900n],
        ['usage', 1050n],
        ['usage', 4000n],
        ['usage', 600n],
        ['discount', -105n],
      ],
    );
  });
  it('a window it did not name is a bug', () =>
    assert.throws(() => rateWindows(input('umbrella'), new Map(), 'f'), /did not ask for before: api_calls/));
});
