// Strict JSON reading: the one way Accrue turns bytes from outside into JSON values. Pure: no I/O.
//
// JSON.parse (and every reader built on it) rewrites what it cannot keep: invalid UTF-8 becomes U+FFFD, a repeated key
// keeps its last value, 1e-400 becomes 0 and 1e309 Infinity, 12345678901234567890123 loses its last digits, and deep
// nesting overflows the stack. This reader refuses each of these instead, naming the field (the path of the member)
// and the byte where it is (docs/ingestion.md, "Reading JSON"):
//
// - the bytes must be UTF-8 (a fatal decoder; the first invalid byte is named);
// - the text must be JSON (RFC 8259), with nothing after the value;
// - no object may repeat a key, at any depth;
// - every number must be carried exactly by a double: its decimal value equals that of the shortest form of the
//   nearest double (String(n)), so reading it through a double loses no digit and nothing is rounded to 0 or
//   Infinity. Exact decimals beyond that are sent as strings (the decimal string is the documented money form);
// - strings and keys hold Unicode text PostgreSQL can store: no NUL, no unpaired surrogate (escaped or raw);
// - containers nest at most JSON_DEPTH_MAX levels (the reader refuses deeper nesting, it does not recurse into it).
//
// Values are plain JS values (objects with own properties only: a `__proto__` key is an ordinary member), so
// canonical JSON (RFC 8785) and content hashes of valid input are what they were under JSON.parse.
import { Buffer, isAscii } from 'node:buffer';
import type { Problem } from './result.js';

/** Nesting of objects and arrays the reader accepts (an event's `data` is bounded further, INGEST_LIMITS.dataDepthMax). */
export const JSON_DEPTH_MAX = 64;
/** Problems reported per body (or per element of a top-level array read element by element). */
export const JSON_PROBLEMS_MAX = 10;

/** A problem with the byte offset (from the start of the input) it concerns. */
export interface JsonProblem extends Problem {
  offset: number;
}

export interface StrictJsonOptions {
  /** Nesting depth allowed (default JSON_DEPTH_MAX). */
  depthMax?: number;
  /**
   * When the value is an array, problems other than syntax inside element i are kept apart, per element, with paths
   * relative to the element, and reading goes on (a batch answers each event on its own).
   */
  perElement?: boolean;
  /** When the value is an array, at most this many elements; beyond, reading stops with code `too_many_elements`. */
  elementsMax?: number;
  /** Refuse `__proto__` keys and `constructor.prototype` (as Fastify's own parser does), for bodies handed to code that may merge members. */
  refuseProtoKeys?: boolean;
  /** How a byte offset is shown in messages (default `byte N`); e.g. `line 3, byte 17` for NDJSON. */
  where?: (offset: number) => string;
}

export type StrictJsonResult =
  | {
      ok: true;
      value: unknown;
      /** perElement only: element index -> its problems (the element is not usable) */ elementProblems: ReadonlyMap<number, JsonProblem[]>;
      /**
       * Every string of the value, member names too, is printable ASCII without `"` or `\`: the bytes were ASCII and
       * held no backslash, so no string holds an escape, and JSON admits no raw control character in a string. Such
       * a string is written as it is in JSON (between quotes) and in COPY's text format.
       */
      plainText?: boolean;
    }
  | { ok: false; problems: JsonProblem[] };

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes UTF-8 or names the first invalid byte; never replaces anything. A BOM is kept (and is not JSON). */
export function decodeUtf8(
  bytes: Uint8Array,
  where: (offset: number) => string = byteAt,
): { ok: true; text: string } | { ok: false; problem: JsonProblem } {
  try {
    return { ok: true, text: fatalUtf8.decode(bytes) };
  } catch {
    const offset = firstInvalidUtf8(bytes);
    const shown = Array.from(bytes.subarray(offset, Math.min(offset + 4, bytes.length)), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return {
      ok: false,
      problem: { path: '', code: 'invalid_utf8', message: `is not UTF-8: invalid byte sequence (${shown}) at ${where(offset)}`, offset },
    };
  }
}

/** The offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629), or bytes.length. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // no overlong forms
      if (b === 0xed) hi = 0x9f; // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f; // nothing beyond U+10FFFF
    } else return i;
    if (i + need >= n) return i; // truncated at the end
    const second = bytes[i + 1]!;
    if (second < lo || second > hi) return i;
    for (let k = 2; k <= need; k += 1) {
      const c = bytes[i + k]!;
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return n;
}

const byteAt = (offset: number): string => `byte ${offset}`;

/** Reads JSON bytes strictly (see the file comment). */
export function parseStrictJsonBytes(bytes: Uint8Array, options: StrictJsonOptions = {}): StrictJsonResult {
  const proven = readProvenPlainElements(bytes, options);
  if (proven !== undefined) return { ok: true, value: proven.elements, elementProblems: new Map(), plainText: proven.plainText };
  const decoded = decodeUtf8(bytes, options.where);
  if (!decoded.ok) return { ok: false, problems: [decoded.problem] };
  return parseStrictJson(decoded.text, options);
}

/** Reads JSON text strictly (see the file comment); offsets in problems are UTF-8 byte offsets into the text. */
export function parseStrictJson(text: string, options: StrictJsonOptions = {}): StrictJsonResult {
  const fast = readProvenPlain(text, options);
  if (fast !== undefined) return { ok: true, value: fast.value, elementProblems: new Map() };
  return parseStrictJsonByReader(text, options);
}

/** The reader alone, without parseStrictJson's shortcut through JSON.parse: what parseStrictJson always answers. */
export function parseStrictJsonByReader(text: string, options: StrictJsonOptions = {}): StrictJsonResult {
  return new Reader(text, options).read();
}

/**
 * The common case, a document this reader would read with no problem, through the engine's own JSON.parse (about a
 * third of the reader's time). JSON.parse alone would rewrite what the rules refuse, so the text is first proven to
 * hold nothing a rule concerns, in one pass: every number literal is exact (as readNumber decides), no string has a
 * \u escape (one could spell NUL or an unpaired surrogate) or a surrogate at all (the reader judges pairs), and the
 * members written (a colon outside strings is one member) are as many as the parsed value holds (so no key was
 * repeated and dropped); the value nests no deeper than allowed. JSON.parse itself refuses everything that is not
 * JSON. Undefined whenever any of this is in doubt: the reader then reads the text and names each problem.
 */
function readProvenPlain(text: string, options: StrictJsonOptions, depth = 0, plainBytes = false): { value: unknown } | undefined {
  if (options.refuseProtoKeys && (text.includes('__proto__') || text.includes('prototype'))) return undefined;
  // Text from bytes that are ASCII without a backslash holds neither (readProvenPlainElements tells it once a body).
  const members = membersWritten(text, plainBytes || (text.indexOf('\\') === -1 && !SURROGATE.test(text)));
  if (members < 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (depth === 0 && options.elementsMax !== undefined && Array.isArray(value) && value.length > options.elementsMax) return undefined;
  return membersOf(value, options.depthMax ?? JSON_DEPTH_MAX, depth) === members ? { value } : undefined;
}

/**
 * readProvenPlain for a top-level array, one element at a time from the bytes: each element is decoded and proven on
 * its own, so no text of the whole body is made. A body of a few hundred kilobytes decoded as one string is one of
 * V8's large objects, placed on pages of their own that are returned to the system after each collection: in the API
 * server that cost about 60 page faults a batch of 1,000 events, more than decoding and parsing it (issue 19). The
 * elements are found by their brackets, commas and strings; undefined when the document is not an array so written
 * (then the whole text is read as before), or when any element is in doubt (not UTF-8, not provably plain). With the
 * elements, whether the bytes vouch for every string (StrictJsonResult.plainText), which spares each element's proof
 * its own search for a backslash and a surrogate.
 */
function readProvenPlainElements(bytes: Uint8Array, options: StrictJsonOptions): { elements: unknown[]; plainText: boolean } | undefined {
  const spans = arrayElementSpans(bytes, options.depthMax ?? JSON_DEPTH_MAX);
  if (spans === undefined) return undefined;
  if (options.elementsMax !== undefined && spans.length / 2 > options.elementsMax) return undefined;
  const elements: unknown[] = new Array(spans.length / 2);
  // ASCII (the common body) is its own text: each element is copied as Latin-1, which no byte of it can be misread as.
  const ascii = isAscii(bytes) ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : undefined;
  const plainText = ascii !== undefined && bytes.indexOf(0x5c) === -1;
  for (let k = 0; k < spans.length; k += 2) {
    let text: string;
    try {
      text = ascii ? ascii.toString('latin1', spans[k]!, spans[k + 1]!) : fatalUtf8.decode(bytes.subarray(spans[k]!, spans[k + 1]!));
    } catch {
      return undefined;
    }
    const proven = readProvenPlain(text, options, 1, plainText);
    if (proven === undefined) return undefined;
    elements[k / 2] = proven.value;
  }
  return { elements, plainText };
}

const isJsonSpace = (b: number | undefined) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/**
 * The byte span of every element of the top-level array the bytes hold, as [start, end, start, end, ...]: elements end
 * at a comma or the closing bracket outside any string and any nested container. Undefined when the bytes are not
 * `[`, elements separated by commas, `]`, with JSON whitespace around them only, or nest deeper than `depthMax`. It
 * proves nothing about an element: each is read and proven on its own.
 */
function arrayElementSpans(bytes: Uint8Array, depthMax: number): number[] | undefined {
  const n = bytes.length;
  let i = 0;
  while (isJsonSpace(bytes[i])) i += 1;
  if (bytes[i] !== 0x5b) return undefined;
  i += 1;
  while (isJsonSpace(bytes[i])) i += 1;
  const spans: number[] = [];
  // No backslash anywhere: every quote opens or closes a string, so a string's end is the next quote.
  const plain = bytes.indexOf(0x5c) === -1;
  if (bytes[i] !== 0x5d) {
    for (;;) {
      const start = i;
      let depth = 1;
      for (; i < n; i += 1) {
        const c = bytes[i]!;
        if (c === 0x22) {
          i = plain ? bytes.indexOf(0x22, i + 1) : quotedEnd(bytes, i + 1);
          if (i < 0) return undefined;
        } else if (c === 0x7b || c === 0x5b) {
          depth += 1;
          if (depth >= depthMax) return undefined;
        } else if (c === 0x7d || c === 0x5d) {
          if (depth === 1) {
            if (c === 0x7d) return undefined; // a brace closing the array
            break;
          }
          depth -= 1;
        } else if (c === 0x2c && depth === 1) break;
      }
      if (i >= n) return undefined;
      spans.push(start, i);
      if (bytes[i] === 0x5d) break;
      i += 1; // the comma
    }
  }
  i += 1; // the closing bracket
  while (isJsonSpace(bytes[i])) i += 1;
  return i === n ? spans : undefined;
}

/** The index of the byte `"` closing a string whose content starts at `from`, a backslash escaping the byte after it; -1 when none. */
function quotedEnd(bytes: Uint8Array, from: number): number {
  for (let i = from; i < bytes.length; i += 1) {
    const b = bytes[i]!;
    if (b === 0x22) return i;
    if (b === 0x5c) i += 1;
  }
  return -1;
}

/**
 * The members written in the text (a colon outside strings is one), or -1 when a number literal is not exact, a string
 * holds a \u escape or a surrogate (the reader judges them), or a string is not closed (JSON.parse refuses it anyway).
 * Strings are skipped: in a `plain` text (no backslash, no surrogate: the common case) every `"` opens or closes one,
 * so the engine's indexOf finds its end; otherwise it is read a character at a time.
 */
function membersWritten(text: string, plain: boolean): number {
  let members = 0;
  for (let i = 0; i < text.length;) {
    const open = text.indexOf('"', i);
    const between = structuralMembers(text, i, open === -1 ? text.length : open);
    if (between < 0) return -1;
    members += between;
    if (open === -1) break;
    const close = plain ? text.indexOf('"', open + 1) : escapedStringEnd(text, open + 1);
    if (close < 0) return -1;
    i = close + 1;
  }
  return members;
}

/** The colons in text[from, to), outside any string; -1 when a number literal there is not exact. */
function structuralMembers(text: string, from: number, to: number): number {
  let members = 0;
  for (let j = from; j < to; j += 1) {
    const c = text.charCodeAt(j);
    if (c === 0x3a) members += 1;
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const end = numberEnd(text, j, to);
      if (!exactNumberLiteral(text.slice(j, end))) return -1;
      j = end - 1;
    }
  }
  return members;
}

/** The index of the `"` closing a string whose content starts at `from`; -1 at a \u escape, a surrogate or no end. */
function escapedStringEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i += 1) {
    const d = text.charCodeAt(i);
    if (d === 0x22) return i;
    if (d === 0x5c) {
      if (text.charCodeAt(i + 1) === 0x75) return -1;
      i += 1;
    } else if (d >= 0xd800 && d <= 0xdfff) return -1;
  }
  return -1;
}

/** Where the number literal starting at `start` ends (its characters: digits, `.`, `e`, `E`, `+`, `-`), at most `limit`. */
function numberEnd(text: string, start: number, limit: number): number {
  let end = start + 1;
  for (; end < limit; end += 1) {
    const d = text.charCodeAt(end);
    if (!((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d)) break;
  }
  return end;
}

/** How many members the objects in a parsed value hold, or -1 when it nests deeper than `depthMax`. */
function membersOf(value: unknown, depthMax: number, depth: number): number {
  if (typeof value !== 'object' || value === null) return 0;
  if (depth >= depthMax - 1) return -1; // one level short of the reader's limit: the reader decides at the limit
  let count = 0;
  if (Array.isArray(value)) {
    for (const item of value) {
      const inner = membersOf(item, depthMax, depth + 1);
      if (inner < 0) return -1;
      count += inner;
    }
    return count;
  }
  for (const key in value) {
    const inner = membersOf((value as Record<string, unknown>)[key], depthMax, depth + 1);
    if (inner < 0) return -1;
    count += inner + 1;
  }
  return count;
}

/** Whether a JSON number literal is finite and carried exactly by a double (readNumber's rule, without its notes). */
function exactNumberLiteral(literal: string): boolean {
  const value = Number(literal);
  if (!Number.isFinite(value)) return false;
  if (SHORT_PLAIN_NUMBER.test(literal) && literal.replace(/[-.]/g, '').replace(/^0+/, '').length <= 15) return true;
  return NUMBER_LITERAL.test(literal) && sameDecimal(literal, String(value));
}

/** Thrown inside the reader for what makes the rest of the text unreadable (syntax, too many elements). */
class Stop extends Error {}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SUSPECT_TEXT = /[\u0000\uD800-\uDFFF]/;
const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// A number with no exponent and at most 15 significant digits is always carried exactly by a double (DBL_DIG).
const SHORT_PLAIN_NUMBER = /^-?\d{1,16}(?:\.\d{1,15})?$/;
const NUMBER_LITERAL = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

interface Pending {
  problem: JsonProblem;
  at: number; // character index, turned into a byte offset at the end
  detail: string;
}

class Reader {
  private i = 0;
  private readonly depthMax: number;
  private readonly path: Array<string | number> = [];
  private element = -1; // index of the top-level element being read (perElement), else -1
  private readonly pending: Pending[] = [];
  private readonly problems: JsonProblem[] = [];
  private readonly elementProblems = new Map<number, JsonProblem[]>();

  constructor(
    private readonly text: string,
    private readonly options: StrictJsonOptions,
  ) {
    this.depthMax = options.depthMax ?? JSON_DEPTH_MAX;
  }

  read(): StrictJsonResult {
    let value: unknown;
    try {
      this.skipWhitespace();
      if (this.i >= this.text.length) this.syntax('is empty: expected a JSON value');
      const top = this.text.charCodeAt(this.i);
      if (top === 0x5b /* [ */ && (this.options.perElement || this.options.elementsMax !== undefined)) value = this.readTopArray();
      else value = this.readValue(0);
      this.skipWhitespace();
      if (this.i < this.text.length) this.syntax(`has ${this.describeHere()} after the JSON value`);
    } catch (error) {
      if (!(error instanceof Stop)) throw error;
    }
    this.finishOffsets();
    if (this.problems.length > 0) return { ok: false, problems: this.problems };
    return { ok: true, value, elementProblems: this.elementProblems };
  }

  // ---------- problems ----------

  private note(code: string, detail: string, at: number, pathOverride?: string): void {
    const inElement = this.options.perElement === true && this.element >= 0;
    const list = inElement ? (this.elementProblems.get(this.element) ?? []) : this.problems;
    if (inElement && !this.elementProblems.has(this.element)) this.elementProblems.set(this.element, list);
    if (list.length >= JSON_PROBLEMS_MAX) return;
    const problem: JsonProblem = { path: pathOverride ?? this.formatPath(inElement ? 1 : 0), code, message: detail, offset: at };
    list.push(problem);
    this.pending.push({ problem, at, detail });
  }

  private syntax(detail: string): never {
    // Syntax makes the whole text unreadable: whatever was kept per element no longer matters.
    this.element = -1;
    this.note('malformed_json', `is not JSON: ${detail}`, this.i, '');
    throw new Stop();
  }

  private finishOffsets(): void {
    if (this.pending.length === 0) return;
    const where = this.options.where ?? byteAt;
    // Character indexes to UTF-8 byte offsets in one walk (problems are few; the text may be large).
    const order = [...this.pending].sort((a, b) => a.at - b.at);
    let char = 0;
    let byte = 0;
    for (const p of order) {
      const target = Math.min(p.at, this.text.length);
      for (; char < target; char += 1) {
        const c = this.text.charCodeAt(char);
        if (c < 0x80) byte += 1;
        else if (c < 0x800) byte += 2;
        else if (c >= 0xd800 && c <= 0xdbff && char + 1 < this.text.length && (this.text.charCodeAt(char + 1) & 0xfc00) === 0xdc00) {
          byte += 4;
          char += 1;
        } else byte += 3;
      }
      p.problem.offset = byte;
      p.problem.message = `${p.detail} (${where(byte)})`;
    }
  }

  private formatPath(from: number): string {
    let out = '';
    for (let k = from; k < this.path.length; k += 1) {
      const step = this.path[k]!;
      if (typeof step === 'number') out += `[${step}]`;
      else if (IDENTIFIER.test(step)) out += `${out === '' ? '' : '.'}${step}`;
      else out += `[${JSON.stringify(step)}]`;
    }
    return out;
  }

  private describeHere(): string {
    const c = this.text.codePointAt(this.i);
    if (c === undefined) return 'the end of the text';
    return c >= 0x20 && c < 0x7f ? `"${String.fromCodePoint(c)}"` : `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
  }

  // ---------- values ----------

  private skipWhitespace(): void {
    const t = this.text;
    let i = this.i;
    for (;;) {
      const c = t.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i += 1;
      else break;
    }
    this.i = i;
  }

  private readTopArray(): unknown[] {
    const out: unknown[] = [];
    const max = this.options.elementsMax;
    this.i += 1;
    this.skipWhitespace();
    if (this.text.charCodeAt(this.i) === 0x5d) {
      this.i += 1;
      return out;
    }
    for (let index = 0; ; index += 1) {
      if (max !== undefined && index >= max) {
        this.element = -1;
        this.note('too_many_elements', `holds more than ${max} elements`, this.i, '');
        throw new Stop();
      }
      this.element = this.options.perElement ? index : -1;
      this.path.push(index);
      out.push(this.readValue(1));
      this.path.pop();
      this.element = -1;
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i += 1;
        this.skipWhitespace();
        continue;
      }
      if (c === 0x5d) {
        this.i += 1;
        return out;
      }
      this.syntax(`expected "," or "]" in the array, got ${this.describeHere()}`);
    }
  }

  private readValue(depth: number): unknown {
    this.skipWhitespace();
    const t = this.text;
    const c = t.charCodeAt(this.i);
    switch (c) {
      case 0x7b: // {
        return depth >= this.depthMax ? this.tooDeep() : this.readObject(depth + 1);
      case 0x5b: // [
        return depth >= this.depthMax ? this.tooDeep() : this.readArray(depth + 1);
      case 0x22: // "
        return this.readString();
      case 0x74: // t
        return this.literal('true', true);
      case 0x66: // f
        return this.literal('false', false);
      case 0x6e: // n
        return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.readNumber();
        return this.syntax(this.i >= t.length ? 'unexpected end of the text' : `unexpected ${this.describeHere()}`);
    }
  }

  private literal<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.i)) this.syntax(`unexpected ${this.describeHere()}`);
    this.i += word.length;
    return value;
  }

  private tooDeep(): null {
    this.note('too_deep', `nests deeper than ${this.depthMax} levels`, this.i);
    this.skipContainer();
    return null;
  }

  /** Skips a container without recursion (strings respected); syntax inside it is not diagnosed beyond balance. */
  private skipContainer(): void {
    const t = this.text;
    let depth = 0;
    let i = this.i;
    while (i < t.length) {
      const c = t.charCodeAt(i);
      if (c === 0x22) {
        i += 1;
        while (i < t.length && t.charCodeAt(i) !== 0x22) i += t.charCodeAt(i) === 0x5c ? 2 : 1;
      } else if (c === 0x7b || c === 0x5b) depth += 1;
      else if (c === 0x7d || c === 0x5d) {
        depth -= 1;
        if (depth === 0) {
          this.i = i + 1;
          return;
        }
      }
      i += 1;
    }
    this.i = t.length;
    this.syntax('unexpected end of the text inside an array or object');
  }

  private readObject(depth: number): Record<string, unknown> {
    const t = this.text;
    const out: Record<string, unknown> = {};
    this.i += 1;
    this.skipWhitespace();
    if (t.charCodeAt(this.i) === 0x7d) {
      this.i += 1;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      if (t.charCodeAt(this.i) !== 0x22) this.syntax(`expected a key (a string) in the object, got ${this.describeHere()}`);
      const keyAt = this.i;
      const key = this.readString(true);
      this.skipWhitespace();
      if (t.charCodeAt(this.i) !== 0x3a) this.syntax(`expected ":" after the key, got ${this.describeHere()}`);
      this.i += 1;
      this.path.push(key);
      const repeated = Object.hasOwn(out, key);
      if (repeated) this.note('duplicate_key', `repeats the key ${JSON.stringify(key)} of its object; a key appears once`, keyAt);
      else if (key === '__proto__' && this.options.refuseProtoKeys)
        this.note('forbidden_key', 'the key "__proto__" is not accepted', keyAt);
      const value = this.readValue(depth);
      if (
        key === 'constructor' &&
        this.options.refuseProtoKeys &&
        value !== null &&
        typeof value === 'object' &&
        Object.hasOwn(value, 'prototype')
      ) {
        this.note('forbidden_key', 'a "constructor" member holding "prototype" is not accepted', keyAt);
      }
      this.path.pop();
      if (!repeated) {
        if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
        else out[key] = value;
      }
      this.skipWhitespace();
      const c = t.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i += 1;
        continue;
      }
      if (c === 0x7d) {
        this.i += 1;
        return out;
      }
      this.syntax(`expected "," or "}" in the object, got ${this.describeHere()}`);
    }
  }

  private readArray(depth: number): unknown[] {
    const t = this.text;
    const out: unknown[] = [];
    this.i += 1;
    this.skipWhitespace();
    if (t.charCodeAt(this.i) === 0x5d) {
      this.i += 1;
      return out;
    }
    for (let index = 0; ; index += 1) {
      this.path.push(index);
      out.push(this.readValue(depth));
      this.path.pop();
      this.skipWhitespace();
      const c = t.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i += 1;
        continue;
      }
      if (c === 0x5d) {
        this.i += 1;
        return out;
      }
      this.syntax(`expected "," or "]" in the array, got ${this.describeHere()}`);
    }
  }

  private readString(isKey = false): string {
    const t = this.text;
    const start = this.i;
    let i = start + 1;
    let out = '';
    let chunk = i;
    for (;;) {
      if (i >= t.length) {
        this.i = i;
        this.syntax('unexpected end of the text inside a string');
      }
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) {
        this.i = i;
        this.syntax(`a control character (U+${c.toString(16).toUpperCase().padStart(4, '0')}) must be escaped inside a string`);
      }
      if (c !== 0x5c) {
        i += 1;
        continue;
      }
      out += t.slice(chunk, i) + this.readEscape(i);
      i += t.charCodeAt(i + 1) === 0x75 ? 6 : 2;
      chunk = i;
    }
    out += t.slice(chunk, i);
    this.i = i + 1;
    if (SUSPECT_TEXT.test(out) && (out.includes('\u0000') || LONE_SURROGATE.test(out))) this.noteInvalidText(out, start, isKey);
    return out;
  }

  /** The text of the escape whose backslash is at `i` (two characters, or six for \uXXXX). */
  private readEscape(i: number): string {
    const t = this.text;
    const e = t.charCodeAt(i + 1);
    switch (e) {
      case 0x22:
        return '"';
      case 0x5c:
        return '\\';
      case 0x2f:
        return '/';
      case 0x62:
        return '\b';
      case 0x66:
        return '\f';
      case 0x6e:
        return '\n';
      case 0x72:
        return '\r';
      case 0x74:
        return '\t';
      case 0x75: {
        const hex = t.slice(i + 2, i + 6);
        if (!/^[0-9A-Fa-f]{4}$/.test(hex)) {
          this.i = i;
          this.syntax('a \\u escape needs four hex digits');
        }
        return String.fromCharCode(parseInt(hex, 16));
      }
      default:
        this.i = i;
        return this.syntax(`unknown escape \\${Number.isNaN(e) ? '' : String.fromCharCode(e)} in a string`);
    }
  }

  /** Notes a string holding NUL or an unpaired surrogate; a key's problem is named by the key's own path. */
  private noteInvalidText(out: string, start: number, isKey: boolean): void {
    // The member is not read yet, so say which key.
    if (isKey)
      this.note(
        'invalid_text',
        `the key ${JSON.stringify(out)} must not contain NUL characters or unpaired surrogates`,
        start,
        this.formatPath(this.options.perElement && this.element >= 0 ? 1 : 0) || JSON.stringify(out),
      );
    else this.note('invalid_text', 'must not contain NUL characters or unpaired surrogates', start);
  }

  private readNumber(): number {
    const t = this.text;
    const start = this.i;
    NUMBER.lastIndex = start;
    const match = NUMBER.exec(t);
    if (!match) return this.syntax(`unexpected ${this.describeHere()}`);
    const literal = match[0];
    this.i = start + literal.length;
    const next = t.charCodeAt(this.i);
    if ((next >= 0x30 && next <= 0x39) || next === 0x2e || next === 0x65 || next === 0x45)
      this.syntax(`a malformed number ${JSON.stringify(t.slice(start, this.i + 1))}`);
    const value = Number(literal);
    if (!Number.isFinite(value)) {
      this.note(
        'number_out_of_range',
        `the number ${abbreviate(literal)} is beyond the largest JSON number Accrue reads (about 1.8e308); send an exact decimal as a string`,
        start,
      );
      return 0;
    }
    if (!SHORT_PLAIN_NUMBER.test(literal) || literal.replace(/[-.]/g, '').replace(/^0+/, '').length > 15) {
      if (!sameDecimal(literal, String(value))) {
        this.note(
          'inexact_number',
          `the number ${abbreviate(literal)} cannot be read exactly (it would become ${String(value)}); send an exact decimal as a string`,
          start,
        );
      }
    }
    return value;
  }
}

function abbreviate(literal: string): string {
  return literal.length <= 48 ? literal : `${literal.slice(0, 24)}…${literal.slice(-12)} (${literal.length} characters)`;
}

/** Whether two JSON/JS number texts have the same decimal value (0 and -0 count as equal). */
export function sameDecimal(a: string, b: string): boolean {
  const x = decimalParts(a);
  const y = decimalParts(b);
  if (x.digits === '' && y.digits === '') return true;
  return x.negative === y.negative && x.digits === y.digits && x.exponent === y.exponent;
}

/** value = (negative ? -1 : 1) * 0.digits * 10^exponent, digits without leading or trailing zeros ('' for zero). */
function decimalParts(text: string): { negative: boolean; digits: string; exponent: number } {
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) throw new Error(`not a number text: ${text}`);
  const intPart = m[2] ?? '';
  const fracPart = m[3] ?? '';
  // A literal exponent beyond what fits a safe integer cannot come with a finite double that is not 0 or Infinity.
  const exp = m[4] === undefined ? 0 : Number(m[4]);
  let digits = intPart + fracPart;
  let exponent = exp + intPart.length;
  const lead = /^0*/.exec(digits)![0].length;
  digits = digits.slice(lead);
  exponent -= lead;
  digits = digits.replace(/0+$/, '');
  return { negative: m[1] === '-', digits, exponent: digits === '' ? 0 : exponent };
}
