// CloudEvents 1.0 (JSON format) validation and normalization for usage events. Pure: no I/O, no clock
// (the caller passes `now`). One verdict per event: valid (normalized), rejected (problems by attribute),
// or quarantined (well-formed, but the catalog in force knows neither its type nor its subject yet).
// See docs/ingestion.md for the rules as users read them.
import { fullFormats } from 'ajv-formats/dist/formats.js';
import canonicalize from 'canonicalize';
import type { Meter } from '../domain/model.js';
import { DECIMAL_DIGITS_MAX, Decimal, decimalText, parseDecimal } from '../domain/money.js';
import { meterValueProblem } from '../domain/limits.js';
import { describeValue, fail, ok, problem, type Problem, type Result } from '../domain/result.js';
import { compileJsonPath, evaluateJsonPath, formatFieldPath } from '../domain/jsonpath.js';
import { decodeUtf8, parseStrictJson } from '../domain/strict-json.js';
import {
  EVENT_LIMITS as INGEST_LIMITS,
  canonicalEventParts,
  sha256Hex,
  type NormalizedEvent,
  type QuarantinedEvent,
  type QuarantineReason,
} from '../domain/event.js';

export { EVENT_LIMITS as INGEST_LIMITS } from '../domain/event.js';

/** What the validator needs from the catalog in force (see CatalogIndex) and the caller. */
export interface IngestContext {
  metersByType: ReadonlyMap<string, readonly Meter[]>;
  /** Tenant (CloudEvents subject) -> customer id, or the customer itself. */
  customerByTenant: ReadonlyMap<string, string | { id: string }>;
  now: Date;
  /** How far in the future `time` may be, in milliseconds. */
  futureSkewMsMax: number;
  /** When given, a source it refuses is rejected (API keys are scoped to sources). */
  allowedSources?: (source: string) => boolean;
  /**
   * When given, the key sending is limited to some legal entities: an event for a customer of another entity is
   * rejected naming the customer, and one whose subject names no customer (which could become anyone's) too.
   */
  allowedCustomer?: (customer: string) => boolean;
  /** Largest absolute value per meter (CatalogIndex.meterValueMax): beyond it an event cannot be billed and is rejected. */
  meterValueMax?: ReadonlyMap<string, Decimal>;
  /** The events were read from bytes that vouch for their strings (StrictJsonResult.plainText): IngestOptions.plainText. */
  plainText?: boolean;
}

export type { NormalizedEvent, QuarantinedEvent, QuarantineReason } from '../domain/event.js';

export type EventVerdict =
  | { status: 'valid'; event: NormalizedEvent }
  | { status: 'rejected'; problems: Problem[] }
  | { status: 'quarantined'; reason: QuarantineReason; problems: Problem[]; event: QuarantinedEvent };

const CONTEXT_ATTRIBUTES = new Set([
  'specversion',
  'id',
  'source',
  'type',
  'subject',
  'time',
  'datacontenttype',
  'dataschema',
  'data',
  'data_base64',
]);
const EXTENSION_NAME = /^[a-z0-9]+$/;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export { eventContentHash, eventKey } from '../domain/event.js';

export interface NdjsonLine {
  line: number;
  value?: unknown;
  /** The first problem of a line that is not a readable JSON value (absent when `value` is set). */
  problem?: Problem;
  /** Every problem of the line (at most JSON_PROBLEMS_MAX). */
  problems?: Problem[];
}

/**
 * NDJSON: one JSON value per line (LF or CRLF); blank lines are skipped. Each line is read strictly
 * (src/domain/strict-json.ts): a malformed line is a problem at `line N`; a repeated key, an inexact number, NUL or an
 * unpaired surrogate, or nesting too deep is a problem at the field's path; every message names the line and the byte
 * within it. Bytes are decoded per line with a fatal decoder (an invalid byte is named, never replaced).
 */
export function parseNdjson(input: string | Uint8Array): NdjsonLine[] {
  const out: NdjsonLine[] = [];
  if (typeof input === 'string') {
    const lines = input.split('\n');
    for (let i = 0; i < lines.length; i += 1) {
      const raw = lines[i]!;
      const entry = parseNdjsonLine(raw.endsWith('\r') ? raw.slice(0, -1) : raw, i + 1);
      if (entry) out.push(entry);
    }
    return out;
  }
  let start = 0;
  for (let lineNo = 1; start <= input.length; lineNo += 1) {
    let end = input.indexOf(0x0a, start);
    if (end === -1) end = input.length;
    const entry = parseNdjsonLineBytes(input.subarray(start, end > start && input[end - 1] === 0x0d ? end - 1 : end), lineNo);
    if (entry) out.push(entry);
    start = end + 1;
  }
  return out;
}

/** One NDJSON line as bytes (without its line ending); undefined for a blank line. */
export function parseNdjsonLineBytes(bytes: Uint8Array, line: number): NdjsonLine | undefined {
  const decoded = decodeUtf8(bytes, (offset) => `line ${line}, byte ${offset}`);
  if (!decoded.ok) {
    const p = { path: `line ${line}`, code: decoded.problem.code, message: decoded.problem.message };
    return { line, problem: p, problems: [p] };
  }
  return parseNdjsonLine(decoded.text, line);
}

/** One NDJSON line as text (without its line ending); undefined for a blank line. */
export function parseNdjsonLine(content: string, line: number): NdjsonLine | undefined {
  if (/^[ \t\r]*$/.test(content)) return undefined;
  const parsed = parseStrictJson(content, { where: (offset) => `line ${line}, byte ${offset}` });
  if (parsed.ok) return { line, value: parsed.value };
  const problems = parsed.problems.map((p) => ({ path: p.path === '' ? `line ${line}` : p.path, code: p.code, message: p.message }));
  return { line, problem: problems[0], problems };
}

// ---------- time ----------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
const NO_OFFSET = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;
// Already canonical (UTC, upper-case T and Z, milliseconds): once its fields check out, it is its own ISO form.
const CANONICAL_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const TIME_MIN_MS = 0; // 1970-01-01T00:00:00Z: earlier is a zero value or a bug, never usage
const TIME_MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
// Years before 1969 are out of range whatever the offset. Checked before Date.UTC, which reads years 0 to 99 as 1900
// to 1999: 0075-06-01 would otherwise pass as 1975 (and, written canonically, be stored as the year 75).
const YEAR_MIN_LOCAL = 1969;

/**
 * An RFC 3339 timestamp WITH an offset (`Z` or `±hh:mm`) to canonical ISO UTC with milliseconds.
 * Fractions beyond milliseconds are truncated; leap seconds (second 60) and years before 1970 are refused.
 */
export function parseEventTime(value: unknown, path = 'time'): Result<{ iso: string; ms: number }> {
  if (typeof value !== 'string')
    return fail(problem(path, 'invalid_time', `must be an RFC 3339 timestamp such as "2026-11-03T10:00:00Z", got ${describe(value)}`));
  if (value.length === 24 && CANONICAL_UTC.test(value)) return canonicalEventTime(value, path);
  const m = RFC3339.exec(value);
  if (!m) {
    if (NO_OFFSET.test(value)) return fail(problem(path, 'missing_offset', `must carry an offset (Z or +hh:mm), got ${describe(value)}`));
    return fail(problem(path, 'invalid_time', `must be an RFC 3339 timestamp such as "2026-11-03T10:00:00Z", got ${describe(value)}`));
  }
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  const fraction = m[7] ?? '';
  const refused = fieldsRefused(path, value, year, month, day, hour, minute, second);
  if (refused) return refused;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return invalidTime(path, value, 'has an offset out of range');
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, Number(fraction.slice(0, 3).padEnd(3, '0'))) - offsetMinutes * 60_000;
  if (ms < TIME_MIN_MS || ms > TIME_MAX_MS) return outOfRange(path, value);
  return ok({ iso: CANONICAL_UTC.test(value) ? value : new Date(ms).toISOString(), ms });
}

/**
 * parseEventTime of a time already in canonical form (2026-11-03T10:00:00.000Z, the form most senders write): its
 * fields read from their digits rather than through the general expression's captures, the same checks on them.
 */
function canonicalEventTime(value: string, path: string): Result<{ iso: string; ms: number }> {
  const year = digitsAt(value, 0, 4);
  const month = digitsAt(value, 5, 7);
  const day = digitsAt(value, 8, 10);
  const hour = digitsAt(value, 11, 13);
  const minute = digitsAt(value, 14, 16);
  const second = digitsAt(value, 17, 19);
  const refused = fieldsRefused(path, value, year, month, day, hour, minute, second);
  if (refused) return refused;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, digitsAt(value, 20, 23));
  if (ms < TIME_MIN_MS || ms > TIME_MAX_MS) return outOfRange(path, value);
  return ok({ iso: value, ms });
}

/** The refusal of a time whose fields name no instant Accrue accepts (no such date or time, a leap second, before 1969). */
function fieldsRefused(
  path: string,
  value: string,
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): Result<{ iso: string; ms: number }> | undefined {
  if (year < YEAR_MIN_LOCAL) return outOfRange(path, value);
  if (month < 1 || month > 12) return invalidTime(path, value, 'has no such month');
  const daysInMonth = month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
  if (day < 1 || day > daysInMonth) return invalidTime(path, value, 'has no such day');
  if (hour > 23 || minute > 59) return invalidTime(path, value, 'has no such time of day');
  if (second === 60) return invalidTime(path, value, 'is a leap second, which Accrue does not accept');
  if (second > 59) return invalidTime(path, value, 'has no such second');
  return undefined;
}

/** The number the decimal digits of text[from, to) write. */
function digitsAt(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i += 1) n = n * 10 + text.charCodeAt(i) - 0x30;
  return n;
}

function outOfRange(path: string, value: string): Result<{ iso: string; ms: number }> {
  return fail(problem(path, 'out_of_range', `must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, got ${describe(value)}`));
}

function invalidTime(path: string, value: string, why: string): Result<{ iso: string; ms: number }> {
  return fail(problem(path, 'invalid_time', `${why}, got ${describe(value)}`));
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

// ---------- values ----------

/**
 * A meter value as canonical decimal text. Accepts a decimal string ("1.5", "-2", "0.000137") or a JSON number
 * that is exact: a safe integer, or a non-integer read as its shortest round-trip form (String(n)).
 * Refuses "NaN", "Infinity", exponents, hex, leading zeros, "+1", ".5", booleans and null.
 */
export function readDecimalValue(value: unknown, path: string, allowNegative: boolean): Result<string> {
  let parsed: Decimal;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return fail(problem(path, 'not_decimal', `must be a decimal number, got ${describe(value)}`));
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      return fail(problem(path, 'unsafe_integer', `is beyond 2^53 - 1 and cannot be read exactly; send it as a decimal string`));
    }
    parsed = new Decimal(String(value));
    if (decimalText(parsed).replace(/[-.]/g, '').length > DECIMAL_DIGITS_MAX)
      return fail(problem(path, 'too_many_digits', `must have at most ${DECIMAL_DIGITS_MAX} digits`));
  } else if (typeof value === 'string') {
    const result = parseDecimal(value, path, { allowNegative: true });
    if (!result.ok) {
      const first = result.problems[0]!;
      if (first.code === 'not_decimal') return fail(problem(path, 'not_decimal', `must be a decimal number, got ${describe(value)}`));
      return result;
    }
    parsed = result.value;
  } else {
    return fail(problem(path, 'not_decimal', `must be a decimal number, got ${describe(value)}`));
  }
  if (!allowNegative && parsed.isNegative() && !parsed.isZero())
    return fail(problem(path, 'negative', `must not be negative (the meter does not allow negative values), got ${describe(value)}`));
  return ok(decimalText(parsed));
}

/** A unique_count value: a non-empty string or a safe integer, stored as text (so 7 and "7" are the same key). */
export function readUniqueKey(value: unknown, path: string): Result<string> {
  if (typeof value === 'string') {
    if (value === '') return fail(problem(path, 'empty', 'must not be empty'));
    if (value.length > INGEST_LIMITS.uniqueKeyLengthMax)
      return fail(problem(path, 'too_long', `must be at most ${INGEST_LIMITS.uniqueKeyLengthMax} characters`));
    return ok(value);
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return ok(String(value));
  return fail(problem(path, 'not_unique_key', `must be a string or an integer, got ${describe(value)}`));
}

/** A group_by dimension: strings as they are, numbers and booleans as text, missing or null as "". */
function readDimension(value: unknown, path: string): Result<string> {
  if (value === undefined || value === null) return ok('');
  if (typeof value === 'string') {
    if (value.length > INGEST_LIMITS.dimensionLengthMax)
      return fail(problem(path, 'too_long', `must be at most ${INGEST_LIMITS.dimensionLengthMax} characters`));
    return ok(value);
  }
  if (typeof value === 'number' && Number.isFinite(value)) return ok(String(value));
  if (typeof value === 'boolean') return ok(String(value));
  return fail(problem(path, 'not_dimension', `must be a string, number or boolean, got ${describe(value)}`));
}

// ---------- the validator ----------

export function validateEvent(raw: unknown, index: number, ctx: IngestContext): EventVerdict {
  void index; // problems are relative to the event; the caller prefixes `[index]`
  if (!isPlainObject(raw)) return rejected(problem('', 'not_object', `must be a JSON object (a CloudEvent), got ${describe(raw)}`));
  const canonical = canonicalText(raw, ctx.plainText === true);
  if ('status' in canonical) return canonical;
  const contentHash = sha256Hex(canonical.text);

  const problems: Problem[] = [];
  checkSpecversion(raw, problems);
  const id = requiredString(attr(raw, 'id'), 'id', INGEST_LIMITS.idLengthMax, problems);
  const source = readSource(raw, ctx, problems);
  const type = requiredString(attr(raw, 'type'), 'type', INGEST_LIMITS.typeLengthMax, problems);
  const subject = requiredString(attr(raw, 'subject'), 'subject', INGEST_LIMITS.subjectLengthMax, problems);
  const time = readTime(raw, ctx, problems);
  checkContentAttributes(raw, problems);
  const data = readData(raw, problems);
  checkExtensions(raw, problems);
  if (
    problems.length > 0 ||
    id === undefined ||
    source === undefined ||
    type === undefined ||
    subject === undefined ||
    time === undefined
  ) {
    return { status: 'rejected', problems };
  }

  const customerEntry = ctx.customerByTenant.get(subject);
  const customer = customerEntry === undefined ? null : typeof customerEntry === 'string' ? customerEntry : customerEntry.id;
  if (ctx.allowedCustomer && (customer === null || !ctx.allowedCustomer(customer))) return entityRefusal(subject, customer);

  // Every meter reading the type reads its value and dimensions; a type no meter reads, or a subject no customer has,
  // is kept in quarantine (a type first), unless what the meters read is wrong.
  const meters = ctx.metersByType.get(type) ?? [];
  const values: Record<string, string> = {};
  const dimensions: Record<string, Record<string, string>> = {};
  for (const meter of meters) readMeter(meter, data, ctx, problems, values, dimensions);
  if (problems.length > 0) return { status: 'rejected', problems: dedupeProblems(problems) };
  if (meters.length === 0 || customer === null) {
    const kept = { source, id, type, subject, customer, time: time.iso, data, content_hash: contentHash, raw };
    if (meters.length === 0)
      return quarantined('type', 'unknown_type', `no meter in the catalog in force reads type ${describe(type)}`, kept);
    return quarantined('subject', 'unknown_subject', `no customer in the catalog in force has tenant ${describe(subject)}`, kept);
  }
  const event: NormalizedEvent = {
    source,
    id,
    type,
    subject,
    customer,
    time: time.iso,
    data,
    values,
    dimensions,
    content_hash: contentHash,
  };
  // The canonical text of `data` is that of the object stored, unless there was none (or null): then {} is stored.
  if (canonical.data !== undefined && data === raw.data) event.data_json = canonical.data;
  return { status: 'valid', event };
}

/** The verdict keeping a well-formed event in quarantine until the catalog knows its type or subject. */
function quarantined(path: 'type' | 'subject', reason: QuarantineReason, why: string, event: QuarantinedEvent): EventVerdict {
  return { status: 'quarantined', reason, problems: [problem(path, reason, `${why}; the event is kept in quarantine`)], event };
}

/**
 * The event's canonical JSON, or the verdict rejecting it. Strings Postgres cannot store (NUL, unpaired surrogates)
 * and runaway nesting are refused before hashing.
 */
function canonicalText(raw: Record<string, unknown>, plainText: boolean): { text: string; data: string | undefined } | EventVerdict {
  // The fast walk writes the canonical form and vouches for the shape at once; anything it doubts takes the exact path.
  let canonical = canonicalEventParts(raw, plainText);
  if (canonical === undefined) {
    const shapeProblems: Problem[] = [];
    checkShape(raw, '', 0, shapeProblems);
    if (shapeProblems.length > 0) return { status: 'rejected', problems: shapeProblems.slice(0, 10) };
    const text = canonicalize(raw);
    if (text === undefined) return rejected(problem('', 'not_object', 'must be a JSON object'));
    canonical = { text, data: undefined };
  }
  // UTF-8 takes at most 3 bytes per UTF-16 unit, so only a long text needs its bytes counted.
  if (canonical.text.length * 3 > INGEST_LIMITS.eventBytesMax) {
    const bytes = Buffer.byteLength(canonical.text, 'utf8');
    if (bytes > INGEST_LIMITS.eventBytesMax)
      return rejected(problem('', 'too_large', `must be at most ${INGEST_LIMITS.eventBytesMax} bytes as canonical JSON, got ${bytes}`));
  }
  return canonical;
}

function checkSpecversion(raw: Record<string, unknown>, problems: Problem[]): void {
  const specversion = attr(raw, 'specversion');
  if (specversion === undefined) problems.push(problem('specversion', 'required', 'is required and must be "1.0"'));
  else if (specversion !== '1.0')
    problems.push(problem('specversion', 'unsupported_specversion', `must be "1.0", got ${describe(specversion)}`));
}

// RFC 3986 as the CloudEvents JSON schema checks it (format uri-reference for source, uri for dataschema), with the
// formats of ajv-formats, which the schema's own validators use. Sources repeat: the last ones found good are kept.
const URI_REFERENCE = fullFormats['uri-reference'] as RegExp;
const URI_FORMAT = fullFormats.uri as (text: string) => boolean;
const GOOD_SOURCES_MAX = 1024;
const goodSources = new Set<string>();
function isUriReference(source: string): boolean {
  if (goodSources.has(source)) return true;
  if (!URI_REFERENCE.test(source)) return false;
  if (goodSources.size >= GOOD_SOURCES_MAX) goodSources.clear();
  goodSources.add(source);
  return true;
}

/** An event a key limited to legal entities may not send: its customer is another entity's, or unknown. */
function entityRefusal(subject: string, customer: string | null): EventVerdict {
  const message =
    customer === null
      ? `no customer in the catalog in force has tenant ${describe(subject)}, and this API key is limited to legal entities: it may send events only for its entities' customers`
      : `customer ${describe(customer)} (tenant ${describe(subject)}) belongs to a legal entity this API key may not send events for`;
  return { status: 'rejected', problems: [problem('subject', 'entity_not_permitted', message)] };
}

function readSource(raw: Record<string, unknown>, ctx: IngestContext, problems: Problem[]): string | undefined {
  const source = requiredString(attr(raw, 'source'), 'source', INGEST_LIMITS.sourceLengthMax, problems);
  if (source !== undefined) {
    if (/[\s\u0000-\u001f\u007f]/.test(source))
      problems.push(problem('source', 'not_uri_reference', `must be a URI-reference without spaces, got ${describe(source)}`));
    else if (!isUriReference(source))
      problems.push(problem('source', 'not_uri_reference', `must be an RFC 3986 URI-reference, got ${describe(source)}`));
    else if (ctx.allowedSources && !ctx.allowedSources(source))
      problems.push(problem('source', 'source_not_allowed', `${describe(source)} is not a source this API key may send`));
  }
  return source;
}

function readTime(raw: Record<string, unknown>, ctx: IngestContext, problems: Problem[]): { iso: string; ms: number } | undefined {
  const rawTime = attr(raw, 'time');
  if (rawTime === undefined) {
    problems.push(problem('time', 'required', 'is required: an RFC 3339 timestamp with an offset, such as "2026-11-03T10:00:00Z"'));
    return undefined;
  }
  const parsed = parseEventTime(rawTime, 'time');
  if (!parsed.ok) problems.push(...parsed.problems);
  else if (parsed.value.ms - ctx.now.getTime() > ctx.futureSkewMsMax) {
    problems.push(
      problem(
        'time',
        'future_time',
        `is more than ${ctx.futureSkewMsMax} ms in the future (now ${ctx.now.toISOString()}), got ${describe(rawTime)}`,
      ),
    );
  } else return parsed.value;
  return undefined;
}

/** datacontenttype, dataschema and data_base64. */
function checkContentAttributes(raw: Record<string, unknown>, problems: Problem[]): void {
  const contentType = attr(raw, 'datacontenttype');
  if (contentType !== undefined && (typeof contentType !== 'string' || !/^application\/json[ \t]*(;.*)?$/i.test(contentType))) {
    problems.push(
      problem('datacontenttype', 'unsupported_datacontenttype', `must be application/json when present, got ${describe(contentType)}`),
    );
  }
  const dataschema = attr(raw, 'dataschema');
  if (
    dataschema !== undefined &&
    (typeof dataschema !== 'string' || !/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/.test(dataschema) || !URI_FORMAT(dataschema))
  ) {
    problems.push(problem('dataschema', 'not_uri', `must be an absolute URI when present, got ${describe(dataschema)}`));
  }
  if (attr(raw, 'data_base64') !== undefined)
    problems.push(problem('data_base64', 'binary_data_not_supported', 'binary data is not accepted; send JSON in data'));
}

/** The event's data object; `{}` when it has none (or a problem when it is not an object). */
function readData(raw: Record<string, unknown>, problems: Problem[]): Record<string, unknown> {
  const rawData = attr(raw, 'data');
  if (rawData !== undefined && !isPlainObject(rawData))
    problems.push(problem('data', 'not_object', `must be a JSON object when present, got ${describe(rawData)}`));
  return isPlainObject(rawData) ? rawData : {};
}

/** Every attribute that is not a context attribute is an extension: its name and value are checked. */
function checkExtensions(raw: Record<string, unknown>, problems: Problem[]): void {
  for (const name of Object.keys(raw)) {
    if (CONTEXT_ATTRIBUTES.has(name)) continue;
    if (!EXTENSION_NAME.test(name)) {
      problems.push(
        problem(name, 'invalid_attribute_name', 'extension attribute names must be lower-case ASCII letters and digits (CloudEvents 1.0)'),
      );
      continue;
    }
    if (name.length > INGEST_LIMITS.attributeNameLengthMax) {
      problems.push(
        problem(
          name,
          'attribute_name_too_long',
          `must be at most ${INGEST_LIMITS.attributeNameLengthMax} characters (the spec recommends 20)`,
        ),
      );
      continue;
    }
    const valueProblem = extensionValueProblem(name, raw[name]);
    if (valueProblem !== undefined) problems.push(valueProblem);
  }
}

function extensionValueProblem(name: string, value: unknown): Problem | undefined {
  if (value === null || typeof value === 'boolean') return undefined;
  if (typeof value === 'string') {
    return value.length > INGEST_LIMITS.extensionValueLengthMax
      ? problem(name, 'too_long', `must be at most ${INGEST_LIMITS.extensionValueLengthMax} characters`)
      : undefined;
  }
  if (typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX) return undefined;
  return problem(
    name,
    'invalid_extension_value',
    `an extension attribute must be a string, a boolean or a 32-bit integer, got ${describe(value)}`,
  );
}

/**
 * Reads what one meter needs from the event's data: its value (unless it counts) into `values` and its group_by
 * dimensions into `dimensions`, both by meter id; what cannot be read goes to `problems`.
 */
function readMeter(
  meter: Meter,
  data: Record<string, unknown>,
  ctx: IngestContext,
  problems: Problem[],
  values: Record<string, string>,
  dimensions: Record<string, Record<string, string>>,
): void {
  const paths = meterPaths(meter);
  if (meter.aggregation !== 'count') {
    const read = readMeterValue(meter, paths, data, ctx);
    if (typeof read === 'string') values[meter.id] = read;
    else problems.push(...read);
  }
  if (meter.group_by.length > 0) dimensions[meter.id] = readDimensions(meter, paths, data, problems);
}

/** The meter's value read from the event, or the problems that keep it from being read. */
function readMeterValue(meter: Meter, paths: MeterPaths, data: Record<string, unknown>, ctx: IngestContext): string | Problem[] {
  const fieldPath = paths.valueField;
  const found = evaluateJsonPath(data, paths.valueSteps);
  if (!found.found || found.value === null)
    return [problem(fieldPath, 'missing_value', `is required by meter ${meter.id} (${meter.aggregation} of ${meter.value})`)];
  const read =
    meter.aggregation === 'unique_count'
      ? readUniqueKey(found.value, fieldPath)
      : readDecimalValue(found.value, fieldPath, meter.allow_negative === true);
  const tooLarge =
    read.ok && meter.aggregation !== 'unique_count' ? meterValueProblem(ctx.meterValueMax, meter.id, read.value, fieldPath) : undefined;
  if (tooLarge) return [tooLarge];
  return read.ok ? read.value : read.problems;
}

function readDimensions(meter: Meter, paths: MeterPaths, data: Record<string, unknown>, problems: Problem[]): Record<string, string> {
  const dims: Record<string, string> = {};
  for (let k = 0; k < meter.group_by.length; k += 1) {
    const key = meter.group_by[k]!;
    const read = readDimension(Object.hasOwn(data, key) ? data[key] : undefined, paths.dimensionFields[k]!);
    if (read.ok) dims[key] = read.value;
    else problems.push(...read.problems);
  }
  return dims;
}

// ---------- helpers ----------

/** An attribute as the event carries it; null means unset (JSON format 2.2). */
function attr(raw: Record<string, unknown>, name: string): unknown {
  const value = raw[name];
  return value === null ? undefined : value;
}

interface MeterPaths {
  valueSteps: ReturnType<typeof compileJsonPath>;
  valueField: string;
  dimensionFields: string[];
}

// A meter's compiled value path and the field paths its problems name, worked out once per meter object.
const meterPathCache = new WeakMap<Meter, MeterPaths>();

function meterPaths(meter: Meter): MeterPaths {
  let paths = meterPathCache.get(meter);
  if (paths === undefined) {
    let valueSteps: MeterPaths['valueSteps'] = [];
    if (meter.aggregation !== 'count') {
      if (meter.value === undefined) throw new Error(`meter ${meter.id} has no value path`); // the catalog guarantees it
      valueSteps = compileJsonPath(meter.value);
    }
    paths = {
      valueSteps,
      valueField: formatFieldPath('data', valueSteps),
      dimensionFields: meter.group_by.map((key) => formatFieldPath('data', [{ kind: 'member', name: key }])),
    };
    meterPathCache.set(meter, paths);
  }
  return paths;
}

function rejected(p: Problem): EventVerdict {
  return { status: 'rejected', problems: [p] };
}

function requiredString(value: unknown, name: string, max: number, problems: Problem[]): string | undefined {
  if (value === undefined) {
    problems.push(problem(name, 'required', 'is required'));
    return undefined;
  }
  if (typeof value !== 'string') {
    problems.push(problem(name, 'not_string', `must be a string, got ${describe(value)}`));
    return undefined;
  }
  if (value === '') {
    problems.push(problem(name, 'empty', 'must not be empty'));
    return undefined;
  }
  if (value.length > max) {
    problems.push(problem(name, 'too_long', `must be at most ${max} characters, got ${value.length}`));
    return undefined;
  }
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Walks the event: every string and key must be storable text; nesting is bounded. */
function checkShape(value: unknown, path: string, depth: number, problems: Problem[]): void {
  if (problems.length >= 10) return;
  if (typeof value === 'string') {
    if (value.includes('\u0000') || LONE_SURROGATE.test(value))
      problems.push(problem(path, 'invalid_text', 'must not contain NUL characters or unpaired surrogates'));
    return;
  }
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) problems.push(problem(path, 'not_json', 'must be a finite number'));
    else if (typeof value !== 'number' && typeof value !== 'boolean' && value !== null)
      problems.push(problem(path, 'not_json', `must be a JSON value, got ${typeof value}`));
    return;
  }
  if (depth > INGEST_LIMITS.dataDepthMax) {
    problems.push(problem(path, 'too_deep', `must nest at most ${INGEST_LIMITS.dataDepthMax} levels`));
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkShape(item, `${path}[${i}]`, depth + 1, problems));
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    const at = formatFieldPath(path, [{ kind: 'member', name: key }]);
    if (key.includes('\u0000') || LONE_SURROGATE.test(key))
      problems.push(
        problem(path === '' ? JSON.stringify(key) : path, 'invalid_text', 'a key must not contain NUL characters or unpaired surrogates'),
      );
    else checkShape(item, at, depth + 1, problems);
  }
}

function dedupeProblems(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.code}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const describe = (value: unknown): string => describeValue(value);
