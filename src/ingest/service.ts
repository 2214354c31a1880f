// Ingestion: validate, deduplicate by (source, id), and make every accepted event durable before answering.
// One transaction per batch: events, conflicts, quarantine and the batch record commit together or not at all.
import { usageBatchId } from '../domain/keys.js';
import type pg from 'pg';
import { escapeLiteral } from 'pg';
import { validateEvent, eventContentHash, INGEST_LIMITS, type IngestContext, type NormalizedEvent } from './cloudevent.js';
import { stringRecordJson } from '../domain/event.js';
import { currentCatalog, type CatalogVersion } from '../catalog/service.js';
import { invariant, type Problem } from '../domain/result.js';
import { transaction } from '../store/store.js';
import { CopyLines, copyText } from '../store/copy-text.js';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { ATTRIBUTES, SPANS, inSpan } from '../observe/tracing.js';

export type EventStatus = 'accepted' | 'duplicate' | 'conflict' | 'rejected' | 'quarantined';

export interface EventOutcome {
  index: number;
  source?: string;
  id?: string;
  status: EventStatus;
  problems?: Problem[];
}

export interface BatchOutcome {
  batch_id: string;
  counts: Record<EventStatus, number>;
  results: EventOutcome[];
}

export interface IngestOptions {
  channel: 'http' | 'file' | 'stream' | 'replay';
  apiKeyId?: string;
  allowedSources?: readonly string[];
  /** The legal entities the sending key is limited to (empty or absent: every entity); others' customers are rejected. */
  allowedEntities?: readonly string[];
  now?: Date;
  futureSkewMsMax?: number;
  /**
   * The catalog given was read as the head (the latest version) and may have been kept since: the batch is written
   * only if it is still the head when written, checked by the write itself; otherwise nothing is written and
   * CatalogMovedError is thrown, for the caller to read the head again and retry.
   */
  requireHead?: boolean;
  /**
   * Every string of the events (member names too) is printable ASCII without `"` or `\`, as the caller proved from the
   * bytes it read them from (StrictJsonResult.plainText): written as it is in canonical JSON and in COPY's text format,
   * without the test for characters either escapes. Never set for events from anywhere else.
   */
  plainText?: boolean;
}

/** Thrown by ingestBatch with requireHead when a catalog version newer than the one given has been applied. */
export class CatalogMovedError extends Error {
  constructor(
    readonly given: number,
    readonly head: number | null,
  ) {
    super(`catalog version ${given} is no longer the latest (version ${head} is): nothing was written`);
    this.name = 'CatalogMovedError';
  }
}

/**
 * The catalog head as last read, for a writer that ingests with the catalog in force: each write asks for it to be
 * still the head (requireHead, checked by the write under events' lock), and a write refused because a newer version
 * was applied reads the head again and is validated against that. Reading the head costs a round trip only after a
 * version is applied, not on every batch.
 */
export class CatalogHead {
  private head: CatalogVersion | undefined;

  constructor(private readonly pool: pg.Pool) {}

  /** The head as last read; read now when never read or when no catalog was in force then. */
  async get(): Promise<CatalogVersion | undefined> {
    return (this.head ??= await currentCatalog(this.pool));
  }

  /** ingestBatch against the head; undefined when no catalog is in force. */
  async ingest(rawEvents: readonly unknown[], options: IngestOptions): Promise<BatchOutcome | undefined> {
    for (let attempt = 0; ; attempt += 1) {
      const catalog = await this.get();
      if (!catalog) return undefined;
      try {
        return await ingestBatch(this.pool, catalog, rawEvents, { ...options, requireHead: true });
      } catch (error) {
        if (!(error instanceof CatalogMovedError) || attempt >= 3) throw error;
        this.head = undefined;
      }
    }
  }
}

/** SQLSTATE of accrue_abort (migration 018) when a key the long way found free was stored meanwhile. */
const KEY_CLAIMED_MEANWHILE = 'AC001';
/** SQLSTATE of a unique violation: on events_pkey, a key of the batch is stored already. */
const UNIQUE_VIOLATION = '23505';

export const FUTURE_SKEW_MS_MAX_DEFAULT = 5 * 60 * 1000;

export { usageBatchId } from '../domain/keys.js';

/** The (source, id) an event carries, as far as it carries them as strings (for answering a rejected event). */
export function rawKey(raw: unknown): { source?: string; id?: string } {
  if (raw && typeof raw === 'object') {
    const r = raw as Record<string, unknown>;
    return { source: typeof r.source === 'string' ? r.source : undefined, id: typeof r.id === 'string' ? r.id : undefined };
  }
  return {};
}

function contentHashOf(raw: unknown): string {
  return eventContentHash(raw); // total: a value RFC 8785 cannot write (1e309, a lone surrogate, deep nesting) still hashes
}

interface Conflict {
  index: number;
  source: string;
  id: string;
  hash: string;
  existing: string;
  raw: unknown;
}

/** One event past validation (valid, or to be quarantined): its key, its content hash and what validation made of it. */
interface Occurrence {
  index: number;
  source: string;
  id: string;
  hash: string;
  raw: unknown;
  /** Set when the event is valid: what is stored if it is accepted. */
  event?: NormalizedEvent;
  /** Set when the catalog does not know its type or subject. */
  quarantine?: { reason: string; problems: Problem[] };
}

/** Every occurrence of one (source, id) in the batch, and the first valid one: the one stored if the key is free. */
interface KeyGroup {
  source: string;
  id: string;
  first?: Occurrence;
  occurrences: Occurrence[];
}

/** What the verdicts of a batch ask to write. */
interface Judged {
  results: EventOutcome[];
  accepted: Occurrence[];
  conflicts: Conflict[];
  quarantined: Occurrence[];
}

/**
 * The verdict of every occurrence of every key. The copy that decides a key is the stored one when there is one,
 * else the batch's first valid occurrence, which is then accepted. Each other occurrence, valid or not, is a
 * duplicate when its content hash is the deciding copy's, a conflict against that copy otherwise. A key with no
 * stored copy and no valid occurrence decides nothing yet: its occurrences are quarantined (each content once).
 */
function judge(groups: ReadonlyMap<string, KeyGroup>, stored: ReadonlyMap<string, string>, known: readonly EventOutcome[]): Judged {
  const judged: Judged = { results: known.slice(), accepted: [], conflicts: [], quarantined: [] };
  for (const [key, group] of groups) {
    const storedHash = stored.get(key);
    const deciding = storedHash ?? group.first?.hash;
    for (const o of group.occurrences) {
      const { index, source, id } = o;
      if (deciding === undefined) {
        judged.quarantined.push(o);
        judged.results[index] = { index, source, id, status: 'quarantined', problems: o.quarantine!.problems };
      } else if (storedHash === undefined && o === group.first) {
        judged.accepted.push(o);
        judged.results[index] = { index, source, id, status: 'accepted' };
      } else if (o.hash === deciding) {
        judged.results[index] = { index, source, id, status: 'duplicate' };
      } else {
        judged.conflicts.push({ index, source, id, hash: o.hash, existing: deciding, raw: o.raw });
      }
    }
  }
  conflictResults(judged.results, judged.conflicts);
  return judged;
}

export function ingestBatch(
  pool: pg.Pool,
  catalog: CatalogVersion,
  rawEvents: readonly unknown[],
  options: IngestOptions,
): Promise<BatchOutcome> {
  return inSpan(SPANS.ingestBatch, { 'accrue.channel': options.channel, 'accrue.events_received': rawEvents.length }, async (span) => {
    const outcome = await ingestBatchUntraced(pool, catalog, rawEvents, options);
    span.setAttributes({
      [ATTRIBUTES.batch]: outcome.batch_id,
      ...Object.fromEntries(Object.entries(outcome.counts).map(([status, n]) => [`accrue.events_${status}`, n])),
    });
    return outcome;
  });
}

async function ingestBatchUntraced(
  pool: pg.Pool,
  catalog: CatalogVersion,
  rawEvents: readonly unknown[],
  options: IngestOptions,
): Promise<BatchOutcome> {
  if (rawEvents.length > INGEST_LIMITS.batchEventsMax) {
    throw new RangeError(`a batch holds at most ${INGEST_LIMITS.batchEventsMax} events, got ${rawEvents.length}`);
  }
  const context = validationContext(catalog, options);
  const { rejected, groups, batchKeys } = validateBatch(rawEvents, context);
  const batchId = usageBatchId(
    batchKeys.length > 0 ? batchKeys : [{ source: '', id: `empty:${rawEvents.length}`, hash: contentHashOf(rawEvents) }],
  );
  const batch: BatchWrite = { pool, catalog, options, batchId, received: rawEvents.length, groups, rejected };
  return (await writeHopefully(batch)) ?? (await writeTheLongWay(batch));
}

/** What validation needs from the catalog in force and the caller's options. */
function validationContext(catalog: CatalogVersion, options: IngestOptions): IngestContext {
  const allowed = options.allowedSources && options.allowedSources.length > 0 ? new Set(options.allowedSources) : undefined;
  const entities = options.allowedEntities && options.allowedEntities.length > 0 ? new Set(options.allowedEntities) : undefined;
  return {
    metersByType: catalog.index.metersByType,
    meterValueMax: catalog.index.meterValueMax,
    customerByTenant: catalog.index.customerByTenant,
    now: options.now ?? new Date(),
    futureSkewMsMax: options.futureSkewMsMax ?? FUTURE_SKEW_MS_MAX_DEFAULT,
    allowedSources: allowed ? (source: string) => allowed.has(source) : undefined,
    allowedCustomer: entities ? (customer: string) => entities.has(catalog.index.customers.get(customer)?.legal_entity ?? '') : undefined,
    plainText: options.plainText === true,
  };
}

/** A batch past validation: the verdicts of the rejected, by index, and every other event in the group of its key. */
interface Validated {
  rejected: EventOutcome[];
  groups: Map<string, KeyGroup>;
  /** The key and content hash of every event not rejected, in batch order (the batch id's input). */
  batchKeys: Array<{ source: string; id: string; hash: string }>;
}

/** Validation first; the rejected have their verdict, every other event joins the group of its (source, id). */
function validateBatch(rawEvents: readonly unknown[], context: IngestContext): Validated {
  const rejected: EventOutcome[] = new Array(rawEvents.length);
  const groups = new Map<string, KeyGroup>();
  const batchKeys: Validated['batchKeys'] = [];
  rawEvents.forEach((raw, index) => {
    const verdict = validateEvent(raw, index, context);
    if (verdict.status === 'rejected') {
      const { source, id } = rawKey(raw);
      rejected[index] = { index, source, id, status: 'rejected', problems: verdict.problems };
      return;
    }
    // Past validation, source and id are known to be non-empty strings.
    const { source, id, content_hash: hash } = verdict.event;
    const occurrence: Occurrence =
      verdict.status === 'valid'
        ? { index, source, id, hash, raw, event: verdict.event }
        : { index, source, id, hash, raw, quarantine: { reason: verdict.reason, problems: verdict.problems } };
    batchKeys.push(occurrence); // its source, id and hash
    addOccurrence(groups, occurrence);
  });
  return { rejected, groups, batchKeys };
}

function addOccurrence(groups: Map<string, KeyGroup>, occurrence: Occurrence): void {
  const { source, id } = occurrence;
  const key = `${source}\u0000${id}`;
  let group = groups.get(key);
  if (!group) groups.set(key, (group = { source, id, occurrences: [] }));
  group.occurrences.push(occurrence);
  if (occurrence.event && !group.first) group.first = occurrence;
}

/** One validated batch on its way to the store. */
interface BatchWrite {
  pool: pg.Pool;
  catalog: CatalogVersion;
  options: IngestOptions;
  batchId: string;
  /** How many events the batch holds. */
  received: number;
  groups: ReadonlyMap<string, KeyGroup>;
  rejected: readonly EventOutcome[];
}

/**
 * The batch record's values as SQL literals (insertBatch's, sent in one simple query with COMMIT): text quoted by pg's
 * escapeLiteral, counts as integers, no key as NULL.
 */
function batchLiterals(batch: BatchWrite, counts: Record<EventStatus, number>): string[] {
  return batchRow(batch, counts).map((value) => {
    if (value === null) return 'NULL';
    if (typeof value === 'string') return escapeLiteral(value);
    if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
    throw new TypeError(`a batch record value must be text, a whole number or null, got ${String(value)}`);
  });
}

/** The batch record's parameters ($2.. of INSERT_EVENTS, $1.. of insertBatch). */
function batchRow(batch: BatchWrite, counts: Record<EventStatus, number>): unknown[] {
  return [
    batch.batchId,
    batch.options.channel,
    batch.options.apiKeyId ?? null,
    batch.received,
    counts.accepted,
    counts.duplicate,
    counts.conflict,
    counts.rejected,
    counts.quarantined,
  ];
}

/**
 * The common batch, every event valid or rejected and any repeat of a key carrying its first content, is judged as if
 * none of its keys were stored and written with COPY in one transaction, with its batch record. A key stored already
 * fails the COPY on the events' primary key: nothing is written and the batch takes the long way (undefined here),
 * which judges every key against its stored copy. So does a batch that accepts nothing, or quarantines or conflicts.
 * Three round trips in all: BEGIN with the lock and the batch state (one simple query), the COPY, and the batch record
 * with COMMIT (one simple query); each round trip costs the API server and PostgreSQL a wake-up and a read.
 */
async function writeHopefully(batch: BatchWrite): Promise<BatchOutcome | undefined> {
  const { pool, catalog, options, batchId } = batch;
  const hopeful = judge(batch.groups, new Map(), batch.rejected);
  if (hopeful.accepted.length === 0 || hopeful.conflicts.length > 0 || hopeful.quarantined.length > 0) return undefined;
  const counts = countStatuses(hopeful.results);
  const accepted = inKeyOrder(hopeful.accepted);
  const client = await pool.connect();
  try {
    const { isLate, seqs } = await lockAndReadState(client, accepted, catalog, options.requireHead, 'BEGIN; ', accepted.length);
    const lines = copyRows(accepted, batchId, isLate, seqs, options.plainText === true);
    await pipeline(Readable.from([lines.bytes()]), client.query(copyFrom(COPY_EVENTS)));
    lines.release(); // the COPY completed: every byte was sent and read (after a failure some may still be queued)
    await client.query(`${insertBatch(batchLiterals(batch, counts))}; COMMIT`);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    const { code, constraint } = error as { code?: string; constraint?: string };
    if (code === UNIQUE_VIOLATION && constraint === 'events_pkey') return undefined;
    throw error;
  } finally {
    client.release();
  }
  return { batch_id: batchId, counts, results: hopeful.results };
}

/**
 * Every writer stores a batch's events in one order of their keys, so two batches sharing keys never wait on each
 * other both ways (a deadlock): the second to reach a shared key waits for the first to commit, then finds it stored.
 */
function inKeyOrder(accepted: readonly Occurrence[]): Occurrence[] {
  const byKey = (a: Occurrence, b: Occurrence) =>
    a.source < b.source ? -1 : a.source > b.source ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  return accepted.slice().sort(byKey);
}

/**
 * First in every transaction that writes events: takes events' ROW EXCLUSIVE lock (a close's watermark and its final
 * late-flagging wait for it, and it waits for them) and reads the batch's state: the catalog head when asked, and which
 * of the billing periods of the events to write are closed, per legal entity. Read under the lock, so no close can mark
 * a period closed between this and the write. Two statements sent as one simple query (one round trip; after
 * `opening`, the hopeful path's BEGIN), so their values are literals: `true`/`false` and billing periods (YYYY-MM, from
 * canonical times), quoted by pg's escapeLiteral. The late test it returns throws CatalogMovedError (lateTest).
 * Asked for `seqsWanted`, it also takes that many seqs for the events to write, in blocks (seqsOfBlocks).
 */
async function lockAndReadState(
  client: pg.PoolClient,
  accepted: readonly Occurrence[],
  catalog: CatalogVersion,
  requireHead: boolean | undefined,
  opening = '',
  seqsWanted = 0,
): Promise<{ isLate: (event: NormalizedEvent) => boolean; seqs: string[] }> {
  const periods = [...new Set(accepted.map((o) => billingPeriodOf(o.event!.time)))].map((period) => escapeLiteral(period));
  const statements =
    `${opening}LOCK TABLE events IN ROW EXCLUSIVE MODE; ` +
    batchState(
      requireHead === true ? 'true' : 'false',
      periods.length === 0 ? "'{}'::text[]" : `ARRAY[${periods.join(', ')}]::text[]`,
      Math.ceil(seqsWanted / SEQ_BLOCK),
    );
  const results = (await client.query(statements)) as unknown as pg.QueryResult[];
  const state = results[results.length - 1]!.rows[0] as BatchState;
  return { isLate: lateTest(state, catalog, requireHead), seqs: seqsOfBlocks(state.seq_blocks, seqsWanted) };
}

/**
 * The batch state's row: the catalog head (when asked), each closed period of the batch as [entity, period], and the
 * first seq of each block of seqs taken (null when none were asked for).
 */
interface BatchState {
  head: number | null;
  closed: Array<[string, string]>;
  seq_blocks: string[] | null;
}

/**
 * The seqs of the events a COPY writes, `wanted` of them, from blocks the sequence gave: each nextval of events'
 * identity sequence is the first of SEQ_BLOCK seqs that are the caller's alone (migration 036 makes it count by
 * SEQ_BLOCK), so a batch of up to SEQ_BLOCK events takes one nextval instead of one for each event. Taken under events'
 * ROW EXCLUSIVE lock and written in the same transaction, as the identity's own would be: a catch-up's horizon, read
 * under the SHARE lock, waits for this transaction, and every nextval after it is above every seq of its blocks.
 */
function seqsOfBlocks(blocks: readonly string[] | null, wanted: number): string[] {
  const firsts = (blocks ?? []).map((first) => BigInt(first));
  invariant(firsts.length * SEQ_BLOCK >= wanted, `ingest: ${wanted} seqs wanted, ${firsts.length} blocks of ${SEQ_BLOCK} taken`);
  // As decimal text for COPY: by number arithmetic below 2^53 (a bigint's text costs more to write), else by bigint.
  const safe = firsts.every((first) => first + BigInt(SEQ_BLOCK) <= BigInt(Number.MAX_SAFE_INTEGER));
  const at = (i: number) => {
    const first = firsts[Math.floor(i / SEQ_BLOCK)]!;
    return safe ? String(Number(first) + (i % SEQ_BLOCK)) : String(first + BigInt(i % SEQ_BLOCK));
  };
  return Array.from({ length: wanted }, (_, i) => at(i));
}

/**
 * Whether an event is late (its billing period is closed for its customer's legal entity), from the batch state read
 * under the lock; throws CatalogMovedError when the head was asked for and the catalog is no longer it.
 */
function lateTest(state: BatchState, catalog: CatalogVersion, requireHead: boolean | undefined): (event: NormalizedEvent) => boolean {
  if (requireHead && state.head !== catalog.version) throw new CatalogMovedError(catalog.version, state.head);
  if (state.closed.length === 0) return () => false;
  const closed = new Set(state.closed.map(([entity, period]) => `${entity}\u0000${period}`));
  return (event) => closed.has(`${catalog.index.customers.get(event.customer)?.legal_entity ?? ''}\u0000${billingPeriodOf(event.time)}`);
}

/** The billing period (UTC month, YYYY-MM) of a canonical event time (2026-11-03T10:00:00.000Z). */
function billingPeriodOf(time: string): string {
  return time.slice(0, 7);
}

/**
 * The accepted events as COPY's text format, one line each, in the columns of COPY_EVENTS. Each value is text
 * validation produced (no NUL, no unpaired surrogate); backslash, tab, newline and carriage return are escaped. With
 * `plainText` (IngestOptions.plainText) the strings the events carried have none of them and are written as they
 * are; the customer, meter ids and dimension names, from the catalog, are escaped all the same.
 */
function copyRows(
  accepted: readonly Occurrence[],
  batchId: string,
  isLate: (event: NormalizedEvent) => boolean,
  seqs: readonly string[],
  plainText: boolean,
): CopyLines {
  const batch = copyText(batchId);
  const carried = plainText ? (text: string) => text : copyText;
  const lines = new CopyLines(accepted.length * 512);
  for (const [i, { event }] of accepted.entries()) {
    const e = event!;
    const late = isLate(e) ? 't' : 'f';
    lines.add(
      `${seqs[i]!}\t${carried(e.source)}\t${carried(e.id)}\t${carried(e.type)}\t${carried(e.subject)}\t${copyText(e.customer)}\t${e.time}\t` +
        `${carried(e.data_json ?? JSON.stringify(e.data))}\t${copyText(stringRecordJson(e.values))}\t${copyText(stringRecordJson(e.dimensions))}\t` +
        `${e.content_hash}\t${batch}\t${late}\n`,
    );
  }
  return lines;
}

/**
 * The long way: one transaction reads the stored copy of every key, judges every event against it, and writes
 * what the verdicts ask. Its events' statement again writes nothing unless every key it accepts is still free; a
 * key stored by another writer since it was read rolls the transaction back, to be judged again against that copy.
 * Every retry follows a key of the batch newly stored, so there are at most as many as the batch has keys.
 */
async function writeTheLongWay(batch: BatchWrite): Promise<BatchOutcome> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await transaction(batch.pool, (client) => writeJudged(client, batch));
    } catch (error) {
      const meanwhile = (error as { code?: string }).code === KEY_CLAIMED_MEANWHILE;
      if (!meanwhile || attempt >= batch.groups.size) throw error;
    }
  }
}

/** One attempt of the long way, inside its transaction. */
async function writeJudged(client: pg.PoolClient, batch: BatchWrite): Promise<BatchOutcome> {
  const { catalog, options, batchId, groups } = batch;
  const firsts = [...groups.values()].flatMap((group) => (group.first ? [group.first] : []));
  const { isLate } = await lockAndReadState(client, firsts, catalog, options.requireHead);
  const stored = groups.size > 0 ? await existingHashes(client, [...groups.values()]) : new Map<string, string>();
  const judged = judge(groups, stored, batch.rejected);
  const counts = countStatuses(judged.results);
  if (judged.quarantined.length > 0) await insertQuarantined(client, judged.quarantined, batchId);
  if (judged.conflicts.length > 0) await insertConflicts(client, judged.conflicts, batchId);
  if (judged.accepted.length === 0) {
    await client.query(insertBatch(BATCH_PARAMETERS), batchRow(batch, counts));
  } else {
    await client.query(INSERT_EVENTS, [eventRows(inKeyOrder(judged.accepted), isLate), ...batchRow(batch, counts)]);
  }
  return { batch_id: batchId, counts, results: judged.results };
}

async function insertQuarantined(client: pg.PoolClient, quarantined: readonly Occurrence[], batchId: string): Promise<void> {
  await client.query(INSERT_QUARANTINE, [
    JSON.stringify(
      quarantined.map((q) => ({
        source: q.source,
        id: q.id,
        content_hash: q.hash,
        reason: q.quarantine!.reason,
        problems: q.quarantine!.problems,
        event: q.raw,
      })),
    ),
    batchId,
  ]);
}

/** The long way's events statement's input: one row per accepted event. */
function eventRows(accepted: readonly Occurrence[], isLate: (event: NormalizedEvent) => boolean): string {
  return JSON.stringify(
    accepted.map(({ event }) => ({
      source: event!.source,
      id: event!.id,
      type: event!.type,
      subject: event!.subject,
      customer_id: event!.customer,
      time: event!.time,
      data: event!.data,
      meter_values: event!.values,
      dimensions: event!.dimensions,
      content_hash: event!.content_hash,
      late: isLate(event!),
    })),
  );
}

/** Writes each conflict's verdict into results (idempotent) and returns them. */
function conflictResults(results: EventOutcome[], conflicts: readonly Conflict[]): EventOutcome[] {
  for (const conflict of conflicts) {
    results[conflict.index] = {
      index: conflict.index,
      source: conflict.source,
      id: conflict.id,
      status: 'conflict',
      problems: [
        {
          path: 'id',
          code: 'conflict',
          message: `an event with source ${JSON.stringify(conflict.source)} and this id was already accepted with different content`,
        },
      ],
    };
  }
  return results;
}

/** The content hash already stored for each (source, id) given that has one, keyed `source\u0000id`. */
async function existingHashes(client: pg.PoolClient, keys: ReadonlyArray<{ source: string; id: string }>): Promise<Map<string, string>> {
  const found = await client.query<{ source: string; id: string; content_hash: string }>(SELECT_EXISTING, [
    JSON.stringify(keys.map((k) => ({ source: k.source, id: k.id }))),
  ]);
  return new Map(found.rows.map((r) => [`${r.source}\u0000${r.id}`, r.content_hash]));
}

async function insertConflicts(client: pg.PoolClient, conflicts: readonly Conflict[], batchId: string): Promise<void> {
  await client.query(INSERT_CONFLICTS, [
    JSON.stringify(conflicts.map((c) => ({ source: c.source, id: c.id, content_hash: c.hash, existing_hash: c.existing, event: c.raw }))),
    batchId,
  ]);
}

export function countStatuses(results: readonly EventOutcome[]): Record<EventStatus, number> {
  const counts: Record<EventStatus, number> = { accepted: 0, duplicate: 0, conflict: 0, rejected: 0, quarantined: 0 };
  for (const r of results) counts[r.status] += 1;
  return counts;
}

// The hopeful path's events: COPY, each seq from the blocks it took (seqsOfBlocks), received_at its default. A key
// stored already fails it on events_pkey.
const COPY_EVENTS =
  'COPY events (seq, source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late) FROM STDIN';

// The head when `asked` (true or false), each of the `periods` (a text[] of YYYY-MM) closed for a legal entity, as
// [entity, period], and `blocks` blocks of seqs (seqsOfBlocks): the batch state, read under events' lock.
const batchState = (asked: string, periods: string, blocks: number) => `
SELECT (SELECT max(version) FROM catalog_versions WHERE ${asked}) AS head,
       coalesce((SELECT jsonb_agg(jsonb_build_array(legal_entity, period) ORDER BY legal_entity, period)
                   FROM billing_periods WHERE status = 'closed' AND period = ANY(${periods})), '[]'::jsonb) AS closed,
       (SELECT array_agg(nextval('events_seq_seq')::text) FROM generate_series(1, ${blocks})) AS seq_blocks`;

/** Seqs each nextval of events' identity sequence gives (its increment, migration 036). */
export const SEQ_BLOCK = 1024;

// The long way's events, the accepted ones only, with the batch record ($2..$10: id, channel, key, received, accepted,
// duplicates, conflicts, rejected, quarantined), inserted in the order given (inKeyOrder, as the hopeful path's COPY).
// None of their keys may be stored: one stored by another writer since this transaction read it is skipped by the
// insert and fails the statement (accrue_abort), which rolls the transaction back to be judged again. When the
// batch's id is recorded already (the same batch content received again: a retry), the repeat is counted there and
// this receipt's verdicts recorded in ingest_repeats.
const INSERT_EVENTS = `
WITH input AS MATERIALIZED (
  SELECT i.*, n.ordinality FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS n (row, ordinality)
   CROSS JOIN LATERAL jsonb_to_record(n.row) AS i(source text, id text, type text, subject text, customer_id text,
         time timestamptz, data jsonb, meter_values jsonb, dimensions jsonb, content_hash text, late boolean)
), inserted AS (
  INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late)
  SELECT i.source, i.id, i.type, i.subject, i.customer_id, i.time, i.data, i.meter_values, i.dimensions, i.content_hash, $2, i.late
    FROM input i ORDER BY i.ordinality
  ON CONFLICT (source, id) DO NOTHING
  RETURNING 1
), batch AS (
  INSERT INTO ingest_batches (id, channel, api_key_id, received, accepted, duplicates, conflicts, rejected, quarantined)
  SELECT $2::text, $3::text, $4::text, $5::integer, $6::integer, $7::integer, $8::integer, $9::integer, $10::integer
   WHERE (SELECT count(*) FROM inserted) = (SELECT count(*) FROM input)
      OR accrue_abort('${KEY_CLAIMED_MEANWHILE}', 'ingest: another writer stored one of this batch''s event keys meanwhile')
  ON CONFLICT (id) DO UPDATE SET repeats = ingest_batches.repeats + 1
  RETURNING xmax = 0 AS fresh
), repeat AS (
  INSERT INTO ingest_repeats (batch_id, channel, api_key_id, received, accepted, duplicates, conflicts, rejected, quarantined)
  SELECT $2::text, $3::text, $4::text, $5::integer, $6::integer, $7::integer, $8::integer, $9::integer, $10::integer FROM batch WHERE NOT batch.fresh
)
SELECT 1 FROM batch`;

// The batch record of a batch that accepts no event, or of the hopeful path's, or of its repeat, from its nine values
// (id, channel, key, received, accepted, duplicates, conflicts, rejected, quarantined): parameters ($1..$9) or literals.
const insertBatch = ([id, channel, key, received, accepted, duplicates, conflicts, rejected, quarantined]: readonly string[]) => `
WITH batch AS (
  INSERT INTO ingest_batches (id, channel, api_key_id, received, accepted, duplicates, conflicts, rejected, quarantined)
  VALUES (${id}::text, ${channel}::text, ${key}::text, ${received}::integer, ${accepted}::integer, ${duplicates}::integer,
          ${conflicts}::integer, ${rejected}::integer, ${quarantined}::integer)
  ON CONFLICT (id) DO UPDATE SET repeats = ingest_batches.repeats + 1
  RETURNING xmax = 0 AS fresh
)
INSERT INTO ingest_repeats (batch_id, channel, api_key_id, received, accepted, duplicates, conflicts, rejected, quarantined)
SELECT ${id}::text, ${channel}::text, ${key}::text, ${received}::integer, ${accepted}::integer, ${duplicates}::integer,
       ${conflicts}::integer, ${rejected}::integer, ${quarantined}::integer FROM batch WHERE NOT batch.fresh`;

const BATCH_PARAMETERS = ['$1', '$2', '$3', '$4', '$5', '$6', '$7', '$8', '$9'];

const SELECT_EXISTING = `
SELECT e.source, e.id, e.content_hash
  FROM events e JOIN jsonb_to_recordset($1::jsonb) AS k(source text, id text) ON e.source = k.source AND e.id = k.id`;

const INSERT_CONFLICTS = `
INSERT INTO event_conflicts (source, id, content_hash, existing_hash, event, batch_id)
SELECT c.source, c.id, c.content_hash, c.existing_hash, c.event, $2
  FROM jsonb_to_recordset($1::jsonb) AS c(source text, id text, content_hash text, existing_hash text, event jsonb)
ON CONFLICT (source, id, content_hash) DO NOTHING`;

const INSERT_QUARANTINE = `
INSERT INTO quarantine (source, id, content_hash, reason, problems, event, batch_id)
SELECT q.source, q.id, q.content_hash, q.reason, q.problems, q.event, $2
  FROM jsonb_to_recordset($1::jsonb) AS q(source text, id text, content_hash text, reason text, problems jsonb, event jsonb)
ON CONFLICT (source, id, content_hash) DO NOTHING`;
