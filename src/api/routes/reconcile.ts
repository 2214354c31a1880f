// Reconciliation over HTTP: where a period stands (compared live, nothing recorded), the exception queues, and the
// lifecycle moves (assign, resolve with the correcting document, waive with a reason), each audited.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProblemError, type Result } from '../../domain/result.js';
import {
  getException,
  listExceptions,
  moveException,
  problemStatus,
  type ExceptionMove,
  type ExceptionRecord,
} from '../../reconcile/exceptions.js';
import { reconcilePeriod } from '../../reconcile/run.js';
import { problemDetails, sendProblem } from '../problem.js';
import { idString, integerString, periodString, textString } from '../params.js';
import type { ServerOptions } from '../server.js';

const nullableString = { type: ['string', 'null'] } as const;
const keySchema = {
  type: 'object',
  required: ['legal_entity', 'customer', 'currency', 'item'],
  properties: { legal_entity: { type: 'string' }, customer: { type: 'string' }, currency: { type: 'string' }, item: { type: 'string' } },
} as const;
const documentSchema = {
  type: 'object',
  required: ['kind', 'id'],
  properties: { kind: { type: 'string' }, id: { type: 'string' }, connector: { type: 'string' } },
} as const;

const reportSchema = {
  type: 'object',
  required: ['period', 'legal_entities', 'connectors', 'recorded', 'status', 'checkpoints', 'open_exceptions'],
  properties: {
    period: { type: 'string' },
    legal_entities: { type: 'array', items: { type: 'string' } },
    connectors: { type: 'array', items: { type: 'string' } },
    recorded: { type: 'boolean' },
    status: { type: 'string', enum: ['green', 'red'] },
    checkpoints: {
      type: 'array',
      items: {
        type: 'object',
        required: ['checkpoint', 'legal_entity', 'connector', 'owner_queue', 'status', 'compared', 'pending', 'differences'],
        properties: {
          checkpoint: { type: 'string' },
          legal_entity: { type: 'string' },
          connector: nullableString,
          owner_queue: { type: 'string' },
          description: { type: 'string' },
          status: { type: 'string', enum: ['green', 'red'] },
          compared: { type: 'object', properties: { left: { type: 'integer' }, right: { type: 'integer' } } },
          pending: { type: 'integer' },
          differences: {
            type: 'array',
            items: {
              type: 'object',
              required: ['exception_id', 'kind', 'key', 'left', 'right', 'difference'],
              properties: {
                exception_id: { type: 'string' },
                kind: { type: 'string', enum: ['missing_left', 'missing_right', 'amount_differs', 'duplicate'] },
                key: keySchema,
                left: nullableString,
                right: nullableString,
                difference: { type: 'string', description: 'right - left: minor units for money, an exact decimal for quantities' },
                occurrences: { type: 'object', properties: { left: { type: 'integer' }, right: { type: 'integer' } } },
                documents: { type: 'array', items: documentSchema },
                opened: { type: 'boolean' },
                status: nullableString,
              },
            },
          },
        },
      },
    },
    opened: { type: 'array', items: { type: 'string' } },
    cleared: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          checkpoint: { type: 'string' },
          legal_entity: { type: 'string' },
          item: { type: 'string' },
          status: { type: 'string' },
        },
      },
    },
    open_exceptions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          legal_entity: { type: 'string' },
          owner_queue: { type: 'string' },
          open: { type: 'integer' },
          assigned: { type: 'integer' },
        },
      },
    },
  },
} as const;

const exceptionSchema = {
  type: 'object',
  required: ['id', 'kind', 'owner_queue', 'status'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    owner_queue: { type: 'string' },
    status: { type: 'string', enum: ['open', 'assigned', 'resolved', 'waived'] },
    subject: { type: 'string' },
    checkpoint: nullableString,
    period: nullableString,
    legal_entity: nullableString,
    customer: nullableString,
    currency: nullableString,
    connector: nullableString,
    item: nullableString,
    left_amount: nullableString,
    right_amount: nullableString,
    difference: nullableString,
    documents: { type: 'array', items: documentSchema },
    details: {},
    assigned_to: nullableString,
    resolution_document: nullableString,
    waived_reason: nullableString,
    waived_by: nullableString,
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
    last_seen_at: nullableString,
    cleared_at: nullableString,
  },
} as const;

const eventSchema = {
  type: 'object',
  properties: {
    ordinal: { type: 'integer' },
    action: { type: 'string' },
    from_status: nullableString,
    to_status: { type: 'string' },
    actor: { type: 'string' },
    at: { type: 'string' },
    reason: nullableString,
    details: {},
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: idString('an exception id') },
  additionalProperties: false,
} as const;
const moveResponses = { 200: exceptionSchema, 400: { $ref: 'Problem#' }, 404: { $ref: 'Problem#' }, 409: { $ref: 'Problem#' } };

/** The actor of a move: the person named in the body, else the API key that made the request. */
const actorOf = (request: FastifyRequest, by: string | undefined): string =>
  by && by.trim() !== '' ? by : `api-key:${request.apiKey?.id ?? 'unknown'}`;

function answer(reply: FastifyReply, result: Result<ExceptionRecord>) {
  if (!result.ok)
    return sendProblem(
      reply,
      problemDetails(problemStatus(result.problems), 'exception_move_refused', 'the move was refused; nothing changed', result.problems),
    );
  return result.value;
}

export async function registerReconcileRoutes(app: FastifyInstance, options: ServerOptions): Promise<void> {
  app.get(
    '/v1/periods/:period/reconciliation',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Where a period stands: every checkpoint green or with its differences',
        description:
          'Compares the checkpoints live for the built-in ledger (usage, rating, invoice lines, ledger postings, payments, trial balance) and lists the open exceptions per queue. Nothing is recorded: `accrue reconcile` or closing the period opens the exceptions.',
        tags: ['reconciliation'],
        params: { type: 'object', required: ['period'], properties: { period: periodString() }, additionalProperties: false },
        querystring: {
          type: 'object',
          properties: { entity: idString('a legal entity; default: every one') },
          additionalProperties: false,
        },
        response: { 200: reportSchema, 400: { $ref: 'Problem#' }, 404: { $ref: 'Problem#' }, 409: { $ref: 'Problem#' } },
      },
    },
    async (request, reply) => {
      const { period } = request.params as { period: string };
      const { entity } = request.query as { entity?: string };
      try {
        return await reconcilePeriod(options.pool, { period, legalEntity: entity, record: false });
      } catch (error) {
        if (error instanceof ProblemError)
          return sendProblem(reply, problemDetails(error.status, 'reconciliation', error.message, error.problems));
        throw error;
      }
    },
  );

  app.get(
    '/v1/exceptions',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Exceptions by queue, status, period, legal entity or checkpoint, oldest first',
        tags: ['reconciliation'],
        querystring: {
          type: 'object',
          properties: {
            queue: { type: 'string', enum: ['billing_engineering', 'integration_support', 'finance_operations'] },
            status: { type: 'string', enum: ['open', 'assigned', 'resolved', 'waived', 'unresolved'] },
            period: periodString(),
            entity: idString('a legal entity'),
            checkpoint: idString('a checkpoint'),
            limit: integerString(1n, 1000n, '1 to 1000, default 100'),
          },
          additionalProperties: false,
        },
        response: {
          200: { type: 'object', required: ['exceptions'], properties: { exceptions: { type: 'array', items: exceptionSchema } } },
          400: { $ref: 'Problem#' },
        },
      },
    },
    async (request, reply) => {
      const q = request.query as { queue?: string; status?: string; period?: string; entity?: string; checkpoint?: string; limit?: string };
      const listed = await listExceptions(options.pool, {
        queue: q.queue,
        status: q.status,
        period: q.period,
        legalEntity: q.entity,
        checkpoint: q.checkpoint,
        limit: q.limit === undefined ? 100 : Number.parseInt(q.limit, 10),
      });
      if (!listed.ok) return sendProblem(reply, problemDetails(400, 'invalid_filter', 'the filter is invalid', listed.problems));
      return { exceptions: listed.value };
    },
  );

  app.get(
    '/v1/exceptions/:id',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'One exception with every move in its history',
        tags: ['reconciliation'],
        params: idParams,
        response: {
          200: {
            type: 'object',
            required: ['exception', 'events'],
            properties: { exception: exceptionSchema, events: { type: 'array', items: eventSchema } },
          },
          404: { $ref: 'Problem#' },
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const found = await getException(options.pool, id);
      if (!found) return sendProblem(reply, problemDetails(404, 'not_found', `no exception ${id}`));
      return found;
    },
  );

  const move = (
    path: 'assign' | 'resolve' | 'waive',
    summary: string,
    body: object,
    toMove: (b: Record<string, string | undefined>, by: string) => ExceptionMove,
  ) =>
    app.post(
      `/v1/exceptions/:id/${path}`,
      { config: { scope: 'admin' }, schema: { summary, tags: ['reconciliation'], params: idParams, body, response: moveResponses } },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        const b = request.body as Record<string, string | undefined>;
        return answer(reply, await moveException(options.pool, id, toMove(b, actorOf(request, b.by))));
      },
    );
  const by = idString('who acts; default: the API key (`api-key:<id>`)');
  const note = textString('a note kept with the move');
  move(
    'assign',
    'Assign (or reassign) an exception to a person or team',
    {
      type: 'object',
      required: ['assignee'],
      properties: { assignee: idString('the person or team'), by, note },
      additionalProperties: false,
    },
    (b, actor) => ({ action: 'assign', assignee: b.assignee ?? '', by: actor, ...(b.note ? { note: b.note } : {}) }),
  );
  move(
    'resolve',
    'Resolve an assigned exception with the document that corrects it',
    {
      type: 'object',
      required: ['correcting_document'],
      properties: { correcting_document: idString('the id or number of the document that corrects the difference'), by, note },
      additionalProperties: false,
    },
    (b, actor) => ({ action: 'resolve', correcting_document: b.correcting_document ?? '', by: actor, ...(b.note ? { note: b.note } : {}) }),
  );
  move(
    'waive',
    'Accept an assigned exception as it is, with the reason; final',
    {
      type: 'object',
      required: ['reason'],
      properties: { reason: textString('why the difference is accepted', { minLength: 1 }), by },
      additionalProperties: false,
    },
    (b, actor) => ({ action: 'waive', reason: b.reason ?? '', by: actor }),
  );
}
