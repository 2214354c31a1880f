// POST /v1/events: CloudEvents over HTTP (structured single, batch, binary mode) and NDJSON for bulk.
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { INGEST_LIMITS, parseNdjsonLine } from '../../ingest/cloudevent.js';
import { CatalogHead, countStatuses, rawKey, type BatchOutcome, type EventOutcome, type IngestOptions } from '../../ingest/service.js';
import { GroupCommitter, type GroupCommitOptions } from '../../ingest/group-commit.js';
import { problemDetails, problemRef, refuse } from '../problem.js';
import { refusedBodyProblem } from '../json-body.js';
import { stringEnum } from '../params.js';
import { decodeUtf8, parseStrictJsonBytes } from '../../domain/strict-json.js';
import type { Problem } from '../../domain/result.js';
import type { RoutePlugin } from '../route-support.js';

/** What POST /v1/events takes beyond the pool: the future skew allowed, and group commit for single events (false: each alone). */
export interface EventRouteOptions {
  futureSkewMsMax?: number;
  groupCommit?: GroupCommitOptions | false;
}

const STRING_TYPES = ['application/cloudevents+json', 'application/cloudevents-batch+json', 'application/x-ndjson'];
// Every body of this route is read as bytes and parsed strictly here (src/domain/strict-json.ts), so that a problem
// inside one event of a batch rejects that event alone, and an NDJSON body's lines are counted before any is read.
const BODY_TYPES = [...STRING_TYPES, 'application/json'];

const STATUSES = ['accepted', 'duplicate', 'conflict', 'rejected', 'quarantined'] as const;

const Outcome = Type.Object({
  index: Type.Integer(),
  source: Type.Optional(Type.String()),
  id: Type.Optional(Type.String()),
  status: stringEnum(STATUSES),
  problems: Type.Optional(
    Type.Array(
      Type.Object({
        path: Type.Optional(Type.String()),
        code: Type.Optional(Type.String()),
        message: Type.Optional(Type.String()),
      }),
    ),
  ),
});

const Counts = Type.Object({
  accepted: Type.Optional(Type.Integer()),
  duplicate: Type.Optional(Type.Integer()),
  conflict: Type.Optional(Type.Integer()),
  rejected: Type.Optional(Type.Integer()),
  quarantined: Type.Optional(Type.Integer()),
});

const CloudEvent = Type.Object(
  {
    specversion: Type.Literal('1.0'),
    id: Type.String({ minLength: 1, maxLength: INGEST_LIMITS.idLengthMax }),
    source: Type.String({ minLength: 1, maxLength: INGEST_LIMITS.sourceLengthMax }),
    type: Type.String({ minLength: 1, maxLength: INGEST_LIMITS.typeLengthMax }),
    subject: Type.String({ minLength: 1, maxLength: INGEST_LIMITS.subjectLengthMax }),
    time: Type.String({ format: 'date-time' }),
    datacontenttype: Type.Optional(Type.String()),
    dataschema: Type.Optional(Type.String()),
    data: Type.Optional(Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true })),
  },
  { description: 'a CloudEvent 1.0 in the JSON format, read strictly (docs/ingestion.md)', additionalProperties: true },
);

/** The bodies documented (the handler reads and checks them itself). */
const EventBodies = Type.Unsafe<unknown>({
  content: {
    'application/cloudevents+json': { schema: { $ref: 'CloudEvent#' } },
    'application/cloudevents-batch+json': {
      schema: {
        type: 'array',
        description: 'a JSON array of CloudEvents',
        maxItems: INGEST_LIMITS.batchEventsMax,
        items: { $ref: 'CloudEvent#' },
      },
    },
    'application/x-ndjson': {
      schema: { type: 'string', description: `one CloudEvent (JSON) per line, at most ${INGEST_LIMITS.ndjsonEventsMax} lines` },
    },
    'application/json': {
      schema: {
        oneOf: [{ $ref: 'CloudEvent#' }, { type: 'array', maxItems: INGEST_LIMITS.batchEventsMax, items: { $ref: 'CloudEvent#' } }],
      },
    },
  },
});

/** The request headers documented (the handler reads them itself). */
const EventHeaders = Type.Object({
  prefer: Type.Optional(
    Type.String({
      description:
        'return=minimal (RFC 7240): a batch or NDJSON body is answered with its counts and only the events not accepted (each with its index); the answer then carries Preference-Applied: return=minimal',
    }),
  ),
});

/** POST /v1/events as documented: every body kind and every answer. */
const EventsSchema = {
  summary: 'Ingest usage events',
  description: `CloudEvents 1.0 over HTTP: one event as application/cloudevents+json, a batch (at most ${INGEST_LIMITS.batchEventsMax}) as application/cloudevents-batch+json, binary mode (ce-* headers with the data as the body), or NDJSON (application/x-ndjson, at most ${INGEST_LIMITS.ndjsonEventsMax} lines) for bulk. Each event is answered: accepted, duplicate, conflict, rejected (with the field) or quarantined. Bodies are read strictly: invalid UTF-8 is refused (400, naming the byte); a repeated key, a number a double cannot carry exactly, NUL or an unpaired surrogate, or nesting beyond 64 levels rejects the event naming the field and the byte.`,
  tags: ['ingest'],
  headers: EventHeaders,
  body: EventBodies,
  response: {
    200: Type.Object(
      { batch_id: Type.Optional(Type.String()), counts: Type.Optional(Counts), results: Type.Optional(Type.Array(Outcome)) },
      { description: 'Every event answered; with Prefer: return=minimal, every event not accepted (counts cover all)' },
    ),
    202: Type.Object(
      { batch_id: Type.Optional(Type.String()), result: Type.Optional(Outcome) },
      { description: 'A single event quarantined (unknown type or subject)' },
    ),
    400: problemRef(),
    401: problemRef(),
    403: problemRef(),
    409: problemRef(),
    413: problemRef(),
    415: problemRef(),
    429: problemRef(),
  },
};

/** Its own scope (a plugin): this route's parsers (bytes for every JSON media type) replace the API-wide application/json one. */
export const eventRoutes: RoutePlugin<EventRouteOptions> = async (app, options) => {
  app.addSchema({ $id: 'CloudEvent', ...CloudEvent });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(BODY_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  // Single events share commits with their neighbours; the queue's bound turns requests away with 429 (docs/scaling.md).
  const committer = options.groupCommit === false ? undefined : new GroupCommitter(options.pool, options.groupCommit);
  if (committer) app.addHook('onClose', () => committer.drain());
  // Batches are validated against the head as last read; each write checks it is still the head (CatalogHead).
  const head = new CatalogHead(options.pool);

  app.post(
    '/v1/events',
    {
      config: { permission: 'events.write', entityScope: 'scoped' },
      // The body schemas below document the bodies; the handler reads and checks them itself, answering each event
      // of a batch on its own (a schema validator would refuse a whole batch for one bad event).
      validatorCompiler: () => () => true,
      schema: EventsSchema,
    },
    async (request, reply) => {
      // A grouped single event is validated against the catalog in force when its group is written (the committer keeps
      // the head and the write checks it is still the head); everything else reads it here.
      const grouped = committer !== undefined && isSingleEvent(request);
      const catalog = grouped ? 'current' : await head.get();
      if (!catalog) refuse(NO_CATALOG);
      const parsed = readEvents(request);
      if ('problem' in parsed) refuse(parsed.problem);
      const { events, single, preRejected } = parsed;
      if (!single && !parsed.bulk && events.length > INGEST_LIMITS.batchEventsMax)
        refuse(
          problemDetails(
            413,
            'batch_too_large',
            `a batch holds at most ${INGEST_LIMITS.batchEventsMax} events, got ${events.length}; send NDJSON for bulk`,
          ),
        );
      const ingestOptions = {
        channel: 'http' as const,
        apiKeyId: request.apiKey?.id,
        allowedSources: request.apiKey?.sources,
        allowedEntities: request.apiKey?.entities,
        futureSkewMsMax: options.futureSkewMsMax,
        plainText: parsed.plainText === true, // a batch read from bytes that vouch for its strings (strict-json.ts)
      };
      let outcome: BatchOutcome;
      if (single && committer) {
        const size = Number(request.headers['content-length'] ?? 0) || 0;
        outcome = submitted(await committer.submit(catalog, events[0], ingestOptions, size));
      } else if (catalog === 'current')
        throw new Error('a grouped request must be a single event'); // isSingleEvent and readEvents disagree
      else outcome = await ingestInChunks(head, events, preRejected, ingestOptions);
      if (!single) {
        reply.header('vary', 'Prefer');
        if (!prefersMinimal(request.headers.prefer)) return reply.code(200).send(outcome);
        // The accepted are counted, not listed: a client sending thousands a second needs only the exceptions.
        reply.header('preference-applied', 'return=minimal');
        return reply.code(200).send({ ...outcome, results: outcome.results.filter((result) => result.status !== 'accepted') });
      }
      const result = outcome.results[0]!;
      if (result.status === 'rejected')
        refuse(problemDetails(400, 'invalid_event', 'the event was rejected; nothing was stored', result.problems));
      if (result.status === 'conflict') refuse(problemDetails(409, 'event_conflict', result.problems?.[0]?.message, result.problems));
      if (result.status === 'quarantined') return reply.code(202).send({ batch_id: outcome.batch_id, result });
      return reply.code(200).send(outcome);
    },
  );
};

/** Whether a Prefer header (RFC 7240: preferences separated by commas, each `token[=value]` and its parameters) asks for return=minimal. */
function prefersMinimal(prefer: string | string[] | undefined): boolean {
  const values = Array.isArray(prefer) ? prefer : prefer === undefined ? [] : [prefer];
  return values.some((header) =>
    header.split(',').some((preference) => {
      const [name, value] = preference
        .split(';')[0]!
        .split('=')
        .map((part) => part.trim());
      return name?.toLowerCase() === 'return' && value?.replace(/^"(.*)"$/, '$1').toLowerCase() === 'minimal';
    }),
  );
}

const NO_CATALOG = problemDetails(409, 'no_catalog', 'no catalog is in force; apply one with PUT /v1/catalog first');

/** A grouped single event's answer as a batch of one, or its refusal (no catalog, or the queue over its bound: 429). */
function submitted(answer: Awaited<ReturnType<GroupCommitter['submit']>>): BatchOutcome {
  if (answer.status === 'no_catalog') refuse(NO_CATALOG);
  if (answer.status === 'overloaded')
    refuse(
      problemDetails(
        429,
        'ingestion_lagging',
        `${answer.detail}; nothing was stored, retry after ${answer.retry_after_seconds} s`,
        undefined,
        { reason: answer.reason, retry_after_seconds: answer.retry_after_seconds },
      ),
      { 'retry-after': String(answer.retry_after_seconds) },
    );
  return { batch_id: answer.batch_id, counts: countStatuses([answer.result]), results: [answer.result] };
}

/** The bodies readEvents reads as one event: structured single, binary mode, or a JSON object. */
function isSingleEvent(request: FastifyRequest): boolean {
  const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType === 'application/cloudevents+json') return true;
  if (contentType === 'application/x-ndjson' || contentType === 'application/cloudevents-batch+json') return false;
  if (request.headers['ce-specversion'] !== undefined) return true;
  return contentType === 'application/json' && firstByte(request.body) !== 0x5b; // not a JSON array
}

/** The first byte of a body that is not JSON whitespace, or -1. */
function firstByte(body: unknown): number {
  if (!Buffer.isBuffer(body)) return -1;
  for (const b of body) if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return b;
  return -1;
}

type ReadResult =
  | { events: unknown[]; single: boolean; bulk: boolean; preRejected: Map<number, EventOutcome>; plainText?: boolean }
  | { problem: ReturnType<typeof problemDetails> };

const tooManyEvents = (max: number, what: string, hint: string) =>
  problemDetails(413, 'batch_too_large', `${what} holds at most ${max} events; nothing was stored; ${hint}`, undefined, { limit: max });

function readEvents(request: FastifyRequest): ReadResult {
  const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
  const preRejected = new Map<number, EventOutcome>();
  if (contentType === 'application/x-ndjson') return readNdjson(body);
  const specversion = request.headers['ce-specversion'];
  const structured = contentType === 'application/cloudevents+json' || contentType === 'application/cloudevents-batch+json';
  if (structured || (contentType === 'application/json' && specversion === undefined)) {
    const batch = contentType === 'application/cloudevents-batch+json' || (contentType === 'application/json' && firstByte(body) === 0x5b);
    // A batch is read element by element: what is wrong inside one event rejects that event alone.
    const parsed = parseStrictJsonBytes(body, batch ? { perElement: true, elementsMax: INGEST_LIMITS.batchEventsMax } : {});
    if (!parsed.ok) {
      if (parsed.problems[0]?.code === 'too_many_elements')
        return { problem: tooManyEvents(INGEST_LIMITS.batchEventsMax, 'a batch', 'send NDJSON for bulk') };
      return { problem: refusedBodyProblem(parsed.problems) };
    }
    if (!batch) return { events: [parsed.value], single: true, bulk: false, preRejected };
    if (!Array.isArray(parsed.value)) return { problem: problemDetails(400, 'not_a_batch', 'a batch must be a JSON array of CloudEvents') };
    for (const [index, problems] of parsed.elementProblems) preRejected.set(index, rejectedOutcome(index, parsed.value[index], problems));
    return { events: parsed.value, single: false, bulk: false, preRejected, plainText: parsed.plainText === true };
  }
  if (specversion !== undefined) {
    // Binary content mode: attributes in ce-* headers (percent-encoded), the body is the event's data.
    const event: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (!name.startsWith('ce-') || typeof value !== 'string') continue;
      const decoded = percentDecode(value);
      if (decoded === undefined)
        return {
          problem: problemDetails(
            400,
            'malformed_header',
            `the header ${name} is not valid percent-encoded UTF-8: ${JSON.stringify(value.slice(0, 80))}; nothing was stored`,
            [{ path: name, code: 'malformed_header', message: 'is not valid percent-encoded UTF-8' }],
          ),
        };
      event[name.slice(3)] = decoded;
    }
    if (typeof request.body === 'string') {
      // A text body (text/plain, decoded strictly by the API-wide parser): kept as it is for the validator to refuse.
      event.data = request.body;
      event.datacontenttype = contentType;
    } else if (contentType) {
      const parsed = parseStrictJsonBytes(body);
      if (!parsed.ok)
        return {
          problem: refusedBodyProblem(
            parsed.problems.map((p) => ({
              ...p,
              path: p.path === '' ? 'data' : p.path.startsWith('[') ? `data${p.path}` : `data.${p.path}`,
            })),
            "the body (the event's data)",
          ),
        };
      event.data = parsed.value;
      event.datacontenttype = contentType;
    }
    return { events: [event], single: true, bulk: false, preRejected };
  }
  return { problem: problemDetails(415, 'unsupported_media_type', `send ${STRING_TYPES.join(', ')} or a binary-mode CloudEvent`) };
}

/** NDJSON: lines counted first (bounded work and answer), the bytes decoded fatally, then each line read strictly. */
function readNdjson(body: Buffer): ReadResult {
  const max = INGEST_LIMITS.ndjsonEventsMax;
  let lines = 0;
  for (let at = body.indexOf(0x0a); at !== -1 && lines <= max; at = body.indexOf(0x0a, at + 1)) lines += 1;
  if (body.length > 0 && body[body.length - 1] !== 0x0a) lines += 1; // a last line without its newline
  if (lines > max)
    return {
      problem: tooManyEvents(
        max,
        'an NDJSON body',
        `it has more than ${max} lines; send larger loads with \`accrue ingest FILE\` or JetStream (docs/ingestion.md)`,
      ),
    };
  const decoded = decodeUtf8(body, (offset) => `byte ${offset} (line ${lineOf(body, offset)})`);
  if (!decoded.ok) return { problem: refusedBodyProblem([decoded.problem]) };
  const events: unknown[] = [];
  const preRejected = new Map<number, EventOutcome>();
  const text = decoded.text;
  let start = 0;
  for (let lineNo = 1; start <= text.length; lineNo += 1) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const entry = parseNdjsonLine(text.slice(start, end > start && text.charCodeAt(end - 1) === 0x0d ? end - 1 : end), lineNo);
    start = end + 1;
    if (!entry) continue;
    if (entry.problems) preRejected.set(events.length, rejectedOutcome(events.length, undefined, entry.problems));
    events.push(entry.problems ? undefined : entry.value);
  }
  return { events, single: false, bulk: true, preRejected };
}

function lineOf(body: Buffer, offset: number): number {
  let line = 1;
  for (let at = body.indexOf(0x0a); at !== -1 && at < offset; at = body.indexOf(0x0a, at + 1)) line += 1;
  return line;
}

function rejectedOutcome(index: number, raw: unknown, problems: readonly Problem[]): EventOutcome {
  const { source, id } = rawKey(raw);
  return { index, source, id, status: 'rejected', problems: problems.map((p) => ({ path: p.path, code: p.code, message: p.message })) };
}

/** decodeURIComponent, or undefined for a malformed escape or one that is not UTF-8 (never a URIError). */
function percentDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

async function ingestInChunks(
  head: CatalogHead,
  events: unknown[],
  preRejected: Map<number, EventOutcome>,
  ingestOptions: IngestOptions,
): Promise<BatchOutcome> {
  const results: EventOutcome[] = [];
  const batchIds: string[] = [];
  for (let start = 0; start < events.length || start === 0; start += INGEST_LIMITS.batchEventsMax) {
    // An event the reader refused goes through as a placeholder the validator rejects, so the batch record counts it
    // (accrue_events_received_total{outcome="rejected"}); its answer is the reader's, naming field and byte.
    const chunk = events
      .slice(start, start + INGEST_LIMITS.batchEventsMax)
      .map((event, offset) => (preRejected.has(start + offset) ? undefined : event));
    if (chunk.length > 0) {
      const outcome = await head.ingest(chunk, ingestOptions);
      if (!outcome) refuse(NO_CATALOG); // a catalog in force was read before; versions are never removed
      batchIds.push(outcome.batch_id);
      outcome.results.forEach(
        (result, i) => (results[start + i] = preRejected.get(start + i) ?? (start === 0 ? result : { ...result, index: start + i })),
      );
    }
    if (events.length === 0) break;
  }
  return { batch_id: batchIds.join(','), counts: countStatuses(results), results };
}
