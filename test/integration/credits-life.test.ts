// Prepaid credits, whole life, through the close (src/close/credit-life.ts): a paid grant is sold into deferred
// revenue on its grant date, drawn as usage consumes it, and what is unused on its expiry date is released as
// breakage revenue; a promotional grant books nothing of its own and is drawn as contra-revenue. Deferred revenue
// never shows a debit balance, equals the credit ledger per customer, and reconciliation is green.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { readJournals } from '../../src/post/journals.js';
import { reconcilePeriod } from '../../src/reconcile/run.js';
import { creditLedger } from '../../src/domain/credits.js';
import type { Journal } from '../../src/domain/model.js';

let store: Store;
let catalog: CatalogVersion;

const catalogText = readFileSync('examples/northwind/catalog.yaml', 'utf8')
  .replace(
    '    deferred_revenue: "2400"  # Prepaid credits not yet consumed',
    '    deferred_revenue: "2400"\n    promotional_credits: "4950"\n    breakage_revenue: "4900"',
  )
  .replace(
    '  - { customer: acme, amount: "200.00", currency: USD, granted: 2026-11-01, expires: 2027-10-31 }',
    [
      '  - { customer: acme, amount: "500.00", currency: USD, granted: 2026-10-01, expires: 2026-11-30 }',
      '  - { customer: globex, amount: "50.00", currency: USD, granted: 2026-10-01, expires: 2027-01-31, kind: promotional }',
    ].join('\n'),
  );

// Storage at 0.000137 USD per GB-hour (growth-usd): 1,000,000 GB-hours bill 137.00 USD of usage.
const ev = (id: string, subject: string, time: string, gbHours: string) => ({
  specversion: '1.0',
  id,
  source: '//credits-life',
  type: 'com.northwind.storage.usage',
  subject,
  time,
  data: { gb_hours: gbHours },
});

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, catalogText, { by: 'test' });
  assert.ok(applied.ok, JSON.stringify(applied));
  catalog = (await currentCatalog(store.pool))!;
  // acme: 274.00 in October and 137.00 in November drawn from its 500.00; globex: 13.70 from its promotional 50.00.
  const events = [
    ev('a-oct-1', 'acme-prod', '2026-10-05T00:00:00Z', '1000000'),
    ev('a-oct-2', 'acme-prod', '2026-10-20T00:00:00Z', '1000000'),
    ev('a-nov-1', 'acme-prod', '2026-11-10T00:00:00Z', '1000000'),
    ev('g-oct-1', 'globex', '2026-10-07T00:00:00Z', '100000'),
  ];
  await ingestBatch(store.pool, catalog, events, { channel: 'file', now: new Date('2026-12-01T00:00:00Z') });
  await closePeriod(store.pool, catalog, { period: '2026-10' });
  await closePeriod(store.pool, catalog, { period: '2026-11' });
});
after(async () => store?.close());

const drawn = async (grant: string) =>
  BigInt(
    (
      await store.pool.query<{ n: string }>('SELECT coalesce(sum(amount_minor), 0)::text AS n FROM credit_drawdowns WHERE grant_id = $1', [
        grant,
      ])
    ).rows[0]!.n,
  );
const lines = (j: Journal | undefined) => j?.lines.map((l) => [l.account, l.debit_minor, l.credit_minor]);

describe('a paid grant: sold, drawn, expired', () => {
  it('is sold into deferred revenue on its grant date: Dr cash 500.00, Cr deferred revenue 500.00', async () => {
    const [sold] = await readJournals(store.pool, { ids: ['jrn:v1:credit_grant:acme:2026-10-01:0'] });
    assert.equal(sold?.posting_date, '2026-10-01');
    assert.deepEqual(lines(sold), [
      ['1000', 50000n, 0n],
      ['2400', 0n, 50000n],
    ]);
  });

  it('releases what October and November did not draw on 2026-11-30 as breakage revenue', async () => {
    const used = await drawn('acme:2026-10-01:0');
    assert.equal(used, 27400n + 13700n); // 411.00: 89.00 of the 500.00 unused
    const [expired] = await readJournals(store.pool, { ids: ['jrn:v1:credit_expiry:acme:2026-10-01:0'] });
    assert.equal(expired?.posting_date, '2026-11-30');
    assert.deepEqual(lines(expired), [
      ['2400', 8900n, 0n],
      ['4900', 0n, 8900n],
    ]);
  });

  it('leaves deferred revenue for acme never in debit, and at zero once expired: it equals the credit ledger', async () => {
    const journals = (await readJournals(store.pool, { entity: 'nw-us' })).filter((j) => j.lines.some((l) => l.account === '2400'));
    let balance = 0n; // credit - debit
    for (const j of journals) {
      for (const l of j.lines) if (l.account === '2400' && l.customer === 'C-10042') balance += l.credit_minor - l.debit_minor;
      assert.ok(balance >= 0n, `deferred revenue went into debit at ${j.id}`);
    }
    assert.equal(balance, 0n);
    const ledger = creditLedger(
      catalog.catalog.credit_grants,
      new Map([['acme:2026-10-01:0', await drawn('acme:2026-10-01:0')]]),
      '2026-12-01',
    );
    assert.equal(ledger.find((r) => r.grant === 'acme:2026-10-01:0')?.remaining_minor, 0n);
  });
});

describe('a promotional grant', () => {
  it('books nothing when granted, and is drawn as contra-revenue: Dr promotional credits, Cr revenue', async () => {
    assert.deepEqual(await readJournals(store.pool, { ids: ['jrn:v1:credit_grant:globex:2026-10-01:0'] }), []);
    const used = await drawn('globex:2026-10-01:0');
    assert.equal(used, 1370n); // 100,000 GB-hours x 0.000137 = 13.70
    const october = (
      await store.pool.query<{ id: string }>(
        "SELECT id FROM invoices WHERE customer = 'globex' AND period = '2026-10' AND kind = 'invoice'",
      )
    ).rows[0]!.id;
    const [drawdown] = await readJournals(store.pool, { ids: [`jrn:v1:credit_drawdown:${october}`] });
    const promo = drawdown?.lines.find((l) => l.account === '4950');
    assert.equal(promo?.debit_minor, used);
    assert.equal(
      drawdown?.lines.find((l) => l.account === '2400'),
      undefined,
      'no deferred revenue for a free grant',
    );
  });
});

describe('reconciliation', () => {
  it('is green in October and November with the grant, drawdowns and expiry in the books', async () => {
    for (const period of ['2026-10', '2026-11']) {
      const report = await reconcilePeriod(store.pool, { period, legalEntity: 'nw-us' });
      const red = report.checkpoints
        .filter((c) => c.status !== 'green')
        .map((c) => [c.checkpoint, c.differences.map((d) => [d.kind, d.key.item])]);
      assert.deepEqual(red, [], `${period}: ${JSON.stringify(red)}`);
    }
  });
});
