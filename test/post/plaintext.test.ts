// The plain-text exports, checked by the real tools: hledger (`check --strict ordereddates`, `balance`) and
// beancount (`bean-check`, `bean-query`). A missing tool fails the test, naming it: nothing is skipped.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beancountDeclarations, beancountTransactions, toBeancount } from '../../src/post/plaintext/beancount.js';
import { hledgerDeclarations, hledgerTransactions, toHledger } from '../../src/post/plaintext/hledger.js';
import {
  accountRoles,
  creditNoteJournal,
  entityAccountKey,
  invoiceJournals,
  paymentJournal,
  plainTextAccountNames,
  revenueAccountResolver,
  trialBalance,
  type AccountRoles,
  type PlainTextOptions,
} from '../../src/domain/journal.js';
import type { AccountMap, Invoice, InvoiceLine, Journal, LineKind, Product } from '../../src/domain/model.js';
import { formatMajor } from '../../src/domain/money.js';
import { formatProblems } from '../../src/domain/result.js';
import { inFunctionalCurrency, paymentJournalInFunctional } from '../../src/domain/fx-journals.js';

// ---------- the real tools ----------

const TOOL_PACKAGE: Record<string, string> = { hledger: 'hledger', 'bean-check': 'beancount', 'bean-query': 'beancount' };

/** Runs a tool; a tool that is not installed fails the test with its name and how to install it. */
function run(tool: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(tool, args, { encoding: 'utf8', timeout: 60_000 });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    assert.fail(`${tool} is not installed: the plain-text export tests need it (apt-get install -y ${TOOL_PACKAGE[tool] ?? tool})`);
  }
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function succeeds(tool: string, args: string[], file: string): string {
  const result = run(tool, args);
  assert.equal(result.status, 0, `${tool} ${args.join(' ')} refused the export:\n${result.stderr}${result.stdout}\n--- file ---\n${file}`);
  return result.stdout;
}

const workdir = mkdtempSync(join(tmpdir(), 'accrue-plaintext-'));
after(() => rmSync(workdir, { recursive: true, force: true }));
let fileCount = 0;
function writeTemp(text: string, extension: string): string {
  const path = join(workdir, `export-${++fileCount}.${extension}`);
  writeFileSync(path, text);
  return path;
}

/** hledger's balances: [account, commodity, amount] rows, zero balances left out. */
function hledgerBalances(path: string, text: string): string[][] {
  const csv = succeeds('hledger', ['-f', path, 'balance', '--flat', '-E', '-N', '-O', 'csv', '--layout=bare'], text);
  const [header, ...rows] = csv
    .trim()
    .split('\n')
    .map((line) => [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!));
  assert.deepEqual(header, ['account', 'commodity', 'balance']);
  return rows.filter((r) => !/^-?0(\.0+)?$/.test(r[2]!)).sort(compareRows);
}

/** beancount's balances through bean-query: [account, currency, amount] rows, zero balances left out. */
function beancountBalances(path: string, text: string): string[][] {
  const csv = succeeds(
    'bean-query',
    ['-f', 'csv', path, 'SELECT account, currency, sum(number) AS balance GROUP BY account, currency ORDER BY account, currency'],
    text,
  );
  const [header, ...rows] = csv
    .trim()
    .split('\n')
    .map((line) => line.split(',').map((cell) => cell.trim()));
  assert.deepEqual(header, ['account', 'currency', 'balance']);
  return rows.filter((r) => r.length === 3 && !/^-?0(\.0+)?$/.test(r[2]!)).sort(compareRows);
}

/** trialBalance in the tools' terms: the exported account name, the currency, the balance in major units. */
function expectedBalances(journals: Journal[], options: PlainTextOptions): string[][] {
  const names = plainTextAccountNames(journals, options);
  return trialBalance(journals)
    .filter((r) => r.balance_minor !== 0n)
    .map((r) => [names.get(entityAccountKey(r.legal_entity, r.account))!, r.currency, formatMajor(r.balance_minor, r.currency)])
    .sort(compareRows);
}

const compareRows = (a: string[], b: string[]) => (a.join('\u0000') < b.join('\u0000') ? -1 : a.join('\u0000') > b.join('\u0000') ? 1 : 0);

/** Both tools accept the exports, and both report the balances trialBalance computes. */
function checkWithTools(journals: Journal[], options: PlainTextOptions): void {
  const hledgerText = toHledger(journals, options);
  const hledgerPath = writeTemp(hledgerText, 'journal');
  succeeds('hledger', ['-f', hledgerPath, 'check', '--strict', 'ordereddates'], hledgerText);
  assert.deepEqual(
    hledgerBalances(hledgerPath, hledgerText),
    expectedBalances(journals, options),
    'hledger balances differ from trialBalance',
  );

  const beanText = toBeancount(journals, options);
  const beanPath = writeTemp(beanText, 'beancount');
  const checked = succeeds('bean-check', [beanPath], beanText);
  assert.equal(checked.trim(), '', `bean-check reported:\n${checked}`);
  assert.deepEqual(
    beancountBalances(beanPath, beanText),
    expectedBalances(journals, options),
    'beancount balances differ from trialBalance',
  );
}

// ---------- Northwind journals ----------

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
const rolesResult = accountRoles(ACCOUNTS, PRODUCTS);
assert.ok(rolesResult.ok, rolesResult.ok ? '' : formatProblems(rolesResult.problems));
const ROLES: AccountRoles = rolesResult.value;

function line(line_no: number, kind: LineKind, product: string, amount_minor: bigint): InvoiceLine {
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
  };
}

function invoice(
  id: string,
  entity: string,
  currency: string,
  lines: InvoiceLine[],
  tax: bigint,
  kind: Invoice['kind'] = 'invoice',
): Invoice {
  const abs = (v: bigint) => (v < 0n ? -v : v);
  const sum = (kinds: LineKind[]) => lines.filter((l) => kinds.includes(l.kind)).reduce((s, l) => s + abs(l.amount_minor), 0n);
  const subtotal = sum(['flat', 'usage', 'minimum_true_up', 'late_usage']);
  const discount = sum(['discount']);
  const credits = sum(['credit']);
  const built: Invoice = {
    id,
    key: `inv:v1:${id}`,
    kind,
    number: id.toUpperCase(),
    status: 'finalized',
    legal_entity: entity,
    customer: 'c',
    currency,
    period_start: '2026-11-01',
    period_end: '2026-12-01',
    rounding: 'half_up',
    lines,
    subtotal_minor: subtotal,
    discount_minor: discount,
    credits_applied_minor: credits,
    tax_lines: [{ jurisdiction: 'X', rate: '0.1', taxable_minor: subtotal - discount - credits, tax_minor: tax }],
    tax_minor: tax,
    total_minor: subtotal - discount - credits + tax,
    rating_run: 'rr',
  };
  if (kind === 'credit_note') built.corrects = 'inv-acme';
  return built;
}

const ACME = invoice(
  'inv-acme',
  'nw-us',
  'USD',
  [
    line(1, 'flat', 'platform', 9900n),
    line(2, 'usage', 'api', 36000n),
    line(3, 'discount', 'api', -3600n),
    line(4, 'credit', 'api', -20000n),
  ],
  1617n,
);
const UMBRELLA = invoice(
  'inv-umbrella',
  'nw-de',
  'EUR',
  [
    line(1, 'flat', 'platform', 24900n),
    line(2, 'usage', 'api', 12000n),
    line(3, 'usage', 'compute', 4000n),
    line(4, 'discount', 'api', -1200n),
  ],
  7543n,
);
const usRevenue = revenueAccountResolver(PRODUCTS, 'nw-us');

const acmeJournals = (): Journal[] => [
  ...invoiceJournals(ACME, ACCOUNTS['nw-us']!, usRevenue, 'C-10042', '2026-12-01'),
  paymentJournal(
    {
      id: 'pay-1',
      invoice_id: 'inv-acme',
      customer: 'acme',
      erp_customer_id: 'C-10042',
      legal_entity: 'nw-us',
      currency: 'USD',
      amount_minor: 23917n,
      received_on: '2026-12-15',
    },
    ACCOUNTS['nw-us']!,
  ),
];
const northwindJournals = (): Journal[] => [
  ...acmeJournals(),
  ...invoiceJournals(UMBRELLA, ACCOUNTS['nw-de']!, revenueAccountResolver(PRODUCTS, 'nw-de'), 'D-20011', '2026-12-01'),
  creditNoteJournal(
    invoice('cn-acme-1', 'nw-us', 'USD', [line(1, 'flat', 'platform', 9900n)], 718n, 'credit_note'),
    ACCOUNTS['nw-us']!,
    usRevenue,
    'C-10042',
    '2026-12-10',
  )!,
];

// ---------- tests ----------

describe('hledger export', () => {
  it('writes the Acme journals exactly (one legal entity: no entity in the account path)', () => {
    assert.equal(
      toHledger(acmeJournals(), { roles: ROLES }),
      `; Accrue ledger export for hledger. Generated: edit the source documents, not this file.
decimal-mark .

commodity 0.00 USD

account Assets:Cash:1000  ; type: A
account Assets:Receivable:1200  ; type: A
account Income:Revenue:4000  ; type: R
account Income:Revenue:4090  ; type: R
account Liabilities:DeferredRevenue:2400  ; type: L
account Liabilities:TaxPayable:2300  ; type: L

2026-12-01 (jrn:v1:credit_drawdown:inv-acme) Credit drawdown on invoice INV-ACME c
    ; journal: jrn:v1:credit_drawdown:inv-acme, kind: credit_drawdown, source: inv-acme, entity: nw-us
    Liabilities:DeferredRevenue:2400   200.00 USD  ; customer: C-10042
    Income:Revenue:4000               -200.00 USD  ; product: api

2026-12-01 (jrn:v1:invoice:inv-acme) Invoice INV-ACME c 2026-11-01..2026-12-01
    ; journal: jrn:v1:invoice:inv-acme, kind: invoice, source: inv-acme, entity: nw-us
    Assets:Receivable:1200        239.17 USD  ; customer: C-10042
    Income:Revenue:4000          -124.00 USD  ; product: api
    Income:Revenue:4090           -99.00 USD  ; product: platform
    Liabilities:TaxPayable:2300   -16.17 USD

2026-12-15 (jrn:v1:payment:pay-1) Payment pay-1 from acme for invoice inv-acme
    ; journal: jrn:v1:payment:pay-1, kind: payment, source: pay-1, entity: nw-us
    Assets:Cash:1000         239.17 USD
    Assets:Receivable:1200  -239.17 USD  ; customer: C-10042
`,
    );
  });
});

describe('beancount export', () => {
  it('writes the Acme journals exactly: operating currency, commodity, accounts opened on first use', () => {
    assert.equal(
      toBeancount(acmeJournals(), { roles: ROLES }),
      `; Accrue ledger export for beancount. Generated: edit the source documents, not this file.
option "title" "Accrue ledger export"
option "operating_currency" "USD"

2026-12-01 commodity USD

2026-12-15 open Assets:Cash:1000 USD
2026-12-01 open Assets:Receivable:1200 USD
2026-12-01 open Income:Revenue:4000 USD
2026-12-01 open Income:Revenue:4090 USD
2026-12-01 open Liabilities:DeferredRevenue:2400 USD
2026-12-01 open Liabilities:TaxPayable:2300 USD

2026-12-01 * "Credit drawdown on invoice INV-ACME c"
  journal: "jrn:v1:credit_drawdown:inv-acme"
  kind: "credit_drawdown"
  source: "inv-acme"
  entity: "nw-us"
  Liabilities:DeferredRevenue:2400   200.00 USD
    customer: "C-10042"
  Income:Revenue:4000               -200.00 USD
    product: "api"

2026-12-01 * "Invoice INV-ACME c 2026-11-01..2026-12-01"
  journal: "jrn:v1:invoice:inv-acme"
  kind: "invoice"
  source: "inv-acme"
  entity: "nw-us"
  Assets:Receivable:1200        239.17 USD
    customer: "C-10042"
  Income:Revenue:4000          -124.00 USD
    product: "api"
  Income:Revenue:4090           -99.00 USD
    product: "platform"
  Liabilities:TaxPayable:2300   -16.17 USD

2026-12-15 * "Payment pay-1 from acme for invoice inv-acme"
  journal: "jrn:v1:payment:pay-1"
  kind: "payment"
  source: "pay-1"
  entity: "nw-us"
  Assets:Cash:1000         239.17 USD
  Assets:Receivable:1200  -239.17 USD
    customer: "C-10042"
`,
    );
  });
});

describe('both exports, checked by the real tools', () => {
  it('a missing tool fails the test, naming the tool', () => {
    assert.throws(() => run('accrue-no-such-ledger-tool', ['--version']), /accrue-no-such-ledger-tool is not installed/);
  });

  it('the Acme journals: hledger check --strict and bean-check accept them; balances equal trialBalance', () => {
    checkWithTools(acmeJournals(), { roles: ROLES });
  });

  it('two legal entities, two currencies, a credit note: the entity is in every account path; both tools agree with trialBalance', () => {
    const journals = northwindJournals();
    const text = toHledger(journals, { roles: ROLES });
    assert.match(text, /^account Assets:NwUs:Receivable:1200 {2}; type: A$/m);
    assert.match(text, /^account Liabilities:NwDe:TaxPayable:3806 {2}; type: L$/m);
    assert.match(toBeancount(journals, { roles: ROLES }), /^2026-12-01 open Income:NwDe:Revenue:8400 EUR$/m);
    assert.match(text, /^commodity 0\.00 EUR\ncommodity 0\.00 USD$/m);
    checkWithTools(journals, { roles: ROLES });
  });

  it('a zero-decimal currency (JPY) and a custom account namer', () => {
    const jpy = invoice('inv-jp', 'nw-jp', 'JPY', [line(1, 'usage', 'api', 12345n), line(2, 'credit', 'api', -345n)], 1200n);
    const accounts: AccountMap = { receivable: 'ar', cash: 'bank', tax_payable: 'tax', deferred_revenue: 'deferred' };
    const journals = invoiceJournals(jpy, accounts, () => 'sales', 'J-1', '2026-12-01');
    const names: Record<string, string> = {
      ar: 'Assets:Jp:AR',
      bank: 'Assets:Jp:Bank',
      tax: 'Liabilities:Jp:Tax',
      deferred: 'Liabilities:Jp:Deferred',
      sales: 'Income:Jp:Sales',
    };
    const options: PlainTextOptions = { accountName: (_entity, account) => names[account]! };
    assert.match(toHledger(journals, options), /^ {4}Assets:Jp:AR +13200 JPY {2}; customer: J-1$/m);
    checkWithTools(journals, options);
  });

  it('byte-identical for the same journals in any order', () => {
    const journals = northwindJournals();
    const reversed = [...journals].reverse().map((j) => structuredClone(j));
    assert.equal(toHledger(reversed, { roles: ROLES }), toHledger(journals, { roles: ROLES }));
    assert.equal(toBeancount(reversed, { roles: ROLES }), toBeancount(journals, { roles: ROLES }));
  });

  it('memo text cannot break either format', () => {
    const journals = acmeJournals().map((j) => ({ ...j, memo: `Acme "Corp"; a\\b\nnext (line) | x` }));
    checkWithTools(journals, { roles: ROLES });
  });

  it('refuses an unbalanced journal, an account without a role, a duplicate journal, and names beancount cannot take', () => {
    const [first, ...rest] = acmeJournals();
    const unbalanced: Journal = { ...first!, lines: first!.lines.map((l, i) => (i === 0 ? { ...l, debit_minor: l.debit_minor + 1n } : l)) };
    assert.throws(
      () => toHledger([unbalanced, ...rest], { roles: ROLES }),
      /journal jrn:v1:invoice:inv-acme is not balanced:\nlines: debits 239\.18 USD and credits 239\.17 USD differ by 0\.01 USD/,
    );
    assert.throws(() => toBeancount([unbalanced, ...rest], { roles: ROLES }), /is not balanced/);
    assert.throws(
      () => toHledger(acmeJournals(), { roles: { 'nw-us': { '1200': 'receivable' } } }),
      /account 2400 of nw-us \(journal jrn:v1:credit_drawdown:inv-acme\) has no role/,
    );
    assert.throws(() => toHledger(acmeJournals(), {}), /needs account roles or an accountName function/);
    assert.throws(() => toBeancount([...acmeJournals(), first!], { roles: ROLES }), /appears twice/);
    assert.throws(
      () => toBeancount(acmeJournals(), { accountName: (_e, a) => `Revenue:${a}` }),
      /"Revenue:\d+" is not a valid beancount account name/,
    );
    assert.throws(() => toBeancount(acmeJournals(), { accountName: () => 'Assets:Same' }), /would both be named Assets:Same/);
  });
});

describe('a ledger kept in monthly files', () => {
  // November: an invoice (receivable, revenue, tax). December: the Acme journals, which open cash and deferred revenue.
  const november = invoiceJournals(
    invoice('inv-oct', 'nw-us', 'USD', [line(1, 'flat', 'platform', 9900n), line(2, 'usage', 'storage', 1250n)], 1115n),
    ACCOUNTS['nw-us']!,
    usRevenue,
    'C-10042',
    '2026-11-02',
  );
  const december = acmeJournals();
  const ledger = [...november, ...december];
  const options: PlainTextOptions = { roles: ROLES };

  function files(extension: string, parts: Record<string, string>): string {
    const dir = join(workdir, `ledger-${++fileCount}`);
    mkdirSync(dir);
    for (const [name, text] of Object.entries(parts)) writeFileSync(join(dir, name), text);
    return dir;
  }

  it('self-contained monthly files each pass alone, and beancount refuses them together (accounts opened twice)', () => {
    checkWithTools(november, options);
    checkWithTools(december, options);
    const both = writeTemp(toBeancount(november, options) + toBeancount(december, options), 'beancount');
    const refused = run('bean-check', [both]);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr + refused.stdout, /Duplicate open directive/);
  });

  it('beancount: the declarations file, then each month, load together (included or concatenated) with the balances of both months', () => {
    const accounts = beancountDeclarations(ledger, options);
    const nov = beancountTransactions(november, options);
    const dec = beancountTransactions(december, options);
    assert.doesNotMatch(nov + dec, / open | commodity |^option /m, 'the months declare nothing');
    assert.match(accounts, /^2026-12-15 open Assets:Cash:1000 USD$/m);
    assert.doesNotMatch(accounts, /^\d{4}-\d{2}-\d{2} \*/m, 'the declarations hold no transaction');
    const dir = files('beancount', {
      'accounts.beancount': accounts,
      '2026-11.beancount': nov,
      '2026-12.beancount': dec,
      'main.beancount': 'include "accounts.beancount"\ninclude "2026-11.beancount"\ninclude "2026-12.beancount"\n',
    });
    const main = join(dir, 'main.beancount');
    assert.equal(succeeds('bean-check', [main], accounts + nov + dec).trim(), '');
    assert.deepEqual(beancountBalances(main, accounts + nov + dec), expectedBalances(ledger, options));
    const joined = writeTemp(accounts + nov + dec, 'beancount');
    assert.equal(succeeds('bean-check', [joined], accounts + nov + dec).trim(), '');
    // One month with the declarations also loads: a ledger can be checked as it grows.
    const first = writeTemp(accounts + nov, 'beancount');
    assert.equal(succeeds('bean-check', [first], accounts + nov).trim(), '');
  });

  it('hledger: the declarations file, then each month, load together (included or concatenated) with the balances of both months', () => {
    const accounts = hledgerDeclarations(ledger, options);
    const nov = hledgerTransactions(november, options);
    const dec = hledgerTransactions(december, options);
    assert.doesNotMatch(nov + dec, /^(account|commodity) /m, 'the months declare nothing');
    const dir = files('journal', {
      'accounts.journal': accounts,
      '2026-11.journal': nov,
      '2026-12.journal': dec,
      'main.journal': 'include accounts.journal\ninclude 2026-11.journal\ninclude 2026-12.journal\n',
    });
    const main = join(dir, 'main.journal');
    succeeds('hledger', ['-f', main, 'check', '--strict', 'ordereddates'], accounts + nov + dec);
    assert.deepEqual(hledgerBalances(main, accounts + nov + dec), expectedBalances(ledger, options));
    const joined = writeTemp(accounts + nov + dec, 'journal');
    succeeds('hledger', ['-f', joined, 'check', '--strict', 'ordereddates'], accounts + nov + dec);
    assert.deepEqual(hledgerBalances(joined, accounts + nov + dec), expectedBalances(ledger, options));
  });
});

// ---------- property: any consistent invoices, exported, pass both tools with the trialBalance balances ----------

const arbitraryJournals = fc
  .array(
    fc.record({
      entity: fc.constantFrom('nw-us', 'nw-de'),
      day: fc.integer({ min: 1, max: 28 }),
      charges: fc.array(
        fc.record({ product: fc.constantFrom(...PRODUCTS.map((p) => p.id)), amount: fc.bigInt({ min: 0n, max: 5_000_000n }) }),
        { minLength: 1, maxLength: 5 },
      ),
      discountPercent: fc.nat({ max: 50 }),
      creditPercent: fc.nat({ max: 100 }),
      taxPercent: fc.nat({ max: 20 }),
      paidPercent: fc.nat({ max: 100 }),
    }),
    { minLength: 1, maxLength: 6 },
  )
  .map((specs) =>
    specs.flatMap((s, index) => {
      const lines: InvoiceLine[] = [];
      for (const c of s.charges) {
        lines.push(line(lines.length + 1, 'usage', c.product, c.amount));
        const discount = (c.amount * BigInt(s.discountPercent)) / 100n;
        if (discount > 0n) lines.push(line(lines.length + 1, 'discount', c.product, -discount));
        const credit = ((c.amount - discount) * BigInt(s.creditPercent)) / 100n;
        if (credit > 0n) lines.push(line(lines.length + 1, 'credit', c.product, -credit));
      }
      const net = lines.reduce((sum, l) => sum + l.amount_minor, 0n);
      const currency = s.entity === 'nw-us' ? 'USD' : 'EUR';
      const inv = invoice(`inv-${index}`, s.entity, currency, lines, (net * BigInt(s.taxPercent)) / 100n);
      const date = `2026-12-${String(s.day).padStart(2, '0')}`;
      const accounts = ACCOUNTS[s.entity]!;
      const journals = invoiceJournals(inv, accounts, revenueAccountResolver(PRODUCTS, s.entity), `ERP-${index}`, date);
      const paid = (inv.total_minor * BigInt(s.paidPercent)) / 100n;
      if (paid > 0n) {
        journals.push(
          paymentJournal(
            {
              id: `pay-${index}`,
              invoice_id: inv.id,
              customer: 'c',
              erp_customer_id: `ERP-${index}`,
              legal_entity: s.entity,
              currency,
              amount_minor: paid,
              received_on: '2026-12-28',
            },
            accounts,
          ),
        );
      }
      return journals;
    }),
  );

describe('property: exports of generated invoices', () => {
  it('pass hledger check --strict and bean-check, and both tools report the trialBalance balances', () => {
    fc.assert(
      fc.property(arbitraryJournals, (journals) => {
        checkWithTools(journals, { roles: ROLES });
      }),
      { numRuns: 12 },
    );
  });
});

// ---------- books kept in one currency, documents in another (docs/accounting.md#other-currencies) ----------

describe('journals booked from another currency', () => {
  const FX_ACCOUNTS: AccountMap = { ...ACCOUNTS['nw-de']!, fx_gain: '4840', fx_loss: '6880', fx_unrealized: '4845' };
  const usd = { ...UMBRELLA, id: 'inv-hooli', number: 'NWDE-000042', currency: 'USD', customer: 'hooli' };
  const booked = invoiceJournals(usd, FX_ACCOUNTS, revenueAccountResolver(PRODUCTS, 'nw-de'), 'D-30007', '2026-11-30').map((j) =>
    inFunctionalCurrency(j, { currency: 'USD', rate: '0.92345', rate_date: '2026-11-30', source: 'ecb' }, 'EUR', 'half_up'),
  );
  const receivable = booked[0]!.lines.find((l) => l.account === '1400')!;
  const paid = paymentJournalInFunctional(
    {
      id: 'pay-h',
      invoice_id: usd.id,
      customer: 'hooli',
      legal_entity: 'nw-de',
      currency: 'USD',
      amount_minor: usd.total_minor,
      received_on: '2026-12-15',
    },
    { invoice: usd.id, customer: 'D-30007', currency: 'USD', open_tx_minor: usd.total_minor, carrying_minor: receivable.debit_minor },
    { currency: 'USD', rate: '0.9000', rate_date: '2026-12-15', source: 'ecb' },
    FX_ACCOUNTS,
    'EUR',
    'half_up',
  );
  const journals = [...booked, paid];
  const fxRoles = accountRoles({ ...ACCOUNTS, 'nw-de': FX_ACCOUNTS }, PRODUCTS);
  assert.ok(fxRoles.ok);
  const options = { roles: fxRoles.value };

  it('write both currencies with the total cost; hledger check --strict and bean-check accept them; balances at cost equal trialBalance', () => {
    const hledgerText = toHledger(journals, options);
    // 472.43 USD × 0.92345 = 436.2655 -> 436.27 EUR (half up); revenue 99.73 + 36.94 + 229.94 and tax 69.66 add up to it.
    assert.match(hledgerText, / 472\.43 USD @@ 436\.27 EUR/);
    const path = writeTemp(hledgerText, 'journal');
    succeeds('hledger', ['-f', path, 'check', '--strict', 'ordereddates'], hledgerText);
    const csv = succeeds('hledger', ['-f', path, 'balance', '--flat', '-B', '-E', '-N', '-O', 'csv', '--layout=bare'], hledgerText);
    const atCost = csv
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!))
      .filter((r) => !/^-?0(\.0+)?$/.test(r[2]!))
      .sort(compareRows);
    assert.deepEqual(atCost, expectedBalances(journals, options));

    const beanText = toBeancount(journals, options);
    const beanPath = writeTemp(beanText, 'beancount');
    assert.equal(succeeds('bean-check', [beanPath], beanText).trim(), '');
    const weights = succeeds(
      'bean-query',
      ['-f', 'csv', beanPath, 'SELECT account, sum(weight) AS w GROUP BY account ORDER BY account'],
      beanText,
    )
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',').map((c) => c.trim()))
      .filter(([, amount]) => amount !== undefined && amount !== '') // bean-query leaves a zero weight empty
      .map(([account, amount]) => [account!, amount!.split(/\s+/)[1]!, amount!.split(/\s+/)[0]!])
      .filter((r) => !/^-?0(\.0+)?$/.test(r[2]!))
      .sort(compareRows);
    assert.deepEqual(weights, expectedBalances(journals, options));
  });
});
