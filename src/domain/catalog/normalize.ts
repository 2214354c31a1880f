// Step 3 of loading a catalog: the validated document in the canonical shape of model.ts, with defaults
// filled in and stable ids derived. Runs only on a document that passed structure.ts and semantics.ts.
import type {
  AccountMap,
  Catalog,
  CreditGrant,
  Customer,
  Discount,
  LegalEntity,
  Meter,
  Plan,
  Price,
  PriceModel,
  PostalAddress,
  PriceVersion,
  Product,
  Subscription,
  TaxRate,
  TaxRateVersion,
  Tier,
} from '../model.js';

// The document's shape once validated (schema/catalog.schema.json); optional fields may be absent.
interface RawTier {
  up_to: string | null;
  unit_amount: string;
  flat_amount?: string;
}
interface RawModel {
  model: PriceModel['model'];
  amount?: string;
  unit_amount?: string;
  package?: { size: string; round: 'up' | 'down' };
  tiers?: RawTier[];
}
interface RawVersion extends RawModel {
  effective_from?: string | null;
}
interface RawPrice extends Partial<RawModel> {
  product: string;
  meter?: string;
  versions?: RawVersion[];
  interval?: 'month' | 'year';
}
interface RawPlan {
  id: string;
  currency: string;
  minimum_commitment?: string;
  prices: RawPrice[];
}
interface RawMeter extends Omit<Meter, 'group_by' | 'allow_negative'> {
  group_by?: string[];
  allow_negative?: boolean;
}
interface RawTaxRate {
  jurisdiction: string;
  rate?: string;
  versions?: Array<{ effective_from?: string | null; rate: string }>;
}
interface RawCatalog {
  version: number;
  legal_entities: LegalEntity[];
  accounts: Record<string, AccountMap>;
  tax_rates?: RawTaxRate[];
  meters?: RawMeter[];
  products?: Product[];
  plans?: RawPlan[];
  customers?: Customer[];
  subscriptions?: Subscription[];
  credit_grants?: Array<Omit<CreditGrant, 'id'>>;
  discounts?: Discount[];
}

/** `${plan}/${index}:${product}` plus `:${meter}` when metered: stable while the plan's price list keeps its order. */
export const priceId = (plan: string, index: number, product: string, meter?: string): string =>
  `${plan}/${index}:${product}${meter === undefined ? '' : `:${meter}`}`;

/** `${price}@${effective_from}`, or `@initial` for a version in force from the beginning. */
export const priceVersionId = (price: string, effectiveFrom: string | null): string => `${price}@${effectiveFrom ?? 'initial'}`;

/** `${customer}:${granted}:${n}`, n counting the customer's grants of that date in file order from 0. */
export const creditGrantId = (customer: string, granted: string, ordinal: number): string => `${customer}:${granted}:${ordinal}`;

// Legal content: present in the normalized catalog only when the file gives it, so a catalog without it keeps its hash.
function address(raw: PostalAddress): PostalAddress {
  return {
    lines: [...raw.lines],
    city: raw.city,
    ...(raw.region === undefined ? {} : { region: raw.region }),
    ...(raw.postal_code === undefined ? {} : { postal_code: raw.postal_code }),
    country: raw.country,
  };
}

function legal(raw: { tax_id?: string; payment_terms_days?: number }) {
  return {
    ...(raw.tax_id === undefined ? {} : { tax_id: raw.tax_id }),
    ...(raw.payment_terms_days === undefined ? {} : { payment_terms_days: raw.payment_terms_days }),
  };
}

function tier(raw: RawTier): Tier {
  return { up_to: raw.up_to, unit_amount: raw.unit_amount, ...(raw.flat_amount === undefined ? {} : { flat_amount: raw.flat_amount }) };
}

function priceModel(raw: RawModel): PriceModel {
  switch (raw.model) {
    case 'flat':
      return { model: 'flat', amount: raw.amount! };
    case 'per_unit':
      return {
        model: 'per_unit',
        unit_amount: raw.unit_amount!,
        ...(raw.package === undefined ? {} : { package: { size: raw.package.size, round: raw.package.round } }),
      };
    case 'graduated':
    case 'volume':
      return { model: raw.model, tiers: raw.tiers!.map(tier) };
  }
}

function price(planId: string, raw: RawPrice, index: number): Price {
  const id = priceId(planId, index, raw.product, raw.meter);
  const sources: RawVersion[] = raw.versions ?? [{ ...(raw as RawModel), effective_from: null }];
  const versions: PriceVersion[] = sources.map((version) => {
    const effectiveFrom = version.effective_from ?? null;
    return { version_id: priceVersionId(id, effectiveFrom), effective_from: effectiveFrom, ...priceModel(version) };
  });
  return {
    id,
    product: raw.product,
    ...(raw.meter === undefined ? {} : { meter: raw.meter }),
    versions,
    ...(raw.interval === 'year' ? { interval: 'year' as const } : {}),
  };
}

/** The single-rate form stays as it is (its hash unchanged); versions get an explicit effective_from (null on a first without one). */
function taxRate(raw: RawTaxRate): TaxRate {
  if (raw.versions === undefined) return { jurisdiction: raw.jurisdiction, rate: raw.rate! };
  const versions: TaxRateVersion[] = raw.versions.map((v) => ({ effective_from: v.effective_from ?? null, rate: v.rate }));
  return { jurisdiction: raw.jurisdiction, versions };
}

function legalEntity(e: LegalEntity): LegalEntity {
  return {
    id: e.id,
    name: e.name,
    country: e.country,
    currency: e.currency,
    invoice_number_prefix: e.invoice_number_prefix,
    rounding: e.rounding,
    ...(e.address === undefined ? {} : { address: address(e.address) }),
    ...legal(e),
  };
}

function meter(m: RawMeter): Meter {
  return {
    id: m.id,
    event_type: m.event_type,
    aggregation: m.aggregation,
    ...(m.value === undefined ? {} : { value: m.value }),
    group_by: [...(m.group_by ?? [])],
    allow_negative: m.allow_negative ?? false,
  };
}

function plan(p: RawPlan): Plan {
  return {
    id: p.id,
    currency: p.currency,
    ...(p.minimum_commitment === undefined ? {} : { minimum_commitment: p.minimum_commitment }),
    prices: p.prices.map((pr, index) => price(p.id, pr, index)),
  };
}

function customer(c: Customer): Customer {
  return {
    id: c.id,
    name: c.name,
    legal_entity: c.legal_entity,
    tax_jurisdiction: c.tax_jurisdiction,
    erp_customer_id: c.erp_customer_id,
    ...(c.parent === undefined ? {} : { parent: c.parent }),
    tenants: [...c.tenants],
    ...(c.billing_address === undefined ? {} : { billing_address: address(c.billing_address) }),
    ...legal(c),
    ...(c.currency === undefined ? {} : { currency: c.currency }),
  };
}

function subscription(s: Subscription): Subscription {
  return {
    customer: s.customer,
    plan: s.plan,
    start: s.start,
    ...(s.end === undefined ? {} : { end: s.end }),
  };
}

/** The grants in file order, each with its id (the ordinal counts the customer's grants of that date). */
function creditGrants(raw: Array<Omit<CreditGrant, 'id'>>): CreditGrant[] {
  const grantOrdinals = new Map<string, number>();
  return raw.map((g) => {
    const key = `${g.customer}\u0000${g.granted}`;
    const ordinal = grantOrdinals.get(key) ?? 0;
    grantOrdinals.set(key, ordinal + 1);
    return {
      id: creditGrantId(g.customer, g.granted, ordinal),
      customer: g.customer,
      amount: g.amount,
      currency: g.currency,
      granted: g.granted,
      expires: g.expires,
      ...(g.kind === undefined ? {} : { kind: g.kind }),
    };
  });
}

function discount(d: Discount): Discount {
  return {
    customer: d.customer,
    product: d.product,
    percent_off: d.percent_off,
    from: d.from,
    to: d.to,
  };
}

export function normalizeCatalog(document: unknown): Catalog {
  const raw = document as RawCatalog;
  return {
    version: raw.version,
    legal_entities: raw.legal_entities.map(legalEntity),
    accounts: Object.fromEntries(Object.entries(raw.accounts).map(([entity, map]) => [entity, { ...map }])),
    tax_rates: (raw.tax_rates ?? []).map(taxRate),
    meters: (raw.meters ?? []).map(meter),
    products: (raw.products ?? []).map((p) => ({ id: p.id, name: p.name, revenue_account: { ...p.revenue_account } })),
    plans: (raw.plans ?? []).map(plan),
    customers: (raw.customers ?? []).map(customer),
    subscriptions: (raw.subscriptions ?? []).map(subscription),
    credit_grants: creditGrants(raw.credit_grants ?? []),
    discounts: (raw.discounts ?? []).map(discount),
  };
}
