// Prepaid credits, worked by hand: grants live in the period and in the currency, oldest first, drawn against
// usage net of discounts product by product, never below zero, less what earlier invoices drew.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CreditGrant, LineKind } from '../../src/domain/model.js';
import { Decimal, roundToMinor } from '../../src/domain/money.js';
import { creditLines } from '../../src/rate/credits.js';
import type { DraftLine, ExactLine } from '../../src/rate/lines.js';

const NOV = { start_date: '2026-11-01', end_date: '2026-12-01' };
const usd = (exact: Decimal) => roundToMinor(exact, 'USD', 'half_up');
const line = (kind: LineKind, product: string, minor: bigint): DraftLine => ({
  kind,
  product,
  meter: kind === 'flat' ? null : 'm',
  price_id: null,
  price_version: null,
  description: '',
  quantity: '1',
  unit_amount: null,
  tiers: [],
  amount_minor: minor,
  period_start: NOV.start_date,
  period_end: NOV.end_date,
  taxable: true,
});
const charge = (kind: LineKind, product: string, minor: bigint): ExactLine => ({ exact: new Decimal(0), line: line(kind, product, minor) });
const grant = (id: string, amount: string, granted: string, expires = '2027-12-31', currency = 'USD'): CreditGrant => ({
  id,
  customer: 'c',
  amount,
  currency,
  granted,
  expires,
});
// Usage: api 60.00, storage 30.00; a flat fee of 99.00 (never drawn against); 6.00 off api.
const CHARGES = [charge('flat', 'platform', 9900n), charge('usage', 'api', 6000n), charge('usage', 'storage', 3000n)];
const DISCOUNTS = [line('discount', 'api', -600n)];
const credits = (grants: CreditGrant[], used: Array<[string, bigint]> = [], discounts = DISCOUNTS) =>
  creditLines({
    grants,
    currency: 'USD',
    period: NOV,
    charges: CHARGES,
    discounts,
    grantUsedMinor: new Map(used),
    productName: (p) => p.toUpperCase(),
    round: usd,
  }).map((c) => [c.credit_grant, c.product, c.amount_minor]);

describe('creditLines (USD half_up)', () => {
  // [name, grants, used before, expected [grant, product, minor]]
  const table: Array<[string, CreditGrant[], Array<[string, bigint]>, Array<[string, string, bigint]>]> = [
    // net api 54.00, storage 30.00; a grant of 20.00 covers part of api
    ['a small grant covers part of the first product', [grant('g1', '20.00', '2026-10-01')], [], [['g1', 'api', -2000n]]],
    // 100.00: api 54.00, then storage 30.00; 16.00 left over, never below zero
    [
      'a large grant covers all usage, not the flat fee',
      [grant('g1', '100.00', '2026-10-01')],
      [],
      [
        ['g1', 'api', -5400n],
        ['g1', 'storage', -3000n],
      ],
    ],
    // g1 (older) 50.00 with 20.00 drawn before: 30.00 on api (net 54 -> 24); g2 100.00: 24.00 api, 30.00 storage
    [
      'oldest grant first, less what was drawn before',
      [grant('g2', '100.00', '2026-11-05'), grant('g1', '50.00', '2026-10-01')],
      [['g1', 2000n]],
      [
        ['g1', 'api', -3000n],
        ['g2', 'api', -2400n],
        ['g2', 'storage', -3000n],
      ],
    ],
    ['a grant used up before draws nothing', [grant('g1', '50.00', '2026-10-01')], [['g1', 5000n]], []],
    // same granted date: by id
    [
      'a tie on the granted date goes by id',
      [grant('gb', '10.00', '2026-10-01'), grant('ga', '10.00', '2026-10-01')],
      [],
      [
        ['ga', 'api', -1000n],
        ['gb', 'api', -1000n],
      ],
    ],
    ['another currency is not drawn', [grant('g1', '50.00', '2026-10-01', '2027-12-31', 'EUR')], [], []],
    ['expired before the period is not drawn', [grant('g1', '50.00', '2026-01-01', '2026-10-31')], [], []],
    // expires is inclusive: usable on the period's first day
    ['expiring on the first day is drawn', [grant('g1', '5.00', '2026-01-01', '2026-11-01')], [], [['g1', 'api', -500n]]],
    ['granted on the period end is not drawn', [grant('g1', '50.00', '2026-12-01')], [], []],
    // 0.005 rounds half up to 0.01: one cent
    ['the grant amount is rounded to the currency', [grant('g1', '0.005', '2026-10-01')], [], [['g1', 'api', -1n]]],
  ];
  for (const [name, grants, used, expected] of table) {
    it(name, () => assert.deepEqual(credits(grants, used), expected));
  }
  it('a flat discount (no meter) does not reduce the usage drawn against', () =>
    assert.deepEqual(credits([grant('g1', '100.00', '2026-10-01')], [], [{ ...line('discount', 'api', -600n), meter: null }]), [
      ['g1', 'api', -6000n],
      ['g1', 'storage', -3000n],
    ]));
  it('describes the grant on the line', () => {
    const [first] = creditLines({
      grants: [grant('g1', '10.00', '2026-10-01', '2027-09-30')],
      currency: 'USD',
      period: NOV,
      charges: CHARGES,
      discounts: [],
      grantUsedMinor: new Map(),
      productName: (p) => p.toUpperCase(),
      round: usd,
    });
    assert.deepEqual(
      [first?.kind, first?.description, first?.period_start, first?.period_end],
      ['credit', 'Prepaid credit g1 applied to API (granted 2026-10-01, expires 2027-09-30)', '2026-11-01', '2026-12-01'],
    );
  });
});
