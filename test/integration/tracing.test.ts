// Traces and logs across the pipeline: ingest, a close (rating, finalizing) and posting each leave spans, the close's
// spans form one tree, and every finalized invoice and posted outbox row carries its correlation id on its span and
// on its log line, with the log line pointing at the span.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { testStore } from '../support/db.js';
import { NetSuiteSimulator } from '../support/netsuite-sim.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox } from '../../src/post/outbox.js';
import { netsuiteTarget } from '../support/netsuite-target.js';
import { correlationId } from '../../src/domain/correlation.js';
import { ATTRIBUTES, SPANS, startTracing, type Tracing } from '../../src/observe/tracing.js';
import { jsonLogger, logLine } from '../../src/observe/log.js';
import { processRegistry } from '../../src/observe/counters.js';

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let store: Store;
let sim: NetSuiteSimulator;
const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk, _encoding, done) {
    for (const text of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(text));
    done();
  },
});
const log = logLine(jsonLogger(sink));

const NOW = new Date('2026-12-01T00:00:00Z');
const ev = (id: string, subject: string, type: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//trace-test',
  type,
  subject,
  time: '2026-10-10T00:00:00Z',
  data,
});
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const named = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);

before(async () => {
  tracing = startTracing({ exporter });
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  sim = new NetSuiteSimulator({ concurrencyLimit: 4, timeoutDelayMs: 600 });
  await sim.start();
});
after(async () => {
  await sim.stop();
  await store.close();
  await tracing.shutdown();
});

describe('traces and logs', () => {
  it('records an ingest span with the usage batch and its outcome counts', async () => {
    const catalog = (await currentCatalog(store.pool))!;
    const outcome = await ingestBatch(
      store.pool,
      catalog,
      [
        ev('t1', 'acme-prod', 'com.northwind.storage.usage', { gb_hours: '100' }),
        ev('t2', 'umbrella', 'com.northwind.api.request', {}),
        ev('t2', 'umbrella', 'com.northwind.api.request', {}),
      ],
      { channel: 'file', now: NOW },
    );
    const [span] = named(SPANS.ingestBatch);
    assert.ok(span, 'an ingest span');
    assert.equal(span.attributes[ATTRIBUTES.batch], outcome.batch_id);
    assert.equal(span.attributes['accrue.events_accepted'], 2);
    assert.equal(span.attributes['accrue.events_duplicate'], 1);
    assert.equal(parentOf(span), undefined, 'a root span');
  });

  it('gives a close one span tree: rating per customer, finalizing per batch and invoice, each invoice with its correlation', async () => {
    exporter.reset();
    const catalog = (await currentCatalog(store.pool))!;
    const outcome = await closePeriod(store.pool, catalog, { period: '2026-10', erpTargets: ['netsuite'], log });
    assert.ok(outcome.invoices.length >= 2);
    const [root] = named(SPANS.closePeriod);
    assert.ok(root);
    assert.equal(parentOf(root), undefined);
    assert.equal(root.attributes[ATTRIBUTES.period], '2026-10');
    assert.equal(root.attributes['accrue.invoices'], outcome.invoices.length);
    const traceId = root.spanContext().traceId;
    const all = exporter.getFinishedSpans();
    assert.ok(
      all.every((s) => s.spanContext().traceId === traceId),
      'every span of the close is in its trace',
    );

    const rated = named(SPANS.rateCustomer);
    assert.ok(rated.length >= outcome.invoices.length);
    for (const span of rated) assert.equal(parentOf(span), root.spanContext().spanId);
    const batches = named(SPANS.finalizeBatch);
    assert.equal(batches.length, 1);
    assert.equal(parentOf(batches[0]!), root.spanContext().spanId);
    const finalized = named(SPANS.finalize);
    assert.equal(finalized.length, outcome.invoices.length);
    for (const invoice of outcome.invoices) {
      const span = finalized.find((s) => s.attributes[ATTRIBUTES.invoice] === invoice.id);
      assert.ok(span, `a finalize span for ${invoice.id}`);
      assert.equal(parentOf(span), batches[0]!.spanContext().spanId);
      const correlation = correlationId({ invoice: invoice.id, rating_run: invoice.rating_run });
      assert.equal(span.attributes[ATTRIBUTES.correlation], correlation);
      assert.equal(span.attributes[ATTRIBUTES.ratingRun], invoice.rating_run);
      assert.equal(span.attributes[ATTRIBUTES.invoiceNumber], invoice.number);
      // The database's own record of the correlation agrees with the span's.
      const stored = (
        await store.pool.query("SELECT correlation_id FROM correlations WHERE subject_kind = 'invoice' AND subject_id = $1", [invoice.id])
      ).rows[0];
      assert.equal(stored?.correlation_id, correlation);
      const line = lines.find((l) => l.msg === 'invoice finalized' && l.invoice === invoice.id);
      assert.ok(line, `a log line for ${invoice.id}`);
      assert.equal(line.correlation, correlation);
      assert.equal(line.level, 'info');
      assert.equal(line.trace_id, traceId, 'the log line points at the trace of the close');
      assert.match(String(line.time), /^\d{4}-\d{2}-\d{2}T/);
    }
    assert.equal(named(SPANS.correctLateUsage).length, 1);
  });

  it('gives each outbox row a span with its correlation, marks a failed ERP call and counts it', async () => {
    exporter.reset();
    lines.length = 0;
    sim.faults.push('500');
    const target = netsuiteTarget(sim.url, {
      subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
      timeoutMs: 300,
      limits: { concurrency: 1, requestsPerMinute: 60_000 },
    });
    const outcome = await drainOutbox(store.pool, target, { untilEmptyMs: 10_000, backoffBaseMs: 5, log });
    assert.ok(outcome.posted >= 2, JSON.stringify(outcome));
    const rows = (
      await store.pool.query(
        "SELECT o.key, c.correlation_id FROM outbox o JOIN correlations c ON c.subject_kind = 'outbox' AND c.subject_id = o.key WHERE o.target = 'netsuite'",
      )
    ).rows as Array<{ key: string; correlation_id: string }>;
    assert.ok(rows.length >= 2);
    const spans = named(SPANS.outboxPost);
    for (const row of rows) {
      const mine = spans.filter((s) => s.attributes[ATTRIBUTES.outboxKey] === row.key);
      assert.ok(mine.length >= 1, `a span for ${row.key}`);
      for (const span of mine) {
        assert.equal(span.attributes[ATTRIBUTES.correlation], row.correlation_id);
        assert.equal(span.attributes[ATTRIBUTES.connector], 'netsuite');
      }
      const posted = lines.find((l) => l.msg === 'outbox posted' && l.outbox === row.key);
      assert.ok(posted, `a log line for ${row.key}`);
      assert.equal(posted.correlation, row.correlation_id);
      assert.ok(mine.some((s) => s.spanContext().traceId === posted.trace_id));
    }
    const failed = spans.filter((s) => s.status.code === 2);
    assert.equal(failed.length, 1, 'the one 500 marks its span as failed');
    const counter = await processRegistry.getSingleMetricAsString('accrue_erp_call_failures_total');
    assert.match(counter, /accrue_erp_call_failures_total\{connector="netsuite",kind="transient"\} 1/);
  });
});
