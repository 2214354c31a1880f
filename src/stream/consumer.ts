// Stream ingestion: CloudEvents from a JetStream stream through a durable pull consumer, in batches, each batch made
// durable in Postgres by ingestBatch before any of its messages is acknowledged.
//   1. Fetch up to `batchMessagesMax` messages, waiting at most `batchWaitMs`. Crash after: nothing acked; JetStream
//      redelivers after `ackWaitMs`.
//   2. Decode each message (structured mode, or binary mode with ce-* headers) and call ingestBatch once for the batch.
//      Crash after the commit: the redelivered messages come back as duplicates, counted once.
//   3. Record the messages that are no event at all (not JSON, rejected by validation) in stream_rejections, keyed by
//      stream sequence and payload hash. Crash after: the redelivery records nothing twice.
//   4. Ack the events (accepted, duplicate, conflict, quarantined) and terminate the rejected messages so JetStream
//      never redelivers them. Crash before the acks reach the server: steps 1-3 repeat and change nothing.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import {
  AckPolicy,
  connect,
  DeliverPolicy,
  millis,
  nanos,
  type Consumer,
  type JetStreamManager,
  type JsMsg,
  type MsgHdrs,
  type NatsConnection,
} from 'nats';
import { currentCatalog } from '../catalog/service.js';
import { INGEST_LIMITS } from '../ingest/cloudevent.js';
import { ingestBatch, type EventStatus } from '../ingest/service.js';
import type { Problem } from '../domain/result.js';
import { decodeUtf8, parseStrictJson } from '../domain/strict-json.js';

export interface StreamSourceOptions {
  /** NATS server URL(s), comma-separated: nats://127.0.0.1:4222 */
  servers: string;
  /** The JetStream stream holding usage events; created when absent. */
  stream: string;
  /** Subjects the stream captures when Accrue creates it; one subject also filters the consumer. */
  subjects: string[];
  /** Durable consumer name: every process with the same name shares the work. */
  durable: string;
  batchMessagesMax?: number;
  batchWaitMs?: number;
  ackPendingMax?: number;
  ackWaitMs?: number;
  futureSkewMsMax?: number;
  log?: (line: Record<string, unknown>) => void;
  /** Called after a batch is durable and before its acks are sent (tests crash here; metrics may count). */
  onBatchCommitted?: (messages: number) => void | Promise<void>;
}

/** Limits (TigerStyle): each is checked when the consumer starts. */
export const STREAM_LIMITS = Object.freeze({
  /** Messages per batch by default; at most INGEST_LIMITS.batchEventsMax (one ingestBatch call per batch). */
  batchMessagesDefault: 500,
  /** How long a batch waits to fill, by default; JetStream pull requests expire no sooner than 1 s. */
  batchWaitMsDefault: 1000,
  batchWaitMsMin: 1000,
  /** Messages delivered and not yet acked across every process of the durable: bounds memory and redelivery. */
  ackPendingDefault: 4000,
  /** How long JetStream waits for an ack before redelivering; a batch must commit well within it. */
  ackWaitMsDefault: 60_000,
  /** A message may wait `batchWaitMs` for its batch to fill; ack_wait leaves at least this much beyond for the commit. */
  commitBudgetMsMin: 5000,
  /** Backoff between attempts when Postgres (or the catalog) is unavailable. */
  retryBackoffMsMax: 5000,
  /** Bytes of a message payload kept in stream_rejections (JetStream's own max_payload is 1 MiB by default). */
  rejectedPayloadBytesMax: 1024 * 1024,
});

export interface ConsumeStats {
  batches: number;
  messages: number;
  counts: Record<EventStatus, number>;
  /** Messages recorded in stream_rejections and terminated (counted in `counts.rejected` too). */
  terminated: number;
  /** Batches whose commit failed and was retried. */
  retries: number;
}

type Decoded = { ok: true; event: unknown } | { ok: false; problems: Problem[]; source?: string; id?: string };

/**
 * One NATS message as one CloudEvent. Binary mode when a ce-specversion header is present (attributes in ce-* headers,
 * percent-decoded, Content-Type as datacontenttype, the payload is the data); structured mode otherwise (the payload is the event).
 */
export function decodeMessage(payload: Uint8Array, headers?: MsgHdrs): Decoded {
  const decoded = decodeUtf8(payload);
  if (!decoded.ok)
    return { ok: false, problems: [{ path: '', code: 'not_utf8', message: `the message payload ${decoded.problem.message}` }] };
  const text = decoded.text;
  const ce = new Map<string, string>();
  let contentType: string | undefined;
  for (const key of headers?.keys() ?? []) {
    const name = key.toLowerCase();
    const value = headers!.get(key);
    if (name.startsWith('ce-')) ce.set(name.slice(3), percentDecode(value));
    else if (name === 'content-type') contentType = value.split(';')[0]!.trim().toLowerCase();
  }
  if (ce.has('specversion')) {
    const event: Record<string, unknown> = Object.fromEntries(ce);
    if (contentType && !event.datacontenttype) event.datacontenttype = contentType;
    if (text.trim() !== '') {
      // Read strictly (src/domain/strict-json.ts): repeated keys, inexact numbers, bad text, deep nesting are refused.
      const parsed = parseStrictJson(text);
      if (!parsed.ok) {
        const problems = parsed.problems.map((p) => ({
          path: p.path === '' ? 'data' : p.path.startsWith('[') ? `data${p.path}` : `data.${p.path}`,
          code: p.code,
          message: `binary mode: the payload ${p.message}`,
        }));
        return { ok: false, problems, source: ce.get('source'), id: ce.get('id') };
      }
      event.data = parsed.value;
    }
    return { ok: true, event };
  }
  const parsed = parseStrictJson(text);
  if (!parsed.ok) {
    const problems = parsed.problems.map((p) => ({
      path: p.path,
      code: p.code,
      message: p.path === '' ? `the payload ${p.message}` : p.message,
    }));
    return { ok: false, problems };
  }
  const value = parsed.value;
  if (Array.isArray(value))
    return { ok: false, problems: [{ path: '', code: 'not_one_event', message: 'a message carries one CloudEvent, not an array' }] };
  return { ok: true, event: value };
}

function percentDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Creates the stream (file storage, limits retention) and the durable pull consumer when absent; checks them when present. */
export async function ensureStreamConsumer(jsm: JetStreamManager, options: StreamSourceOptions): Promise<void> {
  const ackPendingMax = options.ackPendingMax ?? STREAM_LIMITS.ackPendingDefault;
  const ackWaitMs = options.ackWaitMs ?? STREAM_LIMITS.ackWaitMsDefault;
  const stream = await jsm.streams
    .info(options.stream)
    .catch((error: Error) => (/stream not found/i.test(error.message) ? undefined : Promise.reject(error)));
  let streamSubjects = options.subjects;
  if (!stream) {
    await jsm.streams.add({ name: options.stream, subjects: options.subjects });
    options.log?.({ level: 'info', msg: 'stream created', stream: options.stream, subjects: options.subjects });
  } else {
    streamSubjects = stream.config.subjects ?? [];
  }
  // The consumer reads the whole stream when the subjects are the stream's; one other subject filters it.
  const wholeStream = options.subjects.length === streamSubjects.length && options.subjects.every((s) => streamSubjects.includes(s));
  if (!wholeStream && options.subjects.length !== 1) {
    throw new Error(
      `stream ${options.stream} captures ${streamSubjects.join(', ')}; give those subjects, or one subject among them to filter on`,
    );
  }
  const filter = wholeStream ? {} : { filter_subject: options.subjects[0] };
  const consumer = await jsm.consumers
    .info(options.stream, options.durable)
    .catch((error: Error) => (/consumer not found/i.test(error.message) ? undefined : Promise.reject(error)));
  if (consumer) {
    if (consumer.config.ack_policy !== AckPolicy.Explicit) {
      throw new Error(
        `consumer ${options.durable} on stream ${options.stream} has ack policy ${consumer.config.ack_policy}; Accrue needs explicit acks (delete it or choose another --durable)`,
      );
    }
    const existingAckWaitMs = millis(consumer.config.ack_wait ?? 0);
    const needed = (options.batchWaitMs ?? STREAM_LIMITS.batchWaitMsDefault) + STREAM_LIMITS.commitBudgetMsMin;
    if (existingAckWaitMs < needed) {
      throw new Error(
        `consumer ${options.durable} on stream ${options.stream} has ack_wait ${existingAckWaitMs} ms; batches would be redelivered before they commit (needs at least ${needed} ms)`,
      );
    }
    return;
  }
  await jsm.consumers
    .add(options.stream, {
      durable_name: options.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: ackPendingMax,
      ack_wait: nanos(ackWaitMs),
      max_deliver: -1, // invalid messages are terminated, never retried; the rest must not be dropped by JetStream
      ...filter,
    })
    .catch((error: Error) => {
      throw new Error(
        `cannot create consumer ${options.durable} on stream ${options.stream} (subjects ${streamSubjects.join(', ')}) for ${options.subjects.join(', ')}: ${error.message}`,
      );
    });
  options.log?.({
    level: 'info',
    msg: 'consumer created',
    stream: options.stream,
    durable: options.durable,
    max_ack_pending: ackPendingMax,
  });
}

export interface StreamConsumer {
  /** Resolves when the consumer has stopped (after stop(), with the batch in hand committed and acked). */
  done: Promise<ConsumeStats>;
  /** Finish the batch in hand, then close the connection. */
  stop(): Promise<ConsumeStats>;
  stats: ConsumeStats;
}

/** Connects, ensures the stream and consumer, and consumes until stop(). */
export async function startStreamConsumer(pool: pg.Pool, options: StreamSourceOptions): Promise<StreamConsumer> {
  const { batchMax, batchWaitMs } = batchLimits(options);
  const log = options.log ?? (() => {});
  const nc = await connectStream(options);
  const consumer = await nc.jetstream().consumers.get(options.stream, options.durable);
  const stats: ConsumeStats = {
    batches: 0,
    messages: 0,
    counts: { accepted: 0, duplicate: 0, conflict: 0, rejected: 0, quarantined: 0 },
    terminated: 0,
    retries: 0,
  };
  const run: ConsumerRun = { pool, options, consumer, stats, log, batchMax, batchWaitMs, stopping: false, wake: () => {} };
  const done = consumeUntilStopped(run).finally(async () => {
    await nc.drain().catch(() => {}); // sends the last acks before closing
  });
  return {
    done,
    stats,
    async stop() {
      run.stopping = true;
      run.wake();
      return done;
    },
  };
}

/** The batch size and wait, checked with the ack limits they must fit in; a RangeError when they do not. */
function batchLimits(options: StreamSourceOptions): { batchMax: number; batchWaitMs: number } {
  const batchMax = options.batchMessagesMax ?? STREAM_LIMITS.batchMessagesDefault;
  const batchWaitMs = options.batchWaitMs ?? STREAM_LIMITS.batchWaitMsDefault;
  if (!Number.isSafeInteger(batchMax) || batchMax < 1 || batchMax > INGEST_LIMITS.batchEventsMax) {
    throw new RangeError(`batch size must be 1..${INGEST_LIMITS.batchEventsMax} messages, got ${batchMax}`);
  }
  if (!Number.isSafeInteger(batchWaitMs) || batchWaitMs < STREAM_LIMITS.batchWaitMsMin)
    throw new RangeError(`batch wait must be at least ${STREAM_LIMITS.batchWaitMsMin} ms, got ${batchWaitMs}`);
  const ackPendingMax = options.ackPendingMax ?? STREAM_LIMITS.ackPendingDefault;
  if (!Number.isSafeInteger(ackPendingMax) || ackPendingMax < batchMax)
    throw new RangeError(`max ack pending (${ackPendingMax}) must be at least the batch size (${batchMax})`);
  const ackWaitMs = options.ackWaitMs ?? STREAM_LIMITS.ackWaitMsDefault;
  if (!Number.isSafeInteger(ackWaitMs) || ackWaitMs < batchWaitMs + STREAM_LIMITS.commitBudgetMsMin) {
    throw new RangeError(
      `ack wait (${ackWaitMs} ms) must be at least the batch wait plus ${STREAM_LIMITS.commitBudgetMsMin} ms (${batchWaitMs + STREAM_LIMITS.commitBudgetMsMin} ms)`,
    );
  }
  return { batchMax, batchWaitMs };
}

/** Connects to NATS and ensures the stream and the durable consumer; the connection is closed when that fails. */
async function connectStream(options: StreamSourceOptions): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: options.servers.split(','), name: `accrue-ingest:${options.durable}` });
  } catch (error) {
    throw new Error(`cannot connect to NATS at ${options.servers}: ${(error as Error).message}`, { cause: error });
  }
  try {
    await ensureStreamConsumer(await nc.jetstreamManager(), options);
  } catch (error) {
    await nc.close();
    throw error;
  }
  return nc;
}

/** What the consumer's loop shares: its consumer and limits, its stats, whether it is stopping, and how to wake its sleep. */
interface ConsumerRun {
  pool: pg.Pool;
  options: StreamSourceOptions;
  consumer: Consumer;
  stats: ConsumeStats;
  log: (line: Record<string, unknown>) => void;
  batchMax: number;
  batchWaitMs: number;
  stopping: boolean;
  wake: () => void;
}

/** Sleeps `ms`, or until stop() wakes it. */
function sleep(run: ConsumerRun, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    run.wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}

async function fetchBatch(run: ConsumerRun): Promise<JsMsg[]> {
  const batch: JsMsg[] = [];
  const messages = await run.consumer.fetch({ max_messages: run.batchMax, expires: run.batchWaitMs });
  for await (const message of messages) batch.push(message);
  return batch;
}

async function consumeUntilStopped(run: ConsumerRun): Promise<ConsumeStats> {
  let failures = 0;
  while (!run.stopping) {
    let batch: JsMsg[];
    try {
      batch = await fetchBatch(run); // step 1
    } catch (error) {
      failures += 1;
      run.log({ level: 'warn', msg: 'stream fetch failed', stream: run.options.stream, error: (error as Error).message });
      await sleep(run, Math.min(STREAM_LIMITS.retryBackoffMsMax, 100 * 2 ** failures));
      continue;
    }
    failures = 0;
    if (batch.length === 0) continue;
    await processBatch(run, batch);
  }
  return run.stats;
}

// Retries the same batch until it commits: the messages stay ours (working() resets their ack timer) while Postgres is away.
async function processBatch(run: ConsumerRun, batch: JsMsg[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await ingestMessages(run.pool, run.options, batch, run.stats);
      return;
    } catch (error) {
      run.stats.retries += 1;
      run.log({
        level: 'warn',
        msg: 'stream batch not committed; retrying',
        stream: run.options.stream,
        messages: batch.length,
        attempt,
        error: (error as Error).message,
      });
      if (run.stopping && attempt >= 3) {
        // Leaving: hand the batch back to JetStream for another process rather than wait here.
        for (const message of batch) message.nak();
        return;
      }
      for (const message of batch) message.working();
      await sleep(run, Math.min(STREAM_LIMITS.retryBackoffMsMax, 100 * 2 ** attempt));
    }
  }
}

/** Steps 2-4 for one batch; throws (acking nothing) when the batch could not be made durable. */
async function ingestMessages(pool: pg.Pool, options: StreamSourceOptions, batch: JsMsg[], stats: ConsumeStats): Promise<void> {
  const catalog = await currentCatalog(pool);
  if (!catalog) throw new Error('no catalog is in force; apply one with `accrue catalog apply FILE`');
  const decoded = batch.map((message) => decodeMessage(message.data, message.headers));
  const events: unknown[] = [];
  const eventIndex: number[] = [];
  decoded.forEach((d, i) => {
    if (d.ok) {
      eventIndex.push(i);
      events.push(d.event);
    }
  });
  const statuses: EventStatus[] = decoded.map(() => 'rejected');
  const problems: Array<{ problems: Problem[]; source?: string; id?: string } | undefined> = decoded.map((d) => (d.ok ? undefined : d));
  if (events.length > 0) {
    const outcome = await ingestBatch(pool, catalog, events, { channel: 'stream', futureSkewMsMax: options.futureSkewMsMax }); // step 2
    outcome.results.forEach((result, k) => {
      const i = eventIndex[k]!;
      statuses[i] = result.status;
      if (result.status === 'rejected') problems[i] = { problems: result.problems ?? [], source: result.source, id: result.id };
    });
  }
  const rejected = batch.flatMap((message, i) => (statuses[i] === 'rejected' ? [{ message, why: problems[i]! }] : []));
  if (rejected.length > 0) {
    await pool.query(INSERT_REJECTIONS, [
      // step 3
      JSON.stringify(
        rejected.map(({ message, why }) => ({
          stream: options.stream,
          stream_seq: message.info.streamSequence,
          nats_subject: message.subject,
          payload_hash: createHash('sha256').update(message.data).digest('hex'),
          payload_hex: Buffer.from(message.data.subarray(0, STREAM_LIMITS.rejectedPayloadBytesMax)).toString('hex'),
          headers: headersObject(message.headers),
          source: why.source ?? null,
          id: why.id ?? null,
          problems: why.problems,
        })),
      ),
    ]);
  }
  await options.onBatchCommitted?.(batch.length);
  batch.forEach((message, i) => {
    // step 4
    if (statuses[i] === 'rejected')
      message.term(); // no reason text: servers before 2.10 do not parse one
    else message.ack();
  });
  stats.batches += 1;
  stats.messages += batch.length;
  stats.terminated += rejected.length;
  for (const status of statuses) stats.counts[status] += 1;
  options.log?.({
    level: 'info',
    msg: 'stream batch committed',
    stream: options.stream,
    messages: batch.length,
    ...Object.fromEntries(Object.entries(countOf(statuses)).filter(([, n]) => n > 0)),
  });
}

function countOf(statuses: EventStatus[]): Record<EventStatus, number> {
  const counts: Record<EventStatus, number> = { accepted: 0, duplicate: 0, conflict: 0, rejected: 0, quarantined: 0 };
  for (const s of statuses) counts[s] += 1;
  return counts;
}

function headersObject(headers: MsgHdrs | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const key of headers?.keys() ?? []) out[key] = headers!.values(key);
  return out;
}

const INSERT_REJECTIONS = `
INSERT INTO stream_rejections (stream, stream_seq, nats_subject, payload_hash, payload, headers, source, id, problems)
SELECT r.stream, r.stream_seq, r.nats_subject, r.payload_hash, decode(r.payload_hex, 'hex'), r.headers, r.source, r.id, r.problems
  FROM jsonb_to_recordset($1::jsonb) AS r(stream text, stream_seq bigint, nats_subject text, payload_hash text, payload_hex text,
       headers jsonb, source text, id text, problems jsonb)
ON CONFLICT (stream, stream_seq, payload_hash) DO NOTHING`;

/** Rejected stream messages, newest first, for `accrue stream rejected` and operators. */
export async function listStreamRejections(pool: pg.Pool, options: { stream?: string; limit?: number } = {}) {
  return (
    await pool.query<{
      seq: string;
      stream: string;
      stream_seq: string;
      nats_subject: string;
      source: string | null;
      id: string | null;
      problems: Problem[];
      received_at: Date;
      payload_bytes: number;
    }>(
      `SELECT seq, stream, stream_seq, nats_subject, source, id, problems, received_at, octet_length(payload) AS payload_bytes
         FROM stream_rejections WHERE ($1::text IS NULL OR stream = $1) ORDER BY seq DESC LIMIT $2`,
      [options.stream ?? null, options.limit ?? 100],
    )
  ).rows;
}
