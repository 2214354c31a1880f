// OTLP export: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans reach the collector's /v1/traces as OTLP/HTTP JSON when
// the process flushes; without it, nothing is registered and spans do not record.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { SPANS, inSpan, startTracing, traceFields } from '../../src/observe/tracing.js';

let collector: Server;
const received: Array<{ url: string; contentType: string; body: string }> = [];

before(async () => {
  collector = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ url: request.url ?? '', contentType: request.headers['content-type'] ?? '', body });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
});
after(() => new Promise<void>((resolve) => collector.close(() => resolve())));

describe('OTLP export', () => {
  it('records nothing when no endpoint is configured', async () => {
    const tracing = startTracing({ env: {} });
    assert.equal(tracing.enabled, false);
    await inSpan(SPANS.closePeriod, {}, async (span) => {
      assert.equal(span.isRecording(), false);
      assert.deepEqual(traceFields(), {});
    });
    assert.equal(trace.getActiveSpan(), undefined);
  });

  it('sends spans to <endpoint>/v1/traces with the service name when the endpoint is set', async () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    process.env.OTEL_SERVICE_NAME = 'accrue-otlp-test';
    const tracing = startTracing();
    assert.equal(tracing.enabled, true);
    let traceId = '';
    await inSpan(SPANS.closePeriod, { 'accrue.period': '2026-11' }, async () => {
      traceId = traceFields().trace_id ?? '';
      await inSpan(SPANS.finalize, { 'accrue.correlation_id': 'corr:v1:000000000000000000000000' }, async () => undefined);
    });
    assert.match(traceId, /^[0-9a-f]{32}$/);
    await tracing.shutdown(); // flushes the batch
    const posted = received.filter((r) => r.url === '/v1/traces');
    assert.equal(posted.length >= 1, true, 'the collector received the traces');
    const body = posted.map((p) => p.body).join('\n');
    assert.match(posted[0]!.contentType, /application\/json/);
    assert.ok(body.includes('accrue-otlp-test'), 'service.name');
    assert.ok(body.includes(SPANS.closePeriod) && body.includes(SPANS.finalize), 'both spans');
    assert.ok(body.includes('corr:v1:000000000000000000000000'), 'the correlation attribute');
    assert.ok(body.toLowerCase().includes(traceId), 'the trace id');
  });
});
