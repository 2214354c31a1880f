// The calling side of an ERP connection (issue #15): how a request is authorized (src/connectors/auth) and the one
// way a connector calls its ERP (ErpCaller: shared limits in erp-caller.ts, authorization, one refresh after a 401).
import { callScope } from '../post/target.js';
import { httpSend } from './http.js';

/** Authorizes requests for one connection: a bearer token, or a TBA `Authorization` header signed for this request. */
export interface Authorizer {
  /** Headers that authorize this one request. Throws ReauthorizationRequired when the connection has no usable credentials. */
  authorize(method: string, url: string): Promise<Record<string, string>>;
  /**
   * After a 401 to a request authorized with `rejected`: obtain a new access token (refreshing under the row lock, so
   * one refresh token is never spent twice) unless another worker already has. Throws ReauthorizationRequired when
   * the ERP refuses the refresh or the grant is revoked; the connection is then `needs_reauthorization`.
   */
  refresh(rejected: Record<string, string>): Promise<void>;
}

export interface CallInit {
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

/**
 * The one way a connector calls its ERP: waits for the connection's limits (shared by every process through
 * Postgres), authorizes, and after a 401 refreshes once and repeats the call. Answers whatever status the ERP gave;
 * throws TargetError on a network failure or timeout, ReauthorizationRequired or ConnectionParked.
 */
export interface ErpCaller {
  readonly connection: string;
  call(method: string, url: string, init?: CallInit): Promise<Response>;
}

/** Adds one call to the scope the outbox opened (src/post/target.ts callScope), if any. */
export const countCall = (): void => {
  const scope = callScope.getStore();
  if (scope) scope.calls += 1;
};

/** An ErpCaller with no shared limits: authorization and the one retry after a 401 only (checks, tests, one-off calls). */
export function directCaller(connection: string, authorizer: Authorizer, defaultTimeoutMs = 30_000): ErpCaller {
  const once = (method: string, url: string, init: CallInit, auth: Record<string, string>) => {
    countCall();
    return httpSend(connection, method, url, {
      headers: { ...init.headers, ...auth },
      body: init.body,
      timeoutMs: init.timeoutMs ?? defaultTimeoutMs,
    });
  };
  return {
    connection,
    async call(method, url, init = {}) {
      const auth = await authorizer.authorize(method, url);
      const res = await once(method, url, init, auth);
      if (res.status !== 401) return res;
      await res.body?.cancel();
      await authorizer.refresh(auth);
      return once(method, url, init, await authorizer.authorize(method, url));
    },
  };
}
