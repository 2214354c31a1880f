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
  429: 'Too Many Requests: too many failed authentications from this client (or, for events, ingestion is lagging); see Retry-After',
  500: 'Internal Server Error: nothing was half-written',
  503: 'Service Unavailable',
};

const problemResponse = (status: number) => ({
  description: TITLES[status] ?? 'Error',
  content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } },
});

type Schema = Record<string, unknown>;

/**
 * Every documented operation's operationId: stable names clients generate code from, so a route is never renamed by
 * accident. A documented route missing here stops the server from starting (and test/integration/openapi.test.ts).
 */
export const OPERATION_IDS: Readonly<Record<string, string>> = Object.freeze({
  'POST /v1/events': 'ingestEvents',
  'GET /v1/events/explain': 'explainEvent',
  'PUT /v1/catalog': 'applyCatalog',
  'GET /v1/fx/rates': 'getFxRates',
  'GET /v1/catalog': 'getCatalog',
  'GET /v1/catalog/versions': 'listCatalogVersions',
  'GET /v1/usage': 'getUsage',
  'POST /v1/periods/:period/close': 'closePeriod',
  'GET /v1/periods/:period/reconciliation': 'getPeriodReconciliation',
  'GET /v1/invoices/:id': 'getInvoice',
  'GET /v1/invoices/:id/pdf': 'getInvoicePdf',
  'GET /v1/invoices/:id/explain': 'explainInvoice',
  'GET /v1/journals/:id/explain': 'explainJournal',
  'POST /v1/payments': 'receivePayment',
  'GET /v1/exceptions': 'listExceptions',
  'GET /v1/exceptions/:id': 'getException',
  'POST /v1/exceptions/:id/assign': 'assignException',
  'POST /v1/exceptions/:id/resolve': 'resolveException',
  'POST /v1/exceptions/:id/waive': 'waiveException',
  'GET /v1/changes': 'listChangeRequests',
  'GET /v1/changes/:id': 'getChangeRequest',
  'POST /v1/changes/:id/approve': 'approveChangeRequest',
  'POST /v1/changes/:id/reject': 'rejectChangeRequest',
  'POST /v1/changes/:id/cancel': 'cancelChangeRequest',
  'GET /v1/disputes': 'listDisputes',
  'GET /v1/disputes/:id': 'getDispute',
  'POST /v1/disputes': 'openDispute',
  'POST /v1/disputes/:id/assign': 'assignDispute',
  'POST /v1/disputes/:id/reject': 'rejectDispute',
  'POST /v1/disputes/:id/resolve': 'resolveDispute',
  'GET /v1/audit': 'listAuditRecords',
  'GET /v1/audit/verify': 'verifyAuditChain',
  'GET /v1/dlq': 'listDeadLetters',
  'POST /v1/dlq/:id/replay': 'replayDeadLetter',
  'GET /v1/dashboard/whoami': 'getDashboardIdentity',
  'GET /v1/dashboard/periods': 'listDashboardPeriods',
  'GET /v1/dashboard/overview': 'getDashboardOverview',
  'GET /v1/dashboard/pipeline': 'getPipelineHealth',
  'GET /v1/dashboard/invoices': 'searchInvoices',
  'GET /v1/dashboard/invoices/:id': 'getDashboardInvoice',
  'GET /v1/dashboard/customers': 'listCustomers',
  'GET /v1/dashboard/customers/:id/usage': 'getCustomerUsage',
  'GET /v1/dashboard/controls': 'getDashboardControls',
});

/** onRoute hook: gives a documented route its operationId from OPERATION_IDS. */
export function nameOperation(route: RouteOptions): void {
  const schema = route.schema as Schema | undefined;
  if (!schema || schema.hide) return;
  for (const method of ([] as string[]).concat(route.method)) {
    if (method === 'HEAD') continue; // Fastify's automatic HEAD for a GET, not in the document
    const id = OPERATION_IDS[`${method} ${route.url}`];
    if (!id) throw new Error(`no operationId for ${method} ${route.url}: add one to OPERATION_IDS in src/api/contract.ts`);
    schema.operationId ??= id;
  }
}

const isProblemRef = (schema: unknown) => typeof schema === 'object' && schema !== null && (schema as Schema).$ref === 'Problem#';

/** onRoute hook: adds the server-wide problem responses to a route's schema (in place, as @fastify/swagger reads it later). */
export function documentErrors(route: RouteOptions): void {
  const schema = route.schema as Schema | undefined;
  if (!schema || schema.hide) return;
  const methods = ([] as string[]).concat(route.method);
  const takesBody = methods.some((m) => ['POST', 'PUT', 'PATCH'].includes(m));
  const permission = route.config?.permission;
  const response = (schema.response ??= {}) as Record<string, unknown>;
  const statuses = new Set<number>([500]);
  if (takesBody || schema.params || schema.querystring || schema.body || schema.headers) statuses.add(400);
  if (permission && permission !== 'public') {
    statuses.add(401);
    statuses.add(403);
    statuses.add(429); // too many failed authentications from this client (src/api/auth-limit.ts)
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
