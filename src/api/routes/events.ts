// POST /v1/events: CloudEvents over HTTP (structured single, batch, binary mode) and NDJSON for bulk.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { currentCatalog } from '../../catalog/service.js';
import { INGEST_LIMITS, parseNdjson } from '../../ingest/cloudevent.js';
import { countStatuses, ingestBatch, type BatchOutcome, type EventOutcome } from '../../ingest/service.js';
import { GroupCommitter } from '../../ingest/group-commit.js';
import { problemDetails, sendProblem } from '../problem.js';
import type { ServerOptions } from '../server.js';

const STRING_TYPES = ['application/cloudevents+json', 'application/cloudevents-batch+json', 'application/x-ndjson'];

const outcomeSchema = {
  type: 'object',
  required: ['index', 'status'],
  properties: {
    index: { type: 'integer' },
    source: { type: 'string' },
    id: { type: 'string' },
    status: { type: 'string', enum: ['accepted', 'duplicate', 'conflict', 'rejected', 'quarantined'] },
    problems: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } } } },
  },
} as const;

const countsSchema = {
  type: 'object',
  properties: Object.fromEntries(['accepted', 'duplicate', 'conflict', 'rejected', 'quarantined'].map((k) => [k, { type: 'integer' }])),
} as const;

export async function registerEventRoutes(app: FastifyInstance, options: ServerOptions): Promise<void> {
  app.addContentTypeParser(STRING_TYPES, { parseAs: 'string' }, (_request, body, done) => done(null, body));
  // Single events share commits with their neighbours; the queue's bound turns requests away with 429 (docs/scaling.md).
  const committer = options.groupCommit === false ? undefined : new GroupCommitter(options.pool, options.groupCommit);
  if (committer) app.addHook('onClose', () => committer.drain());

  app.post(
    '/v1/events',
    {
      config: { scope: 'ingest' },
      schema: {
        summary: 'Ingest usage events',
        description: `CloudEvents 1.0 over HTTP: one event as application/cloudevents+json, a batch (at most ${INGEST_LIMITS.batchEventsMax}) as application/cloudevents-batch+json, binary mode (ce-* headers with the data as the body), or NDJSON (application/x-ndjson) for bulk. Each event is answered: accepted, duplicate, conflict, rejected (with the field) or quarantined.`,
        tags: ['ingest'],
        body: {
          content: {
            'application/cloudevents+json': { schema: { type: 'string', description: 'one CloudEvent (JSON)' } },
            'application/cloudevents-batch+json': { schema: { type: 'string', description: 'a JSON array of CloudEvents' } },
            'application/x-ndjson': { schema: { type: 'string', description: 'one CloudEvent per line' } },
            'application/json': { schema: {} },
          },
        },
        response: {
          200: { description: 'Every event answered', type: 'object', properties: { batch_id: { type: 'string' }, counts: countsSchema, results: { type: 'array', items: outcomeSchema } } },
          202: { description: 'A single event quarantined (unknown type or subject)', type: 'object', properties: { batch_id: { type: 'string' }, result: outcomeSchema } },
          400: { $ref: 'Problem#' },
          401: { $ref: 'Problem#' },
          403: { $ref: 'Problem#' },
          409: { $ref: 'Problem#' },
          413: { $ref: 'Problem#' },
          415: { $ref: 'Problem#' },
          429: { $ref: 'Problem#' },
        },
      },
    },
    async (request, reply) => {
      const noCatalog = () => sendProblem(reply, problemDetails(409, 'no_catalog', 'no catalog is in force; apply one with PUT /v1/catalog first'));
      // A grouped single event is validated against the catalog in force when its group is written (the committer keeps
      // the head and the write checks it is still the head); everything else reads it here.
      const grouped = committer !== undefined && isSingleEvent(request);
      const catalog = grouped ? 'current' : await currentCatalog(options.pool);
      if (!catalog) return noCatalog();
      const parsed = readEvents(request);
      if ('problem' in parsed) return sendProblem(reply, parsed.problem);
      const { events, single, preRejected } = parsed;
      if (!single && !parsed.bulk && events.length > INGEST_LIMITS.batchEventsMax) {
        return sendProblem(reply, problemDetails(413, 'batch_too_large', `a batch holds at most ${INGEST_LIMITS.batchEventsMax} events, got ${events.length}; send NDJSON for bulk`));
      }
      const ingestOptions = {
        channel: 'http' as const,
        apiKeyId: request.apiKey?.id,
        allowedSources: request.apiKey?.sources,
        futureSkewMsMax: options.futureSkewMsMax,
      };
      let outcome: BatchOutcome;
      if (single && committer) {
        const submitted = await committer.submit(catalog, events[0], ingestOptions, Number(request.headers['content-length'] ?? 0) || 0);
        if (submitted.status === 'no_catalog') return noCatalog();
        if (submitted.status === 'overloaded') {
          reply.header('retry-after', String(submitted.retry_after_seconds));
          return sendProblem(reply, problemDetails(429, 'ingestion_lagging', `${submitted.detail}; nothing was stored, retry after ${submitted.retry_after_seconds} s`, undefined, { reason: submitted.reason, retry_after_seconds: submitted.retry_after_seconds }));
        }
        outcome = { batch_id: submitted.batch_id, counts: countStatuses([submitted.result]), results: [submitted.result] };
      } else if (catalog === 'current') throw new Error('a grouped request must be a single event'); // isSingleEvent and readEvents disagree
      else outcome = await ingestInChunks(options, catalog, events, preRejected, ingestOptions);
      if (!single) return reply.code(200).send(outcome);
      const result = outcome.results[0]!;
      if (result.status === 'rejected') return sendProblem(reply, problemDetails(400, 'invalid_event', 'the event was rejected; nothing was stored', result.problems));
      if (result.status === 'conflict') return sendProblem(reply, problemDetails(409, 'event_conflict', result.problems?.[0]?.message, result.problems));
      if (result.status === 'quarantined') return reply.code(202).send({ batch_id: outcome.batch_id, result });
      return reply.code(200).send(outcome);
    },
  );
}

/** The bodies readEvents reads as one event: structured single, binary mode, or a JSON object. */
function isSingleEvent(request: FastifyRequest): boolean {
  const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType === 'application/cloudevents+json') return true;
  if (contentType === 'application/x-ndjson' || contentType === 'application/cloudevents-batch+json') return false;
  if (request.headers['ce-specversion'] !== undefined) return true;
  return contentType === 'application/json' && !Array.isArray(request.body);
}

type ReadResult =
  | { events: unknown[]; single: boolean; bulk: boolean; preRejected: Map<number, EventOutcome> }
  | { problem: ReturnType<typeof problemDetails> };

function readEvents(request: FastifyRequest): ReadResult {
  const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const body = request.body;
  const preRejected = new Map<number, EventOutcome>();
  if (contentType === 'application/x-ndjson') {
    const lines = parseNdjson(String(body ?? ''));
    const events: unknown[] = [];
    for (const line of lines) {
      if (line.problem) preRejected.set(events.length, { index: events.length, status: 'rejected', problems: [line.problem] });
      events.push(line.problem ? undefined : line.value);
    }
    return { events, single: false, bulk: true, preRejected };
  }
  if (contentType === 'application/cloudevents+json' || contentType === 'application/cloudevents-batch+json') {
    let value: unknown;
    try {
      value = JSON.parse(String(body ?? ''));
    } catch (error) {
      return { problem: problemDetails(400, 'malformed_json', `the body is not JSON: ${(error as Error).message}`) };
    }
    if (contentType === 'application/cloudevents-batch+json') {
      if (!Array.isArray(value)) return { problem: problemDetails(400, 'not_a_batch', 'a batch must be a JSON array of CloudEvents') };
      return { events: value, single: false, bulk: false, preRejected };
    }
    return { events: [value], single: true, bulk: false, preRejected };
  }
  const specversion = request.headers['ce-specversion'];
  if (specversion !== undefined) {
    // Binary content mode: attributes in ce-* headers, the body is the event's data.
    const event: Record<string, unknown> = { data: body };
    for (const [name, value] of Object.entries(request.headers)) {
      if (name.startsWith('ce-') && typeof value === 'string') event[name.slice(3)] = decodeURIComponent(value);
    }
    if (contentType) event.datacontenttype = contentType;
    return { events: [event], single: true, bulk: false, preRejected };
  }
  if (contentType === 'application/json') {
    return Array.isArray(body) ? { events: body, single: false, bulk: false, preRejected } : { events: [body], single: true, bulk: false, preRejected };
  }
  return { problem: problemDetails(415, 'unsupported_media_type', `send ${STRING_TYPES.join(', ')} or a binary-mode CloudEvent`) };
}

async function ingestInChunks(
  options: ServerOptions,
  catalog: NonNullable<Awaited<ReturnType<typeof currentCatalog>>>,
  events: unknown[],
  preRejected: Map<number, EventOutcome>,
  ingestOptions: Parameters<typeof ingestBatch>[3],
): Promise<BatchOutcome> {
  const results: EventOutcome[] = [];
  const batchIds: string[] = [];
  for (let start = 0; start < events.length || start === 0; start += INGEST_LIMITS.batchEventsMax) {
    const slice = events.slice(start, start + INGEST_LIMITS.batchEventsMax);
    const indexes: number[] = [];
    const chunk: unknown[] = [];
    slice.forEach((event, offset) => {
      const pre = preRejected.get(start + offset);
      if (pre) results[start + offset] = pre;
      else {
        indexes.push(start + offset);
        chunk.push(event);
      }
    });
    if (chunk.length > 0) {
      const outcome = await ingestBatch(options.pool, catalog, chunk, ingestOptions);
      batchIds.push(outcome.batch_id);
      outcome.results.forEach((result, i) => (results[indexes[i]!] = { ...result, index: indexes[i]! }));
    }
    if (events.length === 0) break;
  }
  return { batch_id: batchIds.join(','), counts: countStatuses(results), results };
}
