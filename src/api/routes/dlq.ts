// The dead-letter queue over HTTP: list what an ERP refused or what ran out of retries (read), and put an entry back
// in the outbox (admin). A replay is safe: the worker looks the document up at the target before posting again.
import { Type } from 'typebox';
import { listDeadLetters, replayDeadLetter } from '../../post/outbox.js';
import { problemDetails, problemRef, refuse } from '../problem.js';
import { idString, int8String } from '../params.js';
import { apiKeyActor, type RoutePlugin } from '../route-support.js';

const ID = int8String(1n, 'the outbox entry id (a bigint, as a decimal string)');

const DeadLetter = Type.Object(
  {
    id: ID,
    key: Type.String({ description: 'the idempotency key carried to the ERP' }),
    target: Type.String(),
    document_id: Type.String(),
    attempts: Type.Integer(),
    last_error: Type.Unsafe<Record<string, unknown> | null>({
      type: ['object', 'null'],
      description: "the target's last answer: message, and status, code and permanent where the target gave them",
      additionalProperties: true,
    }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

interface DeadLetterRow {
  id: string;
  key: string;
  target: string;
  document_id: string;
  attempts: number;
  last_error: Record<string, unknown> | null;
  created_at: Date;
}

const toJson = (row: DeadLetterRow) => ({ ...row, id: String(row.id), created_at: row.created_at.toISOString() });

export const dlqRoutes: RoutePlugin = async (app, { pool }) => {
  app.get(
    '/v1/dlq',
    {
      config: { permission: 'data.read' },
      schema: {
        summary: 'Dead letters: outbox entries an ERP refused or that ran out of retries, oldest first',
        tags: ['posting'],
        querystring: Type.Object({ target: Type.Optional(idString('an ERP target')) }, { additionalProperties: false }),
        response: { 200: Type.Object({ dead_letters: Type.Array(DeadLetter) }), 400: problemRef() },
      },
    },
    async (request) => ({ dead_letters: ((await listDeadLetters(pool, request.query.target)) as DeadLetterRow[]).map(toJson) }),
  );

  app.post(
    '/v1/dlq/:id/replay',
    {
      config: { permission: 'billing.run' },
      schema: {
        summary: 'Put a dead letter back in the outbox',
        description:
          'The entry becomes pending with its attempts reset; the next drain looks the document up at the target by its key first, so it is posted at most once. Audited as outbox.replay.',
        tags: ['posting'],
        params: Type.Object({ id: ID }, { additionalProperties: false }),
        response: {
          200: Type.Object({ id: ID, replayed: Type.Literal(true) }, { additionalProperties: false }),
          400: problemRef(),
          404: problemRef(),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      if (!(await replayDeadLetter(pool, id, apiKeyActor(request))))
        refuse(problemDetails(404, 'not_found', `no dead letter ${id}: it does not exist or is not dead (already replayed or posted)`));
      return { id, replayed: true as const };
    },
  );
};
