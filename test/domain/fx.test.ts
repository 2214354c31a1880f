// Exchange rates (src/domain/fx.ts): the ECB's files and a plain CSV read strictly, the rate in force on a date
// (published, inverse or cross, never stale), and conversion between minor units. Expected values worked by hand.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { convertMinor, detectFxFormat, parseFxFile, rateOn, type FxRate } from '../../src/domain/fx.js';
import { formatProblems } from '../../src/domain/result.js';

const hist = readFileSync(new URL('../fixtures/fx/eurofxref-hist-excerpt.csv', import.meta.url), 'utf8');
const daily = readFileSync(new URL('../fixtures/fx/eurofxref-excerpt.csv', import.meta.url), 'utf8');

function rates(text: string, source?: string): FxRate[] {
  const parsed = parseFxFile(text, source ? { source } : {});
  assert.ok(parsed.ok, parsed.ok ? '' : formatProblems(parsed.problems));
  return parsed.value.rates;
}

describe('the ECB files', () => {
  it('reads the history file: 24 currencies quoted on 2023-12-08 against EUR; withdrawn and N/A columns skipped', () => {
    const read = rates(hist);
    assert.equal(detectFxFormat(hist), 'ecb');
    assert.equal(read.length, 24);
    assert.deepEqual(read[0], { source: 'ecb', date: '2023-12-08', base: 'EUR', quote: 'USD', rate: '1.0777' });
    assert.deepEqual(
      read.find((r) => r.quote === 'GBP'),
      { source: 'ecb', date: '2023-12-08', base: 'EUR', quote: 'GBP', rate: '0.8569' },
    );
    assert.ok(!read.some((r) => ['CYP', 'EEK', 'HRK', 'RUB', 'ZAR'].includes(r.quote)));
  });

  it('reads the daily file (spaces after commas, "08 December 2023") to the same rates', () => {
    assert.deepEqual(rates(daily), rates(hist));
  });

  it('refuses a bad cell naming line and column, and the whole file with it', () => {
    const shifted = parseFxFile(hist.replace('1.0777', '1,0777')); // one cell too many
    assert.deepEqual(shifted.ok ? [] : shifted.problems.map((p) => p.path), ['line 2']);
    const bad = parseFxFile(hist.replace(',155.53,', ',-155.53,'));
    assert.equal(bad.ok, false);
    assert.deepEqual(bad.ok ? [] : bad.problems.map((p) => p.path), ['line 2, column 3']);
    const zero = parseFxFile(hist.replace(',155.53,', ',0.000,'));
    assert.deepEqual(zero.ok ? [] : zero.problems.map((p) => `${p.path}: ${p.message}`), ['line 2, column 3: must be greater than 0']);
    const date = parseFxFile(hist.replace('2023-12-08', '2023-02-30'));
    assert.deepEqual(date.ok ? [] : date.problems.map((p) => p.path), ['line 2, column 1']);
  });
});

describe('a date,base,quote,rate file', () => {
  const simple = 'date,base,quote,rate\n2026-11-30,USD,EUR,0.9200\n2026-12-15,USD,EUR,0.9000\n';

  it('needs a source, and reads each line as 1 base = rate quote', () => {
    assert.equal(parseFxFile(simple).ok, false);
    assert.deepEqual(rates(simple, 'treasury'), [
      { source: 'treasury', date: '2026-11-30', base: 'USD', quote: 'EUR', rate: '0.9200' },
      { source: 'treasury', date: '2026-12-15', base: 'USD', quote: 'EUR', rate: '0.9000' },
    ]);
  });

  it('refuses each bad line by line and column: currency, sign, exponent, same pair twice with two rates', () => {
    const parsed = parseFxFile(
      'date,base,quote,rate\n2026-11-30,usd,EUR,0.92\n2026-11-30,USD,EUR,1e3\n2026-11-30,USD,USD,1\n2026-11-30,USD,EUR,0.92\n2026-11-30,USD,EUR,0.93\n',
      { source: 'treasury' },
    );
    assert.deepEqual(parsed.ok ? [] : parsed.problems.map((p) => p.path), [
      'line 2, column 2',
      'line 3, column 4',
      'line 4, column 3',
      'line 6',
    ]);
  });

  it('never throws on hostile text: every refusal names a line (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 60 }), { maxLength: 8 }), (rows) => {
        for (const header of ['date,base,quote,rate', 'Date, USD, JPY, ']) {
          const parsed = parseFxFile([header, ...rows].join('\n'), { source: 's' });
          if (!parsed.ok) for (const p of parsed.problems) assert.match(p.path, /^line \d+/);
          else for (const r of parsed.value.rates) assert.match(r.rate, /^[0-9]+(\.[0-9]+)?$/);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('the rate on a date', () => {
  const ecb = rates(hist);

  it('takes Friday 2023-12-08 for Sunday 2023-12-10; a direct rate as published', () => {
    assert.deepEqual(rateOn(ecb, { date: '2023-12-10', from: 'EUR', to: 'USD' }), {
      currency: 'EUR',
      rate_date: '2023-12-08',
      rate: '1.0777',
      source: 'ecb',
    });
  });

  it('an inverse: 1 / 1.0777 = 0.927902013547 (12 significant digits, half-even)', () => {
    assert.deepEqual(rateOn(ecb, { date: '2023-12-08', from: 'USD', to: 'EUR' }), {
      currency: 'USD',
      rate_date: '2023-12-08',
      rate: '0.927902013547',
      source: 'ecb',
      derived: 'inverse',
    });
  });

  it('a cross through EUR: USD->GBP = 0.8569 / 1.0777 = 0.795119235409; USD->JPY = 155.53 / 1.0777 = 144.316600167', () => {
    assert.equal(rateOn(ecb, { date: '2023-12-08', from: 'USD', to: 'GBP' })?.rate, '0.795119235409');
    assert.deepEqual(rateOn(ecb, { date: '2023-12-08', from: 'USD', to: 'JPY' }), {
      currency: 'USD',
      rate_date: '2023-12-08',
      rate: '144.316600167',
      source: 'ecb',
      derived: 'cross',
      via: 'EUR',
    });
  });

  it('none before the first rate, and none older than 7 days (2023-12-16 would need 2023-12-08)', () => {
    assert.equal(rateOn(ecb, { date: '2023-12-07', from: 'USD', to: 'EUR' }), undefined);
    assert.equal(rateOn(ecb, { date: '2023-12-15', from: 'USD', to: 'EUR' })?.rate_date, '2023-12-08');
    assert.equal(rateOn(ecb, { date: '2023-12-16', from: 'USD', to: 'EUR' }), undefined);
  });
});

describe('converting minor units', () => {
  it('1,000.00 USD at 0.92 is 920.00 EUR; 100.00 EUR at 155.53 is 15,553 JPY; 10,000 JPY at 0.0064 is 64.00 EUR', () => {
    assert.equal(convertMinor(100000n, 'USD', 'EUR', '0.92', 'half_even'), 92000n);
    assert.equal(convertMinor(10000n, 'EUR', 'JPY', '155.53', 'half_even'), 15553n);
    assert.equal(convertMinor(10000n, 'JPY', 'EUR', '0.0064', 'half_even'), 6400n);
    assert.equal(convertMinor(1000n, 'KWD', 'USD', '3.25', 'half_even'), 325n); // 1.000 KWD (three places)
  });

  it('rounds once with the named mode: 0.25 USD at 0.5 is 0.125 EUR -> 0.13 half up, 0.12 half even', () => {
    assert.equal(convertMinor(25n, 'USD', 'EUR', '0.5', 'half_up'), 13n);
    assert.equal(convertMinor(25n, 'USD', 'EUR', '0.5', 'half_even'), 12n);
    assert.equal(convertMinor(-25n, 'USD', 'EUR', '0.5', 'half_up'), -13n);
  });
});
