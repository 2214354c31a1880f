// Discounts, worked by hand: percent off a product's lines, prorated by the days of the line inside the range.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Discount, LineKind } from '../../src/domain/model.js';
import { Decimal, roundToMinor } from '../../src/domain/money.js';
import { discountLines } from '../../src/rate/discounts.js';
import type { ExactLine } from '../../src/rate/lines.js';

const usd = (exact: Decimal) => roundToMinor(exact, 'USD', 'half_even');
const charge = (product: string, exact: string, start = '2026-11-01', end = '2026-12-01', kind: LineKind = 'usage'): ExactLine => ({
  exact: new Decimal(exact),
  line: {
    kind,
    product,
    meter: kind === 'usage' ? 'm' : null,
    price_id: `p:${product}`,
    price_version: 'v1',
    description: `${product} line`,
    quantity: '1',
    unit_amount: null,
    tiers: [],
    amount_minor: usd(new Decimal(exact)),
    period_start: start,
    period_end: end,
    taxable: true,
  },
});
const off = (product: string, percent: string, from: string, to: string): Discount => ({
  customer: 'c',
  product,
  percent_off: percent,
  from,
  to,
});

describe('discountLines (USD half_even)', () => {
  // [name, discounts, charges, expected [minor, start, end, description]]
  const table: Array<[string, Discount[], ExactLine[], Array<[bigint, string, string, string]>]> = [
    // 10% of 60.00 over the whole month = 6.00
    [
      'whole month',
      [off('api', '10', '2026-01-01', '2027-12-31')],
      [charge('api', '60')],
      [[-600n, '2026-11-01', '2026-12-01', '10% off api line']],
    ],
    // the range ends on the 15th (inclusive): 15 of 30 days; 60 × 10% × 15/30 = 3.00
    [
      'range ends mid-month',
      [off('api', '10', '2026-01-01', '2026-11-15')],
      [charge('api', '60')],
      [[-300n, '2026-11-01', '2026-11-16', '10% off api line']],
    ],
    // starts on the 21st: 10 of 30 days; 90 × 25% × 10/30 = 7.50
    [
      'range starts mid-month',
      [off('api', '25', '2026-11-21', '2027-01-01')],
      [charge('api', '90')],
      [[-750n, '2026-11-21', '2026-12-01', '25% off api line']],
    ],
    // a line of 15 days (16th to 30th) fully inside: 40 × 10% = 4.00
    [
      'a line of a version segment',
      [off('api', '10', '2026-11-01', '2026-11-30')],
      [charge('api', '40', '2026-11-16')],
      [[-400n, '2026-11-16', '2026-12-01', '10% off api line']],
    ],
    // from the exact amount: 10.05 × 25% = 2.5125 -> 251 cents
    [
      'from the exact amount, rounded once',
      [off('api', '25', '2026-01-01', '2027-01-01')],
      [charge('api', '10.05')],
      [[-251n, '2026-11-01', '2026-12-01', '25% off api line']],
    ],
    // 0.05 × 25% = 0.0125 = 1.25 cents -> 1
    [
      'a tiny line',
      [off('api', '25', '2026-01-01', '2027-01-01')],
      [charge('api', '0.05')],
      [[-1n, '2026-11-01', '2026-12-01', '25% off api line']],
    ],
    // 0.01 × 10% = 0.001 -> 0 cents: no line
    ['a discount rounding to zero gives no line', [off('api', '10', '2026-01-01', '2027-01-01')], [charge('api', '0.01')], []],
    ['another product is not discounted', [off('api', '10', '2026-01-01', '2027-01-01')], [charge('storage', '60')], []],
    ['a range ending before the line gives nothing', [off('api', '10', '2026-01-01', '2026-10-31')], [charge('api', '60')], []],
    [
      'the minimum true-up is never discounted',
      [off('api', '10', '2026-01-01', '2027-01-01')],
      [charge('api', '60', undefined, undefined, 'minimum_true_up')],
      [],
    ],
    // a flat line is discounted too: 99 × 50% = 49.50
    [
      'a flat fee',
      [off('platform', '50', '2026-01-01', '2027-01-01')],
      [charge('platform', '99', undefined, undefined, 'flat')],
      [[-4950n, '2026-11-01', '2026-12-01', '50% off platform line']],
    ],
  ];
  for (const [name, discounts, charges, expected] of table) {
    it(name, () =>
      assert.deepEqual(
        discountLines(discounts, charges, usd).map((d) => [d.amount_minor, d.period_start, d.period_end, d.description]),
        expected,
      ),
    );
  }
  it('two discounts on one product each give a line, in discount order', () => {
    // 10% of 60 = 6.00; 5% of 60 = 3.00
    const lines = discountLines(
      [off('api', '10', '2026-01-01', '2027-01-01'), off('api', '5', '2026-01-01', '2027-01-01')],
      [charge('api', '60')],
      usd,
    );
    assert.deepEqual(
      lines.map((l) => [l.kind, l.amount_minor, l.meter, l.price_id]),
      [
        ['discount', -600n, 'm', 'p:api'],
        ['discount', -300n, 'm', 'p:api'],
      ],
    );
  });
});
