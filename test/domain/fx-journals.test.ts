// Books in the functional currency (src/domain/fx-journals.ts), worked by hand: Northwind GmbH (nw-de, EUR books)
// bills a US customer in USD. Every expected amount below was computed by hand from the rates given.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  inFunctionalCurrency,
  paymentJournalInFunctional,
  revaluationJournals,
  type OpenReceivable,
} from '../../src/domain/fx-journals.js';
import { invoiceJournal, revenueAccountResolver, trialBalance } from '../../src/domain/journal.js';
import type { AccountMap, Invoice, InvoiceLine, Journal, JournalFx, Product } from '../../src/domain/model.js';

const DE: AccountMap = {
  receivable: '1400',
  cash: '1800',
  tax_payable: '3806',
  deferred_revenue: '3900',
  fx_gain: '4840',
  fx_loss: '6880',
  fx_unrealized: '4845',
};
const PRODUCTS: Product[] = [
  { id: 'api', name: 'API', revenue_account: { 'nw-de': '8400' } },
  { id: 'analytics', name: 'Analytics', revenue_account: { 'nw-de': '8410' } },
  { id: 'storage', name: 'Storage', revenue_account: { 'nw-de': '8420' } },
];
const revenue = revenueAccountResolver(PRODUCTS, 'nw-de');

const line = (line_no: number, product: string, amount_minor: bigint): InvoiceLine => ({
  line_no,
  kind: 'usage',
  product,
  meter: null,
  price_id: null,
  price_version: null,
  description: product,
  quantity: '1',
  unit_amount: null,
  tiers: [],
  amount_minor,
  period_start: '2026-10-01',
  period_end: '2026-11-01',
  taxable: false,
});

function usdInvoice(lines: InvoiceLine[]): Invoice {
  const total = lines.reduce((s, l) => s + l.amount_minor, 0n);
  return {
    id: 'inv-hooli-2026-10',
    key: 'inv:v1:nw-de:hooli:USD:2026-10',
    kind: 'invoice',
    number: 'NWDE-000042',
    status: 'finalized',
    legal_entity: 'nw-de',
    customer: 'hooli',
    currency: 'USD',
    period_start: '2026-10-01',
    period_end: '2026-11-01',
    rounding: 'half_even',
    lines,
    subtotal_minor: total,
    discount_minor: 0n,
    credits_applied_minor: 0n,
    tax_lines: [],
    tax_minor: 0n,
    total_minor: total,
    rating_run: 'rr',
  };
}

const at = (rate: string, rate_date: string): JournalFx => ({ currency: 'USD', rate, rate_date, source: 'ecb' });
const rows = (j: Journal) => j.lines.map((l) => [l.account, l.debit_minor, l.credit_minor, l.tx_amount_minor ?? null]);

// 1,000.00 USD in three lines (333.33 + 333.33 + 333.34) booked on 2026-10-31 at 1 USD = 0.92345 EUR.
const invoice = usdInvoice([line(1, 'api', 33333n), line(2, 'analytics', 33333n), line(3, 'storage', 33334n)]);
const booked = inFunctionalCurrency(
  invoiceJournal(invoice, DE, revenue, 'D-30007', '2026-10-31')!,
  at('0.92345', '2026-10-30'),
  'EUR',
  'half_even',
);

describe('an invoice in USD booked in EUR', () => {
  it('converts each line and keeps its USD amount; the rounding cent goes to the largest revenue line, the receivable is exact', () => {
    // 1000.00 × 0.92345 = 923.45 (receivable, exact). 333.33 × 0.92345 = 307.8136 -> 307.81 (twice);
    // 333.34 × 0.92345 = 307.8228 -> 307.82: credits 923.44, one cent short, added to storage (the largest line): 307.83.
    assert.deepEqual(rows(booked), [
      ['1400', 92345n, 0n, 100000n],
      ['8400', 0n, 30781n, 33333n],
      ['8410', 0n, 30781n, 33333n],
      ['8420', 0n, 30783n, 33334n],
    ]);
    assert.ok(booked.lines.every((l) => l.currency === 'EUR' && l.tx_currency === 'USD'));
    assert.deepEqual(booked.fx, { currency: 'USD', rate: '0.92345', rate_date: '2026-10-30', source: 'ecb' });
    assert.equal(booked.id, 'jrn:v1:invoice:inv-hooli-2026-10');
  });
});

const open: OpenReceivable = { invoice: invoice.id, customer: 'D-30007', currency: 'USD', open_tx_minor: 100000n, carrying_minor: 92345n };

describe('paid at another rate: realized exchange gain or loss', () => {
  const payment = (id: string, amount: bigint, date: string) => ({
    id,
    invoice_id: invoice.id,
    customer: 'hooli',
    legal_entity: 'nw-de',
    currency: 'USD',
    amount_minor: amount,
    received_on: date,
  });

  it('1,000.00 USD received at 0.9000: cash 900.00, receivable 923.45 cleared, loss 23.45', () => {
    const j = paymentJournalInFunctional(payment('pay-1', 100000n, '2026-12-15'), open, at('0.9000', '2026-12-15'), DE, 'EUR', 'half_even');
    assert.deepEqual(rows(j), [
      ['1800', 90000n, 0n, 100000n],
      ['6880', 2345n, 0n, null],
      ['1400', 0n, 92345n, 100000n],
    ]);
    // The receivable nets to zero in EUR and in USD.
    const tb = trialBalance([booked, j]).find((r) => r.account === '1400')!;
    assert.equal(tb.balance_minor, 0n);
  });

  it('in two parts: 400.00 at 0.9000 (settles 369.38, loss 9.38), then 600.00 at 0.9500 (settles the rest, 554.07: gain 15.93)', () => {
    const first = paymentJournalInFunctional(
      payment('pay-2a', 40000n, '2026-12-10'),
      open,
      at('0.9000', '2026-12-10'),
      DE,
      'EUR',
      'half_even',
    );
    // 923.45 × 400 / 1000 = 369.38; 400.00 × 0.90 = 360.00.
    assert.deepEqual(rows(first), [
      ['1800', 36000n, 0n, 40000n],
      ['6880', 938n, 0n, null],
      ['1400', 0n, 36938n, 40000n],
    ]);
    const rest: OpenReceivable = { ...open, open_tx_minor: 60000n, carrying_minor: 92345n - 36938n };
    const second = paymentJournalInFunctional(
      payment('pay-2b', 60000n, '2026-12-20'),
      rest,
      at('0.9500', '2026-12-20'),
      DE,
      'EUR',
      'half_even',
    );
    // 600.00 × 0.95 = 570.00; the rest of the carrying amount 554.07: gain 15.93.
    assert.deepEqual(rows(second), [
      ['1800', 57000n, 0n, 60000n],
      ['1400', 0n, 55407n, 60000n],
      ['4840', 0n, 1593n, null],
    ]);
    assert.equal(trialBalance([booked, first, second]).find((r) => r.account === '1400')!.balance_minor, 0n);
  });

  it('a missing gain or loss account is named', () => {
    const { fx_loss: _, ...withoutLoss } = DE;
    assert.throws(
      () =>
        paymentJournalInFunctional(
          payment('pay-3', 100000n, '2026-12-15'),
          open,
          at('0.9000', '2026-12-15'),
          withoutLoss,
          'EUR',
          'half_even',
        ),
      /no fx_loss account, needed for a realized exchange loss/,
    );
  });
});

describe('month-end revaluation, reversed the next day', () => {
  it('the invoice still open at 2026-11-30 at 0.9100: 910.00, 13.45 less than carried: Dr unrealized, Cr receivable; reversed 2026-12-01', () => {
    const result = revaluationJournals('nw-de', '2026-11', [open], new Map([['USD', at('0.9100', '2026-11-30')]]), DE, 'EUR', 'half_even');
    assert.ok(result);
    const { revaluation, reversal } = result;
    assert.deepEqual(
      [revaluation.id, revaluation.posting_date, revaluation.kind],
      ['jrn:v1:fx_revaluation:fxreval:nw-de:2026-11', '2026-11-30', 'fx_revaluation'],
    );
    assert.deepEqual(rows(revaluation), [
      ['4845', 1345n, 0n, null],
      ['1400', 0n, 1345n, null],
    ]);
    assert.deepEqual([reversal.posting_date, reversal.reverses, reversal.kind], ['2026-12-01', revaluation.id, 'fx_revaluation_reversal']);
    assert.deepEqual(rows(reversal), [
      ['4845', 0n, 1345n, null],
      ['1400', 1345n, 0n, null],
    ]);
    // At the month end the receivable stands at 910.00; after the reversal at 923.45 again.
    const balance = (js: Journal[]) => trialBalance(js).find((r) => r.account === '1400')!.balance_minor;
    assert.equal(balance([booked, revaluation]), 91000n);
    assert.equal(balance([booked, revaluation, reversal]), 92345n);
  });

  it('nothing to book when the rate did not move, or nothing is open', () => {
    assert.equal(
      revaluationJournals('nw-de', '2026-11', [open], new Map([['USD', at('0.92345', '2026-11-30')]]), DE, 'EUR', 'half_even'),
      null,
    );
    assert.equal(revaluationJournals('nw-de', '2026-11', [], new Map(), DE, 'EUR', 'half_even'), null);
  });
});

describe('a currency without minor units', () => {
  it('150,000 JPY at 1 JPY = 0.0061 EUR is 915.00 EUR', () => {
    const jpy: Invoice = { ...usdInvoice([line(1, 'api', 150000n)]), currency: 'JPY' };
    const j = inFunctionalCurrency(
      invoiceJournal(jpy, DE, revenue, 'D-30008', '2026-10-31')!,
      { currency: 'JPY', rate: '0.0061', rate_date: '2026-10-30', source: 'ecb' },
      'EUR',
      'half_even',
    );
    assert.deepEqual(rows(j), [
      ['1400', 91500n, 0n, 150000n],
      ['8400', 0n, 91500n, 150000n],
    ]);
  });
});

describe('a line worth less than half a cent', () => {
  it('is refused, naming it, never dropped', () => {
    const tiny = usdInvoice([line(1, 'api', 100000n), line(2, 'analytics', 1n)]);
    assert.throws(
      () => inFunctionalCurrency(invoiceJournal(tiny, DE, revenue, 'D-1', '2026-10-31')!, at('0.004', '2026-10-30'), 'EUR', 'half_even'),
      /line 3 \(1 minor units of USD\) is less than half a minor unit of EUR at 0.004/,
    );
  });
});

describe('property: any journal, any rate', () => {
  it('balances in the functional currency, keeps every transaction amount, and moves at most one line off its own conversion', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 100n, max: 10_000_000_000n }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 10_000, max: 99_999_999 }), // 0.01 to 99.999999: each line is worth a cent or more
        fc.constantFrom<'half_up' | 'half_even'>('half_up', 'half_even'),
        (amounts, rateMillionths, rounding) => {
          const rate = (rateMillionths / 1_000_000).toFixed(6);
          const inv = usdInvoice(amounts.map((a, i) => line(i + 1, PRODUCTS[i % 3]!.id, a)));
          const original = invoiceJournal(inv, DE, revenue, 'D-1', '2026-10-31')!;
          const j = inFunctionalCurrency(original, at(rate, '2026-10-30'), 'EUR', rounding);
          const debit = j.lines.reduce((s, l) => s + l.debit_minor, 0n);
          const credit = j.lines.reduce((s, l) => s + l.credit_minor, 0n);
          assert.equal(debit, credit);
          assert.deepEqual(
            j.lines.map((l) => l.tx_amount_minor),
            original.lines.map((l) => l.debit_minor + l.credit_minor),
          );
          const exact = (l: Journal['lines'][number]) => {
            const scaled = BigInt(rate.replace('.', '')) * l.tx_amount_minor!; // 6 places
            const q = scaled / 1_000_000n;
            const r = scaled % 1_000_000n;
            return r > 500_000n || (r === 500_000n && (rounding === 'half_up' || q % 2n === 1n)) ? q + 1n : q;
          };
          assert.ok(j.lines.filter((l) => l.debit_minor + l.credit_minor !== exact(l)).length <= 1);
          assert.equal(j.lines[0]!.debit_minor, exact(j.lines[0]!), 'the receivable is exact');
        },
      ),
      { numRuns: 300 },
    );
  });
});
