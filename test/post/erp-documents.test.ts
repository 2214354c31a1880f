// The tax of an ERP document spread over its lines: exact sums, each share within one minor unit of its proportion.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocateProportionally } from '../../src/post/erp-documents.js';
import { parseJsonDecimals, stringifyWithDecimals, decimalLiteral } from '../../src/connectors/json-decimal.js';

describe('allocateProportionally', () => {
  it('splits by largest remainder: worked examples', () => {
    // 57.43 EUR of 19% tax over 0.27, 53.00 and 249.00 (sum 302.27): floors 5, 1006, 4730 (5741); the two cents left
    // go to the largest remainders, 53.00 (29538/30227) and 249.00 (26990/30227).
    assert.deepEqual(allocateProportionally(5743n, [27n, 5300n, 24900n]), [5n, 1007n, 4731n]);
    assert.deepEqual(allocateProportionally(10n, [1n, 1n, 1n]), [4n, 3n, 3n], 'ties go to the earlier line');
    assert.deepEqual(allocateProportionally(0n, [100n, 200n]), [0n, 0n]);
    assert.deepEqual(allocateProportionally(0n, [0n, 0n]), [0n, 0n]);
    // A credit note's restored-credits line is negative: its share of the tax is negative too.
    assert.deepEqual(allocateProportionally(19n, [200n, -100n]), [38n, -19n]);
  });

  it('refuses a total it cannot place', () => {
    assert.throws(() => allocateProportionally(5n, [0n, 0n]), /bases sum to zero/);
    assert.throws(() => allocateProportionally(5n, [-3n, 1n]), /positive/);
  });

  it('always hands out the total exactly, each share within one unit of total × base / sum', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.array(fc.bigInt({ min: 0n, max: 10n ** 9n }), { minLength: 1, maxLength: 30 }), (total, bases) => {
        const sum = bases.reduce((s, b) => s + b, 0n);
        fc.pre(sum > 0n);
        const shares = allocateProportionally(total, bases);
        assert.equal(shares.reduce((s, v) => s + v, 0n), total);
        shares.forEach((share, i) => {
          const exactTimesSum = total * bases[i]!;
          assert.ok(share * sum <= exactTimesSum + sum && share * sum >= exactTimesSum - sum, `share ${i} within one unit`);
        });
      }),
    );
  });
});

describe('JSON with exact decimals', () => {
  it('reads numbers as their literal text and writes decimal literals unchanged', () => {
    assert.deepEqual(parseJsonDecimals('{"a":100.50,"b":[-0.1,2e3],"c":"1.5 \\" x","d":true,"e":null}'), { a: '100.50', b: ['-0.1', '2e3'], c: '1.5 " x', d: true, e: null });
    assert.equal(stringifyWithDecimals({ x: decimalLiteral('12345678901234567890.12'), q: 1, s: 'a"b', skip: undefined }), '{"x":12345678901234567890.12,"q":1,"s":"a\\"b"}');
    assert.throws(() => stringifyWithDecimals({ amount: 0.1 }), /non-integer number/);
    assert.throws(() => decimalLiteral('1e5'), /not a plain decimal/);
  });
});
