// The audit log over HTTP: read it in pages (read scope) and verify the hash chain (admin: it reads every record).
import type { FastifyInstance } from 'fastify';
import { AUDIT_READ_LIMIT_MAX, readAudit, verifyAudit, type AuditRecord } from '../../audit/log.js';
import { idString, int8String, integerString } from '../params.js';
import type { ServerOptions } from '../server.js';

const HASH = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const SEQ = int8String(0n, 'a sequence number, as a decimal string (it is a bigint)');

const recordSchema = {
  type: 'object',
  required: ['seq', 'at', 'actor', 'action', 'subject', 'details', 'prev_hash', 'hash'],
  properties: {
    seq: SEQ,
    at: { type: 'string', format: 'date-time' },
    actor: { type: 'string' },
    action: { type: 'string' },
    subject: { type: 'string' },
    reason: { type: 'string' },
    details: { description: 'what the action did; any JSON value, null when none' },
    prev_hash: HASH,
    hash: HASH,
  },
  additionalProperties: false,
} as const;

const verdictSchema = {
  type: 'object',
  required: ['ok', 'count'],
  properties: {
    ok: { type: 'boolean' },
    count: { type: 'integer', description: 'records verified (up to the broken one when not ok)' },
    head: { type: 'object', required: ['seq', 'hash'], properties: { seq: SEQ, hash: HASH }, additionalProperties: false },
    broken_at_seq: SEQ,
    reason: { type: 'string', enum: ['hash_mismatch', 'prev_mismatch', 'seq_gap', 'missing_tail', 'head_mismatch'] },
    message: { type: 'string' },
  },
  additionalProperties: false,
} as const;

function toJson(record: AuditRecord) {
  return { ...record, seq: String(record.seq) };
}

export async function registerAuditRoutes(app: FastifyInstance, options: ServerOptions): Promise<void> {
  app.get(
    '/v1/audit',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Audit records, oldest first, in pages',
        description: `Filter by subject, action or actor. Page with \`after\`: pass the previous page's \`next_after\` until it is null. At most ${AUDIT_READ_LIMIT_MAX} records a page.`,
        tags: ['audit'],
        querystring: {
          type: 'object',
          properties: {
            subject: idString(),
            action: idString(),
            actor: idString(),
            after: SEQ,
            limit: integerString(1n, BigInt(AUDIT_READ_LIMIT_MAX), `records in the page, 1 to ${AUDIT_READ_LIMIT_MAX} (default 100)`),
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            required: ['records', 'next_after'],
            properties: { records: { type: 'array', items: recordSchema }, next_after: { anyOf: [SEQ, { type: 'null' }] } },
            additionalProperties: false,
          },
          400: { $ref: 'Problem#' },
        },
      },
    },
    async (request) => {
      const query = request.query as { subject?: string; action?: string; actor?: string; after?: string; limit?: string };
      const limit = Number.parseInt(query.limit ?? '100', 10);
      const records = await readAudit(options.pool, {
        subject: query.subject,
        action: query.action,
        actor: query.actor,
        after: query.after === undefined ? undefined : BigInt(query.after),
        limit,
      });
      return { records: records.map(toJson), next_after: records.length === limit ? String(records[records.length - 1]!.seq) : null };
    },
  );

  app.get(
    '/v1/audit/verify',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Verify the audit hash chain',
        description:
          "Recomputes every record's hash from seq 1 to the head, page by page. 200 either way: `ok` false names the first broken link (`broken_at_seq`, `reason`, `message`).",
        tags: ['audit'],
        response: { 200: verdictSchema },
      },
    },
    async () => {
      const verdict = await verifyAudit(options.pool);
      return verdict.ok
        ? { ok: true, count: verdict.count, head: { seq: String(verdict.head.seq), hash: verdict.head.hash } }
        : {
            ok: false,
            count: verdict.count,
            broken_at_seq: String(verdict.broken_at_seq),
            reason: verdict.reason,
            message: verdict.message,
          };
    },
  );
}
