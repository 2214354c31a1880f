import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseCatalog } from '../../src/domain/catalog.js';
import { invoiceAmountProblems, meterValueLimits, meterValueProblem, MONEY_MINOR_MAX } from '../../src/domain/limits.js';
import type { Catalog, Invoice, InvoiceLine } from '../../src/domain/model.js';
import { Decimal } from '../../src/domain/money.js';
import fc from 'fast-check';

function northwind(text = readFileSync('examples/northwind/catalog.yaml', 'utf8')): Catalog {
  const loaded = parseCatalog(text);
  assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.problems));
  return loaded.value.catalog;
}

describe('meter value limits', () => {
  it('derives per meter the largest event value from the dearest unit rate, by hand', () => {
    const limits = meterValueLimits(northwind());
    // storage 0.000137 USD = 0.0137 cents: ⌊10^12 / 0.0137⌋; peak_vcpu's dearest tier 6.50 EUR = 650 cents; reserved_ips 3.00 EUR.
    assert.deepEqual(Object.fromEntries([...limits].map(([meter, limit]) => [meter, limit.toFixed()])), {
      storage_gb_hours: '72992700729927',
      peak_vcpu: '1538461538',
      reserved_ips: '3333333333',
    });
    // Count and unique_count meters carry no value to bound.
    assert.equal(limits.has('api_calls'), false);
    assert.equal(limits.has('analytics_seats'), false);
  });

  it('takes the dearest price over plans, versions and packages (unit_amount / size)', () => {
    const text = readFileSync('examples/northwind/catalog.yaml', 'utf8')
      .replace(
        'unit_amount: "0.000137"',
        'versions:\n          - { effective_from: 2026-01-01, model: per_unit, unit_amount: "0.000137" }\n          - { effective_from: 2026-12-01, model: per_unit, package: { size: "10", round: up }, unit_amount: "0.01" }',
      )
      .replace(/(product: storage\n\s+meter: storage_gb_hours\n)\s+model: per_unit\n/, '$1');
    const limits = meterValueLimits(northwind(text));
    // The package version: 0.01 USD per 10 GB-hours = 0.1 cent a GB-hour, dearer than 0.0137: ⌊10^12 / 0.1⌋.
    assert.equal(limits.get('storage_gb_hours')!.toFixed(), '10000000000000');
  });

  it('names the field and the meter of a value beyond the limit, in absolute value', () => {
    const limits = meterValueLimits(northwind());
    assert.equal(meterValueProblem(limits, 'peak_vcpu', '1538461538', 'data.vcpu'), undefined);
    assert.equal(meterValueProblem(limits, 'peak_vcpu', '-1538461538', 'data.vcpu'), undefined);
    const over = meterValueProblem(limits, 'peak_vcpu', '1538461538.5', 'data.vcpu')!;
    assert.equal(over.path, 'data.vcpu');
    assert.equal(over.code, 'too_large');
    assert.match(over.message, /peak_vcpu/);
    assert.equal(meterValueProblem(limits, 'peak_vcpu', '-1538461539', 'data.vcpu')?.code, 'too_large');
    assert.equal(meterValueProblem(limits, 'api_calls', '9'.repeat(40), 'data.x'), undefined, 'no limit but the format');
  });

  it('refuses exactly the values whose absolute value passes the limit (property)', () => {
    const limits = new Map([
      ['m', new Decimal('1538461538')],
      ['zero', new Decimal(0)],
    ]);
    const decimalText = fc
      .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.option(fc.stringMatching(/^\d{0,5}[1-9]$/), { nil: undefined }))
      .map(([negative, whole, fraction]) => `${negative && (whole > 0n || fraction) ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`);
    fc.assert(
      fc.property(decimalText, fc.constantFrom('m', 'zero'), (value, meter) => {
        const within = new Decimal(value).abs().lte(limits.get(meter)!);
        assert.equal(meterValueProblem(limits, meter, value, 'data.v') === undefined, within, value);
      }),
    );
  });
});

describe('invoice amounts', () => {
  const line = (amount: bigint, meter: string | null, quantity = '1'): InvoiceLine => ({
    line_no: 1,
    kind: 'usage',
    product: 'storage',
    meter,
    price_id: null,
    price_version: null,
    description: '',
    quantity,
    unit_amount: null,
    tiers: [],
    amount_minor: amount,
    period_start: '2026-11-01',
    period_end: '2026-12-01',
    taxable: true,
  });
  const invoice = (lines: InvoiceLine[], tax: bigint): Invoice => ({
    id: 'inv_x',
    key: 'k',
    kind: 'invoice',
    number: null,
    status: 'draft',
    legal_entity: 'nw-us',
    customer: 'acme',
    currency: 'USD',
    period_start: '2026-11-01',
    period_end: '2026-12-01',
    rounding: 'half_even',
    lines,
    subtotal_minor: 0n,
    discount_minor: 0n,
    credits_applied_minor: 0n,
    tax_lines: [{ jurisdiction: 'US-CA', rate: '0', taxable_minor: 0n, tax_minor: tax }],
    tax_minor: tax,
    total_minor: 0n,
    rating_run: 'r',
  });

  it('accepts an invoice whose absolute line and tax amounts sum to exactly 2^63 - 1', () => {
    assert.deepEqual(invoiceAmountProblems(invoice([line(MONEY_MINOR_MAX - 10n, 'storage_gb_hours'), line(-5n, null)], 5n)), []);
  });

  it('refuses one past it, naming the customer and the meter of the largest line', () => {
    const problems = invoiceAmountProblems(
      invoice([line(1n, null), line(MONEY_MINOR_MAX - 10n, 'storage_gb_hours', '12345'), line(-5n, null)], 5n),
    );
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.path, 'customers.acme.meters.storage_gb_hours');
    assert.equal(problems[0]!.code, 'amount_out_of_range');
    assert.match(
      problems[0]!.message,
      /customer acme \(USD, 2026-11\): meter storage_gb_hours bills 9223372036854775797 minor units \(quantity 12345\)/,
    );
  });
});
