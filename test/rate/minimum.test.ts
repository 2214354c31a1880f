// Minimum commitment, worked by hand: prorated by active days, a shortfall of the plan's usage charges is one line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Plan } from '../../src/domain/model.js';
import { Decimal, decimalText, roundToMinor } from '../../src/domain/money.js';
import type { ExactLine } from '../../src/rate/lines.js';
import { minimumTrueUp } from '../../src/rate/minimum.js';
import { activeWindow } from '../../src/rate/segments.js';

const NOV = { start_date: '2026-11-01', end_date: '2026-12-01' };
const usd = (exact: Decimal) => roundToMinor(exact, 'USD', 'half_up');
const plan = (minimum?: string): Plan => ({
  id: 'growth',
  currency: 'USD',
  ...(minimum ? { minimum_commitment: minimum } : {}),
  prices: [
    { id: 'growth/0:api:api_calls', product: 'api', meter: 'api_calls', versions: [] },
    { id: 'growth/1:platform', product: 'platform', versions: [] },
  ],
});
const usage = (...minor: bigint[]): ExactLine[] =>
  minor.map((m) => ({ exact: new Decimal(0), line: { amount_minor: m } as ExactLine['line'] }));

describe('minimumTrueUp (USD half_up)', () => {
  // [name, minimum, subscription start, usage minor, expected shortfall or null, description]
  const table: Array<[string, string | undefined, string, bigint[], bigint | null, string]> = [
    ['no minimum: no line', undefined, '2026-01-01', [100n], null, ''],
    // 500.00 - (300.00 + 50.00) = 150.00
    ['whole month short by 150.00', '500.00', '2026-01-01', [30000n, 5000n], 15000n, 'Minimum commitment true-up (500.00 USD)'],
    ['usage equal to the minimum: no line', '500.00', '2026-01-01', [50000n], null, ''],
    ['usage above the minimum: no line', '500.00', '2026-01-01', [60000n], null, ''],
    // 500 × 21/30 = 350.00; 350.00 - 100.00 = 250.00
    ['21 of 30 days', '500.00', '2026-11-10', [10000n], 25000n, 'Minimum commitment true-up (500.00 USD, prorated 21 of 30 days)'],
    // 100 × 19/30 = 63.3333… -> 63.33; 63.33 - 20.00 = 43.33
    [
      '19 of 30 days rounds the minimum once',
      '100.00',
      '2026-11-12',
      [2000n],
      4333n,
      'Minimum commitment true-up (100.00 USD, prorated 19 of 30 days)',
    ],
    ['no usage at all: the whole minimum', '100.00', '2026-01-01', [], 10000n, 'Minimum commitment true-up (100.00 USD)'],
  ];
  for (const [name, minimum, start, minor, expected, description] of table) {
    it(name, () => {
      const active = activeWindow({ customer: 'c', plan: 'growth', start }, NOV);
      const trueUp = minimumTrueUp(plan(minimum), active, usage(...minor), 'USD', usd);
      if (expected === null) return assert.equal(trueUp, null);
      assert.ok(trueUp);
      assert.deepEqual(
        [trueUp.line.kind, trueUp.line.amount_minor, trueUp.line.description, trueUp.line.product, trueUp.line.period_start],
        ['minimum_true_up', expected, description, 'platform', start > NOV.start_date ? start : NOV.start_date],
      );
      // The exact amount of the line is the shortfall itself (in major units), which discounts never touch.
      assert.equal(decimalText(trueUp.exact), decimalText(new Decimal(expected.toString()).dividedBy(100)));
    });
  }
  it('a plan without a flat price charges the true-up to its first price', () => {
    const p: Plan = { ...plan('10.00'), prices: [plan().prices[0]!] };
    const trueUp = minimumTrueUp(p, activeWindow({ customer: 'c', plan: 'growth', start: '2026-01-01' }, NOV), [], 'USD', usd);
    assert.equal(trueUp?.line.product, 'api');
  });
});
