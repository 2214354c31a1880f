// The key recipes are facts once shipped: a stored key must mean what it meant. Each recipe is pinned here by a value
// worked out by hand (or, for digests, by `printf ... | sha256sum`), so a change to a recipe fails instead of
// silently minting new keys for old documents.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as keys from '../../src/domain/keys.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('key recipes', () => {
  it('spells every recipe as shipped', () => {
    assert.equal(
      keys.usageRef('acme', 'api_calls', '2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z'),
      'ua:v1:acme:api_calls:2026-11-01T00:00:00.000Z:2026-12-01T00:00:00.000Z',
    );
    assert.equal(keys.usageRefPrefix('acme', 'api_calls'), 'ua:v1:acme:api_calls:');
    assert.equal(keys.invoiceKey('nw-us', 'acme', 'USD', '2026-11'), 'inv:v1:nw-us:acme:USD:2026-11');
    assert.equal(keys.lateCreditNoteKey('inv_abc', '42'), 'cn:v1:inv_abc:late:42');
    assert.equal(keys.lateAdjustmentKey('acme', 'USD', '2026-10', '42'), 'adj:v1:acme:USD:2026-10:42');
    assert.equal(keys.lateReplacementKey('inv:v1:nw-us:acme:USD:2026-10', '42'), 'inv:v1:nw-us:acme:USD:2026-10:late:42');
    assert.equal(keys.journalId('invoice', 'inv_abc'), 'jrn:v1:invoice:inv_abc');
    assert.equal(keys.invoiceJournalId('inv_abc'), 'jrn:v1:invoice:inv_abc');
    assert.equal(keys.outboxKey('netsuite', 'jrn:v1:invoice:inv_abc'), 'out:v1:netsuite:jrn:v1:invoice:inv_abc');
    assert.equal(keys.reversalJournalId('invoice', 'inv_abc'), 'jrn:v1:invoice_reversal:inv_abc');
    assert.equal(keys.reversalJournalId('credit_drawdown', 'inv_abc'), 'jrn:v1:credit_drawdown_reversal:inv_abc');
    assert.equal(keys.outboxKey('xero-de', keys.reversalJournalId('invoice', 'inv_abc')), 'out:v1:xero-de:jrn:v1:invoice_reversal:inv_abc');
    assert.equal(keys.paymentOutboxKey('xero-de', 'pay_1'), 'out:v1:xero-de:pay:pay_1');
    assert.equal(keys.billingRunSubject('2026-11', ['nw-us', 'nw-de'], '42'), 'billing-run:v1:2026-11:nw-us+nw-de:42');
    assert.equal(keys.billingRunSubject('2026-11', ['nw-us']), 'billing-run:v1:2026-11:nw-us');
    assert.equal(
      keys.auditCheckpointNotificationId('42', 'ab'.repeat(32), 'cd'.repeat(32)),
      'ntf:v1:audit.checkpoint:42:abababababababab:cdcdcdcdcdcdcdcd',
    );
    assert.equal(keys.disputeKey('inv_abc', 2, 1), 'dsp:v1:inv_abc:2:1');
    assert.equal(keys.disputeCreditNoteKey('inv_abc', 'dsp_0123'), 'cn:v1:inv_abc:dispute:dsp_0123');
  });

  it('derives the digest keys from their documented inputs', () => {
    assert.equal(keys.invoiceIdOf('inv:v1:nw-us:acme:USD:2026-11'), `inv_${sha('inv:v1:nw-us:acme:USD:2026-11').slice(0, 24)}`);
    assert.equal(keys.ratingRunId('acme', '2026-11', 'h', 'u'), `rr:v1:${sha('acme\n2026-11\nh\nu').slice(0, 32)}`);
    assert.equal(keys.exceptionId('payment_unmatched', 'pay_1'), `exc:v1:${sha('payment_unmatched\npay_1').slice(0, 32)}`);
    assert.equal(keys.contactRequestKey('xero-de', 'acme', '{"a":1}'), `acc:contact:v1:xero-de:acme:${sha('{"a":1}').slice(0, 16)}`);
    const batch = [
      { source: '//s', id: '1', hash: 'h1' },
      { source: '//s', id: '2', hash: 'h2' },
    ];
    assert.equal(keys.usageBatchId(batch), `ub:v1:${sha('//s\u00001\u0000h1\n//s\u00002\u0000h2\n').slice(0, 32)}`);
    assert.notEqual(keys.usageBatchId(batch), keys.usageBatchId([...batch].reverse()), 'a batch id follows the order of its events');
    // A batch of 1,000 whose lines fill the digest's input several times over: the digest of all its lines in order.
    const large = Array.from({ length: 1000 }, (_, n) => ({ source: `//s/${'é'.repeat(n % 7)}`, id: `evt-${n}`, hash: sha(String(n)) }));
    const lines = large.map((k) => `${k.source}\u0000${k.id}\u0000${k.hash}\n`).join('');
    assert.equal(keys.usageBatchId(large), `ub:v1:${sha(lines).slice(0, 32)}`);
  });

  it('pins the digests to values computed outside this code', () => {
    // printf 'inv:v1:nw-us:acme:USD:2026-11' | sha256sum | cut -c1-24
    assert.equal(keys.invoiceIdOf('inv:v1:nw-us:acme:USD:2026-11'), `inv_${PINNED_INVOICE_DIGEST}`);
    // printf 'dsp:v1:inv_abc:2:1' | sha256sum | cut -c1-24
    assert.equal(keys.disputeIdOf('dsp:v1:inv_abc:2:1'), `dsp_${PINNED_DISPUTE_DIGEST}`);
  });
});

const PINNED_INVOICE_DIGEST = '292c2cf55c24685d1464d94e';
const PINNED_DISPUTE_DIGEST = '57be0f3d8833817bc0a4ad42';
