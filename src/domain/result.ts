// Expected failures are values: a code, the field path it concerns, and a sentence for a person.
export interface Problem {
  code: string;
  path: string;
  message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; problems: Problem[] };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(...problems: Problem[]): Result<T> => ({ ok: false, problems });
export const problem = (path: string, code: string, message: string): Problem => ({ path, code, message });

/** Formats problems the way every layer prints them: `path: message`. */
export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('\n');
}

/** Thrown only where an expected failure must cross a boundary that cannot return it (e.g. a transaction callback). */
export class ProblemError extends Error {
  constructor(
    readonly problems: Problem[],
    readonly status = 400,
  ) {
    super(formatProblems(problems));
    this.name = 'ProblemError';
  }
}

/** An invariant that must never fail; kept on in production (TigerStyle). */
/** The value of a Result, or its problems thrown as a ProblemError (for callers that answer problems in one place). */
export function valueOf<T>(result: Result<T>): T {
  if (!result.ok) throw new ProblemError(result.problems);
  return result.value;
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`invariant violated: ${message}`);
}

/** A short description of a value for messages: `"NaN"`, `the number 1.5`, `an array`, `null`. */
export function describeValue(value: unknown, stringCharsMax = 60): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > stringCharsMax ? `${value.slice(0, stringCharsMax)}…` : value);
    case 'number':
      return `the number ${value}`;
    case 'boolean':
      return `the boolean ${value}`;
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}
