import type pg from 'pg';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { voidInvoice as voidUseCase } from '../../src/post/void.js';

const voidInvoice = async (pool: pg.Pool, invoice: string) =>
  (await voidUseCase(pool, { invoice, reason: 'billed in error', actor: 'system:test', at: new Date().toISOString() })).invoice;

const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
let store: Store;
let catalog: CatalogVersion;

const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//billing-test',
  type,
  subject,
  time,
  data,
});

// A small month: umbrella's api calls straddle nothing (per_unit), acme's straddle the 2026-11-16 price change.
const EVENTS = [
  ev('u1', 'umbrella', 'com.northwind.api.request', '2026-11-02T00:00:00Z', { region: 'eu' }),
  ev('u2', 'umbrella', 'com.northwind.api.request', '2026-11-20T00:00:00Z', { region: 'eu' }),
  ev('u3', 'umbrella', 'com.northwind.compute.sample', '2026-11-05T00:00:00Z', { vcpu: '10' }),
  ev('a1', 'acme-prod', 'com.northwind.storage.usage', '2026-11-03T00:00:00Z', { gb_hours: '1000000' }),
  ev('a2', 'acme-staging', 'com.northwind.analytics.session', '2026-11-17T00:00:00Z', { user_id: 'x' }),
];

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, NORTHWIND, { by: 'test' });
  assert.ok(applied.ok);
  catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(store.pool, catalog, EVENTS, { channel: 'file', now: new Date('2026-12-01T00:00:00Z') });
});
after(() => store.close());

describe('billing run', () => {
  it('finalizes one invoice per customer with gapless numbers per legal entity', async () => {
    const outcome = await closePeriod(store.pool, catalog, { period: '2026-11' });
    assert.deepEqual(
      outcome.invoices.map((i) => [i.customer, i.number, i.status]),
      [
        ['acme', 'NWUS-000001', 'finalized'],
        ['globex', 'NWUS-000002', 'finalized'],
        ['initech', 'NWUS-000003', 'finalized'],
        ['umbrella', 'NWDE-000001', 'finalized'],
      ],
    );
    const umbrella = outcome.invoices[3]!;
    // 2 calls → 1 package × 0.30; compute 40.00 + 2 × 6.50 = 53.00; platform 249.00; 10% of 0.30 = 0.03
    assert.equal(umbrella.subtotal_minor, 24900n + 30n + 5300n);
    assert.equal(umbrella.discount_minor, 3n);
    const acme = outcome.invoices[0]!;
    assert.equal(acme.credits_applied_minor, 16200n); // storage 137.00 + analytics 25.00, all covered by the 200.00 grant
    const drawn = await store.pool.query("SELECT amount_minor::text FROM credit_drawdowns WHERE grant_id = 'acme:2026-11-01:0'");
    assert.deepEqual(drawn.rows, [{ amount_minor: '16200' }]);
  });

  it('re-running the period returns the same invoices, byte for byte, and takes no new number', async () => {
    const first = await store.pool.query('SELECT id, number, document FROM invoices ORDER BY id');
    const again = await closePeriod(store.pool, catalog, { period: '2026-11' });
    const second = await store.pool.query('SELECT id, number, document FROM invoices ORDER BY id');
    assert.deepEqual(second.rows, first.rows);
    assert.equal(again.invoices.length, 4);
    const seq = await store.pool.query("SELECT last_number::int AS n FROM invoice_number_sequences WHERE legal_entity = 'nw-us'");
    assert.equal(seq.rows[0].n, 3);
  });

  it('keeps finalized invoices immutable in the database itself', async () => {
    await assert.rejects(
      store.pool.query("UPDATE invoices SET total_minor = 1 WHERE number = 'NWUS-000001'"),
      /finalized|check constraint/,
    );
    await assert.rejects(store.pool.query("UPDATE invoices SET document = '{}' WHERE number = 'NWUS-000001'"), /finalized/);
    await assert.rejects(store.pool.query("DELETE FROM invoices WHERE number = 'NWUS-000001'"), /cannot be deleted/);
    await assert.rejects(store.pool.query('UPDATE invoice_lines SET amount_minor = 0 WHERE line_no = 1'), /cannot change/);
  });

  it('flags usage arriving after the close as late instead of changing a final total', async () => {
    const outcome = await ingestBatch(
      store.pool,
      catalog,
      [ev('late-1', 'umbrella', 'com.northwind.api.request', '2026-11-25T00:00:00Z', {})],
      { channel: 'http', now: new Date('2026-12-02T00:00:00Z') },
    );
    assert.equal(outcome.results[0]!.status, 'accepted');
    const row = await store.pool.query("SELECT late FROM events WHERE id = 'late-1'");
    assert.equal(row.rows[0].late, true);
    const before = (await store.pool.query("SELECT document FROM invoices WHERE number = 'NWDE-000001'")).rows[0].document;
    await closePeriod(store.pool, catalog, { period: '2026-11' });
    const afterRerun = (await store.pool.query("SELECT document FROM invoices WHERE number = 'NWDE-000001'")).rows[0].document;
    assert.deepEqual(afterRerun, before);
  });
});

describe('late usage is billed in the next run', () => {
  it('re-rates the closed period: a credit note and a replacement where amounts change, nothing where they do not', async () => {
    await ingestBatch(
      store.pool,
      catalog,
      [ev('late-2', 'acme-prod', 'com.northwind.storage.usage', '2026-11-20T00:00:00Z', { gb_hours: '1000' })],
      { channel: 'http', now: new Date('2026-12-02T00:00:00Z') },
    );
    const december = await closePeriod(store.pool, catalog, {
      period: '2026-12',
      now: new Date('2027-01-02T00:00:00Z') /* December has ended */,
    });
    assert.equal(december.invoices.length, 4);
    assert.equal(december.corrections.length, 2);
    const acme = december.corrections.find((c) => c.customer === 'acme')!;
    assert.equal(acme.corrected.number, 'NWUS-000001');
    assert.equal(acme.credit_note?.number, 'NWUS-CN-000001');
    assert.equal(acme.credit_note?.total_minor, acme.corrected.total_minor);
    assert.equal(acme.replacement?.number, 'NWUS-000007'); // November took 1-3, December's three invoices 4-6
    const storage = acme.replacement!.lines.find((l) => l.product === 'storage' && l.kind === 'usage')!;
    assert.equal(storage.quantity, '1001000'); // the late 1,000 GB-hours now counted
    assert.equal(storage.amount_minor, 13714n); // 1,001,000 × 0.000137 = 137.137 → 137.14
    // Issued by December's run (dated 2027-01-01): the credit note is not due, the replacement is due acme's 45 days later;
    // both name the parties the corrected invoice was issued to.
    assert.deepEqual([acme.corrected.issue_date, acme.corrected.due_date], ['2026-12-01', '2027-01-15']);
    assert.deepEqual(
      [acme.credit_note?.issue_date, acme.credit_note?.payment_terms_days, acme.credit_note?.due_date],
      ['2027-01-01', null, null],
    );
    assert.deepEqual(
      [acme.replacement?.issue_date, acme.replacement?.payment_terms_days, acme.replacement?.due_date],
      ['2027-01-01', 45, '2027-02-15'],
    );
    assert.deepEqual([acme.credit_note?.buyer, acme.replacement?.seller], [acme.corrected.buyer, acme.corrected.seller]);
    const umbrella = december.corrections.find((c) => c.customer === 'umbrella')!;
    assert.equal(umbrella.credit_note, null); // 3 calls still fit one package of 1,000: nothing to correct
    const again = await closePeriod(store.pool, catalog, {
      period: '2026-12',
      now: new Date('2027-01-02T00:00:00Z') /* December has ended */,
    });
    assert.equal(again.corrections.length, 0);
  });
});

describe('the built-in ledger', () => {
  it('holds a balanced journal per finalized invoice and refuses unbalanced or edited ones', async () => {
    const balance = await store.pool.query(
      'SELECT currency, sum(debit_minor)::text AS d, sum(credit_minor)::text AS c FROM journal_lines GROUP BY currency ORDER BY currency',
    );
    for (const row of balance.rows) assert.equal(row.d, row.c);
    const client = await store.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        "INSERT INTO journals (id, kind, legal_entity, posting_date, source_document, memo, content_hash) VALUES ('jrn:test', 'payment', 'nw-us', '2026-11-30', 'x', 'x', 'x')",
      );
      await client.query(
        "INSERT INTO journal_lines (journal_id, line_no, account, debit_minor, credit_minor, currency) VALUES ('jrn:test', 1, '1000', 100, 0, 'USD'), ('jrn:test', 2, '1200', 0, 99, 'USD')",
      );
      await assert.rejects(client.query('COMMIT'), /does not balance/);
    } finally {
      client.release();
    }
    await assert.rejects(store.pool.query('UPDATE journal_lines SET debit_minor = debit_minor + 1 WHERE line_no = 1'), /append-only/);
    const invoicesWithoutJournal = await store.pool.query(
      "SELECT i.number FROM invoices i WHERE i.status <> 'draft' AND NOT EXISTS (SELECT 1 FROM journals j WHERE j.source_document = i.id)",
    );
    assert.deepEqual(invoicesWithoutJournal.rows, []);
  });
});

describe('voiding', () => {
  it('voids a finalized unpaid invoice once; a void invoice never changes again', async () => {
    const voided = await voidInvoice(store.pool, 'NWUS-000002');
    assert.equal(voided.status, 'void');
    assert.equal((await voidInvoice(store.pool, 'NWUS-000002')).status, 'void');
    await assert.rejects(store.pool.query("UPDATE invoices SET status = 'finalized' WHERE number = 'NWUS-000002'"), /void/);
    await assert.rejects(voidInvoice(store.pool, 'NWUS-999999'), /no invoice/);
  });
});

describe('accrue bill', () => {
  it('writes invoices.json with decimal strings, byte-identical across runs', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'accrue-bill-test-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const events = join(dir, 'events.ndjson');
    writeFileSync(events, `${EVENTS.map((e) => JSON.stringify(e)).join('\n')}\n{broken\n`);
    const run = (out: string) =>
      execFileSync(
        process.execPath,
        ['bin/accrue.js', 'bill', '--catalog', 'examples/northwind/catalog.yaml', '--events', events, '--period', '2026-11', '--out', out],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
    run(join(dir, 'a'));
    run(join(dir, 'b'));
    const a = readFileSync(join(dir, 'a', 'invoices.json'), 'utf8');
    assert.equal(readFileSync(join(dir, 'b', 'invoices.json'), 'utf8'), a);
    const invoices = JSON.parse(a) as Array<Record<string, unknown>>;
    assert.equal(invoices.length, 4);
    const umbrella = invoices.find((i) => i.customer === 'umbrella')!;
    assert.deepEqual(
      {
        number: umbrella.number,
        status: umbrella.status,
        currency: umbrella.currency,
        period_start: umbrella.period_start,
        period_end: umbrella.period_end,
        subtotal: umbrella.subtotal,
        discount: umbrella.discount,
        credits_applied: umbrella.credits_applied,
        tax: umbrella.tax,
        total: umbrella.total,
        rounding: umbrella.rounding,
      },
      // subtotal 302.30; taxable 302.27 × 0.19 = 57.4313 → 57.43; total 359.70
      {
        number: 'NWDE-000001',
        status: 'finalized',
        currency: 'EUR',
        period_start: '2026-11-01',
        period_end: '2026-11-30',
        subtotal: '302.30',
        discount: '0.03',
        credits_applied: '0.00',
        tax: '57.43',
        total: '359.70',
        rounding: 'half_up',
      },
    );
    assert.equal(readFileSync(join(dir, 'b', 'journals.json'), 'utf8'), readFileSync(join(dir, 'a', 'journals.json'), 'utf8'));
    assert.equal(readFileSync(join(dir, 'b', 'ledger.journal'), 'utf8'), readFileSync(join(dir, 'a', 'ledger.journal'), 'utf8'));
    const journals = JSON.parse(readFileSync(join(dir, 'a', 'journals.json'), 'utf8')) as Array<{
      legal_entity: string;
      source_document: string;
      lines: Array<{ account: string; debit: string; credit: string; customer?: string }>;
    }>;
    const umbrellaJournal = journals.find((j) => j.source_document === 'NWDE-000001')!;
    assert.deepEqual(
      umbrellaJournal.lines.find((l) => l.account === '1400'),
      { account: '1400', debit: '359.70', credit: '0.00', currency: 'EUR', customer: 'D-20011' },
    );
    try {
      execFileSync('hledger', ['-f', join(dir, 'a', 'ledger.journal'), 'check'], { encoding: 'utf8' });
    } catch (error) {
      throw new Error(`hledger (Debian package hledger) must accept ledger.journal: ${(error as Error).message}`, { cause: error });
    }
    const line = (umbrella.lines as Array<Record<string, unknown>>)[1]!;
    // The package line reads in packages: 2 calls → 1 package of 1000 × 0.30 = 0.30.
    assert.deepEqual(Object.keys(line), ['product', 'meter', 'description', 'quantity', 'unit', 'usage_quantity', 'unit_price', 'amount']);
    assert.deepEqual(
      [line.quantity, line.unit, line.usage_quantity, line.unit_price, line.amount],
      ['1', 'package of 1000', '2', '0.30', '0.30'],
    );
    // Legal content: seller and buyer with addresses and VAT ids, issued the day after the period, due 14 days later.
    assert.deepEqual(
      {
        seller: umbrella.seller,
        buyer: umbrella.buyer,
        issue_date: umbrella.issue_date,
        payment_terms_days: umbrella.payment_terms_days,
        due_date: umbrella.due_date,
      },
      {
        seller: {
          name: 'Northwind Cloud GmbH',
          address: { lines: ['Friedrichstraße 68'], city: 'Berlin', postal_code: '10117', country: 'DE' },
          tax_id: 'DE123456789',
        },
        buyer: {
          name: 'Umbrella GmbH',
          address: { lines: ['Umbrellastraße 1'], city: 'München', postal_code: '80331', country: 'DE' },
          tax_id: 'DE987654321',
        },
        issue_date: '2026-12-01',
        payment_terms_days: 14,
        due_date: '2026-12-15',
      },
    );
    assert.deepEqual(
      Object.keys((umbrella.seller as { address: object }).address),
      ['lines', 'city', 'postal_code', 'country'],
      'address keys in print order',
    );
    // Acme's own 45 days override nw-us's 30; initech has no address in the catalog: null, not invented.
    const acme = invoices.find((i) => i.customer === 'acme')!;
    assert.deepEqual([acme.payment_terms_days, acme.due_date], [45, '2027-01-15']);
    const initech = invoices.find((i) => i.customer === 'initech')!;
    assert.deepEqual(
      [initech.payment_terms_days, initech.due_date, initech.buyer],
      [30, '2026-12-31', { name: 'Initech Ltd', address: null, tax_id: null }],
    );
  });
});
