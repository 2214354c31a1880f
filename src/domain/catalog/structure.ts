// Step 1 of loading a catalog: the JSON Schema (schema/catalog.schema.json), with ajv's errors turned into
// `path: sentence` problems. What a schema cannot say is left to semantics.ts.
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import schema from '../../../schema/catalog.schema.json' with { type: 'json' };
import { problem, type Problem } from '../result.js';
import { at, describe, pointerToPath, suggestion } from './paths.js';

const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
// Annotation keyword: the sentence printed when a keyword of that schema fails (see the schema's description).
ajv.addKeyword({ keyword: 'x-messages', schemaType: 'object' });
const validate = ajv.compile(schema);

type SchemaNode = { properties?: Record<string, unknown>; 'x-messages'?: Record<string, string> };

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'a boolean',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

function translate(error: ErrorObject, data: unknown): Problem | undefined {
  const path = pointerToPath(error.instancePath, data);
  const parent = (error.parentSchema ?? {}) as SchemaNode;
  const custom = parent['x-messages']?.[error.keyword];
  const value: unknown = error.data;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'type': {
      if (custom) return problem(path, custom.startsWith('must be a decimal') ? 'not_decimal_string' : 'invalid_type', custom);
      const types = ([] as string[]).concat(params.type as string | string[]);
      return problem(path, 'invalid_type', `must be ${types.map((t) => TYPE_NAMES[t] ?? t).join(' or ')}, got ${describe(value)}`);
    }
    case 'required':
      return problem(at(path, String(params.missingProperty)), 'required', 'is required');
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      return problem(at(path, key), 'unknown_field', `is not a known field${suggestion(key, Object.keys(parent.properties ?? {}))}`);
    }
    case 'enum': {
      const allowed = params.allowedValues as unknown[];
      const hint = typeof value === 'string' ? suggestion(value, allowed.map(String)) : '';
      return problem(path, 'invalid_value', `must be one of ${allowed.join(', ')}, got ${describe(value)}${hint}`);
    }
    case 'const':
      return problem(path, 'invalid_value', `must be ${JSON.stringify(params.allowedValue)}, got ${describe(value)}`);
    case 'pattern':
      return problem(path, 'invalid_format', `${custom ?? `must match ${String(params.pattern)}`}, got ${describe(value)}`);
    case 'minItems':
      return problem(path, 'empty', params.limit === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} items`);
    case 'maxItems':
      return problem(path, 'too_many', `must have at most ${String(params.limit)} items`);
    case 'minimum':
      return problem(path, 'out_of_range', `must be at least ${String(params.limit)}, got ${describe(value)}`);
    case 'maximum':
      return problem(path, 'out_of_range', `must be at most ${String(params.limit)}, got ${describe(value)}`);
    case 'minLength':
      return problem(path, 'empty', params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters long`);
    case 'maxLength':
      return problem(path, 'too_long', `must be at most ${String(params.limit)} characters long`);
    case 'uniqueItems': {
      const [first, second] = [Number(params.j), Number(params.i)].sort((a, b) => a - b) as [number, number];
      return problem(
        at(path, second),
        'duplicate_item',
        `repeats ${describe((value as unknown[])[second])}, listed at index ${first} already`,
      );
    }
    default:
      return problem(path, 'invalid', error.message ?? `fails ${error.keyword}`);
  }
}

/** Structural problems of a parsed document; empty when it has the shape of a catalog. */
export function structuralProblems(data: unknown): Problem[] {
  if (validate(data)) return [];
  return (validate.errors ?? []).flatMap((error) => translate(error, data) ?? []);
}
