// The request value formats of src/api/params.ts, checked as a validator applies them (ajv with ajv-formats, as
// Fastify does) against a plain-arithmetic reference: integer ranges, calendar dates, periods, amounts, identifiers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import {
  amountString,
  dateString,
  idString,
  int8String,
  integerRangePattern,
  integerString,
  PARAM_LIMITS,
  periodString,
  textString,
  timestampString,
} from '../../src/api/params.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true }));
const accepts = (schema: object, value: unknown) => ajv.validate(schema, value);

const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const daysIn = (y: number, m: number) => [31, isLeap(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]!;
const inYears = (y: number) => y >= PARAM_LIMITS.yearMin && y <= PARAM_LIMITS.yearMax;
const pad = (n: number, width: number) => String(n).padStart(width, '0');

describe('request value formats', () => {
  it('integerRangePattern matches exactly the integers from min to max, written without leading zeros', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0n, 1n) as fc.Arbitrary<0n | 1n>,
        fc.bigInt({ min: 1n, max: PARAM_LIMITS.int8Max }),
        fc.bigInt({ min: 0n, max: 10n ** 20n }),
        (min, max, n) => {
          const pattern = new RegExp(integerRangePattern(min, max), 'u');
          // Near the bound as often as anywhere else.
          for (const candidate of [n, max, max - 1n, max + 1n, n % (max + 2n)]) {
            if (candidate < 0n) continue;
            assert.equal(pattern.test(candidate.toString()), candidate >= min && candidate <= max, `${candidate} in ${min}..${max}`);
          }
          assert.equal(pattern.test(`0${max}`), false, 'no leading zero');
          assert.equal(pattern.test(`-${max}`), false);
        },
      ),
      { numRuns: 300 },
    );
    const int8 = int8String(1n);
    assert.ok(accepts(int8, '9223372036854775807'));
    assert.ok(!accepts(int8, '9223372036854775808'));
    assert.ok(!accepts(int8, '0'));
    assert.ok(accepts(int8String(0n), '0'));
    assert.ok(!accepts(integerString(1n, 1000n), '1e3'));
  });

  it('takes a date, a period or a timestamp only when the day exists, within the supported years', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), (y, m, d) => {
        const real = inYears(y) && m >= 1 && m <= 12 && d >= 1 && d <= daysIn(y, m);
        const date = `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
        assert.equal(accepts(dateString(), date), real, date);
        assert.equal(accepts(timestampString(), `${date}T12:00:00Z`), real, `${date}T12:00:00Z`);
        assert.equal(accepts(periodString(), `${pad(y, 4)}-${pad(m, 2)}`), inYears(y) && m >= 1 && m <= 12, `${pad(y, 4)}-${pad(m, 2)}`);
      }),
      { numRuns: 2000 },
    );
    for (const bad of ['2026-10-01T24:00:00Z', '2026-10-01T10:00:00', '2026-10-01T10:00Z', '+2026-10-01T10:00:00Z'])
      assert.ok(!accepts(timestampString(), bad), bad);
    assert.ok(accepts(timestampString(), '2026-10-01T10:00:00.123456789+05:30'));
  });

  it('takes an amount only as a decimal string whose minor units fit a bigint', () => {
    const amount = amountString();
    for (const good of ['0.01', '1', '999999999999999.999', '123.4']) assert.ok(accepts(amount, good), good);
    for (const bad of ['1'.repeat(16), '1'.repeat(30), '-1', '1e3', '01', '1.', '.5', '1.0001', 1, '9223372036854775807'])
      assert.ok(!accepts(amount, bad), String(bad));
    // The largest amount in the format, in the currency with the most minor digits (3), is below 2^63.
    assert.ok(BigInt('999999999999999999') <= PARAM_LIMITS.int8Max);
  });

  it('takes identifiers and text without NUL, lone surrogates (and, for identifiers, control characters), within their lengths', () => {
    const id = idString();
    const text = textString();
    for (const good of ['NWDE-000001', 'exc:v1:abc', 'Zoë 𝟘', 'a'.repeat(PARAM_LIMITS.idLengthMax)]) assert.ok(accepts(id, good), good);
    for (const bad of ['', 'a\u0000', '\ud800', 'x\udfffy', 'tab\there', 'a'.repeat(PARAM_LIMITS.idLengthMax + 1)])
      assert.ok(!accepts(id, bad), JSON.stringify(bad));
    for (const good of ['', 'two\nlines\tand a tab', 'Zoë 𝟘']) assert.ok(accepts(text, good), good);
    for (const bad of ['a\u0000', '\udc00', 'a'.repeat(PARAM_LIMITS.textLengthMax + 1)])
      assert.ok(!accepts(text, bad), JSON.stringify(bad).slice(0, 20));
    fc.assert(
      // Code points of any plane, and UTF-16 units alone (lone surrogates included).
      fc.property(
        fc.string({
          unit: fc.oneof(
            fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
            fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
          ),
          maxLength: 40,
        }),
        (s) => {
          const wellFormed = !/[\ud800-\udfff]/u.test(s);
          assert.equal(accepts(text, s), wellFormed && !s.includes('\u0000'), JSON.stringify(s));
          assert.equal(accepts(id, s), s.length > 0 && wellFormed && !/[\u0000-\u001f\u007f]/.test(s), JSON.stringify(s));
        },
      ),
      { numRuns: 500 },
    );
  });
});
