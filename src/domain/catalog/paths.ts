// Problem paths in the `plans[0].prices[1].tiers[2].up_to` style, and the "did you mean" hint.
import { describeValue } from '../result.js';

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/** Appends an object key or an array index to a path: `at('plans', 0)` -> `plans[0]`, `at('accounts', 'nw-us')` -> `accounts.nw-us`. */
export function at(base: string, step: string | number): string {
  if (typeof step === 'number') return `${base}[${step}]`;
  const key = PLAIN_KEY.test(step) ? step : `[${JSON.stringify(step)}]`;
  if (key.startsWith('[')) return `${base}${key}`;
  return base === '' ? key : `${base}.${key}`;
}

/** Converts a JSON Pointer (ajv's instancePath, `/plans/0/prices/1`) into a path, walking `data` to tell indexes from keys. */
export function pointerToPath(pointer: string, data: unknown): string {
  if (pointer === '') return '';
  let path = '';
  let node: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node) && /^(0|[1-9]\d*)$/.test(token)) {
      path = at(path, Number(token));
      node = node[Number(token)];
    } else {
      path = at(path, token);
      node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[token] : undefined;
    }
  }
  return path;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** ` (did you mean "x"?)` when one candidate is close to `value`, else the empty string. */
export function suggestion(value: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(value.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const limit = Math.max(1, Math.min(3, Math.floor(value.length / 3)));
  return best !== undefined && bestDistance <= limit ? ` (did you mean ${JSON.stringify(best)}?)` : '';
}

/** A short description of a value for messages: `the number 0.19`, `"abc"`, `an array`. */
export const describe = (value: unknown): string => describeValue(value, 40);
