// Billing runs and invoices over HTTP: close a period, read invoices as JSON or PDF.
import type { FastifyInstance } from 'fastify';
import { currentCatalog } from '../../catalog/service.js';
import { closePeriod } from '../../invoice/billing-run.js';
import { exportInvoice } from '../../invoice/export.js';
import { getInvoice } from '../../invoice/store.js';
import { renderInvoicePdf } from '../../invoice/pdf.js';
import { ProblemError } from '../../domain/result.js';
import { problemDetails, sendProblem } from '../problem.js';
import type { ServerOptions } from '../server.js';

const invoiceSchema = { type: 'object', additionalProperties: true } as const;

export async function registerInvoiceRoutes(app: FastifyInstance, options: ServerOptions): Promise<void> {
  app.post(
    '/v1/periods/:period/close',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Run billing for a month',
        description: 'Rates every subscription, drafts one invoice per customer, legal entity and currency, computes tax and finalizes. Re-running on the same inputs returns the same invoices.',
        tags: ['invoicing'],
        params: { type: 'object', required: ['period'], properties: { period: { type: 'string', pattern: '^\\d{4}-(0[1-9]|1[0-2])$' } } },
        querystring: { type: 'object', properties: { entity: { type: 'string' } }, additionalProperties: false },
        response: { 200: { type: 'object', properties: { period: { type: 'string' }, invoices: { type: 'array', items: invoiceSchema } } }, 400: { $ref: 'Problem#' }, 409: { $ref: 'Problem#' } },
      },
    },
    async (request, reply) => {
      const { period } = request.params as { period: string };
      const { entity } = request.query as { entity?: string };
      const catalog = await currentCatalog(options.pool);
      if (!catalog) return sendProblem(reply, problemDetails(409, 'no_catalog', 'no catalog is in force'));
      try {
        const outcome = await closePeriod(options.pool, catalog, { period, legalEntity: entity, by: `api-key:${request.apiKey?.id}`, log: (line) => request.log.info(line) });
        return { period: outcome.period, invoices: outcome.invoices.map((i) => ({ id: i.id, ...exportInvoice(i) })) };
      } catch (error) {
        if (error instanceof ProblemError) return sendProblem(reply, problemDetails(error.status, 'billing_run', error.message, error.problems));
        throw error;
      }
    },
  );

  app.get(
    '/v1/invoices/:id',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'An invoice by id or number, as JSON (default) or PDF (Accept: application/pdf)',
        tags: ['invoicing'],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
        response: { 200: invoiceSchema, 404: { $ref: 'Problem#' } },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const invoice = await getInvoice(options.pool, id);
      if (!invoice) return sendProblem(reply, problemDetails(404, 'not_found', `no invoice ${id}`));
      if ((request.headers.accept ?? '').includes('application/pdf')) {
        const catalog = (await currentCatalog(options.pool))!;
        const pdf = await renderInvoicePdf({
          invoice,
          legalEntity: catalog.index.legalEntities.get(invoice.legal_entity)!,
          customer: catalog.index.customers.get(invoice.customer)!,
          products: new Map(catalog.catalog.products.map((p) => [p.id, { name: p.name }])),
        });
        return reply.type('application/pdf').send(pdf);
      }
      return reply.send(JSON.parse(JSON.stringify(invoice, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))));
    },
  );
}
