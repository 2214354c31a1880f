// Ingestion: validate, deduplicate by (source, id), and make every accepted event durable before answering.
// One transaction per batch: events, conflicts, quarantine and the batch record commit together or not at all.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import canonicalize from 'canonicalize';
import { validateEvent, INGEST_LIMITS, type NormalizedEvent } from './cloudevent.js';
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

/** The usage batch id: derived from the batch's content, so the same batch sent twice has the same id. */
export function usageBatchId(keys: Array<{ source: string; id: string; hash: string }>): string {
  const digest = createHash('sha256');
  for (const key of keys) digest.update(`${key.source}\u0000${key.id}\u0000${key.hash}\n`);
  return `ub:v1:${digest.digest('hex').slice(0, 32)}`;
}

function rawKey(raw: unknown): { source?: string; id?: string } {
  if (raw && typeof raw === 'object') {
    const r = raw as Record<string, unknown>;
    return { source: typeof r.source === 'string' ? r.source : undefined, id: typeof r.id === 'string' ? r.id : undefined };
  }
  return {};
}

function contentHashOf(raw: unknown): string {
  return createHash('sha256').update(canonicalize(raw) ?? 'null').digest('hex');
}

interface Conflict {
  index: number;
  source: string;
  id: string;
  hash: string;
  existing: string;
  raw: unknown;
}

export function ingestBatch(pool: pg.Pool, catalog: CatalogVersion, rawEvents: readonly unknown[], options: IngestOptions): Promise<BatchOutcome> {
  return inSpan(SPANS.ingestBatch, { 'accrue.channel': options.channel, 'accrue.events_received': rawEvents.length }, async (span) => {
    const outcome = await ingestBatchUntraced(pool, catalog, rawEvents, options);
    span.setAttributes({ [ATTRIBUTES.batch]: outcome.batch_id, ...Object.fromEntries(Object.entries(outcome.counts).map(([status, n]) => [`accrue.events_${status}`, n])) });
    return outcome;
  });
}

async function ingestBatchUntraced(pool: pg.Pool, catalog: CatalogVersion, rawEvents: readonly unknown[], options: IngestOptions): Promise<BatchOutcome> {
  if (rawEvents.length > INGEST_LIMITS.batchEventsMax) {
    throw new RangeError(`a batch holds at most ${INGEST_LIMITS.batchEventsMax} events, got ${rawEvents.length}`);
  }
  const allowed = options.allowedSources && options.allowedSources.length > 0 ? new Set(options.allowedSources) : undefined;
  const context = {
    metersByType: catalog.index.metersByType,
    meterValueMax: catalog.index.meterValueMax,
    customerByTenant: catalog.index.customerByTenant,
    now: options.now ?? new Date(),
    futureSkewMsMax: options.futureSkewMsMax ?? FUTURE_SKEW_MS_MAX_DEFAULT,
    allowedSources: allowed ? (source: string) => allowed.has(source) : undefined,
  };

  const results: EventOutcome[] = new Array(rawEvents.length);
  const valid: Array<{ index: number; event: NormalizedEvent }> = [];
  let quarantined: Array<{ index: number; source: string; id: string; hash: string; reason: string; problems: Problem[]; raw: unknown }> = [];
  const conflicts: Conflict[] = [];
  const firstInBatch = new Map<string, string>();
  const batchKeys: Array<{ source: string; id: string; hash: string }> = [];

  rawEvents.forEach((raw, index) => {
    const verdict = validateEvent(raw, index, context);
    if (verdict.status === 'rejected') {
      const { source, id } = rawKey(raw);
      results[index] = { index, source, id, status: 'rejected', problems: verdict.problems };
      return;
    }
    // Past validation, source and id are known to be non-empty strings.
    const { source, id } = rawKey(raw) as { source: string; id: string };
    const hash = verdict.status === 'valid' ? verdict.event.content_hash : contentHashOf(raw);
    batchKeys.push({ source, id, hash });
    const key = `${source}\u0000${id}`;
    const earlier = firstInBatch.get(key);
    if (earlier !== undefined) {
      // The same (source, id) twice in one batch: the first occurrence decides, as it does across batches.
      if (earlier === hash) results[index] = { index, source, id, status: 'duplicate' };
      else conflicts.push({ index, source, id, hash, existing: earlier, raw });
      return;
    }
    firstInBatch.set(key, hash);
    if (verdict.status === 'valid') valid.push({ index, event: verdict.event });
    else {
      quarantined.push({ index, source, id, hash, reason: verdict.reason, problems: verdict.problems, raw });
      results[index] = { index, source, id, status: 'quarantined', problems: verdict.problems };
    }
  });

  const batchId = usageBatchId(batchKeys.length > 0 ? batchKeys : [{ source: '', id: `empty:${rawEvents.length}`, hash: contentHashOf(rawEvents) }]);

  await ensureEventPartitions(pool, valid.map(({ event }) => event.time), context.now);
  const rows = JSON.stringify(
    valid.map(({ event }) => ({
      source: event.source,
      id: event.id,
      type: event.type,
      subject: event.subject,
      customer_id: event.customer,
      legal_entity: catalog.index.customers.get(event.customer)?.legal_entity ?? '',
      time: event.time,
      data: event.data,
      meter_values: event.values,
      dimensions: event.dimensions,
      content_hash: event.content_hash,
    })),
  );
  const batchRow = (accepted: number | null, duplicates: number, conflictCount: number, rejected: number) => [
    batchId, options.channel, options.apiKeyId ?? null, rawEvents.length, accepted, duplicates, conflictCount, rejected, quarantined.length,
  ];

  // The common batch, every event valid or rejected and no key repeated, is one statement in its own transaction:
  // no BEGIN and COMMIT round trips, and the rollup rows' locks are released as soon as the statement ends. The
  // statement writes nothing when one of its keys is already stored (or the catalog has moved on); the batch then
  // takes the long way below, which sorts repeats into duplicates and conflicts.
  if (valid.length > 0 && quarantined.length === 0 && conflicts.length === 0) {
    const known = countStatuses(results.filter((r) => r !== undefined));
    try {
      const written = await pool.query<InsertedRow>(INSERT_EVENTS, [
        rows,
        ...batchRow(null, known.duplicate + valid.length, 0, known.rejected),
        options.requireHead ? catalog.version : null,
        true,
      ]);
      const gate = written.rows.find((r) => r.head_ok !== null)!;
      if (!gate.head_ok) throw new CatalogMovedError(catalog.version, gate.head);
      if (gate.keys_free) {
        for (const { index, event } of valid) results[index] = { index, source: event.source, id: event.id, status: 'accepted' };
        return { batch_id: batchId, counts: countStatuses(results), results };
      }
    } catch (error) {
      if ((error as { code?: string }).code !== KEY_CLAIMED_MEANWHILE) throw error;
    }
  }

  // Statement order keeps the rollup rows' locks short: the events' statement (whose trigger upserts the customer's
  // hour and month rollups, rows every concurrent writer of that customer needs) is the last one before COMMIT
  // unless some events turn out to be there already. Quarantine and in-batch conflicts go first; the batch record is
  // written by the events' statement itself, counting every valid event not inserted as a duplicate, and corrected
  // after it only when some of those are conflicts.
  await transaction(pool, async (client) => {
    if (options.requireHead) {
      const head = (await client.query<{ head: number | null }>('SELECT max(version) AS head FROM catalog_versions')).rows[0]!.head;
      if (head !== catalog.version) throw new CatalogMovedError(catalog.version, head);
    }
    if (quarantined.length > 0) {
      // A quarantined repeat of an event already accepted is judged against it, not parked.
      const existing = await existingHashes(client, quarantined);
      quarantined = quarantined.filter((q) => {
        const existingHash = existing.get(`${q.source}\u0000${q.id}`);
        if (existingHash === undefined) return true;
        if (existingHash === q.hash) results[q.index] = { index: q.index, source: q.source, id: q.id, status: 'duplicate' };
        else conflicts.push({ index: q.index, source: q.source, id: q.id, hash: q.hash, existing: existingHash, raw: q.raw });
        return false;
      });
      if (quarantined.length > 0) {
        await client.query(INSERT_QUARANTINE, [
          JSON.stringify(quarantined.map((q) => ({ source: q.source, id: q.id, content_hash: q.hash, reason: q.reason, problems: q.problems, event: q.raw }))),
          batchId,
        ]);
      }
    }
    const conflictsBefore = conflicts.length;
    if (conflictsBefore > 0) await insertConflicts(client, conflicts, batchId);

    // Every event but the valid ones has its verdict now; a valid one not inserted is counted a duplicate until read.
    const known = countStatuses(results.filter((r) => r !== undefined));
    if (valid.length === 0) {
      await client.query(INSERT_BATCH, batchRow(0, known.duplicate, conflictsBefore, known.rejected));
      return;
    }
    const inserted = await client.query<InsertedRow>(INSERT_EVENTS, [rows, ...batchRow(null, known.duplicate + valid.length, conflictsBefore, known.rejected), null, false]);
    const insertedKeys = new Set(inserted.rows.flatMap((r) => (r.source === null ? [] : [`${r.source}\u0000${r.id}`])));
    const missing = valid.filter(({ event }) => !insertedKeys.has(`${event.source}\u0000${event.id}`));
    for (const { index, event } of valid) {
      if (insertedKeys.has(`${event.source}\u0000${event.id}`)) results[index] = { index, source: event.source, id: event.id, status: 'accepted' };
    }
    if (missing.length === 0) return;
    // Some keys were there already (a repeat, or a writer that got there first): the same content is a duplicate,
    // other content a conflict, recorded and counted on the batch record if this statement wrote it.
    const existing = await existingHashes(client, missing.map(({ event }) => event));
    for (const { index, event } of missing) {
      const key = `${event.source}\u0000${event.id}`;
      const existingHash = existing.get(key);
      if (existingHash === undefined) throw new Error(`event ${key} neither inserted nor found`); // cannot happen under the unique key
      if (existingHash === event.content_hash) results[index] = { index, source: event.source, id: event.id, status: 'duplicate' };
      else conflicts.push({ index, source: event.source, id: event.id, hash: event.content_hash, existing: existingHash, raw: rawEvents[index] });
    }
    if (conflicts.length > conflictsBefore) {
      await insertConflicts(client, conflicts.slice(conflictsBefore), batchId);
      if (inserted.rows.some((r) => r.fresh_batch === true)) {
        const counts = countStatuses(conflictResults(results, conflicts));
        await client.query('UPDATE ingest_batches SET duplicates = $2, conflicts = $3 WHERE id = $1', [batchId, counts.duplicate, counts.conflict]);
      }
    }
  });
  conflictResults(results, conflicts);
  return { batch_id: batchId, counts: countStatuses(results), results };
}

/** Writes each conflict's verdict into results (idempotent) and returns them. */
function conflictResults(results: EventOutcome[], conflicts: readonly Conflict[]): EventOutcome[] {
  for (const conflict of conflicts) {
    results[conflict.index] = {
      index: conflict.index,
      source: conflict.source,
      id: conflict.id,
      status: 'conflict',
      problems: [{ path: 'id', code: 'conflict', message: `an event with source ${JSON.stringify(conflict.source)} and this id was already accepted with different content` }],
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

// (source, id) is claimed in event_keys first, in key order (concurrent batches lock keys in one order); only the
// events whose key this batch claimed are inserted. Late: the event's billing month is already closed for the
// customer's legal entity. The same statement writes the batch record ($2..$10: id, channel, key, received, accepted
// (null: the events inserted), duplicates (less the events inserted), conflicts, rejected, quarantined), or counts a
// repeat of it; one row more, with source null, tells whether this statement wrote it.
// $11, when not null, is the catalog version the events were validated against, which must still be the latest;
// $12 (the one-statement write) asks that none of the keys be stored yet. Either failing, the statement writes
// nothing, and its last row (head_ok not null) says which failed. A key found free but claimed by a concurrent
// writer before this statement could claim it fails the whole statement (accrue_abort), which is its own transaction.
const INSERT_EVENTS = `
WITH input AS MATERIALIZED (
  SELECT nextval('events_seq_seq') AS seq, i.*
    FROM jsonb_to_recordset($1::jsonb) AS i(source text, id text, type text, subject text, customer_id text, legal_entity text,
         time timestamptz, data jsonb, meter_values jsonb, dimensions jsonb, content_hash text)
), gate AS MATERIALIZED (
  SELECT h.head, $11::integer IS NULL OR h.head IS NOT DISTINCT FROM $11::integer AS head_ok,
         -- One probe of event_keys' primary key per event (a lateral LIMIT is never turned into a hash join).
         NOT $12::boolean OR NOT EXISTS (SELECT 1 FROM input i CROSS JOIN LATERAL
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
  RETURNING source, id
), batch AS (
  INSERT INTO ingest_batches (id, channel, api_key_id, received, accepted, duplicates, conflicts, rejected, quarantined)
  SELECT $2, $3, $4, $5, coalesce($6::integer, n.n), $7::integer - n.n, $8, $9, $10
    FROM (SELECT count(*)::integer AS n FROM claimed) AS n
   WHERE (SELECT head_ok AND keys_free FROM gate)
     AND (NOT $12::boolean OR n.n = (SELECT count(*) FROM input)
          OR accrue_abort('${KEY_CLAIMED_MEANWHILE}', 'ingest: another writer claimed one of this batch''s event keys meanwhile'))
  ON CONFLICT (id) DO UPDATE SET repeats = ingest_batches.repeats + 1
  RETURNING xmax = 0 AS fresh
)
SELECT source, id, null::boolean AS fresh_batch, null::integer AS head, null::boolean AS head_ok, null::boolean AS keys_free FROM inserted
UNION ALL
SELECT null, null, fresh, null, null, null FROM batch
UNION ALL
SELECT null, null, null, head, head_ok, keys_free FROM gate`;

type InsertedRow = { source: string | null; id: string | null; fresh_batch: boolean | null; head: number | null; head_ok: boolean | null; keys_free: boolean | null };

const INSERT_BATCH = `
INSERT INTO ingest_batches (id, channel, api_key_id, received, accepted, duplicates, conflicts, rejected, quarantined)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO UPDATE SET repeats = ingest_batches.repeats + 1`;

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
