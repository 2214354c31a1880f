// The one HTTP helper of the ERP connectors and their token endpoints: a request with a timeout, a transport failure
// as one error type (a transient TargetError), an answer's body read once, and Retry-After (RFC 9110 §10.2.3).
import { TargetError } from '../post/target.js';

export interface HttpInit {
  headers?: Record<string, string>;
  body?: string | URLSearchParams;
  timeoutMs: number;
}

/**
 * fetch with a timeout (AbortSignal.timeout). A transport failure (refused, reset, DNS, timeout) throws a transient
 * TargetError naming `label`, the method and the path, with the failure's name as its code (`TimeoutError`, ...).
 */
export async function httpSend(label: string, method: string, url: string, init: HttpInit): Promise<Response> {
  try {
    return await fetch(url, { method, headers: init.headers, body: init.body, signal: AbortSignal.timeout(init.timeoutMs) });
  } catch (error) {
    throw new TargetError(`${label} ${method} ${new URL(url).pathname}: ${(error as Error).message}`, {
      permanent: false,
      code: (error as Error).name,
    });
  }
}

/** An answer with its body read once: the text ('' when it could not be read) and its JSON value, if it is JSON. */
export interface HttpAnswer {
  status: number;
  ok: boolean;
  statusText: string;
  headers: Headers;
  text: string;
  /** JSON.parse of the text; undefined when the body is empty or not JSON. */
  json: unknown;
}

export async function readAnswer(res: Response): Promise<HttpAnswer> {
  const text = await res.text().catch(() => '');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, ok: res.ok, statusText: res.statusText, headers: res.headers, text, json };
}

/** A JSON object answer as a record; {} for anything else (empty, not JSON, an array, null). */
export const jsonRecord = (answer: HttpAnswer): Record<string, unknown> =>
  typeof answer.json === 'object' && answer.json !== null && !Array.isArray(answer.json) ? (answer.json as Record<string, unknown>) : {};

/** Digits of a delay-seconds read at most (317 years); a longer value is out of range and ignored like an invalid one. */
export const RETRY_AFTER_MAX_DIGITS = 10;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const LONG_DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
const MONTH = `(${MONTHS.join('|')})`;
/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE = new RegExp(`^(?:${DAYS.join('|')}), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
/** Obsolete rfc850-date: `Sunday, 06-Nov-94 08:49:37 GMT`. */
const RFC850_DATE = new RegExp(`^(?:${LONG_DAYS.join('|')}), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
/** Obsolete asctime-date: `Sun Nov  6 08:49:37 1994` (UTC, though it does not say so). */
const ASCTIME_DATE = new RegExp(`^(?:${DAYS.join('|')}) ${MONTH} (\\d{2}| \\d) ${TIME} (\\d{4})$`);

/** Milliseconds since the epoch of a valid date and time in UTC; undefined for a day or time that does not exist. */
function utc(year: number, month: string, day: string, hh: string, mm: string, ss: string): number | undefined {
  const m = MONTHS.indexOf(month);
  const [d, h, min, s] = [day, hh, mm, ss].map((v) => Number.parseInt(v.trim(), 10)) as [number, number, number, number];
  if (h > 23 || min > 59 || s > 60 || d < 1) return undefined; // second 60: a leap second
  const date = new Date(0);
  date.setUTCFullYear(year, m, d); // not Date.UTC, which reads years 0-99 as 1900-1999
  if (date.getUTCDate() !== d || date.getUTCMonth() !== m) return undefined; // 31 Apr, 29 Feb of a common year
  return date.setUTCHours(h, min, s, 0);
}

/**
 * An HTTP-date (RFC 9110 §5.6.7) as milliseconds since the epoch: IMF-fixdate, or one of the two obsolete forms, all
 * in GMT (asctime says nothing and is GMT too, never the machine's local time). undefined when it is none of them.
 * An rfc850 two-digit year more than 50 years after `now`'s is the latest past year with those digits (§5.6.7).
 */
export function parseHttpDate(text: string, now = Date.now()): number | undefined {
  let m = IMF_FIXDATE.exec(text);
  if (m) return utc(Number(m[3]), m[2]!, m[1]!, m[4]!, m[5]!, m[6]!);
  m = ASCTIME_DATE.exec(text);
  if (m) return utc(Number(m[6]), m[1]!, m[2]!, m[3]!, m[4]!, m[5]!);
  m = RFC850_DATE.exec(text);
  if (!m) return undefined;
  const thisYear = new Date(now).getUTCFullYear();
  const year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
  return utc(year > thisYear + 50 ? year - 100 : year, m[2]!, m[1]!, m[4]!, m[5]!, m[6]!);
}

/**
 * Retry-After (RFC 9110 §10.2.3: delay-seconds = 1*DIGIT, or an HTTP-date) as milliseconds to wait from `now`:
 * undefined when absent or invalid (an invalid value is ignored), 0 for a date already past, never negative.
 */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (header === null || header === undefined) return undefined;
  // Field values arrive without surrounding whitespace (RFC 9110 §5.5); fetch's Headers already strips it.
  const text = header.replace(/^[ \t]+|[ \t]+$/g, '');
  if (/^\d+$/.test(text)) return text.length > RETRY_AFTER_MAX_DIGITS ? undefined : Number.parseInt(text, 10) * 1000;
  const at = parseHttpDate(text, now);
  return at === undefined ? undefined : Math.max(0, at - now);
}
