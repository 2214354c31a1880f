// The Authorizer of a connection, chosen by its kind and auth (issue #15).
import type pg from 'pg';
import type { ConnectionSettings } from '../../domain/erp.js';
import type { Authorizer } from '../caller.js';
import { netsuiteClientCredentialsAuthorizer } from './netsuite-client-credentials.js';
import { netsuiteTbaAuthorizer } from './netsuite-tba.js';
import type { SecretKey } from './secret-box.js';
import { xeroAuthorizer } from './xero.js';

export function authorizerFor(pool: pg.Pool, settings: ConnectionSettings, key: SecretKey): Authorizer {
  if (settings.kind === 'xero') return xeroAuthorizer(pool, settings, key);
  return settings.auth === 'client_credentials'
    ? netsuiteClientCredentialsAuthorizer(pool, settings, key)
    : netsuiteTbaAuthorizer(pool, settings, key);
}

export { loadSecretKey, secretKeyFrom, seal, open, type SecretKey } from './secret-box.js';
export { saveCredentials, readCredentials } from './credentials.js';
export { markNeedsReauthorization, markReauthorized, reauthorizationExceptionId } from './reauthorization.js';
