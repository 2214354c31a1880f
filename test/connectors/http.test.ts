// Retry-After (RFC 9110 §10.2.3) as src/connectors/http.ts reads it: delay-seconds, the three HTTP-date forms in GMT,
// anything else ignored; properties over hostile strings, digits, IMF-fixdates and asctime in other time zones.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseHttpDate, retryAfterMs } from '../../src/connectors/http.js';

const NOW = Date.UTC(2026, 11, 4, 10, 0, 0);
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const two = (n: number) => String(n).padStart(2, '0');

/** asctime-date as RFC 9110 writes it: `Sun Nov  6 08:49:37 1994`, the day of month space-padded. */
const asctime = (d: Date) =>
  `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ` +
  `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${String(d.getUTCFullYear()).padStart(4, '0')}`;

/** Whole seconds in years 0000-9999, the range an HTTP-date's four-digit year writes. */
const httpDates = fc
  .date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000));

describe('Retry-After', () => {
  it('reads the examples of RFC 9110 and refuses what is not one of its forms', () => {
    assert.equal(retryAfterMs('120', NOW), 120_000);
    assert.equal(retryAfterMs('0', NOW), 0);
    assert.equal(retryAfterMs('Fri, 04 Dec 2026 10:01:30 GMT', NOW), 90_000);
    assert.equal(retryAfterMs('Friday, 04-Dec-26 10:01:30 GMT', NOW), 90_000, 'rfc850-date');
    assert.equal(retryAfterMs('Fri Dec  4 10:01:30 2026', NOW), 90_000, 'asctime-date');
    assert.equal(retryAfterMs('Sun, 06 Nov 1994 08:49:37 GMT', NOW), 0, 'a past date is 0');
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW), Date.UTC(1994, 10, 6, 8, 49, 37));
    assert.equal(parseHttpDate('Thursday, 06-Nov-76 08:49:37 GMT', NOW), Date.UTC(2076, 10, 6, 8, 49, 37), '50 years ahead at most');
    assert.equal(parseHttpDate('Saturday, 06-Nov-77 08:49:37 GMT', NOW), Date.UTC(1977, 10, 6, 8, 49, 37));
    for (const bad of [
      '-5',
      '+5',
      '1.5',
      '1e3',
      '٣',
      '99999999999',
      'soon',
      '2026-12-04T10:01:30Z',
      'Fri, 04 Dec 2026 10:01:30 UTC',
      'Fri, 04 Dec 2026 10:01:30 +0000',
      'fri, 04 Dec 2026 10:01:30 GMT',
      'Fri, 4 Dec 2026 10:01:30 GMT',
      'Fri, 31 Feb 2026 10:01:30 GMT',
      'Fri, 04 Dec 2026 24:00:00 GMT',
      'Fri, 04 Dec 2026 10:60:00 GMT',
      'Fri Dec 04 10:01:30 2026 GMT',
      'Fri, 04 Dec 2026 10:01:30 GMT, Sat, 05 Dec 2026 10:01:30 GMT',
    ])
      assert.equal(retryAfterMs(bad, NOW), undefined, bad);
  });

  it('never throws on a hostile string and answers undefined or a non-negative whole number', () => {
    const hostile = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 64 }),
      fc.string({ unit: fc.constantFrom(...'0123456789 ,:-GMTadeFriSunNovDec\t\u0000'.split('')), maxLength: 40 }),
      httpDates.chain((d) => fc.nat({ max: 29 }).map((cut) => d.toUTCString().slice(0, cut) + d.toUTCString().slice(cut + 1))),
    );
    fc.assert(
      fc.property(hostile, fc.integer({ min: 0, max: 8.64e15 }), (text, now) => {
        const ms = retryAfterMs(text, now);
        assert.ok(ms === undefined || (Number.isSafeInteger(ms) && ms >= 0), `${JSON.stringify(text)} -> ${ms}`);
      }),
      { numRuns: 2_000 },
    );
  });

  it('reads delay-seconds of up to ten digits as that many seconds, leading zeros and surrounding blanks included', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9_999_999_999 }), fc.nat({ max: 9 }), fc.constantFrom('', ' ', '\t'), (n, zeros, blank) => {
        const digits = String(n).padStart(Math.min(10, String(n).length + zeros), '0');
        assert.equal(retryAfterMs(`${blank}${digits}${blank}`, NOW), n * 1000);
      }),
    );
  });

  it('round-trips every IMF-fixdate; a date in the past is 0, never negative', () => {
    fc.assert(
      fc.property(httpDates, fc.integer({ min: -8.64e15, max: 8.64e15 }), (date, now) => {
        const text = date.toUTCString(); // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
        assert.equal(parseHttpDate(text), date.getTime(), text);
        assert.equal(retryAfterMs(text, now), Math.max(0, date.getTime() - now), text);
      }),
    );
  });

  describe('asctime-date in a machine not on UTC', () => {
    const saved = process.env.TZ;
    after(() => {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    });
    it('is read as GMT, never in the local time zone', () => {
      for (const zone of ['America/New_York', 'Asia/Kolkata', 'Pacific/Chatham', 'Europe/Berlin']) {
        process.env.TZ = zone;
        const sample = new Date(Date.UTC(1994, 10, 6, 8, 49, 37));
        assert.notEqual(Date.parse(asctime(sample)), sample.getTime(), `Date.parse reads asctime in ${zone}: the hazard`);
        fc.assert(
          fc.property(httpDates, (date) => {
            assert.equal(parseHttpDate(asctime(date)), date.getTime(), `${asctime(date)} in ${zone}`);
          }),
          { numRuns: 300 },
        );
      }
    });
  });
});
