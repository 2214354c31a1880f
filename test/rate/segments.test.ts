// Segments and proration, worked by hand: version windows, active windows and prorated flat fees (November = 30 days).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Price, Product, Subscription } from '../../src/domain/model.js';
import { Decimal, roundToMinor } from '../../src/domain/money.js';
import { activeWindow, flatCharge, priceSegments, subscriptionsInPeriod, versionSegments } from '../../src/rate/segments.js';

const NOV = { start_date: '2026-11-01', end_date: '2026-12-01' };
const usd = (exact: Decimal) => roundToMinor(exact, 'USD', 'half_even');
const product: Product = { id: 'platform', name: 'Platform', revenue_account: {} };
const flat = (amount: string): Price => ({
  id: 'p/0:platform',
  product: 'platform',
  versions: [{ model: 'flat', amount, effective_from: null, version_id: 'v1' }],
});
const versioned: Price = {
  id: 'p/1:api:api_calls',
  product: 'api',
  meter: 'api_calls',
  versions: [
    { model: 'per_unit', unit_amount: '0.001', effective_from: '2026-01-01', version_id: 'v1' },
    { model: 'per_unit', unit_amount: '0.002', effective_from: '2026-11-16', version_id: 'v2' },
  ],
};

describe('versionSegments', () => {
  const table: Array<[string, string, string, Array<[string, string, string]>]> = [
    // v1 runs until v2's effective_from (exclusive), v2 to the window's end.
    [
      'a version change mid-month splits it',
      '2026-11-01',
      '2026-12-01',
      [
        ['v1', '2026-11-01', '2026-11-16'],
        ['v2', '2026-11-16', '2026-12-01'],
      ],
    ],
    ['a window after the change sees v2 only', '2026-11-20', '2026-12-01', [['v2', '2026-11-20', '2026-12-01']]],
    ['a window before the change sees v1 only', '2026-10-01', '2026-11-01', [['v1', '2026-10-01', '2026-11-01']]],
    ['a window ending on the change day sees v1 only', '2026-11-01', '2026-11-16', [['v1', '2026-11-01', '2026-11-16']]],
    ['a window before v1 has no segment', '2025-12-01', '2026-01-01', []],
  ];
  for (const [name, start, end, expected] of table) {
    it(name, () =>
      assert.deepEqual(
        versionSegments(versioned, start, end).map((s) => [s.version.version_id, s.start, s.end]),
        expected,
      ),
    );
  }
});

describe('subscriptionsInPeriod and activeWindow', () => {
  const subs: Subscription[] = [
    { customer: 'c', plan: 'b', start: '2026-11-10' },
    { customer: 'c', plan: 'z', start: '2026-01-01', end: '2026-11-01' }, // ended at the period's start: out
    { customer: 'c', plan: 'y', start: '2026-12-01' }, // starts at the period's end: out
    { customer: 'c', plan: 'a', start: '2026-11-10' }, // same start as b: plan a first
    { customer: 'c', plan: 'c', start: '2026-06-01', end: '2026-11-20' },
  ];
  it('keeps the subscriptions overlapping the period, by start then plan', () =>
    assert.deepEqual(
      subscriptionsInPeriod(subs, NOV).map((s) => s.plan),
      ['c', 'a', 'b'],
    ));
  const table: Array<[string, Subscription, [string, string, number, number]]> = [
    ['whole month', { customer: 'c', plan: 'p', start: '2026-01-01' }, ['2026-11-01', '2026-12-01', 30, 30]],
    ['starts on the 10th: 21 of 30 days', { customer: 'c', plan: 'p', start: '2026-11-10' }, ['2026-11-10', '2026-12-01', 21, 30]],
    [
      'ends on the 20th (exclusive): 19 days',
      { customer: 'c', plan: 'p', start: '2026-06-01', end: '2026-11-20' },
      ['2026-11-01', '2026-11-20', 19, 30],
    ],
    ['10th to 20th: 10 days', { customer: 'c', plan: 'p', start: '2026-11-10', end: '2026-11-20' }, ['2026-11-10', '2026-11-20', 10, 30]],
  ];
  for (const [name, sub, [start, end, days, periodDays]] of table) {
    it(name, () => assert.deepEqual(activeWindow(sub, NOV), { start, end, days, periodDays }));
  }
});

describe('priceSegments names the window on a line only when the segment is not the whole period', () => {
  it('whole month, one version: no text', () =>
    assert.deepEqual(
      priceSegments(flat('99.00'), activeWindow({ customer: 'c', plan: 'p', start: '2026-01-01' }, NOV)).map((s) => s.windowText),
      [''],
    ));
  it('two versions: both named, the end shown inclusive', () =>
    assert.deepEqual(
      priceSegments(versioned, activeWindow({ customer: 'c', plan: 'p', start: '2026-01-01' }, NOV)).map((s) => s.windowText),
      [' (2026-11-01 to 2026-11-15)', ' (2026-11-16 to 2026-11-30)'],
    ));
  it('a partial subscription: named', () =>
    assert.deepEqual(
      priceSegments(flat('99.00'), activeWindow({ customer: 'c', plan: 'p', start: '2026-11-10' }, NOV)).map((s) => s.windowText),
      [' (2026-11-10 to 2026-11-30)'],
    ));
});

describe('flatCharge prorates by days and rounds once (USD half_even)', () => {
  // [name, amount, start, end, expected quantity, expected minor, description suffix]
  const table: Array<[string, string, string, string, string, bigint, string]> = [
    ['whole month: 99.00', '99.00', '2026-01-01', '', '1', 9900n, 'Platform'],
    // 99 × 21/30 = 69.3; 21/30 = 0.7
    ['21 of 30 days', '99.00', '2026-11-10', '', '0.7', 6930n, 'Platform (prorated 21 of 30 days) (2026-11-10 to 2026-11-30)'],
    // 99 × 19/30 = 62.7; 19/30 = 0.6333… -> 0.633333 (6 places)
    [
      '19 of 30 days',
      '99.00',
      '2026-06-01',
      '2026-11-20',
      '0.633333',
      6270n,
      'Platform (prorated 19 of 30 days) (2026-11-01 to 2026-11-19)',
    ],
    // 10 × 1/30 = 0.3333… -> 33 cents; 1/30 = 0.0333… -> 0.033333
    ['1 of 30 days', '10.00', '2026-11-30', '', '0.033333', 33n, 'Platform (prorated 1 of 30 days) (2026-11-30 to 2026-11-30)'],
    // 0.05 × 15/30 = 0.025 = 2.5 cents, a tie: half_even -> 2 (rounded once, from the exact amount)
    ['a tie rounds once', '0.05', '2026-11-16', '', '0.5', 2n, 'Platform (prorated 15 of 30 days) (2026-11-16 to 2026-11-30)'],
    // 2/3 of a day's share: 20/30 = 0.666666666… -> 0.666667 (half up at the 6th place)
    ['20 of 30 days', '30.00', '2026-11-11', '', '0.666667', 2000n, 'Platform (prorated 20 of 30 days) (2026-11-11 to 2026-11-30)'],
  ];
  for (const [name, amount, start, end, quantity, minor, description] of table) {
    it(name, () => {
      const sub: Subscription = { customer: 'c', plan: 'p', start, ...(end ? { end } : {}) };
      const active = activeWindow(sub, NOV);
      const [segment] = priceSegments(flat(amount), active);
      const { line } = flatCharge(product, flat(amount), segment!, active.periodDays, usd);
      assert.deepEqual([line.quantity, line.amount_minor, line.description, line.unit_amount], [quantity, minor, description, amount]);
    });
  }
});
