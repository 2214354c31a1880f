// Effective-dated tax rates through the close: November closed at rate A, the catalog gains rate B from December 1,
// late November usage is corrected at A (and the credit note reverses the original at A); December is taxed at B.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';

const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
const SINGLE = `  - jurisdiction: US-CA\n    rate: "0.0725"\n`;
const VERSIONED = `  - jurisdiction: US-CA\n    versions:\n      - rate: "0.0725"\n      - effective_from: 2026-12-01\n        rate: "0.08"\n`;
let store: Store;

const ev = (id: string, subject: string, type: string, time: string, data: Record<string, unknown>) => ({
  specversion: '1.0',
  id,
  source: '//tax-test',
  type,
  subject,
  time,
  data,
});

before(async () => {
  store = await testStore();
});
after(() => store.close());

describe('effective-dated tax rates', () => {
  it('corrects late November usage at November rate after a December rate change; December is taxed at the new rate', async () => {
    assert.ok(NORTHWIND.includes(SINGLE));
    assert.ok((await applyCatalog(store.pool, NORTHWIND, { by: 'test' })).ok);
    const a = (await currentCatalog(store.pool))!;
    await ingestBatch(
      store.pool,
      a,
      [ev('n1', 'acme-prod', 'com.northwind.storage.usage', '2026-11-03T00:00:00Z', { gb_hours: '3000000' })],
      {
        channel: 'file',
        now: new Date('2026-12-01T00:00:00Z'),
      },
    );
    const november = await closePeriod(store.pool, a, { period: '2026-11' });
    const original = november.invoices.find((i) => i.customer === 'acme')!;
    assert.deepEqual(
      original.tax_lines.map((t) => t.rate),
      ['0.0725'],
    );

    const applied = await applyCatalog(store.pool, NORTHWIND.replace(SINGLE, VERSIONED), { by: 'test' });
    assert.ok(applied.ok);
    const b = (await currentCatalog(store.pool))!;
    assert.notEqual(b.hash, a.hash);
    await ingestBatch(
      store.pool,
      b,
      [ev('late-1', 'acme-prod', 'com.northwind.storage.usage', '2026-11-20T00:00:00Z', { gb_hours: '1000000' })],
      {
        channel: 'http',
        now: new Date('2026-12-02T00:00:00Z'),
      },
    );
    await ingestBatch(
      store.pool,
      b,
      [ev('d1', 'acme-prod', 'com.northwind.storage.usage', '2026-12-03T00:00:00Z', { gb_hours: '1000000' })],
      {
        channel: 'http',
        now: new Date('2026-12-03T00:00:00Z'),
      },
    );
    const december = await closePeriod(store.pool, b, { period: '2026-12', now: new Date('2027-01-02T00:00:00Z') });
    const correction = december.corrections.find((c) => c.customer === 'acme')!;
    const replacement = correction.replacement!;
    assert.ok(replacement, 'the late usage changed an amount');
    // The replacement bills November: November's rate A, 7.25%, on its taxable sum, rounded half up once.
    const taxable = replacement.tax_lines[0]!.taxable_minor;
    assert.deepEqual(replacement.tax_lines, [
      { jurisdiction: 'US-CA', rate: '0.0725', taxable_minor: taxable, tax_minor: (taxable * 725n + 5000n) / 10000n },
    ]);
    assert.ok(taxable > original.tax_lines[0]!.taxable_minor, 'the late 1,000,000 GB-hours are taxed');
    // The credit note reverses the original at the original's rate and amounts.
    assert.deepEqual(correction.credit_note!.tax_lines, original.tax_lines);
    assert.equal(correction.credit_note!.tax_minor, original.tax_minor);
    // December's invoice: rate B, 8%.
    const dec = december.invoices.find((i) => i.customer === 'acme')!;
    const decTaxable = dec.tax_lines[0]!.taxable_minor;
    assert.ok(decTaxable > 0n);
    assert.deepEqual(dec.tax_lines, [
      { jurisdiction: 'US-CA', rate: '0.08', taxable_minor: decTaxable, tax_minor: (decTaxable * 8n + 50n) / 100n },
    ]);
  });
});
