// GET /v1/fx/rates: the stored exchange rates, or (with date, from and to) the rate a document of that date would use.
import { Type } from 'typebox';
import { isCurrency } from '../../domain/money.js';
import { fxRateAt, fxRateSource, listFxRates } from '../../map/fx-rates.js';
import { problemDetails, problemRef, refuse } from '../problem.js';
import { currencyString, dateString, textString } from '../params.js';
import type { RoutePlugin } from '../route-support.js';

const RatesQuery = Type.Object(
  {
    date: Type.Optional(dateString('with from and to: the rate a document of this date uses')),
    from: Type.Optional(currencyString()),
    to: Type.Optional(currencyString()),
    source: Type.Optional(textString('the rate source (default ACCRUE_FX_RATE_SOURCE or ecb)', { maxLength: 64 })),
    since: Type.Optional(dateString('list: only rates on or after this date')),
  },
  { additionalProperties: false },
);

const Rate = Type.Object({
  source: Type.String(),
  date: Type.String(),
  base: Type.String(),
  quote: Type.String(),
  rate: Type.String({ description: '1 base = rate quote, exact as published' }),
});

const RatesAnswer = Type.Object({
  rates: Type.Optional(Type.Array(Rate)),
  rate: Type.Optional(
    Type.Object({
      currency: Type.String({ description: 'the currency converted from' }),
      rate: Type.String({ description: '1 currency = rate of the currency converted into' }),
      rate_date: Type.String(),
      source: Type.String(),
      derived: Type.Optional(Type.String({ description: 'inverse or cross: not published as such, computed to 12 significant digits' })),
      via: Type.Optional(Type.String()),
    }),
  ),
});

const invalid = (path: string, message: string) =>
  refuse(problemDetails(400, 'invalid_query', 'the rate query is invalid', [{ path, code: 'invalid', message }]));

export const fxRoutes: RoutePlugin = async (app, { pool }) => {
  app.get(
    '/v1/fx/rates',
    {
      // Exchange rates are no legal entity's data: a key limited to entities reads them as any reader does.
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'Exchange rates',
        description:
          'Without `date`: the stored rates, newest first (at most 1000), filtered by `from` (base), `to` (quote), `source` and `since`. With `date`, `from` and `to`: the rate a document of that date converting `from` into `to` uses — the one published on the latest day on or before it (at most 7 days before), its inverse, or a cross through a common base.',
        tags: ['fx'],
        querystring: RatesQuery,
        response: { 200: RatesAnswer, 400: problemRef(), 404: problemRef() },
      },
    },
    async (request) => {
      const q = request.query;
      for (const [path, code] of [
        ['from', q.from],
        ['to', q.to],
      ] as const)
        if (code !== undefined && !isCurrency(code)) invalid(path, `${code} is not an ISO 4217 currency`);
      if (q.source !== undefined && !/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(q.source))
        invalid('source', 'must be lowercase letters, digits, ".", "_" or "-"');
      if (q.date === undefined) {
        const rates = await listFxRates(pool, {
          ...(q.source ? { source: q.source } : {}),
          ...(q.from ? { base: q.from } : {}),
          ...(q.to ? { quote: q.to } : {}),
          ...(q.since ? { since: q.since } : {}),
        });
        return { rates };
      }
      if (q.from === undefined || q.to === undefined) invalid(q.from === undefined ? 'from' : 'to', 'is required with date');
      if (q.from === q.to) invalid('to', `must differ from from (${q.from})`);
      const source = q.source ?? fxRateSource();
      const rate = await fxRateAt(pool, { date: q.date, from: q.from!, to: q.to!, source });
      if (!rate)
        refuse(
          problemDetails(404, 'fx_rate_missing', 'no usable rate', [
            {
              path: 'date',
              code: 'fx_rate_missing',
              message: `no ${source} rate for ${q.from}/${q.to} usable on ${q.date}; import one with accrue fx import`,
            },
          ]),
        );
      return { rate };
    },
  );
};
