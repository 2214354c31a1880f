// Group commit for single-event requests: events arriving within a few milliseconds are written by one ingestBatch
// call (one transaction) and each request is answered only after that commit, with its own verdict. The queue in
// front of the commits is bounded; past the bound a request is turned away (HTTP 429 + Retry-After), never buffered.
import type pg from 'pg';
import { currentCatalog, type CatalogVersion } from '../catalog/service.js';
import { INGEST_LIMITS } from './cloudevent.js';
import { CatalogMovedError, ingestBatch, type EventOutcome, type IngestOptions } from './service.js';

export const GROUP_COMMIT_LIMITS = Object.freeze({
  /** How long the first event of a group waits for others when a commit slot is free. */
  lingerMsDefault: 2,
  /** Events per group: one ingestBatch call, so at most the batch limit. */
  groupEventsMax: INGEST_LIMITS.batchEventsMax,
  /**
   * Group commits in flight at once (each holds one pool connection). One: every group upserts the same hot rollup
   * rows (a customer's month and hour per meter), so a second commit in flight only waits on the first's row locks;
   * one writer with the next group gathering while it commits gives the largest groups (bench:single, BENCHMARKS.md).
   */
  commitsInFlightMax: 1,
  /** Events waiting for a commit; one more is answered 429. Also ACCRUE_INGEST_QUEUE_EVENTS_MAX. */
  queuedEventsMaxDefault: 10_000,
  /** Request bytes waiting for a commit (by Content-Length); past it, 429. Also ACCRUE_INGEST_QUEUE_BYTES_MAX. */
  queuedBytesMaxDefault: 64 * 1024 * 1024,
  /** The oldest waiting event's age; past it ingestion lags and new events are answered 429. Also ACCRUE_INGEST_QUEUE_AGE_MS_MAX. */
  queueAgeMsMaxDefault: 2_000,
  retryAfterSecondsMin: 1,
  retryAfterSecondsMax: 60,
});

export type IngestPort = (
  pool: pg.Pool,
  catalog: CatalogVersion,
  rawEvents: readonly unknown[],
  options: IngestOptions,
) => ReturnType<typeof ingestBatch>;

export interface GroupCommitOptions {
  lingerMs?: number;
  groupEventsMax?: number;
  commitsInFlightMax?: number;
  queuedEventsMax?: number;
  queuedBytesMax?: number;
  queueAgeMsMax?: number;
  /** The write itself; tests swap it to hold a commit open. */
  ingest?: IngestPort;
  now?: () => number;
}

export type Submitted =
  | { status: 'committed'; batch_id: string; result: EventOutcome }
  | { status: 'no_catalog' }
  | { status: 'overloaded'; retry_after_seconds: number; reason: 'queued_events' | 'queued_bytes' | 'queue_age'; detail: string };

export interface GroupCommitStats {
  queued_events: number;
  queued_bytes: number;
  in_flight_events: number;
  oldest_queued_ms: number;
  groups_committed: number;
  events_committed: number;
  overloaded: number;
}

interface Entry {
  raw: unknown;
  bytes: number;
  enqueuedAt: number;
  resolve: (value: Submitted) => void;
  reject: (error: unknown) => void;
}

interface Lane {
  /** 'current': the catalog in force when the group commits, read once for the whole group. */
  catalog: CatalogVersion | 'current';
  options: IngestOptions;
  entries: Entry[];
}

/** Reads the bounds from the environment; unset means the documented default. */
export function groupCommitOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): GroupCommitOptions {
  const read = (name: string): number | undefined => {
    const value = env[name];
    if (value === undefined || value === '') return undefined;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a whole number above 0, got ${JSON.stringify(value)}`);
    return n;
  };
  return {
    queuedEventsMax: read('ACCRUE_INGEST_QUEUE_EVENTS_MAX'),
    queuedBytesMax: read('ACCRUE_INGEST_QUEUE_BYTES_MAX'),
    queueAgeMsMax: read('ACCRUE_INGEST_QUEUE_AGE_MS_MAX'),
  };
}

export class GroupCommitter {
  private readonly lanes = new Map<string, Lane>();
  private readonly limits: Required<Omit<GroupCommitOptions, 'ingest' | 'now'>>;
  private readonly ingest: IngestPort;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private inFlightEvents = 0;
  private queuedEvents = 0;
  private queuedBytes = 0;
  private groups = 0;
  private committed = 0;
  private overloaded = 0;
  // Events committed per millisecond of commit time, smoothed: how fast a queue of a given length drains.
  private drainEventsPerMs = 0;
  private idle: Array<() => void> = [];
  // The head catalog as last read, for lanes that ingest with the current one: each group's write checks that it is
  // still the head (requireHead), so reading it costs a round trip only after a new version is applied.
  private head: CatalogVersion | undefined;

  constructor(
    private readonly pool: pg.Pool,
    options: GroupCommitOptions = {},
  ) {
    this.limits = {
      lingerMs: options.lingerMs ?? GROUP_COMMIT_LIMITS.lingerMsDefault,
      groupEventsMax: Math.min(options.groupEventsMax ?? GROUP_COMMIT_LIMITS.groupEventsMax, INGEST_LIMITS.batchEventsMax),
      commitsInFlightMax: options.commitsInFlightMax ?? GROUP_COMMIT_LIMITS.commitsInFlightMax,
      queuedEventsMax: options.queuedEventsMax ?? GROUP_COMMIT_LIMITS.queuedEventsMaxDefault,
      queuedBytesMax: options.queuedBytesMax ?? GROUP_COMMIT_LIMITS.queuedBytesMaxDefault,
      queueAgeMsMax: options.queueAgeMsMax ?? GROUP_COMMIT_LIMITS.queueAgeMsMaxDefault,
    };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(value) || value < (name === 'lingerMs' ? 0 : 1))
        throw new RangeError(`group commit: ${name} must be a whole number${name === 'lingerMs' ? '' : ' above 0'}, got ${value}`);
    }
    this.ingest = options.ingest ?? ingestBatch;
    this.now = options.now ?? Date.now;
  }

  /** Resolves after the event's group has committed (or been turned away); rejects only when the write itself failed. */
  submit(catalog: CatalogVersion | 'current', raw: unknown, options: IngestOptions, bytes = 0): Promise<Submitted> {
    const refusal = this.refuse(bytes);
    if (refusal) {
      this.overloaded += 1;
      return Promise.resolve(refusal);
    }
    // Requests group only with requests their own verdicts would not differ from: same catalog, key and limits.
    const key = JSON.stringify([
      catalog === 'current' ? catalog : catalog.version,
      options.channel,
      options.apiKeyId ?? null,
      options.allowedSources ?? null,
      options.allowedEntities ?? null,
      options.futureSkewMsMax ?? null,
    ]);
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { catalog, options, entries: [] };
      this.lanes.set(key, lane);
    }
    const promise = new Promise<Submitted>((resolve, reject) =>
      lane!.entries.push({ raw, bytes, enqueuedAt: this.now(), resolve, reject }),
    );
    this.queuedEvents += 1;
    this.queuedBytes += bytes;
    if (lane.entries.length >= this.limits.groupEventsMax) this.pump();
    else this.timer ??= setTimeout(() => this.pump(), this.limits.lingerMs);
    return promise;
  }

  stats(): GroupCommitStats {
    return {
      queued_events: this.queuedEvents,
      queued_bytes: this.queuedBytes,
      in_flight_events: this.inFlightEvents,
      oldest_queued_ms: this.oldestQueuedMs(),
      groups_committed: this.groups,
      events_committed: this.committed,
      overloaded: this.overloaded,
    };
  }

  /** Waits until every queued event has been committed (the server's close). */
  async drain(): Promise<void> {
    if (this.queuedEvents === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private refuse(bytes: number): Submitted | undefined {
    const age = this.oldestQueuedMs();
    let reason: 'queued_events' | 'queued_bytes' | 'queue_age' | undefined;
    let detail = '';
    if (this.queuedEvents + 1 > this.limits.queuedEventsMax) {
      reason = 'queued_events';
      detail = `${this.queuedEvents} events are waiting to be written (at most ${this.limits.queuedEventsMax})`;
    } else if (this.queuedEvents > 0 && this.queuedBytes + bytes > this.limits.queuedBytesMax) {
      reason = 'queued_bytes';
      detail = `${this.queuedBytes} bytes are waiting to be written (at most ${this.limits.queuedBytesMax})`;
    } else if (age > this.limits.queueAgeMsMax) {
      reason = 'queue_age';
      detail = `ingestion lags: the oldest waiting event has waited ${age} ms (at most ${this.limits.queueAgeMsMax})`;
    }
    if (!reason) return undefined;
    // Time for the queue to drain at the recent rate, or the lag itself when no rate is known yet.
    const drainMs = this.drainEventsPerMs > 0 ? this.queuedEvents / (this.drainEventsPerMs * this.limits.commitsInFlightMax) : age;
    const seconds = Math.min(
      GROUP_COMMIT_LIMITS.retryAfterSecondsMax,
      Math.max(GROUP_COMMIT_LIMITS.retryAfterSecondsMin, Math.ceil(drainMs / 1000)),
    );
    return { status: 'overloaded', retry_after_seconds: seconds, reason, detail };
  }

  private oldestQueuedMs(): number {
    let oldest = Number.POSITIVE_INFINITY;
    for (const lane of this.lanes.values()) if (lane.entries.length > 0) oldest = Math.min(oldest, lane.entries[0]!.enqueuedAt);
    return oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, this.now() - oldest);
  }

  /** Starts commits while slots are free: the lane holding the oldest event first. */
  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.inFlight < this.limits.commitsInFlightMax) {
      let next: Lane | undefined;
      for (const lane of this.lanes.values()) {
        if (lane.entries.length > 0 && (!next || lane.entries[0]!.enqueuedAt < next.entries[0]!.enqueuedAt)) next = lane;
      }
      if (!next) break;
      const group = next.entries.splice(0, this.limits.groupEventsMax);
      if (next.entries.length === 0) for (const [key, lane] of this.lanes) if (lane === next) this.lanes.delete(key);
      for (const entry of group) {
        this.queuedEvents -= 1;
        this.queuedBytes -= entry.bytes;
      }
      this.inFlight += 1;
      this.inFlightEvents += group.length;
      void this.commit(next, group).finally(() => {
        this.inFlight -= 1;
        this.inFlightEvents -= group.length;
        // What queued during this commit goes at once: it has waited at least as long as a linger.
        if (this.queuedEvents > 0) this.pump();
        else if (this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve();
      });
    }
  }

  private async commit(lane: Lane, group: Entry[]): Promise<void> {
    const started = this.now();
    let catalog: CatalogVersion | undefined;
    try {
      const current = lane.catalog === 'current';
      const options = current ? { ...lane.options, requireHead: true } : lane.options;
      let outcome: Awaited<ReturnType<IngestPort>> | undefined;
      for (let attempt = 0; outcome === undefined; attempt += 1) {
        catalog = current ? (this.head ??= await currentCatalog(this.pool)) : (lane.catalog as CatalogVersion);
        if (!catalog) return group.forEach((entry) => entry.resolve({ status: 'no_catalog' }));
        try {
          outcome = await this.ingest(
            this.pool,
            catalog,
            group.map((e) => e.raw),
            options,
          );
        } catch (error) {
          // A new catalog version was applied since the head was read: read it again and validate against it.
          if (!(error instanceof CatalogMovedError) || attempt >= 3) throw error;
          this.head = undefined;
        }
      }
      const elapsedMs = Math.max(1, this.now() - started);
      this.drainEventsPerMs =
        this.drainEventsPerMs === 0 ? group.length / elapsedMs : 0.8 * this.drainEventsPerMs + 0.2 * (group.length / elapsedMs);
      this.groups += 1;
      this.committed += group.length;
      group.forEach((entry, i) =>
        entry.resolve({ status: 'committed', batch_id: outcome.batch_id, result: { ...outcome.results[i]!, index: 0 } }),
      );
    } catch (error) {
      if (group.length === 1 || !catalog) return group.forEach((entry) => entry.reject(error));
      // One write failing must not fail its neighbours: each is tried alone, and only its own failure is its answer.
      for (const entry of group) {
        try {
          const outcome = await this.ingest(this.pool, catalog, [entry.raw], lane.options);
          this.groups += 1;
          this.committed += 1;
          entry.resolve({ status: 'committed', batch_id: outcome.batch_id, result: { ...outcome.results[0]!, index: 0 } });
        } catch (alone) {
          entry.reject(alone);
        }
      }
    }
  }
}
