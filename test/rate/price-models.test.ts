// Price models and usage lines, worked by hand: exact amounts per model, then the line a metered segment gives.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Price, PriceModel, PriceVersion, Product } from '../../src/domain/model.js';
import { Decimal, decimalText, roundToMinor } from '../../src/domain/money.js';
import { priceQuantity, usageCharge } from '../../src/rate/price-models.js';

const usd = (exact: Decimal) => roundToMinor(exact, 'USD', 'half_up');
const graduated: PriceModel = {
  model: 'graduated',
  tiers: [
    { up_to: '100', unit_amount: '0', flat_amount: '5.00' },
    { up_to: '1000', unit_amount: '0.01' },
    { up_to: null, unit_amount: '0.005', flat_amount: '1.00' },
  ],
};
const volume: PriceModel = {
  model: 'volume',
  tiers: [
    { up_to: '100', unit_amount: '0.02' },
    { up_to: null, unit_amount: '0.01', flat_amount: '3.00' },
  ],
};
const packaged = (round: 'up' | 'down'): PriceModel => ({ model: 'per_unit', unit_amount: '2.50', package: { size: '100', round } });

describe('priceQuantity (exact amounts)', () => {
  // [name, model, quantity, amount, quantity billed, tiers as [tier, quantity, amount]]
  const table: Array<[string, PriceModel, string, string, string, Array<[number, string, string]>]> = [
    ['flat: 12.00 whatever the quantity', { model: 'flat', amount: '12.00' }, '7', '12', '1', []],
    ['per_unit: 1234 × 0.0035 = 4.319', { model: 'per_unit', unit_amount: '0.0035' }, '1234', '4.319', '1234', []],
    ['package up: 250 -> 3 packages × 2.50 = 7.5', packaged('up'), '250', '7.5', '3', []],
    ['package down: 250 -> 2 packages × 2.50 = 5', packaged('down'), '250', '5', '2', []],
    ['package up, exact fit: 200 -> 2 packages = 5', packaged('up'), '200', '5', '2', []],
    ['graduated at 0: first tier flat 5', graduated, '0', '5', '0', [[1, '0', '5']]],
    // 100 units in tier 1 (flat 5), 900 × 0.01 = 9 in tier 2: 14
    [
      'graduated at 1000 (inclusive bound)',
      graduated,
      '1000',
      '14',
      '1000',
      [
        [1, '100', '5'],
        [2, '900', '9'],
      ],
    ],
    // + 200 × 0.005 = 1 and tier 3's flat 1: 16
    [
      'graduated at 1200: third tier with its flat',
      graduated,
      '1200',
      '16',
      '1200',
      [
        [1, '100', '5'],
        [2, '900', '9'],
        [3, '200', '2'],
      ],
    ],
    ['volume at 100: all at 0.02 = 2', volume, '100', '2', '100', [[1, '100', '2']]],
    // 101 × 0.01 + 3 = 4.01: every unit at tier 2, plus its flat
    ['volume at 101: all at tier 2 plus its flat', volume, '101', '4.01', '101', [[2, '101', '4.01']]],
  ];
  for (const [name, model, quantity, amount, billed, tiers] of table) {
    it(name, () => {
      const priced = priceQuantity(model, new Decimal(quantity));
      assert.deepEqual(
        [decimalText(priced.amount), decimalText(priced.quantity_billed), priced.tiers.map((t) => [t.tier, t.quantity, t.amount])],
        [amount, billed, tiers],
      );
    });
  }
});

describe('usageCharge (USD half_up)', () => {
  const product: Product = { id: 'api', name: 'API', revenue_account: {} };
  const priceOf = (model: PriceModel): Price => ({
    id: 'p/1:api:api_calls',
    product: 'api',
    meter: 'api_calls',
    versions: [{ ...model, effective_from: null, version_id: 'v1' } as PriceVersion],
  });
  const line = (model: PriceModel, quantity: string, windowText = '') => {
    const price = priceOf(model);
    const segment = { version: price.versions[0]!, start: '2026-11-01', end: '2026-12-01', windowText };
    return usageCharge(product, price, segment, { quantity, usage_ref: 'ua:v1:c:api_calls:x:y' }, usd).line;
  };
  // [name, model, quantity, minor, unit_amount, description]
  const table: Array<[string, PriceModel, string, bigint, string | null, string]> = [
    // 1234 × 0.0035 = 4.319 -> 432 cents
    ['per_unit', { model: 'per_unit', unit_amount: '0.0035' }, '1234', 432n, '0.0035', 'API: api_calls'],
    // 1001 × 0.0035 = 3.5035 -> 350 cents; 1003 × 0.0035 = 3.5105 -> 351
    ['per_unit rounds down below a half cent', { model: 'per_unit', unit_amount: '0.0035' }, '1001', 350n, '0.0035', 'API: api_calls'],
    ['per_unit rounds up above it', { model: 'per_unit', unit_amount: '0.0035' }, '1003', 351n, '0.0035', 'API: api_calls'],
    // 0.5 cent tie: 1 × 0.005 -> half_up 1 cent
    ['per_unit at a tie, half_up', { model: 'per_unit', unit_amount: '0.005' }, '1', 1n, '0.005', 'API: api_calls'],
    ['package', packaged('up'), '250', 750n, '2.50', 'API: api_calls (3 packages of 100: 250 rounded up)'],
    ['one package', packaged('up'), '1', 250n, '2.50', 'API: api_calls (1 package of 100: 1 rounded up)'],
    ['graduated: no unit amount', graduated, '1200', 1600n, null, 'API: api_calls'],
  ];
  for (const [name, model, quantity, minor, unit, description] of table) {
    it(name, () => {
      const l = line(model, quantity);
      assert.deepEqual(
        [l.kind, l.quantity, l.amount_minor, l.unit_amount, l.description, l.usage_ref],
        ['usage', quantity, minor, unit, description, 'ua:v1:c:api_calls:x:y'],
      );
    });
  }
  it('a package line keeps the usage as quantity and the packages apart', () =>
    assert.deepEqual(line(packaged('down'), '250').package, { size: '100', round: 'down', quantity: '2' }));
  it('the window text follows the meter', () =>
    assert.equal(line(volume, '5', ' (2026-11-16 to 2026-11-30)').description, 'API: api_calls (2026-11-16 to 2026-11-30)'));
});
