// An annual plan billed in advance, through the close: the yearly price is billed whole on the invoice of the month
// the subscription year starts, deferred by its journal, given a schedule, and each close recognizes its month's part;
// `accrue revenue schedule` shows it; reconciliation is green. Amounts worked by hand.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { readJournals } from '../../src/post/journals.js';
import { reconcilePeriod } from '../../src/reconcile/run.js';
import type { Invoice } from '../../src/domain/model.js';

let store: Store;
let catalog: CatalogVersion;
let october: Invoice;

const catalogText = readFileSync('examples/northwind/catalog.yaml', 'utf8')
  .replace(
    'customers:\n',
    [
      '  - id: annual-usd',
      '    currency: USD',
      '    prices:',
      '      - { product: platform, model: flat, amount: "1200.00", interval: year }',
      '',
      'customers:',
      '  - id: stark',
      '    name: Stark Industries',
      '    legal_entity: nw-us',
      '    tax_jurisdiction: US-OR',
      '    erp_customer_id: "C-20001"',
      '    tenants: [stark]',
      '',
    ].join('\n'),
  )
  .replace('subscriptions:\n', 'subscriptions:\n  - { customer: stark, plan: annual-usd, start: 2026-10-01 }\n');

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, catalogText, { by: 'test' });
  assert.ok(applied.ok, JSON.stringify(applied));
  catalog = (await currentCatalog(store.pool))!;
  october = (await closePeriod(store.pool, catalog, { period: '2026-10' })).invoices.find((i) => i.customer === 'stark')!;
  await closePeriod(store.pool, catalog, { period: '2026-11' });
});
after(async () => store?.close());

describe('an annual plan billed in advance', () => {
  it("bills 1,200.00 on October's invoice for the year 2026-10-01..2027-10-01, and nothing in November", async () => {
    assert.deepEqual(
      october.lines.map((l) => [l.kind, l.amount_minor, l.period_start, l.period_end, l.description]),
      [['flat', 120000n, '2026-10-01', '2027-10-01', 'Platform Fee (annual, 2026-10-01 to 2027-09-30)']],
    );
    const november = (
      await store.pool.query<{ total: string; lines: number }>(
        "SELECT total_minor::text AS total, jsonb_array_length(document->'lines') AS lines FROM invoices WHERE customer = 'stark' AND period = '2026-11'",
      )
    ).rows;
    assert.ok(
      november.every((r) => r.total === '0' && r.lines === 0),
      `November bills nothing: ${JSON.stringify(november)}`,
    );
  });

  it('defers it (Cr deferred revenue 1,200.00) and recognizes 100.00 in October and in November', async () => {
    const [invoiceJournal] = await readJournals(store.pool, { ids: [`jrn:v1:invoice:${october.id}`] });
    assert.deepEqual(
      invoiceJournal?.lines.map((l) => [l.account, l.debit_minor, l.credit_minor]),
      [
        ['1200', 120000n, 0n],
        ['2400', 0n, 120000n],
      ],
    );
    const recognized = await readJournals(store.pool, {
      ids: ['jrn:v1:revenue_recognition:revrec:nw-us:2026-10', 'jrn:v1:revenue_recognition:revrec:nw-us:2026-11'],
    });
    assert.deepEqual(
      recognized.map((j) => [j.posting_date, j.lines.map((l) => [l.account, l.debit_minor, l.credit_minor, l.customer ?? null])]),
      [
        [
          '2026-10-31',
          [
            ['2400', 10000n, 0n, 'C-20001'],
            ['4090', 0n, 10000n, null],
          ],
        ],
        [
          '2026-11-30',
          [
            ['2400', 10000n, 0n, 'C-20001'],
            ['4090', 0n, 10000n, null],
          ],
        ],
      ],
    );
  });

  it('accrue revenue schedule lists the twelve monthly parts', () => {
    const run = spawnSync(
      process.execPath,
      ['bin/accrue.js', '--database-url', store.url, '--json', 'revenue', 'schedule', '--customer', 'stark'],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    const [schedule] = JSON.parse(run.stdout) as Array<{
      id: string;
      months: number;
      months_detail: Array<{ month: string; amount_minor: string }>;
    }>;
    assert.equal(schedule?.id, `rev:v1:${october.id}:1`);
    assert.equal(schedule?.months_detail.length, 12);
    assert.deepEqual([schedule?.months_detail[0]?.month, schedule?.months_detail[11]?.month], ['2026-10', '2027-09']);
    assert.ok(schedule?.months_detail.every((m) => m.amount_minor === '10000'));
  });

  it('reconciles green in October and November', async () => {
    for (const period of ['2026-10', '2026-11']) {
      const report = await reconcilePeriod(store.pool, { period, legalEntity: 'nw-us' });
      const red = report.checkpoints
        .filter((c) => c.status !== 'green')
        .map((c) => [c.checkpoint, c.differences.map((d) => [d.kind, d.key.item])]);
      assert.deepEqual(red, [], `${period}: ${JSON.stringify(red)}`);
    }
  });
});
