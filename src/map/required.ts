// Map (stage 3): which mappings the documents posted to one connection will need, from the catalog and the
// connection's settings, per ERP (issue #15). NetSuite: customer, item, account, SuiteTax taxType + taxCode + nexus,
// currency, subsidiary. Xero: contact, item code (optional: a line may carry an account and no item), account,
// TaxType (required: never a silent default), currency. A customer Accrue creates in the ERP itself (customer sync,
// settings.customers other than `link`) needs no mapping ahead of time.
import type { ConnectionSettings, MappingKind } from '../domain/erp.js';
import type { Catalog } from '../domain/model.js';

export interface RequiredMapping {
  kind: MappingKind;
  source: string;
  /** false: documents post without it (an optional Xero item code, a customer that customer sync creates). */
  required: boolean;
  /** Why it is needed, e.g. `legal entity nw-us receivable account`, `customer acme`. */
  needed_by: string[];
}

/**
 * The mappings a connection needs on `on` (YYYY-MM-DD), one per (kind, source), in a stable order: subsidiaries,
 * currencies, accounts, tax, customers, items. Only the legal entities that post to this connection count.
 */
export function requiredMappings(catalog: Catalog, settings: ConnectionSettings, on: string): RequiredMapping[] {
  const found = new Map<string, RequiredMapping>();
  const need = (kind: MappingKind, source: string, required: boolean, why: string) => {
    const key = `${kind}\u0000${source}`;
    const entry = found.get(key);
    if (!entry) found.set(key, { kind, source, required, needed_by: [why] });
    else {
      entry.required ||= required;
      if (!entry.needed_by.includes(why)) entry.needed_by.push(why);
    }
  };
  const netsuite = settings.kind === 'netsuite';
  const entityIds = new Set(settings.legal_entities);
  const entities = catalog.legal_entities.filter((e) => entityIds.has(e.id));
  const customers = catalog.customers.filter((c) => entityIds.has(c.legal_entity));
  const plans = new Map(catalog.plans.map((p) => [p.id, p] as const));

  for (const entity of entities) if (netsuite) need('subsidiary', entity.id, true, `legal entity ${entity.id}`);
  for (const entity of entities) need('currency', entity.currency, true, `legal entity ${entity.id} currency`);
  for (const customer of customers) {
    // A customer's currencies: its subscriptions' plans not ended by `on`, and its credit grants not expired.
    for (const s of catalog.subscriptions) {
      if (s.customer !== customer.id || (s.end !== undefined && s.end <= on)) continue;
      const plan = plans.get(s.plan);
      if (plan) need('currency', plan.currency, true, `customer ${customer.id} plan ${plan.id}`);
    }
    for (const g of catalog.credit_grants)
      if (g.customer === customer.id && g.expires >= on) need('currency', g.currency, true, `customer ${customer.id} credit grant`);
  }
  for (const entity of entities) {
    const roles = catalog.accounts[entity.id];
    if (!roles) continue;
    for (const role of ['receivable', 'cash', 'tax_payable', 'deferred_revenue'] as const)
      need('account', roles[role], true, `legal entity ${entity.id} ${role} account`);
  }
  for (const product of catalog.products) {
    for (const entity of entities) {
      const account = product.revenue_account[entity.id];
      if (account !== undefined) need('account', account, true, `product ${product.id} revenue at ${entity.id}`);
    }
  }
  for (const customer of customers) {
    const why = `customer ${customer.id} tax jurisdiction`;
    if (netsuite) {
      need('tax_type', customer.tax_jurisdiction, true, why);
      need('tax_code', customer.tax_jurisdiction, true, why);
      need('nexus', customer.tax_jurisdiction, true, why);
    } else need('tax_type', customer.tax_jurisdiction, true, why);
  }
  for (const customer of customers)
    need('customer', customer.id, settings.customers === 'link', `customer ${customer.id} (${customer.legal_entity})`);
  for (const product of catalog.products) {
    if (!entities.some((e) => product.revenue_account[e.id] !== undefined)) continue;
    need('item', product.id, netsuite, `product ${product.id}`);
  }
  return [...found.values()];
}
