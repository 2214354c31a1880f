import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  accountRoles,
  assertBalanced,
  checkBalanced,
  checkInvoiceTotals,
  creditDrawdownJournal,
  creditNoteJournal,
  invoiceJournal,
  invoiceJournals,
  journalId,
  ledgerAccountName,
  paymentJournal,
  revenueAccountResolver,
  trialBalance,
} from '../../src/domain/journal.js';
import type { AccountMap, Invoice, InvoiceLine, Journal, LineKind, Product } from '../../src/domain/model.js';
import { formatProblems } from '../../src/domain/result.js';

// ---------- Northwind's accounts and products (docs/catalog.md) ----------

const ACCOUNTS: Record<string, AccountMap> = {
  'nw-us': { receivable: '1200', cash: '1000', tax_payable: '2300', deferred_revenue: '2400' },
  'nw-de': { receivable: '1400', cash: '1800', tax_payable: '3806', deferred_revenue: '3900' },
};
const PRODUCTS: Product[] = [
  { id: 'api', name: 'API Services', revenue_account: { 'nw-us': '4000', 'nw-de': '8400' } },
  { id: 'analytics', name: 'Analytics', revenue_account: { 'nw-us': '4010', 'nw-de': '8410' } },
  { id: 'storage', name: 'Managed Storage', revenue_account: { 'nw-us': '4020', 'nw-de': '8420' } },
  { id: 'compute', name: 'Managed Compute', revenue_account: { 'nw-us': '4030', 'nw-de': '8430' } },
  { id: 'platform', name: 'Platform Fee', revenue_account: { 'nw-us': '4090', 'nw-de': '8490' } },
];
const US = ACCOUNTS['nw-us']!;
const DE = ACCOUNTS['nw-de']!;
const usRevenue = revenueAccountResolver(PRODUCTS, 'nw-us');
const deRevenue = revenueAccountResolver(PRODUCTS, 'nw-de');

function line(line_no: number, kind: LineKind, product: string, amount_minor: bigint, extra: Partial<InvoiceLine> = {}): InvoiceLine {
  return {
    line_no,
    kind,
    product,
    meter: null,
    price_id: null,
    price_version: null,
    description: `${kind} ${product}`,
    quantity: '1',
    unit_amount: null,
    tiers: [],
    amount_minor,
    period_start: '2026-11-01',
    period_end: '2026-12-01',
    taxable: true,
    ...extra,
  };
}

/** An invoice whose totals follow from its lines and the given tax. */
function invoice(fields: {
  id: string;
  legal_entity?: string;
  customer?: string;
  currency?: string;
  lines: InvoiceLine[];
  tax_minor?: bigint;
  kind?: Invoice['kind'];
  corrects?: string;
}): Invoice {
  const abs = (v: bigint) => (v < 0n ? -v : v);
  const sum = (kinds: LineKind[], f: (v: bigint) => bigint = (v) => v) =>
    fields.lines.filter((l) => kinds.includes(l.kind)).reduce((s, l) => s + f(l.amount_minor), 0n);
  const subtotal = sum(['flat', 'usage', 'minimum_true_up', 'late_usage']);
  const discount = sum(['discount'], abs);
  const credits = sum(['credit'], abs);
  const tax = fields.tax_minor ?? 0n;
  const built: Invoice = {
    id: fields.id,
    key: `inv:v1:${fields.legal_entity ?? 'nw-us'}:${fields.customer ?? 'acme'}:${fields.currency ?? 'USD'}:2026-11`,
    kind: fields.kind ?? 'invoice',
    number: `N-${fields.id}`,
    status: 'finalized',
    legal_entity: fields.legal_entity ?? 'nw-us',
    customer: fields.customer ?? 'acme',
    currency: fields.currency ?? 'USD',
    period_start: '2026-11-01',
    period_end: '2026-12-01',
    rounding: 'half_up',
    lines: fields.lines,
    subtotal_minor: subtotal,
    discount_minor: discount,
    credits_applied_minor: credits,
    tax_lines: tax === 0n ? [] : [{ jurisdiction: 'X', rate: '0.1', taxable_minor: subtotal - discount - credits, tax_minor: tax }],
    tax_minor: tax,
    total_minor: subtotal - discount - credits + tax,
    rating_run: 'rr:v1:test',
  };
  if (fields.corrects !== undefined) built.corrects = fields.corrects;
  return built;
}

/** Lines as [account, debit, credit, customer?] rows in major units, for tables written by hand. */
const rows = (journal: Journal | null) =>
  journal === null
    ? null
    : journal.lines.map((l) => [l.line_no, l.account, l.debit_minor, l.credit_minor, l.customer ?? null, l.product ?? null]);

function ok<T>(result: { ok: true; value: T } | { ok: false; problems: { path: string; message: string; code: string }[] }): T {
  assert.ok(result.ok, result.ok ? '' : formatProblems(result.problems));
  return result.value;
}

// Acme, November 2026: platform fee 99.00, API usage 360.00, 10% off API (36.00), 200.00 of prepaid credit
// drawn against API, California tax 7.25% on 459.00 - 36.00 - 200.00 = 223.00 -> 16.1675 -> 16.17 (half up).
// Total 459.00 - 36.00 - 200.00 + 16.17 = 239.17.
const ACME = invoice({
  id: 'inv-acme-2026-11',
  lines: [
    line(1, 'flat', 'platform', 9900n),
    line(2, 'usage', 'api', 36000n),
    line(3, 'discount', 'api', -3600n),
    line(4, 'credit', 'api', -20000n, { credit_grant: 'acme:2026-11-01:0' }),
  ],
  tax_minor: 1617n,
});

describe('invoice journals: worked examples', () => {
  it('the Acme invoice totals are what the hand computation says', () => {
    assert.equal(ACME.subtotal_minor, 45900n);
    assert.equal(ACME.discount_minor, 3600n);
    assert.equal(ACME.credits_applied_minor, 20000n);
    assert.equal(ACME.total_minor, 23917n);
    ok(checkInvoiceTotals(ACME));
  });

  it('invoice: Dr receivable 239.17, Cr API revenue 124.00 (360 - 36 - 200 drawn), Cr platform 99.00, Cr tax 16.17', () => {
    const journal = invoiceJournal(ACME, US, usRevenue, 'C-10042', '2026-12-01');
    assert.ok(journal);
    assert.equal(journal.id, 'jrn:v1:invoice:inv-acme-2026-11');
    assert.equal(journal.key, journal.id);
    assert.equal(journal.kind, 'invoice');
    assert.equal(journal.source_document, 'inv-acme-2026-11');
    assert.equal(journal.legal_entity, 'nw-us');
    assert.equal(journal.posting_date, '2026-12-01');
    assert.deepEqual(rows(journal), [
      [1, '1200', 23917n, 0n, 'C-10042', null],
      [2, '4000', 0n, 12400n, null, 'api'],
      [3, '4090', 0n, 9900n, null, 'platform'],
      [4, '2300', 0n, 1617n, null, null],
    ]);
    assert.ok(journal.lines.every((l) => l.currency === 'USD'));
  });

  it('credit drawdown: Dr deferred revenue 200.00, Cr API revenue 200.00', () => {
    const journal = creditDrawdownJournal(ACME, US, usRevenue, 'C-10042', '2026-12-01');
    assert.ok(journal);
    assert.equal(journal.id, 'jrn:v1:credit_drawdown:inv-acme-2026-11');
    assert.equal(journal.kind, 'credit_drawdown');
    assert.deepEqual(rows(journal), [
      [1, '2400', 20000n, 0n, 'C-10042', null],
      [2, '4000', 0n, 20000n, null, 'api'],
    ]);
    assert.match(journal.lines[0]!.memo ?? '', /acme:2026-11-01:0/);
  });

  it('together: API revenue 324.00 (360 - 36) recognized once, deferred revenue down 200.00, receivable 239.17', () => {
    const journals = invoiceJournals(ACME, US, usRevenue, 'C-10042', '2026-12-01');
    assert.deepEqual(
      journals.map((j) => j.kind),
      ['invoice', 'credit_drawdown'],
    );
    assert.deepEqual(
      trialBalance(journals).map((r) => [r.account, r.debit_minor, r.credit_minor, r.balance_minor]),
      [
        ['1200', 23917n, 0n, 23917n],
        ['2300', 0n, 1617n, -1617n],
        ['2400', 20000n, 0n, 20000n],
        ['4000', 0n, 32400n, -32400n],
        ['4090', 0n, 9900n, -9900n],
      ],
    );
  });

  it('Umbrella (EUR, no credits): 10% off API, three products, 19% VAT; no drawdown journal', () => {
    // API 400 packages x 0.30 = 120.00, 10% off = 12.00; compute base 40.00; platform 249.00.
    // VAT 19% of 397.00 = 75.43; total 472.43.
    const umbrella = invoice({
      id: 'inv-umbrella-2026-11',
      legal_entity: 'nw-de',
      customer: 'umbrella',
      currency: 'EUR',
      lines: [
        line(1, 'flat', 'platform', 24900n),
        line(2, 'usage', 'api', 12000n),
        line(3, 'usage', 'compute', 4000n),
        line(4, 'discount', 'api', 1200n),
      ],
      tax_minor: 7543n,
    });
    assert.equal(umbrella.total_minor, 47243n);
    const journals = invoiceJournals(umbrella, DE, deRevenue, 'D-20011', '2026-12-01');
    assert.equal(journals.length, 1);
    assert.deepEqual(rows(journals[0]!), [
      [1, '1400', 47243n, 0n, 'D-20011', null],
      [2, '8400', 0n, 10800n, null, 'api'],
      [3, '8430', 0n, 4000n, null, 'compute'],
      [4, '8490', 0n, 24900n, null, 'platform'],
      [5, '3806', 0n, 7543n, null, null],
    ]);
  });

  it('products sharing a revenue account are summed on one line; credits split across products', () => {
    const shared = (product: string) => (product === 'platform' ? '4090' : '4000');
    const inv = invoice({
      id: 'inv-shared',
      lines: [
        line(1, 'usage', 'api', 10000n),
        line(2, 'usage', 'storage', 5000n),
        line(3, 'flat', 'platform', 9900n),
        line(4, 'credit', 'api', -3000n),
        line(5, 'credit', 'storage', -2000n),
      ],
      tax_minor: 0n,
    });
    assert.deepEqual(rows(invoiceJournal(inv, US, shared, 'C-1', '2026-12-01')), [
      [1, '1200', 19900n, 0n, 'C-1', null],
      [2, '4000', 0n, 10000n, null, null],
      [3, '4090', 0n, 9900n, null, 'platform'],
    ]);
    assert.equal(invoiceJournal(inv, US, shared, 'C-1', '2026-12-01')!.lines[1]!.memo, 'Revenue api, storage');
    assert.deepEqual(rows(creditDrawdownJournal(inv, US, shared, 'C-1', '2026-12-01')), [
      [1, '2400', 5000n, 0n, 'C-1', null],
      [2, '4000', 0n, 5000n, null, null],
    ]);
  });

  it('an invoice entirely covered by credits posts only its drawdown (zero lines are omitted)', () => {
    const inv = invoice({ id: 'inv-covered', lines: [line(1, 'usage', 'api', 15000n), line(2, 'credit', 'api', -15000n)] });
    assert.equal(inv.total_minor, 0n);
    assert.equal(invoiceJournal(inv, US, usRevenue, 'C-10042', '2026-12-01'), null);
    const journals = invoiceJournals(inv, US, usRevenue, 'C-10042', '2026-12-01');
    assert.deepEqual(
      journals.map((j) => [j.kind, rows(j)]),
      [
        [
          'credit_drawdown',
          [
            [1, '2400', 15000n, 0n, 'C-10042', null],
            [2, '4000', 0n, 15000n, null, 'api'],
          ],
        ],
      ],
    );
  });

  it('no credits: no drawdown journal', () => {
    const inv = invoice({ id: 'inv-plain', lines: [line(1, 'flat', 'platform', 9900n)], tax_minor: 718n });
    assert.equal(creditDrawdownJournal(inv, US, usRevenue, 'C-10042', '2026-12-01'), null);
  });

  it('refuses drafts, credit notes and inconsistent totals (bugs upstream), naming the field', () => {
    assert.throws(
      () => invoiceJournal({ ...ACME, status: 'draft', number: null }, US, usRevenue, 'C-10042', '2026-12-01'),
      /only a finalized invoice is posted/,
    );
    assert.throws(
      () => invoiceJournal({ ...ACME, kind: 'credit_note', corrects: 'x' }, US, usRevenue, 'C-10042', '2026-12-01'),
      /posts invoices/,
    );
    assert.throws(
      () => invoiceJournal({ ...ACME, total_minor: 23918n }, US, usRevenue, 'C-10042', '2026-12-01'),
      /total_minor: is 239\.18 USD but subtotal - discount - credits \+ tax come to 239\.17 USD/,
    );
    const inconsistent = checkInvoiceTotals({ ...ACME, credits_applied_minor: 10000n, total_minor: 33917n });
    assert.equal(inconsistent.ok, false);
    assert.deepEqual(inconsistent.ok ? [] : inconsistent.problems.map((p) => [p.path, p.code]), [
      ['credits_applied_minor', 'inconsistent_total'],
    ]);
    assert.throws(
      () => invoiceJournal(ACME, US, () => undefined as unknown as string, 'C-10042', '2026-12-01'),
      /no revenue account for product "platform"/,
    );
  });
});

describe('credit note and payment journals: worked examples', () => {
  it('a credit note for the platform fee swaps the invoice sides: Dr revenue 99.00, Dr tax 7.18, Cr receivable 106.18', () => {
    // 99.00 x 7.25% = 7.1775 -> 7.18
    const note = invoice({
      id: 'cn-acme-1',
      kind: 'credit_note',
      corrects: 'inv-acme-2026-11',
      lines: [line(1, 'flat', 'platform', 9900n)],
      tax_minor: 718n,
    });
    const journal = creditNoteJournal(note, US, usRevenue, 'C-10042', '2026-12-10');
    assert.ok(journal);
    assert.equal(journal.id, 'jrn:v1:credit_note:cn-acme-1');
    assert.equal(journal.kind, 'credit_note');
    assert.match(journal.memo, /corrects inv-acme-2026-11/);
    assert.deepEqual(rows(journal), [
      [1, '4090', 9900n, 0n, null, 'platform'],
      [2, '2300', 718n, 0n, null, null],
      [3, '1200', 0n, 10618n, 'C-10042', null],
    ]);
  });

  it('a credit note of the whole Acme invoice cancels the invoice and drawdown journals, restoring the credit to deferred revenue', () => {
    const note: Invoice = { ...ACME, id: 'cn-acme-full', kind: 'credit_note', corrects: ACME.id };
    const journal = creditNoteJournal(note, US, usRevenue, 'C-10042', '2026-12-10');
    assert.ok(journal);
    assert.deepEqual(rows(journal), [
      [1, '4000', 32400n, 0n, null, 'api'],
      [2, '4090', 9900n, 0n, null, 'platform'],
      [3, '2300', 1617n, 0n, null, null],
      [4, '1200', 0n, 23917n, 'C-10042', null],
      [5, '2400', 0n, 20000n, 'C-10042', null],
    ]);
    const all = [...invoiceJournals(ACME, US, usRevenue, 'C-10042', '2026-12-01'), journal];
    assert.ok(trialBalance(all).every((r) => r.balance_minor === 0n));
  });

  it('refuses a credit note that corrects nothing, and an invoice passed as a credit note', () => {
    assert.throws(
      () => creditNoteJournal({ ...ACME, kind: 'credit_note' }, US, usRevenue, 'C-10042', '2026-12-10'),
      /does not say which invoice it corrects/,
    );
    assert.throws(() => creditNoteJournal(ACME, US, usRevenue, 'C-10042', '2026-12-10'), /posts credit notes/);
  });

  it('a payment: Dr cash 239.17, Cr receivable 239.17 (ERP customer on the line), posted on the day received', () => {
    const journal = paymentJournal(
      {
        id: 'pay-1',
        invoice_id: ACME.id,
        customer: 'acme',
        erp_customer_id: 'C-10042',
        legal_entity: 'nw-us',
        currency: 'USD',
        amount_minor: 23917n,
        received_on: '2026-12-15',
      },
      US,
    );
    assert.equal(journal.id, 'jrn:v1:payment:pay-1');
    assert.equal(journal.posting_date, '2026-12-15');
    assert.deepEqual(rows(journal), [
      [1, '1000', 23917n, 0n, null, null],
      [2, '1200', 0n, 23917n, 'C-10042', null],
    ]);
    const settled = [...invoiceJournals(ACME, US, usRevenue, 'C-10042', '2026-12-01'), journal];
    assert.equal(trialBalance(settled).find((r) => r.account === '1200')!.balance_minor, 0n);
    assert.throws(
      () =>
        paymentJournal(
          {
            id: 'pay-0',
            invoice_id: 'x',
            customer: 'acme',
            erp_customer_id: 'C',
            legal_entity: 'nw-us',
            currency: 'USD',
            amount_minor: 0n,
            received_on: '2026-12-15',
          },
          US,
        ),
      /positive amount/,
    );
  });

  it('journal ids are deterministic', () => {
    assert.equal(journalId('payment', 'pay-1'), 'jrn:v1:payment:pay-1');
    assert.deepEqual(
      invoiceJournals(ACME, US, usRevenue, 'C-10042', '2026-12-01'),
      invoiceJournals(structuredClone(ACME), US, usRevenue, 'C-10042', '2026-12-01'),
    );
  });
});

describe('balance rules', () => {
  const base = (lines: Journal['lines']): Journal => ({
    id: 'jrn:v1:invoice:bad',
    key: 'jrn:v1:invoice:bad',
    legal_entity: 'nw-us',
    posting_date: '2026-12-01',
    source_document: 'bad',
    kind: 'invoice',
    memo: '',
    lines,
  });
  const l = (line_no: number, account: string, debit_minor: bigint, credit_minor: bigint, currency = 'USD') => ({
    line_no,
    account,
    debit_minor,
    credit_minor,
    currency,
  });
  const problems = (journal: Journal) => {
    const checked = checkBalanced(journal);
    assert.equal(checked.ok, false);
    return checked.ok ? [] : checked.problems.map((p) => `${p.code} ${p.path}: ${p.message}`);
  };

  it('an unbalanced journal is refused, naming the difference', () => {
    const journal = base([l(1, '1200', 10000n, 0n), l(2, '4000', 0n, 9000n)]);
    assert.deepEqual(problems(journal), ['unbalanced lines: debits 100.00 USD and credits 90.00 USD differ by 10.00 USD']);
    assert.throws(
      () => assertBalanced(journal),
      /journal jrn:v1:invoice:bad is not balanced:\nlines: debits 100\.00 USD and credits 90\.00 USD differ by 10\.00 USD/,
    );
  });

  it('balances per currency: USD and EUR do not offset each other', () => {
    assert.deepEqual(problems(base([l(1, '1200', 100n, 0n, 'USD'), l(2, '4000', 0n, 100n, 'EUR')])), [
      'unbalanced lines: debits 0.00 EUR and credits 1.00 EUR differ by -1.00 EUR',
      'unbalanced lines: debits 1.00 USD and credits 0.00 USD differ by 1.00 USD',
    ]);
  });

  it('a line with both sides, a negative amount, a zero line, too few lines and a bad date are each named', () => {
    assert.deepEqual(problems(base([l(1, '1200', 100n, 100n), l(2, '4000', 0n, 0n)])), [
      'both_sides lines[0]: has both a debit and a credit on account 1200; a line is one or the other',
      'zero_line lines[1]: moves nothing on account 4000; zero lines are omitted',
    ]);
    assert.deepEqual(problems(base([l(1, '1200', -100n, 0n), l(2, '4000', 0n, -100n)])), [
      'negative lines[0].debit_minor: must not be negative, got -1.00 USD',
      'negative lines[1].credit_minor: must not be negative, got -1.00 USD',
    ]);
    assert.deepEqual(problems(base([])), ['too_few_lines lines: a journal needs at least two lines, jrn:v1:invoice:bad has 0']);
    assert.deepEqual(problems({ ...base([l(1, '1200', 1n, 0n), l(2, '4000', 0n, 1n)]), posting_date: '2026-12' }), [
      'not_date posting_date: must be a date YYYY-MM-DD, got "2026-12"',
    ]);
  });
});

describe('account roles and ledger names', () => {
  it('roles come from the account maps and products; an account with two roles is refused', () => {
    const roles = ok(accountRoles(ACCOUNTS, PRODUCTS));
    assert.equal(roles['nw-us']!['1200'], 'receivable');
    assert.equal(roles['nw-de']!['8430'], 'revenue');
    const clash = accountRoles(ACCOUNTS, [{ id: 'x', name: 'X', revenue_account: { 'nw-us': '1200' } }]);
    assert.equal(clash.ok, false);
    assert.match(
      clash.ok ? '' : formatProblems(clash.problems),
      /products\[0\]\.revenue_account\.nw-us: account 1200 of nw-us is already the receivable account/,
    );
  });

  it('names by role, with the legal entity as a capitalized component when asked', () => {
    assert.equal(ledgerAccountName('receivable', 'nw-us', '1200', false), 'Assets:Receivable:1200');
    assert.equal(ledgerAccountName('receivable', 'nw-us', '1200', true), 'Assets:NwUs:Receivable:1200');
    assert.equal(ledgerAccountName('deferred_revenue', 'nw-de', '3900', true), 'Liabilities:NwDe:DeferredRevenue:3900');
    assert.equal(ledgerAccountName('tax_payable', 'nw_de', 'ust 19%', true), 'Liabilities:NwDe:TaxPayable:Ust-19-');
    assert.equal(ledgerAccountName('revenue', 'nw-us', '4000', false), 'Income:Revenue:4000');
    assert.equal(ledgerAccountName('cash', 'nw-us', '1000', false), 'Assets:Cash:1000');
    assert.throws(() => ledgerAccountName('bad_debt', 'nw-us', '6900', false), /role bad_debt/);
  });
});

// ---------- property: consistent invoices always give balanced journals that recognize revenue once ----------

const PRODUCT_IDS = PRODUCTS.map((p) => p.id);
const amount = fc.bigInt({ min: 0n, max: 10_000_000_00n });

/** Charges per product; discounts and credits no larger than what they reduce; either sign convention. */
const arbitraryInvoice = fc
  .record({
    charges: fc.array(
      fc.record({
        kind: fc.constantFrom<LineKind>('flat', 'usage', 'minimum_true_up', 'late_usage'),
        product: fc.constantFrom(...PRODUCT_IDS),
        amount,
      }),
      { minLength: 0, maxLength: 8 },
    ),
    discountShares: fc.array(fc.nat({ max: 100 }), { minLength: 8, maxLength: 8 }),
    creditShares: fc.array(fc.nat({ max: 100 }), { minLength: 8, maxLength: 8 }),
    negativeReductions: fc.boolean(),
    taxPercent: fc.nat({ max: 25 }),
    entity: fc.constantFrom('nw-us', 'nw-de'),
  })
  .map(({ charges, discountShares, creditShares, negativeReductions, taxPercent, entity }) => {
    const lines: InvoiceLine[] = [];
    const sign = negativeReductions ? -1n : 1n;
    charges.forEach((c) => lines.push(line(lines.length + 1, c.kind, c.product, c.amount)));
    charges.forEach((c, i) => {
      const discount = (c.amount * BigInt(discountShares[i]!)) / 200n; // at most half
      if (discount > 0n) lines.push(line(lines.length + 1, 'discount', c.product, sign * discount));
      const credit = ((c.amount - discount) * BigInt(creditShares[i]!)) / 100n;
      if (credit > 0n) lines.push(line(lines.length + 1, 'credit', c.product, sign * credit, { credit_grant: 'g1' }));
    });
    const net = lines.reduce(
      (s, l) =>
        s + (l.kind === 'discount' || l.kind === 'credit' ? -(l.amount_minor < 0n ? -l.amount_minor : l.amount_minor) : l.amount_minor),
      0n,
    );
    return invoice({
      id: `inv-${entity}-${lines.length}`,
      legal_entity: entity,
      currency: entity === 'nw-us' ? 'USD' : 'EUR',
      lines,
      tax_minor: (net * BigInt(taxPercent)) / 100n,
    });
  });

describe('property: journals of consistent invoices', () => {
  it('are balanced, and together recognize charges - discounts as revenue, the total as receivable, the credits out of deferred revenue', () => {
    fc.assert(
      fc.property(arbitraryInvoice, (inv) => {
        ok(checkInvoiceTotals(inv));
        const accounts = ACCOUNTS[inv.legal_entity]!;
        const revenueOf = revenueAccountResolver(PRODUCTS, inv.legal_entity);
        const journals = invoiceJournals(inv, accounts, revenueOf, 'C-1', '2026-12-01');
        for (const j of journals) {
          ok(checkBalanced(j));
          assert.ok(j.lines.every((l, i) => l.line_no === i + 1 && (l.debit_minor === 0n) !== (l.credit_minor === 0n)));
        }
        const balance = (account: string) => trialBalance(journals).find((r) => r.account === account)?.balance_minor ?? 0n;
        assert.equal(balance(accounts.receivable), inv.total_minor);
        assert.equal(balance(accounts.deferred_revenue), inv.credits_applied_minor);
        assert.equal(balance(accounts.tax_payable), -inv.tax_minor);
        const revenueAccounts = new Set(PRODUCTS.map((p) => p.revenue_account[inv.legal_entity]!));
        const revenue = trialBalance(journals)
          .filter((r) => revenueAccounts.has(r.account))
          .reduce((s, r) => s + r.balance_minor, 0n);
        assert.equal(-revenue, inv.subtotal_minor - inv.discount_minor);

        // A credit note of the same content reverses everything.
        const note = creditNoteJournal(
          { ...inv, id: `cn-${inv.id}`, kind: 'credit_note', corrects: inv.id },
          accounts,
          revenueOf,
          'C-1',
          '2026-12-10',
        );
        if (note !== null) ok(checkBalanced(note));
        assert.ok(trialBalance([...journals, ...(note ? [note] : [])]).every((r) => r.balance_minor === 0n));
      }),
      { numRuns: 300 },
    );
  });

  it('refuse every single-amount change that breaks the totals', () => {
    fc.assert(
      fc.property(
        arbitraryInvoice,
        fc.constantFrom('subtotal_minor', 'discount_minor', 'credits_applied_minor', 'tax_minor', 'total_minor'),
        fc.bigInt({ min: 1n, max: 1000n }),
        (inv, field, delta) => {
          const broken = { ...inv, [field]: (inv[field as keyof Invoice] as bigint) + delta } as Invoice;
          assert.equal(checkInvoiceTotals(broken).ok, false);
          assert.throws(
            () =>
              invoiceJournals(broken, ACCOUNTS[inv.legal_entity]!, revenueAccountResolver(PRODUCTS, inv.legal_entity), 'C-1', '2026-12-01'),
            /inconsistent totals/,
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});
