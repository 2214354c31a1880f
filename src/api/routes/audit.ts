// The audit log over HTTP: read it in pages (read scope) and verify the hash chain (admin: it reads every record).
import { Type } from 'typebox';
import { AUDIT_READ_LIMIT_MAX, readAudit, verifyAudit, type AuditRecord } from '../../audit/log.js';
import { idString, int8String, integerString, stringEnum } from '../params.js';
import { problemRef } from '../problem.js';
import type { RoutePlugin } from '../route-support.js';

const HASH = Type.String({ pattern: '^[0-9a-f]{64}$' });
const SEQ = int8String(0n, 'a sequence number, as a decimal string (it is a bigint)');

const AuditRecordSchema = Type.Object(
  {
    seq: SEQ,
    at: Type.String({ format: 'date-time' }),
    actor: Type.String(),
    action: Type.String(),
    subject: Type.String(),
    reason: Type.Optional(Type.String()),
    details: Type.Unknown({ description: 'what the action did; any JSON value, null when none' }),
    prev_hash: HASH,
    hash: HASH,
  },
  { additionalProperties: false },
);

const Verdict = Type.Object(
  {
    ok: Type.Boolean(),
    count: Type.Integer({ description: 'records verified (up to the broken one when not ok)' }),
    head: Type.Optional(Type.Object({ seq: SEQ, hash: HASH }, { additionalProperties: false })),
    broken_at_seq: Type.Optional(SEQ),
    reason: Type.Optional(stringEnum(['hash_mismatch', 'prev_mismatch', 'seq_gap', 'missing_tail', 'head_mismatch'])),
    message: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const AuditQuery = Type.Object(
  {
    subject: Type.Optional(idString()),
    action: Type.Optional(idString()),
    actor: Type.Optional(idString()),
    after: Type.Optional(SEQ),
    limit: Type.Optional(
      integerString(1n, BigInt(AUDIT_READ_LIMIT_MAX), `records in the page, 1 to ${AUDIT_READ_LIMIT_MAX} (default 100)`),
    ),
  },
  { additionalProperties: false },
);

function toJson(record: AuditRecord) {
  return { ...record, seq: String(record.seq) };
}

export const auditRoutes: RoutePlugin = async (app, { pool }) => {
  app.get(
    '/v1/audit',
    {
      config: { permission: 'audit.read' },
      schema: {
        summary: 'Audit records, oldest first, in pages',
        description: `Filter by subject, action or actor. Page with \`after\`: pass the previous page's \`next_after\` until it is null. At most ${AUDIT_READ_LIMIT_MAX} records a page.`,
        tags: ['audit'],
        querystring: AuditQuery,
        response: {
          200: Type.Object(
            { records: Type.Array(AuditRecordSchema), next_after: Type.Union([SEQ, Type.Null()]) },
            { additionalProperties: false },
          ),
          400: problemRef(),
        },
      },
    },
    async (request) => {
      const query = request.query;
      const limit = Number.parseInt(query.limit ?? '100', 10);
      const records = await readAudit(pool, {
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
      config: { permission: 'audit.verify' },
      schema: {
        summary: 'Verify the audit hash chain',
        description:
          "Recomputes every record's hash from seq 1 to the head, page by page. 200 either way: `ok` false names the first broken link (`broken_at_seq`, `reason`, `message`).",
        tags: ['audit'],
        response: { 200: Verdict },
      },
    },
    async () => {
      const verdict = await verifyAudit(pool);
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
};
