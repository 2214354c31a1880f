// Billing runs and invoices over HTTP: close a period, read invoices as JSON or PDF.
import { Type, type Static } from 'typebox';
import { currentCatalog } from '../../catalog/service.js';
import { CloseFailedError, closePeriod } from '../../close/close-period.js';
import { exportInvoice } from '../../invoice/export.js';
import { getInvoice } from '../../invoice/store.js';
import { invoicePdf } from '../../invoice/document-pdf.js';
import { ProblemError } from '../../domain/result.js';
import { problemDetails, problemRef, refuse, valueOr, type ProblemMapper } from '../problem.js';
import { idString, nullableString, periodString, stringEnum } from '../params.js';
import type pg from 'pg';
import type { FastifyRequest } from 'fastify';
import { entityFilter, hideUnlessVisible, scopeEntities } from '../entity-scope.js';
import { apiKeyActor, type RouteApp, type RoutePlugin } from '../route-support.js';

const MINOR = Type.String({ pattern: '^-?[0-9]+$', description: 'minor units (cents), as a decimal string' });
const MAJOR = Type.String({ pattern: '^-?[0-9]+(\\.[0-9]+)?$', description: 'major units, exact decimal string' });
const date = (description?: string) => Type.String({ format: 'date', ...(description ? { description } : {}) });
const open = Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true });
const KIND = stringEnum(['invoice', 'credit_note']);
const STATUS = stringEnum(['draft', 'finalized', 'void']);
const ROUNDING = stringEnum(['half_up', 'half_even']);
const CURRENCY = Type.String({ pattern: '^[A-Z]{3}$' });
/** Legal content recorded when the invoice was drafted (docs/catalog.md "Legal content"); absent or null on older documents. */
const PARTY = Type.Unsafe<Record<string, unknown> | null>({
  type: ['object', 'null'],
  description: 'name, address (lines, city, region, postal_code, country) or null, tax_id or null',
  additionalProperties: true,
});
const LEGAL = {
  issue_date: Type.Optional(date('the day after the billing period; a correction: that of the run issuing it')),
  payment_terms_days: Type.Optional(Type.Unsafe<number | null>({ type: ['integer', 'null'], description: 'null on a credit note' })),
  due_date: Type.Optional(
    Type.Unsafe<string | null>({
      type: ['string', 'null'],
      format: 'date',
      description: 'issue_date + payment_terms_days; null on a credit note',
    }),
  ),
  seller: Type.Optional(PARTY),
  buyer: Type.Optional(PARTY),
};

/** An invoice or credit note as stored (GET /v1/invoices/{id}): amounts in minor units; the lines carry their usage aggregate. */
const Invoice = Type.Object(
  {
    id: Type.String(),
    key: Type.String({
      description: 'the idempotency key: inv:v1:<entity>:<customer>:<currency>:<period> (credit notes cn:v1:...)',
    }),
    kind: KIND,
    corrects: Type.Optional(Type.String({ description: 'credit notes and replacements: the invoice id corrected' })),
    number: nullableString(),
    status: STATUS,
    legal_entity: Type.String(),
    customer: Type.String(),
    currency: CURRENCY,
    period_start: date('inclusive'),
    period_end: date('exclusive'),
    rounding: Type.Optional(ROUNDING),
    lines: Type.Array(open),
    tax_lines: Type.Optional(Type.Array(open)),
    subtotal_minor: MINOR,
    discount_minor: MINOR,
    credits_applied_minor: MINOR,
    tax_minor: MINOR,
    total_minor: MINOR,
    rating_run: Type.String(),
    ...LEGAL,
  },
  { additionalProperties: true },
);

/** The same schema; the handler may also answer the PDF (Accept: application/pdf), which the document does not list. */
const InvoiceOrPdf = Type.Unsafe<Static<typeof Invoice> | Buffer>(Invoice);

/** An invoice as a billing run reports it: exact decimal amounts in major units (src/invoice/export.ts). */
const ClosedInvoice = Type.Object(
  {
    id: Type.String(),
    number: nullableString(),
    kind: KIND,
    status: STATUS,
    corrects: Type.Optional(Type.String()),
    customer: Type.String(),
    legal_entity: Type.String(),
    currency: CURRENCY,
    period_start: date('inclusive'),
    period_end: date('inclusive'),
    lines: Type.Array(open),
    adjustments: Type.Optional(Type.Array(open)),
    tax_lines: Type.Optional(Type.Array(open)),
    subtotal: MAJOR,
    discount: MAJOR,
    credits_applied: MAJOR,
    tax: MAJOR,
    total: MAJOR,
    rounding: Type.Optional(ROUNDING),
    ...LEGAL,
    issue_date: Type.Optional(Type.Unsafe<string | null>({ type: ['string', 'null'], format: 'date' })),
  },
  { additionalProperties: true },
);

const CloseQuery = Type.Object(
  {
    entity: Type.Optional(idString('a legal entity; default: every one')),
    early: Type.Optional(
      stringEnum(['true', 'false'], { description: 'true: close a month that has not ended yet (recorded in the audit log)' }),
    ),
  },
  { additionalProperties: false },
);

const Closed = Type.Object({
  period: Type.String(),
  invoices: Type.Array(ClosedInvoice),
  early: Type.Optional(Type.Boolean()),
  resumed: Type.Optional(Type.Boolean()),
});

/** A refused close (a month not ended or not begun, a billing rule) or a failed one, as its problem. */
const closeProblems: ProblemMapper = (error, request) => {
  if (error instanceof ProblemError) {
    const first = error.problems[0]?.code;
    const code = first === 'period_not_ended' || first === 'period_in_future' ? first : 'billing_run';
    return problemDetails(error.status, code, error.message, error.problems);
  }
  if (error instanceof CloseFailedError) {
    request.log.error(error);
    return problemDetails(500, 'close_failed', error.summary);
  }
  return undefined;
};

const PeriodParams = Type.Object({ period: periodString() }, { additionalProperties: false });
const InvoiceParams = Type.Object({ id: idString('an invoice id or number') }, { additionalProperties: false });

export const invoiceRoutes: RoutePlugin = async (app, { pool }) => {
  closeRoute(app, pool);
  invoiceRoute(app, pool);
};

function closeRoute(app: RouteApp, pool: pg.Pool): void {
  app.post(
    '/v1/periods/:period/close',
    {
      config: { permission: 'billing.run', problems: closeProblems, entityScope: 'scoped' },
      schema: {
        summary: 'Run billing for a month',
        description:
          'Rates every subscription, drafts one invoice per customer, legal entity and currency, computes tax and finalizes. Re-running on the same inputs returns the same invoices. ' +
          'A month that has not ended is refused with 409 (period_not_ended) unless early=true, a month that has not begun always (period_in_future); both are recorded in the audit log. ' +
          'An invoice beyond the amount limits (docs/pricing.md#limits) is refused with 422 naming the customer and meter. The period is marked closed only once all its invoices exist: a failed close leaves it open (closing) and a new close resumes it.',
        tags: ['invoicing'],
        params: PeriodParams,
        querystring: CloseQuery,
        response: { 200: Closed, 400: problemRef(), 403: problemRef(), 409: problemRef(), 422: problemRef() },
      },
    },
    async (request) => {
      const { period } = request.params;
      const { early } = request.query;
      const entity = closeEntity(request, request.query.entity);
      const catalog = await currentCatalog(pool);
      if (!catalog) refuse(problemDetails(409, 'no_catalog', 'no catalog is in force'));
      const outcome = await closePeriod(pool, catalog, {
        period,
        legalEntity: entity,
        early: early === 'true',
        by: apiKeyActor(request),
        log: (line) => request.log.info(line),
      });
      return {
        period: outcome.period,
        invoices: outcome.invoices.map((i) => ({ id: i.id, ...exportInvoice(i) })),
        early: outcome.early,
        resumed: outcome.resumed,
      };
    },
  );
}

/** The entity a close runs for: a key limited to entities closes one of them, named; every entity needs an unlimited key. */
function closeEntity(request: FastifyRequest, named: string | undefined): string | undefined {
  const entity = entityFilter(request, named);
  const limited = scopeEntities(request);
  if (entity === undefined && limited)
    refuse(
      problemDetails(
        403,
        'entity_not_permitted',
        `entity: this key is limited to ${limited.join(', ')}; a close of every entity needs a key without entity limits`,
        [{ path: 'entity', code: 'required', message: `name one of ${limited.join(', ')}` }],
      ),
    );
  return entity;
}

function invoiceRoute(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/invoices/:id',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'An invoice by id or number, as JSON (default) or PDF (Accept: application/pdf)',
        tags: ['invoicing'],
        params: InvoiceParams,
        response: { 200: InvoiceOrPdf, 404: problemRef(), 409: problemRef() },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const invoice = await getInvoice(pool, id, { entities: scopeEntities(request) });
      if (!invoice) refuse(problemDetails(404, 'not_found', `no invoice ${id}`));
      hideUnlessVisible(request, invoice.legal_entity, `no invoice ${id}`);
      if ((request.headers.accept ?? '').includes('application/pdf')) {
        const catalog = await currentCatalog(pool);
        if (!catalog) refuse(problemDetails(409, 'no_catalog', 'no catalog is in force'));
        const pdf = valueOr(await invoicePdf(invoice, catalog), ([p]) => problemDetails(409, 'not_in_catalog', p!.message));
        return reply.type('application/pdf').send(pdf);
      }
      return reply.send(JSON.parse(JSON.stringify(invoice, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))));
    },
  );
}
