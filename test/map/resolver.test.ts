// The effective dating of mappings, worked by hand: the latest effective_from on or before the date wins, then the
// highest version for that date; a NULL target ends the mapping (resolve() throws MappingMissing naming the field).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MappingMissing, type MappingKind } from '../../src/domain/erp.js';
import { resolverOf, rowInForce } from '../../src/map/resolver.js';

const row = (source: string, effective_from: string, version: number, target: string | null, kind: MappingKind = 'item') => ({
  kind,
  source,
  effective_from,
  version,
  target,
});

// api: ITEM-1 from 2026-01-01; corrected (v2) to ITEM-2 on the same date; ITEM-3 from 2026-06-01; ended 2026-09-01;
// restarted as ITEM-4 from 2026-12-01, where v1 ITEM-5 was replaced by v2 ITEM-4 and v3 recorded earlier in the file.
const rows = [
  row('api', '2026-06-01', 1, 'ITEM-3'),
  row('api', '2026-01-01', 1, 'ITEM-1'),
  row('api', '2026-01-01', 2, 'ITEM-2'),
  row('api', '2026-09-01', 1, null),
  row('api', '2026-12-01', 2, 'ITEM-4'),
  row('api', '2026-12-01', 1, 'ITEM-5'),
  row('storage', '2026-03-15', 1, 'ST-1'),
  row('storage', '2026-03-15', 2, null), // ended on its own start date: never in force
  row('api', '2026-02-01', 1, 'ACCT-9', 'account'), // another kind, same source: independent
];

const table: Array<[kind: MappingKind, source: string, on: string, expected: string | undefined]> = [
  ['item', 'api', '2025-12-31', undefined], // before the first start
  ['item', 'api', '2026-01-01', 'ITEM-2'], // the start date itself, highest version
  ['item', 'api', '2026-05-31', 'ITEM-2'],
  ['item', 'api', '2026-06-01', 'ITEM-3'], // a later start wins
  ['item', 'api', '2026-08-31', 'ITEM-3'],
  ['item', 'api', '2026-09-01', undefined], // ended
  ['item', 'api', '2026-11-30', undefined],
  ['item', 'api', '2026-12-01', 'ITEM-4'], // v2 over v1 whatever the order read
  ['item', 'api', '2030-01-01', 'ITEM-4'],
  ['item', 'storage', '2026-03-15', undefined],
  ['item', 'storage', '2027-01-01', undefined],
  ['account', 'api', '2026-01-31', undefined],
  ['account', 'api', '2026-02-01', 'ACCT-9'],
  ['item', 'unknown', '2026-06-01', undefined],
  ['customer', 'api', '2026-06-01', undefined],
];

test('effective dating: the latest start on or before the date, then the highest version; a NULL target ends', () => {
  const resolver = resolverOf('ns', rows);
  for (const [kind, source, on, expected] of table) assert.equal(resolver.find(kind, source, on), expected, `${kind} ${source} on ${on}`);
});

test('resolve() throws MappingMissing naming the connection, kind, source and field when there is no mapping in force', () => {
  const resolver = resolverOf('ns', rows);
  assert.equal(resolver.resolve('item', 'api', '2026-07-01', 'lines[0].item'), 'ITEM-3');
  assert.throws(
    () => resolver.resolve('item', 'api', '2026-10-01', 'lines[2].item'),
    (error: unknown) =>
      error instanceof MappingMissing &&
      error.connection === 'ns' &&
      error.kind === 'item' &&
      error.source === 'api' &&
      error.field === 'lines[2].item' &&
      /lines\[2\]\.item/.test(error.message),
  );
  assert.throws(() => resolver.resolve('customer', 'acme', '2026-10-01', 'customer'), MappingMissing);
});

test('rowInForce ignores rows starting after the date and picks the highest version of the latest start', () => {
  const versions = [
    { effective_from: '2026-01-01', version: 3 },
    { effective_from: '2026-02-01', version: 1 },
    { effective_from: '2026-02-01', version: 2 },
    { effective_from: '2026-03-01', version: 9 },
  ];
  assert.deepEqual(rowInForce(versions, '2026-02-15'), { effective_from: '2026-02-01', version: 2 });
  assert.deepEqual(rowInForce(versions, '2026-01-31'), { effective_from: '2026-01-01', version: 3 });
  assert.equal(rowInForce(versions, '2025-12-31'), undefined);
});
