// What a disputed line can be credited: the line's amount and its tax share at the invoice's own rate, split pro rata
// when partial, never more than what is left. Worked examples computed by hand, then properties.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { lineCredit, remainingCredit, splitCredit, type CreditParts } from '../../src/disputes/amounts.js';
import type { Invoice, InvoiceLine } from '../../src/domain/model.js';

const line = (amount: bigint, taxable = true): InvoiceLine => ({
  line_no: 1,
  kind: 'flat',
  product: 'platform',
  meter: null,
  price_id: null,
  price_version: null,
  description: 'Platform Fee',
  quantity: '1',
  unit_amount: null,
  tiers: [],
  amount_minor: amount,
  period_start: '2026-11-01',
  period_end: '2026-12-01',
  taxable,
});
const invoice = (rate: string | null, currency = 'USD'): Invoice =>
  ({
    id: 'inv_x',
    currency,
    rounding: 'half_up',
    tax_lines: rate === null ? [] : [{ jurisdiction: 'US-CA', rate, taxable_minor: 0n, tax_minor: 0n }],
  }) as unknown as Invoice;

describe('a line’s full credit', () => {
  it('is its amount and its tax share at the invoice’s rate, rounded once', () => {
    // 99.00 × 0.0725 = 7.1775 → 7.18 (half up); 99.00 × 0.19 = 18.81; not taxable or no tax line: no tax.
    assert.deepEqual(lineCredit(invoice('0.0725'), line(9900n)), { net: 9900n, tax: 718n, gross: 10618n });
    assert.deepEqual(lineCredit(invoice('0.19', 'EUR'), line(9900n)), { net: 9900n, tax: 1881n, gross: 11781n });
    assert.deepEqual(lineCredit(invoice('0.0725'), line(9900n, false)), { net: 9900n, tax: 0n, gross: 9900n });
    assert.deepEqual(lineCredit(invoice(null), line(9900n)), { net: 9900n, tax: 0n, gross: 9900n });
  });
});

describe('a partial credit', () => {
  const full: CreditParts = { net: 9900n, tax: 718n, gross: 10618n };
  it('splits a gross amount into net and tax at the rate (worked examples)', () => {
    // 10.00 / 1.0725 = 9.3240… → 9.32 net, 0.68 tax; 1.00 / 1.0725 = 0.9324… → 0.93 net, 0.07 tax.
    assert.deepEqual(splitCredit(1000n, full, '0.0725', 'USD', 'half_up'), { net: 932n, tax: 68n, gross: 1000n });
    assert.deepEqual(splitCredit(100n, full, '0.0725', 'USD', 'half_up'), { net: 93n, tax: 7n, gross: 100n });
    // the rest after 10.00: exactly what is left of each part
    const rest = remainingCredit(full, [{ net: 932n, tax: 68n, gross: 1000n }]);
    assert.deepEqual(rest, { net: 8968n, tax: 650n, gross: 9618n });
    assert.deepEqual(splitCredit(9618n, rest, '0.0725', 'USD', 'half_up'), rest);
  });
  it('refuses nothing, less than nothing and more than what is left', () => {
    assert.equal(splitCredit(0n, full, '0.0725', 'USD', 'half_up'), undefined);
    assert.equal(splitCredit(-1n, full, '0.0725', 'USD', 'half_up'), undefined);
    assert.equal(splitCredit(10619n, full, '0.0725', 'USD', 'half_up'), undefined);
  });
  it('always adds up, stays within what is left of net and of tax, and credits the line at most once in full', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.constantFrom('0', '0.0725', '0.08875', '0.19', '0.2'),
        fc.array(fc.bigInt({ min: 1n, max: 10n ** 12n }), { minLength: 1, maxLength: 6 }),
        (amount, rate, asks) => {
          const whole = lineCredit(invoice(rate), line(amount));
          const taken: CreditParts[] = [];
          for (const ask of asks) {
            const left = remainingCredit(whole, taken);
            const parts = splitCredit(ask, left, rate, 'USD', 'half_up');
            if (ask > left.gross) {
              assert.equal(parts, undefined);
              continue;
            }
            assert.ok(parts);
            assert.equal(parts.net + parts.tax, ask);
            assert.ok(parts.net >= 0n && parts.net <= left.net, 'net within what is left');
            assert.ok(parts.tax >= 0n && parts.tax <= left.tax, 'tax within what is left');
            taken.push(parts);
          }
          const rest = remainingCredit(whole, taken);
          assert.ok(rest.net >= 0n && rest.tax >= 0n);
          assert.equal(rest.gross, whole.gross - taken.reduce((s, t) => s + t.gross, 0n));
        },
      ),
    );
  });
});
