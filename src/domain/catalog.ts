// The catalog loader: YAML or JSON text -> a validated, normalized Catalog and its content hash (docs/catalog.md).
// Pure: parse, check the structure (schema/catalog.schema.json), check the semantics, normalize. An invalid
// catalog is refused whole, with every problem listed by path.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { parseDocument } from 'yaml';
import { parseStrictJson } from './strict-json.js';
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
  PriceVersion,
  Product,
  Subscription,
  TaxRate,
} from './model.js';
import { fail, invariant, ok, problem, type Problem, type Result } from './result.js';
import { structuralProblems } from './catalog/structure.js';
import { semanticProblems } from './catalog/semantics.js';
import { normalizeCatalog } from './catalog/normalize.js';
import { meterValueLimits } from './limits.js';
import type { Decimal } from './money.js';

export { priceId, priceVersionId, creditGrantId } from './catalog/normalize.js';

/** Limits (TigerStyle): a catalog text longer than this is refused before parsing. */
export const CATALOG_TEXT_CHARS_MAX = 8 * 1024 * 1024;
/** YAML aliases expanded at most this many times (guards against "billion laughs"). */
export const CATALOG_YAML_ALIASES_MAX = 100;

export type CatalogFormat = 'yaml' | 'json';

export interface LoadedCatalog {
  catalog: Catalog;
  hash: string;
}

/** JSON when the text starts with `{` (after whitespace and a byte order mark), YAML otherwise. */
export function detectCatalogFormat(text: string): CatalogFormat {
  return text
    .replace(/^\uFEFF/, '')
    .trimStart()
    .startsWith('{')
    ? 'json'
    : 'yaml';
}

function parseText(text: string, format: CatalogFormat): Result<unknown> {
  const source = text.replace(/^\uFEFF/, '');
  if (format === 'json') {
    // Strictly (src/domain/strict-json.ts): a repeated key, an inexact number or bad text is refused, never rewritten.
    const parsed = parseStrictJson(source);
    if (parsed.ok) return ok(parsed.value);
    return fail(...parsed.problems.map((p) => problem(p.path, p.code === 'malformed_json' ? 'json_syntax' : p.code, `JSON: ${p.message}`)));
  }
  // Core schema: YAML 1.2 without timestamps, so `2026-01-01` stays a string; duplicate keys are errors.
  const document = parseDocument(source, { schema: 'core', uniqueKeys: true, prettyErrors: true });
  if (document.errors.length > 0) {
    return fail(...document.errors.map((error) => problem('', 'yaml_syntax', `YAML: ${error.message.split('\n')[0]}`)));
  }
  try {
    return ok(document.toJS({ maxAliasCount: CATALOG_YAML_ALIASES_MAX }) as unknown);
  } catch (error) {
    return fail(problem('', 'yaml_syntax', `YAML: ${(error as Error).message.split('\n')[0]}`));
  }
}

const SECTIONS = [
  'version',
  'legal_entities',
  'accounts',
  'tax_rates',
  'meters',
  'products',
  'plans',
  'customers',
  'subscriptions',
  'credit_grants',
  'discounts',
];

/** Orders problems by section (file order of the reference catalog) and item index; within an item, as found. */
function orderProblems(problems: Problem[]): Problem[] {
  const key = (p: Problem): [number, number] => {
    const match = /^([A-Za-z0-9_-]*)(?:\[(\d+)\])?/.exec(p.path);
    const section = SECTIONS.indexOf(match?.[1] ?? '');
    return [p.path === '' ? -1 : section === -1 ? SECTIONS.length : section, match?.[2] === undefined ? -1 : Number(match[2])];
  };
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const id = `${p.path}\u0000${p.message}`;
    return seen.has(id) ? false : (seen.add(id), true);
  });
  return unique
    .map((p, order) => ({ p, order, key: key(p) }))
    .sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.order - b.order)
    .map(({ p }) => p);
}

/** Validates an already parsed document (e.g. a JSON request body) and normalizes it. */
export function catalogFromDocument(document: unknown): Result<LoadedCatalog> {
  const problems = orderProblems([...structuralProblems(document), ...semanticProblems(document)]);
  if (problems.length > 0) return fail(...problems);
  const catalog = normalizeCatalog(document);
  return ok({ catalog, hash: catalogHash(catalog) });
}

/** Parses, validates and normalizes a catalog; `format` defaults to JSON for text starting with `{`, else YAML. */
export function parseCatalog(text: string, format?: CatalogFormat): Result<LoadedCatalog> {
  if (text.length > CATALOG_TEXT_CHARS_MAX) {
    return fail(problem('', 'too_large', `a catalog has at most ${CATALOG_TEXT_CHARS_MAX} characters, got ${text.length}`));
  }
  const parsed = parseText(text, format ?? detectCatalogFormat(text));
  if (!parsed.ok) return parsed;
  return catalogFromDocument(parsed.value);
}

/** SHA-256 hex of the RFC 8785 canonical JSON of a normalized catalog: same content, same hash, whatever the format or key order. */
export function catalogHash(catalog: Catalog): string {
  const canonical = canonicalize(catalog);
  invariant(canonical !== undefined, 'a catalog always has a canonical form');
  return createHash('sha256').update(canonical).digest('hex');
}

// ---------- lookups for the later stages ----------

export interface CatalogIndex {
  legalEntities: ReadonlyMap<string, LegalEntity>;
  accounts: ReadonlyMap<string, AccountMap>; // by legal entity id
  taxRates: ReadonlyMap<string, TaxRate>; // by jurisdiction
  meters: ReadonlyMap<string, Meter>;
  metersByType: ReadonlyMap<string, readonly Meter[]>; // by CloudEvents type; several meters may share one
  products: ReadonlyMap<string, Product>;
  plans: ReadonlyMap<string, Plan>;
  prices: ReadonlyMap<string, { plan: Plan; price: Price }>; // by Price.id
  customers: ReadonlyMap<string, Customer>;
  customerByTenant: ReadonlyMap<string, Customer>; // by CloudEvents subject
  subscriptionsByCustomer: ReadonlyMap<string, readonly Subscription[]>;
  creditGrantsByCustomer: ReadonlyMap<string, readonly CreditGrant[]>;
  discountsByCustomer: ReadonlyMap<string, readonly Discount[]>;
  /** Largest absolute value one event may carry, per meter that its prices charge per unit (src/domain/limits.ts). */
  meterValueMax: ReadonlyMap<string, Decimal>;
}

function groupBy<T>(values: readonly T[], key: (value: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const value of values) {
    const k = key(value);
    const group = groups.get(k);
    if (group) group.push(value);
    else groups.set(k, [value]);
  }
  return groups;
}

/** Maps over a normalized catalog; lists keep the catalog's order. */
export function indexCatalog(catalog: Catalog): CatalogIndex {
  const byId = <T extends { id: string }>(values: readonly T[]) => new Map(values.map((v) => [v.id, v] as const));
  return {
    legalEntities: byId(catalog.legal_entities),
    accounts: new Map(Object.entries(catalog.accounts)),
    taxRates: new Map(catalog.tax_rates.map((t) => [t.jurisdiction, t] as const)),
    meters: byId(catalog.meters),
    metersByType: groupBy(catalog.meters, (m) => m.event_type),
    products: byId(catalog.products),
    plans: byId(catalog.plans),
    prices: new Map(catalog.plans.flatMap((plan) => plan.prices.map((price) => [price.id, { plan, price }] as const))),
    customers: byId(catalog.customers),
    customerByTenant: new Map(catalog.customers.flatMap((c) => c.tenants.map((tenant) => [tenant, c] as const))),
    subscriptionsByCustomer: groupBy(catalog.subscriptions, (s) => s.customer),
    creditGrantsByCustomer: groupBy(catalog.credit_grants, (g) => g.customer),
    discountsByCustomer: groupBy(catalog.discounts, (d) => d.customer),
    meterValueMax: meterValueLimits(catalog),
  };
}

/**
 * The tax rate of a jurisdiction in force on a UTC date (YYYY-MM-DD): the single rate, or the rate of the version with
 * the latest effective_from on or before the date; undefined before its first effective_from.
 */
export function taxRateAt(taxRate: TaxRate, date: string): string | undefined {
  if (!('versions' in taxRate)) return taxRate.rate;
  let found: string | undefined;
  for (const version of taxRate.versions) {
    if (version.effective_from === null || version.effective_from <= date) found = version.rate;
  }
  return found;
}

/** The version of a price in force on a UTC date (YYYY-MM-DD), or undefined before its first effective_from. */
export function priceVersionAt(price: Price, date: string): PriceVersion | undefined {
  let found: PriceVersion | undefined;
  for (const version of price.versions) {
    if (version.effective_from === null || version.effective_from <= date) found = version;
  }
  return found;
}
