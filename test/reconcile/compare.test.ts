import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareWithLegacy,
  formatComparison,
  parseLegacy,
  type AccrueInvoiceLine,
  type AccrueJournalLine,
  type LegacyData,
} from '../../src/reconcile/compare.js';
import { formatProblems } from '../../src/domain/result.js';

// ---------- a legacy export and Accrue's side of March 2025, with planted differences ----------
//
// acme   / api        Accrue 1200.00, legacy 1199.50       -> differing by 0.50
// acme   / platform   Accrue 500.00 (2 lines: 300 + 200)   -> matched against one legacy line
// acme   / analytics  legacy only 80.00                    -> missing in Accrue
// globex / storage    Accrue only 42.10                    -> missing in legacy
// initech/ api        legacy only (an extra customer)      -> missing in Accrue
// hooli  / api        EUR, nw-de, both 99.99               -> matched
// Journal nw-us 2025-03: 2300 matches (10.00 = 4.00 + 6.00); receivable 1200 debit Accrue 1752.10 vs legacy 1789.50 and
// revenue 4000 credit Accrue 1742.10 vs legacy 1779.50 -> both differ by -37.40; nw-de matches.

const INVOICES_CSV = `customer,legal_entity,currency,period,product,amount
acme,nw-us,USD,2025-03,api,1199.50
acme,nw-us,USD,2025-03,platform,500.00
acme,nw-us,USD,2025-03,analytics,80
initech,nw-us,USD,2025-03,api,10.00
hooli,nw-de,EUR,2025-03,api,99.99
`;

const JOURNAL_CSV = `legal_entity,period,account,currency,debit,credit
nw-us,2025-03,1200,USD,1789.50,
nw-us,2025-03,4000,USD,0,1779.50
nw-us,2025-03,2300,USD,,10.00
nw-de,2025-03,1400,EUR,99.99,0
nw-de,2025-03,8400,EUR,0,99.99
`;

const line = (customer: string, legal_entity: string, currency: string, product: string, amount_minor: bigint): AccrueInvoiceLine => ({
  customer,
  legal_entity,
  currency,
  period: '2025-03',
  product,
  amount_minor,
});
const ACCRUE_LINES: AccrueInvoiceLine[] = [
  line('acme', 'nw-us', 'USD', 'api', 120000n),
  line('acme', 'nw-us', 'USD', 'platform', 30000n),
  line('acme', 'nw-us', 'USD', 'platform', 20000n),
  line('globex', 'nw-us', 'USD', 'storage', 4210n),
  line('hooli', 'nw-de', 'EUR', 'api', 9999n),
];
const jl = (legal_entity: string, account: string, currency: string, debit_minor: bigint, credit_minor: bigint): AccrueJournalLine => ({
  legal_entity,
  period: '2025-03',
  account,
  currency,
  debit_minor,
  credit_minor,
});
const ACCRUE_JOURNAL: AccrueJournalLine[] = [
  jl('nw-us', '1200', 'USD', 150000n, 0n),
  jl('nw-us', '1200', 'USD', 25210n, 0n),
  jl('nw-us', '4000', 'USD', 0n, 174210n),
  jl('nw-us', '2300', 'USD', 0n, 400n),
  jl('nw-us', '2300', 'USD', 0n, 600n),
  jl('nw-de', '1400', 'EUR', 9999n, 0n),
  jl('nw-de', '8400', 'EUR', 0n, 9999n),
];

function legacy(files: { invoices: string; journal_lines?: string } = { invoices: INVOICES_CSV, journal_lines: JOURNAL_CSV }): LegacyData {
  const parsed = parseLegacy(files);
  assert.ok(parsed.ok, parsed.ok ? '' : formatProblems(parsed.problems));
  return parsed.value;
}

const problemsOf = (files: { invoices: string; journal_lines?: string }): string => {
  const parsed = parseLegacy(files);
  assert.equal(parsed.ok, false, 'expected problems');
  return parsed.ok ? '' : formatProblems(parsed.problems);
};

describe('parseLegacy', () => {
  it('reads both files into minor units, with line numbers', () => {
    const data = legacy();
    assert.equal(data.invoices.length, 5);
    assert.deepEqual(data.invoices[0], {
      line: 2,
      customer: 'acme',
      legal_entity: 'nw-us',
      currency: 'USD',
      period: '2025-03',
      product: 'api',
      amount_minor: 119950n,
    });
    assert.equal(data.invoices[2]!.amount_minor, 8000n);
    assert.deepEqual(data.journal_lines![0], {
      line: 2,
      legal_entity: 'nw-us',
      period: '2025-03',
      account: '1200',
      currency: 'USD',
      debit_minor: 178950n,
      credit_minor: 0n,
    });
    assert.deepEqual([data.journal_lines![2]!.debit_minor, data.journal_lines![2]!.credit_minor], [0n, 1000n]);
  });

  it('accepts columns in any order, quoted fields, CRLF, a BOM, blank lines, negative invoice amounts and JPY', () => {
    const text =
      '\uFEFFamount,product,period,currency,legal_entity,customer\r\n"-12.50","api, premium",2025-03-01,USD,nw-us,"Acme ""West"""\r\n\r\n1500,api,2025-03,JPY,nw-jp,acme\r\n';
    const data = legacy({ invoices: text });
    assert.deepEqual(
      data.invoices.map((l) => [l.line, l.customer, l.product, l.period, l.amount_minor]),
      [
        [2, 'Acme "West"', 'api, premium', '2025-03-01', -1250n],
        [4, 'acme', 'api', '2025-03', 1500n],
      ],
    );
    assert.equal(data.journal_lines, null);
  });

  it('names the file, line and column of each problem', () => {
    const text = [
      'customer,legal_entity,currency,period,product,amount',
      'acme,nw-us,USD,2025-03,api,12.50',
      'acme,nw-us,USD,2025-03,api,12,50',
      'acme,nw-us,USD,2025-03,api,1e3',
      'acme,nw-us,usd,2025-03,api,1.00',
      'acme,nw-us,USD,March,api,1.00',
      'acme,nw-us,USD,2025-03,api,"12,50"',
      ',nw-us,USD,2025-03,api,1.005',
      'acme,nw-us,JPY,2025-03,api,100.5',
    ].join('\n');
    assert.equal(
      problemsOf({ invoices: text }),
      [
        'invoices.csv line 3: has 7 fields but the header has 6',
        'invoices.csv line 4: amount: must be a decimal string such as "12.50", got "1e3"',
        'invoices.csv line 5: currency: must be an ISO 4217 currency code such as "USD", got "usd"',
        'invoices.csv line 6: period: must be a month "2025-03" or a period start date "2025-03-01", got "March"',
        'invoices.csv line 7: amount: must be a decimal string such as "12.50", got "12,50"',
        'invoices.csv line 8: customer: must not be empty',
        'invoices.csv line 8: amount: USD has 2 decimal places; got "1.005"',
        'invoices.csv line 9: amount: JPY has 0 decimal places; got "100.5"',
      ].join('\n'),
    );
  });

  it('refuses negative journal amounts, a bad header, an empty file and broken CSV', () => {
    assert.equal(
      problemsOf({
        invoices: INVOICES_CSV,
        journal_lines: 'legal_entity,period,account,currency,debit,credit\nnw-us,2025-03,1200,USD,-5.00,0\n',
      }),
      'journal_lines.csv line 2: debit: must not be negative, got "-5.00"; a reversal goes in the other column',
    );
    assert.equal(
      problemsOf({ invoices: 'customer,entity,currency,period,product,amount\nacme,nw-us,USD,2025-03,api,1\n' }),
      'invoices.csv line 1: the header lacks legal_entity; expected customer,legal_entity,currency,period,product,amount, got customer,entity,currency,period,product,amount',
    );
    assert.equal(
      problemsOf({ invoices: '' }),
      'invoices.csv: is empty; the first line must be the header customer,legal_entity,currency,period,product,amount',
    );
    assert.match(
      problemsOf({ invoices: 'customer,legal_entity,currency,period,product,amount\nacme,nw-us,USD,2025-03,"api,1\n' }),
      /^invoices\.csv line 2: is not valid CSV: Quote Not Closed/,
    );
  });

  it('accepts a file with only the header', () => {
    assert.deepEqual(legacy({ invoices: 'customer,legal_entity,currency,period,product,amount\n' }).invoices, []);
  });
});

describe('compareWithLegacy', () => {
  it('finds every planted difference, in key order', () => {
    const report = compareWithLegacy({ invoiceLines: ACCRUE_LINES, journalLines: ACCRUE_JOURNAL }, legacy());
    assert.deepEqual(
      report.invoices.rows.map((r) => [
        r.legal_entity,
        r.customer,
        r.product,
        r.status,
        r.accrue_minor,
        r.legacy_minor,
        r.difference_minor,
      ]),
      [
        ['nw-de', 'hooli', 'api', 'matched', 9999n, 9999n, 0n],
        ['nw-us', 'acme', 'analytics', 'missing_in_accrue', null, 8000n, -8000n],
        ['nw-us', 'acme', 'api', 'differing', 120000n, 119950n, 50n],
        ['nw-us', 'acme', 'platform', 'matched', 50000n, 50000n, 0n],
        ['nw-us', 'globex', 'storage', 'missing_in_legacy', 4210n, null, 4210n],
        ['nw-us', 'initech', 'api', 'missing_in_accrue', null, 1000n, -1000n],
      ],
    );
    assert.deepEqual(report.invoices.counts, { matched: 2, differing: 1, missing_in_accrue: 2, missing_in_legacy: 1 });
    // USD: Accrue 1200 + 500 + 42.10 = 1742.10; legacy 1199.50 + 500 + 80 + 10 = 1789.50.
    assert.deepEqual(report.invoices.totals, [
      { currency: 'EUR', accrue_minor: 9999n, legacy_minor: 9999n, difference_minor: 0n },
      { currency: 'USD', accrue_minor: 174210n, legacy_minor: 178950n, difference_minor: -4740n },
    ]);
    assert.deepEqual(
      report.journal!.rows.map((r) => [r.legal_entity, r.account, r.status, r.difference]),
      [
        ['nw-de', '1400', 'matched', { debit_minor: 0n, credit_minor: 0n }],
        ['nw-de', '8400', 'matched', { debit_minor: 0n, credit_minor: 0n }],
        ['nw-us', '1200', 'differing', { debit_minor: -3740n, credit_minor: 0n }],
        ['nw-us', '2300', 'matched', { debit_minor: 0n, credit_minor: 0n }],
        ['nw-us', '4000', 'differing', { debit_minor: 0n, credit_minor: -3740n }],
      ],
    );
    assert.deepEqual(report.journal!.totals, [
      { currency: 'EUR', accrue: { debit_minor: 9999n, credit_minor: 9999n }, legacy: { debit_minor: 9999n, credit_minor: 9999n } },
      { currency: 'USD', accrue: { debit_minor: 175210n, credit_minor: 175210n }, legacy: { debit_minor: 178950n, credit_minor: 178950n } },
    ]);
    assert.equal(report.matches, false);
  });

  it('finds an account on one side only', () => {
    const report = compareWithLegacy(
      { invoiceLines: [], journalLines: [jl('nw-us', '4010', 'USD', 0n, 100n)] },
      legacy({ invoices: 'customer,legal_entity,currency,period,product,amount\n', journal_lines: JOURNAL_CSV }),
      { entity: 'nw-us' },
    );
    assert.deepEqual(
      report.journal!.rows.map((r) => [r.account, r.status]),
      [
        ['1200', 'missing_in_accrue'],
        ['2300', 'missing_in_accrue'],
        ['4000', 'missing_in_accrue'],
        ['4010', 'missing_in_legacy'],
      ],
    );
  });

  it('matches when both sides agree', () => {
    const agreeing: AccrueInvoiceLine[] = legacy().invoices.map(({ line: _line, ...rest }) => rest);
    const report = compareWithLegacy({ invoiceLines: agreeing, journalLines: legacy().journal_lines! }, legacy());
    assert.equal(report.matches, true);
    assert.deepEqual(report.invoices.counts, { matched: 5, differing: 0, missing_in_accrue: 0, missing_in_legacy: 0 });
    assert.match(formatComparison(report), /Result: everything compared matches\./);
  });

  it('narrows to one legal entity', () => {
    const report = compareWithLegacy({ invoiceLines: ACCRUE_LINES, journalLines: ACCRUE_JOURNAL }, legacy(), { entity: 'nw-de' });
    assert.deepEqual(
      report.invoices.rows.map((r) => [r.customer, r.status]),
      [['hooli', 'matched']],
    );
    assert.deepEqual(
      report.journal!.rows.map((r) => r.account),
      ['1400', '8400'],
    );
    assert.equal(report.matches, true);
    assert.deepEqual(report.scope, { customers: null, entity: 'nw-de' });
  });

  it('narrows to some customers and leaves the journal out', () => {
    const report = compareWithLegacy({ invoiceLines: ACCRUE_LINES, journalLines: ACCRUE_JOURNAL }, legacy(), {
      customers: ['initech', 'globex'],
    });
    assert.deepEqual(
      report.invoices.rows.map((r) => [r.customer, r.status]),
      [
        ['globex', 'missing_in_legacy'],
        ['initech', 'missing_in_accrue'],
      ],
    );
    assert.equal(report.journal, null);
    assert.match(report.journal_skipped!, /carry no customer/);
    const both = compareWithLegacy({ invoiceLines: ACCRUE_LINES, journalLines: ACCRUE_JOURNAL }, legacy(), {
      customers: ['acme'],
      entity: 'nw-de',
    });
    assert.deepEqual(both.invoices.rows, []);
  });

  it('is deterministic: the order of the input lines does not matter', () => {
    const a = compareWithLegacy({ invoiceLines: ACCRUE_LINES, journalLines: ACCRUE_JOURNAL }, legacy());
    const reversedLegacy = legacy();
    reversedLegacy.invoices.reverse();
    reversedLegacy.journal_lines!.reverse();
    const b = compareWithLegacy({ invoiceLines: [...ACCRUE_LINES].reverse(), journalLines: [...ACCRUE_JOURNAL].reverse() }, reversedLegacy);
    assert.deepEqual(b, a);
    assert.equal(formatComparison(b), formatComparison(a));
  });
});

describe('formatComparison', () => {
  it('prints counts, the rows that differ and totals per currency', () => {
    const text = formatComparison(compareWithLegacy({ invoiceLines: ACCRUE_LINES, journalLines: ACCRUE_JOURNAL }, legacy()));
    assert.equal(
      text,
      `Parallel run: Accrue vs legacy (all legal entities; all customers)
Result: DIFFERENCES FOUND.

Invoices per customer and product: 2 matched, 1 differing, 2 missing in accrue, 1 missing in legacy
status             entity  customer  period   product    currency   accrue   legacy  difference
-----------------  ------  --------  -------  ---------  --------  -------  -------  ----------
MISSING IN ACCRUE  nw-us   acme      2025-03  analytics  USD             -    80.00      -80.00
DIFFERS            nw-us   acme      2025-03  api        USD       1200.00  1199.50        0.50
MISSING IN LEGACY  nw-us   globex    2025-03  storage    USD         42.10        -       42.10
MISSING IN ACCRUE  nw-us   initech   2025-03  api        USD             -    10.00      -10.00

currency  accrue total  legacy total  difference
--------  ------------  ------------  ----------
EUR              99.99         99.99        0.00
USD            1742.10       1789.50      -47.40

Journal per entity and account: 3 matched, 2 differing, 0 missing in accrue, 0 missing in legacy
status   entity  period   account  currency  accrue Dr  accrue Cr  legacy Dr  legacy Cr  diff Dr  diff Cr
-------  ------  -------  -------  --------  ---------  ---------  ---------  ---------  -------  -------
DIFFERS  nw-us   2025-03  1200     USD         1752.10       0.00    1789.50       0.00   -37.40     0.00
DIFFERS  nw-us   2025-03  4000     USD            0.00    1742.10       0.00    1779.50     0.00   -37.40

currency  accrue Dr  accrue Cr  legacy Dr  legacy Cr
--------  ---------  ---------  ---------  ---------
EUR           99.99      99.99      99.99      99.99
USD         1752.10    1752.10    1789.50    1789.50
`,
    );
  });

  it('prints every row with all, and says why the journal was not compared', () => {
    const text = formatComparison(
      compareWithLegacy({ invoiceLines: ACCRUE_LINES, journalLines: [] }, legacy({ invoices: INVOICES_CSV }), { entity: 'nw-de' }),
      { all: true },
    );
    assert.match(text, /^matched {2}nw-de {3}hooli/m);
    assert.match(text, /Journal per entity and account: not compared \(the legacy export has no journal_lines\.csv\)\./);
  });
});
