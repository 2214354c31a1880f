// The dashboard shows exact decimal strings as text: grouping digits, percentages and minor units moved to major units
// must never lose or change a digit (worked examples, and properties against the server's own formatMajor).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { groupDigits, minorToMajor, money, percent, reconAmount } from '../../src/dashboard/client/format.js';
import { formatMajor } from '../../src/domain/money.js';
import { bucketFor } from '../../src/dashboard/pipeline.js';
import { daysBetween } from '../../src/dashboard/estimate.js';
import { bucketStarts } from '../../src/dashboard/customers.js';

describe('dashboard formatting', () => {
  it('groups digits without touching the fraction', () => {
    const table: Array<[string, string]> = [
      ['0', '0'],
      ['999', '999'],
      ['1000', '1,000'],
      ['1234567.50', '1,234,567.50'],
      ['-64243', '−64,243'],
      ['0.000137', '0.000137'],
      ['12986.026', '12,986.026'],
    ];
    for (const [text, shown] of table) assert.equal(groupDigits(text), shown, text);
    assert.equal(money('1295.79', 'USD'), '1,295.79 USD');
    assert.equal(money(null, 'USD'), '—');
  });

  it('writes ratios as percentages by moving the point', () => {
    const table: Array<[string, string]> = [
      ['1.0000', '100.00 %'],
      ['0.4958', '49.58 %'],
      ['0.05', '5 %'],
      ['0', '0 %'],
      ['-0.125', '−12.5 %'],
    ];
    for (const [ratio, shown] of table) assert.equal(percent(ratio), shown, ratio);
  });

  it('moves minor units to major units exactly as the server formats them', () => {
    assert.equal(minorToMajor('-64243', 'USD'), '-642.43');
    assert.equal(minorToMajor('5', 'EUR'), '0.05');
    assert.equal(minorToMajor('1235', 'JPY'), '1235');
    assert.equal(minorToMajor('1', 'KWD'), '0.001');
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }),
        fc.constantFrom('USD', 'EUR', 'JPY', 'KWD', 'CHF'),
        (minor, currency) => {
          assert.equal(minorToMajor(minor.toString(), currency), formatMajor(minor, currency));
          assert.equal(groupDigits(formatMajor(minor, currency)).replace(/,/g, '').replace('−', '-'), formatMajor(minor, currency));
        },
      ),
    );
  });

  it('shows money checkpoints in the currency and quantity checkpoints as decimals', () => {
    assert.equal(reconAmount('-64243', 'invoices_vs_erp_postings', 'USD'), '−642.43 USD');
    assert.equal(reconAmount('12986.026', 'aggregates_vs_rated', null), '12,986.026');
    assert.equal(reconAmount(null, 'trial_balance', 'EUR'), '—');
  });
});

describe('dashboard axes', () => {
  it('buckets ingestion by minute, hour or day as the window grows', () => {
    assert.deepEqual([1, 2, 3, 24, 96, 97, 720].map(bucketFor), ['minute', 'minute', 'hour', 'hour', 'hour', 'day', 'day']);
  });

  it('lists the days and months of a range, end exclusive', () => {
    assert.deepEqual(daysBetween('2026-02-27', '2026-03-02'), ['2026-02-27', '2026-02-28', '2026-03-01']);
    assert.equal(daysBetween('2026-10-01', '2026-11-01').length, 31);
    assert.throws(() => daysBetween('2026-01-01', '2027-01-01'), /at most 100 days/);
    assert.deepEqual(bucketStarts('2025-11-15', '2026-02-01', 'month'), ['2025-11', '2025-12', '2026-01']);
    assert.deepEqual(bucketStarts('2026-10-30', '2026-11-02', 'day'), ['2026-10-30', '2026-10-31', '2026-11-01']);
  });
});
