// Reconciliation over HTTP: where a period stands (compared live, nothing recorded), the exception queues, and the
// lifecycle moves (assign, resolve with the correcting document, waive with a reason), each audited.
import { Type, type TSchema } from 'typebox';
import { ProblemError } from '../../domain/result.js';
import { getException, listExceptions, moveException, problemStatus, type ExceptionMove } from '../../reconcile/exceptions.js';
import { reconcilePeriod } from '../../reconcile/run.js';
import { problemDetails, problemRef, refuse, valueOr, type ProblemMapper } from '../problem.js';
import { idString, integerString, nullableString, periodString, stringEnum, textString } from '../params.js';
import type pg from 'pg';
import type { FastifyRequest } from 'fastify';
import { entityFilter, hideUnlessVisible, scopeEntities } from '../entity-scope.js';
import { apiKeyActor, requestActor, type RouteApp, type RoutePlugin } from '../route-support.js';
import { proposeChange } from '../../controls/changes.js';
import { planWaiver } from '../../controls/apply.js';
import type { ChangeKind } from '../../domain/controls.js';
import { changeRequestRef } from './changes.js';

const Key = Type.Object({ legal_entity: Type.String(), customer: Type.String(), currency: Type.String(), item: Type.String() });

const Document = Type.Object({ kind: Type.String(), id: Type.String(), connector: Type.Optional(Type.String()) });

const Report = Type.Object({
  period: Type.String(),
  legal_entities: Type.Array(Type.String()),
  connectors: Type.Array(Type.String()),
  recorded: Type.Boolean(),
  status: stringEnum(['green', 'red']),
  checkpoints: Type.Array(
    Type.Object({
      checkpoint: Type.String(),
      legal_entity: Type.String(),
      connector: nullableString(),
      owner_queue: Type.String(),
      description: Type.Optional(Type.String()),
      status: stringEnum(['green', 'red']),
      compared: Type.Object({ left: Type.Optional(Type.Integer()), right: Type.Optional(Type.Integer()) }),
      pending: Type.Integer(),
      differences: Type.Array(
        Type.Object({
          exception_id: Type.String(),
          kind: stringEnum(['missing_left', 'missing_right', 'amount_differs', 'duplicate']),
          key: Key,
          left: nullableString(),
          right: nullableString(),
          difference: Type.String({ description: 'right - left: minor units for money, an exact decimal for quantities' }),
          occurrences: Type.Optional(Type.Object({ left: Type.Optional(Type.Integer()), right: Type.Optional(Type.Integer()) })),
          documents: Type.Optional(Type.Array(Document)),
          opened: Type.Optional(Type.Boolean()),
          status: Type.Optional(nullableString()),
        }),
      ),
    }),
  ),
  opened: Type.Optional(Type.Array(Type.String())),
  cleared: Type.Optional(
    Type.Array(
      Type.Object({
        id: Type.Optional(Type.String()),
        checkpoint: Type.Optional(Type.String()),
        legal_entity: Type.Optional(Type.String()),
        item: Type.Optional(Type.String()),
        status: Type.Optional(Type.String()),
      }),
    ),
  ),
  open_exceptions: Type.Array(
    Type.Object({
      legal_entity: Type.Optional(Type.String()),
      owner_queue: Type.Optional(Type.String()),
      open: Type.Optional(Type.Integer()),
      assigned: Type.Optional(Type.Integer()),
    }),
  ),
});

const ExceptionSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  owner_queue: Type.String(),
  status: stringEnum(['open', 'assigned', 'resolved', 'waived']),
  subject: Type.Optional(Type.String()),
  checkpoint: Type.Optional(nullableString()),
  period: Type.Optional(nullableString()),
  legal_entity: Type.Optional(nullableString()),
  customer: Type.Optional(nullableString()),
  currency: Type.Optional(nullableString()),
  connector: Type.Optional(nullableString()),
  item: Type.Optional(nullableString()),
  left_amount: Type.Optional(nullableString()),
  right_amount: Type.Optional(nullableString()),
  difference: Type.Optional(nullableString()),
  documents: Type.Optional(Type.Array(Document)),
  details: Type.Optional(Type.Unknown()),
  assigned_to: Type.Optional(nullableString()),
  resolution_document: Type.Optional(nullableString()),
  waived_reason: Type.Optional(nullableString()),
  waived_by: Type.Optional(nullableString()),
  created_at: Type.Optional(Type.String()),
  updated_at: Type.Optional(Type.String()),
  last_seen_at: Type.Optional(nullableString()),
  cleared_at: Type.Optional(nullableString()),
});

const ExceptionEvent = Type.Object({
  ordinal: Type.Optional(Type.Integer()),
  action: Type.Optional(Type.String()),
  from_status: Type.Optional(nullableString()),
  to_status: Type.Optional(Type.String()),
  actor: Type.Optional(Type.String()),
  at: Type.Optional(Type.String()),
  reason: Type.Optional(nullableString()),
  details: Type.Optional(Type.Unknown()),
});

const IdParams = Type.Object({ id: idString('an exception id') }, { additionalProperties: false });
const Exception = ExceptionSchema;
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

const note = Type.Optional(textString('a note kept with the move'));
const AssignBody = Type.Object({ assignee: idString('the person or team'), note }, { additionalProperties: false });
const ResolveBody = Type.Object(
  { correcting_document: idString('the id or number of the document that corrects the difference'), note },
  { additionalProperties: false },
);
const WaiveBody = Type.Object({ reason: textString('why the difference is accepted', { minLength: 1 }) }, { additionalProperties: false });

const reconciliationProblems: ProblemMapper = (error) =>
  error instanceof ProblemError ? problemDetails(error.status, 'reconciliation', error.message, error.problems) : undefined;

export const reconcileRoutes: RoutePlugin = async (app, { pool, approvalRequired }) => {
  reportRoutes(app, pool);
  exceptionRoutes(app, pool, approvalRequired);
};

function reportRoutes(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/periods/:period/reconciliation',
    {
      config: { permission: 'data.read', problems: reconciliationProblems, entityScope: 'scoped' },
      schema: {
        summary: 'Where a period stands: every checkpoint green or with its differences',
        description:
          'Compares the checkpoints live for the built-in ledger (usage, rating, invoice lines, ledger postings, payments, trial balance) and lists the open exceptions per queue. Nothing is recorded: `accrue reconcile` or closing the period opens the exceptions.',
        tags: ['reconciliation'],
        params: Type.Object({ period: periodString() }, { additionalProperties: false }),
        querystring: ReportQuery,
        response: { 200: Report, 400: problemRef(), 404: problemRef(), 409: problemRef() },
      },
    },
    async (request) => {
      const { period } = request.params;
      const entity = entityFilter(request, request.query.entity);
      return reconcilePeriod(pool, { period, legalEntity: entity, legalEntities: scopeEntities(request), record: false });
    },
  );

  app.get(
    '/v1/exceptions',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
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
        legalEntity: entityFilter(request, q.entity),
        legalEntities: scopeEntities(request),
        checkpoint: q.checkpoint,
        limit: q.limit === undefined ? 100 : Number.parseInt(q.limit, 10),
      });
      return { exceptions: valueOr(listed, (problems) => problemDetails(400, 'invalid_filter', 'the filter is invalid', problems)) };
    },
  );
}

/** Another entity's exception does not exist for a key limited to entities: 404 before anything is read or moved. */
async function hideOtherEntity(pool: pg.Pool, request: FastifyRequest, id: string): Promise<void> {
  if (!scopeEntities(request)) return;
  hideUnlessVisible(request, (await getException(pool, id))?.exception.legal_entity, `no exception ${id}`);
}

function exceptionRoutes(app: RouteApp, pool: pg.Pool, approvalRequired: readonly ChangeKind[]): void {
  waiveRoute(app, pool, approvalRequired);
  app.get(
    '/v1/exceptions/:id',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'One exception with every move in its history',
        tags: ['reconciliation'],
        params: IdParams,
        response: {
          200: Type.Object({ exception: Exception, events: Type.Array(ExceptionEvent) }),
          404: problemRef(),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const found = await getException(pool, id);
      if (!found) refuse(problemDetails(404, 'not_found', `no exception ${id}`));
      hideUnlessVisible(request, found.exception.legal_entity, `no exception ${id}`);
      return found;
    },
  );

  const moveOptions = <Body extends TSchema>(summary: string, body: Body) => ({
    config: { permission: 'exceptions.work' as const, entityScope: 'scoped' as const },
    schema: { summary, tags: ['reconciliation'], params: IdParams, body, response: moveResponses },
  });
  const answer = (id: string, change: ExceptionMove) => moveAnswer(pool, id, change);
  app.post(
    '/v1/exceptions/:id/assign',
    moveOptions('Assign (or reassign) an exception to a person or team', AssignBody),
    async (request) => {
      await hideOtherEntity(pool, request, request.params.id);
      const { assignee, note: text } = request.body;
      const actor = apiKeyActor(request);
      return answer(request.params.id, { action: 'assign', assignee, by: actor, ...(text ? { note: text } : {}) });
    },
  );
  app.post(
    '/v1/exceptions/:id/resolve',
    moveOptions('Resolve an assigned exception with the document that corrects it', ResolveBody),
    async (request) => {
      await hideOtherEntity(pool, request, request.params.id);
      const { correcting_document, note: text } = request.body;
      const actor = apiKeyActor(request);
      return answer(request.params.id, { action: 'resolve', correcting_document, by: actor, ...(text ? { note: text } : {}) });
    },
  );
}

/** A move's answer: the moved exception, or the lifecycle's refusal as a problem. */
async function moveAnswer(pool: pg.Pool, id: string, change: ExceptionMove) {
  return valueOr(await moveException(pool, id, change), (problems) =>
    problemDetails(problemStatus(problems), 'exception_move_refused', 'the move was refused; nothing changed', problems),
  );
}

function waiveRoute(app: RouteApp, pool: pg.Pool, approvalRequired: readonly ChangeKind[]): void {
  app.post(
    '/v1/exceptions/:id/waive',
    {
      config: { permission: 'change.propose' as const, entityScope: 'scoped' as const },
      schema: {
        summary: 'Accept an assigned exception as it is, with the reason; final',
        description:
          'Where waivers need a second person (controls.approval_required, the default) the waiver is proposed and answered 202 with the change request; a different principal with the controller role approves it (POST /v1/changes/{id}/approve). Otherwise it is applied at once.',
        tags: ['reconciliation'],
        params: IdParams,
        body: WaiveBody,
        response: { ...moveResponses, 202: changeRequestRef(), 403: problemRef() },
      },
    },
    async (request, reply) => {
      await hideOtherEntity(pool, request, request.params.id);
      const actor = requestActor(request);
      if (!approvalRequired.includes('exception.waive'))
        return moveAnswer(pool, request.params.id, { action: 'waive', reason: request.body.reason, by: apiKeyActor(request) });
      const { request: change } = await proposeChange(pool, actor, await planWaiver(pool, request.params.id, request.body.reason));
      return reply.code(202).send(change);
    },
  );
}
