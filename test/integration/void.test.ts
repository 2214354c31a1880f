// Voiding an invoice keeps history right: a reversing journal per journal of the invoice (the receivable nets to
// zero), written with the void, and the ERP told: Xero voids the invoice (POST Invoices/{id}, Status VOIDED, valid
// against Xero's OpenAPI), NetSuite credits it in full (a credit memo transformed from it). Idempotent; a paid invoice
// is refused, naming its payments; the schema refuses a void without reversals and a reversal that does not mirror.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testStore } from '../support/db.js';
import { NetSuiteSimulator } from '../support/netsuite-sim.js';
import { netsuiteTarget } from '../support/netsuite-target.js';
import { northwindXeroSim, xeroTestTarget } from '../support/xero-target.js';
import { xeroSchemaErrors, type XeroSimulator } from '../support/xero-sim.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox, listDeadLetters } from '../../src/post/outbox.js';
import { readJournals } from '../../src/post/journals.js';
import { voidInvoice } from '../../src/post/void.js';
import { applyPayment } from '../../src/settle/payments.js';
import { readAudit } from '../../src/audit/log.js';
import { reconcilePeriod } from '../../src/reconcile/run.js';
import { trialBalance } from '../../src/domain/journal.js';
import { outboxKey, reversalJournalId } from '../../src/domain/keys.js';
import { netsuiteExternalId } from '../../src/connectors/netsuite/client.js';
import { exportJournals } from '../../src/post/plaintext/exports.js';

let store: Store;
let xero: XeroSimulator;
let netsuite: NetSuiteSimulator;
const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//void-test',
  type,
  subject,
  time,
  data,
});
const at = '2026-12-10T09:00:00.000Z';

// November: umbrella (nw-de) and acme (nw-us, draws prepaid credits: an invoice and a drawdown journal), both sent
// to Xero and NetSuite and posted there before anything is voided.
before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  const catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(
    store.pool,
    catalog,
    [
      ev('u1', 'umbrella', 'com.northwind.api.request', '2026-11-02T00:00:00Z', { region: 'eu' }),
      ev('u3', 'umbrella', 'com.northwind.compute.sample', '2026-11-05T00:00:00Z', { vcpu: '10' }),
      ev('a1', 'acme-prod', 'com.northwind.storage.usage', '2026-11-03T00:00:00Z', { gb_hours: '1000000' }),
      ev('a2', 'acme-staging', 'com.northwind.analytics.session', '2026-11-17T00:00:00Z', { user_id: 'x' }),
    ],
    { channel: 'file', now: new Date('2026-12-01T00:00:00Z') },
  );
  await closePeriod(store.pool, catalog, { period: '2026-11', erpTargets: ['netsuite', 'xero'] });
  xero = northwindXeroSim({ perMinute: 10_000, concurrent: 5 });
  await xero.start();
  netsuite = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600 });
  await netsuite.start();
  await drainAll();
});
after(async () => {
  await xero?.stop();
  await netsuite?.stop();
  await store.close();
});

const nsTarget = () => netsuiteTarget(netsuite.url, { subsidiaries: { 'nw-us': '1', 'nw-de': '2' } });
async function drainAll() {
  await drainOutbox(store.pool, xeroTestTarget(xero), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
  await drainOutbox(store.pool, nsTarget(), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
}

async function invoiceOf(customer: string) {
  return (
    await store.pool.query<{ id: string; number: string; legal_entity: string; total_minor: string }>(
      "SELECT id, number, legal_entity, total_minor::text FROM invoices WHERE customer = $1 AND kind = 'invoice' AND status <> 'draft' ORDER BY number",
      [customer],
    )
  ).rows[0]!;
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  return (await store.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${sql}) x`, params)).rows[0]!.n;
}

describe('voiding reverses the journals', () => {
  it('writes a mirror of each journal dated the void date; the invoice nets to zero in the trial balance', async () => {
    const acme = await invoiceOf('acme');
    const outcome = await voidInvoice(store.pool, { invoice: acme.number, reason: 'billed the wrong plan', actor: 'dave', at });
    assert.equal(outcome.already_void, false);
    assert.equal(outcome.invoice.status, 'void');
    assert.deepEqual(
      outcome.reversals.map((r) => [r.id, r.reverses, r.posting_date]),
      [
        [reversalJournalId('credit_drawdown', acme.id), `jrn:v1:credit_drawdown:${acme.id}`, '2026-12-10'],
        [reversalJournalId('invoice', acme.id), `jrn:v1:invoice:${acme.id}`, '2026-12-10'],
      ],
    );
    const journals = await readJournals(store.pool);
    const ofAcme = journals.filter((j) => j.source_document === acme.id);
    assert.equal(ofAcme.length, 4, 'invoice, drawdown and a reversal of each');
    for (const row of trialBalance(ofAcme)) assert.equal(row.balance_minor, 0n, `${row.account} nets to zero`);
    const invoiceJournal = ofAcme.find((j) => j.kind === 'invoice')!;
    const reversal = ofAcme.find((j) => j.kind === 'invoice_reversal')!;
    const receivable = invoiceJournal.lines.find((l) => l.customer !== undefined && l.debit_minor > 0n)!;
    assert.equal(receivable.debit_minor.toString(), acme.total_minor, 'the invoice booked its total as receivable');
    assert.equal(
      reversal.lines.find((l) => l.line_no === receivable.line_no)!.credit_minor,
      receivable.debit_minor,
      'and the reversal takes it off',
    );
    // Every journal still balances, and hledger accepts the ledger with the reversals in it.
    const catalog = (await currentCatalog(store.pool))!;
    const dir = mkdtempSync(join(tmpdir(), 'accrue-void-'));
    try {
      const file = join(dir, 'ledger.journal');
      writeFileSync(file, exportJournals('hledger', journals, catalog.catalog));
      execFileSync('hledger', ['-f', file, 'check', '--strict', 'ordereddates'], { encoding: 'utf8' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('queues the void to each ERP the invoice went to: the invoice reversal as a void, the drawdown reversal as a journal', async () => {
    const acme = await invoiceOf('acme');
    const rows = (
      await store.pool.query<{ key: string; document_kind: string; status: string }>(
        'SELECT key, document_kind, status FROM outbox WHERE document_id LIKE $1 ORDER BY key',
        [`jrn:v1:%_reversal:${acme.id}`],
      )
    ).rows;
    assert.deepEqual(
      rows.map((r) => [r.key, r.document_kind, r.status]),
      [
        [outboxKey('netsuite', reversalJournalId('credit_drawdown', acme.id)), 'journal', 'pending'],
        [outboxKey('netsuite', reversalJournalId('invoice', acme.id)), 'invoice_void', 'pending'],
        [outboxKey('xero', reversalJournalId('credit_drawdown', acme.id)), 'journal', 'pending'],
        [outboxKey('xero', reversalJournalId('invoice', acme.id)), 'invoice_void', 'pending'],
      ],
    );
  });

  it('is idempotent: a second void returns the first one and writes nothing', async () => {
    const acme = await invoiceOf('acme');
    const before = await count('SELECT 1 FROM journals');
    const outbox = await count('SELECT 1 FROM outbox');
    const again = await voidInvoice(store.pool, { invoice: acme.id, reason: 'again', actor: 'erin', at: '2026-12-20T00:00:00Z' });
    assert.equal(again.already_void, true);
    assert.deepEqual(
      again.reversals.map((r) => r.posting_date),
      ['2026-12-10', '2026-12-10'],
    );
    assert.equal(await count('SELECT 1 FROM journals'), before);
    assert.equal(await count('SELECT 1 FROM outbox'), outbox);
    const audits = await readAudit(store.pool, { action: 'invoice.void', subject: acme.id });
    assert.equal(audits.length, 1);
    assert.equal(audits[0]!.actor, 'dave');
    assert.equal((audits[0]!.details as { reason: string }).reason, 'billed the wrong plan');
  });
});

describe('the ERPs hear of the void', () => {
  it('Xero: POST Invoices/{InvoiceID} with Status VOIDED, valid against the spec; the invoice is VOIDED; drawdown reversed by manual journal', async () => {
    const acme = await invoiceOf('acme');
    const journalsBefore = xero.journals.length;
    await drainOutbox(store.pool, xeroTestTarget(xero), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
    const invoice = xero.invoices.find((d) => d.Number === acme.number)!;
    assert.equal(invoice.Status, 'VOIDED');
    const voids = xero.tenant('tenant').writes.filter((w) => w.path === `/api.xro/2.0/Invoices/${invoice.id}`);
    assert.equal(voids.length, 1, 'one void request');
    assert.deepEqual(JSON.parse(voids[0]!.body), { Invoices: [{ InvoiceID: invoice.id, Status: 'VOIDED' }] });
    assert.deepEqual(xeroSchemaErrors('Invoices', JSON.parse(voids[0]!.body)), []);
    assert.equal(xero.journals.length, journalsBefore + 1, 'the drawdown reversal as a manual journal');
    const row = (
      await store.pool.query<{ status: string; target_reference: string }>('SELECT status, target_reference FROM outbox WHERE key = $1', [
        outboxKey('xero', reversalJournalId('invoice', acme.id)),
      ])
    ).rows[0]!;
    assert.deepEqual(row, { status: 'posted', target_reference: invoice.id });
    assert.deepEqual(await listDeadLetters(store.pool, 'xero'), []);
  });

  it('NetSuite: a credit memo transformed from the invoice, under our key, applied to the whole invoice', async () => {
    const acme = await invoiceOf('acme');
    await drainOutbox(store.pool, nsTarget(), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
    const invoice = netsuite.sales('invoice').find((r) => r.body.tranId === acme.number)!;
    const key = outboxKey('netsuite', reversalJournalId('invoice', acme.id));
    const memo = netsuite.records.get(netsuiteExternalId(key))!;
    assert.equal(memo.type, 'creditMemo');
    assert.ok(
      netsuite.seen.some((s) => s.method === 'POST' && s.url === `/services/rest/record/v1/invoice/${invoice.id}/!transform/creditMemo`),
    );
    assert.equal(netsuite.amountRemaining(invoice.id).toFixed(), '0', 'nothing left to collect in NetSuite');
    assert.deepEqual(await listDeadLetters(store.pool, 'netsuite'), []);
  });

  it('the NetSuite simulator refuses a bad transform: an unknown invoice, an unsupported pair, a taken external ID', async () => {
    const post = (path: string, body: unknown) =>
      fetch(`${netsuite.url}/services/rest/record/v1/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${netsuite.issueBearer()}` },
        body: JSON.stringify(body),
      });
    const invoice = netsuite.sales('invoice')[0]!;
    const unknown = await post('invoice/999999/!transform/creditMemo', { externalId: 'x-1' });
    assert.equal(unknown.status, 404);
    const pair = await post(`invoice/${invoice.id}/!transform/journalEntry`, { externalId: 'x-2' });
    assert.equal(pair.status, 400);
    assert.match(JSON.stringify(await pair.json()), /not supported/);
    const taken = await post(`invoice/${invoice.id}/!transform/creditMemo`, { externalId: [...netsuite.records.keys()][0] });
    assert.equal(taken.status, 400);
    assert.match(JSON.stringify(await taken.json()), /DUP_RCRD/);
  });
});

describe('reconciliation holds the void', () => {
  it('November keeps the invoice, December holds its reversal: the ledger and trial balance agree with the documents', async () => {
    for (const period of ['2026-11', '2026-12']) {
      const report = await reconcilePeriod(store.pool, { period, legalEntity: 'nw-us', connectors: [], actor: 'system:test' });
      const red = report.checkpoints.filter((c) => c.status === 'red');
      assert.deepEqual(
        red.map((c) => [c.checkpoint, c.differences]),
        [],
        `${period}: ${JSON.stringify(red, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`,
      );
    }
  });
});

describe('what cannot be voided', () => {
  it('a paid invoice is refused with 409 naming its payments; nothing is written', async () => {
    const umbrella = await invoiceOf('umbrella');
    const catalog = (await currentCatalog(store.pool))!;
    const paid = await applyPayment(
      store.pool,
      catalog,
      { id: 'pay-void-1', invoice: umbrella.id, amount: '1.00', currency: 'EUR', received_on: '2026-12-05', amount_minor: 100n },
      'erp',
    );
    assert.equal(paid.status, 'applied');
    const journals = await count('SELECT 1 FROM journals');
    await assert.rejects(
      voidInvoice(store.pool, { invoice: umbrella.number, entity: 'nw-de', reason: 'x', actor: 'dave', at }),
      (error: Error & { status?: number; problems?: Array<{ code: string }> }) =>
        error.status === 409 && error.problems?.[0]?.code === 'paid' && /pay-void-1/.test(error.message),
    );
    assert.equal(await count('SELECT 1 FROM journals'), journals);
    assert.equal((await store.pool.query('SELECT status FROM invoices WHERE id = $1', [umbrella.id])).rows[0].status, 'finalized');
  });

  it('bad requests are 400s naming the field', async () => {
    await assert.rejects(
      voidInvoice(store.pool, { invoice: 'x', reason: ' ', actor: '', at: 'yesterday' }),
      (error: Error & { status?: number; problems?: Array<{ path: string }> }) => {
        assert.equal(error.status, 400);
        assert.deepEqual(
          error.problems?.map((p) => p.path),
          ['reason', 'actor', 'at'],
        );
        return true;
      },
    );
    await assert.rejects(voidInvoice(store.pool, { invoice: 'NWUS-999999', reason: 'r', actor: 'a', at }), /no invoice/);
  });
});

describe('the schema guards the void', () => {
  it('refuses voiding an invoice with journals but no reversal, and a reversal that does not mirror its journal', async () => {
    const others = (
      await store.pool.query<{ id: string }>(
        "SELECT i.id FROM invoices i WHERE i.status = 'finalized' AND i.amount_paid_minor = 0 AND EXISTS (SELECT 1 FROM journals j WHERE j.source_document = i.id) ORDER BY i.id LIMIT 1",
      )
    ).rows;
    const id = others[0]!.id;
    await assert.rejects(store.pool.query("UPDATE invoices SET status = 'void' WHERE id = $1", [id]), /has no reversal/);
    const client = await store.pool.connect();
    try {
      await client.query('BEGIN');
      const original = `jrn:v1:invoice:${id}`;
      const lines = (await client.query('SELECT * FROM journal_lines WHERE journal_id = $1 ORDER BY line_no', [original])).rows;
      const head = (await client.query('SELECT legal_entity, posting_date FROM journals WHERE id = $1', [original])).rows[0];
      await client.query(
        `INSERT INTO journals (id, kind, legal_entity, posting_date, source_document, memo, content_hash, reverses)
         VALUES ($1, 'invoice_reversal', $2, $3, $4, 'tampered', 'x', $5)`,
        [reversalJournalId('invoice', id), head.legal_entity, head.posting_date, id, original],
      );
      // Swapped, but one line moved to another account: balanced, yet not the mirror.
      for (const [i, l] of lines.entries())
        await client.query(
          'INSERT INTO journal_lines (journal_id, line_no, account, debit_minor, credit_minor, currency, customer, product) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
          [
            reversalJournalId('invoice', id),
            l.line_no,
            i === 0 ? '9999' : l.account,
            l.credit_minor,
            l.debit_minor,
            l.currency,
            l.customer,
            l.product,
          ],
        );
      await assert.rejects(client.query('COMMIT'), /does not mirror/);
    } finally {
      client.release();
    }
  });
});

describe('a void in a closed accounting period, and an ERP that refuses it', () => {
  it('dates the reversal in the first open period; Xero refuses to void an invoice paid there: a dead letter saying so', async () => {
    const row = (
      await store.pool.query<{ id: string; number: string; legal_entity: string }>(
        "SELECT id, number, legal_entity FROM invoices WHERE status = 'finalized' AND kind = 'invoice' AND amount_paid_minor = 0 AND legal_entity = 'nw-us' ORDER BY number LIMIT 1",
      )
    ).rows[0]!;
    await store.pool.query(
      "INSERT INTO accounting_periods (legal_entity, period, status, closed_at, closed_by) VALUES ($1, '2026-12', 'closed', now(), 'test'), ($1, '2027-01', 'closed', now(), 'test')",
      [row.legal_entity],
    );
    const outcome = await voidInvoice(store.pool, { invoice: row.number, entity: 'nw-us', reason: 'duplicate', actor: 'dave', at });
    assert.deepEqual(
      outcome.reversals.map((r) => [r.posting_date, r.dated_on]),
      outcome.reversals.map(() => ['2027-02-01', '2026-12-10']),
      'the void date is in a closed period, and so is the next: the first open one takes it',
    );
    const policy = await store.pool.query(
      'SELECT DISTINCT posting_policy FROM journals WHERE reverses IS NOT NULL AND source_document = $1',
      [row.id],
    );
    assert.deepEqual(policy.rows, [{ posting_policy: 'next_open_period' }]);
    // Xero has a payment on the invoice Accrue does not know of yet: Xero would refuse the void; the row dead-letters.
    xero.invoices.find((d) => d.Number === row.number)!.AmountPaid = '1.00';
    await drainOutbox(store.pool, xeroTestTarget(xero), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
    const dead = await listDeadLetters(store.pool, 'xero');
    assert.equal(dead.length, 1);
    assert.equal(dead[0].key, outboxKey('xero', reversalJournalId('invoice', row.id)));
    assert.equal(dead[0].last_error.code, 'void_invoice_paid');
    assert.match(dead[0].last_error.message, /credit note/);
    const held = xero.invoices.find((d) => d.Number === row.number)!;
    assert.notEqual(held.Status, 'VOIDED');
    // Sent anyway, the simulator refuses it as Xero does.
    const res = await fetch(`${xero.url}/api.xro/2.0/Invoices/${held.id}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${xero.issueToken(['tenant'])}`, 'xero-tenant-id': 'tenant', 'content-type': 'application/json' },
      body: JSON.stringify({ Invoices: [{ InvoiceID: held.id, Status: 'VOIDED' }] }),
    });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /payments or credit notes allocated/);
  });
});

describe('an invoice voided before voids reversed', () => {
  it('gets its reversals on the next void, once', async () => {
    const row = (
      await store.pool.query<{ id: string }>(
        "SELECT i.id FROM invoices i WHERE i.status = 'finalized' AND i.kind = 'invoice' AND i.amount_paid_minor = 0 AND EXISTS (SELECT 1 FROM journals j WHERE j.source_document = i.id) ORDER BY i.id LIMIT 1",
      )
    ).rows[0]!;
    // What the old void left: the status moved, no reversal (the triggers of migration 028 did not exist then).
    const client = await store.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("SET LOCAL session_replication_role = 'replica'");
      await client.query("UPDATE invoices SET status = 'void', voided_at = now() WHERE id = $1", [row.id]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const first = await voidInvoice(store.pool, {
      invoice: row.id,
      reason: 'reverse the old void',
      actor: 'dave',
      at: '2026-12-11T00:00:00Z',
    });
    assert.equal(first.already_void, true);
    assert.ok(first.reversals.length >= 1);
    assert.equal(first.outbox.length, first.reversals.length * 2, 'to Xero and NetSuite');
    const journals = await count('SELECT 1 FROM journals');
    const again = await voidInvoice(store.pool, { invoice: row.id, reason: 'again', actor: 'dave', at: '2026-12-12T00:00:00Z' });
    assert.deepEqual(again.reversals, first.reversals);
    assert.equal(await count('SELECT 1 FROM journals'), journals);
    assert.equal((await readAudit(store.pool, { action: 'invoice.void_reversed', subject: row.id })).length, 1);
  });
});
