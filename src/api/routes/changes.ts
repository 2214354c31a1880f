// Change requests over HTTP (maker-checker, docs/controls.md): list and read them, and approve, reject or cancel one.
// An approval applies exactly the proposed payload; the requester never decides their own request (403).
import { Type } from 'typebox';
import { decide } from '../../controls/apply.js';
import { cancelChange, CHANGE_STATUSES, getChange, listChanges, type ChangeRequest } from '../../controls/changes.js';
import { CHANGE_KINDS } from '../../domain/controls.js';
import { scopeEntities } from '../entity-scope.js';
import { problemDetails, problemRef, refuse } from '../problem.js';
import { idString, stringEnum, textString } from '../params.js';
import { requestActor, type RoutePlugin } from '../route-support.js';

const nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

export const ChangeRequestSchema = Type.Object(
  {
    id: Type.String(),
    kind: stringEnum(CHANGE_KINDS),
    subject: Type.String(),
    legal_entity: nullable(Type.String()),
    summary: Type.String(),
    diff: Type.String({ description: 'the readable difference the approver reviews' }),
    payload: Type.Unknown({ description: 'exactly what an approval applies' }),
    payload_hash: Type.String({ description: 'SHA-256 of the payload as RFC 8785 canonical JSON' }),
    reason: nullable(Type.String()),
    requested_by: Type.String(),
    requested_by_name: Type.String(),
    requested_at: Type.String(),
    status: stringEnum(CHANGE_STATUSES),
    decided_by: nullable(Type.String()),
    decided_by_name: nullable(Type.String()),
    decided_at: nullable(Type.String()),
    decision_note: nullable(Type.String()),
    result: Type.Unknown({ description: 'what applying it produced (approved requests)' }),
  },
  { $id: 'ChangeRequest' },
);

const IdParams = Type.Object({ id: idString('a change request id (chg_…)') }, { additionalProperties: false });
const DecisionBody = Type.Object({ note: Type.Optional(textString('why, kept in the audit log')) }, { additionalProperties: false });
const ListQuery = Type.Object(
  { status: Type.Optional(stringEnum(CHANGE_STATUSES)), kind: Type.Optional(stringEnum(CHANGE_KINDS)) },
  { additionalProperties: false },
);
/** The shared ChangeRequest schema (added once at the root by the server, like Problem). */
export const changeRequestRef = () => Type.Unsafe<ChangeRequest>({ $ref: 'ChangeRequest#' });
const ref = changeRequestRef();

export const changeRoutes: RoutePlugin = async (app, { pool }) => {
  app.get(
    '/v1/changes',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'Change requests, newest first',
        tags: ['controls'],
        querystring: ListQuery,
        response: { 200: Type.Object({ changes: Type.Array(ref) }) },
      },
    },
    // A change of every entity (a catalog, mappings) has a diff naming other entities' customers and prices: a key limited
    // to entities (which may not decide it either) does not see it.
    async (request) => ({
      changes: (await listChanges(pool, requestActor(request), request.query)).filter(
        (c) => c.legal_entity !== null || !scopeEntities(request),
      ),
    }),
  );
  app.get(
    '/v1/changes/:id',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'One change request with its diff',
        tags: ['controls'],
        params: IdParams,
        response: { 200: ref, 404: problemRef() },
      },
    },
    async (request) => {
      const found = await getChange(pool, requestActor(request), request.params.id);
      if (!found || (found.legal_entity === null && scopeEntities(request)))
        refuse(problemDetails(404, 'not_found', `no change request ${request.params.id}`));
      return found;
    },
  );
  for (const approve of [true, false])
    app.post(
      `/v1/changes/:id/${approve ? 'approve' : 'reject'}`,
      {
        config: { permission: 'change.approve', entityScope: 'scoped' },
        schema: {
          summary: approve ? 'Approve a pending change and apply exactly its payload' : 'Reject a pending change',
          description:
            'Only a principal with the controller role, and never the one who requested it (403 self_approval). A change that no longer applies (what it was diffed against has moved) is refused 409 and stays pending.',
          tags: ['controls'],
          params: IdParams,
          body: DecisionBody,
          response: { 200: ref, 404: problemRef(), 409: problemRef() },
        },
      },
      async (request) =>
        decide(pool, requestActor(request), request.params.id, { approve, ...(request.body?.note ? { note: request.body.note } : {}) }),
    );
  app.post(
    '/v1/changes/:id/cancel',
    {
      config: { permission: 'change.propose', entityScope: 'scoped' },
      schema: {
        summary: 'Withdraw a pending change you requested',
        tags: ['controls'],
        params: IdParams,
        body: DecisionBody,
        response: { 200: ref, 404: problemRef(), 409: problemRef() },
      },
    },
    async (request) => cancelChange(pool, requestActor(request), request.params.id, request.body?.note),
  );
};
