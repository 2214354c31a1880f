// What the route plugins share with the server without importing it: their dependencies, the typed plugin shape and
// the request fields the server fills (scope, API key).
import type pg from 'pg';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { ApiKey } from '../controls/keys.js';
import { auditActor, type Actor, type ChangeKind, type Permission } from '../domain/controls.js';
import type { ProblemMapper } from './problem.js';

/** What every route reads and writes through: the database pool its use cases take. */
export interface RouteDeps {
  pool: pg.Pool;
  /** The change kinds that need a second person's approval (configuration `controls.approval_required`). */
  approvalRequired: readonly ChangeKind[];
}

/** A route module: a Fastify plugin typed by its schemas (TypeBox), its dependencies given as options. */
export type RoutePlugin<Options extends object = object> = FastifyPluginAsyncTypebox<RouteDeps & Options>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route needs (src/domain/controls.ts), or public. */
    permission?: Permission | 'public';
    /** Failures this route's use cases raise, as problems (src/api/problem.ts answers them). */
    problems?: ProblemMapper;
  }
  interface FastifyRequest {
    apiKey?: ApiKey;
    /** Who is acting: the key's principal, its roles and entity limits (set with apiKey). */
    actor?: Actor;
  }
}

/** Who made a request, as the audit log names it. */
export const apiKeyActor = (request: FastifyRequest): string => (request.actor ? auditActor(request.actor) : 'unknown');

/** The authenticated actor of a request on a route that is not public (the server refuses the request before otherwise). */
export function requestActor(request: FastifyRequest): Actor {
  if (!request.actor) throw new Error('invariant violated: a route that needs a permission ran without an authenticated actor');
  return request.actor;
}

/** The typed Fastify instance a route plugin is given, for the functions that register its routes. */
export type RouteApp = Parameters<RoutePlugin>[0];
