// POST /v1/payments: a signed webhook (HMAC over the raw body with a timestamp); bad signatures, stale timestamps
// and replayed deliveries are refused; each payment applies once. In order: the signature (401), the JSON and its
// schema (400, the field named), the payment's own rules (400), then one transaction that records the delivery as
// received and applies the payment: a request refused or failed at any step leaves its delivery unspent, so the
// sender's retry with the same signature is taken.
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { currentCatalog } from '../../catalog/service.js';
import { ProblemError, type Problem } from '../../domain/result.js';
import { applyPayment, validatePayment, verifyWebhook } from '../../settle/payments.js';
import { amountString, currencyString, dateString, idString, stringEnum } from '../params.js';
import { problemDetails, problemRef, refuse, valueOr, type ProblemMapper } from '../problem.js';
import { refusedBodyProblem, strictTextParser } from '../json-body.js';
import { parseStrictJson } from '../../domain/strict-json.js';
import type { RoutePlugin } from '../route-support.js';

const Payment = Type.Object(
  {
    id: idString("the payment's id at its source: each applies once"),
    invoice: idString('the invoice number or id it pays'),
    amount: amountString("major units, an exact decimal string greater than 0, with at most the currency's minor digits"),
    currency: currencyString(),
    received_on: dateString('the day the money was received, YYYY-MM-DD'),
  },
  { additionalProperties: false },
);

const Outcome = Type.Object(
  {
    status: stringEnum(['applied', 'duplicate', 'exception'], {
      description: 'duplicate: this payment id was already applied with the same content',
    }),
    payment_id: Type.String(),
    invoice: Type.Optional(Type.String({ description: 'applied: the invoice number' })),
    payment_status: Type.Optional(stringEnum(['partially_paid', 'paid'])),
    amount_paid: Type.Optional(
      Type.String({ pattern: '^[0-9]+$', description: "applied: the invoice's amount paid so far, in minor units" }),
    ),
    exception: Type.Optional(Type.String({ description: 'exception: the exception opened for finance operations' })),
    kind: Type.Optional(stringEnum(['payment_unmatched', 'payment_currency_mismatch', 'payment_overpayment'])),
  },
  { additionalProperties: false },
);

const SignatureHeaders = Type.Object({
  'accrue-signature': Type.Optional(
    Type.String({ maxLength: 200, description: 't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">' }),
  ),
});

/** A conflict applying the payment: a replayed delivery, or the payment id applied before with other content. */
const paymentProblems: ProblemMapper = (error) => {
  if (!(error instanceof ProblemError)) return undefined;
  const code = error.problems[0]?.code === 'replayed_delivery' ? 'replayed_delivery' : 'payment_conflict';
  return problemDetails(error.status, code, error.message, error.problems);
};

/** The body as sent, which the signature covers; the strict reader's refusal, reported once the signature is checked. */
const rawBodies = new WeakMap<FastifyRequest, { raw: string; problems?: readonly Problem[] }>();

export const paymentRoutes: RoutePlugin<{ webhookSecret?: string }> = async (scope, { pool, webhookSecret }) => {
  // Its own encapsulation context (a plugin): this route reads the raw body, since the signature covers the bytes as sent.
  scope.removeContentTypeParser('application/json');
  // UTF-8 decoded fatally (src/api/json-body.ts: an invalid byte is a RefusedBody, answered 400 before anything else);
  // the text is kept for the signature and read by the strict reader, whose refusal is answered once the signature is checked.
  scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    strictTextParser(request, body, (error, text) => {
      if (error || typeof text !== 'string') return done(error, text);
      const parsed = parseStrictJson(text, { refuseProtoKeys: true });
      rawBodies.set(request, parsed.ok ? { raw: text } : { raw: text, problems: parsed.problems });
      done(null, parsed.ok ? parsed.value : undefined);
    });
  });
  scope.post(
    '/v1/payments',
    {
      config: { permission: 'public', problems: paymentProblems },
      // Before the schema: an unsigned request learns nothing about the body it sent.
      preValidation: async (request) => {
        if (!webhookSecret) refuse(problemDetails(503, 'webhook_not_configured', 'set ACCRUE_WEBHOOK_SECRET to receive payments'));
        const body = rawBodies.get(request);
        const raw = body?.raw ?? (typeof request.body === 'string' ? request.body : '');
        const signature = verifyWebhook(webhookSecret, raw, request.headers['accrue-signature'], Math.floor(Date.now() / 1000));
        if (!signature.ok) refuse(problemDetails(401, 'invalid_signature', signature.problems[0]!.message, signature.problems));
        if (body?.problems !== undefined) refuse(refusedBodyProblem(body.problems));
        request.webhookSignature = signature.value.signature;
      },
      schema: {
        summary: 'Receive a payment (signed webhook)',
        description:
          'Header `Accrue-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with the shared secret; the body is application/json. Each payment id applies once; overpayments, currency mismatches and unmatched payments become exceptions. A delivery counts as received only when its payment is applied (or becomes an exception): a refused request can be retried with the same signature.',
        tags: ['settlement'],
        security: [],
        headers: SignatureHeaders,
        body: Payment,
        response: { 200: Outcome, 400: problemRef(), 401: problemRef(), 409: problemRef(), 503: problemRef() },
      },
    },
    async (request) => {
      const payment = valueOr(validatePayment(request.body), (problems) =>
        problemDetails(400, 'invalid_payment', 'the payment was refused; nothing was applied', problems),
      );
      const catalog = await currentCatalog(pool);
      if (!catalog) refuse(problemDetails(409, 'no_catalog', 'no catalog is in force'));
      const outcome = await applyPayment(pool, catalog, payment, 'webhook', { delivery: request.webhookSignature });
      return JSON.parse(JSON.stringify(outcome, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    },
  );
};

declare module 'fastify' {
  interface FastifyRequest {
    /** POST /v1/payments: the verified signature, recorded as received in the transaction that applies the payment. */
    webhookSignature?: string;
  }
}
