// Requests, approvals and refusals in the audit log and on the dashboard (issue 17): each refused proposal, approval,
// rejection and cancellation is recorded in a transaction of its own and the refusal answered unchanged; an id naming no
// change request records nothing; the chain still verifies. GET /v1/dashboard/controls lists pending requests with
// their diffs, decisions and refusals per the key's entities, and /metrics counts them as the store has them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/api/server.js';
import { readAudit, verifyAudit, type AuditRecord } from '../../src/audit/log.js';
import { applyCatalog } from '../../src/catalog/service.js';
import { planPeriodClose } from '../../src/controls/apply.js';
import { proposeChange } from '../../src/controls/changes.js';
import type { Actor } from '../../src/domain/controls.js';
import { ProblemError } from '../../src/domain/result.js';
import type { Store } from '../../src/store/store.js';
import { testStore } from '../support/db.js';
import { testKey } from '../support/keys.js';

const CATALOG = readFileSync('examples/northwind/catalog.yaml', 'utf8');
let price = 300;
/** The example catalog with the platform fee at a price no other proposal here uses: a new change each time. */
const raised = () => CATALOG.replace('amount: "99.00"', `amount: "${(price += 1)}.00"`);

let store: Store;
let app: FastifyInstance;
type Made = Awaited<ReturnType<typeof testKey>>;
let operator: Made;
let controller: Made;
let controller2: Made;
let makerChecker: Made;
let auditor: Made;
let ingest: Made;
let deController: Made;
let deAuditor: Made;

const actorOf = (m: Made, entities: string[] = []): Actor => ({
  principal: m.principal.id,
  name: m.principal.name,
  roles: m.principal.roles,
  entities,
  keyId: m.key.id,
});

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, CATALOG, { by: 'test' })).ok);
  app = await buildServer({ pool: store.pool }); // the default policy: every change kind needs a second person
  operator = await testKey(store.pool, { name: 'olivia', roles: ['operator'], kind: 'person' });
  controller = await testKey(store.pool, { name: 'carlos', roles: ['controller'], kind: 'person' });
  controller2 = await testKey(store.pool, { name: 'cora', roles: ['controller'], kind: 'person' });
  makerChecker = await testKey(store.pool, { name: 'max', roles: ['operator', 'controller'], kind: 'person' });
  auditor = await testKey(store.pool, { name: 'audrey', roles: ['auditor'], kind: 'person' });
  ingest = await testKey(store.pool, { name: 'ingest', roles: ['ingest'] });
  deController = await testKey(store.pool, { name: 'de-controller', roles: ['controller'], entities: ['nw-de'], kind: 'person' });
  deAuditor = await testKey(store.pool, { name: 'de-auditor', roles: ['auditor'], entities: ['nw-de'], kind: 'person' });
});

after(async () => {
  await app?.close();
  await store?.close();
});

const call = (method: 'GET' | 'POST' | 'PUT', url: string, key: Made, payload?: unknown, contentType?: string) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key.secret}`, ...(contentType ? { 'content-type': contentType } : {}) },
    ...(payload === undefined ? {} : { payload: payload as string }),
  });

const propose = async (by: Made = operator): Promise<string> => {
  const res = await call('PUT', '/v1/catalog', by, raised(), 'application/yaml');
  assert.equal(res.statusCode, 202, res.body);
  return (res.json() as { id: string }).id;
};

const refusalsOf = async (subject: string): Promise<AuditRecord[]> =>
  (await readAudit(store.pool, { subject, limit: 100 })).filter((r) => r.action.endsWith('refused'));
const details = (r: AuditRecord) => r.details as Record<string, unknown>;
const refusalCount = async () =>
  (
    await store.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM audit_log WHERE action IN ('change.refused', 'change.propose_refused')",
    )
  ).rows[0]!.n;

describe('refusals in the audit log', () => {
  it('records a self-approval as change.refused with code self_approval, answers 403, and the chain verifies', async () => {
    const id = await propose(makerChecker);
    const res = await call('POST', `/v1/changes/${id}/approve`, makerChecker, {});
    assert.equal(res.statusCode, 403, res.body);
    assert.equal(res.json().errors[0].code, 'self_approval');
    const [record, ...more] = await refusalsOf(id);
    assert.equal(more.length, 0);
    assert.equal(record!.action, 'change.refused');
    assert.equal(record!.actor, `principal:${makerChecker.principal.id}/key:${makerChecker.key.id}`);
    assert.deepEqual(
      { ...details(record!), message: undefined },
      {
        attempted: 'approve',
        status: 403,
        code: 'self_approval',
        message: undefined,
        kind: 'catalog.apply',
        subject: details(record!).subject,
        legal_entity: null,
        change_status: 'pending',
        by: makerChecker.principal.id,
        by_name: makerChecker.principal.name,
      },
    );
    assert.match(String(details(record!).message), /a different principal must decide it/);
    const reject = await call('POST', `/v1/changes/${id}/reject`, makerChecker, {});
    assert.equal(reject.statusCode, 403);
    assert.deepEqual(
      (await refusalsOf(id)).map((r) => [details(r).attempted, details(r).code]),
      [
        ['approve', 'self_approval'],
        ['reject', 'self_approval'],
      ],
    );
    assert.equal((await call('GET', `/v1/changes/${id}`, auditor)).json().status, 'pending', 'the refusal changed nothing');
    const verdict = await verifyAudit(store.pool);
    assert.ok(
      verdict.ok,
      JSON.stringify(verdict, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    );
  });

  it('records a decision on a decided request (409 already_decided), a stale approval (409 stale) and a cancel by another (403)', async () => {
    const first = await propose();
    const second = await propose();
    assert.equal((await call('POST', `/v1/changes/${first}/approve`, controller, {})).statusCode, 200);
    const twice = await call('POST', `/v1/changes/${first}/reject`, controller2, {});
    assert.equal(twice.statusCode, 409);
    const stale = await call('POST', `/v1/changes/${second}/approve`, controller2, {});
    assert.equal(stale.statusCode, 409, stale.body);
    assert.equal(stale.json().errors[0].code, 'stale');
    const cancel = await call('POST', `/v1/changes/${second}/cancel`, makerChecker, {});
    assert.equal(cancel.statusCode, 403);
    assert.deepEqual(
      (await readAudit(store.pool, { subject: first, limit: 10 })).map((r) => [r.action, details(r).code ?? null]),
      [
        ['change.propose', null],
        ['change.approve', null],
        ['change.refused', 'already_decided'],
      ],
    );
    assert.deepEqual(
      (await refusalsOf(second)).map((r) => [details(r).attempted, details(r).code, details(r).status, details(r).by]),
      [
        ['approve', 'stale', 409, controller2.principal.id],
        ['cancel', 'not_requester', 403, makerChecker.principal.id],
      ],
    );
    assert.equal((await call('POST', `/v1/changes/${second}/cancel`, operator, {})).statusCode, 200, 'its requester may');
    assert.ok((await verifyAudit(store.pool)).ok);
  });

  it('records nothing for an id that names no change request, but records a reach outside the key', async () => {
    const before = await refusalCount();
    for (const path of ['approve', 'reject', 'cancel']) {
      const res = await call('POST', `/v1/changes/chg_00000000deadbeef/${path}`, path === 'cancel' ? operator : controller, {});
      assert.equal(res.statusCode, 404);
    }
    assert.equal(await refusalCount(), before, 'no subject, no record');

    const { request } = await proposeChange(store.pool, actorOf(operator), planPeriodClose('nw-us', '2026-11', []));
    const hidden = await call('POST', `/v1/changes/${request.id}/approve`, deController, {});
    assert.equal(hidden.statusCode, 404, 'a change of nw-us does not exist for a key limited to nw-de');
    const [record] = await refusalsOf(request.id);
    assert.deepEqual(
      [details(record!).code, details(record!).legal_entity, details(record!).by],
      ['not_found', 'nw-us', deController.principal.id],
    );
    const everyEntity = await propose();
    const limited = await call('POST', `/v1/changes/${everyEntity}/approve`, deController, {});
    assert.equal(limited.statusCode, 403);
    assert.equal(details((await refusalsOf(everyEntity))[0]!).code, 'forbidden');
    await call('POST', `/v1/changes/${everyEntity}/reject`, controller, { note: 'not needed' });
  });

  it('records a refused proposal as change.propose_refused under the subject it concerned', async () => {
    const plan = planPeriodClose('nw-de', '2026-11', []);
    await assert.rejects(proposeChange(store.pool, actorOf(auditor), plan), (e: unknown) => e instanceof ProblemError && e.status === 403);
    const { request } = await proposeChange(store.pool, actorOf(operator), plan);
    await assert.rejects(
      proposeChange(store.pool, actorOf(operator), planPeriodClose('nw-de', '2026-11', ['netsuite'])),
      (e: unknown) => e instanceof ProblemError && e.status === 409 && e.problems[0]!.code === 'pending_change',
    );
    const limited = await call(
      'PUT',
      '/v1/catalog',
      await testKey(store.pool, { name: 'de-op', roles: ['operator'], entities: ['nw-de'] }),
      raised(),
      'application/yaml',
    );
    assert.equal(limited.statusCode, 403, 'a catalog concerns every entity; an nw-de key may not propose it');
    // Refused by the route itself (src/api/entity-scope.ts: a limited key never reaches an unscoped route), like a key
    // without the role: what is audited are refusals of a proposal that reached the change requests.
    assert.match(limited.body, /entity_limited_key/);
    const refused = (await readAudit(store.pool, { action: 'change.propose_refused', limit: 100 })).map((r) => ({
      subject: r.subject,
      code: details(r).code,
      kind: details(r).kind,
      legal_entity: details(r).legal_entity,
      by: details(r).by,
    }));
    assert.deepEqual(refused.slice(0, 2), [
      { subject: plan.subject, code: 'forbidden', kind: 'period.close', legal_entity: 'nw-de', by: auditor.principal.id },
      { subject: plan.subject, code: 'pending_change', kind: 'period.close', legal_entity: 'nw-de', by: operator.principal.id },
    ]);
    assert.equal(refused.length, 2);
    assert.equal((await readAudit(store.pool, { subject: request.id, limit: 10 })).length, 1, 'the pending request: its proposal only');
    assert.ok((await verifyAudit(store.pool)).ok);
  });
});

interface Controls {
  counts: Record<'pending' | 'approved' | 'rejected' | 'cancelled' | 'refusals', number>;
  oldest_pending_seconds: number | null;
  pending: Array<{ id: string; kind: string; diff: string; requested_by_name: string; age_seconds: number; legal_entity: string | null }>;
  decisions: Array<{ id: string; status: string; decided_by_name: string; requested_by_name: string }>;
  refusals: Array<{ subject: string; code: string; attempted: string; by_name: string; action: string; legal_entity: string | null }>;
}

describe('GET /v1/dashboard/controls', () => {
  it('lists a pending request with its diff, an approved one and a self-approval refused, with counts as stored', async () => {
    const waiting = await propose(makerChecker);
    assert.equal((await call('POST', `/v1/changes/${waiting}/approve`, makerChecker, {})).statusCode, 403);
    const approvedId = await propose();
    assert.equal((await call('POST', `/v1/changes/${approvedId}/approve`, controller, { note: 'ok' })).statusCode, 200);

    const res = await call('GET', '/v1/dashboard/controls', auditor);
    assert.equal(res.statusCode, 200, res.body);
    const view = res.json() as Controls;
    const pending = view.pending.find((p) => p.id === waiting);
    assert.ok(pending, 'the pending request');
    assert.equal(pending.kind, 'catalog.apply');
    assert.equal(pending.requested_by_name, makerChecker.principal.name);
    assert.match(pending.diff, /^\+\s+- amount: "\d+\.00"$/m);
    assert.ok(pending.age_seconds >= 0);
    assert.ok(!view.pending.some((p) => p.id === approvedId));
    assert.deepEqual(
      view.decisions.find((d) => d.id === approvedId),
      view.decisions[0],
      'the latest decision first',
    );
    assert.equal(view.decisions[0]!.status, 'approved');
    assert.equal(view.decisions[0]!.decided_by_name, controller.principal.name);
    assert.deepEqual(
      view.refusals.find((r) => r.subject === waiting),
      view.refusals[0],
      'the latest refusal first',
    );
    assert.deepEqual(
      { ...view.refusals[0]!, seq: undefined, at: undefined, actor: undefined, message: undefined, status: undefined },
      {
        seq: undefined,
        at: undefined,
        actor: undefined,
        message: undefined,
        status: undefined,
        action: 'change.refused',
        subject: waiting,
        attempted: 'approve',
        code: 'self_approval',
        by_name: makerChecker.principal.name,
        kind: 'catalog.apply',
        legal_entity: null,
      },
    );
    const stored = (
      await store.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM change_requests GROUP BY 1')
    ).rows;
    for (const status of ['pending', 'approved', 'rejected', 'cancelled'] as const)
      assert.equal(view.counts[status], stored.find((r) => r.status === status)?.n ?? 0, status);
    assert.equal(view.counts.refusals, await refusalCount());
    assert.ok(view.oldest_pending_seconds !== null && view.oldest_pending_seconds >= pending.age_seconds);
  });

  it('shows a key limited to entities the requests and refusals of its entities only', async () => {
    const { request: de } = await proposeChange(store.pool, actorOf(operator), planPeriodClose('nw-de', '2026-12', []));
    const view = (await call('GET', '/v1/dashboard/controls', deAuditor)).json() as Controls;
    assert.deepEqual(
      view.pending.map((p) => p.legal_entity),
      view.pending.map(() => 'nw-de'),
    );
    assert.ok(view.pending.some((p) => p.id === de.id));
    assert.ok(view.refusals.length > 0, 'the refused nw-de proposals');
    for (const r of view.refusals) assert.equal(r.legal_entity, 'nw-de');
    const all = (await call('GET', '/v1/dashboard/controls', auditor)).json() as Controls;
    assert.ok(all.pending.some((p) => p.legal_entity === null) && all.pending.some((p) => p.legal_entity === 'nw-us'));
    assert.ok(view.counts.pending < all.counts.pending);
    assert.ok(view.counts.refusals < all.counts.refusals);
    assert.equal((await call('GET', '/v1/dashboard/controls', ingest)).statusCode, 403, 'an ingest key reads nothing');
  });
});

describe('/metrics', () => {
  it('counts change requests by status and refusals as the store has them, and promtool accepts it', async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    const sample = (series: string) => {
      const line = res.body.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    const stored = (
      await store.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM change_requests GROUP BY 1')
    ).rows;
    for (const status of ['pending', 'approved', 'rejected', 'cancelled'])
      assert.equal(sample(`accrue_change_requests{status="${status}"}`), stored.find((r) => r.status === status)?.n ?? 0, status);
    const refusals = await refusalCount();
    assert.ok(refusals >= 10);
    assert.equal(sample('accrue_change_refusals_total'), refusals);
    assert.match(res.body, /^# TYPE accrue_change_refusals_total counter$/m);
    assert.match(res.body, /^# TYPE accrue_change_requests gauge$/m);
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: res.body, encoding: 'utf8' });
    if (lint.error) throw new Error(`promtool (Debian package prometheus) is needed to check the metrics: ${lint.error.message}`);
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
  });
});
