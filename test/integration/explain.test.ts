// Explain: an invoice line back to the events it counted, a journal line back to its invoice lines, an event forward
// to the ERP; correlation ids in the store, the logs and the requests the ERP receives.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { testStore } from '../support/db.js';
import { NetSuiteSimulator } from '../support/netsuite-sim.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { getInvoice } from '../../src/invoice/store.js';
import { drainOutbox } from '../../src/post/outbox.js';
import { netsuiteTarget } from '../support/netsuite-target.js';
import { correlationId, parseCorrelationHeader } from '../../src/domain/correlation.js';
import { explainInvoice } from '../../src/explain/explain-invoice.js';
import { explainJournal } from '../../src/explain/explain-journal.js';
import { explainEvent } from '../../src/explain/explain-event.js';
import { renderInvoiceExplanation, renderJournalExplanation } from '../../src/explain/render.js';
import type { InvoiceExplanation, LineExplanation } from '../../src/explain/model.js';
import type { Invoice } from '../../src/domain/model.js';
import { buildServer } from '../../src/api/server.js';
import { testKey } from '../support/keys.js';

const SOURCE = '//explain-test';
const API = 'com.northwind.api.request';
const STORAGE = 'com.northwind.storage.usage';
const COMPUTE = 'com.northwind.compute.sample';
const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id,
  source: SOURCE,
  type,
  subject,
  time,
  data,
});

// acme's api calls straddle the 2026-11-16 price change (two lines); decoys: December, another customer, another meter.
const NOVEMBER = [
  ev('a-api-1', 'acme-prod', API, '2026-11-02T10:00:00Z', { region: 'eu' }),
  ev('a-api-2', 'acme-staging', API, '2026-11-05T10:00:00Z', { region: 'us' }),
  ev('a-api-3', 'acme-prod', API, '2026-11-10T10:00:00Z', { region: 'eu' }),
  ev('a-api-4', 'acme-prod', API, '2026-11-15T23:59:59Z', { region: 'eu' }),
  ev('a-api-5', 'acme-prod', API, '2026-11-16T00:00:00Z', { region: 'us' }),
  ev('a-api-6', 'acme-prod', API, '2026-11-20T10:00:00Z', { region: 'eu' }),
  ev('a-api-7', 'acme-prod', API, '2026-11-29T10:00:00Z', { region: 'us' }),
  ev('a-st-1', 'acme-prod', STORAGE, '2026-11-03T00:00:00Z', { gb_hours: '1000000' }),
  ev('a-st-2', 'acme-prod', STORAGE, '2026-11-18T00:00:00Z', { gb_hours: '500' }),
  ev('g-api-1', 'globex', API, '2026-11-03T00:00:00Z', { region: 'eu' }),
  ev('u-api-1', 'umbrella', API, '2026-11-02T00:00:00Z', { region: 'eu' }),
  ev('u-api-2', 'umbrella', API, '2026-11-20T00:00:00Z', { region: 'eu' }),
  ev('u-cpu-1', 'umbrella', COMPUTE, '2026-11-05T00:00:00Z', { vcpu: '10' }),
  ev('u-cpu-2', 'umbrella', COMPUTE, '2026-11-06T00:00:00Z', { vcpu: '4' }),
];
const DECEMBER = [ev('a-api-dec', 'acme-prod', API, '2026-12-02T00:00:00Z', { region: 'eu' })];

let store: Store;
let catalog: CatalogVersion;
let sim: NetSuiteSimulator;
let november: Invoice[];
const closeLog: Array<Record<string, unknown>> = [];
const workerLog: Array<Record<string, unknown>> = [];

const invoiceOf = (customer: string) => november.find((i) => i.customer === customer)!;
const lineOf = (invoice: Invoice, predicate: (l: Invoice['lines'][number]) => boolean) => {
  const found = invoice.lines.filter(predicate);
  assert.equal(found.length, 1, `one line of ${invoice.number} matches`);
  return found[0]!;
};
function explained(result: Awaited<ReturnType<typeof explainInvoice>>): InvoiceExplanation {
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.problems));
  return result.value;
}

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(store.pool, catalog, NOVEMBER, { channel: 'file', now: new Date('2026-12-01T00:00:00Z') });
  await ingestBatch(store.pool, catalog, DECEMBER, { channel: 'http', now: new Date('2026-12-03T00:00:00Z') });
  november = (await closePeriod(store.pool, catalog, { period: '2026-11', erpTargets: ['netsuite'], log: (line) => closeLog.push(line) }))
    .invoices;
  sim = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 500 });
  await sim.start();
});
after(async () => {
  await sim.stop();
  await store.close();
});

describe('explain an invoice line', () => {
  it('goes down to exactly the events counted: count and quantity equal the line, the sample is the customer, meter and window', async () => {
    const acme = invoiceOf('acme');
    const first = lineOf(acme, (l) => l.kind === 'usage' && l.meter === 'api_calls' && l.period_start === '2026-11-01');
    const e = explained(await explainInvoice(store.pool, acme.number!, { line: first.line_no }));
    assert.equal(e.lines.length, 1);
    const usage = e.lines[0]!.usage!;
    assert.equal(first.quantity, '4');
    assert.equal(usage.event_count, 4, 'a-api-1..4: 2026-11-15T23:59:59Z is in, the 16th is the next version');
    assert.equal(usage.quantity, first.quantity);
    assert.equal(usage.consistent, true);
    assert.deepEqual(usage.rated, { quantity: '4', event_count: 4 });
    assert.equal(usage.window.from, '2026-11-01T00:00:00.000Z');
    assert.equal(usage.window.to, '2026-11-16T00:00:00.000Z');
    assert.deepEqual(usage.by_dimensions, [
      { dimensions: { region: 'eu' }, quantity: '3', event_count: 3 },
      { dimensions: { region: 'us' }, quantity: '1', event_count: 1 },
    ]);
    assert.equal(usage.usage_batch_count, 1);
    assert.equal(e.rating_run?.id, acme.rating_run);
    assert.equal(e.lines[0]!.price?.version, first.price_version);
    assert.deepEqual(e.lines[0]!.tiers, first.tiers);
    // Every sampled event really is acme's, of the meter's type, in the window and at or below the watermark.
    assert.deepEqual(usage.sample.map((s) => s.id).sort(), ['a-api-1', 'a-api-2', 'a-api-3', 'a-api-4']);
    for (const s of usage.sample) {
      const row = (
        await store.pool.query('SELECT customer_id, type, time, seq, late FROM events WHERE source = $1 AND id = $2', [s.source, s.id])
      ).rows[0];
      assert.equal(row.customer_id, 'acme');
      assert.equal(row.type, API);
      assert.ok(row.time >= new Date(usage.window.from) && row.time < new Date(usage.window.to));
      assert.ok(BigInt(row.seq) <= BigInt(e.rating_run!.event_seq_watermark));
      assert.equal(row.late, false);
    }
    const again = explained(await explainInvoice(store.pool, acme.id, { line: first.line_no }));
    assert.deepEqual(again.lines[0]!.usage!.sample, usage.sample, 'the same sample every time');
  });

  it('counts the boundary event in the second window and leaves December and other customers out', async () => {
    const acme = invoiceOf('acme');
    const second = lineOf(acme, (l) => l.kind === 'usage' && l.meter === 'api_calls' && l.period_start === '2026-11-16');
    const usage = explained(await explainInvoice(store.pool, acme.number!, { line: second.line_no })).lines[0]!.usage!;
    assert.equal(usage.event_count, 3);
    assert.equal(usage.quantity, second.quantity);
    assert.deepEqual(usage.sample.map((s) => s.id).sort(), ['a-api-5', 'a-api-6', 'a-api-7']);
    const storage = lineOf(acme, (l) => l.kind === 'usage' && l.meter === 'storage_gb_hours');
    const summed = explained(await explainInvoice(store.pool, acme.number!, { line: storage.line_no })).lines[0]!.usage!;
    assert.equal(summed.quantity, '1000500');
    assert.equal(summed.event_count, 2);
    assert.deepEqual(summed.sample.map((s) => s.value).sort(), ['1000000', '500']);
  });

  it('shows graduated tiers as applied, with a human rendering a support agent can read', async () => {
    const umbrella = invoiceOf('umbrella');
    const compute = lineOf(umbrella, (l) => l.meter === 'peak_vcpu' && l.kind === 'usage');
    const e = explained(await explainInvoice(store.pool, umbrella.number!, { line: compute.line_no }));
    const line = e.lines[0]!;
    assert.equal(line.price?.definition?.model, 'graduated');
    assert.deepEqual(
      line.tiers.map((t) => [t.tier, t.quantity, t.unit_amount, t.flat_amount]),
      [
        [1, '8', '0', '40'],
        [2, '2', '6.50', '0'],
      ],
    );
    assert.equal(line.amount, '53.00');
    assert.equal(line.usage?.aggregation, 'max');
    assert.equal(line.usage?.quantity, '10');
    assert.equal(line.usage?.event_count, 2);
    const text = renderInvoiceExplanation(e);
    assert.match(text, /tier 2 .* 2 x 6\.50 = 13/);
    assert.match(text, /2 events .* -> quantity 10/);
    assert.match(text, /recount matches the line 10/);
  });

  it('explains every line without --line, flat and credit lines included, and refuses a line that does not exist', async () => {
    const acme = invoiceOf('acme');
    const e = explained(await explainInvoice(store.pool, acme.number!));
    assert.equal(e.lines.length, acme.lines.length);
    assert.match(e.lines.find((l) => l.kind === 'flat')!.note!, /flat fee of 99.00 USD/);
    assert.match(e.lines.find((l) => l.kind === 'credit')!.note!, /acme:2026-11-01:0/);
    assert.ok(e.lines.filter((l) => l.usage).every((l) => l.usage!.consistent));
    assert.equal(e.lineage.usage_batch_count, 1);
    const missing = await explainInvoice(store.pool, acme.number!, { line: 99 });
    assert.ok(!missing.ok && missing.problems[0]!.code === 'no_such_line');
    const unknown = await explainInvoice(store.pool, 'NWUS-999999');
    assert.ok(!unknown.ok && unknown.problems[0]!.code === 'not_found');
  });
});

describe('correlation ids', () => {
  it('the database writes the same correlation id the domain derives, for every finalized invoice, journal and outbox row', async () => {
    const rows = (
      await store.pool.query<{
        subject_kind: string;
        subject_id: string;
        correlation_id: string;
        invoice: string;
        rating_run: string | null;
      }>('SELECT * FROM correlations')
    ).rows;
    for (const invoice of november) {
      const expected = correlationId({ invoice: invoice.id, rating_run: invoice.rating_run });
      const mine = rows.filter((r) => r.invoice === invoice.id);
      assert.deepEqual([...new Set(mine.map((r) => r.subject_kind))].sort(), ['invoice', 'journal', 'outbox']);
      for (const r of mine) assert.equal(r.correlation_id, expected);
    }
    const outbox = (
      await store.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM correlations c WHERE c.subject_kind = 'outbox' AND c.subject_id = o.key)",
      )
    ).rows[0]!;
    assert.equal(outbox.n, 0, 'every outbox row carries its correlation');
  });

  it('the SQL recipe of migration 010 and the TypeScript one agree on arbitrary strings', async () => {
    const text = fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\u0000'));
    await fc.assert(
      fc.asyncProperty(text, fc.option(text, { nil: null }), async (invoice, ratingRun) => {
        const sql = (await store.pool.query<{ id: string }>('SELECT accrue_correlation_of($1, $2) AS id', [invoice, ratingRun])).rows[0]!
          .id;
        assert.equal(sql, correlationId({ invoice, rating_run: ratingRun }));
      }),
      { numRuns: 100 },
    );
  });

  it('the billing run logs each invoice with its correlation id', () => {
    const logged = closeLog.filter((l) => l.msg === 'invoice finalized');
    assert.deepEqual(logged.map((l) => l.number).sort(), november.map((i) => i.number).sort());
    for (const l of logged) assert.equal(l.correlation, correlationId({ invoice: String(l.invoice), rating_run: String(l.rating_run) }));
  });

  it('every request the ERP receives carries X-Accrue-Correlation, and the worker logs the same chain', async () => {
    const target = netsuiteTarget(sim.url, {
      subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
      timeoutMs: 2000,
      limits: { concurrency: 2, requestsPerMinute: 60_000 },
    });
    const outcome = await drainOutbox(store.pool, target, { untilEmptyMs: 10_000, log: (line) => workerLog.push(line) });
    const outboxRows = (
      await store.pool.query<{ key: string; document_id: string; status: string }>(
        "SELECT key, document_id, status FROM outbox WHERE target = 'netsuite'",
      )
    ).rows;
    assert.equal(outcome.posted + outcome.found_existing, outboxRows.length);
    assert.ok(outboxRows.every((r) => r.status === 'posted'));
    assert.ok(sim.correlations.length >= outboxRows.length * 2, 'a look-up and a post per document, each with the header');
    assert.equal(sim.requests, sim.correlations.length, 'no request without it');

    const umbrella = invoiceOf('umbrella');
    const e = explained(await explainInvoice(store.pool, umbrella.number!));
    const journal = `jrn:v1:invoice:${umbrella.id}`;
    const headers = sim.correlations.map((h) => parseCorrelationHeader(h)!).filter((h) => h.journal === journal);
    assert.ok(headers.length >= 2);
    for (const h of headers) {
      assert.equal(h.correlation_id, e.lineage.correlation_id);
      assert.equal(h.rating_run, umbrella.rating_run);
      assert.equal(h.invoice, umbrella.id);
      assert.equal(h.outbox, `out:v1:netsuite:${journal}`);
    }
    const posted = workerLog.filter((l) => l.msg === 'outbox posted' && l.journal === journal);
    assert.equal(posted.length, 1);
    assert.equal(posted[0]!.correlation, e.lineage.correlation_id);
    assert.equal(typeof posted[0]!.reference, 'string');
    // The ERP reference is now part of the chain.
    assert.deepEqual(
      e.lineage.erp_documents.map((d) => d.target),
      e.lineage.outbox.map(() => 'netsuite'),
    );
    assert.ok(e.lineage.erp_documents.length >= 1);
    assert.equal(e.journals.find((j) => j.id === journal)?.outbox[0]?.erp_document, posted[0]!.reference);
    // An invoice can be found by its correlation id too.
    assert.equal(explained(await explainInvoice(store.pool, e.lineage.correlation_id)).invoice.id, umbrella.id);
  });
});

describe('explain a journal line', () => {
  it('maps each journal line to the invoice lines it carries and explains one down to its events', async () => {
    const umbrella = invoiceOf('umbrella');
    const journalId = `jrn:v1:invoice:${umbrella.id}`;
    const whole = await explainJournal(store.pool, journalId);
    assert.ok(whole.ok);
    const receivable = whole.value.lines.find((l) => l.role === 'receivable')!;
    assert.equal(receivable.account, '1400');
    assert.equal(receivable.debit, '359.70');
    const compute = whole.value.lines.find((l) => l.account === '8430')!;
    assert.equal(compute.role, 'revenue');
    const computeLines = umbrella.lines.filter((l) => l.product === 'compute').map((l) => l.line_no);
    assert.deepEqual(compute.invoice_lines, computeLines);
    assert.equal(whole.value.explained, null);

    const one = await explainJournal(store.pool, journalId, { line: compute.line_no });
    assert.ok(one.ok);
    const lines = one.value.explained!.invoice_lines;
    assert.deepEqual(
      lines.map((l) => l.line_no),
      computeLines,
    );
    const vcpu = lines.find((l) => l.meter === 'peak_vcpu') as LineExplanation;
    assert.equal(vcpu.usage?.event_count, 2);
    assert.deepEqual(vcpu.usage?.sample.map((s) => s.id).sort(), ['u-cpu-1', 'u-cpu-2']);
    assert.match(renderJournalExplanation(one.value), /Journal line \d+ comes from:[\s\S]*peak_vcpu/);

    // Found by the outbox key and by the ERP's own reference as well.
    const outboxKey = `out:v1:netsuite:${journalId}`;
    const viaKey = await explainJournal(store.pool, outboxKey);
    assert.ok(viaKey.ok && viaKey.value.journal.id === journalId);
    const reference = (await store.pool.query<{ r: string }>('SELECT target_reference AS r FROM outbox WHERE key = $1', [outboxKey]))
      .rows[0]!.r;
    const viaErp = await explainJournal(store.pool, reference);
    assert.ok(viaErp.ok && viaErp.value.journal.id === journalId);
    const bad = await explainJournal(store.pool, journalId, { line: 42 });
    assert.ok(!bad.ok && bad.problems[0]!.code === 'no_such_line');
  });
});

describe('walk forward from an event', () => {
  it('reaches the invoice line, the journal and the ERP reference', async () => {
    const umbrella = invoiceOf('umbrella');
    const walked = await explainEvent(store.pool, SOURCE, 'u-cpu-1');
    assert.ok(walked.ok);
    const w = walked.value;
    assert.equal(w.status, 'billed');
    assert.equal(w.billed_in.length, 1);
    const hit = w.billed_in[0]!;
    assert.equal(hit.invoice.number, umbrella.number);
    assert.equal(hit.line_no, umbrella.lines.find((l) => l.meter === 'peak_vcpu')!.line_no);
    assert.equal(hit.correlation_id, correlationId({ invoice: umbrella.id, rating_run: umbrella.rating_run }));
    const journal = hit.journals.find((j) => j.kind === 'invoice')!;
    assert.equal(journal.id, `jrn:v1:invoice:${umbrella.id}`);
    assert.equal(journal.outbox[0]?.status, 'posted');
    assert.ok(journal.outbox[0]?.erp_document);
    assert.equal(w.usage_batch?.channel, 'file');
  });

  it('says why an event is not on an invoice: December is not closed yet', async () => {
    const december = await explainEvent(store.pool, SOURCE, 'a-api-dec');
    assert.ok(december.ok);
    assert.equal(december.value.status, 'not_yet_billed');
    assert.deepEqual(december.value.billed_in, []);
    const missing = await explainEvent(store.pool, SOURCE, 'nope');
    assert.ok(!missing.ok && missing.problems[0]!.code === 'not_found');
  });
});

describe('late usage: credit note and replacement', () => {
  it('the replacement counts the late event, the credit note reverses exactly what the original counted', async () => {
    await ingestBatch(
      store.pool,
      catalog,
      [
        ev('a-st-late', 'acme-prod', STORAGE, '2026-11-25T00:00:00Z', { gb_hours: '1000' }),
        ev('u-api-late', 'umbrella', API, '2026-11-26T00:00:00Z', { region: 'eu' }),
      ],
      { channel: 'http', now: new Date('2026-12-04T00:00:00Z') },
    );
    const december = await closePeriod(store.pool, catalog, {
      period: '2026-12',
      now: new Date('2027-01-02T00:00:00Z') /* December has ended */,
      erpTargets: ['netsuite'],
      log: (line) => closeLog.push(line),
    });
    const acme = december.corrections.find((c) => c.customer === 'acme')!;
    assert.ok(acme.credit_note && acme.replacement);
    const logged = closeLog.filter((l) => l.msg === 'late usage corrected').map((l) => l.invoice);
    assert.deepEqual(logged.sort(), [acme.credit_note.id, acme.replacement.id].sort());

    const storageLine = (invoice: Invoice) => lineOf(invoice, (l) => l.kind === 'usage' && l.meter === 'storage_gb_hours').line_no;
    const replacement = explained(await explainInvoice(store.pool, acme.replacement.number!, { line: storageLine(acme.replacement) }));
    const r = replacement.lines[0]!.usage!;
    assert.equal(replacement.rating_run?.includes_late_usage, true);
    assert.equal(r.event_count, 3);
    assert.equal(r.quantity, '1001500');
    assert.equal(r.consistent, true);
    assert.ok(r.sample.some((s) => s.id === 'a-st-late' && s.late));
    assert.equal(replacement.corrects?.id, acme.corrected.id);

    const credit = explained(await explainInvoice(store.pool, acme.credit_note.number!, { line: storageLine(acme.credit_note) }));
    const c = credit.lines[0]!.usage!;
    assert.equal(credit.rating_run?.id, acme.corrected.rating_run, 'a credit note is explained by the run of the invoice it reverses');
    assert.equal(c.event_count, 2);
    assert.equal(c.quantity, '1000500');
    assert.equal(c.consistent, true);

    const original = explained(await explainInvoice(store.pool, acme.corrected.number!));
    assert.deepEqual(original.corrected_by.map((d) => d.id).sort(), [acme.credit_note.id, acme.replacement.id].sort());
    assert.equal(original.late_usage[0]?.replacement, acme.replacement.id);

    const walked = await explainEvent(store.pool, SOURCE, 'a-st-late');
    assert.ok(walked.ok);
    assert.deepEqual(
      walked.value.billed_in.map((b) => b.invoice.id),
      [acme.replacement.id],
    );
    const before = await explainEvent(store.pool, SOURCE, 'a-st-1');
    assert.ok(before.ok);
    const onOriginal = before.value.billed_in.find((b) => b.invoice.id === acme.corrected.id)!;
    assert.deepEqual(
      onOriginal.reversed_by.map((d) => d.id),
      [acme.credit_note.id],
    );
    assert.ok(before.value.billed_in.some((b) => b.invoice.id === acme.replacement!.id));

    // umbrella's late call still fits one package of 1,000: re-rated, nothing issued.
    const unchanged = await explainEvent(store.pool, SOURCE, 'u-api-late');
    assert.ok(unchanged.ok);
    assert.equal(unchanged.value.status, 'rerated_unchanged');
    const still = await getInvoice(store.pool, invoiceOf('umbrella').id);
    assert.equal(still?.status, 'finalized');
  });
});

describe('over HTTP and on the command line', () => {
  it('GET /v1/invoices/:id/explain, /v1/journals/:id/explain and /v1/events/explain answer with the read scope', async () => {
    const app = await buildServer({ pool: store.pool });
    try {
      const read = (await testKey(store.pool, { name: 'read', roles: ['auditor'] })).secret;
      const auth = { authorization: `Bearer ${read}` };
      const umbrella = invoiceOf('umbrella');
      const compute = umbrella.lines.find((l) => l.meter === 'peak_vcpu')!;
      const res = await app.inject({
        method: 'GET',
        url: `/v1/invoices/${umbrella.number}/explain?line=${compute.line_no}`,
        headers: auth,
      });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.lines[0].usage.event_count, 2);
      assert.equal(body.lines[0].tiers.length, 2);
      assert.equal(body.lineage.correlation_id, correlationId({ invoice: umbrella.id, rating_run: umbrella.rating_run }));
      const journal = await app.inject({
        method: 'GET',
        url: `/v1/journals/${encodeURIComponent(`jrn:v1:invoice:${umbrella.id}`)}/explain`,
        headers: auth,
      });
      assert.equal(journal.statusCode, 200, journal.body);
      assert.equal(journal.json().invoice.invoice.id, umbrella.id);
      const event = await app.inject({
        method: 'GET',
        url: `/v1/events/explain?source=${encodeURIComponent(SOURCE)}&id=u-cpu-2`,
        headers: auth,
      });
      assert.equal(event.statusCode, 200, event.body);
      assert.equal(event.json().billed_in[0].invoice.id, umbrella.id);
      const missing = await app.inject({ method: 'GET', url: '/v1/invoices/NWUS-999999/explain', headers: auth });
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.headers['content-type'], 'application/problem+json; charset=utf-8');
      const zero = await app.inject({ method: 'GET', url: `/v1/invoices/${umbrella.number}/explain?line=0`, headers: auth });
      assert.equal(zero.statusCode, 400);
      const anonymous = await app.inject({ method: 'GET', url: `/v1/invoices/${umbrella.number}/explain` });
      assert.equal(anonymous.statusCode, 401);
    } finally {
      await app.close();
    }
  });

  it('accrue explain invoice --line prints the line down to the events, and --json the same data', () => {
    const umbrella = invoiceOf('umbrella');
    const compute = umbrella.lines.find((l) => l.meter === 'peak_vcpu')!;
    const run = (...args: string[]) =>
      execFileSync(process.execPath, ['bin/accrue.js', '--database-url', store.url, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const text = run('explain', 'invoice', umbrella.number!, '--line', String(compute.line_no));
    assert.match(text, new RegExp(`Line ${compute.line_no} +usage`));
    assert.match(text, /sample +\/\/explain-test u-cpu-/);
    assert.match(text, /correlation +corr:v1:[0-9a-f]{24}/);
    const json = JSON.parse(run('--json', 'explain', 'event', '--source', SOURCE, '--id', 'u-cpu-1'));
    assert.equal(json.status, 'billed');
    assert.match(run('explain', '--help'), /invoice.*\n.*journal.*\n.*event/s);
  });
});
