// Migration 030 (issue 18) as the last guard: exchange rates that cannot be edited, a journal's rate recorded whole,
// transaction amounts in pairs, the new journal kinds, revaluation and accrual reversals that must mirror their
// journal, and revenue schedules that cannot be edited. Each rule refuses the bad write; the good write goes through.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testStore } from '../support/db.js';
import { transaction, type Store } from '../../src/store/store.js';

let store: Store;
before(async () => {
  store = await testStore();
});
after(async () => store.close());

/** Runs the statements in one transaction of its own: deferred constraint triggers answer at its COMMIT. */
const committed = (statements: Array<[string, unknown[]?]>) =>
  transaction(store.pool, async (client) => {
    for (const [sql, params] of statements) await client.query(sql, params ?? []);
  });

async function refused(statements: Array<[string, unknown[]?]>, message: RegExp): Promise<void> {
  await assert.rejects(committed(statements), message);
}

const journal = (id: string, kind: string, extra: Record<string, string | null> = {}): [string, unknown[]] => {
  const columns = ['id', 'kind', 'legal_entity', 'posting_date', 'source_document', 'memo', 'content_hash', ...Object.keys(extra)];
  const values = [id, kind, 'nw-de', '2026-11-30', `doc-${id}`, 'm', 'h', ...Object.values(extra)];
  return [`INSERT INTO journals (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, values];
};
const line = (
  journalId: string,
  no: number,
  account: string,
  debit: number,
  credit: number,
  tx?: [string, number],
): [string, unknown[]] => [
  `INSERT INTO journal_lines (journal_id, line_no, account, debit_minor, credit_minor, currency, tx_currency, tx_amount_minor)
   VALUES ($1, $2, $3, $4, $5, 'EUR', $6, $7)`,
  [journalId, no, account, debit, credit, tx?.[0] ?? null, tx?.[1] ?? null],
];

describe('exchange rates (030)', () => {
  it('keeps a rate as imported and refuses to edit, delete or truncate it; refuses a bad rate or pair', async () => {
    await committed([
      [
        "INSERT INTO fx_imports (id, source, format, file_name, rates, imported_by) VALUES ('fx:v1:t1', 'ecb', 'ecb', 'eurofxref.csv', 1, 'test')",
      ],
      [
        "INSERT INTO fx_rates (source, rate_date, base, quote, rate, import_id) VALUES ('ecb', '2026-11-30', 'EUR', 'USD', '1.0876', 'fx:v1:t1')",
      ],
    ]);
    await refused([["UPDATE fx_rates SET rate = '1.09'"]], /append-only/);
    await refused([['DELETE FROM fx_rates']], /append-only/);
    await refused([['TRUNCATE fx_rates CASCADE']], /refused|not allowed|truncate/i);
    await refused([['DELETE FROM fx_imports']], /append-only|foreign key/);
    const insert = (rate: string, base = 'EUR', quote = 'JPY', date = '2026-11-30') =>
      committed([
        [
          `INSERT INTO fx_rates (source, rate_date, base, quote, rate, import_id) VALUES ('ecb', $1, $2, $3, $4, 'fx:v1:t1')`,
          [date, base, quote, rate],
        ],
      ]);
    await assert.rejects(insert('0'), /check/i);
    await assert.rejects(insert('1e3'), /check/i);
    await assert.rejects(insert('-1.2'), /check/i);
    await assert.rejects(insert('1.5', 'EUR', 'EUR'), /check/i);
    await assert.rejects(insert('1.5', 'eur', 'JPY'), /check/i);
    await assert.rejects(insert('1.0877', 'EUR', 'USD'), /duplicate key/); // one rate per source, date and pair
    await insert('162.54');
  });
});

describe('journals booked from another currency (030)', () => {
  it('records the rate whole or not at all, and transaction amounts in pairs', async () => {
    const fx = { fx_currency: 'USD', fx_rate: '0.92', fx_rate_date: '2026-11-30', fx_source: 'ecb' };
    await committed([
      journal('j-fx-1', 'invoice', fx),
      line('j-fx-1', 1, '1400', 92000, 0, ['USD', 100000]),
      line('j-fx-1', 2, '8400', 0, 92000, ['USD', 100000]),
    ]);
    await refused(
      [
        journal('j-fx-2', 'invoice', { fx_currency: 'USD', fx_rate: '0.92' }),
        line('j-fx-2', 1, '1400', 1, 0),
        line('j-fx-2', 2, '8400', 0, 1),
      ],
      /journals_fx_complete/,
    );
    await refused(
      [journal('j-fx-3', 'invoice', { ...fx, fx_rate: '0' }), line('j-fx-3', 1, '1400', 1, 0), line('j-fx-3', 2, '8400', 0, 1)],
      /check/i,
    );
    await refused(
      [
        journal('j-fx-4', 'invoice'),
        line('j-fx-4', 1, '1400', 1, 0),
        [
          `INSERT INTO journal_lines (journal_id, line_no, account, debit_minor, credit_minor, currency, tx_currency) VALUES ('j-fx-4', 2, '8400', 0, 1, 'EUR', 'USD')`,
        ],
      ],
      /journal_lines_tx_complete/,
    );
    // Still double entry in the functional currency, whatever the transaction amounts say.
    await refused(
      [
        journal('j-fx-5', 'invoice', fx),
        line('j-fx-5', 1, '1400', 92000, 0, ['USD', 100000]),
        line('j-fx-5', 2, '8400', 0, 91999, ['USD', 100000]),
      ],
      /does not balance/,
    );
  });

  it('takes the new kinds; a revaluation or accrual reversal must name and mirror its journal', async () => {
    for (const kind of ['credit_grant', 'credit_expiry', 'revenue_recognition', 'unbilled_accrual', 'fx_revaluation']) {
      await committed([journal(`j-${kind}`, kind), line(`j-${kind}`, 1, '1400', 500, 0), line(`j-${kind}`, 2, '4845', 0, 500)]);
    }
    await refused(
      [journal('j-unknown', 'fx_translation'), line('j-unknown', 1, '1', 1, 0), line('j-unknown', 2, '2', 0, 1)],
      /journals_kind_check/,
    );
    // A reversal without `reverses`, and a journal of another kind with one, are refused.
    await refused(
      [journal('j-rev-0', 'fx_revaluation_reversal'), line('j-rev-0', 1, '4845', 500, 0), line('j-rev-0', 2, '1400', 0, 500)],
      /journals_reversal_names_original/,
    );
    const reversal = (id: string, of: string, kind: string, date: string) => {
      const [sql, values] = journal(id, kind, { reverses: of });
      return [sql, values.map((v, i) => (i === 3 ? date : i === 4 ? `doc-${of}` : v))] as [string, unknown[]];
    };
    // It must mirror the lines: an amount off by one is refused; the exact mirror on the next day goes through.
    await refused(
      [
        reversal('j-rev-1', 'j-fx_revaluation', 'fx_revaluation_reversal', '2026-12-01'),
        line('j-rev-1', 1, '1400', 0, 499),
        line('j-rev-1', 2, '4845', 499, 0),
      ],
      /does not mirror/,
    );
    await committed([
      reversal('j-rev-2', 'j-fx_revaluation', 'fx_revaluation_reversal', '2026-12-01'),
      line('j-rev-2', 1, '1400', 0, 500),
      line('j-rev-2', 2, '4845', 500, 0),
    ]);
    await refused(
      [
        reversal('j-rev-3', 'j-unbilled_accrual', 'fx_revaluation_reversal', '2026-12-01'),
        line('j-rev-3', 1, '1400', 0, 500),
        line('j-rev-3', 2, '4845', 500, 0),
      ],
      /not a reversal/,
    );
    await committed([
      reversal('j-rev-4', 'j-unbilled_accrual', 'unbilled_accrual_reversal', '2026-12-01'),
      line('j-rev-4', 1, '1400', 0, 500),
      line('j-rev-4', 2, '4845', 500, 0),
    ]);
  });
});

describe('revenue schedules (030)', () => {
  it('keep a schedule as written: no edit, no delete, no truncate; a bad term or amount is refused', async () => {
    await committed([
      [
        `INSERT INTO invoices (id, key, kind, status, legal_entity, customer, currency, period, period_start, period_end, rounding,
                               subtotal_minor, discount_minor, credits_applied_minor, tax_minor, total_minor, document, content_hash)
         VALUES ('inv-rs', 'inv:v1:rs', 'invoice', 'draft', 'nw-us', 'acme', 'USD', '2026-01', '2026-01-01', '2026-02-01', 'half_up',
                 120000, 0, 0, 0, 120000, '{}'::jsonb, 'h')`,
      ],
    ]);
    const schedule = (id: string, line: number, amount: number, months: number, end = '2027-01-01') =>
      committed([
        [
          `INSERT INTO revenue_schedules (id, invoice_id, line_no, legal_entity, customer, product, currency, amount_minor,
                                          service_start, service_end, months, content_hash)
           VALUES ($1, 'inv-rs', $2, 'nw-us', 'acme', 'platform', 'USD', $3, '2026-01-01', $5, $4, 'h')`,
          [id, line, amount, months, end],
        ],
      ]);
    await schedule('rev:v1:inv-rs:1', 1, 120000, 12);
    await assert.rejects(schedule('rev:v1:inv-rs:1b', 1, 120000, 12), /duplicate key/); // one schedule per invoice line
    await assert.rejects(schedule('rev:v1:inv-rs:2', 2, 0, 12), /check/i);
    await assert.rejects(schedule('rev:v1:inv-rs:3', 3, 100, 0), /check/i);
    await assert.rejects(schedule('rev:v1:inv-rs:4', 4, 100, 12, '2026-01-01'), /check/i);
    await refused([['UPDATE revenue_schedules SET amount_minor = 1']], /append-only/);
    await refused([['DELETE FROM revenue_schedules']], /append-only/);
    await refused([['TRUNCATE revenue_schedules']], /refused|not allowed|truncate/i);
  });
});
