// The dashboard: its page and bundle at `/` (public: they hold no data), and the read endpoints only it needs
// (overview, pipeline health, invoice search, customers and their usage), plus an invoice's PDF by URL.
// Every figure leaves as a decimal string in major units; the browser converts to numbers only to draw charts.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { Type, type TProperties } from 'typebox';
import { currentCatalog, type CatalogVersion } from '../../catalog/service.js';
import { dashboardAssets } from '../../dashboard/assets.js';
import { REFUSAL_ACTIONS } from '../../controls/changes.js';
import { controlsView } from '../../dashboard/controls.js';
import { customerUsage, listCustomers, USAGE_BUCKETS_MAX } from '../../dashboard/customers.js';
import {
  INVOICE_PAGE_MAX,
  invoiceStatement,
  invoiceStatementSchema,
  searchInvoices,
  type InvoiceSearch,
} from '../../dashboard/invoices.js';
import { periodOverview } from '../../dashboard/overview.js';
import { PIPELINE_LIMITS, pipelineHealth } from '../../dashboard/pipeline.js';
import { getInvoice } from '../../invoice/store.js';
import { listBillingMonths } from '../../invoice/queries.js';
import { invoicePdf } from '../../invoice/document-pdf.js';
import { problemDetails, problemRef, refuse, valueOr } from '../problem.js';
import { dateString, idString, integerString, nullableString, periodString, stringEnum, textString } from '../params.js';
import { requestActor, type RouteApp, type RoutePlugin } from '../route-support.js';
import { entityFilter, scopeEntities, visibleTo } from '../entity-scope.js';
import { CHANGE_KINDS, PERMISSIONS, ROLES, rolesGrant } from '../../domain/controls.js';

// Requests take the formats of src/api/params.ts; answers may name the day after the last supported one (an exclusive end).
const PERIOD = periodString();
const MONTH_OUT = Type.String({ pattern: '^[0-9]{4}-(0[1-9]|1[0-2])$' });
const DAY_OUT = Type.String({ format: 'date' });
const MONEY = Type.String({ pattern: '^-?\\d+(\\.\\d+)?$', description: 'a decimal string in major units' });
const str = Type.String();
const nullableStr = nullableString();
const int = Type.Integer();
const problems = { 400: problemRef(), 404: problemRef(), 409: problemRef() };

/** An answer object: every property present, no other. */
const object = <P extends TProperties>(properties: P) => Type.Object(properties, { additionalProperties: false });

const overviewSchema = object({
  period: MONTH_OUT,
  start_date: DAY_OUT,
  end_date: Type.String({ format: 'date', description: 'exclusive' }),
  days: Type.Array(DAY_OUT, {
    description: 'the chart axis: the days of the period and on to its last activity (close, postings, payments)',
  }),
  entities: Type.Array(
    object({ id: str, name: str, currency: str, status: stringEnum(['open', 'closing', 'closed']), closed_at: nullableStr }),
  ),
  totals: Type.Array(
    object({
      legal_entity: str,
      currency: str,
      usage: MONEY,
      unbilled: MONEY,
      invoiced: MONEY,
      posted: MONEY,
      paid: MONEY,
      outstanding: MONEY,
      invoices: int,
    }),
  ),
  series: Type.Array(
    object({
      legal_entity: str,
      currency: str,
      usage: Type.Array(MONEY),
      unbilled: Type.Array(MONEY),
      invoiced: Type.Array(MONEY),
      posted: Type.Array(MONEY),
      paid: Type.Array(MONEY),
    }),
    { description: 'running totals at the end of each day of `days`' },
  ),
  events: Type.Array(object({ legal_entity: str, per_day: Type.Array(int), total: int, late: int })),
  kpis: Type.Array(
    object({
      id: str,
      label: str,
      unit: stringEnum(['count', 'money', 'ratio', 'seconds']),
      currency: nullableStr,
      value: nullableString({ description: 'a decimal string; null when there is nothing to measure yet' }),
      previous: nullableString({ description: 'the previous period; null for measures of the present state' }),
    }),
  ),
  group: Type.Union(
    [
      object({
        currency: str,
        rate_source: str,
        rate_date: DAY_OUT,
        unbilled: MONEY,
        invoiced: MONEY,
        outstanding: MONEY,
        missing: Type.Array(str, { description: 'currencies without a usable rate: left out of the group totals' }),
      }),
      Type.Null(),
    ],
    { description: 'the totals in the group reporting currency (ACCRUE_REPORTING_CURRENCY); null without one' },
  ),
});

const ingestCounts = { received: int, accepted: int, duplicates: int, conflicts: int, rejected: int, quarantined: int };
const pipelineSchema = object({
  window: object({ from: str, to: str, hours: int, bucket: stringEnum(['minute', 'hour', 'day']) }),
  ingestion: object({
    totals: object({ ...ingestCounts, batches: int }),
    rate_per_second: object({ last_5_minutes: MONEY, last_hour: MONEY }),
    series: Type.Array(object({ at: str, ...ingestCounts })),
  }),
  quarantine: object({
    pending: int,
    by_reason: Type.Array(object({ reason: str, pending: int, oldest: str })),
    recent: Type.Array(object({ seq: str, source: str, id: str, reason: str, received_at: str })),
  }),
  connectors: Type.Array(
    object({
      target: str,
      pending: int,
      posted: int,
      dead: int,
      oldest_pending_seconds: Type.Unsafe<number | null>({ type: ['integer', 'null'] }),
      replays: int,
      status: nullableStr,
      parked_until: nullableStr,
      waiting: int,
    }),
  ),
});

const invoiceSummarySchema = object({
  id: str,
  number: nullableStr,
  kind: stringEnum(['invoice', 'credit_note']),
  status: str,
  legal_entity: str,
  customer: str,
  customer_name: nullableStr,
  currency: str,
  period: str,
  total: MONEY,
  amount_paid: MONEY,
  payment_status: str,
  finalized_at: nullableStr,
  posting: stringEnum(['posted', 'pending', 'dead', 'none']),
});

const customerSchema = object({
  id: str,
  name: str,
  legal_entity: str,
  parent: nullableStr,
  tenants: Type.Array(str),
  subscriptions: Type.Array(object({ plan: str, start: str, end: nullableStr })),
  events: int,
  last_event_time: nullableStr,
  balances: Type.Array(object({ currency: str, invoiced: MONEY, paid: MONEY, outstanding: MONEY })),
});

const usageSchema = object({
  customer: str,
  from: DAY_OUT,
  to: DAY_OUT,
  bucket: stringEnum(['day', 'month']),
  buckets: Type.Array(str),
  meters: Type.Array(
    object({
      meter: str,
      aggregation: str,
      quantities: Type.Array(Type.String({ description: 'an exact decimal' })),
      events: Type.Array(int),
      late_events: int,
    }),
  ),
});

const nullableInt = Type.Unsafe<number | null>({ type: ['integer', 'null'] });
const controlsSchema = object({
  counts: object({ pending: int, approved: int, rejected: int, cancelled: int, refusals: int }),
  oldest_pending_seconds: nullableInt,
  pending: Type.Array(
    object({
      id: str,
      kind: stringEnum(CHANGE_KINDS),
      subject: str,
      legal_entity: nullableStr,
      summary: str,
      diff: Type.String({ description: 'the readable difference an approver reviews' }),
      reason: nullableStr,
      requested_by: str,
      requested_by_name: str,
      requested_at: str,
      age_seconds: int,
    }),
    { description: 'waiting for a controller, the longest waiting first' },
  ),
  decisions: Type.Array(
    object({
      id: str,
      kind: stringEnum(CHANGE_KINDS),
      subject: str,
      legal_entity: nullableStr,
      summary: str,
      status: stringEnum(['approved', 'rejected', 'cancelled']),
      requested_by_name: str,
      decided_by_name: str,
      decided_at: str,
      decision_note: nullableStr,
    }),
    { description: 'the latest decisions, newest first' },
  ),
  refusals: Type.Array(
    object({
      seq: str,
      at: str,
      action: stringEnum(REFUSAL_ACTIONS),
      subject: Type.String({ description: 'the change request id, or for a refused proposal the subject it concerned' }),
      actor: str,
      by_name: nullableStr,
      attempted: nullableString({ description: 'propose, approve, reject or cancel' }),
      status: nullableInt,
      code: nullableStr,
      message: nullableStr,
      kind: nullableStr,
      legal_entity: nullableStr,
    }),
    { description: 'the latest refused proposals and decisions, from the audit log, newest first' },
  ),
});

/** The catalog in force, or the 409 problem the dashboard routes answer without one. */
async function catalogOr409(pool: pg.Pool): Promise<CatalogVersion> {
  const catalog = await currentCatalog(pool);
  if (!catalog)
    refuse(problemDetails(409, 'no_catalog', 'no catalog is in force; apply one with `accrue catalog apply FILE` or PUT /v1/catalog'));
  return catalog;
}

const IdParams = (description: string) => Type.Object({ id: idString(description) }, { additionalProperties: false });

const InvoiceSearchQuery = Type.Object(
  {
    q: Type.Optional(textString('matches a number, an id, a customer id or name', { maxLength: 200 })),
    period: Type.Optional(PERIOD),
    customer: Type.Optional(idString('a customer id')),
    legal_entity: Type.Optional(idString('a legal entity')),
    status: Type.Optional(stringEnum(['draft', 'finalized', 'void'])),
    payment_status: Type.Optional(stringEnum(['unpaid', 'partially_paid', 'paid'])),
    limit: Type.Optional(integerString(1n, BigInt(INVOICE_PAGE_MAX), `1 to ${INVOICE_PAGE_MAX}, default 50`)),
    offset: Type.Optional(integerString(0n, 999_999_999n, 'invoices to skip, default 0')),
  },
  { additionalProperties: false },
);

const UsageQuery = Type.Object(
  {
    from: dateString('inclusive (UTC)'),
    to: dateString('exclusive (UTC)'),
    bucket: Type.Optional(stringEnum(['day', 'month'])),
  },
  { additionalProperties: false },
);

/** The usage window's checks beyond its schema: real dates, from before to, at most USAGE_BUCKETS_MAX buckets. */
function usageWindowProblems(q: { from: string; to: string }, bucket: 'day' | 'month') {
  const errors = [];
  for (const field of ['from', 'to'] as const)
    if (Number.isNaN(Date.parse(`${q[field]}T00:00:00Z`)))
      errors.push({ path: field, code: 'not_date', message: 'must be a calendar date' });
  if (errors.length === 0 && q.from >= q.to) errors.push({ path: 'to', code: 'empty_window', message: 'must be after from' });
  const span = (Date.parse(`${q.to}T00:00:00Z`) - Date.parse(`${q.from}T00:00:00Z`)) / 86_400_000;
  if (errors.length === 0 && (bucket === 'day' ? span : span / 28) > USAGE_BUCKETS_MAX)
    errors.push({ path: 'to', code: 'too_long', message: `at most ${USAGE_BUCKETS_MAX} ${bucket}s` });
  return errors;
}

/** Assets are re-validated by ETag, so a restarted server with a new bundle is picked up at once. */
function sendAsset(request: FastifyRequest, reply: FastifyReply, type: string, body: string, version: string) {
  const etag = `"${version}"`;
  reply.header('etag', etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  return reply.type(type).send(body);
}

export const dashboardRoutes: RoutePlugin = async (app, { pool }) => {
  const asset = { config: { permission: 'public' as const }, schema: { hide: true } };
  app.get('/', asset, async (request, reply) => {
    const assets = await dashboardAssets();
    // The page talks to this origin only; the PDF opens from a blob URL the page made.
    reply.header(
      'content-security-policy',
      "default-src 'self'; connect-src 'self' blob:; img-src 'self' data: blob:; frame-src blob:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    return sendAsset(request, reply, 'text/html; charset=utf-8', assets.html, assets.version);
  });
  app.get('/dashboard/app.js', asset, async (request, reply) => {
    const assets = await dashboardAssets();
    return sendAsset(request, reply, 'text/javascript; charset=utf-8', assets.js, assets.version);
  });
  app.get('/dashboard/app.css', asset, async (request, reply) => {
    const assets = await dashboardAssets();
    return sendAsset(request, reply, 'text/css; charset=utf-8', assets.css, assets.version);
  });

  periodRoutes(app, pool);
  searchRoutes(app, pool);
  customerRoutes(app, pool);
  pdfRoute(app, pool);
  controlsRoute(app, pool);
};

function controlsRoute(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/dashboard/controls',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary:
          'Four eyes at a glance: change requests waiting for a controller with their diffs, the latest decisions, the latest refusals (from the audit log) and counts',
        description:
          'A key limited to legal entities sees the requests and refusals of its entities only; a request that concerns every entity is shown to unlimited keys only.',
        tags: ['dashboard'],
        response: { 200: controlsSchema },
      },
    },
    async (request) => controlsView(pool, requestActor(request).entities),
  );
}

/** The months of the periods list; for a key limited to entities, counting only theirs (their customers' events). */
async function billingMonths(pool: pg.Pool, entities: readonly string[] | undefined) {
  if (!entities) return listBillingMonths(pool);
  const catalog = await currentCatalog(pool);
  const customers = (catalog?.catalog.customers ?? []).filter((c) => entities.includes(c.legal_entity)).map((c) => c.id);
  return listBillingMonths(pool, undefined, { entities, customers });
}

function periodRoutes(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/dashboard/whoami',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary:
          "The API key making the request, its principal's roles and what they permit (the dashboard shows an action only to keys that may take it)",
        tags: ['dashboard'],
        response: {
          200: object({
            id: str,
            name: str,
            principal: str,
            roles: Type.Array(stringEnum(ROLES)),
            entities: Type.Array(str, { description: 'the legal entities the key may see; empty: every entity' }),
            permissions: Type.Array(stringEnum(PERMISSIONS)),
          }),
        },
      },
    },
    async (request) => {
      const key = request.apiKey!;
      const roles = [...key.principal.roles];
      return {
        id: key.id,
        name: key.name,
        principal: key.principal.name,
        roles,
        entities: [...key.entities],
        permissions: PERMISSIONS.filter((p) => rolesGrant(roles, p)),
      };
    },
  );

  app.get(
    '/v1/dashboard/periods',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'Months with usage, invoices or a billing period, newest first, with the status of each legal entity',
        tags: ['dashboard'],
        response: {
          200: object({
            periods: Type.Array(object({ period: MONTH_OUT, closed_entities: Type.Array(str), invoices: int })),
          }),
        },
      },
    },
    async (request) => ({ periods: await billingMonths(pool, scopeEntities(request)) }),
  );

  app.get(
    '/v1/dashboard/overview',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'A period at a glance: usage, unbilled, invoiced, posted and paid per legal entity and currency, per day, with KPIs',
        description:
          'usage is the estimated invoice total (tax included) if the period closed with the usage up to each day; unbilled is that estimate for customers not yet invoiced for the period; invoiced nets credit notes and voids by the day they were finalized or voided; posted counts a document once every ERP entry is posted (or, with no ERP target, once journaled); paid counts applied payments by the day received.',
        tags: ['dashboard'],
        querystring: Type.Object({ period: PERIOD }, { additionalProperties: false }),
        response: { 200: overviewSchema, 400: problemRef(), 409: problemRef() },
      },
    },
    async (request) => periodOverview(pool, await catalogOr409(pool), request.query.period, scopeEntities(request)),
  );
}

function searchRoutes(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/dashboard/pipeline',
    {
      config: { permission: 'data.read' },
      schema: {
        summary: 'Pipeline health: ingestion outcomes over time, quarantine, and per ERP connector the backlog and dead letters',
        tags: ['dashboard'],
        querystring: Type.Object(
          {
            hours: Type.Optional(
              integerString(
                1n,
                BigInt(PIPELINE_LIMITS.hoursMax),
                `how far back ingestion is charted, 1 to ${PIPELINE_LIMITS.hoursMax} (default 24)`,
              ),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: pipelineSchema, 400: problemRef() },
      },
    },
    async (request) => pipelineHealth(pool, { hours: Number.parseInt(request.query.hours ?? '24', 10) }),
  );

  app.get(
    '/v1/dashboard/invoices',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'Search invoices and credit notes by number, id, customer (id or name), period, legal entity and status',
        tags: ['dashboard'],
        querystring: InvoiceSearchQuery,
        response: { 200: object({ total: int, invoices: Type.Array(invoiceSummarySchema) }), 400: problemRef() },
      },
    },
    async (request) => {
      const q = request.query;
      const search: InvoiceSearch = {
        q: q.q || undefined,
        period: q.period,
        customer: q.customer,
        legal_entity: entityFilter(request, q.legal_entity, 'legal_entity'),
        entities: scopeEntities(request),
        status: q.status,
        payment_status: q.payment_status,
        limit: Number.parseInt(q.limit ?? '50', 10),
        offset: Number.parseInt(q.offset ?? '0', 10),
      };
      return searchInvoices(pool, await currentCatalog(pool), search);
    },
  );
}

function customerRoutes(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/dashboard/invoices/:id',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary:
          "One invoice's statement: subtotal, discounts, credits, tax per jurisdiction and total, with its seller, buyer and due date",
        tags: ['dashboard'],
        params: IdParams('an invoice id or number'),
        response: { 200: invoiceStatementSchema, 400: problemRef(), 404: problemRef() },
      },
    },
    async (request) => {
      const { id } = request.params;
      const invoice = await getInvoice(pool, id, { entities: scopeEntities(request) });
      if (!invoice) refuse(problemDetails(404, 'not_found', `no invoice ${id}`));
      return invoiceStatement(invoice);
    },
  );

  app.get(
    '/v1/dashboard/customers',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'Customers of the catalog in force, with their events and what they were invoiced, paid and owe per currency',
        tags: ['dashboard'],
        response: { 200: object({ customers: Type.Array(customerSchema) }), 409: problemRef() },
      },
    },
    async (request) => ({ customers: await listCustomers(pool, await catalogOr409(pool), scopeEntities(request)) }),
  );

  app.get(
    '/v1/dashboard/customers/:id/usage',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: "A customer's usage over time per meter, per day or month, aggregated as rating aggregates (late events counted apart)",
        tags: ['dashboard'],
        params: IdParams('a customer id'),
        querystring: UsageQuery,
        response: { 200: usageSchema, ...problems },
      },
    },
    async (request) => {
      const { id } = request.params;
      const q = request.query;
      const catalog = await catalogOr409(pool);
      const customer = catalog.index.customers.get(id);
      if (!customer || !visibleTo(request, customer.legal_entity))
        refuse(problemDetails(404, 'not_found', `no customer ${id} in the catalog in force`));
      const bucket = q.bucket ?? 'day';
      const errors = usageWindowProblems(q, bucket);
      if (errors.length > 0) refuse(problemDetails(400, 'validation', 'the request does not match the schema', errors));
      return customerUsage(pool, catalog, id, { from: q.from, to: q.to, bucket });
    },
  );
}

function pdfRoute(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/invoices/:id/pdf',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'An invoice or credit note as PDF, by id or number',
        tags: ['invoicing'],
        params: IdParams('an invoice or credit note id or number'),
        response: {
          200: Type.Unsafe<Buffer>({
            description: 'the PDF',
            content: { 'application/pdf': { schema: { type: 'string', format: 'binary' } } },
          }),
          404: problemRef(),
          409: problemRef(),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const invoice = await getInvoice(pool, id, { entities: scopeEntities(request) });
      if (!invoice) refuse(problemDetails(404, 'not_found', `no invoice ${id}`));
      const catalog = await catalogOr409(pool);
      const pdf = valueOr(await invoicePdf(invoice, catalog), ([p]) => problemDetails(409, 'not_in_catalog', p!.message));
      return reply
        .type('application/pdf')
        .header('content-disposition', `inline; filename="${(invoice.number ?? invoice.id).replace(/[^A-Za-z0-9._-]/g, '_')}.pdf"`)
        .send(pdf);
    },
  );
}
