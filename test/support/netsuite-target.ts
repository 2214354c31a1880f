// Builds a NetSuiteTarget for the tests: connection settings pointing at a simulator, a directCaller with a test
// Authorizer (TBA signed with the oauth-1.0a library, checked by the simulator's own RFC 5849 implementation, or a
// bearer token the simulator issued), and mappings from a table. The product Authorizers and MappingSource come from
// other parts of issue #15 and replace these at merge.
import { createHmac } from 'node:crypto';
import OAuth from 'oauth-1.0a';
import {
  MappingMissing,
  ReauthorizationRequired,
  type ConnectionSettings,
  type MappingKind,
  type MappingResolver,
  type MappingSource,
} from '../../src/domain/erp.js';
import { directCaller, type Authorizer } from '../../src/connectors/caller.js';
import { NetSuiteTarget } from '../../src/connectors/netsuite/client.js';
import { References } from '../../src/connectors/netsuite/sales.js';
import type { TargetLimits } from '../../src/post/target.js';
import { NS_SIM_ACCOUNT, NS_SIM_TBA } from './netsuite-sim.js';

export interface TbaCredentials {
  consumerKey: string;
  consumerSecret: string;
  tokenId: string;
  tokenSecret: string;
}

/** TBA: every request signed HMAC-SHA256 with realm = the account id (oauth-1.0a). A 401 cannot be refreshed away. */
export function tbaAuthorizer(
  connection: string,
  account = NS_SIM_ACCOUNT,
  credentials: TbaCredentials = NS_SIM_TBA,
): Authorizer & { signed: number } {
  const oauth = new OAuth({
    consumer: { key: credentials.consumerKey, secret: credentials.consumerSecret },
    signature_method: 'HMAC-SHA256',
    realm: account,
    hash_function: (base, key) => createHmac('sha256', key).update(base).digest('base64'),
  });
  const authorizer = {
    signed: 0,
    async authorize(method: string, url: string) {
      authorizer.signed += 1;
      const header = oauth.toHeader(oauth.authorize({ url, method }, { key: credentials.tokenId, secret: credentials.tokenSecret }));
      return { authorization: header.Authorization };
    },
    async refresh() {
      throw new ReauthorizationRequired(connection, 'NetSuite refused the TBA token');
    },
  };
  return authorizer;
}

/** A bearer token from `issue` (e.g. the simulator's issueBearer), renewed once after a 401. */
export function bearerAuthorizer(issue: () => string): Authorizer & { refreshes: number } {
  let token = issue();
  const authorizer = {
    refreshes: 0,
    async authorize() {
      return { authorization: `Bearer ${token}` };
    },
    async refresh() {
      authorizer.refreshes += 1;
      token = issue();
    },
  };
  return authorizer;
}

export type MappingTable = Partial<Record<MappingKind, Record<string, string>>>;

/**
 * Mappings from a table; `identity` maps what the table lacks to the source itself (subsidiaries by id, the rest as
 * `eid:<source>`, a reference by external ID): the shape older tests posted with before mappings existed.
 */
export function tableMappings(
  connection: string,
  table: MappingTable,
  identity = false,
  unmapped: readonly MappingKind[] = [],
): MappingSource & { table: MappingTable } {
  return {
    connection,
    table,
    async load(): Promise<MappingResolver> {
      const find = (kind: MappingKind, source: string) =>
        table[kind]?.[source] ??
        (identity && !unmapped.includes(kind)
          ? kind === 'subsidiary'
            ? source
            : `eid:${source.replace(/[^A-Za-z0-9_-]/g, '-')}`
          : undefined);
      return {
        connection,
        find: (kind, source) => find(kind, source),
        resolve(kind, source, _on, field) {
          const target = find(kind, source);
          if (target === undefined) throw new MappingMissing(connection, kind, source, field);
          return target;
        },
      };
    },
  };
}

export interface NetSuiteTargetFor {
  name?: string;
  account?: string;
  /** Legal entity -> subsidiary id (the older tests' subsidiaryByEntity). */
  subsidiaries?: Record<string, string>;
  mappings?: MappingTable;
  /** Map what `mappings` lacks to the source itself (the older tests); false for strict tests. */
  identity?: boolean;
  /** Kinds the identity leaves unmapped (e.g. customer, so customers are created). */
  unmapped?: MappingKind[];
  customers?: ConnectionSettings['customers'];
  authorizer?: Authorizer;
  timeoutMs?: number;
  limits?: Partial<TargetLimits>;
  paymentsPageSize?: number;
  cashAccount?: string;
  concurrency?: number;
}

/** A NetSuiteTarget against a simulator at `url`, signing with the simulator's TBA credentials unless told otherwise. */
export function netsuiteTarget(url: string, options: NetSuiteTargetFor = {}): NetSuiteTarget {
  const name = options.name ?? 'netsuite';
  const settings: ConnectionSettings = {
    name,
    kind: 'netsuite',
    legal_entities: Object.keys(options.subsidiaries ?? {}),
    base_url: url,
    account_id: options.account ?? NS_SIM_ACCOUNT,
    auth: 'tba',
    ...(options.customers ? { customers: options.customers } : {}),
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
  };
  const table: MappingTable = { ...options.mappings, subsidiary: { ...options.subsidiaries, ...options.mappings?.subsidiary } };
  return new NetSuiteTarget({
    settings,
    caller: directCaller(name, options.authorizer ?? tbaAuthorizer(name, settings.account_id)),
    mappings: tableMappings(name, table, options.identity ?? true, options.unmapped),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.paymentsPageSize !== undefined ? { paymentsPageSize: options.paymentsPageSize } : {}),
    ...(options.cashAccount ? { cashAccount: () => options.cashAccount } : {}),
  });
}

/** References for building a record body directly (unit tests): the table, else the identity of tableMappings. */
export function tableReferences(table: MappingTable = {}, on = '2026-01-01'): References {
  const find = (kind: MappingKind, source: string) =>
    table[kind]?.[source] ?? (kind === 'subsidiary' ? source : `eid:${source.replace(/[^A-Za-z0-9_-]/g, '-')}`);
  return new References({ connection: 'test', find, resolve: (kind, source) => find(kind, source) }, on);
}
