// Opens a configured ERP connection: its credentials (sealed in the store, opened with the operator's key), the
// limits every process shares through Postgres, its mappings from the store, and the ERP's client.
import type pg from 'pg';
import { currentCatalog } from '../catalog/service.js';
import { ProblemError } from '../domain/result.js';
import { mappingSource } from '../map/resolver.js';
import { authorizerFor } from './auth/index.js';
import { loadSecretKey } from './auth/secret-box.js';
import type { ConnectionSettings } from '../domain/erp.js';
import { saveConnections } from './connections.js';
import { sharedCaller } from './erp-caller.js';
import { NetSuiteTarget } from './netsuite/client.js';
import { XeroTarget } from './xero/client.js';

export interface OpenedConnection {
  settings: ConnectionSettings;
  target: XeroTarget | NetSuiteTarget;
}

export async function openConnection(
  pool: pg.Pool,
  settings: ConnectionSettings,
  env: NodeJS.ProcessEnv = process.env,
): Promise<OpenedConnection> {
  const caller = sharedCaller(pool, settings, authorizerFor(pool, settings, loadSecretKey(env)));
  const mappings = mappingSource(pool, settings.name);
  // The cash account of each legal entity (the account a payment journal debits): the source of a pushed payment's
  // account mapping.
  const catalog = await currentCatalog(pool);
  const cashAccount = (entity: string) => catalog?.catalog.accounts[entity]?.cash;
  // The caller enforces the ERP's limits across every process; no per-process rate on top of it.
  const limits = { requestsPerMinute: Number.POSITIVE_INFINITY };
  const customerOf = (erpCustomerId: string) => catalog?.catalog.customers.find((c) => c.erp_customer_id === erpCustomerId)?.id;
  const target =
    settings.kind === 'xero'
      ? new XeroTarget({ settings, caller, mappings, cashAccount, limits })
      : new NetSuiteTarget({ settings, caller, mappings, cashAccount, limits, customerOf });
  return { settings, target };
}

/**
 * The configured connections (erp.connections), saved to the store and opened: every one, or those named. A name
 * that is not configured is refused with the names that are.
 */
export async function openConfigured(
  pool: pg.Pool,
  configured: readonly ConnectionSettings[],
  names?: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<OpenedConnection[]> {
  if (configured.length === 0) {
    throw new ProblemError([
      {
        path: 'erp.connections',
        code: 'no_connections',
        message: 'no ERP connection is configured: add erp.connections to accrue.config.yaml (docs/connectors.md)',
      },
    ]);
  }
  const chosen = (names ?? configured.map((c) => c.name)).map((name) => {
    const found = configured.find((c) => c.name === name);
    if (!found)
      throw new ProblemError([
        {
          path: '--connection',
          code: 'unknown_connection',
          message: `no connection ${JSON.stringify(name)} is configured; configured: ${configured.map((c) => c.name).join(', ')}`,
        },
      ]);
    return found;
  });
  const saved = await saveConnections(pool, configured);
  if (!saved.ok) throw new ProblemError(saved.problems);
  return Promise.all(chosen.map((settings) => openConnection(pool, settings, env)));
}

/** `a,b` from a flag as a list of names; undefined or blank: none given. */
export function connectionNames(value: string | undefined): string[] | undefined {
  const names = (value ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  return names.length ? names : undefined;
}
