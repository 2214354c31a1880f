// The HTTP API: one Fastify instance, JSON schemas on every route, the OpenAPI 3.1 document generated from them.
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type pg from 'pg';
import { findKey, grants, type ApiKey, type Scope } from './keys.js';
import { problemDetails, problemSchema, sendProblem } from './problem.js';
import { registerCatalogRoutes } from './routes/catalog.js';
import { registerEventRoutes } from './routes/events.js';
import type { GroupCommitOptions } from '../ingest/group-commit.js';
import { registerUsageRoutes } from './routes/usage.js';
import { registerInvoiceRoutes } from './routes/invoices.js';
import { registerMetricsRoute, type MetricsOptions } from './metrics.js';
import type { Registry } from 'prom-client';
import { documentErrors } from './contract.js';
import { loggerOptions } from '../observe/log.js';
import { registerPaymentRoutes } from './routes/payments.js';
import { registerReconcileRoutes } from './routes/reconcile.js';
import { registerExplainRoutes } from './routes/explain.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerDlqRoutes } from './routes/dlq.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerStrictJson } from './json-body.js';

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
}

/** Limits (documented in docs/api.md): bodies over this answer 413. */
export const BODY_LIMIT_BYTES_DEFAULT = 4 * 1024 * 1024;

declare module 'fastify' {
  interface FastifyContextConfig {
    scope?: Scope | 'public';
  }
  interface FastifyRequest {
    apiKey?: ApiKey;
  }
  interface FastifyInstance {
    /** The metrics this app counts and serves, for a /metrics on an address of its own. */
    metricsRegistry: Registry;
  }
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ? loggerOptions() : false,
    requestIdHeader: 'x-request-id', // a caller's request id carries into every log line of its request
    bodyLimit: options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT,
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
  });

  await app.register(swagger, {
    // Shared schemas keep their $id as their name under components.schemas (Problem, not def-0).
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Accrue API', version: '1', description: 'Usage-to-cash: ingest, meter, rate, invoice, post, settle, reconcile.' },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An Accrue API key (`accrue keys create`).' } },
        schemas: {},
      },
      security: [{ apiKey: [] }],
    },
  });

  app.addHook('onRoute', documentErrors);

  app.addHook('onRequest', async (request, reply) => {
    const needed = request.routeOptions.config?.scope;
    if (!needed || needed === 'public') return;
    const header = request.headers.authorization;
    const secret = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (!secret) return sendProblem(reply, problemDetails(401, 'unauthorized', 'send an API key as `Authorization: Bearer <key>`'));
    const key = await findKey(options.pool, secret);
    if (!key) return sendProblem(reply, problemDetails(401, 'unauthorized', 'unknown or revoked API key'));
    if (!grants(key.scope, needed)) {
      return sendProblem(reply, problemDetails(403, 'forbidden', `this key has the ${key.scope} scope; the route needs ${needed}`));
    }
    request.apiKey = key;
  });

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string; validation?: unknown[] }, _request, reply) => {
    if (error.validation) {
      const errors = (error.validation as Array<{ instancePath: string; message?: string; params?: Record<string, unknown> }>).map((v) => ({
        path: v.instancePath.replace(/^\//, '').replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.') + (v.params?.missingProperty ? `${v.instancePath ? '.' : ''}${String(v.params.missingProperty)}` : ''),
        code: 'invalid',
        message: v.message ?? 'is invalid',
      }));
      return sendProblem(reply, problemDetails(400, 'validation', 'the request does not match the schema', errors));
    }
    const status = error.statusCode ?? 500;
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendProblem(reply, problemDetails(413, 'body_too_large', `the body is over the limit of ${options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT} bytes`));
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendProblem(reply, problemDetails(415, 'unsupported_media_type', error.message));
    if (status < 500) return sendProblem(reply, problemDetails(status, 'bad_request', error.message));
    reply.log.error(error);
    return sendProblem(reply, problemDetails(500, 'internal', 'an internal error occurred; nothing was half-written'));
  });

  app.setNotFoundHandler((request, reply) => sendProblem(reply, problemDetails(404, 'not_found', `no route ${request.method} ${request.url}`)));

  app.addSchema({ $id: 'Problem', ...problemSchema });

  app.get('/healthz', { config: { scope: 'public' }, schema: { hide: true } }, async () => ({ ok: true }));
  app.get('/openapi.json', { config: { scope: 'public' }, schema: { hide: true } }, async () => app.swagger());

  await registerStrictJson(app); // every JSON body read strictly (src/api/json-body.ts)
  app.decorate('metricsRegistry', await registerMetricsRoute(app, options.pool, options.metrics));
  await registerEventRoutes(app, options);
  await registerCatalogRoutes(app, options);
  await registerUsageRoutes(app, options);
  await registerInvoiceRoutes(app, options);
  await registerPaymentRoutes(app, options);
  await registerReconcileRoutes(app, options);
  await registerExplainRoutes(app, options);
  await registerAuditRoutes(app, options);
  await registerDlqRoutes(app, options);
  await registerDashboardRoutes(app, options);
  return app;
}

export type { FastifyRequest };
