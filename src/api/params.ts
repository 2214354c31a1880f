// The one place every kind of request value is defined: each route's params, querystring and body schemas are built
// from these, so Fastify's validator refuses (400, the field named) anything the database could not hold or would
// silently rewrite, before a handler runs. Limits are JSON Schema keywords (maxLength, pattern, format), so the
// OpenAPI document states them to clients exactly as the server enforces them (docs/api.md, "Limits"). They are
// TypeBox schemas, so a route's request types are inferred from the same definitions.
import { Type, type Static, type TObject } from 'typebox';

/** Limits (docs/api.md): characters of an identifier (ids, numbers, names, filters) and of free text (notes, reasons, searches). */
export const PARAM_LIMITS = Object.freeze({
  idLengthMax: 256,
  textLengthMax: 2000,
  /** Years a period, a date or a timestamp may name. The last year is 9998 so that every period's and day's exclusive end is still a four-digit year. */
  yearMin: 1970,
  yearMax: 9998,
  /** Postgres bigint (int8): the largest sequence number or outbox id. */
  int8Max: 9_223_372_036_854_775_807n,
  /** Digits of a money amount in major units: whole part and fraction. 15 + 3 digits of minor units stay below 2^63. */
  amountWholeDigitsMax: 15,
  amountFractionDigitsMax: 3,
});

/**
 * A regular expression source matching exactly the decimal integers from `min` (0 or 1) to `max`, without leading zeros
 * or sign: ranges as a pattern a client can read and any JSON Schema validator enforces, with no number ever parsed.
 */
export function integerRangePattern(min: 0n | 1n, max: bigint): string {
  if (max < min) throw new Error(`empty range ${min}..${max}`);
  const digits = max.toString();
  const alternatives: string[] = [];
  if (min === 0n) alternatives.push('0');
  // Every number with fewer digits than max.
  if (digits.length === 2) alternatives.push('[1-9]');
  else if (digits.length > 2) alternatives.push(`[1-9][0-9]{0,${digits.length - 2}}`);
  // Numbers with as many digits as max: a prefix of max, one digit below max's digit there, then any digits.
  for (let i = 0; i < digits.length; i += 1) {
    const low = i === 0 ? 1 : 0;
    const high = Number(digits[i]) - 1;
    if (high < low) continue;
    const rest = digits.length - i - 1;
    alternatives.push(
      `${digits.slice(0, i)}${low === high ? String(low) : `[${low}-${high}]`}${rest === 0 ? '' : rest === 1 ? '[0-9]' : `[0-9]{${rest}}`}`,
    );
  }
  alternatives.push(digits);
  return `^(?:${alternatives.join('|')})$`;
}

// 1970 to 9998, four digits.
const YEAR = '(?:19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])';
const MONTH = '(?:0[1-9]|1[0-2])';
const DAY = '(?:0[1-9]|[12][0-9]|3[01])';
const YEAR_RANGE = `years ${PARAM_LIMITS.yearMin} to ${PARAM_LIMITS.yearMax}`;

// No control characters (C0, DEL) and no lone UTF-16 surrogates: Postgres text cannot hold NUL, and a lone surrogate
// would be stored as U+FFFD, a silent rewrite. Patterns are Unicode regular expressions (the `u` flag, as JSON Schema
// validators apply them), so a character outside the BMP is one code point and passes.
const IDENTIFIER_CHARS = '[^\\u0000-\\u001f\\u007f\\ud800-\\udfff]';
// Free text may hold line breaks and tabs, never NUL or a lone surrogate.
const TEXT_CHARS = '[^\\u0000\\ud800-\\udfff]';

const described = (description?: string) => (description ? { description } : {});

/** An identifier, a number, a name or a filter value: 1 to 256 characters, no control characters. */
export const idString = (description?: string, options: { maxLength?: number } = {}) =>
  Type.String({
    minLength: 1,
    maxLength: options.maxLength ?? PARAM_LIMITS.idLengthMax,
    pattern: `^${IDENTIFIER_CHARS}+$`,
    ...described(description),
  });

/** Free text (a note, a reason, a search): at most 2000 characters, line breaks allowed, never NUL. */
export const textString = (description?: string, options: { minLength?: number; maxLength?: number } = {}) =>
  Type.String({
    minLength: options.minLength ?? 0,
    maxLength: options.maxLength ?? PARAM_LIMITS.textLengthMax,
    pattern: `^${TEXT_CHARS}*$`,
    ...described(description),
  });

/** A billing period: a calendar month YYYY-MM. */
export const periodString = (description = `a calendar month YYYY-MM, ${YEAR_RANGE}`) =>
  Type.String({ pattern: `^${YEAR}-${MONTH}$`, description });

/** A calendar date YYYY-MM-DD that exists (no 2026-02-30). */
export const dateString = (description = `a calendar date YYYY-MM-DD, ${YEAR_RANGE}`) =>
  Type.String({ format: 'date', pattern: `^${YEAR}-${MONTH}-${DAY}$`, description });

/** An RFC 3339 timestamp with seconds and an offset, at a date that exists. */
export const timestampString = (description = `an RFC 3339 timestamp with an offset, ${YEAR_RANGE}`) =>
  Type.String({
    format: 'date-time',
    pattern: `^${YEAR}-${MONTH}-${DAY}T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-][0-2][0-9]:[0-5][0-9])$`,
    description,
  });

/** A date (UTC midnight) or an RFC 3339 timestamp. */
export const dateOrTimestamp = (description: string) => Type.Union([dateString(), timestampString()], { description });

/** A whole number from `min` to `max` as a decimal string (query and path values arrive as text; the validator does not coerce). */
export const integerString = (min: 0n | 1n, max: bigint, description?: string) =>
  Type.String({ maxLength: max.toString().length, pattern: integerRangePattern(min, max), ...described(description) });

/** A Postgres bigint sequence number or id (0 or 1 up to 2^63 - 1), as a decimal string. */
export const int8String = (min: 0n | 1n, description?: string) => integerString(min, PARAM_LIMITS.int8Max, description);

/** A positive money amount in major units as an exact decimal string ("1234.50"); its minor units fit a bigint. */
export const amountString = (description = 'major units, an exact decimal string such as "1234.50"') =>
  Type.String({
    maxLength: PARAM_LIMITS.amountWholeDigitsMax + 1 + PARAM_LIMITS.amountFractionDigitsMax,
    pattern: `^(?:0|[1-9][0-9]{0,${PARAM_LIMITS.amountWholeDigitsMax - 1}})(?:\\.[0-9]{1,${PARAM_LIMITS.amountFractionDigitsMax}})?$`,
    description,
  });

/** An ISO 4217 currency code. */
export const currencyString = () => Type.String({ pattern: '^[A-Z]{3}$', description: 'an ISO 4217 currency code' });

/** A string from a fixed list, written as `{ type: 'string', enum }` (TypeBox's own enum leaves out the type). */
export const stringEnum = <const T extends readonly string[]>(values: T, options: { description?: string } = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

/** A string or null, written as `{ type: ['string', 'null'] }` as the document has always said it. */
export const nullableString = (options: Record<string, unknown> = {}) =>
  Type.Unsafe<string | null>({ type: ['string', 'null'], ...options });

// ---------- free-form bodies ----------

/** A character Postgres text and jsonb cannot hold (NUL), or a lone UTF-16 surrogate (stored as U+FFFD: a silent rewrite). */
const UNSTORABLE = /[\u0000\ud800-\udfff]/u;
const UNSTORABLE_PROBLEMS_MAX = 20;

/**
 * For a body whose shape its own validator checks (a catalog): every string and key, at any depth, that the database
 * could not store as sent, by path (`customers[0].name`), at most 20. Applied before anything is written.
 */
export function unstorableText(value: unknown): Array<{ path: string; code: string; message: string }> {
  const problems: Array<{ path: string; code: string; message: string }> = [];
  const message = 'must not contain NUL (U+0000) or a lone UTF-16 surrogate';
  const visit = (node: unknown, path: string) => {
    if (problems.length >= UNSTORABLE_PROBLEMS_MAX) return;
    if (typeof node === 'string') {
      if (UNSTORABLE.test(node)) problems.push({ path, code: 'invalid_characters', message });
    } else if (Array.isArray(node)) {
      node.forEach((item, i) => visit(item, `${path}[${i}]`));
    } else if (typeof node === 'object' && node !== null) {
      for (const [key, item] of Object.entries(node)) {
        const at = path === '' ? key : `${path}.${key}`;
        if (UNSTORABLE.test(key)) problems.push({ path: at, code: 'invalid_characters', message: `the key ${message}` });
        visit(item, at);
      }
    }
  };
  visit(value, '');
  return problems;
}

/** An object or null, written as `{ type: ['object', 'null'], ... }` as the document has always said it. */
export const nullableObject = <T extends TObject>(schema: T) => Type.Unsafe<Static<T> | null>({ ...schema, type: ['object', 'null'] });
