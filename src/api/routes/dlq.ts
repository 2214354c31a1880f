// The dead-letter queue over HTTP: list what an ERP refused or what ran out of retries (read), and put an entry back
// in the outbox (admin). A replay is safe: the worker looks the document up at the target before posting again.
import type { FastifyInstance } from 'fastify';
import { listDeadLetters, replayDeadLetter } from '../../post/outbox.js';
import { problemDetails, sendProblem } from '../problem.js';
import { idString, int8String } from '../params.js';
import type { ServerOptions } from '../server.js';

const ID = int8String(1n, 'the outbox entry id (a bigint, as a decimal string)');

const deadLetterSchema = {
  type: 'object',
  required: ['id', 'key', 'target', 'document_id', 'attempts', 'last_error', 'created_at'],
  properties: {
    id: ID,
    key: { type: 'string', description: 'the idempotency key carried to the ERP' },
    target: { type: 'string' },
    document_id: { type: 'string' },
    attempts: { type: 'integer' },
    last_error: {
      type: ['object', 'null'],
      description: "the target's last answer: message, and status, code and permanent where the target gave them",
      additionalProperties: true,
    },
    created_at: { type: 'string', format: 'date-time' },
  },
  additionalProperties: false,
} as const;

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

export async function registerDlqRoutes(app: FastifyInstance, options: ServerOptions): Promise<void> {
  app.get(
    '/v1/dlq',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Dead letters: outbox entries an ERP refused or that ran out of retries, oldest first',
        tags: ['posting'],
        querystring: { type: 'object', properties: { target: idString('an ERP target') }, additionalProperties: false },
        response: {
          200: { type: 'object', required: ['dead_letters'], properties: { dead_letters: { type: 'array', items: deadLetterSchema } } },
          400: { $ref: 'Problem#' },
        },
      },
    },
    async (request) => {
      const { target } = request.query as { target?: string };
      return { dead_letters: ((await listDeadLetters(options.pool, target)) as DeadLetterRow[]).map(toJson) };
    },
  );

  app.post(
    '/v1/dlq/:id/replay',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Put a dead letter back in the outbox',
        description:
          'The entry becomes pending with its attempts reset; the next drain looks the document up at the target by its key first, so it is posted at most once. Audited as outbox.replay.',
        tags: ['posting'],
        params: { type: 'object', required: ['id'], properties: { id: ID }, additionalProperties: false },
        response: {
          200: {
            type: 'object',
            required: ['id', 'replayed'],
            properties: { id: ID, replayed: { type: 'boolean', const: true } },
            additionalProperties: false,
          },
          400: { $ref: 'Problem#' },
          404: { $ref: 'Problem#' },
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!(await replayDeadLetter(options.pool, id, `api-key:${request.apiKey?.id ?? 'unknown'}`))) {
        return sendProblem(
          reply,
          problemDetails(404, 'not_found', `no dead letter ${id}: it does not exist or is not dead (already replayed or posted)`),
        );
      }
      return { id, replayed: true };
    },
  );
}
