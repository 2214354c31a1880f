// Tax, worked by hand: exclusive, on the taxable lines' sum after discounts and credits, rounded once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Decimal, roundToMinor, type RoundingMode } from '../../src/domain/money.js';
import { taxOf } from '../../src/rate/tax.js';

const line = (amount_minor: bigint, taxable = true) => ({ amount_minor, taxable });

describe('taxOf', () => {
  // [name, currency, mode, lines, rate, taxable minor, tax minor]
  const table: Array<[string, string, RoundingMode, Array<{ amount_minor: bigint; taxable: boolean }>, string, bigint, bigint]> = [
    // 100.00 - 10.00 = 90.00 taxable (5.00 not taxable); 90 × 0.0725 = 6.525 -> 652.5 cents, a tie
    ['USD tie, half_up', 'USD', 'half_up', [line(10000n), line(-1000n), line(500n, false)], '0.0725', 9000n, 653n],
    ['USD tie, half_even', 'USD', 'half_even', [line(10000n), line(-1000n), line(500n, false)], '0.0725', 9000n, 652n],
    // 304.45 × 0.19 = 57.8455 -> 57.85
    ['EUR 19%', 'EUR', 'half_up', [line(30550n), line(-105n)], '0.19', 30445n, 5785n],
    // 1001 yen × 0.10 = 100.1 -> 100
    ['JPY 10%', 'JPY', 'half_up', [line(1001n)], '0.10', 1001n, 100n],
    // 15 yen × 0.10 = 1.5 -> 2 half_up, 2 half_even
    ['JPY tie', 'JPY', 'half_even', [line(15n)], '0.10', 15n, 2n],
    // 1.234 KWD × 0.05 = 0.0617 -> 61.7 fils -> 62
    ['KWD 5%', 'KWD', 'half_up', [line(1234n)], '0.05', 1234n, 62n],
    ['zero rate', 'USD', 'half_up', [line(12345n)], '0', 12345n, 0n],
    // credits can bring the taxable sum to zero
    ['nothing taxable left', 'USD', 'half_up', [line(5000n), line(-5000n)], '0.08875', 0n, 0n],
  ];
  for (const [name, currency, mode, lines, rate, taxable, tax] of table) {
    it(name, () => {
      const result = taxOf(lines, { jurisdiction: 'X', rate }, currency, (exact: Decimal) => roundToMinor(exact, currency, mode));
      assert.deepEqual(result, { tax_minor: tax, tax_lines: [{ jurisdiction: 'X', rate, taxable_minor: taxable, tax_minor: tax }] });
    });
  }
});
