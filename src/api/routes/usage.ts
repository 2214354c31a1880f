// GET /v1/usage: current usage per customer, meter and dimension; equal to a recount of the stored events.
import type { FastifyInstance } from 'fastify';
import { currentCatalog } from '../../catalog/service.js';
import { queryUsage } from '../../meter/usage.js';
import { monthWindow } from '../../meter/period.js';
import { problemDetails, sendProblem } from '../problem.js';
import { dateOrTimestamp, idString, textString } from '../params.js';
import type { ServerOptions } from '../server.js';

export async function registerUsageRoutes(app: FastifyInstance, options: ServerOptions): Promise<void> {
  app.get(
    '/v1/usage',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Usage per customer, meter and dimension',
        description:
          'Aggregates stored events by the meter aggregation. `from` and `to` default to the current calendar month (UTC). Late events (arrived after their period closed) are excluded unless `late=include` or `late=only`.',
        tags: ['usage'],
        querystring: {
          type: 'object',
          properties: {
            customer: idString('a customer id'),
            meter: idString('a meter id'),
            from: dateOrTimestamp('inclusive; a date (UTC midnight) or an RFC 3339 timestamp'),
            to: dateOrTimestamp('exclusive; a date (UTC midnight) or an RFC 3339 timestamp'),
            group_by: textString('comma-separated dimension keys', { maxLength: 1000 }),
            late: { type: 'string', enum: ['exclude', 'include', 'only'] },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              from: { type: 'string' },
              to: { type: 'string' },
              usage: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    customer: { type: 'string' },
                    meter: { type: 'string' },
                    dimensions: { type: 'object', additionalProperties: { type: 'string' } },
                    quantity: { type: 'string' },
                    event_count: { type: 'integer' },
                    first_event_time: { type: 'string' },
                    last_event_time: { type: 'string' },
                  },
                },
              },
            },
          },
          400: { $ref: 'Problem#' },
          409: { $ref: 'Problem#' },
        },
      },
    },
    async (request, reply) => {
      const query = request.query as {
        customer?: string;
        meter?: string;
        from?: string;
        to?: string;
        group_by?: string;
        late?: 'exclude' | 'include' | 'only';
      };
      const catalog = await currentCatalog(options.pool);
      if (!catalog) return sendProblem(reply, problemDetails(409, 'no_catalog', 'no catalog is in force'));
      const month = monthWindow(new Date());
      const from = query.from ?? month.from;
      const to = query.to ?? month.to;
      const result = await queryUsage(options.pool, catalog.catalog, {
        customer: query.customer,
        meter: query.meter,
        from,
        to,
        groupBy: query.group_by
          ? query.group_by
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : [],
        late: query.late,
      });
      if (!result.ok) return sendProblem(reply, problemDetails(400, 'invalid_query', 'the usage query is invalid', result.problems));
      return { from, to, usage: result.value };
    },
  );
}
