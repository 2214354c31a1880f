// Disputes (docs/disputes.md): a line of a finalized invoice contested, worked in an owner queue, and closed by a
// credit note that a different controller approves (its amount, tax at the invoice's own rate, journal, outbox row
// and number) or by a rejection; the cycle time on /metrics; the role boundaries over HTTP and on the command line.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/api/server.js';
import { readAudit } from '../../src/audit/log.js';
import { applyCatalog, currentCatalog } from '../../src/catalog/service.js';
import { invoiceInForce } from '../../src/close/store.js';
import { closePeriod } from '../../src/close/close-period.js';
import { applyCreditNote } from '../../src/controls/credit-notes.js';
import type { DisputeCreditPayload } from '../../src/disputes/credit.js';
import type { Invoice } from '../../src/domain/model.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { getInvoice } from '../../src/invoice/store.js';
import { readJournals } from '../../src/post/journals.js';
import { reconcilePeriod } from '../../src/reconcile/run.js';
import type { Store } from '../../src/store/store.js';
import { testStore } from '../support/db.js';
import { testKey } from '../support/keys.js';

const SOURCE = '//disputes-test';
const API = 'com.northwind.api.request';
const STORAGE = 'com.northwind.storage.usage';
const ev = (id: string, subject: string, time: string, type = API, data: Record<string, unknown> = { region: 'eu' }) => ({
  specversion: '1.0',
  id,
  source: SOURCE,
  type,
  subject,
  time,
  data,
});

let store: Store;
let app: FastifyInstance;
let acme: Invoice;
let other: Invoice; // another customer's invoice, for the command line
const keys = { operator: '', controller: '', controller2: '', auditor: '', makerChecker: '' };
let operatorName = '';

before(async () => {
  store = await testStore();
  assert.ok((await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' })).ok);
  const catalog = (await currentCatalog(store.pool))!;
  const events = [
    ...Array.from({ length: 6 }, (_, i) => ev(`a-${i}`, 'acme-prod', `2026-11-${String(2 + i).padStart(2, '0')}T10:00:00Z`)),
    // 1,000,000 GB-hours at 0.000137 = 137.00: a usage line with an amount
    ev('a-st-1', 'acme-prod', '2026-11-03T00:00:00Z', STORAGE, { gb_hours: '1000000' }),
  ];
  await ingestBatch(store.pool, catalog, events, { channel: 'file', now: new Date('2026-12-01T00:00:00Z') });
  const closed = await closePeriod(store.pool, catalog, { period: '2026-11', erpTargets: ['netsuite'] });
  acme = closed.invoices.find((i) => i.customer === 'acme')!;
  other = closed.invoices.find((i) => i.customer !== 'acme' && i.lines.some((l) => l.kind === 'flat' && l.amount_minor > 0n))!;
  assert.ok(acme && other, 'acme and another customer are billed');
  app = await buildServer({ pool: store.pool }); // the default policy: credit notes need a second person
  const operator = await testKey(store.pool, { name: 'olivia', roles: ['operator'], kind: 'person' });
  keys.operator = operator.secret;
  operatorName = operator.principal.name;
  keys.controller = (await testKey(store.pool, { name: 'carlos', roles: ['controller'], kind: 'person' })).secret;
  keys.controller2 = (await testKey(store.pool, { name: 'cora', roles: ['controller'], kind: 'person' })).secret;
  keys.auditor = (await testKey(store.pool, { name: 'audrey', roles: ['auditor'], kind: 'person' })).secret;
  keys.makerChecker = (await testKey(store.pool, { name: 'max', roles: ['operator', 'controller'], kind: 'person' })).secret;
});

after(async () => {
  await app?.close();
  await store?.close();
});

const call = (method: 'GET' | 'POST', url: string, key: string, payload?: unknown) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key}` },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });

const lineOf = (kind: string) => {
  const line = acme.lines.find((l) => l.kind === kind && l.amount_minor > 0n);
  assert.ok(line, `acme's invoice has a ${kind} line: ${JSON.stringify(acme.lines.map((l) => [l.line_no, l.kind, l.description]))}`);
  return line;
};

async function openOn(line: number, reason: string, key = keys.operator) {
  const res = await call('POST', '/v1/disputes', key, { invoice: acme.number, line, reason });
  assert.equal(res.statusCode, 201, res.body);
  return res.json() as { id: string; walk: Record<string, unknown>; status: string };
}

async function journalOf(creditNoteId: string) {
  const [journal] = await readJournals(store.pool, { ids: [`jrn:v1:credit_note:${creditNoteId}`] });
  assert.ok(journal, `credit note ${creditNoteId} has its journal`);
  const debit = journal.lines.reduce((s, l) => s + l.debit_minor, 0n);
  const credit = journal.lines.reduce((s, l) => s + l.credit_minor, 0n);
  assert.equal(debit, credit, 'the journal balances');
  return journal;
}

describe('a dispute resolved by a partial credit note, approved by a different controller', () => {
  let disputeId = '';
  let changeId = '';
  let creditNoteId = '';

  it('opens on the flat fee line with the explain walk attached, and is assigned to a person', async () => {
    const flat = lineOf('flat');
    assert.equal(flat.amount_minor, 9900n, 'the platform fee is 99.00');
    const opened = await openOn(flat.line_no, 'customer says the platform fee was waived for November');
    disputeId = opened.id;
    assert.match(disputeId, /^dsp_[0-9a-f]{24}$/);
    assert.equal(opened.status, 'open');
    assert.equal(opened.walk.line_no, flat.line_no);
    assert.equal(opened.walk.amount, '99.00');
    assert.match(String(opened.walk.correlation_id), /\S/);
    const again = await call('POST', '/v1/disputes', keys.operator, {
      invoice: acme.number,
      line: flat.line_no,
      reason: 'customer says the platform fee was waived for November',
    });
    assert.equal(again.statusCode, 200, 'the same dispute again is the open one');
    assert.equal(again.json().id, disputeId);
    const other = await call('POST', '/v1/disputes', keys.operator, { invoice: acme.number, line: flat.line_no, reason: 'another' });
    assert.equal(other.statusCode, 409, other.body);

    const assigned = await call('POST', `/v1/disputes/${disputeId}/assign`, keys.operator, { assignee: operatorName });
    assert.equal(assigned.statusCode, 200, assigned.body);
    assert.equal(assigned.json().assignee, operatorName);
    const unknown = await call('POST', `/v1/disputes/${disputeId}/assign`, keys.operator, { assignee: 'nobody-here' });
    assert.equal(unknown.statusCode, 400);
    const listed = await call('GET', `/v1/disputes?status=open&assignee=${operatorName}`, keys.auditor);
    assert.deepEqual(
      listed.json().disputes.map((d: { id: string }) => d.id),
      [disputeId],
    );
  });

  it('proposes a credit of 10.00: 202 with the change request, split 9.32 net + 0.68 tax at the invoice rate 0.0725', async () => {
    const res = await call('POST', `/v1/disputes/${disputeId}/resolve`, keys.makerChecker, { credit: '10.00' });
    assert.equal(res.statusCode, 202, res.body);
    const change = res.json();
    changeId = change.id;
    assert.equal(change.kind, 'credit_note.issue');
    // 10.00 / 1.0725 = 9.3240… → 9.32 net; 0.68 tax.
    assert.equal(change.payload.net_minor, '932');
    assert.equal(change.payload.tax_minor, '68');
    assert.equal(change.payload.tax_rate, '0.0725');
    const shown = await call('GET', `/v1/disputes/${disputeId}`, keys.operator);
    assert.equal(shown.json().dispute.change_request, changeId);
    assert.equal(shown.json().dispute.status, 'open', 'nothing moves before the approval');
  });

  it('refuses the requester approving their own credit note (403), and applies it once another controller approves', async () => {
    const self = await call('POST', `/v1/changes/${changeId}/approve`, keys.makerChecker, {});
    assert.equal(self.statusCode, 403, self.body);
    assert.equal(self.json().errors[0].code, 'self_approval');
    const approved = await call('POST', `/v1/changes/${changeId}/approve`, keys.controller, {});
    assert.equal(approved.statusCode, 200, approved.body);
    creditNoteId = approved.json().result.credit_note;

    const note = (await getInvoice(store.pool, creditNoteId))!;
    assert.equal(note.kind, 'credit_note');
    assert.equal(note.corrects, acme.id);
    assert.match(note.number!, /^NWUS-CN-\d{6}$/);
    assert.equal(note.subtotal_minor, 932n);
    assert.equal(note.tax_minor, 68n);
    assert.equal(note.total_minor, 1000n);
    assert.deepEqual(
      note.tax_lines.map((t) => [t.rate, t.taxable_minor, t.tax_minor]),
      [['0.0725', 932n, 68n]],
    );
    const journal = await journalOf(creditNoteId);
    const receivable = journal.lines.find((l) => l.customer !== undefined)!;
    assert.equal(receivable.credit_minor, 1000n, 'the receivable is reduced by the credit, tax included');
    const outbox = await store.pool.query('SELECT target FROM outbox WHERE document_id = $1', [journal.id]);
    assert.deepEqual(
      outbox.rows.map((r) => r.target),
      ['netsuite'],
      'the credit note goes to the ERP its invoice went to',
    );

    const dispute = (await call('GET', `/v1/disputes/${disputeId}`, keys.auditor)).json();
    assert.equal(dispute.dispute.status, 'resolved');
    assert.equal(dispute.dispute.credit_note, creditNoteId);
    assert.equal(dispute.dispute.credit, '10.00');
    // 99.00 + 7.18 tax (99.00 × 0.0725 = 7.1775, half up) = 106.18; 10.00 credited.
    assert.deepEqual(dispute.line_credit, { tax_rate: '0.0725', full: '106.18', credited: '10.00', remaining: '96.18' });
    assert.equal((await invoiceInForce(store.pool, 'acme', '2026-11'))?.id, acme.id, 'a partial credit leaves the invoice in force');
  });

  it('issues the approved credit note once: applying the payload again answers the same document', async () => {
    const change = await store.pool.query<{ payload: DisputeCreditPayload }>('SELECT payload FROM change_requests WHERE id = $1', [
      changeId,
    ]);
    const again = await applyCreditNote(store.pool, change.rows[0]!.payload, {
      principal: 'system:test',
      name: 'test',
      roles: [],
      entities: [],
    });
    assert.equal(again.credit_note, creditNoteId);
    const count = await store.pool.query("SELECT count(*)::int AS n FROM invoices WHERE corrects = $1 AND kind = 'credit_note'", [acme.id]);
    assert.equal(count.rows[0].n, 1);
  });

  it('refuses more than what is left of the line, naming credit, and credits exactly the rest', async () => {
    const flat = lineOf('flat');
    const second = await openOn(flat.line_no, 'and the rest of the fee too');
    const over = await call('POST', `/v1/disputes/${second.id}/resolve`, keys.operator, { credit: '96.19' });
    assert.equal(over.statusCode, 409, over.body);
    assert.equal(over.json().errors[0].path, 'credit');
    const rest = await call('POST', `/v1/disputes/${second.id}/resolve`, keys.operator, { credit: '96.18' });
    assert.equal(rest.statusCode, 202, rest.body);
    assert.equal(rest.json().payload.net_minor, String(9900 - 932));
    assert.equal(rest.json().payload.tax_minor, String(718 - 68));
    const approved = await call('POST', `/v1/changes/${rest.json().id}/approve`, keys.controller2, {});
    assert.equal(approved.statusCode, 200, approved.body);
    const shown = (await call('GET', `/v1/disputes/${second.id}`, keys.operator)).json();
    assert.equal(shown.line_credit.remaining, '0.00');
    const third = await openOn(flat.line_no, 'one cent more');
    const cent = await call('POST', `/v1/disputes/${third.id}/resolve`, keys.operator, { credit: '0.01' });
    assert.equal(cent.statusCode, 409, 'nothing is left to credit');
    assert.equal((await call('POST', `/v1/disputes/${third.id}/reject`, keys.operator, { reason: 'fully credited' })).statusCode, 200);
  });
});

describe('a full credit, a rejection and the guards', () => {
  it('credits a usage line in full: its amount and its tax share at the invoice rate', async () => {
    const usage = lineOf('usage');
    assert.equal(usage.amount_minor, 13700n, 'the storage line is 137.00');
    const opened = await openOn(usage.line_no, 'duplicate storage readings');
    assert.ok((opened.walk.usage as { event_count: number }).event_count > 0, 'the walk reaches the events');
    // 137.00 × 0.0725 = 9.9325 → 9.93 tax; the full credit is 146.93.
    const res = await call('POST', `/v1/disputes/${opened.id}/resolve`, keys.operator, { credit: '146.93' });
    assert.equal(res.statusCode, 202, res.body);
    const approved = await call('POST', `/v1/changes/${res.json().id}/approve`, keys.controller, {});
    assert.equal(approved.statusCode, 200, approved.body);
    const note = (await getInvoice(store.pool, approved.json().result.credit_note))!;
    assert.equal(note.subtotal_minor, 13700n);
    assert.equal(note.tax_minor, 993n);
    assert.equal(note.total_minor, 14693n);
    assert.equal(note.lines[0]!.quantity, usage.quantity, 'a full credit carries the line as billed');
    await journalOf(note.id);
  });

  it('rejects a dispute with a reason, without a second person; a closed dispute is final in the database', async () => {
    const usage = lineOf('usage');
    const opened = await openOn(usage.line_no, 'we did not call the API that often');
    const rejected = await call('POST', `/v1/disputes/${opened.id}/reject`, keys.operator, {
      reason: 'the events are signed by the customer',
    });
    assert.equal(rejected.statusCode, 200, rejected.body);
    assert.equal(rejected.json().status, 'rejected');
    const twice = await call('POST', `/v1/disputes/${opened.id}/reject`, keys.operator, { reason: 'again' });
    assert.equal(twice.statusCode, 409);
    await assert.rejects(
      store.pool.query("UPDATE disputes SET status = 'open', closed_at = NULL, closed_by = NULL, rejection = NULL WHERE id = $1", [
        opened.id,
      ]),
      /final/,
    );
    await assert.rejects(store.pool.query('DELETE FROM disputes WHERE id = $1', [opened.id]), /cannot be deleted/);
  });

  it('refuses an auditor opening a dispute (403) and a controller working one', async () => {
    const auditor = await call('POST', '/v1/disputes', keys.auditor, { invoice: acme.number, line: 1, reason: 'x' });
    assert.equal(auditor.statusCode, 403, auditor.body);
    const controller = await call('POST', '/v1/disputes', keys.controller, { invoice: acme.number, line: 1, reason: 'x' });
    assert.equal(controller.statusCode, 403, controller.body);
  });

  it('refuses a line that is no charge, a missing line and an unknown invoice', async () => {
    const missing = await call('POST', '/v1/disputes', keys.operator, { invoice: acme.number, line: 999, reason: 'x' });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().errors[0].path, 'line');
    const unknown = await call('POST', '/v1/disputes', keys.operator, { invoice: 'NWUS-999999', line: 1, reason: 'x' });
    assert.equal(unknown.statusCode, 404);
    const free = acme.lines.find((l) => l.meter === 'api_calls');
    assert.equal(free?.amount_minor, 0n, "acme's six API calls are in the free tier");
    const nothing = await call('POST', '/v1/disputes', keys.operator, { invoice: acme.number, line: free.line_no, reason: 'x' });
    assert.equal(nothing.statusCode, 400);
    assert.equal(nothing.json().errors[0].code, 'not_disputable');
  });

  it('leaves the books reconciled: invoices, credit notes and the ledger agree', async () => {
    const report = await reconcilePeriod(store.pool, { period: '2026-11', legalEntity: 'nw-us', record: false });
    const red = report.checkpoints.filter((c) => c.status !== 'green' && c.connector === null);
    assert.deepEqual(
      red.map((c) => [c.checkpoint, c.differences.map((d) => d.key.item)]),
      [],
    );
  });

  it('audits every move with the principal', async () => {
    for (const action of ['dispute.open', 'dispute.assign', 'dispute.credit_proposed', 'dispute.resolve', 'dispute.reject'])
      assert.equal((await readAudit(store.pool, { action, limit: 1 })).length, 1, `${action} is in the audit log`);
    const opened = (await readAudit(store.pool, { action: 'dispute.open', limit: 1 }))[0]!;
    assert.match(opened.actor, /^principal:prn_[0-9a-f]{12}\/key:/);
  });

  it('counts open disputes and the cycle time of closed ones on /metrics', async () => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const sample = (name: string) => {
      const line = text.split('\n').find((l) => l.startsWith(name));
      assert.ok(
        line,
        `${name} in ${text
          .split('\n')
          .filter((l) => l.includes('dispute'))
          .join('\n')}`,
      );
      return Number(line.split(' ').pop());
    };
    assert.equal(sample('accrue_dispute_resolution_seconds_count{legal_entity="nw-us",outcome="resolved"}'), 3);
    assert.equal(sample('accrue_dispute_resolution_seconds_count{legal_entity="nw-us",outcome="rejected"}'), 2);
    assert.equal(sample('accrue_disputes_open{legal_entity="nw-us"}'), 0);
    assert.equal(sample('accrue_disputes_open{legal_entity="nw-de"}'), 0);
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (lint.error) throw new Error(`promtool (Debian package prometheus) is needed to check the metrics: ${lint.error.message}`);
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
  });
});

describe('the command line', () => {
  const accrue = (env: Record<string, string>, ...args: string[]) =>
    spawnSync(process.execPath, ['bin/accrue.js', '--database-url', store.url, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ACCRUE_DEV_MODE: '', ACCRUE_API_KEY: '', ...env },
    });

  it('refuses an operator without a key (exit 3)', () => {
    const anonymous = accrue({}, 'disputes', 'open', acme.number!, '--line', '1', '--reason', 'x');
    assert.equal(anonymous.status, 3, anonymous.stderr);
    assert.match(anonymous.stderr, /needs disputes\.work/);
  });

  it('opens with a key, shows the walk, and proposes a credit note a controller approves', () => {
    const flat = other.lines.find((l) => l.kind === 'flat')!;
    const opened = accrue(
      { ACCRUE_API_KEY: keys.operator },
      '--json',
      'disputes',
      'open',
      other.number!,
      '--line',
      String(flat.line_no),
      '--reason',
      'cli',
    );
    assert.equal(opened.status, 0, opened.stderr);
    const id = (JSON.parse(opened.stdout) as { dispute: { id: string } }).dispute.id;
    const shown = accrue({ ACCRUE_API_KEY: keys.auditor }, 'disputes', 'show', id);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /explain walk when opened:/);
    assert.match(shown.stdout, /correlation \S+; journals jrn:v1:invoice:/);
    const proposed = accrue({ ACCRUE_API_KEY: keys.operator }, '--json', 'disputes', 'resolve', id, '--credit', '0.50');
    assert.equal(proposed.status, 0, proposed.stderr);
    assert.match(proposed.stdout, /"status": "pending"/);
    const over = accrue({ ACCRUE_API_KEY: keys.operator }, 'disputes', 'reject', id, '--reason', 'x');
    assert.equal(over.status, 2, 'a pending credit note blocks a rejection');
    const list = accrue({ ACCRUE_API_KEY: keys.auditor }, '--json', 'disputes', 'list', '--status', 'open');
    assert.ok((JSON.parse(list.stdout) as Array<{ id: string }>).some((d) => d.id === id));
  });

  it('in the explicit development mode issues the credit note at once, labelled in the audit log', async () => {
    const trueUp = other.lines.find((l) => l.kind === 'minimum_true_up' && l.amount_minor > 0n);
    assert.ok(trueUp, `${other.number} has a minimum true-up line`);
    const env = { ACCRUE_DEV_MODE: '1', USER: 'dana' };
    const opened = accrue(env, '--json', 'disputes', 'open', other.number!, '--line', String(trueUp.line_no), '--reason', 'dev');
    assert.equal(opened.status, 0, opened.stderr);
    const id = (JSON.parse(opened.stdout) as { dispute: { id: string } }).dispute.id;
    const resolved = accrue(env, '--json', 'disputes', 'resolve', id, '--credit', '1.00');
    assert.equal(resolved.status, 0, resolved.stderr);
    const outcome = JSON.parse(resolved.stdout) as { status: string; approval: string; result: { credit_note: string } };
    assert.equal(outcome.status, 'applied');
    assert.equal(outcome.approval, 'development_mode');
    assert.equal((await getInvoice(store.pool, outcome.result.credit_note))?.total_minor, 100n);
    const audit = (await readAudit(store.pool, { action: 'dispute.resolve', newestFirst: true, limit: 1 }))[0]!;
    assert.equal(audit.actor, 'dev:dana');
  });
});
