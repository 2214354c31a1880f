// Reconciliation of a real small month: billed, posted to the built-in ledger, NetSuite and Xero (simulators), paid.
// Clean first; then one mismatch of each kind is seeded and each must be found, named by its checkpoint, opened once,
// and must hold the period close until it is resolved or waived; every move is in the history and the audit log.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import { NetSuiteSimulator, type SalesRecord } from '../support/netsuite-sim.js';
import { Decimal } from '../../src/domain/money.js';
import type { XeroSimulator } from '../support/xero-sim.js';
import { northwindXeroSim, xeroTestTarget } from '../support/xero-target.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox } from '../../src/post/outbox.js';
import { outboxKey } from '../../src/post/journals.js';
import { netsuiteExternalId } from '../../src/connectors/netsuite/client.js';
import { netsuiteTarget as netsuiteTargetFor } from '../support/netsuite-target.js';
import { applyPayment, validatePayment } from '../../src/settle/payments.js';
import { reconcilePeriod, type CheckpointReport, type ReconcileReport } from '../../src/reconcile/run.js';
import { assignException, getException, listExceptions, resolveException, waiveException } from '../../src/reconcile/exceptions.js';
import { closeAccountingPeriod } from '../../src/reconcile/period-close.js';
import { buildServer } from '../../src/api/server.js';
import { testKey, OPERATOR_AUDITOR } from '../support/keys.js';
import { readAudit, verifyAudit } from '../../src/audit/log.js';

const PERIOD = '2026-11';
const ENTITY = 'nw-us';
let store: Store;
let catalog: CatalogVersion;
let netsuite: NetSuiteSimulator;
let xero: XeroSimulator;

const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//reconcile-test',
  type,
  subject,
  time,
  data,
});
const EVENTS = [
  ev('u1', 'umbrella', 'com.northwind.api.request', '2026-11-02T00:00:00Z', { region: 'eu' }),
  ev('u3', 'umbrella', 'com.northwind.compute.sample', '2026-11-05T00:00:00Z', { vcpu: '10' }),
  ev('a1', 'acme-prod', 'com.northwind.storage.usage', '2026-11-03T00:00:00Z', { gb_hours: '1000000' }),
  ev('a2', 'acme-prod', 'com.northwind.storage.usage', '2026-11-04T00:00:00Z', { gb_hours: '250000' }),
  ev('a3', 'acme-staging', 'com.northwind.analytics.session', '2026-11-17T00:00:00Z', { user_id: 'x' }),
  ev('g1', 'globex', 'com.northwind.api.request', '2026-11-10T00:00:00Z', { region: 'us' }),
];

const netsuiteTarget = () =>
  netsuiteTargetFor(netsuite.url, {
    subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
    timeoutMs: 2000,
    limits: { concurrency: 2, requestsPerMinute: 60_000 },
  });
// One Xero organisation in the simulator holds both entities' journals: reconciliation must leave the other entity's alone.
const xeroTarget = () => xeroTestTarget(xero, { timeoutMs: 2000 });
const connectors = () => [netsuiteTarget(), xeroTarget()];

async function pay(id: string, invoice: string, amount: string, receivedOn = '2026-11-30') {
  const input = validatePayment({ id, invoice, amount, currency: 'USD', received_on: receivedOn });
  assert.ok(input.ok);
  return applyPayment(store.pool, catalog, input.value, 'erp');
}

const invoiceOf = async (customer: string) =>
  (
    await store.pool.query<{ id: string; number: string; total_minor: string; tax_minor: string }>(
      "SELECT id, number, total_minor::text, tax_minor::text FROM invoices WHERE customer = $1 AND period = $2 AND kind = 'invoice'",
      [customer, PERIOD],
    )
  ).rows[0]!;

const find = (report: ReconcileReport, checkpoint: string, connector: string | null = null): CheckpointReport =>
  report.checkpoints.find((c) => c.legal_entity === ENTITY && c.checkpoint === checkpoint && c.connector === connector)!;

/** As a superuser, with triggers off for this session only: the manual edits the database otherwise refuses. */
async function behindTheTriggers(sql: string, params: unknown[] = []): Promise<void> {
  const client = await store.pool.connect();
  try {
    await client.query('SET session_replication_role = replica');
    await client.query(sql, params);
  } finally {
    await client.query('SET session_replication_role = DEFAULT');
    client.release();
  }
}

/** An event lost (events refuse deletes but for a repair, migration 033): deleted under the repair's flag, so the
 * rollups are recounted as a real loss would leave them. */
async function loseEvents(sql: string): Promise<void> {
  const client = await store.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT set_config('accrue.event_removal', 'on', true)");
    await client.query(sql);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
  assert.ok(applied.ok);
  catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(store.pool, catalog, EVENTS, { channel: 'file', now: new Date('2026-12-01T00:00:00Z') });
  await closePeriod(store.pool, catalog, { period: PERIOD, erpTargets: ['netsuite', 'xero'] });
  netsuite = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600 });
  xero = northwindXeroSim({ timeoutDelayMs: 600, perMinute: 10_000, concurrent: 5 });
  await netsuite.start();
  await xero.start();
  await drainOutbox(store.pool, netsuiteTarget(), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
  await drainOutbox(store.pool, xeroTarget(), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
  const globex = await invoiceOf('globex');
  const outcome = await pay('pay-globex', globex.number, (BigInt(globex.total_minor) / 100n).toString());
  assert.equal(outcome.status, 'applied');
});
after(async () => {
  await netsuite?.stop();
  await xero?.stop();
  await store?.close();
});

describe('reconciliation', () => {
  it('finds a clean month clean: every checkpoint green, against the ledger, NetSuite and Xero, and opens nothing', async () => {
    const report = await reconcilePeriod(store.pool, { period: PERIOD, legalEntity: ENTITY, connectors: connectors() });
    const red = report.checkpoints.filter((c) => c.status !== 'green').map((c) => [c.checkpoint, c.connector, c.differences]);
    assert.deepEqual(red, [], JSON.stringify(red, null, 1));
    assert.equal(report.status, 'green');
    assert.deepEqual(report.connectors, ['ledger', 'netsuite', 'xero']);
    // Every side compared something real: the test cannot pass on empty sides.
    for (const c of report.checkpoints)
      assert.ok(
        c.compared.left > 0 && c.compared.left === c.compared.right,
        `${c.checkpoint}/${c.connector} compared ${JSON.stringify(c.compared)}`,
      );
    assert.equal(
      find(report, 'invoices_vs_erp_postings', 'netsuite').compared.right,
      netsuite.records.size - (await store.pool.query("SELECT count(*)::int AS n FROM journals WHERE legal_entity = 'nw-de'")).rows[0].n,
    );
    assert.deepEqual(report.opened, []);
    assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM exceptions')).rows[0].n, 0);
    const all = await reconcilePeriod(store.pool, { period: PERIOD, connectors: connectors() });
    assert.deepEqual(all.legal_entities, ['nw-us', 'nw-de']);
    assert.equal(all.status, 'green', JSON.stringify(all.checkpoints.filter((c) => c.status !== 'green')));
  });

  const seeded = {
    event: { checkpoint: 'usage_events_vs_aggregates', connector: null, kind: 'amount_differs' },
    quantity: { checkpoint: 'aggregates_vs_rated', connector: null, kind: 'amount_differs' },
    line: { checkpoint: 'rated_vs_invoice_lines', connector: null, kind: 'amount_differs' },
    ledger: { checkpoint: 'trial_balance', connector: null, kind: 'amount_differs' },
    missing: { checkpoint: 'invoices_vs_erp_postings', connector: 'netsuite', kind: 'missing_right' },
    duplicate: { checkpoint: 'invoices_vs_erp_postings', connector: 'xero', kind: 'duplicate' },
    payment: { checkpoint: 'payments_vs_receivable', connector: null, kind: 'amount_differs' },
    tax: { checkpoint: 'tax_vs_erp', connector: 'netsuite', kind: 'amount_differs' },
  } as const;
  let dropped: Record<string, unknown>;
  let missingId = '';

  it('finds each seeded mismatch, named by its checkpoint, and opens each exception once', async () => {
    const acme = await invoiceOf('acme');
    const globex = await invoiceOf('globex');
    const initech = await invoiceOf('initech');
    // 1. a dropped event: acme's second storage event deleted after billing
    dropped = (await store.pool.query("SELECT * FROM events WHERE source = '//reconcile-test' AND id = 'a2'")).rows[0];
    await loseEvents("DELETE FROM events WHERE source = '//reconcile-test' AND id = 'a2'");
    // 2. a rated quantity changed on a stored usage line (its amount left alone)
    const usageLine = (
      await store.pool.query("SELECT line_no FROM invoice_lines WHERE invoice_id = $1 AND meter = 'storage_gb_hours'", [acme.id])
    ).rows[0].line_no;
    await behindTheTriggers('UPDATE invoice_lines SET quantity = quantity + 1 WHERE invoice_id = $1 AND line_no = $2', [
      acme.id,
      usageLine,
    ]);
    // 3. a stored invoice line's amount changed
    const flatLine = (await store.pool.query("SELECT line_no FROM invoice_lines WHERE invoice_id = $1 AND kind = 'flat'", [initech.id]))
      .rows[0].line_no;
    await behindTheTriggers('UPDATE invoice_lines SET amount_minor = amount_minor + 7 WHERE invoice_id = $1 AND line_no = $2', [
      initech.id,
      flatLine,
    ]);
    // 4. a manual ledger edit: a one-sided 5.00 credit to revenue on initech's invoice journal
    await behindTheTriggers(
      "INSERT INTO journal_lines (journal_id, line_no, account, debit_minor, credit_minor, currency) VALUES ($1, 99, '4090', 0, 500, 'USD')",
      [`jrn:v1:invoice:${initech.id}`],
    );
    // 5. a document missing in NetSuite
    const missingKey = netsuiteExternalId(outboxKey('netsuite', `jrn:v1:invoice:${globex.id}`));
    assert.ok(netsuite.records.delete(missingKey));
    // 6. the same document posted twice in Xero, under another id
    const original = xero.invoices.find((d) => d.Reference === outboxKey('xero', `jrn:v1:invoice:${initech.id}`))!;
    xero.invoices.push({ ...original, id: 'inv-manual-copy' });
    // 7. a payment recorded one minor unit off what the ledger cleared
    await behindTheTriggers("UPDATE payments SET amount_minor = amount_minor + 1 WHERE id = 'pay-globex'");
    // 8. NetSuite computed a tax of its own on acme's invoice (SuiteTax with another rate): one cent more on a tax line.
    const taxed = netsuite.records.get(netsuiteExternalId(outboxKey('netsuite', `jrn:v1:invoice:${acme.id}`)))!.body as SalesRecord;
    const detail = taxed.taxDetails!.items![0]!;
    detail.taxAmount = new Decimal(detail.taxAmount!).plus('0.01').toFixed(2);
    taxed.total = new Decimal(taxed.total!).plus('0.01').toFixed(2);

    const report = await reconcilePeriod(store.pool, { period: PERIOD, legalEntity: ENTITY, connectors: connectors() });
    assert.equal(report.status, 'red');
    const has = (seed: (typeof seeded)[keyof typeof seeded], item: (i: string) => boolean) =>
      find(report, seed.checkpoint, seed.connector).differences.find((d) => d.kind === seed.kind && item(d.key.item));
    const event = has(seeded.event, (i) => i.includes(':acme:storage_gb_hours:'));
    assert.ok(event, 'the dropped event');
    assert.deepEqual(
      [event.left, event.right, event.difference],
      ['1000000', '1250000', '250000'],
      'recount 1,000,000 against the 1,250,000 the run read',
    );
    assert.ok(
      has(seeded.quantity, (i) => i.includes(':acme:storage_gb_hours:')),
      'the changed rated quantity',
    );
    const line = has(seeded.line, (i) => i.startsWith(`${initech.number} line ${flatLine} flat:`));
    assert.ok(line && line.difference === '7', 'the changed invoice line');
    const revenue = has(seeded.ledger, (i) => i === `4090@${PERIOD}`);
    const net = has(seeded.ledger, (i) => i === `(net)@${PERIOD}`);
    assert.ok(revenue && revenue.difference === '-500', 'the manual edit, on its account');
    assert.ok(net && net.left === '0' && net.right === '-500', 'the manual edit, on the net: the ledger no longer balances');
    const missing = has(seeded.missing, (i) => i === `jrn:v1:invoice:${globex.id}`);
    assert.ok(missing && missing.key.customer === 'globex', 'the document missing in NetSuite');
    const duplicate = has(seeded.duplicate, (i) => i === `jrn:v1:invoice:${initech.id}`);
    assert.ok(duplicate && duplicate.occurrences.right === 2, 'the double posting in Xero');
    assert.ok(duplicate.documents.some((d) => d.kind === 'erp_invoice' && d.id === 'inv-manual-copy'));
    const payment = has(seeded.payment, (i) => i === `${globex.id}@${PERIOD}`);
    assert.ok(payment && payment.difference === '-1', 'the payment one minor unit off');
    const tax = has(seeded.tax, (i) => i === `jrn:v1:invoice:${acme.id}`);
    assert.ok(tax, 'the tax NetSuite computed');
    assert.deepEqual([tax.left, tax.right], [acme.tax_minor, (BigInt(acme.tax_minor) + 1n).toString()], 'Accrue tax, NetSuite tax');
    assert.equal(find(report, 'tax_vs_erp', 'netsuite').differences.length, 1, 'only the document whose tax differs');
    assert.equal(find(report, 'tax_vs_erp', 'xero').status, 'green', 'Xero holds the tax Accrue sent');
    // Nothing is found where nothing was seeded.
    assert.equal(find(report, 'invoices_vs_erp_postings', 'ledger').status, 'green');

    const count = async () =>
      (await store.pool.query('SELECT count(*)::int AS n FROM exceptions WHERE checkpoint IS NOT NULL')).rows[0].n as number;
    const differences = report.checkpoints.reduce((n, c) => n + c.differences.length, 0);
    assert.equal(report.opened.length, differences);
    assert.equal(await count(), differences);
    missingId = missing.exception_id;
    const row = (
      await store.pool.query(
        'SELECT checkpoint, period, legal_entity, customer, currency, connector, left_amount, right_amount, owner_queue, documents FROM exceptions WHERE id = $1',
        [missing.exception_id],
      )
    ).rows[0];
    assert.deepEqual(
      { ...row, documents: row.documents.map((d: { kind: string }) => d.kind) },
      {
        checkpoint: 'invoices_vs_erp_postings',
        period: PERIOD,
        legal_entity: ENTITY,
        customer: 'globex',
        currency: 'USD',
        connector: 'netsuite',
        left_amount: missing.left,
        right_amount: null,
        owner_queue: 'integration_support',
        documents: ['journal', 'invoice'],
      },
    );

    const again = await reconcilePeriod(store.pool, { period: PERIOD, legalEntity: ENTITY, connectors: connectors() });
    assert.deepEqual(again.opened, [], 'a re-run on the same state opens nothing');
    assert.equal(await count(), differences);
    assert.ok(again.checkpoints.flatMap((c) => c.differences).every((d) => d.status === 'open' && !d.opened));
  });

  it('reports a difference that went away as cleared, and leaves the exception for a person to close', async () => {
    await store.pool.query(
      // A repair writes it back as it was, its seq too (the identity column allows that only when overridden).
      'INSERT INTO events (seq, source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, received_at, late) OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)',
      [
        'seq',
        'source',
        'id',
        'type',
        'subject',
        'customer_id',
        'time',
        'data',
        'meter_values',
        'dimensions',
        'content_hash',
        'batch_id',
        'received_at',
        'late',
      ].map((c) => dropped[c]),
    );
    // Its seq is below what the rollups cover, so the repair rebuilds them (migration 033).
    await store.pool.query('SELECT usage_rollups_rebuild()');
    const report = await reconcilePeriod(store.pool, { period: PERIOD, legalEntity: ENTITY, connectors: connectors() });
    assert.equal(find(report, 'usage_events_vs_aggregates').status, 'green');
    assert.equal(report.cleared.length, 1);
    assert.equal(report.cleared[0]!.checkpoint, 'usage_events_vs_aggregates');
    const shown = await getException(store.pool, report.cleared[0]!.id);
    assert.equal(shown!.exception.status, 'open');
    assert.ok(shown!.exception.cleared_at);
    assert.deepEqual(
      shown!.events.map((e) => e.action),
      ['open', 'clear'],
    );
    const twice = await reconcilePeriod(store.pool, { period: PERIOD, legalEntity: ENTITY, connectors: connectors() });
    assert.deepEqual(twice.cleared, [], 'cleared once');
  });

  it('enforces the lifecycle: assign first, a correcting document to resolve, a reason to waive, final once closed', async () => {
    const first = missingId;
    const early = await resolveException(store.pool, first, { correcting_document: 'NWUS-CN-000001', by: 'ana' });
    assert.ok(!early.ok);
    assert.equal(early.problems[0]!.code, 'not_allowed');
    assert.ok((await assignException(store.pool, first, { assignee: 'billing-team', by: 'ana' })).ok);
    const noDocument = await resolveException(store.pool, first, { correcting_document: ' ', by: 'ana' });
    assert.ok(!noDocument.ok);
    assert.deepEqual(
      noDocument.problems.map((p) => p.path),
      ['correcting_document'],
    );
    const noReason = await waiveException(store.pool, first, { reason: '', by: 'ana' });
    assert.ok(!noReason.ok);
    assert.deepEqual(
      noReason.problems.map((p) => p.path),
      ['reason'],
    );
    const unknown = await assignException(store.pool, 'exc:v1:nope', { assignee: 'x', by: 'ana' });
    assert.ok(!unknown.ok && unknown.problems[0]!.code === 'not_found');
    const history = await getException(store.pool, first);
    assert.deepEqual(
      history!.events.map((e) => e.action),
      ['open', 'assign'],
      'refused moves leave no trace',
    );
  });

  it('refuses to close the period while an exception is open, settlement exceptions included, and closes once all are resolved or waived', async () => {
    const acme = await invoiceOf('acme');
    const over = await pay('pay-acme-over', acme.number, '100000.00');
    assert.equal(over.status, 'exception');
    const refused = await closeAccountingPeriod(store.pool, { legalEntity: ENTITY, period: PERIOD, by: 'cfo', connectors: connectors() });
    assert.ok(!refused.result.ok);
    const unresolved = await listExceptions(store.pool, { legalEntity: ENTITY, period: PERIOD, status: 'unresolved' });
    assert.ok(unresolved.ok);
    assert.deepEqual(refused.open.map((e) => e.id).sort(), unresolved.value.map((e) => e.id).sort());
    assert.ok(
      refused.open.some((e) => e.kind === 'payment_overpayment' && e.checkpoint === null),
      'the payment exception holds the close too',
    );
    assert.ok(refused.result.problems.every((p) => p.code === 'open_exception' && p.message.includes('resolve or waive')));
    assert.equal(
      (
        await store.pool.query(
          "SELECT count(*)::int AS n FROM accounting_periods WHERE legal_entity = $1 AND period = $2 AND status = 'closed'",
          [ENTITY, PERIOD],
        )
      ).rows[0].n,
      0,
    );

    const credit = await invoiceOf('initech');
    for (const [index, exception] of unresolved.value.entries()) {
      if (exception.status === 'open')
        assert.ok((await assignException(store.pool, exception.id, { assignee: 'finance-ops', by: 'ana' })).ok);
      const done =
        index % 2 === 0
          ? await resolveException(store.pool, exception.id, {
              correcting_document: credit.number,
              by: 'ana',
              note: 'corrected by a credit note',
            })
          : await waiveException(store.pool, exception.id, { reason: 'seeded by the test', by: 'cfo' });
      assert.ok(done.ok, JSON.stringify(done));
    }
    const terminal = await waiveException(store.pool, unresolved.value[0]!.id, { reason: 'again', by: 'cfo' });
    assert.ok(!terminal.ok && terminal.problems[0]!.code === 'terminal');
    await assert.rejects(store.pool.query("UPDATE exceptions SET status = 'open' WHERE id = $1", [unresolved.value[0]!.id]), /final/);
    await assert.rejects(store.pool.query('DELETE FROM exception_events'), /append-only/);

    const closed = await closeAccountingPeriod(store.pool, { legalEntity: ENTITY, period: PERIOD, by: 'cfo', connectors: connectors() });
    assert.ok(closed.result.ok, JSON.stringify(closed.result));
    assert.equal(closed.result.value.closed_by, 'cfo');
    assert.deepEqual(closed.reconciliation!.opened, [], 'the same differences are the same (waived or resolved) exceptions');
    // Closing locks the period: a payment dated in it is refused by the closed-period policy.
    await assert.rejects(pay('pay-late', (await invoiceOf('initech')).number, '1.00', '2026-11-29'), /period_closed|is closed/);
    const again = await closeAccountingPeriod(store.pool, { legalEntity: ENTITY, period: PERIOD, by: 'cfo' });
    assert.ok(again.result.ok && again.result.value.already_closed);
  });

  it('writes every move to the audit log, and the chain verifies', async () => {
    const records = await readAudit(store.pool, { subject: missingId, limit: 100 });
    assert.deepEqual(
      records.slice(0, 2).map((r) => [r.action, r.actor]),
      [
        ['exception.open', 'system:reconcile'],
        ['exception.assign', 'ana'],
      ],
    );
    assert.equal(records.length, 3);
    assert.match(records[2]!.action, /^exception\.(resolve|waive)$/);
    const shown = await getException(store.pool, missingId);
    assert.deepEqual(
      shown!.events.map((e) => `exception.${e.action}`),
      records.map((r) => r.action),
      'the history and the audit log tell the same story',
    );
    const close = await readAudit(store.pool, { action: 'accounting_period.close', limit: 10 });
    assert.deepEqual(
      close.map((r) => [r.actor, r.subject]),
      [['cfo', `${ENTITY}:${PERIOD}`]],
    );
    const waives = await readAudit(store.pool, { action: 'exception.waive', limit: 100 });
    assert.ok(waives.length > 0 && waives.every((r) => r.reason === 'seeded by the test' && r.actor === 'cfo'));
    const verdict = await verifyAudit(store.pool);
    assert.ok(
      verdict.ok,
      JSON.stringify(verdict, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
    );
  });
});

describe('reconciliation over HTTP', () => {
  let app: FastifyInstance;
  let read: string;
  let admin: string;
  before(async () => {
    app = await buildServer({ pool: store.pool, approvalRequired: [] /* the controls' own tests cover approval */ });
    read = (await testKey(store.pool, { name: 'reader', roles: ['auditor'] })).secret;
    admin = (await testKey(store.pool, { name: 'admin', roles: OPERATOR_AUDITOR })).secret;
  });
  after(() => app.close());

  it('reports where a period stands without recording anything, lists exceptions, and moves them with the admin scope', async () => {
    const before = (await store.pool.query('SELECT count(*)::int AS n FROM exceptions')).rows[0].n;
    await loseEvents("DELETE FROM events WHERE source = '//reconcile-test' AND id = 'g1'");
    const res = await app.inject({
      method: 'GET',
      url: `/v1/periods/${PERIOD}/reconciliation?entity=${ENTITY}`,
      headers: { authorization: `Bearer ${read}` },
    });
    assert.equal(res.statusCode, 200, res.body);
    const report = res.json();
    assert.equal(report.recorded, false);
    const usage = report.checkpoints.find((c: { checkpoint: string }) => c.checkpoint === 'usage_events_vs_aggregates');
    assert.equal(usage.status, 'red');
    assert.equal(usage.differences[0].key.customer, 'globex');
    assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM exceptions')).rows[0].n, before, 'a GET records nothing');

    const recorded = await reconcilePeriod(store.pool, { period: '2026-12', legalEntity: ENTITY });
    assert.equal(recorded.status, 'green', 'an empty month is green');
    const opened = await reconcilePeriod(store.pool, { period: PERIOD, legalEntity: ENTITY });
    const id = opened.opened[0]!;
    const list = await app.inject({
      method: 'GET',
      url: `/v1/exceptions?queue=billing_engineering&status=open&period=${PERIOD}`,
      headers: { authorization: `Bearer ${read}` },
    });
    assert.equal(list.statusCode, 200, list.body);
    assert.deepEqual(
      list.json().exceptions.map((e: { id: string }) => e.id),
      [id],
    );
    const forbidden = await app.inject({
      method: 'POST',
      url: `/v1/exceptions/${encodeURIComponent(id)}/assign`,
      headers: { authorization: `Bearer ${read}` },
      payload: { assignee: 'bob' },
    });
    assert.equal(forbidden.statusCode, 403);
    const early = await app.inject({
      method: 'POST',
      url: `/v1/exceptions/${encodeURIComponent(id)}/waive`,
      headers: { authorization: `Bearer ${admin}` },
      payload: { reason: 'known' },
    });
    assert.equal(early.statusCode, 409);
    assert.equal(early.json().errors[0].code, 'not_allowed');
    const assigned = await app.inject({
      method: 'POST',
      url: `/v1/exceptions/${encodeURIComponent(id)}/assign`,
      headers: { authorization: `Bearer ${admin}` },
      payload: { assignee: 'bob' },
    });
    assert.equal(assigned.statusCode, 200, assigned.body);
    assert.equal(assigned.json().assigned_to, 'bob');
    const missingReason = await app.inject({
      method: 'POST',
      url: `/v1/exceptions/${encodeURIComponent(id)}/waive`,
      headers: { authorization: `Bearer ${admin}` },
      payload: {},
    });
    assert.equal(missingReason.statusCode, 400);
    const waived = await app.inject({
      method: 'POST',
      url: `/v1/exceptions/${encodeURIComponent(id)}/waive`,
      headers: { authorization: `Bearer ${admin}` },
      payload: { reason: 'the event was deleted on purpose (GDPR request)' },
    });
    assert.equal(waived.statusCode, 200, waived.body);
    // Every move names the principal and key that made it (no free-form `by`).
    const adminActor = (
      await store.pool.query("SELECT 'principal:' || principal_id || '/key:' || id AS actor FROM api_keys WHERE name = 'admin'")
    ).rows[0].actor;
    assert.deepEqual([waived.json().status, waived.json().waived_by], ['waived', adminActor]);
    const shown = await app.inject({
      method: 'GET',
      url: `/v1/exceptions/${encodeURIComponent(id)}`,
      headers: { authorization: `Bearer ${read}` },
    });
    assert.deepEqual(
      shown.json().events.map((e: { action: string; actor: string }) => [e.action, e.actor]),
      [
        ['open', 'system:reconcile'],
        ['assign', adminActor],
        ['waive', adminActor],
      ],
    );
  });
});
