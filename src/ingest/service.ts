// Ingestion: validate, deduplicate by (source, id), and make every accepted event durable before answering.
// One transaction per batch: events, conflicts, quarantine and the batch record commit together or not at all.
import { usageBatchId } from '../domain/keys.js';
import type pg from 'pg';
import { validateEvent, eventContentHash, INGEST_LIMITS, type IngestContext, type NormalizedEvent } from './cloudevent.js';
import type { CatalogVersion } from '../catalog/service.js';
import type { Problem } from '../domain/result.js';
import { transaction } from '../store/store.js';
import { ensureEventPartitions } from '../store/partitions.js';
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

/** SQLSTATE of accrue_abort (migration 018) when a key the one-statement write found free was claimed meanwhile. */
const KEY_CLAIMED_MEANWHILE = 'AC001';

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

/** Thrown inside the long way's transaction when a key it found free was stored before its events' statement ran. */
class KeyStoredMeanwhile extends Error {
  constructor() {
    super('ingest: a key of this batch read as free was stored by another writer before its events were written');
  }
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
  const firsts = [...groups.values()].flatMap((g) => (g.first ? [g.first.event!] : []));
  await ensureEventPartitions(
    pool,
    firsts.map((event) => event.time),
    context.now,
  );
  const batch: BatchWrite = { pool, catalog, options, batchId, received: rawEvents.length, groups, rejected };
  return (await writeInOneStatement(batch)) ?? (await writeTheLongWay(batch));
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
    const { source, id } = rawKey(raw) as { source: string; id: string };
    const hash = verdict.event.content_hash;
    batchKeys.push({ source, id, hash });
    const occurrence: Occurrence =
      verdict.status === 'valid'
        ? { index, source, id, hash, raw, event: verdict.event }
        : { index, source, id, hash, raw, quarantine: { reason: verdict.reason, problems: verdict.problems } };
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

/** The batch record's parameters ($2.. of INSERT_EVENTS, $1.. of INSERT_BATCH). */
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
 * The common batch, every event valid or rejected and any repeat of a key carrying its first content, is one
 * statement in its own transaction: no BEGIN and COMMIT round trips, and the rollup rows' locks are released as
 * soon as the statement ends. Judged as if no key were stored, it writes nothing when one of its keys is (or the
 * catalog has moved on); the batch then takes the long way (undefined here), which judges every key against its
 * stored copy.
 */
async function writeInOneStatement(batch: BatchWrite): Promise<BatchOutcome | undefined> {
  const { pool, catalog, options, batchId } = batch;
  const hopeful = judge(batch.groups, new Map(), batch.rejected);
  if (hopeful.accepted.length > 0 && hopeful.conflicts.length === 0 && hopeful.quarantined.length === 0) {
    const counts = countStatuses(hopeful.results);
    try {
      const gate = (
        await pool.query<Gate>(INSERT_EVENTS, [
          eventRows(hopeful.accepted, catalog),
          ...batchRow(batch, counts),
          options.requireHead ? catalog.version : null,
        ])
      ).rows[0]!;
      if (!gate.head_ok) throw new CatalogMovedError(catalog.version, gate.head);
      if (gate.keys_free) return { batch_id: batchId, counts, results: hopeful.results };
    } catch (error) {
      if ((error as { code?: string }).code !== KEY_CLAIMED_MEANWHILE) throw error;
    }
  }
  return undefined;
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
      const meanwhile = error instanceof KeyStoredMeanwhile || (error as { code?: string }).code === KEY_CLAIMED_MEANWHILE;
      if (!meanwhile || attempt >= batch.groups.size) throw error;
    }
  }
}

/**
 * One attempt of the long way, inside its transaction. Statement order keeps the rollup rows' locks short: the
 * events' statement (whose trigger upserts the customer's hour and month rollups, rows every concurrent writer of
 * that customer needs) is the last one before COMMIT.
 */
async function writeJudged(client: pg.PoolClient, batch: BatchWrite): Promise<BatchOutcome> {
  const { catalog, options, batchId, groups } = batch;
  if (options.requireHead) {
    const head = (await client.query<{ head: number | null }>('SELECT max(version) AS head FROM catalog_versions')).rows[0]!.head;
    if (head !== catalog.version) throw new CatalogMovedError(catalog.version, head);
  }
  const stored = groups.size > 0 ? await existingHashes(client, [...groups.values()]) : new Map<string, string>();
  const judged = judge(groups, stored, batch.rejected);
  const counts = countStatuses(judged.results);
  if (judged.quarantined.length > 0) await insertQuarantined(client, judged.quarantined, batchId);
  if (judged.conflicts.length > 0) await insertConflicts(client, judged.conflicts, batchId);
  if (judged.accepted.length === 0) {
    await client.query(INSERT_BATCH, batchRow(batch, counts));
  } else {
    const gate = (await client.query<Gate>(INSERT_EVENTS, [eventRows(judged.accepted, catalog), ...batchRow(batch, counts), null]))
      .rows[0]!;
    if (!gate.keys_free) throw new KeyStoredMeanwhile();
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

/** The events' statement's input: one row per accepted event. */
function eventRows(accepted: readonly Occurrence[], catalog: CatalogVersion): string {
  return JSON.stringify(
    accepted.map(({ event }) => ({
      source: event!.source,
      id: event!.id,
      type: event!.type,
      subject: event!.subject,
      customer_id: event!.customer,
      legal_entity: catalog.index.customers.get(event!.customer)?.legal_entity ?? '',
      time: event!.time,
      data: event!.data,
      meter_values: event!.values,
      dimensions: event!.dimensions,
      content_hash: event!.content_hash,
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

// (source, id) is claimed in event_keys first, in key order (concurrent batches lock keys in one order), then the
// events are inserted. Late: the event's billing month is already closed for the customer's legal entity. The events
// are the accepted ones only: none of their keys may be stored yet, and the statement writes all of them or nothing.
// The same statement writes the batch record with the batch's verdicts ($2..$10: id, channel, key, received,
// accepted, duplicates, conflicts, rejected, quarantined); when the batch's id is recorded already (the same batch
// content received again: a retry), it counts the repeat there and records this receipt's verdicts in ingest_repeats.
// $11, when not null, is the catalog version the events were validated against, which must still be the latest.
// A key stored already, or the catalog moved on, the statement writes nothing, and its row says which (head_ok,
// keys_free). A key found free but claimed by a concurrent writer before this statement could claim it fails the
// whole statement (accrue_abort): on its own it is its own transaction, and inside one it rolls that back.
const INSERT_EVENTS = `
WITH input AS MATERIALIZED (
  SELECT nextval('events_seq_seq') AS seq, i.*
    FROM jsonb_to_recordset($1::jsonb) AS i(source text, id text, type text, subject text, customer_id text, legal_entity text,
         time timestamptz, data jsonb, meter_values jsonb, dimensions jsonb, content_hash text)
), gate AS MATERIALIZED (
  SELECT h.head, $11::integer IS NULL OR h.head IS NOT DISTINCT FROM $11::integer AS head_ok,
         -- One probe of event_keys' primary key per event (a lateral LIMIT is never turned into a hash join).
         NOT EXISTS (SELECT 1 FROM input i CROSS JOIN LATERAL
                       (SELECT 1 FROM event_keys k WHERE k.source = i.source AND k.id = i.id LIMIT 1) AS k) AS keys_free
    FROM (SELECT max(version) AS head FROM catalog_versions WHERE $11::integer IS NOT NULL) AS h
), claimed AS (
  INSERT INTO event_keys (source, id, seq, content_hash, time)
  SELECT source, id, seq, content_hash, time FROM input WHERE (SELECT head_ok AND keys_free FROM gate) ORDER BY source, id
  ON CONFLICT (source, id) DO NOTHING
  RETURNING seq
), inserted AS (
  INSERT INTO events (seq, source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, late)
  SELECT i.seq, i.source, i.id, i.type, i.subject, i.customer_id, i.time, i.data, i.meter_values, i.dimensions, i.content_hash, $2,
         EXISTS (SELECT 1 FROM billing_periods bp
                  WHERE bp.legal_entity = i.legal_entity AND bp.status = 'closed'
                    AND bp.period = to_char(i.time AT TIME ZONE 'UTC', 'YYYY-MM'))
    FROM input i JOIN claimed c ON c.seq = i.seq
), batch AS (
  INSERT INTO ingest_batches (id, channel, api_key_id, received, accepted, duplicates, conflicts, rejected, quarantined)
  SELECT $2::text, $3::text, $4::text, $5::integer, $6::integer, $7::integer, $8::integer, $9::integer, $10::integer
   WHERE (SELECT head_ok AND keys_free FROM gate)
     AND ((SELECT count(*) FROM claimed) = (SELECT count(*) FROM input)
          OR accrue_abort('${KEY_CLAIMED_MEANWHILE}', 'ingest: another writer claimed one of this batch''s event keys meanwhile'))
  ON CONFLICT (id) DO UPDATE SET repeats = ingest_batches.repeats + 1
  RETURNING xmax = 0 AS fresh
), repeat AS (
  INSERT INTO ingest_repeats (batch_id, channel, api_key_id, received, accepted, duplicates, conflicts, rejected, quarantined)
  SELECT $2::text, $3::text, $4::text, $5::integer, $6::integer, $7::integer, $8::integer, $9::integer, $10::integer FROM batch WHERE NOT batch.fresh
)
SELECT head, head_ok, keys_free FROM gate`;

type Gate = { head: number | null; head_ok: boolean; keys_free: boolean };

// The batch record of a batch that accepts no event ($1..$9 as INSERT_EVENTS' $2..$10), or of its repeat.
const INSERT_BATCH = `
WITH batch AS (
  INSERT INTO ingest_batches (id, channel, api_key_id, received, accepted, duplicates, conflicts, rejected, quarantined)
  VALUES ($1::text, $2::text, $3::text, $4::integer, $5::integer, $6::integer, $7::integer, $8::integer, $9::integer)
  ON CONFLICT (id) DO UPDATE SET repeats = ingest_batches.repeats + 1
  RETURNING xmax = 0 AS fresh
)
INSERT INTO ingest_repeats (batch_id, channel, api_key_id, received, accepted, duplicates, conflicts, rejected, quarantined)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM batch WHERE NOT batch.fresh`;

const SELECT_EXISTING = `
SELECT e.source, e.id, e.content_hash
  FROM event_keys e JOIN jsonb_to_recordset($1::jsonb) AS k(source text, id text) ON e.source = k.source AND e.id = k.id`;

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
