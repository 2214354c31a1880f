// The HTTP API: one Fastify instance, JSON schemas on every route, the OpenAPI 3.1 document generated from them.
import Fastify, { type FastifyInstance } from 'fastify';
import swagger, { type SwaggerOptions } from '@fastify/swagger';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { problemDetails, problemErrorHandler, ProblemSchema, sendProblem } from './problem.js';
import type { GroupCommitOptions } from '../ingest/group-commit.js';
import { registerMetricsRoute, type MetricsOptions } from './metrics.js';
import { documentErrors, nameOperation } from './contract.js';
import { AuthFailureLimiter, authenticate, type AuthFailureLimitOptions } from './auth-limit.js';
import { PARAM_LIMITS } from './params.js';
import { keyActor } from '../controls/keys.js';
import { unscopedRouteRefusal } from './entity-scope.js';
import { loggerOptions } from '../observe/log.js';
import { registerStrictJson, registerYamlText } from './json-body.js';
import { auditRoutes } from './routes/audit.js';
import { catalogRoutes } from './routes/catalog.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { dlqRoutes } from './routes/dlq.js';
import { eventRoutes } from './routes/events.js';
import { explainRoutes } from './routes/explain.js';
import { invoiceRoutes } from './routes/invoices.js';
import { paymentRoutes } from './routes/payments.js';
import { reconcileRoutes } from './routes/reconcile.js';
import { usageRoutes } from './routes/usage.js';
import { ChangeRequestSchema, changeRoutes } from './routes/changes.js';
import { disputeRoutes } from './routes/disputes.js';
import { fxRoutes } from './routes/fx.js';
import { DEFAULT_APPROVAL_REQUIRED, type ChangeKind } from '../domain/controls.js';

export interface ServerOptions {
  pool: pg.Pool;
  bodyLimitBytes?: number;
  logger?: boolean;
  futureSkewMsMax?: number;
  webhookSecret?: string;
  /** Single-event POST /v1/events: group commit and its queue bounds (src/ingest/group-commit.ts); false writes each alone. */
  groupCommit?: GroupCommitOptions | false;
  /** Who may read GET /metrics, and whether this app serves it (src/api/metrics.ts; docs/operations.md). */
  metrics?: MetricsOptions;
  /** Failed authentications per client before 429 (src/api/auth-limit.ts); tests pass a clock. */
  authFailureLimit?: AuthFailureLimitOptions;
  /** The change kinds that need a second person's approval; every one by default (src/domain/controls.ts). */
  approvalRequired?: readonly ChangeKind[];
}

/** Limits (documented in docs/api.md): bodies over this answer 413. */
export const BODY_LIMIT_BYTES_DEFAULT = 4 * 1024 * 1024;

declare module 'fastify' {
  interface FastifyInstance {
    /** The metrics this app counts and serves, for a /metrics on an address of its own. */
    metricsRegistry: Registry;
  }
}

/** The OpenAPI 3.1 document's frame; @fastify/swagger fills in the routes from their schemas. */
const SWAGGER_OPTIONS: SwaggerOptions = {
  // Shared schemas keep their $id as their name under components.schemas (Problem, not def-0).
  refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'Accrue API',
      version: '1',
      description:
        'Usage-to-cash: ingest, meter, rate, invoice, post, settle, reconcile. Every error is an RFC 9457 problem (application/problem+json); a method a path does not support is answered 405 with an Allow header.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/', description: 'the Accrue server that serves this document (GET /openapi.json)' }],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An Accrue API key (`accrue keys create`).' } },
      schemas: {},
    },
    security: [{ apiKey: [] }],
  },
};

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ? loggerOptions() : false,
    requestIdHeader: 'x-request-id', // a caller's request id carries into every log line of its request
    bodyLimit: options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT,
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
    // A path parameter as long as the longest id the schemas take, percent-encoded (at most 9 characters per UTF-16 unit),
    // so an id too long is refused by its schema, naming it, rather than by the router.
    routerOptions: { maxParamLength: PARAM_LIMITS.idLengthMax * 9 },
    // A path the router cannot decode (`%`, `%ED%A0%80`) is answered as a problem like every other 400.
    frameworkErrors: (error, _request, reply) => sendProblem(reply, problemDetails(400, 'bad_url', error.message)),
  });

  await app.register(swagger, SWAGGER_OPTIONS);

  app.addHook('onRoute', nameOperation);
  app.addHook('onRoute', documentErrors);
  // Every route's method by path pattern, so a known path asked with another method is answered 405, not 404.
  const methodsByPath = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  app.addHook('onRoute', (route) => {
    const entry = methodsByPath.get(route.url) ?? { pattern: routePattern(route.url), methods: new Set<string>() };
    for (const method of ([] as string[]).concat(route.method)) entry.methods.add(method);
    methodsByPath.set(route.url, entry);
  });

  const authFailures = new AuthFailureLimiter(options.authFailureLimit);

  app.addHook('onRequest', async (request, reply) => {
    const needed = request.routeOptions.config?.permission;
    if (!needed || needed === 'public') return;
    const auth = await authenticate(options.pool, authFailures, request, needed);
    if ('problem' in auth) {
      if (auth.retryAfterSeconds !== undefined) reply.header('retry-after', String(auth.retryAfterSeconds));
      return sendProblem(reply, auth.problem);
    }
    request.apiKey = auth.key;
    request.actor = keyActor(auth.key);
    const unscoped = unscopedRouteRefusal(request.actor, request.routeOptions.config, `${request.method} ${request.routeOptions.url}`);
    if (unscoped) return sendProblem(reply, unscoped);
  });

  app.setErrorHandler(problemErrorHandler(options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT));

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    const allowed = new Set<string>();
    for (const { pattern, methods } of methodsByPath.values()) if (pattern.test(path)) for (const method of methods) allowed.add(method);
    if (allowed.size > 0 && !allowed.has(request.method)) {
      const allow = [...allowed].sort().join(', ');
      reply.header('allow', allow);
      return sendProblem(reply, problemDetails(405, 'method_not_allowed', `${request.method} is not supported on ${path}; use ${allow}`));
    }
    return sendProblem(reply, problemDetails(404, 'not_found', `no route ${request.method} ${path}`));
  });

  app.addSchema({ $id: 'Problem', ...ProblemSchema });
  app.addSchema(ChangeRequestSchema);

  app.get('/healthz', { config: { permission: 'public' }, schema: { hide: true } }, async () => ({ ok: true }));
  app.get('/openapi.json', { config: { permission: 'public' }, schema: { hide: true } }, async () => app.swagger());

  await registerStrictJson(app); // every JSON body read strictly (src/api/json-body.ts)
  app.decorate('metricsRegistry', await registerMetricsRoute(app, options.pool, options.metrics));
  const deps = { pool: options.pool, approvalRequired: options.approvalRequired ?? DEFAULT_APPROVAL_REQUIRED };
  await app.register(eventRoutes, { ...deps, futureSkewMsMax: options.futureSkewMsMax, groupCommit: options.groupCommit });
  registerYamlText(app);
  await app.register(catalogRoutes, deps);
  await app.register(usageRoutes, deps);
  await app.register(invoiceRoutes, deps);
  await app.register(paymentRoutes, { ...deps, webhookSecret: options.webhookSecret });
  await app.register(reconcileRoutes, deps);
  await app.register(explainRoutes, deps);
  await app.register(auditRoutes, deps);
  await app.register(dlqRoutes, deps);
  await app.register(dashboardRoutes, deps);
  await app.register(changeRoutes, deps);
  await app.register(disputeRoutes, deps);
  await app.register(fxRoutes, deps);
  return app;
}

/** A route's URL pattern (`/v1/invoices/:id`) as a regular expression over a request's raw path: a parameter is one non-empty segment. */
function routePattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}
