// The mapping store (issue #15): import CSV and YAML, problems naming row and field, all or nothing, idempotent
// re-import, versions and ends, an audit record per change, outbox entries waiting for a mapping woken, export ->
// import records nothing (property), mappingSource snapshots, and checkMappings' findings.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { saveConnections } from '../../src/connectors/connections.js';
import {
  MappingMissing,
  type ConnectionSettings,
  type MappingKind,
  type ReferenceChecker,
  type ReferenceState,
} from '../../src/domain/erp.js';
import { importMappings } from '../../src/map/import.js';
import { exportMappings, mappingHistory, mappingsInForce, formatCsv, formatYaml } from '../../src/map/store.js';
import { mappingSource } from '../../src/map/resolver.js';
import { checkMappings, runErpCheck } from '../../src/map/check.js';
import { readAudit } from '../../src/audit/log.js';
import { requiredMappings } from '../../src/map/required.js';

let store: Store;
const ns: ConnectionSettings = { name: 'ns-us', kind: 'netsuite', legal_entities: ['nw-us'], account_id: '1234567_SB1' };
const xero: ConnectionSettings = { name: 'xero-de', kind: 'xero', legal_entities: ['nw-de'] };

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  assert.ok((await saveConnections(store.pool, [ns, xero])).ok);
});
after(async () => {
  await store?.close();
});

const CSV = `connection,kind,source,target,effective_from
ns-us,subsidiary,nw-us,2,2026-01-01
ns-us,item,api,"API Services, usage",2026-01-01
ns-us,account,1200,  122  ,2026-01-01
ns-us,currency,USD,1,2026-01-01
xero-de,tax_type,DE,OUTPUT2,2026-01-01
`;

const mappingCount = async () => Number((await store.pool.query<{ n: string }>('SELECT count(*) AS n FROM erp_mappings')).rows[0]!.n);
const auditCount = async () =>
  Number((await store.pool.query<{ n: string }>("SELECT count(*) AS n FROM audit_log WHERE action LIKE 'erp.mapping.%'")).rows[0]!.n);

test('a CSV file is recorded as version 1 of each mapping, audited, and resolved by mappingSource', async () => {
  const result = await importMappings(store.pool, CSV, { by: 'alice', origin: 'map.csv' });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  assert.equal(result.value.recorded, 5);
  assert.equal(result.value.unchanged, 0);
  const resolver = await mappingSource(store.pool, 'ns-us').load();
  assert.equal(resolver.resolve('item', 'api', '2026-11-01', 'lines[0].item'), 'API Services, usage');
  assert.equal(resolver.resolve('account', '1200', '2026-11-01', 'account'), '122'); // unquoted space trimmed
  assert.equal(resolver.find('item', 'api', '2025-12-31'), undefined);
  assert.equal(resolver.find('tax_type', 'DE', '2026-11-01'), undefined); // another connection's
  assert.equal((await mappingSource(store.pool, 'xero-de').load()).find('tax_type', 'DE', '2026-11-01'), 'OUTPUT2');
  const audit = await readAudit(store.pool, { subject: 'erp_mapping:ns-us:item:api' });
  assert.equal(audit.length, 1);
  assert.equal(audit[0]!.actor, 'alice');
  assert.equal(audit[0]!.action, 'erp.mapping.set');
  assert.deepEqual(audit[0]!.details, {
    connection: 'ns-us',
    kind: 'item',
    source: 'api',
    effective_from: '2026-01-01',
    version: 1,
    before: null,
    after: 'API Services, usage',
    origin: 'map.csv',
  });
});

test('importing the same file again records nothing and audits nothing', async () => {
  const [rows, audits] = [await mappingCount(), await auditCount()];
  const again = await importMappings(store.pool, CSV, { by: 'bob' });
  assert.ok(again.ok);
  assert.deepEqual([again.value.recorded, again.value.unchanged, again.value.changes], [0, 5, []]);
  assert.equal(await mappingCount(), rows);
  assert.equal(await auditCount(), audits);
});

test('YAML: a changed target is a new version; a later start supersedes from its date; an empty target ends; each change audited with before and after', async () => {
  const yaml = `mappings:
  - { connection: ns-us, kind: item, source: api, target: API-2, effective_from: 2026-01-01 }
  - { connection: ns-us, kind: item, source: api, target: API-3, effective_from: 2026-07-01 }
  - { connection: ns-us, kind: currency, source: USD, target: "", effective_from: 2026-10-01 }
  - connection: ns-us
    kind: account
    source: "1200"
    target: 0122
    effective_from: 2026-01-01
`;
  const result = await importMappings(store.pool, yaml, { by: 'carol' });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  assert.deepEqual(
    result.value.changes.map((c) => [c.kind, c.source, c.effective_from, c.version, c.before, c.after]),
    [
      ['item', 'api', '2026-01-01', 2, 'API Services, usage', 'API-2'],
      ['item', 'api', '2026-07-01', 1, 'API-2', 'API-3'],
      ['currency', 'USD', '2026-10-01', 1, '1', null],
      ['account', '1200', '2026-01-01', 2, '122', '0122'], // text as written: the failsafe schema keeps the leading zero
    ],
  );
  const resolver = await mappingSource(store.pool, 'ns-us').load();
  assert.equal(resolver.find('item', 'api', '2026-06-30'), 'API-2');
  assert.equal(resolver.find('item', 'api', '2026-07-01'), 'API-3');
  assert.equal(resolver.find('currency', 'USD', '2026-09-30'), '1');
  assert.throws(
    () => resolver.resolve('currency', 'USD', '2026-10-01', 'currency'),
    (e: unknown) => e instanceof MappingMissing && e.field === 'currency',
  );
  const ended = await readAudit(store.pool, { subject: 'erp_mapping:ns-us:currency:USD', action: 'erp.mapping.end' });
  assert.equal(ended.length, 1);
  assert.equal(ended[0]!.actor, 'carol');
  assert.deepEqual([(ended[0]!.details as { before: string }).before, (ended[0]!.details as { after: null }).after], ['1', null]);
  const history = (await mappingHistory(store.pool, 'ns-us')).filter((r) => r.kind === 'item' && r.source === 'api');
  assert.deepEqual(
    history.map((r) => [r.effective_from, r.version, r.target, r.recorded_by]),
    [
      ['2026-01-01', 1, 'API Services, usage', 'alice'],
      ['2026-01-01', 2, 'API-2', 'carol'],
      ['2026-07-01', 1, 'API-3', 'carol'],
    ],
  );
  const inForce = await mappingsInForce(store.pool, '2026-11-01', 'ns-us');
  assert.ok(!inForce.some((m) => m.kind === 'currency')); // ended
  assert.deepEqual(
    inForce.find((m) => m.kind === 'item'),
    { ...inForce.find((m) => m.kind === 'item')!, target: 'API-3', effective_from: '2026-07-01', version: 1 },
  );
  // Ending what is not in force records nothing.
  const noop = await importMappings(
    store.pool,
    'mappings:\n  - { connection: ns-us, kind: item, source: storage, target: "", effective_from: 2026-01-01 }\n',
    { by: 'carol' },
  );
  assert.ok(noop.ok);
  assert.equal(noop.value.recorded, 0);
});

test('every invalid row is refused with a problem naming its row and field, and nothing of the file is recorded', async () => {
  const [rows, audits] = [await mappingCount(), await auditCount()];
  const bad = [
    'connection,kind,source,target,effective_from',
    'ns-us,item,storage,ST-1,2026-01-01', // row 1: valid, but the file is all or nothing
    'nowhere,item,api,X,2026-01-01', // row 2: unknown connection
    'ns-us,gadget,api,X,2026-01-01', // row 3: unknown kind
    'ns-us,item,,X,2026-01-01', // row 4: empty source
    `ns-us,item,api,"A\tB",2026-01-01`, // row 5: control character
    `ns-us,item,api,${'x'.repeat(256)},2026-01-01`, // row 6: over-long
    'ns-us,item,api,X,2026-02-30', // row 7: not a real date
    'ns-us,currency,usd,X,2026-01-01', // row 8: not ISO 4217
    'ns-us,item,gizmo,X,2026-01-01', // row 9: unknown product
    'ns-us,subsidiary,nw-de,3,2026-01-01', // row 10: legal entity on another connection
    'ns-us,customer,umbrella,C-1,2026-01-01', // row 11: customer of an entity on another connection
    'ns-us,account,9999,X,2026-01-01', // row 12: unknown GL account
    'ns-us,tax_code,FR,X,2026-01-01', // row 13: unknown jurisdiction
    'ns-us,currency,JPY,X,2026-01-01', // row 14: ISO, but not a catalog currency
    'xero-de,subsidiary,nw-de,1,2026-01-01', // row 15: Xero has no subsidiaries
    'ns-us,item,api,X,26-01-01', // row 16: not YYYY-MM-DD
    'ns-us,item,storage,ST-2,2026-01-01', // row 17: repeats row 1
  ].join('\n');
  const result = await importMappings(store.pool, bad, { by: 'mallory' });
  assert.ok(!result.ok);
  assert.deepEqual(
    result.problems.map((p) => [p.path, p.code]),
    [
      ['row 2.connection', 'unknown_connection'],
      ['row 3.kind', 'unknown_kind'],
      ['row 4.source', 'required'],
      ['row 5.target', 'control_character'],
      ['row 6.target', 'too_long'],
      ['row 7.effective_from', 'invalid_date'],
      ['row 8.source', 'not_iso_4217'],
      ['row 9.source', 'unknown_source'],
      ['row 10.source', 'entity_not_on_connection'],
      ['row 11.source', 'entity_not_on_connection'],
      ['row 12.source', 'unknown_source'],
      ['row 13.source', 'unknown_source'],
      ['row 14.source', 'unknown_source'],
      ['row 15.kind', 'kind_not_for_erp'],
      ['row 16.effective_from', 'invalid_date'],
      ['row 17', 'duplicate_row'],
    ],
  );
  assert.equal(await mappingCount(), rows);
  assert.equal(await auditCount(), audits);
});

test('YAML: a repeated key, an unknown key, a non-text value and a wrong header are refused', async () => {
  const dup = await importMappings(
    store.pool,
    'mappings:\n  - { connection: ns-us, kind: item, kind: account, source: api, target: X, effective_from: 2026-01-01 }\n',
    { by: 't' },
  );
  assert.ok(!dup.ok && dup.problems[0]!.code === 'yaml_syntax' && /unique|duplicate/i.test(dup.problems[0]!.message), JSON.stringify(dup));
  const unknown = await importMappings(
    store.pool,
    'mappings:\n  - { connection: ns-us, kind: item, source: api, target: X, effective_from: 2026-01-01, note: hi }\n  - { connection: ns-us, kind: item, source: [api], target: X, effective_from: 2026-01-01 }\n',
    { by: 't' },
  );
  assert.ok(!unknown.ok);
  assert.deepEqual(
    unknown.problems.map((p) => [p.path, p.code]),
    [
      ['row 1.note', 'unknown_key'],
      ['row 2.source', 'not_text'],
    ],
  );
  const header = await importMappings(store.pool, 'connection,kind,source,target\nns-us,item,api,X\n', { by: 't', format: 'csv' });
  assert.ok(!header.ok && header.problems[0]!.code === 'invalid_header');
});

test('a change wakes the documents waiting for a mapping on that connection, in the same transaction; nothing else', async () => {
  const insert = (key: string, target: string, status: string, code: string | null) =>
    store.pool.query(
      "INSERT INTO outbox (key, target, document_kind, document_id, status, next_attempt_at, last_error) VALUES ($1, $2, 'journal', $1, $3, now() + interval '7 days', $4)",
      [key, target, status, code === null ? null : JSON.stringify({ code, message: 'm' })],
    );
  await insert('out:v1:ns-us:waiting', 'ns-us', 'pending', 'mapping_missing');
  await insert('out:v1:ns-us:other-error', 'ns-us', 'pending', 'http_500');
  await insert('out:v1:ns-us:dead', 'ns-us', 'dead', 'mapping_missing');
  await insert('out:v1:xero-de:waiting', 'xero-de', 'pending', 'mapping_missing');
  const due = async () =>
    (await store.pool.query<{ key: string }>('SELECT key FROM outbox WHERE next_attempt_at <= now() ORDER BY key')).rows.map((r) => r.key);
  const unchanged = await importMappings(store.pool, CSV.split('\n').slice(0, 3).join('\n'), { by: 'dave' }); // already recorded
  assert.ok(unchanged.ok && unchanged.value.recorded === 1 && unchanged.value.woken === 1, JSON.stringify(unchanged)); // row 2 (api from 2026-01-01) is API-2 now: changed back
  assert.deepEqual(await due(), ['out:v1:ns-us:waiting']);
  const again = await importMappings(store.pool, CSV.split('\n').slice(0, 3).join('\n'), { by: 'dave' });
  assert.ok(again.ok && again.value.recorded === 0 && again.value.woken === 0);
  const refused = await importMappings(
    store.pool,
    'connection,kind,source,target,effective_from\nxero-de,item,api,I-1,2026-01-01\nxero-de,item,nope,I-2,2026-01-01\n',
    { by: 'dave' },
  );
  assert.ok(!refused.ok);
  assert.deepEqual(await due(), ['out:v1:ns-us:waiting']); // a refused file wakes nothing
  const xeroChange = await importMappings(store.pool, 'connection,kind,source,target,effective_from\nxero-de,item,api,I-1,2026-01-01\n', {
    by: 'dave',
  });
  assert.ok(xeroChange.ok && xeroChange.value.woken === 1);
  assert.deepEqual(await due(), ['out:v1:ns-us:waiting', 'out:v1:xero-de:waiting']);
});

// Valid (connection, kind, source) of the Northwind catalog, for generated files.
test('an end listed before an earlier start of the same mapping still ends it (rows are taken in date order, not file order)', async () => {
  const file = [
    'connection,kind,source,target,effective_from',
    'ns-us,account,1200,,2045-05-02',
    'ns-us,account,1200,ACC-1200,2045-03-05',
  ].join('\n');
  const imported = await importMappings(store.pool, file, { by: 'erin' });
  assert.ok(imported.ok, JSON.stringify(!imported.ok && imported.problems));
  assert.equal(imported.value.recorded, 2, 'the start and the end are both recorded');
  const resolver = await mappingSource(store.pool, 'ns-us').load();
  assert.equal(resolver.find('account', '1200', '2045-04-01'), 'ACC-1200');
  assert.equal(resolver.find('account', '1200', '2045-05-02'), undefined, 'ended on its date');
});

const SOURCES: Array<[string, MappingKind, string]> = [
  ['ns-us', 'customer', 'acme'],
  ['ns-us', 'customer', 'globex'],
  ['ns-us', 'item', 'api'],
  ['ns-us', 'item', 'storage'],
  ['ns-us', 'account', '4000'],
  ['ns-us', 'tax_code', 'US-CA'],
  ['ns-us', 'nexus', 'US-NY'],
  ['ns-us', 'currency', 'USD'],
  ['ns-us', 'subsidiary', 'nw-us'],
  ['xero-de', 'customer', 'umbrella'],
  ['xero-de', 'tax_type', 'DE'],
  ['xero-de', 'account', '8400'],
  ['xero-de', 'currency', 'EUR'],
];
const target = fc.oneof(
  fc.constantFrom('', 'null', '~', 'true', '0042', '1e3', '- x', 'a, "b"', '#1', 'key: value', "'q'", 'Zürich 株式会社', '=SUM(A1)'),
  fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
    .map((s) => s.trim())
    .filter((s) => s !== '' && !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(s)),
);
const day = fc.integer({ min: 0, max: 3650 }).map((n) => new Date(Date.UTC(2024, 0, 1) + n * 86_400_000).toISOString().slice(0, 10));
const fileRows = fc
  .uniqueArray(fc.record({ at: fc.integer({ min: 0, max: SOURCES.length - 1 }), target, effective_from: day }), {
    selector: (r) => `${r.at}|${r.effective_from}`,
    maxLength: 12,
  })
  .map((rows) =>
    rows.map((r) => ({
      connection: SOURCES[r.at]![0],
      kind: SOURCES[r.at]![1],
      source: SOURCES[r.at]![2],
      target: r.target,
      effective_from: r.effective_from,
    })),
  );

test('property: after any import, importing the export (CSV or YAML) records nothing', async () => {
  await fc.assert(
    fc.asyncProperty(
      fileRows,
      fc.constantFrom('csv' as const, 'yaml' as const),
      fc.constantFrom('csv' as const, 'yaml' as const),
      async (rows, inFormat, outFormat) => {
        const imported = await importMappings(store.pool, inFormat === 'csv' ? formatCsv(rows) : formatYaml(rows), {
          by: 'prop',
          format: inFormat,
        });
        assert.ok(imported.ok, JSON.stringify(!imported.ok && imported.problems));
        // Every row is in force with its target on its start date (or ended there).
        for (const connection of ['ns-us', 'xero-de']) {
          const resolver = await mappingSource(store.pool, connection).load();
          for (const r of rows.filter((x) => x.connection === connection))
            assert.equal(resolver.find(r.kind, r.source, r.effective_from), r.target === '' ? undefined : r.target);
        }
        const before = await mappingCount();
        const exported = await exportMappings(store.pool, outFormat);
        const back = await importMappings(store.pool, exported, { by: 'prop' });
        assert.ok(back.ok, JSON.stringify(!back.ok && back.problems));
        assert.equal(back.value.recorded, 0, JSON.stringify(back.value.changes));
        assert.equal(await mappingCount(), before);
      },
    ),
    { numRuns: 40 },
  );
});

test('checkMappings: required mappings the store lacks, and each mapping in force as the ERP answers (missing, inactive, active)', async () => {
  const catalog = (await currentCatalog(store.pool))!.catalog;
  const on = '2040-01-01';
  const file = [
    'connection,kind,source,target,effective_from',
    'ns-us,subsidiary,nw-us,SUB-1,2039-12-01',
    'ns-us,currency,USD,CUR-1,2039-12-01',
    'ns-us,item,api,ITEM-GONE,2039-12-01',
    'ns-us,item,storage,ITEM-OLD,2039-12-01',
    'ns-us,account,4000,ACC-1,2039-12-01',
    'ns-us,account,1200,ACC-1,2039-12-01', // the same target as 4000: looked up once
  ].join('\n');
  const imported = await importMappings(store.pool, file, { by: 'erin' });
  assert.ok(imported.ok, JSON.stringify(!imported.ok && imported.problems));
  const calls: string[] = [];
  const erp: Record<string, ReferenceState> = {
    'item:ITEM-GONE': { state: 'missing', detail: 'no item with internal id ITEM-GONE' },
    'item:ITEM-OLD': { state: 'inactive', detail: 'item ITEM-OLD is inactive' },
  };
  const checker: ReferenceChecker = {
    async checkReference(kind, target) {
      calls.push(`${kind}:${target}`);
      return erp[`${kind}:${target}`] ?? { state: 'active' };
    },
  };
  const findings = await checkMappings(store.pool, catalog, ns, checker, on);
  const state = (kind: string, source: string) =>
    findings.filter((f) => f.kind === kind && f.source === source).map((f) => [f.state, f.target]);
  assert.deepEqual(state('item', 'api'), [['missing', 'ITEM-GONE']]);
  assert.deepEqual(state('item', 'storage'), [['inactive', 'ITEM-OLD']]);
  assert.deepEqual(state('subsidiary', 'nw-us'), [['active', 'SUB-1']]);
  assert.deepEqual(state('account', '4000'), [['active', 'ACC-1']]);
  assert.deepEqual(state('item', 'analytics'), [['unmapped', null]]);
  assert.deepEqual(state('tax_type', 'US-CA'), [['unmapped', null]]);
  assert.ok(findings.some((f) => f.kind === 'account' && f.source === '2300' && f.state === 'unmapped'));
  assert.ok(findings.find((f) => f.kind === 'item' && f.source === 'analytics')!.detail.includes('product analytics'));
  assert.equal(calls.filter((c) => c === 'account:ACC-1').length, 1);
  assert.ok(!findings.some((f) => f.source === 'DE' || f.source === 'umbrella')); // nothing of xero-de
  // Every required mapping not in force is reported once; nothing in force is reported as unmapped.
  const required = requiredMappings(catalog, ns, on).filter((r) => r.required);
  const inForce = new Set((await mappingsInForce(store.pool, on, 'ns-us')).map((m) => `${m.kind}:${m.source}`));
  assert.deepEqual(
    findings
      .filter((f) => f.state === 'unmapped')
      .map((f) => `${f.kind}:${f.source}`)
      .sort(),
    required
      .map((r) => `${r.kind}:${r.source}`)
      .filter((k) => !inForce.has(k))
      .sort(),
  );
  const report = await runErpCheck(store.pool, catalog, ns, checker, on);
  assert.equal(report.ok, false);
  assert.equal(report.counts.missing, 1);
  assert.equal(report.counts.inactive, 1);
});

test('runErpCheck passes when every required mapping is in force and active', async () => {
  const catalog = (await currentCatalog(store.pool))!.catalog;
  const on = '2041-01-01';
  const rows = requiredMappings(catalog, xero, on)
    .filter((r) => r.required)
    .map((r) => `xero-de,${r.kind},${r.source},X-${r.source},2041-01-01`);
  const imported = await importMappings(store.pool, ['connection,kind,source,target,effective_from', ...rows].join('\n'), { by: 'erin' });
  assert.ok(imported.ok, JSON.stringify(!imported.ok && imported.problems));
  const active: ReferenceChecker = { checkReference: async () => ({ state: 'active' }) };
  const report = await runErpCheck(store.pool, catalog, xero, active, on);
  assert.equal(report.ok, true, JSON.stringify(report.findings.filter((f) => f.state !== 'active')));
  assert.ok(report.counts.active >= rows.length);
  const inactive: ReferenceChecker = {
    checkReference: async (kind) => (kind === 'tax_type' ? { state: 'inactive', detail: 'archived' } : { state: 'active' }),
  };
  assert.equal((await runErpCheck(store.pool, catalog, xero, inactive, on)).ok, false);
});

test('a mapping whose source has left the catalog can still be ended, and an old export still imports with no change', async () => {
  const northwind = readFileSync('examples/northwind/catalog.yaml', 'utf8');
  const withLegacy = northwind.replace(
    /^products:\n/m,
    'products:\n  - id: legacy\n    name: Legacy Hosting\n    revenue_account: { nw-us: "4999", nw-de: "8999" }\n',
  );
  assert.notEqual(withLegacy, northwind);
  assert.ok((await applyCatalog(store.pool, withLegacy, { by: 'test' })).ok);
  const mapped = await importMappings(
    store.pool,
    'connection,kind,source,target,effective_from\nns-us,item,legacy,LEG-1,2026-01-01\nns-us,account,4999,ACC-LEG,2026-01-01\n',
    { by: 'frank' },
  );
  assert.ok(mapped.ok && mapped.value.recorded === 2, JSON.stringify(mapped));
  const exported = await exportMappings(store.pool, 'csv', 'ns-us');
  assert.ok((await applyCatalog(store.pool, northwind, { by: 'test' })).ok); // legacy leaves the catalog
  const back = await importMappings(store.pool, exported, { by: 'frank' });
  assert.ok(back.ok && back.value.recorded === 0, JSON.stringify(back));
  const changed = await importMappings(store.pool, 'connection,kind,source,target,effective_from\nns-us,item,legacy,LEG-2,2026-01-01\n', {
    by: 'frank',
  });
  assert.ok(!changed.ok && changed.problems[0]!.path === 'row 1.source' && changed.problems[0]!.code === 'unknown_source');
  const ended = await importMappings(
    store.pool,
    'connection,kind,source,target,effective_from\nns-us,item,legacy,,2027-01-01\nns-us,account,4999,,2027-01-01\n',
    { by: 'frank' },
  );
  assert.ok(ended.ok && ended.value.recorded === 2, JSON.stringify(ended));
  assert.equal((await mappingSource(store.pool, 'ns-us').load()).find('item', 'legacy', '2027-01-01'), undefined);
});
