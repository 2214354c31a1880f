// Two legal entities on two Xero organisations: each entity's documents are queued for its own connection at the
// close, posted with the mappings in the store, and reconciled against its own organisation only. A missing mapping
// (the German tax type) keeps the German invoice waiting, never dead-lettered; it posts once the mapping is imported.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import { XeroSimulator } from '../support/xero-sim.js';
import { northwindMappings, northwindTenant, xeroTestTarget } from '../support/xero-target.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { drainOutbox } from '../../src/post/outbox.js';
import { saveConnections } from '../../src/connectors/connections.js';
import type { ConnectionSettings } from '../../src/domain/erp.js';
import { importMappings } from '../../src/map/import.js';
import { runErpCheck } from '../../src/map/check.js';
import { mappingSource } from '../../src/map/resolver.js';
import { reconcilePeriod } from '../../src/reconcile/run.js';
import { pipelineHealth } from '../../src/dashboard/pipeline.js';
import { metricsRegistry } from '../../src/api/metrics.js';
import { applyPayment, validatePayment } from '../../src/settle/payments.js';
import { formatMajor } from '../../src/domain/money.js';

let store: Store;
let xero: XeroSimulator;
const US: ConnectionSettings = { name: 'xero-us', kind: 'xero', legal_entities: ['nw-us'] };
const DE: ConnectionSettings = { name: 'xero-de', kind: 'xero', legal_entities: ['nw-de'] };
const ev = (id: string, subject: string, type: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//erp-connections-test',
  type,
  subject,
  time: '2026-10-10T00:00:00Z',
  data,
});

/** The Northwind mappings of one connection as a CSV file for `accrue erp mappings import`. */
function mappingsCsv(connection: string, without: Array<{ kind: string; source: string }> = []): string {
  const rows = northwindMappings().filter((m) => !without.some((w) => w.kind === m.kind && w.source === m.source));
  const catalogSources =
    connection === 'xero-us'
      ? (m: { kind: string; source: string }) => m.source !== 'DE' && m.source !== 'EUR'
      : (m: { kind: string; source: string }) => !m.source.startsWith('US-') && m.source !== 'USD';
  return [
    'connection,kind,source,target,effective_from',
    ...rows.filter(catalogSources).map((m) => `${connection},${m.kind},${m.source},${m.target},2026-01-01`),
  ].join('\n');
}

const target = (settings: ConnectionSettings, tenantId: string) =>
  xeroTestTarget(xero, {
    name: settings.name,
    tenantId,
    settings: { ...settings, tenant_id: tenantId },
    mappings: mappingSource(store.pool, settings.name),
  });

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  const saved = await saveConnections(store.pool, [US, DE]);
  assert.ok(saved.ok, JSON.stringify(!saved.ok && saved.problems));
  xero = new XeroSimulator({ perMinute: 10_000 });
  xero.addTenant('org-us', northwindTenant());
  xero.addTenant('org-de', northwindTenant({ baseCurrency: 'EUR', currencies: [] }));
  await xero.start();
});
after(async () => {
  await xero.stop();
  await store.close();
});

describe('two legal entities on two Xero organisations', () => {
  it('routes each entity to its connection at the close; a missing mapping waits as an exception and posts after the import; nothing mixes', async () => {
    const us = await importMappings(store.pool, mappingsCsv('xero-us'), { by: 'test' });
    assert.ok(us.ok, JSON.stringify(!us.ok && us.problems));
    // The German tax type is not mapped yet: no silent default.
    const de = await importMappings(store.pool, mappingsCsv('xero-de', [{ kind: 'tax_type', source: 'DE' }]), { by: 'test' });
    assert.ok(de.ok, JSON.stringify(!de.ok && de.problems));

    const catalog = (await currentCatalog(store.pool))!;
    // accrue erp check, through the connector: the German tax type is unmapped; what is mapped is looked up in Xero.
    const check = await runErpCheck(store.pool, catalog.catalog, DE, target(DE, 'org-de'), '2026-10-31');
    assert.equal(check.ok, false);
    assert.ok(
      check.findings.some((f) => f.kind === 'tax_type' && f.source === 'DE' && f.state === 'unmapped'),
      JSON.stringify(check.findings.filter((f) => f.state !== 'active')),
    );
    assert.ok(
      check.findings.some((f) => f.kind === 'account' && f.state === 'active'),
      'mapped accounts found active in the organisation',
    );
    assert.equal(
      check.findings.filter((f) => f.state === 'missing' || f.state === 'inactive').length,
      0,
      JSON.stringify(check.findings.filter((f) => f.state === 'missing' || f.state === 'inactive')),
    );
    await ingestBatch(store.pool, catalog, [ev('e1', 'acme-prod', 'com.northwind.storage.usage', { gb_hours: '100000' })], {
      channel: 'file',
      now: new Date('2026-11-01T00:00:00Z'),
    });
    // The close names no target: each entity's documents go to the connection it is routed to.
    await closePeriod(store.pool, catalog, { period: '2026-10' });
    const queued = (
      await store.pool.query<{ target: string; legal_entity: string }>(
        'SELECT o.target, j.legal_entity FROM outbox o JOIN journals j ON j.id = o.document_id ORDER BY o.id',
      )
    ).rows;
    assert.ok(queued.length >= 2, `documents for both entities: ${JSON.stringify(queued)}`);
    for (const row of queued)
      assert.equal(row.target, row.legal_entity === 'nw-us' ? 'xero-us' : 'xero-de', `${row.legal_entity} goes to its own connection`);

    const usOutcome = await drainOutbox(store.pool, target(US, 'org-us'), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
    const deOutcome = await drainOutbox(store.pool, target(DE, 'org-de'), { untilEmptyMs: 0, backoffBaseMs: 10 });
    assert.equal(usOutcome.dead + deOutcome.dead, 0, 'nothing dead-lettered');
    const usOrg = xero.tenant('org-us');
    const deOrg = xero.tenant('org-de');
    assert.ok(usOrg.invoices.length > 0);
    assert.ok(
      usOrg.invoices.every((i) => i.CurrencyCode === 'USD'),
      'only the US entity in the US organisation',
    );
    assert.equal(deOrg.invoices.length, 0, 'the German invoice waits for its tax type');

    const waiting = (
      await store.pool.query<{ status: string; code: string }>(
        "SELECT status, last_error->>'code' AS code FROM outbox WHERE target = 'xero-de'",
      )
    ).rows;
    assert.ok(waiting.length > 0 && waiting.every((r) => r.status === 'pending' && r.code === 'mapping_missing'), JSON.stringify(waiting));
    const exception = (
      await store.pool.query<{ owner_queue: string; connector: string; details: { field: string; kind: string; source: string } }>(
        "SELECT owner_queue, connector, details FROM exceptions WHERE kind = 'erp_mapping_missing' AND status = 'open'",
      )
    ).rows;
    assert.equal(exception.length, 1, 'one exception for the missing mapping');
    assert.deepEqual(
      [exception[0]!.owner_queue, exception[0]!.connector, exception[0]!.details.kind, exception[0]!.details.source],
      ['integration_support', 'xero-de', 'tax_type', 'DE'],
    );
    assert.match(exception[0]!.details.field, /TaxType/);

    // The dashboard's pipeline view and the metrics say what waits, and why.
    const health = await pipelineHealth(store.pool, { hours: 1 });
    const deHealth = health.connectors.find((c) => c.target === 'xero-de')!;
    assert.ok(deHealth.waiting > 0 && deHealth.dead === 0, JSON.stringify(deHealth));
    const metrics = await metricsRegistry(store.pool).metrics();
    assert.match(metrics, /accrue_outbox_waiting_entries\{connector="xero-de",reason="mapping_missing"\} [1-9]/);
    assert.match(metrics, /accrue_erp_connection_status\{connection="xero-de",status="needs_reauthorization"\} 0/);

    // A payment received by webhook for the waiting German invoice is queued for its connection and waits for it.
    const deInvoice = (
      await store.pool.query<{ number: string; total_minor: string }>(
        "SELECT number, total_minor::text FROM invoices WHERE legal_entity = 'nw-de' AND kind = 'invoice' AND total_minor > 0 ORDER BY number LIMIT 1",
      )
    ).rows[0]!;
    const input = validatePayment({
      id: 'pay_de_1',
      invoice: deInvoice.number,
      amount: formatMajor(BigInt(deInvoice.total_minor), 'EUR'),
      currency: 'EUR',
      received_on: '2026-11-20',
    });
    assert.ok(input.ok);
    assert.equal((await applyPayment(store.pool, catalog, input.value, 'webhook')).status, 'applied');
    // Draining until empty does not wait for documents that wait for a person, nor for a payment whose invoice does.
    const stuck = await drainOutbox(store.pool, target(DE, 'org-de'), { untilEmptyMs: 30_000, backoffBaseMs: 10 });
    assert.ok(stuck.retried <= 2, `one pass, not a loop on the waiting payment: ${JSON.stringify(stuck)}`);
    const paymentRow = (
      await store.pool.query<{ key: string; status: string; code: string }>(
        "SELECT key, status, last_error->>'code' AS code FROM outbox WHERE document_kind = 'payment'",
      )
    ).rows;
    assert.deepEqual(
      paymentRow,
      [{ key: 'out:v1:xero-de:pay:pay_de_1', status: 'pending', code: 'invoice_first' }],
      'the payment waits for its invoice',
    );

    const fixed = await importMappings(store.pool, 'connection,kind,source,target,effective_from\nxero-de,tax_type,DE,OUTPUT,2026-01-01', {
      by: 'test',
    });
    assert.ok(fixed.ok && fixed.value.recorded === 1);
    const after = await drainOutbox(store.pool, target(DE, 'org-de'), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
    assert.equal(after.dead, 0);
    assert.ok(deOrg.invoices.length > 0, 'posted once the mapping exists');
    assert.ok(
      deOrg.invoices.every((i) => i.CurrencyCode === 'EUR'),
      'only the German entity in the German organisation',
    );
    if ((await store.pool.query("SELECT 1 FROM outbox WHERE status = 'pending'")).rowCount)
      await drainOutbox(store.pool, target(DE, 'org-de'), { untilEmptyMs: 10_000, backoffBaseMs: 10 });
    const paid = deOrg.invoices.find((i) => i.Number === deInvoice.number)!;
    assert.equal(paid.Status, 'PAID', 'the pushed payment is applied to its invoice in Xero');
    assert.equal(deOrg.payments.length, 1);
    assert.equal((await store.pool.query("SELECT 1 FROM outbox WHERE status <> 'posted'")).rowCount, 0);
    const cleared = (
      await store.pool.query<{ cleared_at: Date | null }>("SELECT cleared_at FROM exceptions WHERE kind = 'erp_mapping_missing'")
    ).rows;
    assert.ok(cleared[0]!.cleared_at !== null, 'the exception is cleared once its documents posted');

    // Each connection is reconciled against its own entity only.
    const report = await reconcilePeriod(store.pool, {
      period: '2026-10',
      connectors: [target(US, 'org-us'), target(DE, 'org-de')],
      record: false,
    });
    const erp = report.checkpoints.filter((c) => c.checkpoint === 'invoices_vs_erp_postings' && c.connector !== 'ledger');
    assert.deepEqual(erp.map((c) => [c.legal_entity, c.connector, c.status]).sort(), [
      ['nw-de', 'xero-de', 'green'],
      ['nw-us', 'xero-us', 'green'],
    ]);

    // The tax mismatch KPI (tax_vs_erp): each invoice's tax in Xero (TotalTax) against Accrue's, per document.
    const taxChecks = report.checkpoints.filter((c) => c.checkpoint === 'tax_vs_erp');
    assert.deepEqual(taxChecks.map((c) => [c.legal_entity, c.connector, c.status]).sort(), [
      ['nw-de', 'xero-de', 'green'],
      ['nw-us', 'xero-us', 'green'],
    ]);
    const deTax = taxChecks.find((c) => c.legal_entity === 'nw-de')!;
    assert.ok(deTax.compared.left > 0 && deTax.compared.left === deTax.compared.right, JSON.stringify(deTax.compared));
    const accrueTax = (
      await store.pool.query<{ tax_minor: string }>("SELECT tax_minor::text FROM invoices WHERE legal_entity = 'nw-de' AND number = $1", [
        deInvoice.number,
      ])
    ).rows[0]!.tax_minor;
    assert.ok(BigInt(accrueTax) > 0n, 'the German invoice is taxed');
    // Xero computes a tax of its own (a rate changed in the organisation, its own rounding): one cent more.
    const inXero = deOrg.invoices.find((i) => i.Number === deInvoice.number)!;
    const cent = (text: string) => formatMajor(BigInt(text.replace('.', '')) + 1n, 'EUR');
    assert.match(inXero.TotalTax, /^\d+\.\d{2}$/);
    inXero.TotalTax = cent(inXero.TotalTax);
    inXero.Total = cent(inXero.Total);
    const counted = async () =>
      /accrue_tax_mismatches_total\{legal_entity="nw-de",connector="xero-de"\} (\d+)/.exec(
        await metricsRegistry(store.pool).metrics(),
      )?.[1];
    assert.equal(await counted(), '0');
    for (const run of [1, 2]) {
      const red = await reconcilePeriod(store.pool, {
        period: '2026-10',
        connectors: [target(US, 'org-us'), target(DE, 'org-de')],
        actor: 'system:test',
      });
      const mismatch = red.checkpoints.find((c) => c.checkpoint === 'tax_vs_erp' && c.legal_entity === 'nw-de')!;
      assert.equal(mismatch.status, 'red');
      assert.equal(mismatch.differences.length, 1, JSON.stringify(mismatch.differences));
      const [difference] = mismatch.differences;
      assert.equal(difference!.kind, 'amount_differs');
      assert.equal(difference!.left, accrueTax);
      assert.equal(difference!.right, (BigInt(accrueTax) + 1n).toString());
      assert.ok(
        difference!.documents.some((d) => d.kind === 'invoice'),
        'the difference names the invoice',
      );
      assert.equal(difference!.opened, run === 1, 'recorded once, found again by the second run');
      const us = red.checkpoints.find((c) => c.checkpoint === 'tax_vs_erp' && c.legal_entity === 'nw-us')!;
      assert.equal(us.status, 'green', 'the other organisation is untouched');
      const recorded = (
        await store.pool.query<{ owner_queue: string; connector: string; left_amount: string; right_amount: string }>(
          "SELECT owner_queue, connector, left_amount, right_amount FROM exceptions WHERE checkpoint = 'tax_vs_erp'",
        )
      ).rows;
      assert.deepEqual(recorded, [
        {
          owner_queue: 'finance_operations',
          connector: 'xero-de',
          left_amount: accrueTax,
          right_amount: (BigInt(accrueTax) + 1n).toString(),
        },
      ]);
      assert.equal(await counted(), '1', 'counted once per document, however often it is found');
    }
  });
});
