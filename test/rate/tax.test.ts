// Tax, worked by hand: exclusive, on the taxable lines' sum after discounts and credits, rounded once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Decimal, roundToMinor, type RoundingMode } from '../../src/domain/money.js';
import fc from 'fast-check';
import { taxRateAt } from '../../src/domain/catalog.js';
import type { TaxRate } from '../../src/domain/model.js';
import { taxOf, taxRateInForce } from '../../src/rate/tax.js';

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

describe('taxRateAt: effective-dated rates', () => {
  const versioned: TaxRate = {
    jurisdiction: 'US-CA',
    versions: [
      { effective_from: null, rate: '0.0725' },
      { effective_from: '2026-12-01', rate: '0.08' },
      { effective_from: '2027-07-01', rate: '0.085' },
    ],
  };
  // [date, rate in force]
  const table: Array<[string, string]> = [
    ['2026-11-01', '0.0725'],
    ['2026-11-30', '0.0725'],
    ['2026-12-01', '0.08'], // effective_from is inclusive
    ['2027-06-30', '0.08'],
    ['2027-07-01', '0.085'],
    ['2099-01-01', '0.085'],
  ];
  for (const [date, rate] of table) it(`${date} -> ${rate}`, () => assert.equal(taxRateAt(versioned, date), rate));

  it('a single rate is in force always', () => assert.equal(taxRateAt({ jurisdiction: 'DE', rate: '0.19' }, '1970-01-01'), '0.19'));

  it('before a first effective_from no rate is in force, and rating says so with a problem', () => {
    const later: TaxRate = { jurisdiction: 'DE', versions: [{ effective_from: '2027-01-01', rate: '0.19' }] };
    assert.equal(taxRateAt(later, '2026-12-01'), undefined);
    const refused = taxRateInForce(later, '2026-12-01');
    assert.ok(!refused.ok);
    assert.equal(refused.problems[0]!.code, 'no_tax_rate_in_force');
    assert.equal(refused.problems[0]!.path, 'customer.tax_jurisdiction');
  });

  const day = fc.integer({ min: 0, max: 3650 }).map((n) => new Date(Date.UTC(2025, 0, 1) + n * 86_400_000).toISOString().slice(0, 10));
  const rateText = fc.integer({ min: 0, max: 10_000 }).map((n) => new Decimal(n).div(10_000).toFixed());

  it('property: the rate chosen is the one with the latest effective_from on or before the date', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(day, { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        fc.array(rateText, { minLength: 9, maxLength: 9 }),
        day,
        (dates, openStart, rates, date) => {
          const sorted = [...dates].sort();
          const versions = sorted.map((from, k) => ({ effective_from: openStart && k === 0 ? null : from, rate: rates[k]! }));
          const chosen = taxRateAt({ jurisdiction: 'X', versions }, date);
          // Independently: the last version whose start (null: always) is on or before the date.
          const eligible = versions.filter((v) => v.effective_from === null || v.effective_from <= date);
          assert.equal(chosen, eligible.at(-1)?.rate);
          if (chosen !== undefined) {
            const k = versions.findIndex((v) => v === eligible.at(-1));
            const next = versions[k + 1];
            assert.ok(next === undefined || next.effective_from! > date, 'no later version is already in force');
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
