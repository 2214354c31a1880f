// JSON with exact decimals. ERPs write amounts as JSON numbers (`"Amount": 100.50`); Accrue reads them as their
// literal text and writes them from decimal strings, so no amount ever passes through a JS float.
import { parse } from 'lossless-json';

/** A JSON number written exactly as given: `new DecimalLiteral('1234.50')` serializes as `1234.50`. */
export class DecimalLiteral {
  constructor(readonly text: string) {
    if (!/^-?(0|[1-9]\d*)(\.\d+)?$/.test(text)) throw new Error(`not a plain decimal: ${JSON.stringify(text)}`);
  }
}

export const decimalLiteral = (text: string): DecimalLiteral => new DecimalLiteral(text);

/** JSON.stringify for request bodies holding DecimalLiteral values; other numbers must be safe integers. */
export function stringifyWithDecimals(value: unknown): string {
  if (value instanceof DecimalLiteral) return value.text;
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : stringifyWithDecimals(v))).join(',')}]`;
  if (typeof value === 'number') {
    // A fractional JS number here would be a float amount slipping through: a bug, not an input error.
    if (!Number.isSafeInteger(value)) throw new Error(`a non-integer number ${value} in a request body; amounts are DecimalLiteral`);
    return String(value);
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stringifyWithDecimals(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * JSON.parse with every number read as the string of its literal text (`100.50` -> "100.50"), of any length
 * (lossless-json). A repeated key keeps its last value, as JSON.parse does.
 */
export function parseJsonDecimals(text: string): unknown {
  return parse(text, null, { parseNumber: (literal) => literal, onDuplicateKey: ({ newValue }) => newValue });
}
