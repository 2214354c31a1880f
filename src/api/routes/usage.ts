// GET /v1/usage: current usage per customer, meter and dimension; equal to a recount of the stored events.
import { Type } from 'typebox';
import { currentCatalog } from '../../catalog/service.js';
import { queryUsage } from '../../meter/usage.js';
import { monthWindow } from '../../meter/period.js';
import { problemDetails, problemRef, refuse, valueOr } from '../problem.js';
import { dateOrTimestamp, idString, stringEnum, textString } from '../params.js';
import type { RoutePlugin } from '../route-support.js';
import { visibleTo } from '../entity-scope.js';

const UsageQuery = Type.Object(
  {
    customer: Type.Optional(idString('a customer id')),
    meter: Type.Optional(idString('a meter id')),
    from: Type.Optional(dateOrTimestamp('inclusive; a date (UTC midnight) or an RFC 3339 timestamp')),
    to: Type.Optional(dateOrTimestamp('exclusive; a date (UTC midnight) or an RFC 3339 timestamp')),
    group_by: Type.Optional(textString('comma-separated dimension keys', { maxLength: 1000 })),
    late: Type.Optional(stringEnum(['exclude', 'include', 'only'])),
  },
  { additionalProperties: false },
);

const UsageAnswer = Type.Object({
  from: Type.Optional(Type.String()),
  to: Type.Optional(Type.String()),
  usage: Type.Optional(
    Type.Array(
      Type.Object({
        customer: Type.Optional(Type.String()),
        meter: Type.Optional(Type.String()),
        dimensions: Type.Optional(Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' } })),
        quantity: Type.Optional(Type.String()),
        event_count: Type.Optional(Type.Integer()),
        first_event_time: Type.Optional(Type.String()),
        last_event_time: Type.Optional(Type.String()),
      }),
    ),
  ),
});

export const usageRoutes: RoutePlugin = async (app, { pool }) => {
  app.get(
    '/v1/usage',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'Usage per customer, meter and dimension',
        description:
          'Aggregates stored events by the meter aggregation. `from` and `to` default to the current calendar month (UTC). Late events (arrived after their period closed) are excluded unless `late=include` or `late=only`.',
        tags: ['usage'],
        querystring: UsageQuery,
        response: { 200: UsageAnswer, 400: problemRef(), 409: problemRef() },
      },
    },
    async (request) => {
      const query = request.query;
      const catalog = await currentCatalog(pool);
      if (!catalog) refuse(problemDetails(409, 'no_catalog', 'no catalog is in force'));
      if (query.customer && !visibleTo(request, catalog.index.customers.get(query.customer)?.legal_entity))
        refuse(
          problemDetails(400, 'invalid_query', 'the usage query is invalid', [
            {
              path: 'customer',
              code: 'unknown_customer',
              message: `no customer ${JSON.stringify(query.customer)} in the catalog in force`,
            },
          ]),
        );
      const month = monthWindow(new Date());
      const from = query.from ?? month.from;
      const to = query.to ?? month.to;
      const result = await queryUsage(pool, catalog.catalog, {
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
      const usage = valueOr(result, (problems) => problemDetails(400, 'invalid_query', 'the usage query is invalid', problems));
      // A key limited to entities sees the usage of its entities' customers only (the catalog names each one's entity).
      const visible = usage.filter((row) => visibleTo(request, catalog.index.customers.get(row.customer)?.legal_entity));
      return { from, to, usage: visible };
    },
  );
};
