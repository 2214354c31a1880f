// The from-scratch reference recount: pure aggregation of normalized events, per customer, meter, window and
// group_by dimensions, on exact decimals. The SQL in usage.ts must agree with it; tests compare the two.
//   count         events
//   sum           exact sum of the values
//   max           greatest value (negative values only where the meter allows them)
//   unique_count  distinct values (unique keys are text: 7 and "7" are one key)
//   latest        the value of the greatest (time, id) event; equal (time, id) from different sources: greatest source
// Events are deduplicated by (source, id) first: the first occurrence wins, an identical repeat is a duplicate,
// a different content under the same key is a conflict, listed and never counted.
import type { Meter, UsageAggregate } from '../domain/model.js';
import { Decimal, decimalText } from '../domain/money.js';
import { invariant } from '../domain/result.js';
import { eventKey, type NormalizedEvent } from '../domain/event.js';

/** A half-open window [from, to) of ISO timestamps. `PeriodWindow` fits. */
export interface UsageWindow {
  from: string;
  to: string;
}

export interface EventConflict {
  source: string;
  id: string;
  content_hash: string; // the refused content
  existing_hash: string; // the content that was kept
}

export interface DedupeOutcome {
  accepted: number;
  duplicates: number;
  conflicts: EventConflict[];
}

export interface AggregateOptions {
  /** Dimension keys to group by; each must be in every meter's group_by. Default: each meter's whole group_by. */
  groupBy?: readonly string[];
}

interface Group {
  customer: string;
  meter: Meter;
  window: number;
  dimensions: Record<string, string>;
  count: number;
  sum: Decimal;
  max: Decimal | null;
  unique: Set<string>;
  latest: { ms: number; id: string; source: string; value: string } | null;
  firstMs: number;
  lastMs: number;
}

/** Incremental aggregation with deduplication across `add` calls: any batch split gives the same rows. */
export class UsageAccumulator {
  private readonly metersByType = new Map<string, Meter[]>();
  private readonly windows: Array<{ from: number; to: number }>;
  private readonly dedupe = new EventDeduper();
  private readonly groups = new Map<string, Group>();
  readonly conflicts: EventConflict[] = [];
  duplicates = 0;

  constructor(
    meters: readonly Meter[],
    windows: readonly UsageWindow[],
    private readonly options: AggregateOptions = {},
  ) {
    for (const meter of meters) {
      if (options.groupBy)
        for (const key of options.groupBy) invariant(meter.group_by.includes(key), `meter ${meter.id} does not group by ${key}`);
      const list = this.metersByType.get(meter.event_type) ?? [];
      list.push(meter);
      this.metersByType.set(meter.event_type, list);
    }
    this.windows = windows.map((w) => {
      const from = Date.parse(w.from);
      const to = Date.parse(w.to);
      invariant(Number.isFinite(from) && Number.isFinite(to) && from < to, `invalid window ${w.from} .. ${w.to}`);
      return { from, to };
    });
  }

  add(events: readonly NormalizedEvent[]): DedupeOutcome {
    const outcome: DedupeOutcome = { accepted: 0, duplicates: 0, conflicts: [] };
    for (const event of events) {
      const verdict = this.dedupe.admit(event);
      if (verdict === 'new') {
        outcome.accepted += 1;
        this.count(event);
      } else if (verdict === 'duplicate') {
        outcome.duplicates += 1;
        this.duplicates += 1;
      } else if (verdict !== 'repeated_conflict') {
        outcome.conflicts.push(verdict);
        this.conflicts.push(verdict);
      }
    }
    return outcome;
  }

  private count(event: NormalizedEvent): void {
    const meters = this.metersByType.get(event.type);
    if (!meters) return;
    const ms = Date.parse(event.time);
    invariant(Number.isFinite(ms), `event time ${event.time} is not a timestamp`);
    for (const meter of meters) {
      const value = event.values[meter.id];
      if (meter.aggregation !== 'count' && value === undefined) continue; // as SQL: meter_values ? meter
      const keys = this.options.groupBy ?? meter.group_by;
      const dimensions: Record<string, string> = {};
      for (const k of keys) dimensions[k] = event.dimensions[meter.id]?.[k] ?? '';
      this.windows.forEach((window, w) => {
        if (ms < window.from || ms >= window.to) return;
        const groupKey = JSON.stringify([event.customer, meter.id, w, ...keys.map((k) => dimensions[k])]);
        let group = this.groups.get(groupKey);
        if (!group) {
          group = {
            customer: event.customer,
            meter,
            window: w,
            dimensions: { ...dimensions },
            count: 0,
            sum: new Decimal(0),
            max: null,
            unique: new Set(),
            latest: null,
            firstMs: ms,
            lastMs: ms,
          };
          this.groups.set(groupKey, group);
        }
        group.count += 1;
        group.firstMs = Math.min(group.firstMs, ms);
        group.lastMs = Math.max(group.lastMs, ms);
        if (value === undefined) return;
        switch (meter.aggregation) {
          case 'sum':
            group.sum = group.sum.plus(value);
            break;
          case 'max': {
            const v = new Decimal(value);
            if (group.max === null || v.greaterThan(group.max)) group.max = v;
            break;
          }
          case 'unique_count':
            group.unique.add(value);
            break;
          case 'latest':
            if (group.latest === null || laterThan({ ms, id: event.id, source: event.source }, group.latest))
              group.latest = { ms, id: event.id, source: event.source, value };
            break;
          case 'count':
            break;
        }
      });
    }
  }

  rows(): UsageAggregate[] {
    const rows: Array<UsageAggregate & { sortKey: string }> = [];
    for (const group of this.groups.values()) {
      const window = this.windows[group.window]!;
      rows.push({
        customer: group.customer,
        meter: group.meter.id,
        window_start: new Date(window.from).toISOString(),
        window_end: new Date(window.to).toISOString(),
        dimensions: group.dimensions,
        quantity: quantityOf(group),
        event_count: group.count,
        first_event_time: new Date(group.firstMs).toISOString(),
        last_event_time: new Date(group.lastMs).toISOString(),
        sortKey: JSON.stringify(Object.values(group.dimensions)),
      });
    }
    rows.sort(
      (a, b) =>
        compareText(a.customer, b.customer) ||
        compareText(a.meter, b.meter) ||
        compareText(a.window_start, b.window_start) ||
        compareText(a.window_end, b.window_end) ||
        compareText(a.sortKey, b.sortKey),
    );
    return rows.map(({ sortKey: _sortKey, ...row }) => row);
  }
}

function quantityOf(group: Group): string {
  switch (group.meter.aggregation) {
    case 'count':
      return String(group.count);
    case 'sum':
      return decimalText(group.sum);
    case 'max':
      return group.max === null ? '0' : decimalText(group.max);
    case 'unique_count':
      return String(group.unique.size);
    case 'latest':
      return group.latest === null ? '0' : decimalText(new Decimal(group.latest.value));
  }
}

/** (time, id, source) ordering for latest; text compared by code point (as Postgres `COLLATE "C"`). */
function laterThan(a: { ms: number; id: string; source: string }, b: { ms: number; id: string; source: string }): boolean {
  if (a.ms !== b.ms) return a.ms > b.ms;
  return (compareText(a.id, b.id) || compareText(a.source, b.source)) > 0;
}

/** Code-point order (UTF-8 byte order), not UTF-16 code-unit order. */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Deduplication by (source, id): the first occurrence wins; a conflict is reported once per distinct content. */
export class EventDeduper {
  private readonly kept = new Map<string, string>(); // eventKey -> content hash kept
  private readonly conflictSeen = new Set<string>();

  admit(event: Pick<NormalizedEvent, 'source' | 'id' | 'content_hash'>): 'new' | 'duplicate' | 'repeated_conflict' | EventConflict {
    const key = eventKey(event.source, event.id);
    const hash = this.kept.get(key);
    if (hash === undefined) {
      this.kept.set(key, event.content_hash);
      return 'new';
    }
    if (hash === event.content_hash) return 'duplicate';
    const conflictKey = JSON.stringify([key, event.content_hash]);
    if (this.conflictSeen.has(conflictKey)) return 'repeated_conflict';
    this.conflictSeen.add(conflictKey);
    return { source: event.source, id: event.id, content_hash: event.content_hash, existing_hash: hash };
  }
}

/** Drops repeats of (source, id): the first occurrence wins; different content under a kept key is a conflict. */
export function dedupeEvents(events: readonly NormalizedEvent[]): {
  events: NormalizedEvent[];
  duplicates: number;
  conflicts: EventConflict[];
} {
  const deduper = new EventDeduper();
  const kept: NormalizedEvent[] = [];
  const conflicts: EventConflict[] = [];
  let duplicates = 0;
  for (const event of events) {
    const verdict = deduper.admit(event);
    if (verdict === 'new') kept.push(event);
    else if (verdict === 'duplicate') duplicates += 1;
    else if (verdict !== 'repeated_conflict') conflicts.push(verdict);
  }
  return { events: kept, duplicates, conflicts };
}

/** Aggregates events (deduplicated first) per customer, meter, window and dimensions; rows in a stable order. */
export function aggregateEvents(
  events: readonly NormalizedEvent[],
  meters: readonly Meter[],
  windows: readonly UsageWindow[],
  options: AggregateOptions = {},
): UsageAggregate[] {
  const accumulator = new UsageAccumulator(meters, windows, options);
  accumulator.add(events);
  return accumulator.rows();
}
