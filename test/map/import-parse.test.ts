// Reading a mappings file (shape only): CSV columns and header, YAML failsafe text, dates that are real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectMappingFormat, isIsoDate, parseMappingFile } from '../../src/map/import.js';

test('CSV: a row with the wrong number of columns is named by row and line; quoted commas and doubled quotes are one field', () => {
  const bad = parseMappingFile('connection,kind,source,target,effective_from\nns,item,api,X,2026-01-01\nns,item,api,X\n', 'csv');
  assert.ok(!bad.ok);
  assert.deepEqual(
    bad.problems.map((p) => [p.path, p.code]),
    [['row 2', 'column_count']],
  );
  assert.match(bad.problems[0]!.message, /line 3/);
  const quoted = parseMappingFile('\uFEFFconnection,kind,source,target,effective_from\r\nns,item,api,"a, ""b""",2026-01-01\r\n\r\n', 'csv');
  assert.ok(quoted.ok);
  assert.deepEqual(quoted.value, [
    { row: 1, line: 2, connection: 'ns', kind: 'item', source: 'api', target: 'a, "b"', effective_from: '2026-01-01' },
  ]);
});

test('YAML: every value is text as written; a missing target is an end (empty)', () => {
  const parsed = parseMappingFile(
    'mappings:\n  - { connection: ns, kind: account, source: 0042, target: null, effective_from: 2026-01-01 }\n  - { connection: ns, kind: item, source: api, effective_from: 2026-01-01 }\n',
  );
  assert.ok(parsed.ok);
  assert.deepEqual(
    parsed.value.map((r) => [r.source, r.target]),
    [
      ['0042', 'null'],
      ['api', ''],
    ],
  );
});

test('format detection and real dates', () => {
  assert.equal(detectMappingFormat('\n connection, kind,source,target,effective_from\n'), 'csv');
  assert.equal(detectMappingFormat('mappings: []\n'), 'yaml');
  for (const d of ['2026-01-01', '2024-02-29', '2026-12-31']) assert.ok(isIsoDate(d), d);
  for (const d of ['2026-02-29', '2026-13-01', '2026-00-10', '2026-1-01', '20260101', '2026-01-01T00:00:00Z', '0000-01-01'])
    assert.ok(!isIsoDate(d), d);
});
