// `accrue erp` as a person runs it (a child process): connections, mappings import/list/export, check's exit codes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog } from '../../src/catalog/service.js';

let store: Store;
let dir: string;
let configFile: string;

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  dir = mkdtempSync(join(tmpdir(), 'accrue-erp-cli-'));
  configFile = join(dir, 'accrue.config.yaml');
  writeFileSync(
    configFile,
    `erp:
  connections:
    ns-us: { kind: netsuite, account_id: "1234567_SB1", legal_entities: [nw-us] }
    xero-de: { kind: xero, legal_entities: [nw-de] }
    xero-later: { kind: xero, legal_entities: [nw-uk] }
`,
  );
});
after(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const accrue = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/accrue.js', '--database-url', store.url, '--config', configFile, ...args], { encoding: 'utf8' });

test('erp connections: the configured connections, saved to the store, with status and legal entities', () => {
  const run = accrue('--json', 'erp', 'connections');
  assert.equal(run.status, 0, run.stderr);
  const listed = JSON.parse(run.stdout) as Array<{
    name: string;
    kind: string;
    status: string;
    parked_until: string | null;
    legal_entities: string[];
  }>;
  assert.deepEqual(
    listed.map((c) => [c.name, c.kind, c.status, c.parked_until, c.legal_entities]),
    [
      ['ns-us', 'netsuite', 'unauthorized', null, ['nw-us']],
      ['xero-de', 'xero', 'unauthorized', null, ['nw-de']],
      ['xero-later', 'xero', 'unauthorized', null, ['nw-uk']],
    ],
  );
  const human = accrue('erp', 'connections');
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /ns-us\s+netsuite\s+unauthorized/);
});

test('erp mappings import, list, export: exit 0; a bad file exits 2 naming the row and field; the export imports back with nothing recorded', () => {
  const good = join(dir, 'map.csv');
  writeFileSync(
    good,
    'connection,kind,source,target,effective_from\nns-us,item,api,API-1,2026-01-01\nns-us,subsidiary,nw-us,2,2026-01-01\nxero-de,tax_type,DE,OUTPUT2,2026-01-01\n',
  );
  const imported = accrue('erp', 'mappings', 'import', good);
  assert.equal(imported.status, 0, imported.stderr);
  assert.match(imported.stdout, /3 rows: 3 recorded, 0 already in force/);
  const again = accrue('--json', 'erp', 'mappings', 'import', good);
  assert.equal(again.status, 0, again.stderr);
  assert.equal((JSON.parse(again.stdout) as { recorded: number }).recorded, 0);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(
    bad,
    'mappings:\n  - { connection: ns-us, kind: widget, source: api, target: X, effective_from: 2026-01-01 }\n  - { connection: ns-us, kind: item, source: api, target: X, effective_from: 2026-13-01 }\n',
  );
  const refused = accrue('erp', 'mappings', 'import', bad);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /row 1\.kind: must be one of/);
  assert.match(refused.stderr, /row 2\.effective_from: must be a real date/);

  const listed = accrue('--json', 'erp', 'mappings', 'list', '--connection', 'ns-us', '--on', '2026-11-01');
  assert.equal(listed.status, 0, listed.stderr);
  assert.deepEqual(
    (JSON.parse(listed.stdout) as Array<{ kind: string; source: string; target: string }>).map((m) => [m.kind, m.source, m.target]),
    [
      ['item', 'api', 'API-1'],
      ['subsidiary', 'nw-us', '2'],
    ],
  );
  const early = accrue('erp', 'mappings', 'list', '--on', '2025-12-31');
  assert.equal(early.status, 0, early.stderr);
  assert.match(early.stdout, /no mappings in force on 2025-12-31/);
  const history = accrue('erp', 'mappings', 'list', '--history', '--connection', 'xero-de');
  assert.equal(history.status, 0, history.stderr);
  assert.match(history.stdout, /xero-de\s+tax_type\s+DE\s+OUTPUT2\s+2026-01-01\s+v1\s+dev:\S+/);
  assert.equal(accrue('erp', 'mappings', 'list', '--on', '2026-02-30').status, 2);

  for (const format of ['csv', 'yaml']) {
    const exported = accrue('erp', 'mappings', 'export', '--format', format);
    assert.equal(exported.status, 0, exported.stderr);
    const file = join(dir, `export.${format}`);
    writeFileSync(file, exported.stdout);
    const back = accrue('--json', 'erp', 'mappings', 'import', file);
    assert.equal(back.status, 0, back.stderr);
    assert.deepEqual(
      [(JSON.parse(back.stdout) as { rows: number; recorded: number }).rows, (JSON.parse(back.stdout) as { recorded: number }).recorded],
      [3, 0],
    );
  }
});

test('erp check: exit 1 listing unmapped required mappings, 0 when nothing is needed or wrong, 2 for an unknown connection', () => {
  const failing = accrue('erp', 'check', '--connection', 'ns-us', '--on', '2025-06-01'); // before any mapping starts
  assert.equal(failing.status, 1, failing.stderr);
  assert.match(failing.stdout, /subsidiary\s+nw-us\s+unmapped/);
  assert.match(failing.stdout, /check FAILED/);
  const json = accrue('--json', 'erp', 'check', '--connection', 'ns-us', '--on', '2025-06-01');
  assert.equal(json.status, 1);
  const report = JSON.parse(json.stdout) as { ok: boolean; counts: Record<string, number>; findings: Array<{ state: string }> };
  assert.equal(report.ok, false);
  assert.ok(report.counts.unmapped! > 0);
  const passing = accrue('--json', 'erp', 'check', '--connection', 'xero-later'); // its entity has nothing in the catalog yet
  assert.equal(passing.status, 0, passing.stderr);
  assert.equal((JSON.parse(passing.stdout) as { ok: boolean }).ok, true);
  const unknown = accrue('erp', 'check', '--connection', 'nowhere');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /no connection "nowhere"/);
});
