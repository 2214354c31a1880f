import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse } from 'yaml';
import {
  catalogHash,
  detectCatalogFormat,
  indexCatalog,
  parseCatalog,
  priceVersionAt,
  type LoadedCatalog,
} from '../../src/domain/catalog.js';
import { formatProblems, type Problem } from '../../src/domain/result.js';

const NORTHWIND_TEXT = readFileSync(new URL('../../examples/northwind/catalog.yaml', import.meta.url), 'utf8');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const northwind = (): Doc => parse(NORTHWIND_TEXT, { schema: 'core' });

function load(text: string, format?: 'yaml' | 'json'): LoadedCatalog {
  const result = parseCatalog(text, format);
  assert.ok(result.ok, result.ok ? '' : formatProblems(result.problems));
  return result.value;
}

const lines = (problems: readonly Problem[]) => problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));

/** The problems of Northwind changed by `mutate`, as `path: message` lines. */
function refusedAfter(mutate: (doc: Doc) => void): string[] {
  const doc = northwind();
  mutate(doc);
  const result = parseCatalog(JSON.stringify(doc), 'json');
  assert.equal(result.ok, false, 'the changed catalog must be refused');
  return result.ok ? [] : lines(result.problems);
}

/** Objects with their keys in a random order (arrays keep theirs): the same content. */
function shuffleKeys(value: unknown, random: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, random));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, random)]));
}

describe('the Northwind reference catalog', () => {
  const { catalog, hash } = load(NORTHWIND_TEXT);

  it('loads as it is, with every section', () => {
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.equal(catalog.version, 1);
    assert.deepEqual(
      catalog.legal_entities.map((e) => [e.id, e.currency, e.invoice_number_prefix, e.rounding]),
      [
        ['nw-us', 'USD', 'NWUS-', 'half_up'],
        ['nw-de', 'EUR', 'NWDE-', 'half_up'],
      ],
    );
    assert.deepEqual(catalog.accounts['nw-de'], { receivable: '1400', cash: '1800', tax_payable: '3806', deferred_revenue: '3900' });
    assert.deepEqual(catalog.tax_rates, [
      { jurisdiction: 'US-CA', rate: '0.0725' },
      { jurisdiction: 'US-NY', rate: '0.08875' },
      { jurisdiction: 'US-OR', rate: '0' },
      { jurisdiction: 'DE', rate: '0.19' },
    ]);
    assert.deepEqual(
      catalog.products.map((p) => p.id),
      ['api', 'analytics', 'storage', 'compute', 'platform'],
    );
    assert.deepEqual(catalog.products[2]!.revenue_account, { 'nw-us': '4020', 'nw-de': '8420' });
    assert.equal(catalog.customers.length, 4);
    assert.equal(catalog.subscriptions.length, 4);
    assert.equal(catalog.discounts.length, 1);
  });

  it('fills meter defaults: group_by [] and allow_negative false; count has no value', () => {
    assert.deepEqual(catalog.meters[0], {
      id: 'api_calls',
      event_type: 'com.northwind.api.request',
      aggregation: 'count',
      group_by: ['region'],
      allow_negative: false,
    });
    assert.deepEqual(catalog.meters[1], {
      id: 'storage_gb_hours',
      event_type: 'com.northwind.storage.usage',
      aggregation: 'sum',
      value: '$.gb_hours',
      group_by: [],
      allow_negative: false,
    });
    assert.deepEqual(
      catalog.meters.map((m) => m.aggregation),
      ['count', 'sum', 'unique_count', 'max', 'latest'],
    );
  });

  it('gives the versioned growth-usd api price two versions with stable ids', () => {
    const api = catalog.plans[0]!.prices[1]!;
    assert.equal(api.id, 'growth-usd/1:api:api_calls');
    assert.equal(api.product, 'api');
    assert.equal(api.meter, 'api_calls');
    assert.deepEqual(api.versions, [
      {
        version_id: 'growth-usd/1:api:api_calls@2026-01-01',
        effective_from: '2026-01-01',
        model: 'graduated',
        tiers: [
          { up_to: '100000', unit_amount: '0' },
          { up_to: '1000000', unit_amount: '0.0004' },
          { up_to: null, unit_amount: '0.00025' },
        ],
      },
      {
        version_id: 'growth-usd/1:api:api_calls@2026-11-16',
        effective_from: '2026-11-16',
        model: 'graduated',
        tiers: [
          { up_to: '100000', unit_amount: '0' },
          { up_to: null, unit_amount: '0.00035' },
        ],
      },
    ]);
  });

  it('turns a price without versions into one version in force from the beginning', () => {
    const [platform, , storage, analytics] = catalog.plans[0]!.prices;
    assert.deepEqual(platform, {
      id: 'growth-usd/0:platform',
      product: 'platform',
      versions: [{ version_id: 'growth-usd/0:platform@initial', effective_from: null, model: 'flat', amount: '99.00' }],
    });
    assert.deepEqual(storage!.versions, [
      { version_id: 'growth-usd/2:storage:storage_gb_hours@initial', effective_from: null, model: 'per_unit', unit_amount: '0.000137' },
    ]);
    assert.deepEqual(analytics!.versions[0]!.model === 'volume' && analytics!.versions[0]!.tiers[2], {
      up_to: null,
      unit_amount: '15.00',
      flat_amount: '100.00',
    });
    assert.equal(catalog.plans[0]!.minimum_commitment, '500.00');
    assert.equal(catalog.plans[0]!.currency, 'USD');
  });

  it('keeps package and the two compute prices of scale-eur apart by meter', () => {
    const scale = catalog.plans[1]!;
    assert.equal('minimum_commitment' in scale, false);
    assert.deepEqual(
      scale.prices.map((p) => p.id),
      ['scale-eur/0:platform', 'scale-eur/1:api:api_calls', 'scale-eur/2:compute:peak_vcpu', 'scale-eur/3:compute:reserved_ips'],
    );
    assert.deepEqual(scale.prices[1]!.versions[0], {
      version_id: 'scale-eur/1:api:api_calls@initial',
      effective_from: null,
      model: 'per_unit',
      unit_amount: '0.30',
      package: { size: '1000', round: 'up' },
    });
    assert.deepEqual(scale.prices[2]!.versions[0]!.model === 'graduated' && scale.prices[2]!.versions[0]!.tiers[0], {
      up_to: '8',
      unit_amount: '0',
      flat_amount: '40.00',
    });
  });

  it('keeps customers, subscriptions, grants and discounts with dates as strings', () => {
    assert.deepEqual(catalog.customers[1], {
      id: 'globex',
      name: 'Globex LLC',
      legal_entity: 'nw-us',
      tax_jurisdiction: 'US-NY',
      erp_customer_id: 'C-10077',
      parent: 'acme',
      tenants: ['globex'],
      billing_address: { lines: ['200 Park Avenue'], city: 'New York', region: 'NY', postal_code: '10166', country: 'US' },
    });
    assert.equal('parent' in catalog.customers[0]!, false);
    assert.deepEqual(catalog.subscriptions[2], { customer: 'initech', plan: 'growth-usd', start: '2026-11-10' });
    assert.deepEqual(catalog.credit_grants, [
      { id: 'acme:2026-11-01:0', customer: 'acme', amount: '200.00', currency: 'USD', granted: '2026-11-01', expires: '2027-10-31' },
    ]);
    assert.deepEqual(catalog.discounts, [
      { customer: 'umbrella', product: 'api', percent_off: '10', from: '2026-11-01', to: '2027-04-30' },
    ]);
  });

  it('hashes the normalized catalog: catalogHash agrees, YAML comments and layout do not count', () => {
    assert.equal(catalogHash(catalog), hash);
    const stripped = NORTHWIND_TEXT.split('\n')
      .filter((line) => !line.trimStart().startsWith('#'))
      .join('\n');
    assert.equal(load(stripped).hash, hash);
  });

  it('gives JSON and YAML of the same content the same catalog and hash', () => {
    const json = JSON.stringify(northwind(), null, 2);
    assert.equal(detectCatalogFormat(`\n  ${json}`), 'json');
    const fromJson = load(json);
    assert.equal(fromJson.hash, hash);
    assert.deepEqual(fromJson.catalog, catalog);
    assert.equal(load(json, 'yaml').hash, hash, 'JSON is YAML too');
  });

  it('does not let key order change the hash (property)', () => {
    fc.assert(
      fc.property(fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })), (stream) => {
        const numbers = stream[Symbol.iterator]();
        const shuffled = shuffleKeys(northwind(), () => numbers.next().value as number);
        assert.equal(load(JSON.stringify(shuffled)).hash, hash);
      }),
      { numRuns: 25 },
    );
  });

  it('changes the hash when content changes, but not for x- annotations', () => {
    const changed = northwind();
    changed.plans[0].prices[0].amount = '99.01';
    assert.notEqual(load(JSON.stringify(changed)).hash, hash);
    const annotated = northwind();
    annotated['x-owner'] = 'billing-team';
    assert.equal(load(JSON.stringify(annotated)).hash, hash);
  });

  it('indexes the catalog for the later stages', () => {
    const index = indexCatalog(catalog);
    assert.deepEqual(
      index.metersByType.get('com.northwind.api.request')?.map((m) => m.id),
      ['api_calls'],
    );
    assert.equal(index.customerByTenant.get('acme-staging')?.id, 'acme');
    assert.equal(index.customerByTenant.get('nobody'), undefined);
    assert.equal(index.customers.get('umbrella')?.legal_entity, 'nw-de');
    assert.equal(index.legalEntities.get('nw-de')?.currency, 'EUR');
    assert.deepEqual(index.taxRates.get('US-NY'), { jurisdiction: 'US-NY', rate: '0.08875' });
    assert.equal(index.accounts.get('nw-us')?.receivable, '1200');
    assert.deepEqual(index.subscriptionsByCustomer.get('acme'), [{ customer: 'acme', plan: 'growth-usd', start: '2026-01-01' }]);
    assert.equal(index.creditGrantsByCustomer.get('acme')?.[0]?.id, 'acme:2026-11-01:0');
    assert.equal(index.discountsByCustomer.get('umbrella')?.length, 1);
    assert.equal(index.plans.get('scale-eur')?.currency, 'EUR');
    assert.equal(index.products.get('platform')?.name, 'Platform Fee');
    assert.equal(index.prices.get('scale-eur/3:compute:reserved_ips')?.plan.id, 'scale-eur');
    assert.equal(index.meters.get('peak_vcpu')?.aggregation, 'max');
  });

  it('groups meters that share an event type', () => {
    const doc = northwind();
    doc.meters.push({ id: 'api_bytes', event_type: 'com.northwind.api.request', aggregation: 'sum', value: '$.bytes' });
    const index = indexCatalog(load(JSON.stringify(doc)).catalog);
    assert.deepEqual(
      index.metersByType.get('com.northwind.api.request')?.map((m) => m.id),
      ['api_calls', 'api_bytes'],
    );
  });

  it('finds the price version in force on a date', () => {
    const api = catalog.plans[0]!.prices[1]!;
    const table: Array<[string, string | undefined]> = [
      ['2025-12-31', undefined],
      ['2026-01-01', 'growth-usd/1:api:api_calls@2026-01-01'],
      ['2026-11-15', 'growth-usd/1:api:api_calls@2026-01-01'],
      ['2026-11-16', 'growth-usd/1:api:api_calls@2026-11-16'],
      ['2030-01-01', 'growth-usd/1:api:api_calls@2026-11-16'],
    ];
    for (const [date, expected] of table) assert.equal(priceVersionAt(api, date)?.version_id, expected, date);
    assert.equal(priceVersionAt(catalog.plans[0]!.prices[0]!, '1970-01-01')?.version_id, 'growth-usd/0:platform@initial');
  });
});

describe('a small catalog', () => {
  it('needs only version, legal entities and accounts; the lists default to empty', () => {
    const text = JSON.stringify({
      version: 1,
      legal_entities: [{ id: 'e', name: 'E', country: 'JP', currency: 'JPY', invoice_number_prefix: '', rounding: 'half_even' }],
      accounts: { e: { receivable: '1', cash: '2', tax_payable: '3', deferred_revenue: '4', fx_gain: '5' } },
    });
    const { catalog } = load(text);
    assert.deepEqual(catalog, {
      version: 1,
      legal_entities: [{ id: 'e', name: 'E', country: 'JP', currency: 'JPY', invoice_number_prefix: '', rounding: 'half_even' }],
      accounts: { e: { receivable: '1', cash: '2', tax_payable: '3', deferred_revenue: '4', fx_gain: '5' } },
      tax_rates: [],
      meters: [],
      products: [],
      plans: [],
      customers: [],
      subscriptions: [],
      credit_grants: [],
      discounts: [],
    });
  });

  it('numbers credit grants per customer and grant date', () => {
    const doc = northwind();
    const grant = { customer: 'acme', amount: '1.00', currency: 'USD', granted: '2026-11-01', expires: '2026-12-31' };
    doc.credit_grants.push({ ...grant, customer: 'globex' }, grant, { ...grant, granted: '2026-11-02' });
    const ids = load(JSON.stringify(doc)).catalog.credit_grants.map((g) => g.id);
    assert.deepEqual(ids, ['acme:2026-11-01:0', 'globex:2026-11-01:0', 'acme:2026-11-01:1', 'acme:2026-11-02:0']);
  });

  it('accepts allow_negative, an end date, and a first version without effective_from', () => {
    const doc = northwind();
    doc.meters[1].allow_negative = true;
    doc.subscriptions[0].end = '2026-12-01';
    delete doc.plans[0].prices[1].versions[0].effective_from;
    const { catalog } = load(JSON.stringify(doc));
    assert.equal(catalog.meters[1]!.allow_negative, true);
    assert.equal(catalog.subscriptions[0]!.end, '2026-12-01');
    assert.equal(catalog.plans[0]!.prices[1]!.versions[0]!.version_id, 'growth-usd/1:api:api_calls@initial');
  });

  it('does not mistake inherited object keys for accounts', () => {
    const doc = northwind();
    doc.legal_entities.push({ ...doc.legal_entities[0], id: 'constructor' });
    assert.deepEqual(lines((parseCatalog(JSON.stringify(doc)) as { problems: Problem[] }).problems), [
      'accounts.constructor: is required: every legal entity needs its accounts',
    ]);
  });

  it('does not ask for revenue accounts of entities that never bill the product', () => {
    const doc = northwind();
    delete doc.products[1].revenue_account['nw-de']; // analytics is only in growth-usd, billed by nw-us
    assert.ok(parseCatalog(JSON.stringify(doc)).ok);
  });
});

describe('legal content: addresses, tax ids and payment terms', () => {
  const entity = { id: 'e', name: 'E GmbH', country: 'DE', currency: 'EUR', invoice_number_prefix: 'E-', rounding: 'half_up' };
  const accounts = { e: { receivable: '1', cash: '2', tax_payable: '3', deferred_revenue: '4' } };
  const customer = { id: 'c', name: 'C', legal_entity: 'e', tax_jurisdiction: 'DE', erp_customer_id: 'C-1', tenants: ['c'] };
  const small = (e: object, c: object) =>
    JSON.stringify({
      version: 1,
      legal_entities: [{ ...entity, ...e }],
      accounts,
      tax_rates: [{ jurisdiction: 'DE', rate: '0.19' }],
      customers: [{ ...customer, ...c }],
    });

  it('keeps the address, tax id and payment terms of an entity and a customer as given', () => {
    const address = { lines: ['Hauptstraße 1', 'Hinterhaus'], city: 'Berlin', postal_code: '10115', country: 'DE' };
    const { catalog } = load(
      small(
        { address, tax_id: 'DE123456789', payment_terms_days: 14 },
        { billing_address: { ...address, region: 'BE' }, tax_id: 'DE987654321', payment_terms_days: 0 },
      ),
    );
    assert.deepEqual(catalog.legal_entities[0], { ...entity, address, tax_id: 'DE123456789', payment_terms_days: 14 });
    assert.deepEqual(catalog.customers[0], {
      ...customer,
      billing_address: { lines: ['Hauptstraße 1', 'Hinterhaus'], city: 'Berlin', region: 'BE', postal_code: '10115', country: 'DE' },
      tax_id: 'DE987654321',
      payment_terms_days: 0,
    });
  });

  it('leaves them out when absent, so an older catalog keeps loading with the same content and hash', () => {
    const { catalog, hash } = load(small({}, {}));
    assert.deepEqual(catalog.legal_entities[0], entity);
    assert.deepEqual(catalog.customers[0], customer);
    assert.equal(load(small({}, {}).replace('"tenants"', '"tenants"')).hash, hash);
    assert.notEqual(load(small({ tax_id: 'DE1' }, {})).hash, hash);
  });

  it('refuses a malformed address, tax id or payment terms, naming each field', () => {
    const refused = (e: object, c: object) => {
      const result = parseCatalog(small(e, c), 'json');
      assert.equal(result.ok, false);
      return result.ok ? [] : lines(result.problems);
    };
    assert.deepEqual(
      refused({ address: { lines: [], city: 'Berlin', country: 'Germany' }, payment_terms_days: 400 }, { payment_terms_days: -1 }),
      [
        'legal_entities[0].address.lines: must not be empty',
        'legal_entities[0].address.country: must be an ISO 3166-1 alpha-2 country code such as "US", got "Germany"',
        'legal_entities[0].payment_terms_days: must be at most 365, got the number 400',
        'customers[0].payment_terms_days: must be at least 0, got the number -1',
      ],
    );
    assert.deepEqual(
      refused(
        { tax_id: '' },
        { billing_address: { lines: ['a', 'b', 'c', 'd', 'e'], city: 'X', country: 'DE', street: 'y' }, payment_terms_days: 30.5 },
      ),
      [
        'legal_entities[0].tax_id: must not be empty',
        'customers[0].billing_address.street: is not a known field',
        'customers[0].billing_address.lines: must have at most 4 items',
        'customers[0].payment_terms_days: must be an integer, got the number 30.5',
      ],
    );
    assert.deepEqual(refused({}, { payment_terms_days: '30' }), ['customers[0].payment_terms_days: must be an integer, got "30"']);
  });
});

describe('a customer billed in another currency (#18)', () => {
  const usCustomerOfDe = (doc: Doc, accounts: Record<string, string> = {}) => {
    // umbrella is billed by nw-de (EUR books); bill it in USD on the USD plan.
    const umbrella = doc.customers.find((c: Doc) => c.id === 'umbrella');
    umbrella.currency = 'USD';
    for (const s of doc.subscriptions) if (s.customer === 'umbrella') s.plan = 'growth-usd';
    doc.credit_grants = (doc.credit_grants ?? []).filter((g: Doc) => g.customer !== 'umbrella');
    doc.discounts = (doc.discounts ?? []).filter((d: Doc) => d.customer !== 'umbrella');
    Object.assign(doc.accounts['nw-de'], accounts);
    return doc;
  };

  it("needs the entity's realized and unrealized exchange accounts, named once each", () => {
    assert.deepEqual(
      refusedAfter((doc) => usCustomerOfDe(doc)),
      [
        'accounts.nw-de.fx_gain: is required: legal entity nw-de keeps its books in EUR and bills customer umbrella in USD (customers[3])',
        'accounts.nw-de.fx_loss: is required: legal entity nw-de keeps its books in EUR and bills customer umbrella in USD (customers[3])',
        'accounts.nw-de.fx_unrealized: is required: legal entity nw-de keeps its books in EUR and bills customer umbrella in USD (customers[3])',
      ],
    );
  });

  it('keeps the currency on the customer; the plan and grants must be in it', () => {
    const doc = usCustomerOfDe(northwind(), { fx_gain: '4840', fx_loss: '6880', fx_unrealized: '4845' });
    const { catalog } = load(JSON.stringify(doc), 'json');
    assert.equal(catalog.customers.find((c) => c.id === 'umbrella')?.currency, 'USD');
    assert.equal(catalog.accounts['nw-de']?.fx_gain, '4840');
    const wrongPlan = usCustomerOfDe(northwind(), { fx_gain: '4840', fx_loss: '6880', fx_unrealized: '4845' });
    for (const s of wrongPlan.subscriptions) if (s.customer === 'umbrella') s.plan = 'scale-eur';
    const result = parseCatalog(JSON.stringify(wrongPlan), 'json');
    assert.equal(result.ok, false);
    assert.match(
      result.ok ? '' : lines(result.problems).join('\n'),
      /plan scale-eur is priced in EUR, but customer umbrella is billed by legal entity nw-de in USD \(the customer's currency\)/,
    );
  });

  it('refuses a currency that is not ISO 4217, naming the field', () => {
    const problems = refusedAfter((doc) => {
      doc.customers[0].currency = 'usd';
    });
    assert.ok(
      problems.some((p) => p.startsWith('customers[0].currency: ')),
      problems.join('\n'),
    );
  });

  it('leaves an absent currency out, so the reference catalog keeps its hash', () => {
    const { catalog } = load(NORTHWIND_TEXT);
    assert.ok(catalog.customers.every((c) => !('currency' in c)));
  });
});

describe('credit grant kinds (#18)', () => {
  it('keeps kind when given and leaves it out when absent; a promotional grant needs the promotional_credits account', () => {
    const doc = northwind();
    doc.credit_grants.push({
      customer: 'globex',
      amount: '50.00',
      currency: 'USD',
      granted: '2026-10-01',
      expires: '2027-01-31',
      kind: 'promotional',
    });
    assert.deepEqual(
      (() => {
        const r = parseCatalog(JSON.stringify(doc), 'json');
        return r.ok ? [] : lines(r.problems);
      })(),
      ['credit_grants[1].kind: needs accounts.nw-us.promotional_credits: a promotional grant is drawn as contra-revenue'],
    );
    doc.accounts['nw-us'].promotional_credits = '4950';
    const { catalog } = load(JSON.stringify(doc), 'json');
    assert.equal(catalog.credit_grants[1]?.kind, 'promotional');
    assert.ok(!('kind' in catalog.credit_grants[0]!));
    const bad = northwind();
    bad.credit_grants[0].kind = 'free';
    assert.equal(parseCatalog(JSON.stringify(bad), 'json').ok, false);
  });
});

describe('a price billed yearly (#18)', () => {
  it('keeps interval year on a flat price, leaves it out when absent, and refuses it on a metered price', () => {
    const doc = northwind();
    doc.plans[0].prices[0].interval = 'year';
    const { catalog } = load(JSON.stringify(doc), 'json');
    assert.equal(catalog.plans[0]!.prices[0]!.interval, 'year');
    assert.ok(!('interval' in catalog.plans[0]!.prices[1]!));
    assert.deepEqual(
      refusedAfter((d) => {
        d.plans[0].prices[1].interval = 'year';
      }),
      ['plans[0].prices[1].interval: year is for flat prices only: usage is billed for the month it is used in'],
    );
  });
});

describe('an invalid catalog is refused with every problem by path', () => {
  const table: Array<[string, (doc: Doc) => void, string[]]> = [
    ['version 2', (d) => (d.version = 2), ['version: must be 1, got the number 2']],
    ['a number in a money field', (d) => (d.tax_rates[3].rate = 0.19), ['tax_rates[3].rate: must be a decimal string such as "0.30"']],
    [
      'a number as minimum commitment',
      (d) => (d.plans[0].minimum_commitment = 500),
      ['plans[0].minimum_commitment: must be a decimal string such as "0.30"'],
    ],
    [
      'a negative decimal',
      (d) => (d.plans[0].minimum_commitment = '-5'),
      ['plans[0].minimum_commitment: must be a plain non-negative decimal such as "0.30" (no sign, exponent or leading zeros), got "-5"'],
    ],
    [
      'an exponent',
      (d) => (d.plans[1].prices[1].unit_amount = '3e-1'),
      [
        'plans[1].prices[1].unit_amount: must be a plain non-negative decimal such as "0.30" (no sign, exponent or leading zeros), got "3e-1"',
      ],
    ],
    [
      'a unit amount with 13 places',
      (d) => (d.plans[0].prices[2].unit_amount = '0.0000000000001'),
      ['plans[0].prices[2].unit_amount: must have at most 12 decimal places'],
    ],
    [
      'a unit amount with 12 places is fine, a flat fee with 3 is not',
      (d) => ((d.plans[0].prices[2].unit_amount = '0.000000000001'), (d.plans[0].prices[0].amount = '99.001')),
      ['plans[0].prices[0].amount: must have at most 2 decimal places (the minor unit of USD)'],
    ],
    [
      'a tier flat amount finer than the currency',
      (d) => (d.plans[1].prices[2].tiers[0].flat_amount = '40.005'),
      ['plans[1].prices[2].tiers[0].flat_amount: must have at most 2 decimal places (the minor unit of EUR)'],
    ],
    [
      'too many digits',
      (d) => (d.plans[0].prices[2].unit_amount = '1'.repeat(41)),
      ['plans[0].prices[2].unit_amount: must have at most 40 digits'],
    ],
    [
      'an unknown currency',
      (d) => (d.legal_entities[0].currency = 'XYZ'),
      ['legal_entities[0].currency: must be an ISO 4217 currency code, got "XYZ"'],
    ],
    [
      'a lower-case currency',
      (d) => (d.plans[0].currency = 'usd'),
      ['plans[0].currency: must be an ISO 4217 currency code such as "USD", got "usd"'],
    ],
    [
      'an unknown rounding',
      (d) => (d.legal_entities[1].rounding = 'half-up'),
      ['legal_entities[1].rounding: must be one of half_up, half_even, got "half-up" (did you mean "half_up"?)'],
    ],
    [
      'a misspelled field',
      (d) => ((d.legal_entities[0].roundng = 'half_up'), delete d.legal_entities[0].rounding),
      ['legal_entities[0].rounding: is required', 'legal_entities[0].roundng: is not a known field (did you mean "rounding"?)'],
    ],
    ['an unknown top-level key', (d) => (d.discount = []), ['discount: is not a known field (did you mean "discounts"?)']],
    ['a missing required field', (d) => delete d.customers[0].erp_customer_id, ['customers[0].erp_customer_id: is required']],
    ['a wrong type', (d) => (d.customers[0].tenants = 'acme-prod'), ['customers[0].tenants: must be a list, got "acme-prod"']],
    ['an unquoted account code', (d) => (d.accounts['nw-us'].cash = 1000), ['accounts.nw-us.cash: must be a string, got the number 1000']],
    [
      'a duplicate legal entity',
      (d) => d.legal_entities.push({ ...d.legal_entities[0] }),
      ['legal_entities[2].id: "nw-us" is already used by legal_entities[0]'],
    ],
    ['a duplicate meter', (d) => d.meters.push({ ...d.meters[4] }), ['meters[5].id: "reserved_ips" is already used by meters[4]']],
    ['a duplicate product', (d) => d.products.push({ ...d.products[0] }), ['products[5].id: "api" is already used by products[0]']],
    ['a duplicate plan', (d) => d.plans.push({ ...d.plans[1] }), ['plans[2].id: "scale-eur" is already used by plans[1]']],
    [
      'a duplicate customer',
      (d) => d.customers.push({ ...d.customers[3], tenants: [] }),
      ['customers[4].id: "umbrella" is already used by customers[3]'],
    ],
    [
      'a duplicate jurisdiction',
      (d) => d.tax_rates.push({ jurisdiction: 'DE', rate: '0.07' }),
      ['tax_rates[4].jurisdiction: "DE" is already used by tax_rates[3]'],
    ],
    [
      'a tenant of two customers',
      (d) => (d.customers[1].tenants = ['acme-prod']),
      ['customers[1].tenants[0]: "acme-prod" is already a tenant of customer acme'],
    ],
    [
      'a tenant twice',
      (d) => d.customers[3].tenants.push('umbrella'),
      ['customers[3].tenants[1]: "umbrella" is already a tenant of customer umbrella'],
    ],
    [
      'an unknown legal entity',
      (d) => (d.customers[0].legal_entity = 'nw-uk'),
      ['customers[0].legal_entity: "nw-uk" is not a legal entity in this catalog (did you mean "nw-us"?)'],
    ],
    [
      'an unknown jurisdiction',
      (d) => (d.customers[0].tax_jurisdiction = 'US-TX'),
      ['customers[0].tax_jurisdiction: "US-TX" is not a tax rate jurisdiction in this catalog'],
    ],
    [
      'an unknown parent',
      (d) => (d.customers[1].parent = 'acme2'),
      ['customers[1].parent: "acme2" is not a customer in this catalog (did you mean "acme"?)'],
    ],
    ['a customer its own parent', (d) => (d.customers[0].parent = 'acme'), ['customers[0].parent: must not be the customer itself']],
    [
      'a cycle of parents',
      (d) => (d.customers[0].parent = 'globex'),
      [
        'customers[0].parent: makes a cycle of parents: acme -> globex -> acme',
        'customers[1].parent: makes a cycle of parents: globex -> acme -> globex',
      ],
    ],
    ['an unknown plan', (d) => (d.subscriptions[0].plan = 'growth'), ['subscriptions[0].plan: "growth" is not a plan in this catalog']],
    [
      'an unknown subscriber',
      (d) => (d.subscriptions[0].customer = 'acm'),
      ['subscriptions[0].customer: "acm" is not a customer in this catalog (did you mean "acme"?)'],
    ],
    [
      'an unknown price product',
      (d) => (d.plans[0].prices[3].product = 'analytic'),
      ['plans[0].prices[3].product: "analytic" is not a product in this catalog (did you mean "analytics"?)'],
    ],
    [
      'an unknown price meter',
      (d) => (d.plans[0].prices[3].meter = 'seats'),
      ['plans[0].prices[3].meter: "seats" is not a meter in this catalog'],
    ],
    [
      'an unknown discount product',
      (d) => (d.discounts[0].product = 'apis'),
      ['discounts[0].product: "apis" is not a product in this catalog (did you mean "api"?)'],
    ],
    [
      'an unknown discount customer',
      (d) => (d.discounts[0].customer = 'umbrela'),
      ['discounts[0].customer: "umbrela" is not a customer in this catalog (did you mean "umbrella"?)'],
    ],
    [
      'an unknown grant customer',
      (d) => (d.credit_grants[0].customer = 'ACME Corp'),
      ['credit_grants[0].customer: must be an id: letters, digits, ".", "_" or "-", starting with a letter or digit, got "ACME Corp"'],
    ],
    [
      'a legal entity without accounts',
      (d) => delete d.accounts['nw-de'],
      ['accounts.nw-de: is required: every legal entity needs its accounts'],
    ],
    ['an account role missing', (d) => delete d.accounts['nw-us'].deferred_revenue, ['accounts.nw-us.deferred_revenue: is required']],
    [
      'accounts of an unknown entity',
      (d) => (d.accounts['nw-fr'] = { ...d.accounts['nw-de'] }),
      ['accounts.nw-fr: "nw-fr" is not a legal entity in this catalog'],
    ],
    [
      'a revenue account of an unknown entity',
      (d) => (d.products[4].revenue_account['nw-ux'] = '1'),
      ['products[4].revenue_account.nw-ux: "nw-ux" is not a legal entity in this catalog (did you mean "nw-us"?)'],
    ],
    [
      'a product without the revenue account of an entity billing it',
      (d) => delete d.products[0].revenue_account['nw-de'],
      ['products[0].revenue_account.nw-de: is required: legal entity nw-de bills product api through subscriptions[3] (plan scale-eur)'],
    ],
    [
      'a plan in another currency than the entity billing the customer',
      (d) => (d.subscriptions[3].plan = 'growth-usd'),
      ['subscriptions[3].plan: plan growth-usd is priced in USD, but customer umbrella is billed by legal entity nw-de in EUR'],
    ],
    [
      'a credit grant in another currency',
      (d) => (d.credit_grants[0].currency = 'EUR'),
      ['credit_grants[0].currency: must be USD, the currency of legal entity nw-us that bills customer acme'],
    ],
    ['a zero credit grant', (d) => (d.credit_grants[0].amount = '0'), ['credit_grants[0].amount: must be greater than 0']],
    [
      'tiers not ascending',
      (d) => (d.plans[0].prices[1].versions[0].tiers[1].up_to = '10'),
      ['plans[0].prices[1].versions[0].tiers[1].up_to: must be greater than the tier before'],
    ],
    [
      'tiers equal',
      (d) => (d.plans[0].prices[3].tiers[1].up_to = '10'),
      ['plans[0].prices[3].tiers[1].up_to: must be greater than the tier before'],
    ],
    [
      'a bounded last tier',
      (d) => (d.plans[0].prices[3].tiers[2].up_to = '100'),
      ['plans[0].prices[3].tiers[2].up_to: must be null on the last tier'],
    ],
    [
      'an unbounded middle tier',
      (d) => (d.plans[0].prices[3].tiers[1].up_to = null),
      ['plans[0].prices[3].tiers[1].up_to: may be null on the last tier only'],
    ],
    [
      'a first tier up to 0',
      (d) => (d.plans[1].prices[2].tiers[0].up_to = '0'),
      ['plans[1].prices[2].tiers[0].up_to: must be greater than 0'],
    ],
    ['no tiers', (d) => (d.plans[1].prices[2].tiers = []), ['plans[1].prices[2].tiers: must not be empty']],
    [
      'tier up_to as a number',
      (d) => (d.plans[1].prices[2].tiers[0].up_to = 8),
      ['plans[1].prices[2].tiers[0].up_to: must be a decimal string such as "1000", or null on the last tier'],
    ],
    [
      'versions not ascending',
      (d) => (d.plans[0].prices[1].versions[1].effective_from = '2026-01-01'),
      ['plans[0].prices[1].versions[1].effective_from: must be later than the version before (2026-01-01)'],
    ],
    [
      'a later version without a date',
      (d) => delete d.plans[0].prices[1].versions[1].effective_from,
      ['plans[0].prices[1].versions[1].effective_from: is required on every version after the first'],
    ],
    [
      'a model next to versions',
      (d) => (d.plans[0].prices[1].model = 'graduated'),
      ['plans[0].prices[1].model: is not allowed next to versions; give it in each version'],
    ],
    ['no model', (d) => delete d.plans[0].prices[2].model, ['plans[0].prices[2].model: is required unless the price has versions']],
    [
      'an unknown model',
      (d) => (d.plans[0].prices[2].model = 'tiered'),
      ['plans[0].prices[2].model: must be one of flat, per_unit, graduated, volume, got "tiered"'],
    ],
    [
      'a field another model uses',
      (d) => (d.plans[0].prices[0].unit_amount = '1'),
      ['plans[0].prices[0].unit_amount: is not used by model flat'],
    ],
    ['a model without its field', (d) => delete d.plans[0].prices[0].amount, ['plans[0].prices[0].amount: is required for model flat']],
    [
      'a metered price without a meter',
      (d) => delete d.plans[0].prices[2].meter,
      ['plans[0].prices[2].meter: is required for model per_unit'],
    ],
    [
      'a flat price with a meter',
      (d) => (d.plans[0].prices[0].meter = 'api_calls'),
      ['plans[0].prices[0].meter: is not allowed with model flat'],
    ],
    ['a package of size 0', (d) => (d.plans[1].prices[1].package.size = '0'), ['plans[1].prices[1].package.size: must be greater than 0']],
    [
      'a package rounding sideways',
      (d) => (d.plans[1].prices[1].package.round = 'nearest'),
      ['plans[1].prices[1].package.round: must be one of up, down, got "nearest"'],
    ],
    [
      'the same product and meter twice in a plan',
      (d) => d.plans[1].prices.push({ ...d.plans[1].prices[3] }),
      ['plans[1].prices[4]: prices product compute with meter reserved_ips again (see plans[1].prices[3])'],
    ],
    ['a plan without prices', (d) => (d.plans[1].prices = []), ['plans[1].prices: must not be empty']],
    [
      'a date that is not a day',
      (d) => (d.subscriptions[0].start = '2026-02-30'),
      ['subscriptions[0].start: must be a calendar date, got "2026-02-30"'],
    ],
    [
      'a date in another format',
      (d) => (d.subscriptions[0].start = '2026/01/01'),
      ['subscriptions[0].start: must be a date YYYY-MM-DD, got "2026/01/01"'],
    ],
    [
      'a subscription ending when it starts',
      (d) => (d.subscriptions[0].end = '2026-01-01'),
      ['subscriptions[0].end: must be after start (2026-01-01)'],
    ],
    [
      'the same plan twice at once',
      (d) => d.subscriptions.push({ customer: 'acme', plan: 'growth-usd', start: '2025-06-01', end: '2026-01-02' }),
      ['subscriptions[4]: overlaps subscriptions[0]: customer acme would have plan growth-usd twice at once'],
    ],
    ['a percent off of 0', (d) => (d.discounts[0].percent_off = '0'), ['discounts[0].percent_off: must be greater than 0 and at most 100']],
    [
      'a percent off above 100',
      (d) => (d.discounts[0].percent_off = '100.5'),
      ['discounts[0].percent_off: must be greater than 0 and at most 100'],
    ],
    [
      'a discount ending before it starts',
      (d) => (d.discounts[0].to = '2026-10-31'),
      ['discounts[0].to: must not be before from (2026-11-01)'],
    ],
    [
      'two discounts at once',
      (d) => d.discounts.push({ ...d.discounts[0], from: '2027-04-30', to: '2027-05-31' }),
      ['discounts[1]: overlaps discounts[0]: customer umbrella would have two discounts on product api at once'],
    ],
    [
      'a grant expiring before it is granted',
      (d) => (d.credit_grants[0].expires = '2026-10-31'),
      ['credit_grants[0].expires: must not be before granted (2026-11-01)'],
    ],
    [
      'a tax rate above 1',
      (d) => (d.tax_rates[0].rate = '7.25'),
      ['tax_rates[0].rate: must be a fraction from 0 to 1 ("0.0725" is 7.25%)'],
    ],
    ['a sum meter without value', (d) => delete d.meters[1].value, ['meters[1].value: is required for aggregation sum']],
    ['a count meter with a value', (d) => (d.meters[0].value = '$.n'), ['meters[0].value: is not used by aggregation count']],
    [
      'a value that is not a simple JSONPath',
      (d) => (d.meters[1].value = 'gb_hours'),
      [`meters[1].value: must be a simple JSONPath into data such as "$.gb_hours" or "$.a['b-c']", got "gb_hours"`],
    ],
    [
      'an unknown aggregation',
      (d) => (d.meters[1].aggregation = 'avg'),
      ['meters[1].aggregation: must be one of count, sum, max, unique_count, latest, got "avg"'],
    ],
    [
      'a dimension twice',
      (d) => d.meters[0].group_by.push('region'),
      ['meters[0].group_by[1]: repeats "region", listed at index 0 already'],
    ],
    ['allow_negative as a string', (d) => (d.meters[1].allow_negative = 'yes'), ['meters[1].allow_negative: must be a boolean, got "yes"']],
  ];

  for (const [name, mutate, expected] of table) {
    it(name, () => assert.deepEqual(refusedAfter(mutate), expected));
  }

  it('accepts bracketed JSONPath keys', () => {
    const doc = northwind();
    doc.meters[1].value = "$.usage['gb-hours'].total";
    assert.ok(parseCatalog(JSON.stringify(doc)).ok);
  });

  it('lists many problems at once, ordered by section and item', () => {
    const problems = refusedAfter((d) => {
      d.discounts[0].percent_off = 10;
      d.version = 3;
      d.customers[2].tax_jurisdiction = 'US-WA';
      d.tax_rates[3].rate = 0.19;
      d.legal_entities[1].rounding_typo = 'x';
      d.plans[0].prices[1].versions[0].tiers[1].up_to = '10';
      d.plans[0].prices[2].unit_amount = '0.0000000000001';
      d.subscriptions[1].start = '2026-13-01';
      d.meters[2].aggregation = 'distinct';
      delete d.accounts['nw-us'].cash;
    });
    assert.deepEqual(problems, [
      'version: must be 1, got the number 3',
      'legal_entities[1].rounding_typo: is not a known field',
      'accounts.nw-us.cash: is required',
      'tax_rates[3].rate: must be a decimal string such as "0.30"',
      'meters[2].aggregation: must be one of count, sum, max, unique_count, latest, got "distinct"',
      'plans[0].prices[1].versions[0].tiers[1].up_to: must be greater than the tier before',
      'plans[0].prices[2].unit_amount: must have at most 12 decimal places',
      'customers[2].tax_jurisdiction: "US-WA" is not a tax rate jurisdiction in this catalog (did you mean "US-CA"?)',
      'subscriptions[1].start: must be a calendar date, got "2026-13-01"',
      'discounts[0].percent_off: must be a decimal string such as "0.30"',
    ]);
  });

  it('lists the problems of any combination of mistakes in different sections (property)', () => {
    const section = (i: number) => /^[a-z_]+/.exec(table[i]![2][0]!)![0];
    // Mistakes that switch a check of another section off: an unknown currency or entity leaves nothing to compare with.
    const masks: Array<[string, string]> = [
      ['an unknown currency', 'a credit grant in another currency'],
      ['an unknown legal entity', 'a credit grant in another currency'],
      ['a lower-case currency', 'a plan in another currency than the entity billing the customer'],
      ['a plan without prices', 'a product without the revenue account of an entity billing it'],
      ['a plan in another currency than the entity billing the customer', 'a product without the revenue account of an entity billing it'],
    ];
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: table.length - 1 }), { selector: section, minLength: 2, maxLength: 7 }),
        (chosen) => {
          const names = new Set(chosen.map((i) => table[i]![0]));
          fc.pre(!masks.some(([a, b]) => names.has(a) && names.has(b)));
          const problems = refusedAfter((doc) => chosen.forEach((i) => table[i]![1](doc)));
          const expected = chosen.flatMap((i) => table[i]![2]);
          for (const line of expected) assert.ok(problems.includes(line), `missing ${line}\nin\n${problems.join('\n')}`);
          assert.equal(problems.length, expected.length, problems.join('\n'));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('docs/catalog.md', () => {
  const markdown = readFileSync(new URL('../../docs/catalog.md', import.meta.url), 'utf8');
  const example = /```yaml\n([\s\S]*?)```/.exec(markdown)![1]!;

  it('has an example that loads', () => {
    load(example);
  });

  it('shows the problems its broken example really has', () => {
    const shown = /```\n(legal_entities[\s\S]*?)```/.exec(markdown)![1]!.trim().split('\n');
    const broken = example
      .replace('rate: "0.0725"', 'rate: 0.0725')
      .replace('rounding: half_up', 'roundng: half_up')
      .replace('effective_from: 2026-11-16', 'effective_from: 2025-12-01');
    const result = parseCatalog(broken);
    assert.deepEqual(result.ok ? [] : lines(result.problems), shown);
  });
});

describe('text that is not a catalog', () => {
  const refused = (text: string, format?: 'yaml' | 'json') => {
    const result = parseCatalog(text, format);
    assert.equal(result.ok, false);
    return result.ok ? [] : result.problems;
  };

  it('reports YAML syntax errors with their line', () => {
    const [first] = refused('version: 1\nlegal_entities: [\n');
    assert.equal(first?.code, 'yaml_syntax');
    assert.match(first!.message, /^YAML: .*line \d+/);
  });

  it('refuses duplicate YAML keys', () => {
    const problems = refused(NORTHWIND_TEXT.replace('version: 1\n', 'version: 1\nversion: 1\n'));
    assert.deepEqual(
      problems.map((p) => [p.path, p.code]),
      [['', 'yaml_syntax']],
    );
    assert.match(problems[0]!.message, /unique/);
  });

  it('refuses unquoted YAML numbers in money fields, naming the field', () => {
    const problems = refused(NORTHWIND_TEXT.replace('percent_off: "10"', 'percent_off: 10').replace('amount: "99.00"', 'amount: 99.00'));
    assert.deepEqual(lines(problems), [
      'plans[0].prices[0].amount: must be a decimal string such as "0.30"',
      'discounts[0].percent_off: must be a decimal string such as "0.30"',
    ]);
  });

  it('reports JSON syntax errors', () => {
    const problems = refused('{ "version": 1, }');
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, 'json_syntax');
    assert.match(problems[0]!.message, /^JSON: /);
  });

  it('refuses a document that is not a mapping', () => {
    assert.deepEqual(lines(refused('- a\n- b\n')), ['must be an object, got an array']);
    assert.deepEqual(lines(refused('')), ['must be an object, got null']);
  });

  it('refuses a text above the size limit before parsing it', () => {
    const [problem] = refused(`${' '.repeat(8 * 1024 * 1024)}{}`);
    assert.equal(problem?.code, 'too_large');
  });
});

describe('effective-dated tax rates', () => {
  const versions = (doc: Doc, list: unknown[]) => {
    doc.tax_rates[0] = { jurisdiction: 'US-CA', versions: list };
  };

  it('normalizes versions with an explicit effective_from and keeps the single-rate form (and its hash) as it was', () => {
    const doc = northwind();
    versions(doc, [{ rate: '0.0725' }, { effective_from: '2026-12-01', rate: '0.08' }]);
    const loaded = load(JSON.stringify(doc), 'json');
    assert.deepEqual(loaded.catalog.tax_rates[0], {
      jurisdiction: 'US-CA',
      versions: [
        { effective_from: null, rate: '0.0725' },
        { effective_from: '2026-12-01', rate: '0.08' },
      ],
    });
    assert.deepEqual(load(NORTHWIND_TEXT).catalog.tax_rates[1], { jurisdiction: 'US-NY', rate: '0.08875' });
    assert.notEqual(loaded.hash, load(NORTHWIND_TEXT).hash);
  });

  // [what, versions (or a whole tax rate), the problems]
  const table: Array<[string, (doc: Doc) => void, string[]]> = [
    [
      'a repeated effective_from',
      (doc) =>
        versions(doc, [
          { effective_from: '2026-01-01', rate: '0.07' },
          { effective_from: '2026-01-01', rate: '0.08' },
        ]),
      ['tax_rates[0].versions[1].effective_from: repeats 2026-01-01: two rates would be in force from one date'],
    ],
    [
      'versions out of order',
      (doc) =>
        versions(doc, [
          { effective_from: '2026-12-01', rate: '0.08' },
          { effective_from: '2026-01-01', rate: '0.07' },
        ]),
      ['tax_rates[0].versions[1].effective_from: must be later than the version before (2026-12-01)'],
    ],
    [
      'a later version without effective_from',
      (doc) => versions(doc, [{ rate: '0.07' }, { rate: '0.08' }]),
      ['tax_rates[0].versions[1].effective_from: is required on every version after the first'],
    ],
    [
      'a rate as a float',
      (doc) => versions(doc, [{ rate: '0.07' }, { effective_from: '2026-12-01', rate: 0.08 }]),
      ['tax_rates[0].versions[1].rate: must be a decimal string such as "0.30"'],
    ],
    [
      'a rate above 1',
      (doc) => versions(doc, [{ rate: '0.07' }, { effective_from: '2026-12-01', rate: '8' }]),
      ['tax_rates[0].versions[1].rate: must be a fraction from 0 to 1 ("0.0725" is 7.25%)'],
    ],
    [
      'not a calendar date',
      (doc) => versions(doc, [{ rate: '0.07' }, { effective_from: '2026-02-30', rate: '0.08' }]),
      ['tax_rates[0].versions[1].effective_from: must be a calendar date, got "2026-02-30"'],
    ],
    [
      'rate next to versions',
      (doc) => (doc.tax_rates[0] = { jurisdiction: 'US-CA', rate: '0.0725', versions: [{ rate: '0.0725' }] }),
      ['tax_rates[0].rate: is not allowed next to versions; give it in each version'],
    ],
    [
      'neither rate nor versions',
      (doc) => (doc.tax_rates[0] = { jurisdiction: 'US-CA' }),
      ['tax_rates[0].rate: is required unless the tax rate has versions'],
    ],
    ['no versions at all', (doc) => versions(doc, []), ['tax_rates[0].versions: must not be empty']],
    [
      'an unknown field in a version',
      (doc) => versions(doc, [{ rate: '0.07', effective_to: '2026-12-01' }]),
      ['tax_rates[0].versions[0].effective_to: is not a known field (did you mean "effective_from"?)'],
    ],
  ];
  for (const [what, mutate, problems] of table) {
    it(`refuses ${what}, naming the field`, () => assert.deepEqual(refusedAfter(mutate), problems));
  }
});
