// The parallel run against a legacy export: Accrue's side read from a closed northwind period, a legacy export
// written from it with planted differences, and the comparison finding every planted one and nothing else.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { parsePeriod } from '../../src/meter/period.js';
import { checkPlanted, writeLegacyOutput, LEGACY_ONLY_PRODUCT, type ExpectedRow } from '../../src/demo/legacy.js';
import { parseScope, readAccrueSide, runLegacyComparison, type LegacyRun } from '../../src/reconcile/legacy-run.js';
import type { ComparisonReport } from '../../src/reconcile/compare.js';

let store: Store;
let catalog: CatalogVersion;
const dir = mkdtempSync(join(tmpdir(), 'accrue-compare-'));

const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//compare-test',
  type,
  subject,
  time,
  data,
});
const EVENTS = [
  ev('u1', 'umbrella', 'com.northwind.api.request', '2026-11-02T00:00:00Z', { region: 'eu' }),
  ev('u3', 'umbrella', 'com.northwind.compute.sample', '2026-11-05T00:00:00Z', { vcpu: '10' }),
  ev('a1', 'acme-prod', 'com.northwind.storage.usage', '2026-11-03T00:00:00Z', { gb_hours: '1000000' }),
  ev('a2', 'acme-staging', 'com.northwind.analytics.session', '2026-11-17T00:00:00Z', { user_id: 'x' }),
  ev('g1', 'globex', 'com.northwind.api.request', '2026-11-09T00:00:00Z', {}),
];

/** Every row the report does not call matched, as `section|status|key`. */
function unmatched(report: ComparisonReport): string[] {
  const invoices = report.invoices.rows
    .filter((r) => r.status !== 'matched')
    .map((r) => `invoices|${r.status}|${r.legal_entity}|${r.customer}|${r.currency}|${r.product}`);
  const journal = (report.journal?.rows ?? [])
    .filter((r) => r.status !== 'matched')
    .map((r) => `journal|${r.status}|${r.legal_entity}|${r.account}|${r.currency}`);
  return [...invoices, ...journal].sort();
}
const expectedText = (e: ExpectedRow) =>
  e.section === 'invoices'
    ? `invoices|${e.status}|${e.legal_entity}|${e.customer}|${e.currency}|${e.product}`
    : `journal|${e.status}|${e.legal_entity}|${e.account}|${e.currency}`;

async function run(legacyDir: string, scope: string[] = []): Promise<LegacyRun> {
  const result = await runLegacyComparison(store.pool, { legacyDir, period: '2026-11', scope, catalog });
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.problems));
  return result.value;
}

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
  assert.ok(applied.ok);
  catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(store.pool, catalog, EVENTS, { channel: 'file', now: new Date('2026-12-01T00:00:00Z') });
  await closePeriod(store.pool, catalog, { period: '2026-11' });
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('legacy export written from Accrue', () => {
  it('matches Accrue line for line when nothing is planted', async () => {
    const clean = join(dir, 'clean');
    assert.deepEqual(await writeLegacyOutput(store.pool, '2026-11', clean, { plant: false }), []);
    const { report } = await run(clean);
    assert.equal(report.matches, true);
    assert.ok(report.invoices.counts.matched >= 4, 'several customers and products compared');
    assert.ok(
      report.journal !== null && report.journal.counts.matched >= 6,
      'receivable, revenue and tax accounts of both entities compared',
    );
    assert.deepEqual(new Set(report.invoices.rows.map((r) => r.legal_entity)), new Set(['nw-us', 'nw-de']));
    for (const t of report.invoices.totals) assert.equal(t.difference_minor, 0n);
  });

  it('is deterministic: the same database writes the same bytes and plants the same differences', async () => {
    const a = await writeLegacyOutput(store.pool, '2026-11', join(dir, 'a'), { plant: true });
    const b = await writeLegacyOutput(store.pool, '2026-11', join(dir, 'b'), { plant: true });
    assert.deepEqual(a, b);
    for (const file of ['invoices.csv', 'journal_lines.csv'])
      assert.equal(readFileSync(join(dir, 'b', file), 'utf8'), readFileSync(join(dir, 'a', file), 'utf8'));
  });
});

describe('accrue compare finds planted differences', () => {
  it('finds every planted difference and nothing else, with both amounts and totals', async () => {
    const planted = await writeLegacyOutput(store.pool, '2026-11', join(dir, 'planted'), { plant: true });
    assert.deepEqual(
      planted.map((p) => p.kind),
      ['amount_off', 'missing_in_legacy', 'missing_in_accrue', 'account_differs'],
    );
    const { report } = await run(join(dir, 'planted'));
    assert.equal(report.matches, false);
    assert.deepEqual(unmatched(report), planted.flatMap((p) => p.expected.map(expectedText)).sort());
    assert.deepEqual(checkPlanted(planted, report), { missed: [], unexplained: [] });
    const clean = await run(join(dir, 'clean'));
    assert.equal(checkPlanted(planted, clean.report).missed.length, 5, 'a report without the planted rows misses all five');

    const off = report.invoices.rows.find((r) => r.status === 'differing')!;
    assert.equal(off.difference_minor, off.accrue_minor! > 0n ? -1n : 1n, 'one minor unit, Accrue minus legacy');
    const extra = report.invoices.rows.find((r) => r.status === 'missing_in_accrue')!;
    assert.equal(extra.product, LEGACY_ONLY_PRODUCT);
    assert.equal(extra.accrue_minor, null);
    assert.equal(extra.difference_minor, -extra.legacy_minor!);
    const gone = report.invoices.rows.find((r) => r.status === 'missing_in_legacy')!;
    assert.equal(gone.legacy_minor, null);
    // The totals carry the planted differences: per currency, the sum of the row differences.
    for (const total of report.invoices.totals) {
      const rows = report.invoices.rows.filter((r) => r.currency === total.currency);
      assert.equal(
        total.difference_minor,
        rows.reduce((s, r) => s + r.difference_minor, 0n),
      );
    }
    // The moved account: Accrue's account only in Accrue, the legacy account only in legacy, same amounts.
    const [ours, theirs] = planted[3]!.expected.map((e) =>
      report.journal!.rows.find(
        (r) => e.section === 'journal' && r.status === e.status && r.account === e.account && r.legal_entity === e.legal_entity,
      )!,
    );
    assert.ok(ours && theirs);
    assert.deepEqual(ours.accrue, theirs.legacy);
  });

  it('narrows to one legal entity on both sides: only that entity’s planted differences are reported', async () => {
    const planted = await writeLegacyOutput(store.pool, '2026-11', join(dir, 'planted'), { plant: true });
    for (const entity of ['nw-us', 'nw-de']) {
      const { report } = await run(join(dir, 'planted'), [`entity=${entity}`]);
      assert.equal(report.scope.entity, entity);
      assert.ok(report.invoices.rows.length > 0);
      assert.ok(report.invoices.rows.every((r) => r.legal_entity === entity));
      assert.ok(report.journal!.rows.every((r) => r.legal_entity === entity));
      const expected = planted.flatMap((p) => p.expected).filter((e) => e.legal_entity === entity);
      assert.deepEqual(unmatched(report), expected.map(expectedText).sort());
    }
  });

  it('narrows to customers: their invoice lines only, the journal left out and said so', async () => {
    const planted = await writeLegacyOutput(store.pool, '2026-11', join(dir, 'planted'), { plant: true });
    const customers = ['globex', 'umbrella'];
    const { report } = await run(join(dir, 'planted'), [`customers=${customers.join(',')}`]);
    assert.deepEqual(report.scope.customers, customers);
    assert.ok(report.invoices.rows.length > 0 && report.invoices.rows.every((r) => customers.includes(r.customer)));
    assert.equal(report.journal, null);
    assert.match(report.journal_skipped ?? '', /scoped to customers/);
    const expected = planted.flatMap((p) => p.expected).filter((e) => e.section === 'invoices' && customers.includes(e.customer));
    assert.deepEqual(unmatched(report), expected.map(expectedText).sort());
  });

  it('compares only the legacy rows of the period, labelled YYYY-MM or by its first day, and counts the rest', async () => {
    const mixed = join(dir, 'mixed');
    await writeLegacyOutput(store.pool, '2026-11', mixed, { plant: false });
    const text = readFileSync(join(mixed, 'invoices.csv'), 'utf8').split('\n');
    // One row relabelled with the period's first day, one row of another period added.
    text[1] = text[1]!.replace(',2026-11,', ',2026-11-01,');
    text.splice(2, 0, 'acme,nw-us,USD,2026-10,api,999.00');
    writeFileSync(join(mixed, 'invoices.csv'), text.join('\n'));
    const result = await run(mixed);
    assert.equal(result.report.matches, true);
    assert.deepEqual(result.left_out.other_periods, { invoices: 1, journal_lines: 0 });
  });
});

describe('Accrue side of a period', () => {
  it('nets credit notes against the invoices they correct: the replacement is what counts', async () => {
    const window = parsePeriod('2026-11');
    assert.ok(window.ok);
    const before = await readAccrueSide(store.pool, window.value);
    await ingestBatch(
      store.pool,
      catalog,
      [ev('late-1', 'acme-prod', 'com.northwind.storage.usage', '2026-11-20T00:00:00Z', { gb_hours: '5000000' })],
      { channel: 'http', now: new Date('2026-12-02T00:00:00Z') },
    );
    const december = await closePeriod(store.pool, catalog, {
      period: '2026-12',
      now: new Date('2027-01-02T00:00:00Z') /* December has ended */,
    });
    const acme = december.corrections.find((c) => c.customer === 'acme')!;
    assert.ok(acme.credit_note && acme.replacement, 'the late storage changes acme’s November amounts');
    const afterCorrection = await readAccrueSide(store.pool, window.value);
    const perProduct = new Map<string, bigint>();
    for (const l of acme.replacement.lines) perProduct.set(l.product, (perProduct.get(l.product) ?? 0n) + l.amount_minor);
    const acmeRows = afterCorrection.invoiceLines.filter((l) => l.customer === 'acme');
    assert.deepEqual(
      new Map(acmeRows.map((l) => [l.product, l.amount_minor])),
      new Map([...perProduct].filter(([, amount]) => amount !== 0n)),
    );
    // Other customers are untouched.
    const others = (side: typeof before) => side.invoiceLines.filter((l) => l.customer !== 'acme');
    assert.deepEqual(others(afterCorrection), others(before));
  });
});

describe('bad input', () => {
  it('names what is wrong with a scope', () => {
    const bad = parseScope(['customer=acme', 'entity=', 'customers=a,,b', 'nw-de', 'entity=nw-us', 'entity=nw-de']);
    assert.ok(!bad.ok);
    assert.deepEqual(
      bad.problems.map((p) => [p.path, p.code]),
      [
        ['--scope[0]', 'unknown_scope'],
        ['--scope[1]', 'not_entity'],
        ['--scope[2]', 'not_customers'],
        ['--scope[3]', 'not_name_value'],
        ['--scope[5]', 'duplicate_scope'],
      ],
    );
    assert.match(bad.problems[0]!.message, /unknown scope "customer"; use customers=a,b or entity=<legal entity>/);
    assert.deepEqual(parseScope(['customers=acme, globex', 'entity=nw-us']), {
      ok: true,
      value: { customers: ['acme', 'globex'], entity: 'nw-us' },
    });
  });

  it('refuses a missing export, a bad period and scope ids nobody knows', async () => {
    const missing = await runLegacyComparison(store.pool, { legacyDir: join(dir, 'nowhere'), period: '2026-13', scope: [], catalog });
    assert.ok(!missing.ok);
    assert.deepEqual(
      missing.problems.map((p) => [p.path, p.code]),
      [
        ['--period', 'not_period'],
        ['--legacy', 'not_found'],
      ],
    );
    await writeLegacyOutput(store.pool, '2026-11', join(dir, 'clean'), { plant: false });
    const typo = await runLegacyComparison(store.pool, {
      legacyDir: join(dir, 'clean'),
      period: '2026-11',
      scope: ['customers=acme,acmee', 'entity=nw-fr'],
      catalog,
    });
    assert.ok(!typo.ok);
    assert.deepEqual(
      typo.problems.map((p) => p.code),
      ['unknown_customer', 'unknown_legal_entity'],
    );
    assert.match(typo.problems[0]!.message, /"acmee"/);
    const broken = join(dir, 'broken');
    await writeLegacyOutput(store.pool, '2026-11', broken, { plant: false });
    writeFileSync(join(broken, 'invoices.csv'), 'customer,legal_entity,currency,period,product,amount\nacme,nw-us,USD,2026-11,api,12,50\n');
    const csv = await runLegacyComparison(store.pool, { legacyDir: broken, period: '2026-11', catalog });
    assert.ok(!csv.ok);
    assert.equal(csv.problems[0]!.path, 'invoices.csv line 2');
  });
});

describe('accrue compare (CLI)', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/accrue.js', '--database-url', store.url, ...args], { encoding: 'utf8' });

  it('exits 0 when everything matches, 1 with differences, 2 on bad input', async () => {
    await writeLegacyOutput(store.pool, '2026-11', join(dir, 'clean-cli'), { plant: false });
    const planted = await writeLegacyOutput(store.pool, '2026-11', join(dir, 'planted-cli'), { plant: true });
    const clean = cli('compare', '--legacy', join(dir, 'clean-cli'), '--period', '2026-11');
    assert.equal(clean.status, 0, clean.stderr);
    assert.match(clean.stdout, /Result: everything compared matches\./);

    const differs = cli('compare', '--legacy', join(dir, 'planted-cli'), '--period', '2026-11');
    assert.equal(differs.status, 1, differs.stderr + differs.stdout);
    assert.match(differs.stdout, /DIFFERENCES FOUND/);
    for (const label of ['DIFFERS', 'MISSING IN ACCRUE', 'MISSING IN LEGACY']) assert.match(differs.stdout, new RegExp(label));
    assert.match(differs.stdout, new RegExp(LEGACY_ONLY_PRODUCT));

    const json = cli('--json', 'compare', '--legacy', join(dir, 'planted-cli'), '--period', '2026-11', '--scope', 'entity=nw-us');
    assert.equal(json.status, 1, json.stderr);
    const parsed = JSON.parse(json.stdout) as {
      report: { scope: { entity: string }; matches: boolean; invoices: { rows: Array<{ status: string; accrue_minor: string | null }> } };
    };
    assert.equal(parsed.report.scope.entity, 'nw-us');
    assert.equal(
      parsed.report.matches,
      planted.flatMap((p) => p.expected).every((e) => e.legal_entity !== 'nw-us'),
    );
    assert.ok(
      parsed.report.invoices.rows.every((r) => r.accrue_minor === null || typeof r.accrue_minor === 'string'),
      'bigints as decimal strings',
    );

    const badScope = cli('compare', '--legacy', join(dir, 'clean-cli'), '--period', '2026-11', '--scope', 'region=eu');
    assert.equal(badScope.status, 2);
    assert.match(badScope.stderr, /--scope\[0\]: unknown scope "region"/);
    const noLegacy = cli('compare', '--period', '2026-11');
    assert.equal(noLegacy.status, 2);
  });
});
