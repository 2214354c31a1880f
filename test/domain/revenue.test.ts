// Revenue recognition (src/domain/revenue.ts), worked by hand: an annual fee billed in advance is deferred and
// recognized one equal part per month (the remainder in the last); usage delivered in November and invoiced on
// December 1 is accrued on November 30 and the accrual reversed on December 1.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { invoiceJournal, revenueAccountResolver, trialBalance } from '../../src/domain/journal.js';
import { monthlyAmounts, recognitionJournal, scheduleFor, unbilledAccrual, type RevenueSchedule } from '../../src/domain/revenue.js';
import type { AccountMap, Invoice, InvoiceLine, Journal, Product } from '../../src/domain/model.js';

const US: AccountMap = { receivable: '1200', cash: '1000', tax_payable: '2300', deferred_revenue: '2400', unbilled_receivable: '1250' };
const PRODUCTS: Product[] = [
  { id: 'platform', name: 'Platform', revenue_account: { 'nw-us': '4090' } },
  { id: 'api', name: 'API', revenue_account: { 'nw-us': '4000' } },
];
const revenue = revenueAccountResolver(PRODUCTS, 'nw-us');
const erp = (customer: string) => (customer === 'acme' ? 'C-10042' : `C-${customer}`);

function annualInvoice(amount: bigint): Invoice {
  const line: InvoiceLine = {
    line_no: 1,
    kind: 'flat',
    product: 'platform',
    meter: null,
    price_id: null,
    price_version: null,
    description: 'Platform, annual',
    quantity: '1',
    unit_amount: null,
    tiers: [],
    amount_minor: amount,
    period_start: '2026-01-01',
    period_end: '2027-01-01',
    taxable: false,
  };
  return {
    id: 'inv-acme-annual',
    key: 'inv:v1:nw-us:acme:USD:2026-01',
    kind: 'invoice',
    number: 'NWUS-000007',
    status: 'finalized',
    legal_entity: 'nw-us',
    customer: 'acme',
    currency: 'USD',
    period_start: '2026-01-01',
    period_end: '2026-02-01',
    rounding: 'half_up',
    lines: [line],
    subtotal_minor: amount,
    discount_minor: 0n,
    credits_applied_minor: 0n,
    tax_lines: [],
    tax_minor: 0n,
    total_minor: amount,
    rating_run: 'rr',
  };
}
const rows = (j: Journal | null | undefined) => j?.lines.map((l) => [l.account, l.debit_minor, l.credit_minor, l.customer ?? null]);
const MONTHS = ['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12'].map((m) => `2026-${m}`);

describe('an annual plan billed in advance, recognized over twelve months', () => {
  const invoice = annualInvoice(120000n);
  const schedule = scheduleFor(invoice, invoice.lines[0]!)!;

  it('the invoice books the 1,200.00 as deferred revenue, not revenue', () => {
    assert.deepEqual(rows(invoiceJournal(invoice, US, revenue, 'C-10042', '2026-01-31')), [
      ['1200', 120000n, 0n, 'C-10042'],
      ['2400', 0n, 120000n, 'C-10042'],
    ]);
    assert.deepEqual(
      [schedule.id, schedule.months, schedule.service_start, schedule.service_end],
      ['rev:v1:inv-acme-annual:1', 12, '2026-01-01', '2027-01-01'],
    );
  });

  it('recognizes 100.00 a month, each month dated its last day; after December nothing is deferred', () => {
    assert.deepEqual(
      monthlyAmounts(schedule).map((m) => m.amount_minor),
      Array(12).fill(10000n),
    );
    const journals = MONTHS.map((m) => recognitionJournal('nw-us', m, [schedule], US, revenue, erp)!);
    assert.deepEqual(rows(journals[0]), [
      ['2400', 10000n, 0n, 'C-10042'],
      ['4090', 0n, 10000n, null],
    ]);
    assert.deepEqual(journals.map((j) => j.posting_date).slice(0, 3), ['2026-01-31', '2026-02-28', '2026-03-31']);
    assert.equal(journals[0]!.id, 'jrn:v1:revenue_recognition:revrec:nw-us:2026-01');
    const all = [invoiceJournal(invoice, US, revenue, 'C-10042', '2026-01-31')!, ...journals];
    const balance = (account: string, upTo: number) =>
      trialBalance(all.slice(0, upTo + 1)).find((r) => r.account === account)?.balance_minor ?? 0n;
    assert.equal(balance('2400', 6), -60000n); // six months recognized, 600.00 still deferred
    assert.equal(balance('2400', 12), 0n);
    assert.equal(balance('4090', 12), -120000n);
    assert.equal(recognitionJournal('nw-us', '2027-01', [schedule], US, revenue, erp), null);
  });

  it('1,000.00 over twelve months: 83.33 eleven times and 83.37 in December', () => {
    const s = scheduleFor(annualInvoice(100000n), annualInvoice(100000n).lines[0]!)!;
    const parts = monthlyAmounts(s).map((m) => m.amount_minor);
    assert.deepEqual(parts, [...Array(11).fill(8333n), 8337n]);
  });

  it('property: the monthly parts sum to the amount, none negative, for any amount and term', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 15n }), fc.integer({ min: 2, max: 120 }), (amount, months) => {
        const end = new Date(Date.UTC(2026, months, 1)).toISOString().slice(0, 10);
        const s: Pick<RevenueSchedule, 'amount_minor' | 'service_start' | 'service_end'> = {
          amount_minor: amount,
          service_start: '2026-01-01',
          service_end: end,
        };
        const parts = monthlyAmounts(s);
        assert.equal(parts.length, months);
        assert.equal(
          parts.reduce((sum, p) => sum + p.amount_minor, 0n),
          amount,
        );
        assert.ok(parts.every((p) => p.amount_minor >= 0n));
      }),
      { numRuns: 300 },
    );
  });
});

describe('unbilled usage accrued at a month end', () => {
  it('accrues 250.00 of November usage on 2026-11-30 and reverses it on 2026-12-01, line for line', () => {
    const result = unbilledAccrual(
      'nw-us',
      '2026-11',
      'USD',
      [
        { customer: 'acme', product: 'api', amount_minor: 15000n },
        { customer: 'acme', product: 'platform', amount_minor: 10000n },
      ],
      US,
      revenue,
      erp,
    )!;
    assert.deepEqual(rows(result.accrual), [
      ['1250', 25000n, 0n, 'C-10042'],
      ['4000', 0n, 15000n, null],
      ['4090', 0n, 10000n, null],
    ]);
    assert.deepEqual(
      [result.accrual.posting_date, result.reversal.posting_date, result.reversal.reverses],
      ['2026-11-30', '2026-12-01', result.accrual.id],
    );
    assert.deepEqual(rows(result.reversal), [
      ['1250', 0n, 25000n, 'C-10042'],
      ['4000', 15000n, 0n, null],
      ['4090', 10000n, 0n, null],
    ]);
    // November holds the revenue; from December 1 the unbilled receivable is back to zero, the invoice books it.
    assert.equal(trialBalance([result.accrual]).find((r) => r.account === '4000')?.balance_minor, -15000n);
    assert.equal(trialBalance([result.accrual, result.reversal]).find((r) => r.account === '1250')?.balance_minor ?? 0n, 0n);
  });

  it('names a missing unbilled_receivable account', () => {
    const { unbilled_receivable: _, ...without } = US;
    assert.throws(
      () => unbilledAccrual('nw-us', '2026-11', 'USD', [{ customer: 'acme', product: 'api', amount_minor: 1n }], without, revenue, erp),
      /no unbilled_receivable account/,
    );
  });
});
