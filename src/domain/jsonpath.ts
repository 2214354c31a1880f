// The JSONPath subset a meter's `value` may use: `$` followed by member and index steps only.
//   $.gb_hours    $.usage.bytes    $.usage['bytes-out']    $.samples[0]    $["a b"]
// No wildcards, filters, slices, recursive descent or negative indexes: a meter reads one field.
// The same parsed steps evaluate in JS (ingestion) and translate to PostgreSQL SQL/JSON path text (the DB layer).
// A library (jsonpath-plus, jsonpath) would bring the full language and its evaluator for a five-rule grammar, and
// none of them emits Postgres jsonpath; this file keeps the grammar closed and both evaluations in step.
import { fail, ok, problem, type Result } from './result.js';

export type JsonPathStep = { kind: 'member'; name: string } | { kind: 'index'; index: number };

/** Limits: a longer path, more steps or a bigger index is refused by the parser. */
export const JSONPATH_LENGTH_MAX = 256;
export const JSONPATH_STEPS_MAX = 16;
export const JSONPATH_INDEX_MAX = 2 ** 31 - 1;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*/;
const SIMPLE_ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** Parses the subset; problems name `path` (the catalog field holding the JSONPath, e.g. `meters[1].value`). */
export function parseJsonPath(text: unknown, path = 'value'): Result<JsonPathStep[]> {
  const bad = (message: string) => fail<JsonPathStep[]>(problem(path, 'invalid_jsonpath', message));
  if (typeof text !== 'string') return bad('must be a JSONPath string such as "$.gb_hours"');
  if (text.length > JSONPATH_LENGTH_MAX) return bad(`must be at most ${JSONPATH_LENGTH_MAX} characters`);
  if (!text.startsWith('$')) return bad(`must start with "$", got ${JSON.stringify(text)}`);
  const steps: JsonPathStep[] = [];
  let at = 1;
  while (at < text.length) {
    if (steps.length >= JSONPATH_STEPS_MAX) return bad(`must have at most ${JSONPATH_STEPS_MAX} steps`);
    const ch = text[at];
    if (ch === '.') {
      const match = IDENTIFIER.exec(text.slice(at + 1));
      if (!match) return bad(`expected a field name after "." at character ${at + 1}; quote other names as ['name']`);
      steps.push({ kind: 'member', name: match[0] });
      at += 1 + match[0].length;
    } else if (ch === '[') {
      const quote = text[at + 1];
      if (quote === "'" || quote === '"') {
        let name = '';
        let i = at + 2;
        for (;;) {
          if (i >= text.length) return bad(`unterminated string starting at character ${at + 2}`);
          const c = text[i]!;
          if (c === quote) break;
          if (c === '\\') {
            const e = text[i + 1];
            if (e !== undefined && e in SIMPLE_ESCAPES) {
              name += SIMPLE_ESCAPES[e];
              i += 2;
            } else if (e === 'u' && /^[0-9A-Fa-f]{4}$/.test(text.slice(i + 2, i + 6))) {
              name += String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 6), 16));
              i += 6;
            } else return bad(`invalid escape at character ${i + 1}`);
            continue;
          }
          if (c < ' ') return bad(`control character in a name at character ${i + 1}`);
          name += c;
          i += 1;
        }
        if (text[i + 1] !== ']') return bad(`expected "]" at character ${i + 2}`);
        if (LONE_SURROGATE.test(name) || name.includes('\u0000')) return bad('a name must be well-formed text without NUL');
        steps.push({ kind: 'member', name });
        at = i + 2;
      } else {
        const match = /^\[(0|[1-9]\d*)\]/.exec(text.slice(at));
        if (!match) return bad(`expected ['name'] or [index] at character ${at + 1}`);
        const index = Number(match[1]);
        if (index > JSONPATH_INDEX_MAX) return bad(`an index must be at most ${JSONPATH_INDEX_MAX}`);
        steps.push({ kind: 'index', index });
        at += match[0].length;
      }
    } else {
      return bad(`unexpected ${JSON.stringify(ch)} at character ${at + 1}; the subset allows .name, ['name'] and [index]`);
    }
  }
  if (steps.length === 0) return bad('must select a field of data, such as "$.gb_hours"');
  return ok(steps);
}

const cache = new Map<string, JsonPathStep[]>();
const CACHE_MAX = 1024;

/** Parses a path known to be valid (the catalog checked it); throws on an invalid one. Cached. */
export function compileJsonPath(text: string): JsonPathStep[] {
  const cached = cache.get(text);
  if (cached) return cached;
  const parsed = parseJsonPath(text);
  if (!parsed.ok) throw new Error(`invalid JSONPath ${JSON.stringify(text)}: ${parsed.problems[0]?.message}`);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(text, parsed.value);
  return parsed.value;
}

export type JsonPathMatch = { found: true; value: unknown } | { found: false };

/**
 * Evaluates on a JSON value: members of plain objects (own properties only, so `$.constructor` finds nothing)
 * and indexes of arrays. A step that does not apply (a member of an array, an index of an object) finds nothing,
 * as in Postgres `strict` mode. A JSON `null` is found (value null).
 */
export function evaluateJsonPath(document: unknown, path: string | readonly JsonPathStep[]): JsonPathMatch {
  const steps = typeof path === 'string' ? compileJsonPath(path) : path;
  let current: unknown = document;
  for (const step of steps) {
    if (step.kind === 'member') {
      if (current === null || typeof current !== 'object' || Array.isArray(current) || !Object.hasOwn(current, step.name))
        return { found: false };
      current = (current as Record<string, unknown>)[step.name];
    } else {
      if (!Array.isArray(current) || step.index >= current.length) return { found: false };
      current = current[step.index];
    }
    if (current === undefined) return { found: false };
  }
  return { found: true, value: current };
}

/** A field path for problems: `data.gb_hours`, `data.usage["bytes-out"]`, `data.samples[0]`. */
export function formatFieldPath(prefix: string, path: string | readonly JsonPathStep[]): string {
  const steps = typeof path === 'string' ? compileJsonPath(path) : path;
  let out = prefix;
  for (const step of steps) {
    if (step.kind === 'index') out += `[${step.index}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(step.name)) out += `${out === '' ? '' : '.'}${step.name}`;
    else out += `[${JSON.stringify(step.name)}]`;
  }
  return out;
}

/**
 * The same path as PostgreSQL SQL/JSON path text: every member quoted (`$."gb_hours"`, `$."usage"."bytes-out"`),
 * indexes as `[0]`. `strict` (the default) makes Postgres agree with `evaluateJsonPath` on arrays and objects
 * (lax mode unwraps arrays and wraps scalars); in strict mode a missing member is an error, so call it as
 * `jsonb_path_query_first(data, $1::jsonpath, '{}', true)` (silent) and pass the text as a bind parameter.
 */
export function toPostgresJsonPath(path: string | readonly JsonPathStep[], mode: 'strict' | 'lax' = 'strict'): string {
  const steps = typeof path === 'string' ? compileJsonPath(path) : path;
  let out = `${mode} $`;
  for (const step of steps) out += step.kind === 'index' ? `[${step.index}]` : `.${postgresString(step.name)}`;
  return out;
}

function postgresString(name: string): string {
  let out = '"';
  for (const c of name) {
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (c < ' ' || c === '\u007f') out += `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    else out += c;
  }
  return `${out}"`;
}
