// Worked examples for every price model and rating rule, computed by hand, plus the invoice properties.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { indexCatalog, parseCatalog } from '../../src/domain/catalog.js';
import type { Catalog, Invoice, PriceModel } from '../../src/domain/model.js';
import { Decimal, decimalText, formatMajor } from '../../src/domain/money.js';
import { priceQuantity } from '../../src/rate/price-models.js';
import { rateCustomer } from '../../src/rate/rate.js';

const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
const load = (text: string) => {
  const parsed = parseCatalog(text);
  assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.problems));
  return parsed.value;
};
const northwind = load(NORTHWIND);
const NOV = { period: '2026-11', start_date: '2026-11-01', end_date: '2026-12-01' };

const price = (model: PriceModel, quantity: string) => decimalText(priceQuantity(model, new Decimal(quantity)).amount);

describe('price models (worked examples)', () => {
  const graduated: PriceModel = {
    model: 'graduated',
    tiers: [
      { up_to: '5', unit_amount: '1.00', flat_amount: '10.00' },
      { up_to: '10', unit_amount: '0.50', flat_amount: '2.00' },
      { up_to: null, unit_amount: '0.25' },
    ],
  };
  const volume: PriceModel = {
    model: 'volume',
    tiers: [
      { up_to: '10', unit_amount: '25.00' },
      { up_to: '50', unit_amount: '20.00' },
      { up_to: null, unit_amount: '15.00', flat_amount: '100.00' },
    ],
  };
  const cases: Array<[string, PriceModel, string, string]> = [
    ['flat ignores quantity', { model: 'flat', amount: '99.00' }, '12345', '99'],
    ['per_unit', { model: 'per_unit', unit_amount: '0.000137' }, '171983.502', '23.561739774'],
    ['per_unit, package rounded up', { model: 'per_unit', unit_amount: '0.30', package: { size: '1000', round: 'up' } }, '34573', '10.5'],
    [
      'per_unit, package rounded up, exact fit',
      { model: 'per_unit', unit_amount: '0.30', package: { size: '1000', round: 'up' } },
      '35000',
      '10.5',
    ],
    [
      'per_unit, package rounded down',
      { model: 'per_unit', unit_amount: '0.30', package: { size: '1000', round: 'down' } },
      '34999',
      '10.2',
    ],
    ['per_unit, package, zero', { model: 'per_unit', unit_amount: '0.30', package: { size: '1000', round: 'up' } }, '0', '0'],
    ['graduated at zero: first tier flat only', graduated, '0', '10'],
    ['graduated inside tier 1', graduated, '3', '13'],
    ['graduated at the boundary 5 (inclusive)', graduated, '5', '15'],
    ['graduated just past it: 5.001 reaches tier 2', graduated, '5.001', '17.0005'],
    [
      'graduated into tier 3',
      graduated,
      '12',
      '10 + 5 + 2 + 2.5 + 0.5'.split(' + ').reduce((a, b) => new Decimal(a).plus(b).toFixed(), '0'),
    ],
    ['volume at zero', volume, '0', '0'],
    ['volume at 10 (inclusive)', volume, '10', '250'],
    ['volume at 11: all units at tier 2', volume, '11', '220'],
    ['volume at 60: tier 3 plus its flat', volume, '60', '1000'],
  ];
  for (const [name, model, quantity, expected] of cases) {
    it(name, () => assert.equal(price(model, quantity), expected));
  }

  it('Northwind api_calls v1: 250,000 calls = 150,000 × 0.0004 = 60', () => {
    const api = northwind.catalog.plans[0]!.prices[1]!;
    assert.equal(price(api.versions[0]!, '250000'), '60');
    assert.equal(price(api.versions[1]!, '300000'), '70');
    assert.equal(price(api.versions[0]!, '100000'), '0');
    assert.equal(price(api.versions[0]!, '100001'), '0.0004');
  });

  it('a graduated price equals the sum of its tiers priced separately (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 999 }), (whole, fraction) => {
        const quantity = new Decimal(`${whole}.${fraction}`);
        const tiers = northwind.catalog.plans[0]!.prices[1]!.versions[0]!;
        assert.equal(tiers.model, 'graduated');
        const priced = priceQuantity(tiers, quantity);
        const sum = priced.tiers.reduce((acc, t) => acc.plus(t.amount), new Decimal(0));
        assert.equal(decimalText(sum), decimalText(priced.amount));
        const units = priced.tiers.reduce((acc, t) => acc.plus(t.quantity), new Decimal(0));
        assert.equal(decimalText(units), decimalText(quantity));
      }),
    );
  });
});

function rate(catalog: Catalog, customer: string, usage: Record<string, string>, used = new Map<string, bigint>()): Invoice {
  const result = rateCustomer({
    catalog,
    index: indexCatalog(catalog),
    catalogHash: 'test',
    customer,
    period: NOV,
    grantUsedMinor: used,
    usageFingerprint: 'fp',
    usage: (meter, from, to) => ({
      quantity: usage[`${meter} ${from.slice(0, 10)} ${to.slice(0, 10)}`] ?? usage[meter] ?? '0',
      usage_ref: `${meter}:${from}`,
    }),
  });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  assert.equal(result.value.length, 1);
  return result.value[0]!;
}

const amounts = (invoice: Invoice) => invoice.lines.map((l) => [l.kind, l.product, formatMajor(l.amount_minor, invoice.currency)]);

describe('rating Northwind, November 2026 (worked by hand)', () => {
  it('acme: the mid-month price change, the credit drawdown and US-CA tax', () => {
    const invoice = rate(northwind.catalog, 'acme', {
      'api_calls 2026-11-01 2026-11-16': '250000', // v1: 150,000 × 0.0004 = 60.00
      'api_calls 2026-11-16 2026-12-01': '300000', // v2: 200,000 × 0.00035 = 70.00
      storage_gb_hours: '1000000', // × 0.000137 = 137.00
      analytics_seats: '12', // volume tier 2: 12 × 20 = 240.00
    });
    assert.deepEqual(amounts(invoice), [
      ['flat', 'platform', '99.00'],
      ['usage', 'api', '60.00'],
      ['usage', 'api', '70.00'],
      ['usage', 'storage', '137.00'],
      ['usage', 'analytics', '240.00'],
      // Usage 507.00 ≥ 500.00: no true-up. Credit 200.00, oldest grant first, against usage: api 130.00 then storage 70.00.
      ['credit', 'api', '-130.00'],
      ['credit', 'storage', '-70.00'],
    ]);
    assert.equal(invoice.lines[1]!.price_version, 'growth-usd/1:api:api_calls@2026-01-01');
    assert.equal(invoice.lines[2]!.price_version, 'growth-usd/1:api:api_calls@2026-11-16');
    assert.equal(invoice.subtotal_minor, 60600n);
    assert.equal(invoice.credits_applied_minor, 20000n);
    // (606.00 − 200.00) × 0.0725 = 29.435 → half_up 29.44
    assert.equal(invoice.tax_minor, 2944n);
    assert.equal(invoice.total_minor, 43544n);
    assert.equal(invoice.rounding, 'half_up');
  });

  it('acme: a grant already drawn by earlier invoices only gives what is left', () => {
    const invoice = rate(northwind.catalog, 'acme', { storage_gb_hours: '1000000' }, new Map([['acme:2026-11-01:0', 15000n]]));
    assert.equal(invoice.credits_applied_minor, 5000n);
  });

  it('umbrella: packages of 1,000 rounded up, 10% api discount, graduated compute with a base fee, DE tax', () => {
    const invoice = rate(northwind.catalog, 'umbrella', { api_calls: '34573', peak_vcpu: '24', reserved_ips: '1' });
    assert.deepEqual(amounts(invoice), [
      ['flat', 'platform', '249.00'],
      ['usage', 'api', '10.50'], // 35 packages × 0.30
      ['usage', 'compute', '144.00'], // 40.00 base + 16 × 6.50
      ['usage', 'compute', '3.00'],
      ['discount', 'api', '-1.05'],
    ]);
    assert.equal(invoice.discount_minor, 105n);
    assert.equal(invoice.tax_minor, 7704n); // 405.45 × 0.19 = 77.0355
    assert.equal(invoice.total_minor, 48249n);
  });

  it('initech: partial first month, prorated flat fee and minimum, true-up', () => {
    const invoice = rate(northwind.catalog, 'initech', {
      'api_calls 2026-11-10 2026-11-16': '50000', // v1, inside the free tier
      'api_calls 2026-11-16 2026-12-01': '200000', // v2: 100,000 × 0.00035 = 35.00
    });
    assert.deepEqual(amounts(invoice), [
      ['flat', 'platform', '69.30'], // 99.00 × 21/30
      ['usage', 'api', '0.00'],
      ['usage', 'api', '35.00'],
      ['usage', 'storage', '0.00'],
      ['usage', 'analytics', '0.00'],
      ['minimum_true_up', 'platform', '315.00'], // 500.00 × 21/30 = 350.00 − 35.00
    ]);
    assert.equal(invoice.lines[0]!.period_start, '2026-11-10');
    assert.equal(invoice.tax_minor, 0n); // US-OR
    assert.equal(invoice.total_minor, 41930n);
  });

  it('a flat fee prorated by a ratio that never ends: the quantity to 6 places, the amount from the exact ratio', () => {
    const late = structuredClone(northwind.catalog);
    late.subscriptions = late.subscriptions.map((s) => (s.customer === 'initech' ? { ...s, start: '2026-11-24' } : s));
    const invoice = rate(late, 'initech', {});
    const flat = invoice.lines[0]!;
    assert.equal(flat.description, 'Platform Fee (prorated 7 of 30 days) (2026-11-24 to 2026-11-30)');
    assert.equal(flat.quantity, '0.233333'); // 7/30
    assert.equal(formatMajor(flat.amount_minor, invoice.currency), '23.10'); // 99.00 × 7/30 = 23.10 exactly
    // The minimum is prorated the same way: 500.00 × 7/30 = 116.666… → 116.67, with no usage to set against it.
    assert.deepEqual(amounts(invoice).slice(-1), [['minimum_true_up', 'platform', '116.67']]);
  });

  it('globex: usage short of the commitment is trued up, NY tax', () => {
    const invoice = rate(northwind.catalog, 'globex', { analytics_seats: '5' });
    assert.deepEqual(amounts(invoice).slice(-1), [['minimum_true_up', 'platform', '375.00']]); // 500 − 125
    assert.equal(invoice.tax_minor, 5316n); // 599.00 × 0.08875 = 53.16125
  });
});

describe('invoice properties', () => {
  const currencyVariant = (currency: string) =>
    load(
      NORTHWIND.replace('currency: USD\n    invoice_number_prefix', `currency: ${currency}\n    invoice_number_prefix`)
        .replace('id: growth-usd\n    currency: USD', `id: growth-usd\n    currency: ${currency}`)
        .replace('minimum_commitment: "500.00"', 'minimum_commitment: "500"')
        .replace('{ customer: acme, amount: "200.00", currency: USD', `{ customer: acme, amount: "200", currency: ${currency}`)
        .replace('amount: "99.00"', 'amount: "99"'),
    ).catalog;
  const variants = { USD: northwind.catalog, JPY: currencyVariant('JPY'), KWD: currencyVariant('KWD') };
  const scale: Record<string, number> = { USD: 2, JPY: 0, KWD: 3 };

  it('lines sum to subtotal − discount − credits; subtotal − discount − credits + tax = total; amounts have the currency digits', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('USD', 'JPY', 'KWD'),
        fc.constantFrom('acme', 'globex', 'initech'),
        fc.bigInt({ min: 0n, max: 5_000_000n }),
        fc.bigInt({ min: 0n, max: 5_000_000n }),
        fc.integer({ min: 0, max: 99_999 }),
        fc.integer({ min: 0, max: 80 }),
        (currency, customer, calls1, calls2, storage, seats) => {
          const invoice = rate(variants[currency as keyof typeof variants], customer, {
            'api_calls 2026-11-01 2026-11-16': calls1.toString(),
            'api_calls 2026-11-10 2026-11-16': calls1.toString(),
            'api_calls 2026-11-16 2026-12-01': calls2.toString(),
            storage_gb_hours: `${storage}.${storage % 1000}`,
            analytics_seats: String(seats),
          });
          const lineSum = invoice.lines.reduce((s, l) => s + l.amount_minor, 0n);
          assert.equal(lineSum, invoice.subtotal_minor - invoice.discount_minor - invoice.credits_applied_minor);
          assert.equal(
            invoice.total_minor,
            invoice.subtotal_minor - invoice.discount_minor - invoice.credits_applied_minor + invoice.tax_minor,
          );
          assert.ok(invoice.total_minor >= 0n);
          const digits = formatMajor(invoice.total_minor, currency).split('.')[1]?.length ?? 0;
          assert.equal(digits, scale[currency]);
          assert.equal(invoice.currency, currency);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rating is deterministic: the same inputs give deep-equal invoices', () => {
    const usage = { api_calls: '123456', storage_gb_hours: '42.5', analytics_seats: '7' };
    assert.deepEqual(rate(northwind.catalog, 'acme', usage), rate(northwind.catalog, 'acme', usage));
  });

  it('JPY rounds to whole yen: 99 × 21/30 = 69.3 → 69', () => {
    const invoice = rate(variants.JPY, 'initech', {});
    assert.equal(invoice.lines[0]!.amount_minor, 69n);
    assert.equal(formatMajor(invoice.lines[0]!.amount_minor, 'JPY'), '69');
  });
});
