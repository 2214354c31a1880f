// Rounding to the minor unit at exact ties, worked by hand: half_up moves a tie away from zero, half_even to the
// even neighbour; USD has 2 decimals, JPY 0 and KWD 3.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Decimal, minorUnits, roundToMinor, type RoundingMode } from '../../src/domain/money.js';

// [currency, exact major amount, mode, expected minor units]
const TIES: Array<[string, string, RoundingMode, bigint]> = [
  // USD: 0.125 = 12.5 cents, a tie between 12 and 13.
  ['USD', '0.125', 'half_up', 13n],
  ['USD', '0.125', 'half_even', 12n], // 12 is even
  ['USD', '0.135', 'half_up', 14n],
  ['USD', '0.135', 'half_even', 14n], // 13.5 -> 14 (even)
  ['USD', '0.005', 'half_up', 1n],
  ['USD', '0.005', 'half_even', 0n], // 0.5 cent -> 0 (even)
  ['USD', '2.675', 'half_up', 268n],
  ['USD', '2.675', 'half_even', 268n], // 267.5 -> 268 (even)
  ['USD', '-0.125', 'half_up', -13n], // away from zero
  ['USD', '-0.125', 'half_even', -12n],
  // JPY: no minor digits; 2.5 yen is a tie between 2 and 3.
  ['JPY', '2.5', 'half_up', 3n],
  ['JPY', '2.5', 'half_even', 2n],
  ['JPY', '3.5', 'half_up', 4n],
  ['JPY', '3.5', 'half_even', 4n],
  ['JPY', '0.5', 'half_up', 1n],
  ['JPY', '0.5', 'half_even', 0n],
  ['JPY', '-2.5', 'half_up', -3n],
  ['JPY', '-2.5', 'half_even', -2n],
  // KWD: 3 minor digits (fils); 1.0005 = 1000.5 fils.
  ['KWD', '1.0005', 'half_up', 1001n],
  ['KWD', '1.0005', 'half_even', 1000n],
  ['KWD', '1.0015', 'half_up', 1002n],
  ['KWD', '1.0015', 'half_even', 1002n], // 1001.5 -> 1002 (even)
  ['KWD', '-1.0005', 'half_up', -1001n],
  ['KWD', '-1.0005', 'half_even', -1000n],
];

// Just off a tie both modes agree: the nearest neighbour wins.
const NEAR: Array<[string, string, bigint]> = [
  ['USD', '0.1249', 12n],
  ['USD', '0.1251', 13n],
  ['JPY', '2.4999', 2n],
  ['JPY', '2.5001', 3n],
  ['KWD', '1.00049', 1000n],
  ['KWD', '1.00051', 1001n],
];

describe('roundToMinor at ties', () => {
  it('knows the minor digits of USD, JPY and KWD', () => {
    assert.deepEqual(
      ['USD', 'JPY', 'KWD'].map((c) => minorUnits(c)),
      [2, 0, 3],
    );
  });
  for (const [currency, amount, mode, expected] of TIES) {
    it(`${amount} ${currency} ${mode} -> ${expected}`, () => assert.equal(roundToMinor(new Decimal(amount), currency, mode), expected));
  }
  for (const [currency, amount, expected] of NEAR) {
    for (const mode of ['half_up', 'half_even'] as const) {
      it(`${amount} ${currency} ${mode} -> ${expected} (not a tie)`, () =>
        assert.equal(roundToMinor(new Decimal(amount), currency, mode), expected));
    }
  }
});
