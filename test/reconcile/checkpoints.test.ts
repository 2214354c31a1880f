import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CHECKPOINTS,
  CHECKPOINT_IDS,
  TRIAL_BALANCE_NET,
  applyTransition,
  checkpointById,
  compareSides,
  exceptionTransitions,
  newDifferences,
  openException,
  trialBalanceSide,
  type CheckpointId,
  type Difference,
  type ReconException,
  type ReconKey,
  type SideEntry,
} from '../../src/reconcile/checkpoints.js';
import { trialBalance } from '../../src/domain/journal.js';
import type { Journal, JournalLine } from '../../src/domain/model.js';
import { formatProblems } from '../../src/domain/result.js';

const key = (customer: string, item: string, currency = 'USD', legal_entity = 'nw-us'): ReconKey => ({
  legal_entity,
  customer,
  currency,
  item,
});

describe('CHECKPOINTS', () => {
  it('lists the seven checkpoints with their owner queues', () => {
    assert.deepEqual(
      CHECKPOINTS.map((c) => [c.id, c.owner_queue, c.per_connector]),
      [
        ['usage_events_vs_aggregates', 'billing_engineering', false],
        ['aggregates_vs_rated', 'billing_engineering', false],
        ['rated_vs_invoice_lines', 'billing_engineering', false],
        ['invoices_vs_erp_postings', 'integration_support', true],
        ['tax_vs_erp', 'finance_operations', true],
        ['payments_vs_receivable', 'finance_operations', false],
        ['trial_balance', 'finance_operations', false],
      ],
    );
    for (const c of CHECKPOINTS) assert.ok(c.description.length > 10, c.id);
  });
});

describe('compareSides: one planted mismatch of each kind', () => {
  it('a dropped usage event: the aggregate is short by that event, and a window whose only event was dropped is missing', () => {
    // Events accepted for acme/api_calls in the 10:00 window: 400 + 350 + 500 = 1250; the aggregate says 750 (the 500 was dropped).
    // globex/storage_gb 11:00 had one event of 2.5, and no aggregate at all.
    // The event side is summed per key by the usage query before it is compared: one entry per key.
    const events: SideEntry[] = [
      [key('acme', 'api_calls@2025-03-01T10:00Z', ''), '1250'],
      [key('acme', 'api_calls@2025-03-01T11:00Z', ''), '10'],
      [key('globex', 'storage_gb@2025-03-01T11:00Z', ''), '2.5'],
    ];
    const aggregates: SideEntry[] = [
      [key('acme', 'api_calls@2025-03-01T10:00Z', ''), '750'],
      [key('acme', 'api_calls@2025-03-01T11:00Z', ''), '10.000'],
    ];
    const diffs = compareSides('usage_events_vs_aggregates', events, aggregates);
    assert.deepEqual(
      diffs.map((d) => [d.key.customer, d.key.item, d.kind, d.left, d.right, d.difference, d.owner_queue]),
      [
        ['acme', 'api_calls@2025-03-01T10:00Z', 'amount_differs', '1250', '750', '-500', 'billing_engineering'],
        ['globex', 'storage_gb@2025-03-01T11:00Z', 'missing_right', '2.5', null, '-2.5', 'billing_engineering'],
      ],
    );
  });

  it('a manual ledger edit: the account and the entity net both differ in the trial balance', () => {
    // Accrue posted invoice inv_1: Dr 1200 108.50, Cr 4000 100.00, Cr 2300 8.50. Someone edits the revenue line
    // in the ledger to 99.00 without touching the rest: revenue is off by 1.00 and the ledger no longer balances.
    const line = (line_no: number, account: string, debit: bigint, credit: bigint): JournalLine => ({
      line_no,
      account,
      debit_minor: debit,
      credit_minor: credit,
      currency: 'USD',
    });
    const posted: Journal = {
      id: 'jrn:v1:invoice:inv_1',
      key: 'jrn:v1:invoice:inv_1',
      legal_entity: 'nw-us',
      posting_date: '2025-03-01',
      source_document: 'inv_1',
      kind: 'invoice',
      memo: 'Invoice inv_1',
      lines: [line(1, '1200', 10850n, 0n), line(2, '2300', 0n, 850n), line(3, '4000', 0n, 10000n)],
    };
    const edited: Journal = { ...posted, lines: [posted.lines[0]!, posted.lines[1]!, line(3, '4000', 0n, 9900n)] };
    const diffs = compareSides('trial_balance', trialBalanceSide(trialBalance([posted])), trialBalanceSide(trialBalance([edited])));
    assert.deepEqual(
      diffs.map((d) => [d.key.item, d.kind, d.left, d.right, d.difference, d.owner_queue]),
      [
        [TRIAL_BALANCE_NET, 'amount_differs', 0n, 100n, 100n, 'finance_operations'],
        ['4000', 'amount_differs', -10000n, -9900n, 100n, 'finance_operations'],
      ],
    );
    assert.equal(diffs[0]!.key.customer, '');
  });

  it('a missing ERP document: finalized but never posted to the connector', () => {
    const finalized: SideEntry[] = [
      [key('acme', 'inv_1'), 10850n],
      [key('globex', 'inv_2'), 5000n],
    ];
    const posted: SideEntry[] = [[key('acme', 'inv_1'), 10850n]];
    const diffs = compareSides('invoices_vs_erp_postings', finalized, posted, { connector: 'netsuite' });
    assert.equal(diffs.length, 1);
    const [d] = diffs;
    assert.deepEqual(
      [d!.kind, d!.key.item, d!.left, d!.right, d!.difference, d!.connector, d!.owner_queue],
      ['missing_right', 'inv_2', 5000n, null, -5000n, 'netsuite', 'integration_support'],
    );
  });

  it('a payment off by one minor unit', () => {
    const payments: SideEntry[] = [
      [key('acme', 'inv_1'), 10850n],
      [key('globex', 'inv_2', 'EUR', 'nw-de'), 5000n],
    ];
    const cleared: SideEntry[] = [
      [key('acme', 'inv_1'), 10849n],
      [key('globex', 'inv_2', 'EUR', 'nw-de'), 5000n],
    ];
    const diffs = compareSides('payments_vs_receivable', payments, cleared);
    assert.deepEqual(
      diffs.map((d) => [d.key.item, d.kind, d.left, d.right, d.difference, d.owner_queue]),
      [['inv_1', 'amount_differs', 10850n, 10849n, -1n, 'finance_operations']],
    );
  });

  it('a duplicate posting in the target: the same document posted twice', () => {
    const finalized: SideEntry[] = [
      [key('acme', 'inv_1'), 10850n],
      [key('globex', 'inv_2'), 5000n],
    ];
    const posted: SideEntry[] = [
      [key('acme', 'inv_1'), 10850n],
      [key('globex', 'inv_2'), 5000n],
      [key('acme', 'inv_1'), 10850n],
    ];
    const diffs = compareSides('invoices_vs_erp_postings', finalized, posted, { connector: 'xero' });
    assert.deepEqual(
      diffs.map((d) => [d.key.item, d.kind, d.left, d.right, d.difference, d.occurrences]),
      [['inv_1', 'duplicate', 10850n, 21700n, 10850n, { left: 1, right: 2 }]],
    );
    // Posted twice but never finalized (e.g. a test document leaked) is still a duplicate.
    const leaked = compareSides('invoices_vs_erp_postings', [], [posted[0]!, posted[2]!], { connector: 'xero' });
    assert.deepEqual(
      leaked.map((d) => [d.kind, d.left, d.right]),
      [['duplicate', null, 21700n]],
    );
  });

  it('a document only in the target is missing on the left', () => {
    const diffs = compareSides('rated_vs_invoice_lines', [], [[key('acme', 'pro/0:api:api_calls@2025-03'), 1200n]]);
    assert.deepEqual(
      diffs.map((d) => [d.kind, d.left, d.right, d.difference]),
      [['missing_left', null, 1200n, 1200n]],
    );
  });
});

describe('compareSides: clean states and determinism', () => {
  const clean: SideEntry[] = [
    [key('acme', 'inv_1'), 10850n],
    [key('acme', 'inv_3'), 0n],
    [key('globex', 'inv_2', 'EUR', 'nw-de'), 5000n],
  ];

  it('a clean state gives no differences; quantities compare by value, not by spelling', () => {
    for (const id of ['rated_vs_invoice_lines', 'payments_vs_receivable'] as CheckpointId[])
      assert.deepEqual(compareSides(id, clean, [...clean].reverse()), []);
    assert.deepEqual(compareSides('invoices_vs_erp_postings', clean, new Map(clean), { connector: 'ledger' }), []);
    assert.deepEqual(
      compareSides(
        'aggregates_vs_rated',
        [[key('acme', 'api_calls@2025-03', 'USD'), '1.50']],
        [[key('acme', 'api_calls@2025-03', 'USD'), '1.5']],
      ),
      [],
    );
  });

  it('gives the same exception ids on a re-run, so a re-run opens nothing new', () => {
    const right: SideEntry[] = [[key('acme', 'inv_1'), 10849n]];
    const first = compareSides('payments_vs_receivable', clean, right);
    const again = compareSides('payments_vs_receivable', clean, right);
    assert.deepEqual(again, first);
    assert.match(first[0]!.exception_id, /^exc:v1:[0-9a-f]{64}$/);
    assert.deepEqual(
      newDifferences(
        again,
        first.map((d) => d.exception_id),
      ),
      [],
    );
    // A changed amount is a new state: a new id for that key only.
    const changed = compareSides('payments_vs_receivable', clean, [[key('acme', 'inv_1'), 10848n]]);
    assert.deepEqual(
      newDifferences(
        changed,
        first.map((d) => d.exception_id),
      ).map((d) => [d.key.item, d.right]),
      [['inv_1', 10848n]],
    );
    // The same difference on another connector is another exception.
    const a = compareSides('invoices_vs_erp_postings', clean, [], { connector: 'netsuite' });
    const b = compareSides('invoices_vs_erp_postings', clean, [], { connector: 'xero' });
    assert.notEqual(a[0]!.exception_id, b[0]!.exception_id);
  });

  it('refuses mixed-up inputs (bugs): money as a decimal, a per-connector run without a connector', () => {
    assert.throws(() => compareSides('payments_vs_receivable', [[key('acme', 'inv_1'), '108.50']], []), /bigint minor units/);
    assert.throws(() => compareSides('invoices_vs_erp_postings', clean, clean), /per ERP connector/);
    assert.throws(() => compareSides('usage_events_vs_aggregates', [[key('acme', 'x', ''), 'abc']], []), /exact decimal/);
  });

  it('property: compareSides(x, x) is empty for every checkpoint', () => {
    const arbKey = fc.record({
      legal_entity: fc.constantFrom('nw-us', 'nw-de'),
      customer: fc.string({ maxLength: 6 }),
      currency: fc.constantFrom('USD', 'EUR', 'JPY'),
      item: fc.string({ maxLength: 6 }),
    });
    const arbMoney = fc.uniqueArray(fc.tuple(arbKey, fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n })), {
      selector: ([k]) => JSON.stringify(k),
      maxLength: 30,
    });
    const arbQuantity = fc.uniqueArray(
      fc.tuple(
        arbKey,
        fc.tuple(fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }), fc.nat({ max: 6 })).map(([n, scale]) => {
          const digits = (n < 0n ? -n : n).toString().padStart(scale + 1, '0');
          const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
          return `${n < 0n ? '-' : ''}${text}`;
        }),
      ),
      { selector: ([k]) => JSON.stringify(k), maxLength: 30 },
    );
    fc.assert(
      fc.property(arbMoney, arbQuantity, (money, quantities) => {
        for (const id of CHECKPOINT_IDS) {
          const options = checkpointById(id).per_connector ? { connector: 'xero' } : {};
          const side = id === 'usage_events_vs_aggregates' || id === 'aggregates_vs_rated' ? quantities : money;
          if (compareSides(id, side, side, options).length !== 0) return false;
        }
        return true;
      }),
    );
  });
});

describe('exception lifecycle', () => {
  const difference: Difference = compareSides(
    'payments_vs_receivable',
    [[key('acme', 'inv_1'), 10850n]],
    [[key('acme', 'inv_1'), 10849n]],
  )[0]!;
  const at = '2025-03-05T09:00:00Z';
  const opened = openException(difference, at);
  const must = (result: ReturnType<typeof applyTransition>): ReconException => {
    assert.ok(result.ok, result.ok ? '' : formatProblems(result.problems));
    return result.value;
  };
  const problems = (result: ReturnType<typeof applyTransition>): string => {
    assert.equal(result.ok, false);
    return result.ok ? '' : formatProblems(result.problems);
  };

  it('opens in the checkpoint owner queue with the difference id', () => {
    assert.equal(opened.id, difference.exception_id);
    assert.equal(opened.status, 'open');
    assert.equal(opened.owner_queue, 'finance_operations');
    assert.deepEqual(exceptionTransitions, { open: ['assigned'], assigned: ['assigned', 'resolved', 'waived'], resolved: [], waived: [] });
  });

  it('goes open -> assigned -> resolved with the correcting document', () => {
    const assigned = must(applyTransition(opened, { action: 'assign', assignee: 'dana', by: 'lead', at }));
    assert.equal(assigned.status, 'assigned');
    assert.equal(opened.status, 'open', 'the input is not changed');
    const reassigned = must(applyTransition(assigned, { action: 'assign', assignee: 'erin', by: 'lead', at }));
    assert.equal(reassigned.assignee, 'erin');
    const resolved = must(applyTransition(reassigned, { action: 'resolve', correcting_document: 'adj_42', by: 'erin', at }));
    assert.equal(resolved.status, 'resolved');
    assert.equal(resolved.correcting_document, 'adj_42');
    assert.deepEqual(
      resolved.history.map((h) => [h.from, h.to]),
      [
        [null, 'open'],
        ['open', 'assigned'],
        ['assigned', 'assigned'],
        ['assigned', 'resolved'],
      ],
    );
  });

  it('goes assigned -> waived with a reason and who', () => {
    const assigned = must(applyTransition(opened, { action: 'assign', assignee: 'dana', by: 'lead', at }));
    const waived = must(applyTransition(assigned, { action: 'waive', reason: 'bank fee of 0.01 absorbed', by: 'dana', at }));
    assert.deepEqual([waived.status, waived.waived_reason, waived.waived_by], ['waived', 'bank fee of 0.01 absorbed', 'dana']);
  });

  it('refuses moves the lifecycle does not allow, and moves missing their facts', () => {
    assert.match(
      problems(applyTransition(opened, { action: 'resolve', correcting_document: 'adj_42', by: 'erin', at })),
      /^action: .* is open; it can go to assigned, not resolved/,
    );
    const assigned = must(applyTransition(opened, { action: 'assign', assignee: 'dana', by: 'lead', at }));
    assert.equal(
      problems(applyTransition(assigned, { action: 'resolve', correcting_document: ' ', by: 'erin', at })),
      'correcting_document: must name the document that corrects the difference (a credit note, a re-posting, an adjustment)',
    );
    assert.equal(
      problems(applyTransition(assigned, { action: 'waive', reason: '', by: '', at })),
      'by: must name who acts\nreason: must say why the difference is accepted as it is',
    );
    assert.equal(
      problems(applyTransition(opened, { action: 'assign', assignee: '', by: 'lead', at })),
      'assignee: must name the person or team the exception is assigned to',
    );
    const resolved = must(applyTransition(assigned, { action: 'resolve', correcting_document: 'adj_42', by: 'erin', at }));
    const waived = must(applyTransition(assigned, { action: 'waive', reason: 'accepted', by: 'erin', at }));
    for (const final of [resolved, waived]) {
      for (const action of [
        { action: 'assign', assignee: 'x', by: 'y', at },
        { action: 'resolve', correcting_document: 'x', by: 'y', at },
        { action: 'waive', reason: 'x', by: 'y', at },
      ] as const) {
        assert.match(problems(applyTransition(final, action)), /resolved and waived exceptions are final/);
      }
    }
  });
});
