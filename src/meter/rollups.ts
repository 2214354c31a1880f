// Usage read from the rollups (migration 015) instead of the events, equal to a recount of the stored events
// (recountUsage in usage.ts) for any window, late filter and watermark. A window is cut into whole months, whole
// hours and the minutes at its edges; a whole month or hour is read from its rollup rows when they can vouch for
// the answer, and recounted from the events when they cannot:
//   - a rollup row counted an event newer than the reader's watermark (seq_max > watermark): the month is read by
//     its hours, and such an hour from the events;
//   - some value was not a plain decimal (sum, max, latest), or not kept as a distinct key or a latest value (a meter
//     that became unique_count or latest after its events arrived);
//   - a count meter read by dimension finds events of its type that carry no dimensions for it.
// The edges (minutes of a partial hour) are always recounted from the events: at most two hours' worth.
import type pg from 'pg';
import type { Meter } from '../domain/model.js';
import { Decimal, decimalText } from '../domain/money.js';
import { compareText } from './aggregate.js';
import { ensureRollupsReach } from './catch-up.js';
import { eventStreamWindow } from '../store/event-window.js';

type Db = pg.Pool | pg.PoolClient;

export type LateFilter = 'exclude' | 'only' | 'include';

export interface RollupRead {
  meter: Meter;
  from: string; // ISO timestamp, inclusive
  to: string; // ISO timestamp, exclusive
  customers?: readonly string[]; // undefined: every customer
  late: LateFilter;
  watermark?: string; // only events with seq <= watermark
  groupBy: readonly string[];
}

export interface UsageGroup {
  customer: string;
  dimensions: string[]; // values in groupBy order
  quantity: string;
  event_count: number;
  first_event_time: Date;
  last_event_time: Date;
}

/** Which parts of a read came from where: for tests and the bench, never for the answer. */
export interface ReadStats {
  month_buckets: number;
  hour_buckets: number;
  recounted_ranges: number;
}

const HOUR_MS = 3_600_000;

interface Range {
  from: number; // ms, inclusive
  to: number; // ms, exclusive
}

export interface WindowPlan {
  months: Range | null;
  hours: Range[];
  edges: Range[];
}

function monthFloor(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

function monthAfter(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

function monthCeil(ms: number): number {
  const floor = monthFloor(ms);
  return floor === ms ? ms : monthAfter(floor);
}

/** Cuts [from, to) into whole UTC months, whole hours outside them, and the partial hours at the edges. */
export function planWindow(fromMs: number, toMs: number): WindowPlan {
  const hourStart = Math.ceil(fromMs / HOUR_MS) * HOUR_MS;
  const hourEnd = Math.floor(toMs / HOUR_MS) * HOUR_MS;
  if (hourStart >= hourEnd) return { months: null, hours: [], edges: fromMs < toMs ? [{ from: fromMs, to: toMs }] : [] };
  const edges: Range[] = [];
  if (fromMs < hourStart) edges.push({ from: fromMs, to: hourStart });
  if (hourEnd < toMs) edges.push({ from: hourEnd, to: toMs });
  const monthStart = monthCeil(hourStart);
  const monthEnd = monthFloor(hourEnd);
  if (monthStart >= monthEnd) return { months: null, hours: [{ from: hourStart, to: hourEnd }], edges };
  const hours: Range[] = [];
  if (hourStart < monthStart) hours.push({ from: hourStart, to: monthStart });
  if (monthEnd < hourEnd) hours.push({ from: monthEnd, to: hourEnd });
  return { months: { from: monthStart, to: monthEnd }, hours, edges };
}

interface Latest {
  us: bigint; // event time in microseconds since the epoch
  id: string;
  source: string;
  value: string;
}

/** (time, id, source) order of latest, ids and sources by code point as Postgres `COLLATE "C"`. */
function laterThan(a: Latest, b: Latest): boolean {
  if (a.us !== b.us) return a.us > b.us;
  return (compareText(a.id, b.id) || compareText(a.source, b.source)) > 0;
}

interface Group {
  customer: string;
  dimensions: string[];
  count: bigint;
  sum: Decimal;
  max: Decimal | null;
  first: Date;
  last: Date;
  latest: Latest | null;
  keys: Set<string>;
}

interface Partial {
  customer: string;
  dimensions: string[];
  count: bigint;
  sum: string | null;
  max: string | null;
  first: Date;
  last: Date;
  latest: Latest | null;
}

class Merger {
  private readonly groups = new Map<string, Group>();

  private group(customer: string, dimensions: string[], first: Date, last: Date): Group {
    const key = JSON.stringify([customer, ...dimensions]);
    let group = this.groups.get(key);
    if (!group) {
      group = { customer, dimensions, count: 0n, sum: new Decimal(0), max: null, first, last, latest: null, keys: new Set() };
      this.groups.set(key, group);
    }
    return group;
  }

  add(part: Partial): void {
    const group = this.group(part.customer, part.dimensions, part.first, part.last);
    group.count += part.count;
    if (part.sum !== null) group.sum = group.sum.plus(part.sum);
    if (part.max !== null) {
      const max = new Decimal(part.max);
      if (group.max === null || max.greaterThan(group.max)) group.max = max;
    }
    if (part.first.getTime() < group.first.getTime()) group.first = part.first;
    if (part.last.getTime() > group.last.getTime()) group.last = part.last;
    if (part.latest !== null && (group.latest === null || laterThan(part.latest, group.latest))) group.latest = part.latest;
  }

  addKey(customer: string, dimensions: string[], key: string): void {
    const group = this.groups.get(JSON.stringify([customer, ...dimensions]));
    // A key always comes with the event that carried it, so its group exists.
    if (!group) throw new Error(`unique key of ${customer} ${JSON.stringify(dimensions)} without its events`);
    group.keys.add(key);
  }

  rows(meter: Meter): UsageGroup[] {
    return [...this.groups.values()].map((g) => ({
      customer: g.customer,
      dimensions: g.dimensions,
      quantity: quantityOf(meter, g),
      event_count: Number(g.count),
      first_event_time: g.first,
      last_event_time: g.last,
    }));
  }
}

function quantityOf(meter: Meter, g: Group): string {
  switch (meter.aggregation) {
    case 'count':
      return g.count.toString();
    case 'sum':
      return decimalText(g.sum);
    case 'max':
      return g.max === null ? '0' : decimalText(g.max);
    case 'unique_count':
      return String(g.keys.size);
    case 'latest':
      return g.latest === null ? '0' : decimalText(new Decimal(g.latest.value));
  }
}

interface RollupRow {
  customer_id: string;
  bucket: Date;
  meter_id: string;
  dims: string[] | null;
  event_count: string;
  anchor_count: string;
  numeric_count: string;
  keyed_count: string;
  latest_count: string;
  value_sum: string | null;
  value_max: string | null;
  first_time: Date;
  last_time: Date;
  seq_max: string;
  latest_us: string | null;
  latest_id: string | null;
  latest_source: string | null;
  latest_value: string | null;
}

/** SQL pieces shared by the rollup, key and event queries of one read. */
class ReadSql {
  readonly params: unknown[] = [];
  constructor(private readonly read: RollupRead) {}

  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  late(column = 'late'): string {
    if (this.read.late === 'exclude') return ` AND NOT ${column}`;
    if (this.read.late === 'only') return ` AND ${column}`;
    return '';
  }

  customers(column = 'customer_id'): string {
    return this.read.customers ? ` AND ${column} = ANY(${this.param(this.read.customers)}::text[])` : '';
  }

  /** The groupBy values of a rollup or key row, as an array (coalesced to '' as the recount does). */
  rollupDims(): string {
    if (this.read.groupBy.length === 0) return 'NULL::text[]';
    return `ARRAY[${this.read.groupBy.map((k) => `coalesce(dimensions ->> ${this.param(k)}::text, '')`).join(', ')}]`;
  }

  eventDims(): string[] {
    if (this.read.groupBy.length === 0) return [];
    const meter = this.param(this.read.meter.id);
    return this.read.groupBy.map((k) => `coalesce(e.dimensions -> ${meter}::text ->> ${this.param(k)}::text, '')`);
  }
}

function dimsOf(value: string[] | null): string[] {
  return value ?? [];
}

/** The rows of one (customer, bucket) vouch for the answer, at this watermark. */
function vouches(read: RollupRead, rows: RollupRow[]): boolean {
  const watermark = read.watermark === undefined ? undefined : BigInt(read.watermark);
  let typeTotal = 0n; // every event of the type, once
  let meterTotal = 0n; // the events that name the meter
  for (const row of rows) {
    if (watermark !== undefined && BigInt(row.seq_max) > watermark) return false;
    typeTotal += BigInt(row.anchor_count);
    if (row.meter_id === read.meter.id) meterTotal += BigInt(row.event_count);
    switch (read.meter.aggregation) {
      case 'sum':
      case 'max':
        if (row.numeric_count !== row.event_count) return false;
        break;
      case 'latest':
        if (row.numeric_count !== row.event_count || row.latest_count !== row.event_count) return false;
        break;
      case 'unique_count':
        if (row.keyed_count !== row.event_count) return false;
        break;
      case 'count':
        break;
    }
  }
  return !(read.meter.aggregation === 'count' && read.groupBy.length > 0 && meterTotal !== typeTotal);
}

function partialOfRollup(read: RollupRead, row: RollupRow): Partial {
  // A count without dimensions counts every event of the type once: by the rows that anchor them.
  const countAll = read.meter.aggregation === 'count' && read.groupBy.length === 0;
  return {
    customer: row.customer_id,
    dimensions: dimsOf(row.dims),
    count: BigInt(countAll ? row.anchor_count : row.event_count),
    sum: read.meter.aggregation === 'sum' ? row.value_sum : null,
    max: read.meter.aggregation === 'max' ? row.value_max : null,
    first: row.first_time,
    last: row.last_time,
    latest:
      read.meter.aggregation === 'latest' && row.latest_us !== null
        ? { us: BigInt(row.latest_us), id: row.latest_id!, source: row.latest_source!, value: row.latest_value! }
        : null,
  };
}

/**
 * The latest key as migration 015 stores it: bytes that order as (time, id COLLATE "C", source COLLATE "C"), the
 * time as big-endian microseconds offset by 2^62 so every year from 1 to 9999 compares as unsigned bytes.
 */
function latestKey(value: string): string {
  return `ARRAY[int8send((extract(epoch FROM e.time) * 1000000)::bigint + 4611686018427387904), convert_to(e.id, 'UTF8'), convert_to(e.source, 'UTF8'), convert_to(${value}, 'UTF8')]`;
}

const LATEST_COLUMNS = `(('x' || encode(latest[1], 'hex'))::bit(64)::bigint - 4611686018427387904)::text AS latest_us,
  convert_from(latest[2], 'UTF8') AS latest_id, convert_from(latest[3], 'UTF8') AS latest_source, convert_from(latest[4], 'UTF8') AS latest_value`;

/** The bucket starts of a grain in a range, listed: equality on the key's bucket keeps every read an index seek. */
function bucketsOf(grain: 'hour' | 'month', range: Range): string[] {
  const buckets: string[] = [];
  for (let at = range.from; at < range.to; at = grain === 'hour' ? at + HOUR_MS : monthAfter(at)) buckets.push(new Date(at).toISOString());
  return buckets;
}

async function rollupRows(db: Db, read: RollupRead, grain: 'hour' | 'month', range: Range, customer?: string): Promise<RollupRow[]> {
  const sql = new ReadSql(read);
  const where = [
    `grain = ${sql.param(grain)}::text`,
    `type = ${sql.param(read.meter.event_type)}::text`,
    `bucket = ANY(${sql.param(bucketsOf(grain, range))}::timestamptz[])`,
  ].join(' AND ');
  const dims = sql.rollupDims();
  const only = customer === undefined ? sql.customers() : ` AND customer_id = ${sql.param(customer)}::text`;
  // A count reads every row of its type (each event is anchored once among them); any other meter its own valued rows.
  const meter = read.meter.aggregation === 'count' ? '' : ` AND meter_id = ${sql.param(read.meter.id)}::text AND valued`;
  const result = await db.query<RollupRow>(
    `SELECT customer_id, bucket, meter_id, ${dims} AS dims, event_count, anchor_count, numeric_count, keyed_count, latest_count, value_sum::text AS value_sum,
            value_max::text AS value_max, first_time, last_time, seq_max,
            ${LATEST_COLUMNS}
       FROM usage_rollups
      WHERE ${where}${only}${sql.late()}${meter}`,
    sql.params,
  );
  return result.rows;
}

interface BucketSet {
  grain: 'hour' | 'month';
  customers: string[];
  buckets: string[]; // ISO
}

/** Adds the rows of the buckets that vouch; returns the (customer, bucket start) of those that do not. */
function takeVouched(read: RollupRead, rows: RollupRow[], merger: Merger, vouched: BucketSet): Array<{ customer: string; bucket: number }> {
  const byBucket = new Map<string, RollupRow[]>();
  for (const row of rows) {
    const key = JSON.stringify([row.customer_id, row.bucket.getTime()]);
    const list = byBucket.get(key);
    if (list) list.push(row);
    else byBucket.set(key, [row]);
  }
  const refused: Array<{ customer: string; bucket: number }> = [];
  for (const list of byBucket.values()) {
    const { customer_id: customer, bucket } = list[0]!;
    if (!vouches(read, list)) {
      refused.push({ customer, bucket: bucket.getTime() });
      continue;
    }
    vouched.customers.push(customer);
    vouched.buckets.push(bucket.toISOString());
    for (const row of list) {
      // For a count by dimension the other meters' rows only vouched; the meter's own rows carry its dimensions.
      if (read.meter.aggregation === 'count' && read.groupBy.length > 0 && row.meter_id !== read.meter.id) continue;
      merger.add(partialOfRollup(read, row));
    }
  }
  return refused;
}

interface RecountRange extends Range {
  customer?: string; // undefined: every customer of the read
}

interface EventPartialRow {
  customer_id: string;
  dims: string[] | null;
  event_count: string;
  value_sum: string | null;
  value_max: string | null;
  first_time: Date;
  last_time: Date;
  latest_us: string | null;
  latest_id: string | null;
  latest_source: string | null;
  latest_value: string | null;
}

/** Limit: ranges recounted per query (each is one OR arm). */
export const RECOUNT_RANGES_PER_QUERY = 200;

/** Adjacent ranges of the same customer as one: a month refused hour by hour is one range, not 744. */
function coalesceRanges(ranges: RecountRange[]): RecountRange[] {
  const sorted = [...ranges].sort(
    (a, b) =>
      compareText(a.customer ?? '', b.customer ?? '') ||
      (a.customer === undefined ? 0 : 1) - (b.customer === undefined ? 0 : 1) ||
      a.from - b.from,
  );
  const out: RecountRange[] = [];
  for (const range of sorted) {
    const last = out[out.length - 1];
    if (last && last.customer === range.customer && last.to === range.from) last.to = range.to;
    else out.push({ ...range });
  }
  return out;
}

/** The recount of events over ranges, with the same filters as recountUsage, as partial aggregates to merge. */
async function recountRanges(db: Db, read: RollupRead, ranges: RecountRange[], merger: Merger, keysToo: boolean): Promise<void> {
  const merged = coalesceRanges(ranges);
  for (let start = 0; start < merged.length; start += RECOUNT_RANGES_PER_QUERY) {
    await recountSome(db, read, merged.slice(start, start + RECOUNT_RANGES_PER_QUERY), merger, keysToo);
  }
}

async function recountSome(db: Db, read: RollupRead, ranges: RecountRange[], merger: Merger, keysToo: boolean): Promise<void> {
  const { meter } = read;
  const shared = (sql: ReadSql) => {
    // Each range as its own predicate, so an index applies to each: a customer's range the index of its (customer,
    // type, day) key, every customer's the block ranges of time.
    const type = sql.param(meter.event_type);
    const arms = ranges.map((r) => {
      const from = `${sql.param(new Date(r.from).toISOString())}::timestamptz`;
      const to = `${sql.param(new Date(r.to).toISOString())}::timestamptz`;
      if (r.customer === undefined) return `(e.time >= ${from} AND e.time < ${to})`;
      return `(${eventStreamWindow({ customer: sql.param(r.customer), type, from, to, alias: 'e.' })})`;
    });
    let where = `e.type = ${type}::text AND (${arms.join(' OR ')})${sql.customers('e.customer_id')}${sql.late('e.late')}`;
    if (read.watermark !== undefined) where += ` AND e.seq <= ${sql.param(read.watermark)}::bigint`;
    if (meter.aggregation !== 'count') where += ` AND e.meter_values ? ${sql.param(meter.id)}::text`;
    return where;
  };

  const sql = new ReadSql(read);
  const dims = sql.eventDims();
  // Only an aggregate that reads the value names it: an unused parameter has no type Postgres can infer.
  const value = ['sum', 'max', 'latest'].includes(meter.aggregation) ? `(e.meter_values ->> ${sql.param(meter.id)}::text)` : '';
  const where = shared(sql);
  const dimsArray = dims.length === 0 ? 'NULL::text[]' : `ARRAY[${dims.join(', ')}]`;
  const groupBy = ['e.customer_id', ...dims].join(', ');
  const aggregates = [
    'count(*)::text AS event_count',
    meter.aggregation === 'sum' ? `sum(${value}::numeric)::text AS value_sum` : 'NULL::text AS value_sum',
    meter.aggregation === 'max' ? `max(${value}::numeric)::text AS value_max` : 'NULL::text AS value_max',
    'min(e.time) AS first_time',
    'max(e.time) AS last_time',
    meter.aggregation === 'latest' ? `max(${latestKey(`(${value}::numeric)::text`)}) AS latest` : 'NULL::bytea[] AS latest',
  ];
  const rows = (
    await db.query<EventPartialRow>(
      `SELECT customer_id, dims, event_count, value_sum, value_max, first_time, last_time,
              ${LATEST_COLUMNS}
         FROM (SELECT e.customer_id, ${dimsArray} AS dims, ${aggregates.join(', ')}
                 FROM events e
                WHERE ${where}
                GROUP BY ${groupBy}) AS partials`,
      sql.params,
    )
  ).rows;
  for (const row of rows) {
    merger.add({
      customer: row.customer_id,
      dimensions: dimsOf(row.dims),
      count: BigInt(row.event_count),
      sum: row.value_sum,
      max: row.value_max,
      first: row.first_time,
      last: row.last_time,
      latest:
        row.latest_us === null
          ? null
          : { us: BigInt(row.latest_us), id: row.latest_id!, source: row.latest_source!, value: row.latest_value! },
    });
  }
  if (!keysToo) return;
  const keySql = new ReadSql(read);
  const keyDims = keySql.eventDims();
  const keyValue = `(e.meter_values ->> ${keySql.param(meter.id)}::text)`;
  const keyWhere = shared(keySql);
  const keys = (
    await db.query<{ customer_id: string; dims: string[] | null; key: string }>(
      `SELECT DISTINCT e.customer_id, ${keyDims.length === 0 ? 'NULL::text[]' : `ARRAY[${keyDims.join(', ')}]`} AS dims, ${keyValue} AS key
         FROM events e
        WHERE ${keyWhere} AND ${keyValue} IS NOT NULL`,
      keySql.params,
    )
  ).rows;
  for (const row of keys) merger.addKey(row.customer_id, dimsOf(row.dims), row.key);
}

/** The distinct keys of unique_count rows in buckets that vouched. */
async function rollupKeys(db: Db, read: RollupRead, vouched: BucketSet, merger: Merger): Promise<void> {
  if (vouched.customers.length === 0) return;
  const sql = new ReadSql(read);
  const dims = sql.rollupDims();
  const rows = (
    await db.query<{ customer_id: string; dims: string[] | null; key: string }>(
      `SELECT DISTINCT k.customer_id, ${dims} AS dims, k.key
         FROM usage_unique_keys k
         JOIN unnest(${sql.param(vouched.customers)}::text[], ${sql.param(vouched.buckets)}::timestamptz[]) AS p (customer_id, bucket)
           ON k.customer_id = p.customer_id AND k.bucket = p.bucket
        WHERE k.grain = ${sql.param(vouched.grain)} AND k.type = ${sql.param(read.meter.event_type)} AND k.meter_id = ${sql.param(read.meter.id)}${sql.late('k.late')}`,
      sql.params,
    )
  ).rows;
  for (const row of rows) merger.addKey(row.customer_id, dimsOf(row.dims), row.key);
}

/** Usage groups of one meter over one window, from the rollups where they vouch and the events elsewhere. */
export async function readUsage(db: Db, read: RollupRead, stats?: ReadStats): Promise<UsageGroup[]> {
  await ensureRollupsReach(db, read.watermark);
  const plan = planWindow(Date.parse(read.from), Date.parse(read.to));
  const merger = new Merger();
  const unique = read.meter.aggregation === 'unique_count';
  const recount: RecountRange[] = plan.edges.map((r) => ({ ...r }));
  const hourReads: Array<{ range: Range; customer?: string }> = plan.hours.map((range) => ({ range }));

  if (plan.months) {
    const vouched: BucketSet = { grain: 'month', customers: [], buckets: [] };
    const refused = takeVouched(read, await rollupRows(db, read, 'month', plan.months), merger, vouched);
    if (stats) stats.month_buckets += vouched.customers.length;
    for (const { customer, bucket } of refused) hourReads.push({ range: { from: bucket, to: monthAfter(bucket) }, customer });
    if (unique) await rollupKeys(db, read, vouched, merger);
  }
  const vouchedHours: BucketSet = { grain: 'hour', customers: [], buckets: [] };
  for (const { range, customer } of hourReads) {
    const refused = takeVouched(read, await rollupRows(db, read, 'hour', range, customer), merger, vouchedHours);
    for (const { customer: c, bucket } of refused) recount.push({ from: bucket, to: bucket + HOUR_MS, customer: c });
  }
  if (stats) stats.hour_buckets += vouchedHours.customers.length;
  if (unique) await rollupKeys(db, read, vouchedHours, merger);
  if (stats) stats.recounted_ranges += recount.length;
  await recountRanges(db, read, recount, merger, unique);
  return merger.rows(read.meter);
}
