// Opens a configured ERP connection's connector (credentials from the store, the shared limits, the ERP client).
// PLACEHOLDER until merge: the connector helpers provide the real one (XeroTarget / NetSuiteTarget with
// checkReference); until then `accrue erp check` says plainly that the connection cannot be looked up.
import type pg from 'pg';
import type { ConnectionSettings, ReferenceChecker } from './connection.js';
import { ProblemError } from '../domain/result.js';

export async function openConnection(_pool: pg.Pool, settings: ConnectionSettings): Promise<{ target: ReferenceChecker }> {
  throw new ProblemError([{ path: `erp.connections.${settings.name}`, code: 'no_connector', message: `${settings.kind} connection ${settings.name} has no connector to look mappings up in the ERP yet` }]);
}
