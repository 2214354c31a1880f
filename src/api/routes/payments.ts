// POST /v1/payments: a signed webhook (HMAC over the raw body with a timestamp); bad signatures, stale timestamps
// and replayed deliveries are refused; each payment applies once.
import type { FastifyInstance } from 'fastify';
import { currentCatalog } from '../../catalog/service.js';
import { ProblemError } from '../../domain/result.js';
import { applyPayment, validatePayment, verifyWebhook } from '../../settle/payments.js';
import { problemDetails, sendProblem } from '../problem.js';
import { refusedBodyProblem, strictTextParser } from '../json-body.js';
import { parseStrictJson } from '../../domain/strict-json.js';
import type { ServerOptions } from '../server.js';

export async function registerPaymentRoutes(app: FastifyInstance, options: ServerOptions): Promise<void> {
  // Own encapsulation context: this route reads the raw body, since the signature covers the bytes as sent.
  await app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, strictTextParser); // UTF-8 decoded fatally (src/api/json-body.ts)
    scope.post(
      '/v1/payments',
      {
        config: { scope: 'public' },
        schema: {
          summary: 'Receive a payment (signed webhook)',
          description: 'Body: {id, invoice (number or id), amount (decimal string, major units), currency, received_on}. Header `Accrue-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with the shared secret. Each payment id applies once; overpayments, currency mismatches and unmatched payments become exceptions.',
          tags: ['settlement'],
          security: [],
          body: { type: 'string' },
          response: { 200: { type: 'object', additionalProperties: true }, 400: { $ref: 'Problem#' }, 401: { $ref: 'Problem#' }, 409: { $ref: 'Problem#' }, 503: { $ref: 'Problem#' } },
        },
      },
      async (request, reply) => {
        if (!options.webhookSecret) return sendProblem(reply, problemDetails(503, 'webhook_not_configured', 'set ACCRUE_WEBHOOK_SECRET to receive payments'));
        const raw = String(request.body ?? '');
        const signature = verifyWebhook(options.webhookSecret, raw, request.headers['accrue-signature'] as string | undefined, Math.floor(Date.now() / 1000));
        if (!signature.ok) return sendProblem(reply, problemDetails(401, 'invalid_signature', signature.problems[0]!.message, signature.problems));
        const delivery = await options.pool.query('INSERT INTO webhook_deliveries (signature) VALUES ($1) ON CONFLICT DO NOTHING', [signature.value.signature]);
        if (delivery.rowCount === 0) return sendProblem(reply, problemDetails(409, 'replayed_delivery', 'this signed delivery was already received'));
        const body = parseStrictJson(raw, { refuseProtoKeys: true });
        if (!body.ok) return sendProblem(reply, refusedBodyProblem(body.problems));
        const payment = validatePayment(body.value);
        if (!payment.ok) return sendProblem(reply, problemDetails(400, 'invalid_payment', 'the payment was refused; nothing was applied', payment.problems));
        const catalog = await currentCatalog(options.pool);
        if (!catalog) return sendProblem(reply, problemDetails(409, 'no_catalog', 'no catalog is in force'));
        try {
          const outcome = await applyPayment(options.pool, catalog, payment.value, 'webhook');
          return JSON.parse(JSON.stringify(outcome, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
        } catch (error) {
          if (error instanceof ProblemError) return sendProblem(reply, problemDetails(error.status, 'payment_conflict', error.message, error.problems));
          throw error;
        }
      },
    );
  });
}
