// The API contract's error half: every documented route lists the RFC 9457 problems it can answer with, as
// application/problem+json, without each route repeating them. Routes keep the errors they declare themselves
// (404 for a lookup, 409 for a conflict); this adds the ones the server answers for every route of a kind.
import type { RouteOptions } from 'fastify';

const TITLES: Record<number, string> = {
  400: 'Bad Request: the request does not match the schema (or the body is not valid JSON); `errors` names each field by path',
  401: 'Unauthorized: no API key, or an unknown or revoked one',
  403: 'Forbidden: the API key has a scope this route does not accept',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Content Too Large: the body or the batch is over its limit',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error: nothing was half-written',
  503: 'Service Unavailable',
};

const problemResponse = (status: number) => ({
  description: TITLES[status] ?? 'Error',
  content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } },
});

type Schema = Record<string, unknown>;

const isProblemRef = (schema: unknown) => typeof schema === 'object' && schema !== null && (schema as Schema).$ref === 'Problem#';

/** onRoute hook: adds the server-wide problem responses to a route's schema (in place, as @fastify/swagger reads it later). */
export function documentErrors(route: RouteOptions): void {
  const schema = route.schema as Schema | undefined;
  if (!schema || schema.hide) return;
  const methods = ([] as string[]).concat(route.method);
  const takesBody = methods.some((m) => ['POST', 'PUT', 'PATCH'].includes(m));
  const scope = route.config?.scope;
  const response = (schema.response ??= {}) as Record<string, unknown>;
  const statuses = new Set<number>([500]);
  if (takesBody || schema.params || schema.querystring || schema.body || schema.headers) statuses.add(400);
  if (scope && scope !== 'public') {
    statuses.add(401);
    statuses.add(403);
  }
  if (takesBody) {
    statuses.add(413);
    statuses.add(415);
  }
  // Problems a route declares itself are written in the same form as the ones added here.
  for (const [code, declared] of Object.entries(response)) {
    const status = Number(code);
    if (status >= 400 && isProblemRef(declared)) response[code] = problemResponse(status);
  }
  for (const status of statuses) response[String(status)] ??= problemResponse(status);
}
