// Disputes over HTTP (docs/disputes.md): list and read them, open one on an invoice line, assign, reject, and resolve
// by a credit note — answered 202 with the change request where a second person must approve it (the default).
import { Type } from 'typebox';
import { resolveDisputeByCredit } from '../../controls/credit-notes.js';
import {
  assignDispute,
  DISPUTE_QUEUES,
  DISPUTE_STATUSES,
  getDispute,
  listDisputes,
  openDispute,
  rejectDispute,
} from '../../disputes/disputes.js';
import { lineCreditView } from '../../disputes/standing.js';
import { problemDetails, problemRef, refuse } from '../problem.js';
import { amountString, idString, integerString, nullableString, stringEnum, textString } from '../params.js';
import type pg from 'pg';
import type { ChangeKind } from '../../domain/controls.js';
import { requestActor, type RouteApp, type RoutePlugin } from '../route-support.js';
import { changeRequestRef } from './changes.js';

const QUEUES = DISPUTE_QUEUES as readonly string[];

const Dispute = Type.Object({
  id: Type.String(),
  key: Type.String(),
  invoice_id: Type.String(),
  invoice_number: nullableString(),
  line_no: Type.Integer(),
  legal_entity: Type.String(),
  customer: Type.String(),
  currency: Type.String(),
  reason: Type.String(),
  queue: Type.String(),
  assignee: nullableString({ description: 'the person assigned (a principal name)' }),
  status: stringEnum(DISPUTE_STATUSES),
  walk: Type.Unknown({ description: 'the explain walk of the line when the dispute was opened: meter, quantity, events, correlation' }),
  opened_by: Type.String(),
  opened_at: Type.String(),
  change_request: nullableString({ description: 'the last credit note change request proposed for it' }),
  change_status: nullableString(),
  credit_note: nullableString(),
  credit_note_number: nullableString(),
  credit: nullableString({ description: 'the amount credited, tax included, major units' }),
  rejection: nullableString(),
  closed_by: nullableString(),
  closed_at: nullableString(),
});

const LineCredit = Type.Object({
  tax_rate: Type.String({ description: "the original invoice's tax rate" }),
  full: Type.String({ description: "the line's amount and its tax share" }),
  credited: Type.String(),
  remaining: Type.String({ description: 'the most a credit may still be' }),
});

const IdParams = Type.Object({ id: idString('a dispute id (dsp_…)') }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    status: Type.Optional(stringEnum(DISPUTE_STATUSES)),
    queue: Type.Optional(stringEnum(QUEUES)),
    assignee: Type.Optional(idString('a principal name')),
    entity: Type.Optional(idString('a legal entity')),
    limit: Type.Optional(integerString(1n, 500n, '1 to 500, default 100')),
  },
  { additionalProperties: false },
);
const OpenBody = Type.Object(
  {
    invoice: idString('the invoice id or number'),
    line: Type.Integer({ minimum: 1, maximum: 100000, description: 'the line number, as the invoice lists its lines' }),
    reason: textString('what the customer contests', { minLength: 1 }),
    queue: Type.Optional(stringEnum(QUEUES)),
  },
  { additionalProperties: false },
);
const AssignBody = Type.Object(
  { assignee: idString('a team or a principal name'), note: Type.Optional(textString('a note for the audit log')) },
  { additionalProperties: false },
);
const RejectBody = Type.Object({ reason: textString('why the charge stands', { minLength: 1 }) }, { additionalProperties: false });
const ResolveBody = Type.Object(
  { credit: amountString('the credit, tax included, in major units of the invoice currency') },
  { additionalProperties: false },
);
const Issued = Type.Object({
  dispute: Type.String(),
  credit_note: Type.String(),
  number: nullableString(),
  credit: Type.String(),
  net: Type.String(),
  tax: Type.String(),
  currency: Type.String(),
});

export const disputeRoutes: RoutePlugin = async (app, { pool, approvalRequired }) => {
  readRoutes(app, pool);
  moveRoutes(app, pool);
  resolveRoute(app, pool, approvalRequired);
};

function readRoutes(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/disputes',
    {
      config: { permission: 'data.read' },
      schema: {
        summary: 'Disputes by status, queue, assignee or legal entity, oldest first',
        tags: ['disputes'],
        querystring: ListQuery,
        response: { 200: Type.Object({ disputes: Type.Array(Dispute) }), 400: problemRef() },
      },
    },
    async (request) => {
      const { limit, ...filter } = request.query;
      return { disputes: await listDisputes(pool, requestActor(request), { ...filter, ...(limit ? { limit: Number(limit) } : {}) }) };
    },
  );
  app.get(
    '/v1/disputes/:id',
    {
      config: { permission: 'data.read' },
      schema: {
        summary: "One dispute with its line's explain walk and what is left to credit",
        tags: ['disputes'],
        params: IdParams,
        response: { 200: Type.Object({ dispute: Dispute, line_credit: LineCredit }), 404: problemRef() },
      },
    },
    async (request) => {
      const dispute = await getDispute(pool, requestActor(request), request.params.id);
      if (!dispute) refuse(problemDetails(404, 'not_found', `no dispute ${request.params.id}`));
      return { dispute, line_credit: await lineCreditView(pool, dispute.invoice_id, dispute.line_no) };
    },
  );
}

function moveRoutes(app: RouteApp, pool: pg.Pool): void {
  app.post(
    '/v1/disputes',
    {
      config: { permission: 'disputes.work' },
      schema: {
        summary: 'Open a dispute of one line of a finalized invoice; the explain walk of the line is attached',
        description: 'The same line and reason again while it is open answers 200 with the open dispute; another reason is 409.',
        tags: ['disputes'],
        body: OpenBody,
        response: { 200: Dispute, 201: Dispute, 400: problemRef(), 404: problemRef(), 409: problemRef() },
      },
    },
    async (request, reply) => {
      const { dispute, created } = await openDispute(pool, requestActor(request), request.body);
      return reply.code(created ? 201 : 200).send(dispute);
    },
  );
  app.post(
    '/v1/disputes/:id/assign',
    {
      config: { permission: 'disputes.work' },
      schema: {
        summary: 'Assign a dispute to a team or a person',
        tags: ['disputes'],
        params: IdParams,
        body: AssignBody,
        response: { 200: Dispute, 400: problemRef(), 404: problemRef(), 409: problemRef() },
      },
    },
    async (request) => assignDispute(pool, requestActor(request), request.params.id, request.body.assignee, request.body.note),
  );
  app.post(
    '/v1/disputes/:id/reject',
    {
      config: { permission: 'disputes.work' },
      schema: {
        summary: 'Reject a dispute with the reason: the charge stands, nothing is credited',
        tags: ['disputes'],
        params: IdParams,
        body: RejectBody,
        response: { 200: Dispute, 400: problemRef(), 404: problemRef(), 409: problemRef() },
      },
    },
    async (request) => rejectDispute(pool, requestActor(request), request.params.id, request.body.reason),
  );
}

function resolveRoute(app: RouteApp, pool: pg.Pool, approvalRequired: readonly ChangeKind[]): void {
  app.post(
    '/v1/disputes/:id/resolve',
    {
      config: { permission: 'change.propose' },
      schema: {
        summary: 'Resolve a dispute by a full or partial credit note',
        description:
          "Where credit notes need a second person (controls.approval_required, the default) the credit note is proposed and answered 202 with the change request; a different principal with the controller role approves it (POST /v1/changes/{id}/approve). Otherwise it is issued at once. More than the line's uncredited remainder is 409 naming `credit`.",
        tags: ['disputes'],
        params: IdParams,
        body: ResolveBody,
        response: { 200: Issued, 202: changeRequestRef(), 400: problemRef(), 404: problemRef(), 409: problemRef() },
      },
    },
    async (request, reply) => {
      const outcome = await resolveDisputeByCredit(
        pool,
        requestActor(request),
        approvalRequired.includes('credit_note.issue'),
        request.params.id,
        request.body.credit,
        'credit',
      );
      if (outcome.status === 'pending') return reply.code(202).send(outcome.request);
      return outcome.result;
    },
  );
}
