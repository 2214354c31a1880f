// Reconciliation over HTTP: where a period stands (compared live, nothing recorded), the exception queues, and the
// lifecycle moves (assign, resolve with the correcting document, waive with a reason), each audited.
import type { FastifyRequest } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { ProblemError } from '../../domain/result.js';
import { getException, listExceptions, moveException, problemStatus, type ExceptionMove } from '../../reconcile/exceptions.js';
import { reconcilePeriod } from '../../reconcile/run.js';
import { problemDetails, problemRef, refuse, valueOr, type ProblemMapper } from '../problem.js';
import { idString, integerString, periodString, stringEnum, textString } from '../params.js';
import type pg from 'pg';
import { apiKeyActor, type RouteApp, type RoutePlugin } from '../route-support.js';

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

const IdParams = Type.Object({ id: idString('an exception id') }, { additionalProperties: false });
const Exception = Type.Unsafe<object>(exceptionSchema);
const moveResponses = { 200: Exception, 400: problemRef(), 404: problemRef(), 409: problemRef() };

const ReportQuery = Type.Object({ entity: Type.Optional(idString('a legal entity; default: every one')) }, { additionalProperties: false });

const ExceptionsQuery = Type.Object(
  {
    queue: Type.Optional(stringEnum(['billing_engineering', 'integration_support', 'finance_operations'])),
    status: Type.Optional(stringEnum(['open', 'assigned', 'resolved', 'waived', 'unresolved'])),
    period: Type.Optional(periodString()),
    entity: Type.Optional(idString('a legal entity')),
    checkpoint: Type.Optional(idString('a checkpoint')),
    limit: Type.Optional(integerString(1n, 1000n, '1 to 1000, default 100')),
  },
  { additionalProperties: false },
);

const by = Type.Optional(idString('who acts; default: the API key (`api-key:<id>`)'));
const note = Type.Optional(textString('a note kept with the move'));
const AssignBody = Type.Object({ assignee: idString('the person or team'), by, note }, { additionalProperties: false });
const ResolveBody = Type.Object(
  { correcting_document: idString('the id or number of the document that corrects the difference'), by, note },
  { additionalProperties: false },
);
const WaiveBody = Type.Object(
  { reason: textString('why the difference is accepted', { minLength: 1 }), by },
  { additionalProperties: false },
);

/** The actor of a move: the person named in the body, else the API key that made the request. */
const actorOf = (request: FastifyRequest, named: string | undefined): string =>
  named && named.trim() !== '' ? named : apiKeyActor(request);

const reconciliationProblems: ProblemMapper = (error) =>
  error instanceof ProblemError ? problemDetails(error.status, 'reconciliation', error.message, error.problems) : undefined;

export const reconcileRoutes: RoutePlugin = async (app, { pool }) => {
  reportRoutes(app, pool);
  exceptionRoutes(app, pool);
};

function reportRoutes(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/periods/:period/reconciliation',
    {
      config: { scope: 'read', problems: reconciliationProblems },
      schema: {
        summary: 'Where a period stands: every checkpoint green or with its differences',
        description:
          'Compares the checkpoints live for the built-in ledger (usage, rating, invoice lines, ledger postings, payments, trial balance) and lists the open exceptions per queue. Nothing is recorded: `accrue reconcile` or closing the period opens the exceptions.',
        tags: ['reconciliation'],
        params: Type.Object({ period: periodString() }, { additionalProperties: false }),
        querystring: ReportQuery,
        response: { 200: Type.Unsafe<object>(reportSchema), 400: problemRef(), 404: problemRef(), 409: problemRef() },
      },
    },
    async (request) => {
      const { period } = request.params;
      const { entity } = request.query;
      return reconcilePeriod(pool, { period, legalEntity: entity, record: false });
    },
  );

  app.get(
    '/v1/exceptions',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Exceptions by queue, status, period, legal entity or checkpoint, oldest first',
        tags: ['reconciliation'],
        querystring: ExceptionsQuery,
        response: { 200: Type.Object({ exceptions: Type.Array(Exception) }), 400: problemRef() },
      },
    },
    async (request) => {
      const q = request.query;
      const listed = await listExceptions(pool, {
        queue: q.queue,
        status: q.status,
        period: q.period,
        legalEntity: q.entity,
        checkpoint: q.checkpoint,
        limit: q.limit === undefined ? 100 : Number.parseInt(q.limit, 10),
      });
      return { exceptions: valueOr(listed, (problems) => problemDetails(400, 'invalid_filter', 'the filter is invalid', problems)) };
    },
  );
}

function exceptionRoutes(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/exceptions/:id',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'One exception with every move in its history',
        tags: ['reconciliation'],
        params: IdParams,
        response: {
          200: Type.Object({ exception: Exception, events: Type.Array(Type.Unsafe<object>(eventSchema)) }),
          404: problemRef(),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const found = await getException(pool, id);
      if (!found) refuse(problemDetails(404, 'not_found', `no exception ${id}`));
      return found;
    },
  );

  const moveOptions = <Body extends TSchema>(summary: string, body: Body) => ({
    config: { scope: 'admin' as const },
    schema: { summary, tags: ['reconciliation'], params: IdParams, body, response: moveResponses },
  });
  const answer = async (id: string, change: ExceptionMove) =>
    valueOr(await moveException(pool, id, change), (problems) =>
      problemDetails(problemStatus(problems), 'exception_move_refused', 'the move was refused; nothing changed', problems),
    );
  app.post(
    '/v1/exceptions/:id/assign',
    moveOptions('Assign (or reassign) an exception to a person or team', AssignBody),
    async (request) => {
      const { assignee, by: named, note: text } = request.body;
      const actor = actorOf(request, named);
      return answer(request.params.id, { action: 'assign', assignee, by: actor, ...(text ? { note: text } : {}) });
    },
  );
  app.post(
    '/v1/exceptions/:id/resolve',
    moveOptions('Resolve an assigned exception with the document that corrects it', ResolveBody),
    async (request) => {
      const { correcting_document, by: named, note: text } = request.body;
      const actor = actorOf(request, named);
      return answer(request.params.id, { action: 'resolve', correcting_document, by: actor, ...(text ? { note: text } : {}) });
    },
  );
  app.post(
    '/v1/exceptions/:id/waive',
    moveOptions('Accept an assigned exception as it is, with the reason; final', WaiveBody),
    async (request) => answer(request.params.id, { action: 'waive', reason: request.body.reason, by: actorOf(request, request.body.by) }),
  );
}
