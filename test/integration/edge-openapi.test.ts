// The OpenAPI document as a client reads it: `redocly lint` (the rules in redocly.yaml) finds no error and no warning;
// every operation has a stable operationId; the servers are named; every parameter states its limits as schema keywords.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { OPERATION_IDS } from '../../src/api/contract.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
type Schema = { type?: string | string[]; enum?: unknown[]; pattern?: string; maxLength?: number; anyOf?: Schema[]; $ref?: string };
type Operation = {
  operationId?: string;
  parameters?: Array<{ in: string; name: string; schema: Schema }>;
  requestBody?: { content: Record<string, { schema: Schema & { properties?: Record<string, Schema> } }> };
};
const document = JSON.parse(readFileSync('openapi.json', 'utf8')) as {
  servers?: Array<{ url: string }>;
  paths: Record<string, Record<string, Operation>>;
};

/** A string schema states its limits: an enum, or a pattern and a maximum length. */
function bounded(schema: Schema): boolean {
  if (schema.anyOf) return schema.anyOf.every(bounded);
  if (schema.enum) return true;
  if (typeof schema.pattern !== 'string') return false;
  // Without a maxLength, the pattern itself must bound the length: no *, + or {n,} outside escapes and character classes.
  const quantifiers = schema.pattern.replace(/\\./g, '').replace(/\[[^\]]*\]/g, 'X');
  return typeof schema.maxLength === 'number' || !/[*+]|\{\d+,\}/.test(quantifiers);
}

describe('the OpenAPI document, linted', () => {
  it('passes redocly lint with no error and no warning (redocly.yaml)', () => {
    const run = spawnSync('node_modules/.bin/redocly', ['lint', 'openapi.json', '--format=json', '--lint-config=error'], {
      encoding: 'utf8',
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    });
    assert.equal(run.error, undefined, `redocly could not run: ${run.error?.message}`);
    const report = JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))) as {
      totals: { errors: number; warnings: number };
      problems: Array<{ ruleId: string; message: string; location: Array<{ pointer: string }> }>;
    };
    const listed = report.problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`).join('\n');
    assert.deepEqual(report.totals.errors + report.totals.warnings, 0, listed);
    assert.equal(run.status, 0, run.stderr);
  });

  it('names every operation with its operationId from src/api/contract.ts, and the servers', () => {
    const seen = new Set<string>();
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of METHODS) {
        const operation = item[method];
        if (!operation) continue;
        const route = `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`;
        assert.equal(operation.operationId, OPERATION_IDS[route], route);
        assert.ok(!seen.has(operation.operationId!), `${operation.operationId} is unique`);
        seen.add(operation.operationId!);
      }
    }
    assert.equal(seen.size, Object.keys(OPERATION_IDS).length, 'every named operation is served');
    assert.ok(document.servers && document.servers.length > 0, 'servers');
  });

  it('states every path and query parameter limit, and every payment field limit, as schema keywords', () => {
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of METHODS) {
        for (const parameter of item[method]?.parameters ?? []) {
          if (parameter.in !== 'path' && parameter.in !== 'query') continue;
          assert.ok(
            bounded(parameter.schema),
            `${method.toUpperCase()} ${path} ${parameter.in} ${parameter.name}: ${JSON.stringify(parameter.schema)}`,
          );
        }
      }
    }
    const payment = document.paths['/v1/payments']!.post!.requestBody!.content['application/json']!.schema;
    for (const [name, schema] of Object.entries(payment.properties ?? {}))
      assert.ok(bounded(schema), `payment ${name}: ${JSON.stringify(schema)}`);
  });
});
