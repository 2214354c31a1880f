// Builds XeroTargets for tests the way production does: a ConnectionSettings, an ErpCaller from directCaller with an
// Authorizer (here: tokens the simulator issues, renewed on a 401 as a refresh would), and a MappingSource. Also the
// Northwind organisation as the simulator holds it (its chart of accounts, tax rates and currencies) and the
// Northwind mappings (Accrue GL account -> Xero account code, tax jurisdiction -> TaxType, currency).
import { staticMappings, type ConnectionSettings, type MappingEntry, type MappingSource } from '../../src/domain/erp.js';
import { directCaller, type Authorizer } from '../../src/connectors/caller.js';
import { XeroTarget, type XeroTargetOptions } from '../../src/connectors/xero/client.js';
import { XeroSimulator, type XeroSimOptions, type XeroTenantConfig } from './xero-sim.js';

/** A test Authorizer: the simulator's bearer token and the tenant header; a 401 gets a fresh token once per rejected one. */
export function simAuthorizer(sim: XeroSimulator, tenantId: string, ttlMs?: number): Authorizer & { token: string; refreshes: number } {
  const state = {
    token: sim.issueToken([tenantId], ttlMs),
    refreshes: 0,
    async authorize() {
      return { authorization: `Bearer ${state.token}`, 'xero-tenant-id': tenantId };
    },
    async refresh(rejected: Record<string, string>) {
      if (rejected.authorization !== `Bearer ${state.token}`) return; // another caller already renewed it
      state.token = sim.issueToken([tenantId], ttlMs);
      state.refreshes += 1;
    },
  };
  return state;
}

/** Northwind's Accrue GL accounts (examples/northwind/catalog.yaml): roles and revenue accounts of nw-us and nw-de. */
export const NORTHWIND_ACCOUNTS = [
  '1000',
  '1200',
  '2300',
  '2400',
  '4000',
  '4010',
  '4020',
  '4030',
  '4090',
  '1400',
  '1800',
  '3806',
  '3900',
  '8400',
  '8410',
  '8420',
  '8430',
  '8490',
];
const BANK_ACCOUNTS = new Set(['1000', '1800']);

/** The Northwind organisation in Xero: base USD, EUR enabled, the accounts above with the same codes, two sales tax rates. */
export function northwindTenant(overrides: XeroTenantConfig = {}): XeroTenantConfig {
  return {
    baseCurrency: 'USD',
    currencies: ['EUR'],
    accounts: NORTHWIND_ACCOUNTS.map((Code) => ({ Code, Type: BANK_ACCOUNTS.has(Code) ? 'BANK' : 'REVENUE' })),
    taxTypes: [{ TaxType: 'OUTPUT', EffectiveRate: '19' }, { TaxType: 'EXEMPTOUTPUT' }],
    ...overrides,
  };
}

/** Northwind's mappings: every GL account to the same code, each tax jurisdiction to a TaxType, USD and EUR as themselves. */
export function northwindMappings(extra: MappingEntry[] = [], without: Array<Pick<MappingEntry, 'kind' | 'source'>> = []): MappingEntry[] {
  const entries: MappingEntry[] = [
    ...NORTHWIND_ACCOUNTS.map((code) => ({ kind: 'account' as const, source: code, target: code })),
    { kind: 'tax_type', source: 'US-CA', target: 'OUTPUT' },
    { kind: 'tax_type', source: 'US-NY', target: 'OUTPUT' },
    { kind: 'tax_type', source: 'US-OR', target: 'EXEMPTOUTPUT' },
    { kind: 'tax_type', source: 'DE', target: 'OUTPUT' },
    { kind: 'currency', source: 'USD', target: 'USD' },
    { kind: 'currency', source: 'EUR', target: 'EUR' },
  ];
  return [...entries.filter((e) => !without.some((w) => w.kind === e.kind && w.source === e.source)), ...extra];
}

/** A simulator holding one Northwind organisation `tenantId` (default `tenant`). */
export function northwindXeroSim(options: XeroSimOptions = {}, tenantId = 'tenant', tenant: XeroTenantConfig = {}): XeroSimulator {
  const sim = new XeroSimulator(options);
  sim.addTenant(tenantId, northwindTenant(tenant));
  return sim;
}

const NORTHWIND_CASH: Record<string, string> = { 'nw-us': '1000', 'nw-de': '1800' };

/** A XeroTarget on the simulator's organisation `tenantId`, built as production builds it. */
export function xeroTestTarget(
  sim: XeroSimulator,
  input: {
    tenantId?: string;
    name?: string;
    settings?: Partial<ConnectionSettings>;
    mappings?: MappingEntry[] | MappingSource;
    authorizer?: Authorizer;
  } & Partial<Omit<XeroTargetOptions, 'settings' | 'caller' | 'mappings'>> = {},
): XeroTarget {
  const tenantId = input.tenantId ?? 'tenant';
  const name = input.name ?? 'xero';
  const settings: ConnectionSettings = {
    name,
    kind: 'xero',
    legal_entities: ['nw-us', 'nw-de'],
    base_url: sim.url,
    tenant_id: tenantId,
    ...input.settings,
  };
  const mappings =
    input.mappings === undefined || Array.isArray(input.mappings)
      ? staticMappings(name, (input.mappings as MappingEntry[] | undefined) ?? northwindMappings())
      : input.mappings;
  const { tenantId: _t, name: _n, settings: _s, mappings: _m, authorizer, ...rest } = input;
  return new XeroTarget({
    settings,
    caller: directCaller(name, authorizer ?? simAuthorizer(sim, tenantId)),
    mappings,
    cashAccount: (entity) => NORTHWIND_CASH[entity],
    limits: { requestsPerMinute: 60_000 },
    ...rest,
  });
}
