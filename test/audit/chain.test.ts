import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  GENESIS_HASH,
  auditHash,
  auditPayload,
  nextRecord,
  verifyChain,
  type AuditInput,
  type AuditRecord,
} from '../../src/audit/chain.js';

const INPUTS: AuditInput[] = [
  {
    at: '2025-03-01T00:00:00Z',
    actor: 'system:billing-run',
    action: 'invoice.draft',
    subject: 'inv_1',
    details: { total_minor: 12050n, currency: 'USD' },
  },
  { at: '2025-03-01T00:00:01Z', actor: 'alice@northwind', action: 'invoice.finalize', subject: 'inv_1', details: { number: 'NW-US-0001' } },
  {
    at: '2025-03-02T09:30:00Z',
    actor: 'bob@northwind',
    action: 'exception.waive',
    subject: 'exc:v1:abc',
    reason: 'rounding on legacy side',
    details: null,
  },
  { at: '2025-03-03T10:00:00Z', actor: 'system:post', action: 'journal.post', subject: 'jrn:v1:invoice:inv_1', details: { lines: 3 } },
  {
    at: '2025-03-04T11:00:00Z',
    actor: 'carol@northwind',
    action: 'catalog.publish',
    subject: 'catalog:7',
    details: { version: 7, changed: ['plans'] },
  },
];

function chain(inputs: readonly AuditInput[] = INPUTS): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (const input of inputs) records.push(nextRecord(records.at(-1), input));
  return records;
}

const broken = (records: readonly AuditRecord[]) => {
  const verdict = verifyChain(records);
  assert.equal(verdict.ok, false, 'the chain must not verify');
  return verdict as Extract<typeof verdict, { ok: false }>;
};

describe('audit hash recipe', () => {
  it('is SHA-256 hex over prev_hash + canonical JSON of seq, at, actor, action, subject, reason, details', () => {
    const [first] = chain();
    const payload =
      '{"action":"invoice.draft","actor":"system:billing-run","at":"2025-03-01T00:00:00Z","details":{"currency":"USD","total_minor":"12050"},"reason":null,"seq":"1","subject":"inv_1"}';
    assert.equal(auditPayload(first!), payload);
    const expected = createHash('sha256')
      .update(GENESIS_HASH + payload)
      .digest('hex');
    assert.equal(first!.hash, expected);
    assert.equal(auditHash(GENESIS_HASH, first!), expected);
    assert.equal(first!.prev_hash, GENESIS_HASH);
    assert.equal(GENESIS_HASH, '0'.repeat(64));
  });

  it('hashes a number seq and a bigint seq alike', () => {
    const [first] = chain();
    assert.equal(auditHash(GENESIS_HASH, { ...first!, seq: 1 }), first!.hash);
  });
});

describe('nextRecord', () => {
  it('numbers from 1 and links each record to the one before', () => {
    const records = chain();
    assert.deepEqual(
      records.map((r) => r.seq),
      [1n, 2n, 3n, 4n, 5n],
    );
    for (let i = 1; i < records.length; i++) assert.equal(records[i]!.prev_hash, records[i - 1]!.hash);
    assert.equal(records[2]!.reason, 'rounding on legacy side');
    assert.equal('reason' in records[0]!, false);
  });

  it('refuses a record without an actor or with a bad time (a bug)', () => {
    assert.throws(() => nextRecord(undefined, { ...INPUTS[0]!, actor: '' }), /actor/);
    assert.throws(() => nextRecord(undefined, { ...INPUTS[0]!, at: 'yesterday' }), /ISO timestamp/);
  });
});

describe('verifyChain', () => {
  it('verifies an intact chain and returns its head', () => {
    const records = chain();
    const verdict = verifyChain(records);
    assert.deepEqual(verdict, { ok: true, count: 5, head: { seq: 5n, hash: records[4]!.hash } });
    assert.deepEqual(verifyChain([]), { ok: true, count: 0, head: { seq: 0n, hash: GENESIS_HASH } });
  });

  it('verifies rows read back from a database (seq as number or string)', () => {
    const rows = chain().map((r) => ({ ...r, seq: Number(r.seq) }));
    assert.equal(verifyChain(rows).ok, true);
    const asText = chain().map((r) => ({ ...r, seq: String(r.seq) as unknown as number }));
    assert.equal(verifyChain(asText).ok, true);
  });

  it('continues from an already verified record', () => {
    const records = chain();
    const tail = records.slice(2);
    assert.equal(verifyChain(tail).ok, false);
    assert.deepEqual(verifyChain(tail, { seq: 2n, hash: records[1]!.hash }), {
      ok: true,
      count: 3,
      head: { seq: 5n, hash: records[4]!.hash },
    });
  });

  const fields = ['at', 'actor', 'action', 'subject', 'reason', 'details'] as const;
  for (const field of fields) {
    it(`finds a changed ${field} at that record's seq, whichever record it is`, () => {
      for (let k = 0; k < INPUTS.length; k++) {
        const records = chain();
        const tampered = { ...records[k]! };
        if (field === 'details') tampered.details = { edited: true };
        else tampered[field] = `${tampered[field] ?? ''}x`;
        records[k] = tampered;
        const verdict = broken(records);
        assert.equal(verdict.broken_at_seq, BigInt(k + 1));
        assert.equal(verdict.index, k);
        assert.equal(verdict.reason, 'hash_mismatch');
      }
    });
  }

  it('finds a changed amount deep inside details', () => {
    const records = chain();
    records[0] = { ...records[0]!, details: { total_minor: 12051n, currency: 'USD' } };
    assert.deepEqual([broken(records).broken_at_seq, broken(records).reason], [1n, 'hash_mismatch']);
  });

  it('finds a changed hash at that record, and a changed prev_hash at that record', () => {
    for (let k = 0; k < INPUTS.length; k++) {
      const records = chain();
      records[k] = { ...records[k]!, hash: 'f'.repeat(64) };
      assert.deepEqual([broken(records).broken_at_seq, broken(records).reason], [BigInt(k + 1), 'hash_mismatch']);
      const again = chain();
      again[k] = { ...again[k]!, prev_hash: 'e'.repeat(64) };
      assert.deepEqual([broken(again).broken_at_seq, broken(again).reason], [BigInt(k + 1), 'prev_mismatch']);
    }
  });

  it('finds a changed seq at the record carrying it', () => {
    const records = chain();
    records[2] = { ...records[2]!, seq: 9n };
    const verdict = broken(records);
    assert.deepEqual([verdict.broken_at_seq, verdict.index, verdict.reason], [9n, 2, 'seq_gap']);
  });

  it('finds a deleted record at the record after it', () => {
    for (let k = 0; k < INPUTS.length - 1; k++) {
      const records = chain();
      records.splice(k, 1);
      const verdict = broken(records);
      assert.deepEqual([verdict.broken_at_seq, verdict.index, verdict.reason], [BigInt(k + 2), k, 'seq_gap']);
    }
  });

  it('finds a deletion whose later records were renumbered, by their links', () => {
    const records = chain();
    records.splice(1, 1);
    for (let i = 1; i < records.length; i++) records[i] = { ...records[i]!, seq: BigInt(i + 1) };
    const verdict = broken(records);
    assert.deepEqual([verdict.broken_at_seq, verdict.reason], [2n, 'prev_mismatch']);
  });

  it('finds two swapped records at the first of them', () => {
    const records = chain();
    [records[1], records[2]] = [records[2]!, records[1]!];
    const verdict = broken(records);
    assert.deepEqual([verdict.broken_at_seq, verdict.index, verdict.reason], [3n, 1, 'seq_gap']);
    // Swapped and renumbered: the links give it away.
    const renumbered = chain();
    [renumbered[1], renumbered[2]] = [
      { ...renumbered[2]!, seq: 2n },
      { ...renumbered[1]!, seq: 3n },
    ];
    const second = broken(renumbered);
    assert.deepEqual([second.broken_at_seq, second.index, second.reason], [2n, 1, 'prev_mismatch']);
  });

  it('finds an inserted record', () => {
    // A foreign record spliced in after seq 2, correctly linked to seq 2 and carrying seq 3: the old seq 3 follows it.
    const records = chain();
    const intruder = nextRecord(records[1], {
      at: '2025-03-01T12:00:00Z',
      actor: 'mallory',
      action: 'invoice.void',
      subject: 'inv_1',
      details: null,
    });
    records.splice(2, 0, intruder);
    const verdict = broken(records);
    assert.deepEqual([verdict.broken_at_seq, verdict.index, verdict.reason], [3n, 3, 'seq_gap']);
    // Inserted and everything after renumbered: the old seq 3, now 4, does not point at the intruder.
    const renumbered = chain();
    renumbered.splice(2, 0, intruder);
    for (let i = 3; i < renumbered.length; i++) renumbered[i] = { ...renumbered[i]!, seq: BigInt(i + 1) };
    const second = broken(renumbered);
    assert.deepEqual([second.broken_at_seq, second.index, second.reason], [4n, 3, 'prev_mismatch']);
    // An unlinked record inserted at the front.
    const front = chain();
    front.unshift({ ...intruder, seq: 0n });
    assert.deepEqual([broken(front).broken_at_seq, broken(front).reason], [0n, 'seq_gap']);
  });

  it('property: any single-field edit of any record is found at exactly that record', () => {
    const arbInput = fc.record({
      at: fc
        .date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true })
        .map((d) => d.toISOString()),
      actor: fc.string({ minLength: 1, maxLength: 8 }),
      action: fc.string({ minLength: 1, maxLength: 8 }),
      subject: fc.string({ minLength: 1, maxLength: 8 }),
      details: fc.jsonValue(),
    });
    fc.assert(
      fc.property(
        fc.array(arbInput, { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.constantFrom('actor', 'action', 'subject', 'reason'),
        (inputs, pick, field) => {
          const records = chain(inputs);
          assert.equal(verifyChain(records).ok, true);
          const k = pick % records.length;
          const original = records[k]!;
          records[k] = { ...original, [field]: `${original[field] ?? ''}!` };
          const verdict = verifyChain(records);
          return !verdict.ok && verdict.broken_at_seq === BigInt(k + 1) && verdict.reason === 'hash_mismatch';
        },
      ),
    );
  });
});
