// What the route plugins share with the server without importing it: their dependencies, the typed plugin shape and
// the request fields the server fills (scope, API key).
import type pg from 'pg';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { ApiKey, Scope } from './keys.js';
import type { ProblemMapper } from './problem.js';

/** What every route reads and writes through: the database pool its use cases take. */
export interface RouteDeps {
  pool: pg.Pool;
}

/** A route module: a Fastify plugin typed by its schemas (TypeBox), its dependencies given as options. */
export type RoutePlugin<Options extends object = object> = FastifyPluginAsyncTypebox<RouteDeps & Options>;

declare module 'fastify' {
  interface FastifyContextConfig {
    scope?: Scope | 'public';
    /** Failures this route's use cases raise, as problems (src/api/problem.ts answers them). */
    problems?: ProblemMapper;
  }
  interface FastifyRequest {
    apiKey?: ApiKey;
  }
}

/** Who made a request, as the audit log names it. */
export const apiKeyActor = (request: FastifyRequest): string => `api-key:${request.apiKey?.id ?? 'unknown'}`;

/** The typed Fastify instance a route plugin is given, for the functions that register its routes. */
export type RouteApp = Parameters<RoutePlugin>[0];
