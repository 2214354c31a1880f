// Step 2 of loading a catalog: the rules a JSON Schema cannot say. It reads the parsed document defensively
// (it also runs when the structure is wrong, so that every problem is listed at once) and stays silent about
// a value the schema already refused: each problem is reported by one step only.
import { type Decimal, isCurrency, minorUnits, parseDecimal, UNIT_AMOUNT_SCALE_MAX } from '../money.js';
import { problem, type Problem } from '../result.js';
import { at, suggestion } from './paths.js';
import { CATALOG_AMOUNT_MINOR_MAX, EVENT_AMOUNT_MINOR_MAX, toMinorExact } from '../limits.js';

type Raw = Record<string, unknown>;

const PLAIN_DECIMAL = /^(0|[1-9]\d*)(\.\d+)?$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const CURRENCY = /^[A-Z]{3}$/;
const MODELS = ['flat', 'per_unit', 'graduated', 'volume'] as const;
type ModelName = (typeof MODELS)[number];
const MODEL_FIELDS = ['amount', 'unit_amount', 'package', 'tiers'] as const;
const FIELDS_OF: Record<ModelName, readonly string[]> = {
  flat: ['amount'],
  per_unit: ['unit_amount', 'package'],
  graduated: ['tiers'],
  volume: ['tiers'],
};
const REQUIRED_OF: Record<ModelName, readonly string[]> = {
  flat: ['amount'],
  per_unit: ['unit_amount'],
  graduated: ['tiers'],
  volume: ['tiers'],
};
const AGGREGATIONS = ['count', 'sum', 'max', 'unique_count', 'latest'];
/** Rates and percentages carry at most as many places as unit amounts. */
const RATE_SCALE_MAX = UNIT_AMOUNT_SCALE_MAX;

const isRecord = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const id = (value: unknown): string | undefined => (typeof value === 'string' && ID.test(value) ? value : undefined);
const isModel = (value: unknown): value is ModelName => MODELS.includes(value as ModelName);

/** The object items of a top-level list with their indexes; anything else was reported by the schema. */
function items(root: Raw, key: string): Array<[Raw, number, string]> {
  const list = root[key];
  if (!Array.isArray(list)) return [];
  return list.flatMap((item, index) => (isRecord(item) ? [[item, index, at(key, index)] as [Raw, number, string]] : []));
}

interface DecimalRule {
  scaleMax?: number;
  scaleReason?: string;
  positive?: boolean;
}

interface Entry {
  raw: Raw;
  path: string;
}

class Checker {
  readonly problems: Problem[] = [];

  add(path: string, code: string, message: string): void {
    this.problems.push(problem(path, code, message));
  }

  /** A decimal the schema let through as a plain decimal string; digit, place and sign rules here. */
  decimal(value: unknown, path: string, rule: DecimalRule = {}): Decimal | undefined {
    if (typeof value !== 'string' || !PLAIN_DECIMAL.test(value)) return undefined;
    const parsed = parseDecimal(value, path);
    if (!parsed.ok) {
      this.problems.push(...parsed.problems);
      return undefined;
    }
    if (rule.scaleMax !== undefined && parsed.value.decimalPlaces() > rule.scaleMax) {
      this.add(path, 'too_many_decimals', `must have at most ${rule.scaleMax} decimal places${rule.scaleReason ?? ''}`);
    }
    if (rule.positive && parsed.value.isZero()) this.add(path, 'out_of_range', 'must be greater than 0');
    return parsed.value;
  }

  /** A date the schema let through as YYYY-MM-DD; here it must also be a day of the calendar. */
  date(value: unknown, path: string): string | undefined {
    if (typeof value !== 'string' || !DATE.test(value)) return undefined;
    const parsed = new Date(`${value}T00:00:00.000Z`);
    if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== value) {
      this.add(path, 'invalid_date', `must be a calendar date, got ${JSON.stringify(value)}`);
      return undefined;
    }
    return value;
  }

  currency(value: unknown, path: string): string | undefined {
    if (typeof value !== 'string' || !CURRENCY.test(value)) return undefined;
    if (isCurrency(value)) return value;
    this.add(path, 'unknown_currency', `must be an ISO 4217 currency code, got ${JSON.stringify(value)}`);
    return undefined;
  }

  /** Amounts charged as they are (fees, commitments, grants) fit the currency's minor unit. */
  amount(value: unknown, path: string, currency: string | undefined, options: { positive?: boolean } = {}): Decimal | undefined {
    const rule: DecimalRule = currency ? { scaleMax: minorUnits(currency), scaleReason: ` (the minor unit of ${currency})` } : {};
    const amount = this.decimal(value, path, { ...rule, ...options });
    // Limit (docs/pricing.md#limits): what an invoice adds up from such amounts must fit the store's int8 minor units.
    if (amount !== undefined && currency && toMinorExact(amount, currency).gt(CATALOG_AMOUNT_MINOR_MAX.toString())) {
      this.add(
        path,
        'too_large',
        `must be at most ${CATALOG_AMOUNT_MINOR_MAX} minor units of ${currency}: a larger amount cannot be billed (docs/pricing.md#limits)`,
      );
    }
    return amount;
  }

  /** A unit (or package) price: one unit must bill at most what one event may bill, or no event of its meter could be billed. */
  unitAmount(value: unknown, path: string, currency: string | undefined): Decimal | undefined {
    const amount = this.decimal(value, path, { scaleMax: UNIT_AMOUNT_SCALE_MAX });
    if (amount !== undefined && currency && toMinorExact(amount, currency).gt(EVENT_AMOUNT_MINOR_MAX.toString())) {
      this.add(
        path,
        'too_large',
        `must be at most ${EVENT_AMOUNT_MINOR_MAX} minor units of ${currency}, the most one event may bill: a dearer unit cannot be billed (docs/pricing.md#limits)`,
      );
    }
    return amount;
  }

  /** Registers `key` of every item; a repeat is a problem at the repeating item. */
  unique(list: Array<[Raw, number, string]>, key: string): Map<string, Entry> {
    const seen = new Map<string, Entry>();
    for (const [raw, , path] of list) {
      const value = text(raw[key]);
      if (value === undefined) continue;
      const first = seen.get(value);
      if (first) this.add(at(path, key), 'duplicate_id', `${JSON.stringify(value)} is already used by ${first.path}`);
      else seen.set(value, { raw, path });
    }
    return seen;
  }

  /** A reference to an id of another section; returns the id when it resolves. */
  reference(value: unknown, path: string, known: ReadonlyMap<string, unknown>, what: string): string | undefined {
    const ref = id(value);
    if (ref === undefined) return undefined;
    if (known.has(ref)) return ref;
    this.add(path, 'unknown_reference', `${JSON.stringify(ref)} is not ${what} in this catalog${suggestion(ref, known.keys())}`);
    return undefined;
  }
}

function checkTiers(c: Checker, tiers: unknown, path: string, currency: string | undefined): void {
  if (!Array.isArray(tiers)) return;
  let previous: Decimal | undefined;
  const last = tiers.length - 1;
  tiers.forEach((tier, k) => {
    if (!isRecord(tier)) return;
    const tierPath = at(path, k);
    const upToPath = at(tierPath, 'up_to');
    if (tier.up_to === null) {
      if (k < last) c.add(upToPath, 'unbounded_tier', 'may be null on the last tier only');
    } else {
      const upTo = c.decimal(tier.up_to, upToPath);
      if (upTo !== undefined) {
        if (previous !== undefined && upTo.lte(previous)) c.add(upToPath, 'tiers_not_ascending', 'must be greater than the tier before');
        else if (previous === undefined && upTo.isZero()) c.add(upToPath, 'out_of_range', 'must be greater than 0');
        if (k === last) c.add(upToPath, 'last_tier_bounded', 'must be null on the last tier');
        if (previous === undefined || upTo.gt(previous)) previous = upTo;
      }
    }
    c.unitAmount(tier.unit_amount, at(tierPath, 'unit_amount'), currency);
    c.amount(tier.flat_amount, at(tierPath, 'flat_amount'), currency);
  });
}

/** The fields one price model takes: `source` is a price without versions, or one version. */
function checkModelFields(c: Checker, source: Raw, path: string, currency: string | undefined): void {
  const model = source.model;
  if (!isModel(model)) return;
  for (const field of MODEL_FIELDS) {
    if (source[field] !== undefined && !FIELDS_OF[model].includes(field))
      c.add(at(path, field), 'not_allowed', `is not used by model ${model}`);
  }
  for (const field of REQUIRED_OF[model]) {
    if (source[field] === undefined) c.add(at(path, field), 'required', `is required for model ${model}`);
  }
  if (model === 'flat') c.amount(source.amount, at(path, 'amount'), currency);
  if (model === 'per_unit') {
    c.unitAmount(source.unit_amount, at(path, 'unit_amount'), currency);
    if (isRecord(source.package)) c.decimal(source.package.size, at(at(path, 'package'), 'size'), { positive: true });
  }
  if (model === 'graduated' || model === 'volume') checkTiers(c, source.tiers, at(path, 'tiers'), currency);
}

function checkVersions(c: Checker, versions: unknown[], path: string, currency: string | undefined): void {
  checkVersionDates(c, versions, path, { repeatCode: 'versions_not_ascending' }, (version, versionPath) =>
    checkModelFields(c, version, versionPath, currency),
  );
}

/**
 * Effective-dated versions (a price's, a tax rate's): effective_from absent or null on the first only, then strictly
 * ascending; a date repeated is refused with `repeatCode`. `each` checks a version's own fields.
 */
function checkVersionDates(
  c: Checker,
  versions: unknown[],
  path: string,
  options: { repeatCode: string; versions?: string },
  each: (version: Raw, versionPath: string) => void,
): void {
  let previous: string | undefined;
  versions.forEach((version, k) => {
    if (!isRecord(version)) return;
    const versionPath = at(path, k);
    const fromPath = at(versionPath, 'effective_from');
    if (version.effective_from === undefined || version.effective_from === null) {
      if (k > 0) c.add(fromPath, 'required', 'is required on every version after the first');
    } else {
      const from = c.date(version.effective_from, fromPath);
      if (from !== undefined) {
        if (previous === from && options.repeatCode !== 'versions_not_ascending')
          c.add(fromPath, options.repeatCode, `repeats ${from}: two ${options.versions ?? 'versions'} would be in force from one date`);
        else if (previous !== undefined && from <= previous)
          c.add(fromPath, 'versions_not_ascending', `must be later than the version before (${previous})`);
        if (previous === undefined || from > previous) previous = from;
      }
    }
    each(version, versionPath);
  });
}

interface Refs {
  meters: Map<string, Entry>;
  products: Map<string, Entry>;
}

function checkPlan(c: Checker, plan: Raw, planPath: string, refs: Refs): void {
  const currency = c.currency(plan.currency, at(planPath, 'currency'));
  c.amount(plan.minimum_commitment, at(planPath, 'minimum_commitment'), currency);
  if (!Array.isArray(plan.prices)) return;
  const priced = new Map<string, string>();
  plan.prices.forEach((price, j) => {
    if (!isRecord(price)) return;
    const pricePath = at(at(planPath, 'prices'), j);
    const product = c.reference(price.product, at(pricePath, 'product'), refs.products, 'a product');
    const meter = price.meter === undefined ? undefined : c.reference(price.meter, at(pricePath, 'meter'), refs.meters, 'a meter');

    let models: unknown[];
    if (Array.isArray(price.versions)) {
      for (const field of ['model', ...MODEL_FIELDS]) {
        if (price[field] !== undefined)
          c.add(at(pricePath, field), 'not_allowed', 'is not allowed next to versions; give it in each version');
      }
      checkVersions(c, price.versions, at(pricePath, 'versions'), currency);
      models = price.versions.map((v) => (isRecord(v) ? v.model : undefined));
    } else {
      if (price.versions === undefined && price.model === undefined)
        c.add(at(pricePath, 'model'), 'required', 'is required unless the price has versions');
      checkModelFields(c, price, pricePath, currency);
      models = [price.model];
    }
    const meterPath = at(pricePath, 'meter');
    if (price.meter !== undefined && models.includes('flat')) c.add(meterPath, 'not_allowed', 'is not allowed with model flat');
    if (price.interval === 'year' && !models.every((m) => m === 'flat'))
      c.add(at(pricePath, 'interval'), 'not_allowed', 'year is for flat prices only: usage is billed for the month it is used in');
    const metered = models.find((m) => isModel(m) && m !== 'flat');
    if (price.meter === undefined && metered !== undefined) c.add(meterPath, 'required', `is required for model ${String(metered)}`);

    if (product !== undefined && (meter !== undefined || price.meter === undefined)) {
      const key = `${product}\u0000${meter ?? ''}`;
      const first = priced.get(key);
      const what = meter === undefined ? `product ${product} without a meter` : `product ${product} with meter ${meter}`;
      if (first !== undefined) c.add(pricePath, 'duplicate_price', `prices ${what} again (see ${first})`);
      else priced.set(key, pricePath);
    }
  });
}

function parentCycle(customers: Map<string, Entry>, start: string): string[] | undefined {
  const chain = [start];
  let current = id(customers.get(start)?.raw.parent);
  while (current !== undefined && customers.has(current)) {
    chain.push(current);
    if (current === start) return chain;
    if (chain.length > customers.size + 1) return undefined; // a cycle that does not pass through start
    current = id(customers.get(current)?.raw.parent);
  }
  return undefined;
}

/** The ids each section defines, keyed for the references of later sections. */
interface Known {
  entities: Map<string, Entry>;
  entityCurrency: Map<string, string>;
  jurisdictions: Map<string, Entry>;
  meters: Map<string, Entry>;
  products: Map<string, Entry>;
  plans: Map<string, Entry>;
  customers: Map<string, Entry>;
}

interface Billing {
  entity: string;
  currency: string;
}

function checkLegalEntities(c: Checker, root: Raw): Pick<Known, 'entities' | 'entityCurrency'> {
  const entityList = items(root, 'legal_entities');
  const entities = c.unique(entityList, 'id');
  const entityCurrency = new Map<string, string>();
  for (const [entity, , path] of entityList) {
    const currency = c.currency(entity.currency, at(path, 'currency'));
    const entityId = text(entity.id);
    if (currency && entityId && entities.get(entityId)?.raw === entity) entityCurrency.set(entityId, currency);
  }
  if (isRecord(root.accounts)) {
    for (const key of Object.keys(root.accounts)) c.reference(key, at('accounts', key), entities, 'a legal entity');
    for (const entityId of entities.keys()) {
      if (!Object.hasOwn(root.accounts, entityId))
        c.add(at('accounts', entityId), 'required', 'is required: every legal entity needs its accounts');
    }
  }
  return { entities, entityCurrency };
}

function checkTaxRate(c: Checker, value: unknown, path: string): void {
  const rate = c.decimal(value, path, { scaleMax: RATE_SCALE_MAX });
  if (rate?.gt(1)) c.add(path, 'out_of_range', 'must be a fraction from 0 to 1 ("0.0725" is 7.25%)');
}

/** Versions of a tax rate, as a price's: effective_from absent or null on the first only, then strictly ascending. */
function checkTaxRateVersions(c: Checker, versions: unknown[], path: string): void {
  checkVersionDates(c, versions, path, { repeatCode: 'duplicate_effective_from', versions: 'rates' }, (version, versionPath) =>
    checkTaxRate(c, version.rate, at(versionPath, 'rate')),
  );
}

function checkTaxRates(c: Checker, root: Raw): Map<string, Entry> {
  const taxList = items(root, 'tax_rates');
  const jurisdictions = c.unique(taxList, 'jurisdiction');
  for (const [tax, , path] of taxList) {
    if (Array.isArray(tax.versions)) {
      if (tax.rate !== undefined) c.add(at(path, 'rate'), 'not_allowed', 'is not allowed next to versions; give it in each version');
      checkTaxRateVersions(c, tax.versions, at(path, 'versions'));
    } else {
      if (tax.versions === undefined && tax.rate === undefined)
        c.add(at(path, 'rate'), 'required', 'is required unless the tax rate has versions');
      checkTaxRate(c, tax.rate, at(path, 'rate'));
    }
  }
  return jurisdictions;
}

function checkMeters(c: Checker, root: Raw): Map<string, Entry> {
  const meterList = items(root, 'meters');
  const meters = c.unique(meterList, 'id');
  for (const [meter, , path] of meterList) {
    const aggregation = meter.aggregation;
    if (typeof aggregation !== 'string' || !AGGREGATIONS.includes(aggregation)) continue;
    if (aggregation === 'count' && meter.value !== undefined) c.add(at(path, 'value'), 'not_allowed', 'is not used by aggregation count');
    if (aggregation !== 'count' && meter.value === undefined)
      c.add(at(path, 'value'), 'required', `is required for aggregation ${aggregation}`);
  }
  return meters;
}

function checkProducts(c: Checker, root: Raw, entities: Map<string, Entry>): Map<string, Entry> {
  const productList = items(root, 'products');
  const products = c.unique(productList, 'id');
  for (const [product, , path] of productList) {
    if (!isRecord(product.revenue_account)) continue;
    for (const key of Object.keys(product.revenue_account))
      c.reference(key, at(at(path, 'revenue_account'), key), entities, 'a legal entity');
  }
  return products;
}

function checkPlans(c: Checker, root: Raw, refs: Refs): Map<string, Entry> {
  const planList = items(root, 'plans');
  const plans = c.unique(planList, 'id');
  for (const [plan, , path] of planList) checkPlan(c, plan, path, refs);
  return plans;
}

function checkParent(c: Checker, customer: Raw, path: string, customers: Map<string, Entry>): void {
  const customerId = text(customer.id);
  if (customer.parent === undefined) return;
  if (customerId !== undefined && customer.parent === customerId)
    c.add(at(path, 'parent'), 'parent_cycle', 'must not be the customer itself');
  else if (c.reference(customer.parent, at(path, 'parent'), customers, 'a customer') !== undefined && customerId !== undefined) {
    const cycle = parentCycle(customers, customerId);
    if (cycle) c.add(at(path, 'parent'), 'parent_cycle', `makes a cycle of parents: ${cycle.join(' -> ')}`);
  }
}

/** Each tenant belongs to one customer; `tenants` maps the tenants seen so far to their owner. */
function checkTenants(c: Checker, customer: Raw, path: string, tenants: Map<string, string>): void {
  if (!Array.isArray(customer.tenants)) return;
  const customerId = text(customer.id);
  customer.tenants.forEach((tenant, k) => {
    if (typeof tenant !== 'string' || tenant === '') return;
    const owner = tenants.get(tenant);
    if (owner !== undefined)
      c.add(at(at(path, 'tenants'), k), 'duplicate_id', `${JSON.stringify(tenant)} is already a tenant of customer ${owner}`);
    else tenants.set(tenant, customerId ?? path);
  });
}

function checkCustomers(c: Checker, root: Raw, known: Pick<Known, 'entities' | 'jurisdictions' | 'entityCurrency'>): Map<string, Entry> {
  const customerList = items(root, 'customers');
  const customers = c.unique(customerList, 'id');
  const tenants = new Map<string, string>();
  const fxRolesNamed = new Set<string>();
  for (const [customer, , path] of customerList) {
    checkBillingCurrency(c, root, customer, path, known, fxRolesNamed);
    c.reference(customer.legal_entity, at(path, 'legal_entity'), known.entities, 'a legal entity');
    c.reference(customer.tax_jurisdiction, at(path, 'tax_jurisdiction'), known.jurisdictions, 'a tax rate jurisdiction');
    checkParent(c, customer, path, customers);
    checkTenants(c, customer, path, tenants);
  }
  return customers;
}

/**
 * The legal entity that bills a customer and the currency it bills in (the customer's own `currency`, else the
 * entity's functional currency), when both are known.
 */
function billingOf(known: Known, customerId: string | undefined): Billing | undefined {
  const raw = customerId === undefined ? undefined : known.customers.get(customerId)?.raw;
  const entity = id(raw?.legal_entity);
  const own = text(raw?.currency);
  const currency =
    own !== undefined ? (isCurrency(own) ? own : undefined) : entity === undefined ? undefined : known.entityCurrency.get(entity);
  return entity !== undefined && currency !== undefined ? { entity, currency } : undefined;
}

/** The account roles a legal entity needs once it bills a customer in another currency (docs/accounting.md). */
export const FX_ACCOUNT_ROLES = ['fx_gain', 'fx_loss', 'fx_unrealized'] as const;

/**
 * A customer billed in a currency other than its legal entity's functional currency: the currency is ISO 4217, and
 * the entity's accounts name the realized and unrealized exchange gain and loss accounts (each named once).
 */
function checkBillingCurrency(
  c: Checker,
  root: Raw,
  customer: Raw,
  path: string,
  known: Pick<Known, 'entityCurrency'>,
  named: Set<string>,
): void {
  if (customer.currency === undefined) return;
  const currency = c.currency(customer.currency, at(path, 'currency'));
  const entity = id(customer.legal_entity);
  const functional = entity === undefined ? undefined : known.entityCurrency.get(entity);
  if (!currency || !entity || !functional || currency === functional) return;
  const accounts = isRecord(root.accounts) ? root.accounts[entity] : undefined;
  if (!isRecord(accounts)) return;
  for (const role of FX_ACCOUNT_ROLES) {
    if (Object.hasOwn(accounts, role) || named.has(`${entity}\u0000${role}`)) continue;
    named.add(`${entity}\u0000${role}`);
    c.add(
      at(at('accounts', entity), role),
      'required',
      `is required: legal entity ${entity} keeps its books in ${functional} and bills customer ${text(customer.id) ?? path} in ${currency} (${path})`,
    );
  }
}

interface SubscriptionRef {
  path: string;
  customer: string;
  planId: string;
  plan: Raw;
  billing: Billing;
}

/** The plan's currency is the billing entity's, and each of its products has a revenue account for that entity. */
function checkSubscriptionBilling(c: Checker, known: Known, sub: SubscriptionRef, accountsRequired: Set<string>): void {
  const { path, customer, planId, plan, billing } = sub;
  const planCurrency = text(plan.currency);
  if (planCurrency !== undefined && isCurrency(planCurrency) && planCurrency !== billing.currency) {
    c.add(
      at(path, 'plan'),
      'currency_mismatch',
      `plan ${planId} is priced in ${planCurrency}, but customer ${customer} is billed by legal entity ${billing.entity} in ${billing.currency}${
        billing.currency === known.entityCurrency.get(billing.entity) ? '' : " (the customer's currency)"
      }`,
    );
  }
  for (const price of Array.isArray(plan.prices) ? plan.prices : []) {
    const productId = isRecord(price) ? id(price.product) : undefined;
    const product = productId === undefined ? undefined : known.products.get(productId);
    if (!product || !productId || !isRecord(product.raw.revenue_account)) continue;
    const key = `${productId}\u0000${billing.entity}`;
    if (Object.hasOwn(product.raw.revenue_account, billing.entity) || accountsRequired.has(key)) continue;
    accountsRequired.add(key);
    c.add(
      at(at(product.path, 'revenue_account'), billing.entity),
      'required',
      `is required: legal entity ${billing.entity} bills product ${productId} through ${path} (plan ${planId})`,
    );
  }
}

interface Period {
  customer: string;
  plan: string;
  start: string;
  end: string | undefined;
  path: string;
}

function checkSubscriptions(c: Checker, root: Raw, known: Known): void {
  const periods: Period[] = [];
  const accountsRequired = new Set<string>();
  for (const [subscription, , path] of items(root, 'subscriptions')) {
    const customer = c.reference(subscription.customer, at(path, 'customer'), known.customers, 'a customer');
    const planId = c.reference(subscription.plan, at(path, 'plan'), known.plans, 'a plan');
    const start = c.date(subscription.start, at(path, 'start'));
    const end = subscription.end === undefined ? undefined : c.date(subscription.end, at(path, 'end'));
    if (start !== undefined && end !== undefined && end <= start) c.add(at(path, 'end'), 'date_order', `must be after start (${start})`);
    const billing = billingOf(known, customer);
    const plan = planId === undefined ? undefined : known.plans.get(planId)?.raw;
    if (billing && plan && customer && planId)
      checkSubscriptionBilling(c, known, { path, customer, planId, plan, billing }, accountsRequired);
    if (customer && planId && start !== undefined && (subscription.end === undefined || end !== undefined)) {
      const earlier = periods.find(
        (p) => p.customer === customer && p.plan === planId && p.start < (end ?? '9999-12-31') && start < (p.end ?? '9999-12-31'),
      );
      if (earlier) c.add(path, 'overlap', `overlaps ${earlier.path}: customer ${customer} would have plan ${planId} twice at once`);
      periods.push({ customer, plan: planId, start, end, path });
    }
  }
}

function checkCreditGrants(c: Checker, root: Raw, known: Known): void {
  for (const [grant, , path] of items(root, 'credit_grants')) {
    const customer = c.reference(grant.customer, at(path, 'customer'), known.customers, 'a customer');
    const currency = c.currency(grant.currency, at(path, 'currency'));
    const billing = billingOf(known, customer);
    if (currency && billing && customer && currency !== billing.currency) {
      c.add(
        at(path, 'currency'),
        'currency_mismatch',
        billing.currency === known.entityCurrency.get(billing.entity)
          ? `must be ${billing.currency}, the currency of legal entity ${billing.entity} that bills customer ${customer}`
          : `must be ${billing.currency}, the currency customer ${customer} is billed in`,
      );
    }
    c.amount(grant.amount, at(path, 'amount'), currency, { positive: true });
    // A promotional grant is drawn as contra-revenue: its legal entity names the account.
    if (grant.kind === 'promotional' && billing) {
      const accounts = isRecord(root.accounts) ? root.accounts[billing.entity] : undefined;
      if (isRecord(accounts) && !Object.hasOwn(accounts, 'promotional_credits'))
        c.add(
          at(path, 'kind'),
          'required_account',
          `needs accounts.${billing.entity}.promotional_credits: a promotional grant is drawn as contra-revenue`,
        );
    }
    const granted = c.date(grant.granted, at(path, 'granted'));
    const expires = c.date(grant.expires, at(path, 'expires'));
    if (granted !== undefined && expires !== undefined && expires < granted)
      c.add(at(path, 'expires'), 'date_order', `must not be before granted (${granted})`);
  }
}

function checkDiscounts(c: Checker, root: Raw, known: Known): void {
  const discountPeriods: Array<{ customer: string; product: string; from: string; to: string; path: string }> = [];
  for (const [discount, , path] of items(root, 'discounts')) {
    const customer = c.reference(discount.customer, at(path, 'customer'), known.customers, 'a customer');
    const product = c.reference(discount.product, at(path, 'product'), known.products, 'a product');
    const percent = c.decimal(discount.percent_off, at(path, 'percent_off'), { scaleMax: RATE_SCALE_MAX });
    if (percent !== undefined && (percent.isZero() || percent.gt(100)))
      c.add(at(path, 'percent_off'), 'out_of_range', 'must be greater than 0 and at most 100');
    const from = c.date(discount.from, at(path, 'from'));
    const to = c.date(discount.to, at(path, 'to'));
    if (from !== undefined && to !== undefined) {
      if (to < from) c.add(at(path, 'to'), 'date_order', `must not be before from (${from})`);
      else if (customer && product) {
        const earlier = discountPeriods.find((d) => d.customer === customer && d.product === product && d.from <= to && from <= d.to);
        if (earlier)
          c.add(path, 'overlap', `overlaps ${earlier.path}: customer ${customer} would have two discounts on product ${product} at once`);
        discountPeriods.push({ customer, product, from, to, path });
      }
    }
  }
}

/** Semantic problems of a parsed catalog document (see docs/catalog.md for each rule). */
export function semanticProblems(root: unknown): Problem[] {
  const c = new Checker();
  if (!isRecord(root)) return c.problems;
  const { entities, entityCurrency } = checkLegalEntities(c, root);
  const jurisdictions = checkTaxRates(c, root);
  const meters = checkMeters(c, root);
  const products = checkProducts(c, root, entities);
  const plans = checkPlans(c, root, { meters, products });
  const customers = checkCustomers(c, root, { entities, jurisdictions, entityCurrency });
  const known: Known = { entities, entityCurrency, jurisdictions, meters, products, plans, customers };
  checkSubscriptions(c, root, known);
  checkCreditGrants(c, root, known);
  checkDiscounts(c, root, known);
  return c.problems;
}
