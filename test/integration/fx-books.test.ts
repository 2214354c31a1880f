// A EUR entity bills a USD customer, end to end: Northwind GmbH (nw-de, EUR books) bills Hooli in USD. The close
// books the invoice in EUR at the rate of its posting date (imported, never guessed), the ERP document carries that
// rate, November's month end revalues the open receivable and December's first day reverses it, the payment at
// December's rate books the realized loss, and reconciliation is green for every month. Amounts worked by hand.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { importFxRates } from '../../src/map/fx-rates.js';
import { revalueReceivables } from '../../src/post/fx-revaluation.js';
import { readJournals } from '../../src/post/journals.js';
import { readSalesDocuments } from '../../src/post/erp-documents.js';
import { applyPayment, validatePayment } from '../../src/settle/payments.js';
import { reconcilePeriod } from '../../src/reconcile/run.js';
import { trialBalance } from '../../src/domain/journal.js';
import { xeroCurrencyRate } from '../../src/connectors/xero/sales.js';
import type { Invoice } from '../../src/domain/model.js';
import { inReportingCurrency } from '../../src/map/reporting-currency.js';
import { buildServer } from '../../src/api/server.js';
import { testKey } from '../support/keys.js';

let store: Store;
let catalog: CatalogVersion;
let hooli: Invoice;

const catalogText = readFileSync('examples/northwind/catalog.yaml', 'utf8')
  .replace(
    '    deferred_revenue: "3900"',
    '    deferred_revenue: "3900"\n    fx_gain: "4840"\n    fx_loss: "6880"\n    fx_unrealized: "4845"',
  )
  .replace(
    'subscriptions:\n',
    [
      '  - id: hooli',
      '    name: Hooli Inc.',
      '    legal_entity: nw-de',
      '    currency: USD',
      '    tax_jurisdiction: US-OR',
      '    erp_customer_id: "D-30007"',
      '    tenants: [hooli]',
      '',
      'subscriptions:',
      '  - { customer: hooli, plan: growth-usd, start: 2026-10-01 }',
      '',
    ].join('\n'),
  );

const ev = (id: string, time: string) => ({
  specversion: '1.0',
  id,
  source: '//fx-books',
  type: 'com.northwind.api.request',
  subject: 'hooli',
  time,
  data: { region: 'us' },
});

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, catalogText, { by: 'test' });
  assert.ok(applied.ok, JSON.stringify(applied));
  catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(store.pool, catalog, [ev('h1', '2026-10-05T00:00:00Z'), ev('h2', '2026-10-06T00:00:00Z')], {
    channel: 'file',
    now: new Date('2026-10-31T00:00:00Z'),
  });
});
after(async () => store?.close());

const rate = (text: string) =>
  importFxRates(store.pool, { bytes: Buffer.from(`date,base,quote,rate\n${text}`), fileName: 'rates.csv', source: 'ecb' }, 'test:fx');

describe('a EUR entity billing a USD customer', () => {
  it('refuses to close without a rate for the posting date, naming the pair, and books nothing', async () => {
    await assert.rejects(closePeriod(store.pool, catalog, { period: '2026-10' }), /no ecb rate for USD\/EUR on 2026-10-31/);
    assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM journals')).rows[0].n, 0);
  });

  it('books the invoice in EUR at 1 USD = 0.9200 EUR of 2026-10-30, the USD amounts kept beside', async () => {
    await rate('2026-10-30,USD,EUR,0.9200\n2026-11-30,USD,EUR,0.9100\n2026-12-15,USD,EUR,0.9000\n');
    const closed = await closePeriod(store.pool, catalog, { period: '2026-10', erpTargets: ['xero'] });
    hooli = closed.invoices.find((i) => i.customer === 'hooli')!;
    assert.equal(hooli.currency, 'USD');
    assert.ok(hooli.total_minor > 0n);
    const [journal] = await readJournals(store.pool, { ids: [`jrn:v1:invoice:${hooli.id}`] });
    assert.ok(journal);
    assert.deepEqual(journal.fx, { currency: 'USD', rate: '0.9200', rate_date: '2026-10-30', source: 'ecb' });
    const receivable = journal.lines.find((l) => l.account === '1400')!;
    // The receivable: the invoice total in USD, and total × 0.92 in EUR (half_up, nw-de's rounding).
    const euros = (hooli.total_minor * 92n + 50n) / 100n;
    assert.deepEqual(
      [receivable.currency, receivable.debit_minor, receivable.tx_currency, receivable.tx_amount_minor],
      ['EUR', euros, 'USD', hooli.total_minor],
    );
    assert.ok(journal.lines.every((l) => l.currency === 'EUR'));
    // The ERP document stays in USD and carries the rate: Xero's CurrencyRate is USD per EUR, 1 / 0.92 = 1.086957.
    const docs = await readSalesDocuments(store.pool, [journal]);
    const doc = docs.get(journal.id);
    assert.ok(doc && !(doc instanceof Error), String(doc));
    assert.equal(doc.currency, 'USD');
    assert.equal(doc.total_minor, hooli.total_minor);
    assert.equal(xeroCurrencyRate(doc), '1.086957');
  });

  it('revalues the open receivable at 2026-11-30 (0.9100) and reverses it on 2026-12-01', async () => {
    const outcome = await revalueReceivables(store.pool, catalog, { entity: 'nw-de', period: '2026-11' }, 'test:fx');
    assert.equal(outcome.open_items, 1);
    const [revaluation, reversal] = outcome.journals;
    assert.ok(revaluation && reversal);
    const drop = (hooli.total_minor * 92n + 50n) / 100n - (hooli.total_minor * 91n + 50n) / 100n;
    assert.deepEqual(
      revaluation.lines.map((l) => [l.account, l.debit_minor, l.credit_minor]),
      [
        ['4845', drop, 0n],
        ['1400', 0n, drop],
      ],
    );
    assert.deepEqual([revaluation.posting_date, reversal.posting_date, reversal.reverses], ['2026-11-30', '2026-12-01', revaluation.id]);
    // Again on the same state: nothing new.
    const again = await revalueReceivables(store.pool, catalog, { entity: 'nw-de', period: '2026-11' }, 'test:fx');
    assert.deepEqual(
      again.journals.map((j) => j.id),
      outcome.journals.map((j) => j.id),
    );
    assert.equal((await store.pool.query("SELECT count(*)::int AS n FROM journals WHERE kind LIKE 'fx_revaluation%'")).rows[0].n, 2);
  });

  it('a payment in full at 0.9000 on 2026-12-15 clears the receivable and books the realized loss', async () => {
    const input = validatePayment({
      id: 'pay-hooli-1',
      invoice: hooli.number,
      amount: (Number(hooli.total_minor) / 100).toFixed(2),
      currency: 'USD',
      received_on: '2026-12-15',
    });
    assert.ok(input.ok);
    await applyPayment(store.pool, catalog, input.value, 'erp');
    const [payment] = await readJournals(store.pool, { ids: ['jrn:v1:payment:pay-hooli-1'] });
    assert.ok(payment);
    const booked = (hooli.total_minor * 92n + 50n) / 100n;
    const cash = (hooli.total_minor * 90n + 50n) / 100n;
    assert.deepEqual(
      payment.lines.map((l) => [l.account, l.debit_minor, l.credit_minor, l.tx_amount_minor ?? null]),
      [
        ['1800', cash, 0n, hooli.total_minor],
        ['6880', booked - cash, 0n, null],
        ['1400', 0n, booked, hooli.total_minor],
      ],
    );
    const all = await readJournals(store.pool, { entity: 'nw-de' });
    const tb = trialBalance(all.filter((j) => j.lines.some((l) => l.customer === 'D-30007') || j.kind.startsWith('fx_')));
    assert.equal(tb.find((r) => r.account === '1400')?.balance_minor ?? 0n, 0n, 'the receivable is cleared in EUR');
  });

  it('reconciles green in October, November and December', async () => {
    for (const period of ['2026-10', '2026-11', '2026-12']) {
      const report = await reconcilePeriod(store.pool, { period, legalEntity: 'nw-de' });
      const red = report.checkpoints.filter((c) => c.status !== 'green').map((c) => [c.checkpoint, c.connector, c.differences]);
      assert.deepEqual(red, [], `${period}: ${JSON.stringify(red, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 1)}`);
    }
  });

  it('reports group totals in a reporting currency at a named rate, naming a currency it has no rate for', async () => {
    // 1,000.00 USD and 900.00 EUR in USD at ecb 2026-12-15: EUR->USD is the inverse of 0.9000, 1.11111111111 (12
    // significant digits): 900.00 x 1.11111111111 = 999.999999999 -> 1,000.00; the total 2,000.00 USD.
    const settings = { currency: 'USD', source: 'ecb' };
    const amounts = [
      { currency: 'USD', amount_minor: 100000n },
      { currency: 'EUR', amount_minor: 90000n },
    ];
    const total = await inReportingCurrency(store.pool, settings, '2026-12-15', amounts);
    assert.deepEqual(
      [total.amount_minor, total.missing, total.rates.map((r) => [r.currency, r.rate, r.rate_date])],
      [200000n, [], [['EUR', '1.11111111111', '2026-12-15']]],
    );
    const later = await inReportingCurrency(store.pool, settings, '2027-06-01', amounts);
    assert.deepEqual([later.amount_minor, later.missing], [100000n, ['EUR']]);
    // /metrics carries the totals with the source, once ACCRUE_REPORTING_CURRENCY names the currency.
    process.env.ACCRUE_REPORTING_CURRENCY = 'USD';
    const app = await buildServer({ pool: store.pool, metrics: { access: 'public' } });
    try {
      // The dashboard's October overview: the group total in USD at the rates of 2026-10-31 (ecb 2026-10-30: EUR->USD
      // is 1 / 0.92 = 1.08695652174), the USD totals as they are.
      const key = (await testKey(store.pool, { name: 'audrey', roles: ['auditor'], kind: 'person' })).secret;
      const overview = (
        await app.inject({ method: 'GET', url: '/v1/dashboard/overview?period=2026-10', headers: { authorization: `Bearer ${key}` } })
      ).json();
      const cents = (major: string) => BigInt(major.replace('.', '')); // two places in USD and EUR
      const byCurrency = (currency: string) =>
        (overview.totals as Array<{ currency: string; invoiced: string }>)
          .filter((t) => t.currency === currency)
          .reduce((sum, t) => sum + cents(t.invoiced), 0n);
      const expected = byCurrency('USD') + (byCurrency('EUR') * 108695652174n + 50000000000n) / 100000000000n;
      assert.deepEqual(
        [overview.group.currency, overview.group.rate_source, overview.group.rate_date, overview.group.missing],
        ['USD', 'ecb', '2026-10-30', []],
      );
      assert.equal(cents(overview.group.invoiced), expected);
      const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(
        text,
        /accrue_reporting_amount\{measure="receivable_open",currency="USD",rate_source="ecb",rate_date="\d{4}-\d{2}-\d{2}"\} -?\d/,
      );
      assert.match(text, /accrue_reporting_amount\{measure="unbilled",currency="USD"/);
    } finally {
      delete process.env.ACCRUE_REPORTING_CURRENCY;
      await app.close();
    }
  });
});
