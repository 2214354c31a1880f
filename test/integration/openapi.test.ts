// The checked-in contract matches the routes: openapi.json and the typed client's schema are regenerated from the
// server and compared byte for byte, so a route changed without `npm run openapi` fails here. Every documented
// operation lists its errors as RFC 9457 problems.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CLIENT_SCHEMA_FILE, OPENAPI_FILE, generatedFiles } from '../../scripts/openapi.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
type Operation = { responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>; security?: unknown[] };

describe('the API contract', () => {
  it('openapi.json and src/api/client/schema.d.ts are what the routes generate (run npm run openapi when this fails)', async () => {
    const files = await generatedFiles();
    for (const path of [OPENAPI_FILE, CLIENT_SCHEMA_FILE]) {
      assert.equal(readFileSync(path, 'utf8'), files[path], `${path} is out of date: run npm run openapi`);
    }
  });

  it('is OpenAPI 3.1 and every operation documents its errors as problem details', () => {
    const document = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as {
      openapi: string;
      paths: Record<string, Record<string, Operation>>;
      components: { schemas: Record<string, { required?: string[] }> };
    };
    assert.equal(document.openapi, '3.1.0');
    assert.deepEqual(document.components.schemas.Problem?.required, ['type', 'title', 'status']);
    let operations = 0;
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of METHODS) {
        const operation = item[method];
        if (!operation) continue;
        operations += 1;
        const where = `${method.toUpperCase()} ${path}`;
        const responses = operation.responses ?? {};
        assert.ok(
          Object.keys(responses).some((s) => s.startsWith('2')),
          `${where} documents its success`,
        );
        assert.ok(responses['500'], `${where} documents 500`);
        const secured = operation.security === undefined || operation.security.length > 0;
        if (secured) for (const status of ['401', '403']) assert.ok(responses[status], `${where} documents ${status}`);
        for (const [status, response] of Object.entries(responses)) {
          if (Number(status) < 400) continue;
          assert.deepEqual(Object.keys(response.content ?? {}), ['application/problem+json'], `${where} ${status} is a problem`);
          assert.equal(response.content?.['application/problem+json']?.schema?.$ref, '#/components/schemas/Problem', `${where} ${status}`);
        }
      }
    }
    assert.ok(operations >= 20, `${operations} operations`);
    for (const path of [
      '/v1/events',
      '/v1/usage',
      '/v1/periods/{period}/close',
      '/v1/invoices/{id}',
      '/v1/payments',
      '/v1/exceptions',
      '/v1/dlq',
    ])
      assert.ok(document.paths[path], path);
  });
});
