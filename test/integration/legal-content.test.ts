// An invoice's legal content (seller and buyer with addresses and tax ids, issue and due date) is recorded when it is
// drafted and stays as issued: a later catalog change moves neither the stored document, its JSON, nor its PDF.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, catalogVersion, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { getInvoice, invoiceContentHash, withoutLegalContent, fromDocument } from '../../src/invoice/store.js';
import { toJsonValue } from '../../src/domain/canonical.js';
import { exportInvoice } from '../../src/invoice/export.js';
import { buildServer } from '../../src/api/server.js';
import { testKey } from '../support/keys.js';

const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
let store: Store;
let app: FastifyInstance;
let reader: string;

const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//legal-test',
  type,
  subject,
  time,
  data,
});

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, NORTHWIND, { by: 'test' })).ok);
  const catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(store.pool, catalog, [ev('u1', 'umbrella', 'com.northwind.api.request', '2026-11-02T00:00:00Z', { region: 'eu' })], {
    channel: 'file',
    now: new Date('2026-12-01T00:00:00Z'),
  });
  await closePeriod(store.pool, catalog, { period: '2026-11' });
  app = await buildServer({ pool: store.pool });
  reader = (await testKey(store.pool, { name: 'read', roles: ['auditor'] })).secret;
});
after(async () => {
  await app?.close();
  await store?.close();
});

const pdfOf = async (number: string) => {
  const res = await app.inject({ method: 'GET', url: `/v1/invoices/${number}/pdf`, headers: { authorization: `Bearer ${reader}` } });
  assert.equal(res.statusCode, 200);
  return res.rawPayload;
};

describe('legal content of an issued invoice', () => {
  it('is stored with the invoice: the issue and due date columns agree with the document', async () => {
    const rows = (
      await store.pool.query<{
        number: string;
        kind: string;
        issue_date: string;
        due_date: string | null;
        doc_issue: string;
        doc_due: string | null;
      }>(
        `SELECT number, kind, to_char(issue_date, 'YYYY-MM-DD') AS issue_date, to_char(due_date, 'YYYY-MM-DD') AS due_date,
              document->>'issue_date' AS doc_issue, document->>'due_date' AS doc_due
         FROM invoices ORDER BY number`,
      )
    ).rows;
    assert.deepEqual(
      rows.map((r) => [r.number, r.issue_date, r.due_date]),
      [
        ['NWDE-000001', '2026-12-01', '2026-12-15'], // nw-de: 14 days
        ['NWUS-000001', '2026-12-01', '2027-01-15'], // acme: its own 45 days
        ['NWUS-000002', '2026-12-01', '2026-12-31'], // globex: nw-us's 30
        ['NWUS-000003', '2026-12-01', '2026-12-31'],
      ],
    );
    for (const r of rows) assert.deepEqual([r.doc_issue, r.doc_due], [r.issue_date, r.due_date]);
  });

  it('does not change when the catalog later changes the addresses, tax ids and payment terms', async () => {
    const before = await getInvoice(store.pool, 'NWDE-000001');
    const pdfBefore = await pdfOf('NWDE-000001');
    const jsonBefore = JSON.stringify(exportInvoice(before!));
    assert.ok(pdfBefore.toString('latin1').length > 0);

    const moved = NORTHWIND.replace('lines: ["Umbrellastraße 1"]', 'lines: ["Neue Straße 99"]')
      .replace('tax_id: "DE987654321"', 'tax_id: "DE000000001"')
      .replace('lines: ["Friedrichstraße 68"]', 'lines: ["Unter den Linden 1"]')
      .replace('payment_terms_days: 14', 'payment_terms_days: 60');
    assert.notEqual(moved, NORTHWIND);
    const applied = await applyCatalog(store.pool, moved, { by: 'test' });
    assert.ok(applied.ok);
    const catalog = (await currentCatalog(store.pool))!;
    assert.deepEqual(catalog.index.customers.get('umbrella')!.billing_address!.lines, ['Neue Straße 99']);

    const after = await getInvoice(store.pool, 'NWDE-000001');
    assert.deepEqual(after, before);
    assert.equal(JSON.stringify(exportInvoice(after!)), jsonBefore);
    assert.deepEqual(after!.buyer, {
      name: 'Umbrella GmbH',
      address: { lines: ['Umbrellastraße 1'], city: 'München', postal_code: '80331', country: 'DE' },
      tax_id: 'DE987654321',
    });
    assert.deepEqual(
      [after!.due_date, after!.payment_terms_days, after!.seller!.address!.lines],
      ['2026-12-15', 14, ['Friedrichstraße 68']],
    );
    assert.ok((await pdfOf('NWDE-000001')).equals(pdfBefore), 'the PDF of the issued invoice is byte-identical after the catalog change');
    const json = await app.inject({ method: 'GET', url: '/v1/invoices/NWDE-000001', headers: { authorization: `Bearer ${reader}` } });
    assert.deepEqual(
      (({ issue_date, due_date, payment_terms_days, seller, buyer }) => ({ issue_date, due_date, payment_terms_days, seller, buyer }))(
        json.json(),
      ),
      { issue_date: '2026-12-01', due_date: '2026-12-15', payment_terms_days: 14, seller: before!.seller, buyer: before!.buyer },
    );
  });
});

describe('an invoice finalized before invoices carried legal content', () => {
  it('is found unchanged when its period is run again: no conflict, no new number, the stored document returned', async () => {
    // Make NWUS-000002 (globex) look as it was stored before: no legal fields, the package-less content hash, no dates.
    const row = (
      await store.pool.query<{ id: string; document: unknown }>("SELECT id, document FROM invoices WHERE number = 'NWUS-000002'")
    ).rows[0]!;
    const legacy = withoutLegalContent(fromDocument(row.document));
    await store.pool.query('ALTER TABLE invoices DISABLE TRIGGER USER');
    try {
      await store.pool.query('UPDATE invoices SET document = $2, content_hash = $3, issue_date = NULL, due_date = NULL WHERE id = $1', [
        row.id,
        JSON.stringify(toJsonValue(legacy)),
        invoiceContentHash(legacy),
      ]);
    } finally {
      await store.pool.query('ALTER TABLE invoices ENABLE TRIGGER USER');
    }
    const catalog = (await catalogVersion(store.pool, 1))!; // the version November was billed with
    const again = await closePeriod(store.pool, catalog, { period: '2026-11' });
    const globex = again.invoices.find((i) => i.customer === 'globex')!;
    assert.equal(globex.number, 'NWUS-000002');
    assert.equal(globex.issue_date, undefined, 'the stored document, as it was issued');
    assert.equal((await store.pool.query("SELECT count(*)::int AS n FROM invoices WHERE customer = 'globex'")).rows[0].n, 1);
  });
});
