// JSON with exact decimals (src/connectors/json-decimal.ts): numbers of any length and exponent reach Accrue as the
// text they were written with, and go back out as the same text.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decimalLiteral, parseJsonDecimals, stringifyWithDecimals } from '../../src/connectors/json-decimal.js';
import { Decimal, decimalText } from '../../src/domain/money.js';

describe('parseJsonDecimals', () => {
  it('reads a 500-digit number as its exact text and writes it back the same', () => {
    const digits = `9${'1234567890'.repeat(49)}123456789`;
    assert.equal(digits.length, 500);
    const text = `{"Amount":${digits}.50,"Lines":[-${digits}]}`;
    const parsed = parseJsonDecimals(text) as { Amount: string; Lines: string[] };
    assert.deepEqual(parsed, { Amount: `${digits}.50`, Lines: [`-${digits}`] });
    assert.equal(stringifyWithDecimals({ Amount: decimalLiteral(parsed.Amount), Lines: parsed.Lines.map(decimalLiteral) }), text);
  });

  it('reads 1e-400 as its text, never a JS number (which would be 0), and its value survives the way back', () => {
    const parsed = parseJsonDecimals('{"tiny":1e-400,"big":1E+400}') as Record<string, string>;
    assert.deepEqual(parsed, { tiny: '1e-400', big: '1E+400' });
    const plain = decimalText(new Decimal(parsed.tiny!));
    assert.equal(plain, `0.${'0'.repeat(399)}1`);
    const back = parseJsonDecimals(stringifyWithDecimals({ tiny: decimalLiteral(plain) })) as Record<string, string>;
    assert.ok(new Decimal(back.tiny!).eq(new Decimal('1e-400')));
  });

  it('keeps strings, escapes, booleans and null as JSON.parse does; a repeated key keeps its last value', () => {
    const text = '{"a":"1.5 \\" \\u0041","b":true,"c":null,"d":[],"e":{},"a2":"x","a2":"y"}';
    assert.deepEqual(parseJsonDecimals(text), { a: '1.5 " A', b: true, c: null, d: [], e: {}, a2: 'y' });
    assert.throws(() => parseJsonDecimals('{"a":01}'), SyntaxError);
    assert.throws(() => parseJsonDecimals('{"a":1.}'), SyntaxError);
    assert.throws(() => parseJsonDecimals('[1,]'), SyntaxError);
  });
});
