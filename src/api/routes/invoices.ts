// Billing runs and invoices over HTTP: close a period, read invoices as JSON or PDF.
import { Type } from 'typebox';
import { currentCatalog } from '../../catalog/service.js';
import { CloseFailedError, closePeriod } from '../../invoice/billing-run.js';
import { exportInvoice } from '../../invoice/export.js';
import { getInvoice } from '../../invoice/store.js';
import { renderInvoicePdf } from '../../invoice/pdf.js';
import { ProblemError } from '../../domain/result.js';
import { problemDetails, problemRef, refuse, type ProblemMapper } from '../problem.js';
import { idString, periodString, stringEnum } from '../params.js';
import type pg from 'pg';
import type { RouteApp, RoutePlugin } from '../route-support.js';

const MINOR = { type: 'string', pattern: '^-?[0-9]+$', description: 'minor units (cents), as a decimal string' } as const;
const MAJOR = { type: 'string', pattern: '^-?[0-9]+(\\.[0-9]+)?$', description: 'major units, exact decimal string' } as const;
const DATE = { type: 'string', format: 'date' } as const;
const open = { type: 'object', additionalProperties: true } as const;
/** Legal content recorded when the invoice was drafted (docs/catalog.md "Legal content"); absent or null on older documents. */
const PARTY = {
  type: ['object', 'null'],
  description: 'name, address (lines, city, region, postal_code, country) or null, tax_id or null',
  additionalProperties: true,
} as const;
const LEGAL = {
  issue_date: { ...DATE, description: 'the day after the billing period; a correction: that of the run issuing it' },
  payment_terms_days: { type: ['integer', 'null'], description: 'null on a credit note' },
  due_date: { type: ['string', 'null'], format: 'date', description: 'issue_date + payment_terms_days; null on a credit note' },
  seller: PARTY,
  buyer: PARTY,
} as const;

/** An invoice or credit note as stored (GET /v1/invoices/{id}): amounts in minor units; the lines carry their usage aggregate. */
const invoiceSchema = {
  type: 'object',
  required: [
    'id',
    'key',
    'kind',
    'number',
    'status',
    'legal_entity',
    'customer',
    'currency',
    'period_start',
    'period_end',
    'lines',
    'subtotal_minor',
    'discount_minor',
    'credits_applied_minor',
    'tax_minor',
    'total_minor',
    'rating_run',
  ],
  properties: {
    id: { type: 'string' },
    key: { type: 'string', description: 'the idempotency key: inv:v1:<entity>:<customer>:<currency>:<period> (credit notes cn:v1:...)' },
    kind: { type: 'string', enum: ['invoice', 'credit_note'] },
    corrects: { type: 'string', description: 'credit notes and replacements: the invoice id corrected' },
    number: { type: ['string', 'null'] },
    status: { type: 'string', enum: ['draft', 'finalized', 'void'] },
    legal_entity: { type: 'string' },
    customer: { type: 'string' },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    period_start: { ...DATE, description: 'inclusive' },
    period_end: { ...DATE, description: 'exclusive' },
    rounding: { type: 'string', enum: ['half_up', 'half_even'] },
    lines: { type: 'array', items: open },
    tax_lines: { type: 'array', items: open },
    subtotal_minor: MINOR,
    discount_minor: MINOR,
    credits_applied_minor: MINOR,
    tax_minor: MINOR,
    total_minor: MINOR,
    rating_run: { type: 'string' },
    ...LEGAL,
  },
  additionalProperties: true,
} as const;

/** An invoice as a billing run reports it: exact decimal amounts in major units (src/invoice/export.ts). */
const closedInvoiceSchema = {
  type: 'object',
  required: [
    'id',
    'number',
    'kind',
    'status',
    'customer',
    'legal_entity',
    'currency',
    'period_start',
    'period_end',
    'lines',
    'subtotal',
    'discount',
    'credits_applied',
    'tax',
    'total',
  ],
  properties: {
    id: { type: 'string' },
    number: { type: ['string', 'null'] },
    kind: { type: 'string', enum: ['invoice', 'credit_note'] },
    status: { type: 'string', enum: ['draft', 'finalized', 'void'] },
    corrects: { type: 'string' },
    customer: { type: 'string' },
    legal_entity: { type: 'string' },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    period_start: { ...DATE, description: 'inclusive' },
    period_end: { ...DATE, description: 'inclusive' },
    lines: { type: 'array', items: open },
    adjustments: { type: 'array', items: open },
    tax_lines: { type: 'array', items: open },
    subtotal: MAJOR,
    discount: MAJOR,
    credits_applied: MAJOR,
    tax: MAJOR,
    total: MAJOR,
    rounding: { type: 'string', enum: ['half_up', 'half_even'] },
    ...LEGAL,
    issue_date: { type: ['string', 'null'], format: 'date' },
  },
  additionalProperties: true,
} as const;

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
  invoices: Type.Array(Type.Unsafe<Record<string, unknown>>(closedInvoiceSchema)),
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
      config: { scope: 'admin', problems: closeProblems },
      schema: {
        summary: 'Run billing for a month',
        description:
          'Rates every subscription, drafts one invoice per customer, legal entity and currency, computes tax and finalizes. Re-running on the same inputs returns the same invoices. ' +
          'A month that has not ended is refused with 409 (period_not_ended) unless early=true, a month that has not begun always (period_in_future); both are recorded in the audit log. ' +
          'An invoice beyond the amount limits (docs/pricing.md#limits) is refused with 422 naming the customer and meter. The period is marked closed only once all its invoices exist: a failed close leaves it open (closing) and a new close resumes it.',
        tags: ['invoicing'],
        params: PeriodParams,
        querystring: CloseQuery,
        response: { 200: Closed, 400: problemRef(), 409: problemRef(), 422: problemRef() },
      },
    },
    async (request) => {
      const { period } = request.params;
      const { entity, early } = request.query;
      const catalog = await currentCatalog(pool);
      if (!catalog) refuse(problemDetails(409, 'no_catalog', 'no catalog is in force'));
      const outcome = await closePeriod(pool, catalog, {
        period,
        legalEntity: entity,
        early: early === 'true',
        by: `api-key:${request.apiKey?.id}`,
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

function invoiceRoute(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/invoices/:id',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'An invoice by id or number, as JSON (default) or PDF (Accept: application/pdf)',
        tags: ['invoicing'],
        params: InvoiceParams,
        response: { 200: Type.Unsafe<Record<string, unknown> | Buffer>(invoiceSchema), 404: problemRef(), 409: problemRef() },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const invoice = await getInvoice(pool, id);
      if (!invoice) refuse(problemDetails(404, 'not_found', `no invoice ${id}`));
      if ((request.headers.accept ?? '').includes('application/pdf')) {
        const catalog = await currentCatalog(pool);
        if (!catalog) refuse(problemDetails(409, 'no_catalog', 'no catalog is in force'));
        const legalEntity = catalog.index.legalEntities.get(invoice.legal_entity);
        const customer = catalog.index.customers.get(invoice.customer);
        if (!legalEntity || !customer)
          refuse(
            problemDetails(
              409,
              'not_in_catalog',
              `the catalog in force no longer has ${legalEntity ? `customer ${invoice.customer}` : `legal entity ${invoice.legal_entity}`}`,
            ),
          );
        const pdf = await renderInvoicePdf({
          invoice,
          legalEntity,
          customer,
          products: new Map(catalog.catalog.products.map((p) => [p.id, { name: p.name }])),
        });
        return reply.type('application/pdf').send(pdf);
      }
      return reply.send(JSON.parse(JSON.stringify(invoice, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))));
    },
  );
}
