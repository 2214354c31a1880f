// Access controls and four eyes (docs/controls.md): each role's boundary over HTTP and on the command line, a change
// proposed by one principal and in force only once another controller approves it, self-approval refused, and the
// database refusing what the code refuses.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/api/server.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { bootstrapAdmin, setRoles } from '../../src/controls/principals.js';
import { readAudit, verifyAudit } from '../../src/audit/log.js';
import type { Store } from '../../src/store/store.js';
import { testStore } from '../support/db.js';
import { testKey, TEST_ADMIN } from '../support/keys.js';
import { closePeriod } from '../../src/close/close-period.js';
import { getInvoice } from '../../src/invoice/store.js';

const CATALOG = readFileSync('examples/northwind/catalog.yaml', 'utf8');
/** The example catalog with the platform fee raised from 99.00 to 109.00: a price change. */
const RAISED = CATALOG.replace('amount: "99.00"', 'amount: "109.00"');

let store: Store;
let app: FastifyInstance;
let dir: string;
const keys: Record<'ingest' | 'operator' | 'controller' | 'controller2' | 'auditor' | 'admin' | 'makerChecker', string> = {
  ingest: '',
  operator: '',
  controller: '',
  controller2: '',
  auditor: '',
  admin: '',
  makerChecker: '',
};

before(async () => {
  store = await testStore();
  dir = mkdtempSync(join(tmpdir(), 'accrue-controls-'));
  assert.ok((await applyCatalog(store.pool, CATALOG, { by: 'test' })).ok);
  app = await buildServer({ pool: store.pool }); // the default policy: every change kind needs a second person
  keys.ingest = (await testKey(store.pool, { name: 'ingest', roles: ['ingest'] })).secret;
  keys.operator = (await testKey(store.pool, { name: 'olivia', roles: ['operator'], kind: 'person' })).secret;
  keys.controller = (await testKey(store.pool, { name: 'carlos', roles: ['controller'], kind: 'person' })).secret;
  keys.controller2 = (await testKey(store.pool, { name: 'cora', roles: ['controller'], kind: 'person' })).secret;
  keys.auditor = (await testKey(store.pool, { name: 'audrey', roles: ['auditor'], kind: 'person' })).secret;
  keys.admin = (await testKey(store.pool, { name: 'adam', roles: ['admin'], kind: 'person' })).secret;
  keys.makerChecker = (await testKey(store.pool, { name: 'max', roles: ['operator', 'controller'], kind: 'person' })).secret;
});

after(async () => {
  await app?.close();
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const call = (method: 'GET' | 'POST' | 'PUT', url: string, key: string, payload?: unknown, contentType?: string) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key}`, ...(contentType ? { 'content-type': contentType } : {}) },
    ...(payload === undefined ? {} : { payload: payload as string }),
  });

describe('role boundaries over HTTP', () => {
  // What each role may do, written out here (not derived from src/domain/controls.ts), so a change to the roles
  // that widens one fails this test.
  const ROUTES: Array<{ name: string; run: (key: string) => ReturnType<typeof call>; allowed: Array<keyof typeof keys> }> = [
    {
      name: 'send events',
      run: (key) => call('POST', '/v1/events', key, JSON.stringify([]), 'application/json'),
      allowed: ['ingest'],
    },
    { name: 'read usage', run: (key) => call('GET', '/v1/usage?period=2026-11', key), allowed: ['operator', 'controller', 'auditor'] },
    { name: 'read the audit log', run: (key) => call('GET', '/v1/audit?limit=1', key), allowed: ['controller', 'auditor'] },
    { name: 'verify the audit chain', run: (key) => call('GET', '/v1/audit/verify', key), allowed: ['auditor'] },
    {
      name: 'propose a catalog',
      run: (key) => call('PUT', '/v1/catalog', key, CATALOG, 'application/yaml'),
      allowed: ['operator'],
    },
    { name: 'list change requests', run: (key) => call('GET', '/v1/changes', key), allowed: ['operator', 'controller', 'auditor'] },
    {
      name: 'approve a change request',
      run: (key) => call('POST', '/v1/changes/chg_0000000000000000/approve', key, {}),
      allowed: ['controller'],
    },
    {
      name: 'work an exception',
      run: (key) => call('POST', '/v1/exceptions/exc-none/assign', key, { assignee: 'finance' }),
      allowed: ['operator'],
    },
    { name: 'replay a dead letter', run: (key) => call('POST', '/v1/dlq/none/replay', key, {}), allowed: ['operator'] },
  ];
  for (const route of ROUTES) {
    it(`${route.name}: only ${route.allowed.join(', ')}`, async () => {
      for (const role of ['ingest', 'operator', 'controller', 'auditor', 'admin'] as const) {
        const res = await route.run(keys[role]);
        if (route.allowed.includes(role)) assert.notEqual(res.statusCode, 403, `${role} may ${route.name}: ${res.body}`);
        else {
          assert.equal(res.statusCode, 403, `${role} may not ${route.name}: ${res.body}`);
          assert.match(res.json().detail, /may not/);
        }
      }
    });
  }

  it('whoami tells a key its principal, roles and permissions', async () => {
    const res = await call('GET', '/v1/dashboard/whoami', keys.controller);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().roles, ['controller']);
    assert.deepEqual(res.json().permissions, ['data.read', 'audit.read', 'change.approve']);
  });
});

describe('four eyes on a price change', () => {
  it('is proposed with a diff, refused to its requester and to an admin, and in force once another controller approves', async () => {
    const proposed = await call('PUT', '/v1/catalog', keys.makerChecker, RAISED, 'application/yaml');
    assert.equal(proposed.statusCode, 202, proposed.body);
    const change = proposed.json();
    assert.equal(change.status, 'pending');
    assert.equal(change.kind, 'catalog.apply');
    assert.match(change.diff, /^-\s+- amount: "99\.00"$/m);
    assert.match(change.diff, /^\+\s+- amount: "109\.00"$/m);
    assert.equal((await currentCatalog(store.pool))!.version, 1, 'nothing is in force before approval');

    const again = await call('PUT', '/v1/catalog', keys.makerChecker, RAISED, 'application/yaml');
    assert.equal(again.statusCode, 202);
    assert.equal(again.json().id, change.id, 'the same proposal twice is the first one');

    const self = await call('POST', `/v1/changes/${change.id}/approve`, keys.makerChecker, {});
    assert.equal(self.statusCode, 403, self.body);
    assert.equal(self.json().errors[0].code, 'self_approval');
    const admin = await call('POST', `/v1/changes/${change.id}/approve`, keys.admin, {});
    assert.equal(admin.statusCode, 403, 'an admin is not an approver');
    const operator = await call('POST', `/v1/changes/${change.id}/approve`, keys.operator, {});
    assert.equal(operator.statusCode, 403);
    assert.equal((await currentCatalog(store.pool))!.version, 1);

    const approved = await call('POST', `/v1/changes/${change.id}/approve`, keys.controller, { note: 'checked against the price list' });
    assert.equal(approved.statusCode, 200, approved.body);
    assert.equal(approved.json().status, 'approved');
    assert.equal(approved.json().result.version, 2);
    const inForce = (await currentCatalog(store.pool))!;
    assert.equal(inForce.version, 2);
    assert.match(JSON.stringify(inForce.catalog), /109\.00/);

    const twice = await call('POST', `/v1/changes/${change.id}/approve`, keys.controller2, {});
    assert.equal(twice.statusCode, 409, 'a decided request is final');

    const audit = await readAudit(store.pool, { subject: change.id, limit: 10 });
    assert.deepEqual(
      audit.map((r) => r.action),
      ['change.propose', 'change.refused', 'change.approve', 'change.refused'],
    );
    assert.ok((await verifyAudit(store.pool)).ok);
  });

  it('refuses to apply a change whose catalog moved since it was proposed, and leaves it pending', async () => {
    const a = await call('PUT', '/v1/catalog', keys.operator, RAISED.replace('109.00', '119.00'), 'application/yaml');
    const b = await call('PUT', '/v1/catalog', keys.operator, RAISED.replace('109.00', '129.00'), 'application/yaml');
    assert.equal(a.statusCode, 202, a.body);
    assert.equal(b.statusCode, 202, b.body);
    assert.equal((await call('POST', `/v1/changes/${a.json().id}/approve`, keys.controller, {})).statusCode, 200);
    const stale = await call('POST', `/v1/changes/${b.json().id}/approve`, keys.controller, {});
    assert.equal(stale.statusCode, 409, stale.body);
    assert.equal(stale.json().errors[0].code, 'stale');
    assert.equal((await call('GET', `/v1/changes/${b.json().id}`, keys.auditor)).json().status, 'pending');
    const rejected = await call('POST', `/v1/changes/${b.json().id}/reject`, keys.controller2, { note: 'superseded' });
    assert.equal(rejected.statusCode, 200);
    assert.equal(rejected.json().status, 'rejected');
    assert.match(JSON.stringify((await currentCatalog(store.pool))!.catalog), /119\.00/);
  });

  it('lets only the requester cancel a pending change', async () => {
    const p = await call('PUT', '/v1/catalog', keys.operator, RAISED.replace('109.00', '139.00'), 'application/yaml');
    assert.equal(p.statusCode, 202);
    assert.equal((await call('POST', `/v1/changes/${p.json().id}/cancel`, keys.makerChecker, {})).statusCode, 403);
    const cancelled = await call('POST', `/v1/changes/${p.json().id}/cancel`, keys.operator, {});
    assert.equal(cancelled.statusCode, 200, cancelled.body);
    assert.equal(cancelled.json().status, 'cancelled');
  });

  it('refuses an entity-limited controller a change that concerns every entity', async () => {
    const limited = (await testKey(store.pool, { name: 'de-controller', roles: ['controller'], entities: ['nw-de'] })).secret;
    const p = await call('PUT', '/v1/catalog', keys.operator, RAISED.replace('109.00', '149.00'), 'application/yaml');
    assert.equal(p.statusCode, 202);
    const res = await call('POST', `/v1/changes/${p.json().id}/approve`, limited, {});
    assert.equal(res.statusCode, 403, res.body);
    await call('POST', `/v1/changes/${p.json().id}/reject`, keys.controller, {});
  });
});

describe('the database refuses what the code refuses', () => {
  let price = 200;
  const pending = async (by: string = keys.operator) => {
    price += 1; // a price no other test sets, so each proposal is a change
    const p = await call('PUT', '/v1/catalog', by, RAISED.replace('109.00', `${price}.00`), 'application/yaml');
    assert.equal(p.statusCode, 202, p.body);
    return p.json() as { id: string; requested_by: string };
  };
  const principal = async (name: string) =>
    (await store.pool.query<{ id: string }>("SELECT id FROM principals WHERE name LIKE $1 || '-%'", [name])).rows[0]!.id;

  it('a decision by the requester, even one with the controller role', async () => {
    const p = await pending(keys.makerChecker);
    await assert.rejects(
      store.pool.query("UPDATE change_requests SET status = 'approved', decided_by = requested_by, decided_at = now() WHERE id = $1", [
        p.id,
      ]),
      /change_requests_check|violates check constraint/,
    );
  });

  it('a decision by a principal without the controller role', async () => {
    const p = await pending();
    const auditor = await principal('audrey');
    await assert.rejects(
      store.pool.query("UPDATE change_requests SET status = 'approved', decided_by = $2, decided_at = now() WHERE id = $1", [
        p.id,
        auditor,
      ]),
      /controller role/,
    );
    await call('POST', `/v1/changes/${p.id}/reject`, keys.controller, {});
  });

  it('an edit of a pending request, any change to a decided one, and a deletion', async () => {
    const p = await pending();
    await assert.rejects(store.pool.query(`UPDATE change_requests SET payload = '{"text":"x"}' WHERE id = $1`, [p.id]), /cannot be edited/);
    await call('POST', `/v1/changes/${p.id}/reject`, keys.controller, {});
    await assert.rejects(store.pool.query("UPDATE change_requests SET status = 'approved' WHERE id = $1", [p.id]), /final/);
    await assert.rejects(store.pool.query("UPDATE change_requests SET decision_note = 'later' WHERE id = $1", [p.id]), /final/);
    await assert.rejects(store.pool.query('DELETE FROM change_requests WHERE id = $1', [p.id]), /cannot be deleted/);
  });

  it('a principal with a role that does not exist', async () => {
    await assert.rejects(
      store.pool.query(
        "INSERT INTO principals (id, name, kind, roles, created_by) VALUES ('prn_000000000001', 'root', 'person', '{superuser}', 'x')",
      ),
      /violates check constraint/,
    );
  });
});

describe('four eyes on a void', () => {
  it("voids an invoice, with its reversing journal, only once a controller approves the operator's request", async () => {
    const catalog = (await currentCatalog(store.pool))!;
    const closed = await closePeriod(store.pool, catalog, { period: '2026-10', now: new Date('2026-11-02T00:00:00Z') });
    const invoice = closed.invoices.find((i) => i.legal_entity === 'nw-us')!;
    const file = join(dir, 'void.key');
    writeFileSync(file, keys.operator, { mode: 0o600 });
    const proposed = spawnSync(
      process.execPath,
      [
        'bin/accrue.js',
        '--database-url',
        store.url,
        '--key-file',
        file,
        '--json',
        'invoices',
        'void',
        invoice.number!,
        '--reason',
        'duplicate billing',
      ],
      { encoding: 'utf8', env: { ...process.env, ACCRUE_DEV_MODE: '', ACCRUE_API_KEY: '' } },
    );
    assert.equal(proposed.status, 0, proposed.stderr);
    const { request } = JSON.parse(proposed.stdout) as { request: { id: string; kind: string; legal_entity: string } };
    assert.deepEqual([request.kind, request.legal_entity], ['invoice.void', 'nw-us']);
    assert.equal((await getInvoice(store.pool, invoice.id))!.status, 'finalized', 'not void before approval');
    const approved = await call('POST', `/v1/changes/${request.id}/approve`, keys.controller, {});
    assert.equal(approved.statusCode, 200, approved.body);
    assert.equal((await getInvoice(store.pool, invoice.id))!.status, 'void');
    const reversal = await store.pool.query<{ reverses: string }>(
      'SELECT reverses FROM journals WHERE reverses IS NOT NULL AND id LIKE $1',
      [`%${invoice.id}%`],
    );
    assert.equal(reversal.rows.length >= 1, true, 'the void reversed the invoice journal');
  });
});

describe('principals', () => {
  it('bootstraps the first admin only while there is none, and no one changes their own roles', async () => {
    await assert.rejects(bootstrapAdmin(store.pool, { name: 'second-admin', osUser: 'root' }), /an admin exists/);
    const adam = await store.pool.query<{ id: string; name: string }>("SELECT id, name FROM principals WHERE name LIKE 'adam-%'");
    const self = { principal: adam.rows[0]!.id, name: adam.rows[0]!.name, roles: ['admin' as const], entities: [] };
    await assert.rejects(setRoles(store.pool, adam.rows[0]!.name, ['admin', 'controller'], self), /own roles/);
    const promoted = await setRoles(store.pool, adam.rows[0]!.name, ['admin', 'auditor'], TEST_ADMIN);
    assert.deepEqual(promoted.roles, ['admin', 'auditor']);
  });
});

describe('the command line', () => {
  const accrue = (env: Record<string, string>, ...args: string[]) =>
    spawnSync(process.execPath, ['bin/accrue.js', '--database-url', store.url, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ACCRUE_DEV_MODE: '', ACCRUE_API_KEY: '', ...env },
    });

  it('refuses a state-changing command without a key (exit 3), and one whose principal lacks the role', () => {
    const file = join(dir, 'raised.yaml');
    writeFileSync(file, RAISED.replace('109.00', '159.00'));
    const anonymous = accrue({}, 'catalog', 'propose', file);
    assert.equal(anonymous.status, 3, anonymous.stderr);
    assert.match(anonymous.stderr, /needs change\.propose: give an API key/);
    const auditor = accrue({ ACCRUE_API_KEY: keys.auditor }, 'catalog', 'propose', file);
    assert.equal(auditor.status, 3, auditor.stderr);
    assert.match(auditor.stderr, /may not change\.propose/);
    const ingest = accrue({ ACCRUE_API_KEY: keys.ingest }, 'close', '2026-10');
    assert.equal(ingest.status, 3, ingest.stderr);
  });

  it('shows a catalog diff, proposes with a key file, and a different controller approves', () => {
    const file = join(dir, 'raised-2.yaml');
    writeFileSync(file, RAISED.replace('109.00', '169.00'));
    const diff = accrue({}, 'catalog', 'diff', file);
    assert.equal(diff.status, 0, diff.stderr);
    assert.match(diff.stdout, /^\+\s+- amount: "169\.00"$/m);
    const keyFile = join(dir, 'operator.key');
    writeFileSync(keyFile, `${keys.operator}\n`, { mode: 0o600 });
    const proposed = accrue({}, '--key-file', keyFile, '--json', 'catalog', 'propose', file, '--reason', 'list price 2027');
    assert.equal(proposed.status, 0, proposed.stderr);
    const { request } = JSON.parse(proposed.stdout) as { request: { id: string } };
    const self = accrue({ ACCRUE_API_KEY: keys.operator }, 'changes', 'approve', request.id);
    assert.equal(self.status, 3, 'an operator is no approver');
    const approved = accrue({ ACCRUE_API_KEY: keys.controller2 }, '--json', 'changes', 'approve', request.id);
    assert.equal(approved.status, 0, approved.stderr);
    assert.equal(JSON.parse(approved.stdout).status, 'approved');
    const shown = accrue({}, '--json', 'catalog', 'show');
    assert.match(shown.stdout, /169\.00/);
  });

  it('labels the development mode in the audit log and applies at once', async () => {
    const file = join(dir, 'raised-3.yaml');
    writeFileSync(file, RAISED.replace('109.00', '179.00'));
    const dev = accrue({ ACCRUE_DEV_MODE: '1', USER: 'dana' }, '--json', 'catalog', 'apply', file);
    assert.equal(dev.status, 0, dev.stderr);
    const last = (await readAudit(store.pool, { action: 'catalog.apply', newestFirst: true, limit: 1 }))[0]!;
    assert.equal(last.actor, 'dev:dana');
  });
});
