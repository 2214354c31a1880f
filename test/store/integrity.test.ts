// Books that cannot be edited (migration 026, docs/integrity-rules.md): each rule refuses the bad write, and the
// writes the code makes today (a payment, a void, a draft replaced, a journal, the outbox's moves, the late flag, a
// repair's removal of events) still go through.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { testStore } from '../support/db.js';
import { transaction, type Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { closePeriod } from '../../src/close/close-period.js';
import { applyPayment, validatePayment } from '../../src/settle/payments.js';
import { voidInvoice } from '../../src/post/void.js';
import { claim, replayDeadLetter } from '../../src/post/outbox.js';

const NOW = new Date('2026-11-01T00:00:00Z');
let store: Store;
let catalog: CatalogVersion;
/** Finalized invoices of October by number, with their totals in minor units. */
let totals: Map<string, bigint>;

const event = (id: string, time: string) => ({
  specversion: '1.0',
  id,
  source: '//integrity',
  type: 'com.northwind.api.request',
  subject: 'umbrella',
  time,
  data: {},
});

before(async () => {
  store = await testStore();
  const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'test' });
  assert.ok(applied.ok);
  catalog = (await currentCatalog(store.pool))!;
  await ingestBatch(store.pool, catalog, [event('e1', '2026-10-02T00:00:00Z'), event('e2', '2026-10-03T00:00:00Z')], {
    channel: 'file',
    now: NOW,
  });
  const closed = await closePeriod(store.pool, catalog, { period: '2026-10', erpTargets: ['netsuite'] });
  totals = new Map(closed.invoices.filter((i) => i.kind === 'invoice').map((i) => [i.number!, i.total_minor]));
  assert.ok(totals.size >= 3, 'several finalized invoices to work on');
});
after(async () => store.close());

/** Runs `sql` in a transaction of its own: deferred constraint triggers answer at its COMMIT. */
const committed = (sql: string, params: unknown[] = []) => transaction(store.pool, (client) => client.query(sql, params));

async function pay(id: string, invoice: string, amount: string) {
  const currency = (await store.pool.query<{ currency: string }>('SELECT currency FROM invoices WHERE number = $1', [invoice])).rows[0]!
    .currency;
  const input = validatePayment({ id, invoice, amount, currency, received_on: '2026-11-10' });
  assert.ok(input.ok);
  return applyPayment(store.pool, catalog, input.value, 'erp');
}

const invoiceRow = async (number: string) =>
  (
    await store.pool.query<{ id: string; amount_paid_minor: string; payment_status: string; status: string; total_minor: string }>(
      'SELECT id, amount_paid_minor::text, payment_status, status, total_minor::text FROM invoices WHERE number = $1',
      [number],
    )
  ).rows[0]!;

/** The numbers of October's invoices, largest total first, so each test takes its own. */
const numbers = () => [...totals.entries()].sort((a, b) => (a[1] === b[1] ? 0 : a[1] > b[1] ? -1 : 1)).map(([n]) => n);

describe('a finalized invoice is frozen but for its payment state and voiding (invoices_immutable, invoice_lines_immutable)', () => {
  it('refuses a change to any other column, and a line inserted, moved into, changed in or deleted from it', async () => {
    const number = numbers()[0]!;
    const { id } = await invoiceRow(number);
    for (const [set, column] of [
      ["customer = 'someone-else'", 'customer'],
      ['due_date = due_date + 30', 'due_date'],
      ['issue_date = issue_date - 1', 'issue_date'],
      ["finalized_at = finalized_at - interval '1 day'", 'finalized_at'],
      ["period = '2026-09'", 'period'],
      ['tax_minor = tax_minor + 1, subtotal_minor = subtotal_minor - 1', 'subtotal_minor, tax_minor'],
    ] as const) {
      await assert.rejects(
        store.pool.query(`UPDATE invoices SET ${set} WHERE id = $1`, [id]),
        new RegExp(`is finalized; corrections are credit notes \\(${column} cannot change\\)`),
        set,
      );
    }
    await assert.rejects(
      store.pool.query("UPDATE invoices SET status = 'draft', number = NULL WHERE id = $1", [id]),
      /cannot become draft/,
    );
    await assert.rejects(store.pool.query('UPDATE invoices SET voided_at = now() WHERE id = $1', [id]), /voided_at moves only when/);
    await assert.rejects(
      store.pool.query(
        `INSERT INTO invoice_lines (invoice_id, line_no, kind, product, quantity, amount_minor) VALUES ($1, 99, 'flat', 'platform', 1, 100)`,
        [id],
      ),
      /lines of a finalized invoice cannot change/,
    );
    await assert.rejects(store.pool.query('UPDATE invoice_lines SET amount_minor = 0 WHERE invoice_id = $1', [id]), /cannot change/);
    await assert.rejects(store.pool.query('DELETE FROM invoice_lines WHERE invoice_id = $1', [id]), /cannot change/);
    await assert.rejects(store.pool.query('DELETE FROM invoices WHERE id = $1', [id]), /cannot be deleted/);

    // A draft's lines come and go, and a draft is deleted (saveDraft replaces a draft so), but its line cannot be
    // moved into the finalized invoice.
    await store.pool.query(
      `INSERT INTO invoices (id, key, kind, status, legal_entity, customer, currency, period, period_start, period_end, rounding,
                             subtotal_minor, discount_minor, credits_applied_minor, tax_minor, total_minor, document, content_hash)
       SELECT 'inv_integrity_draft', 'inv:test:integrity', kind, 'draft', legal_entity, customer, currency, period, period_start, period_end,
              rounding, subtotal_minor, discount_minor, credits_applied_minor, tax_minor, total_minor, document, content_hash
         FROM invoices WHERE id = $1`,
      [id],
    );
    await store.pool.query(
      `INSERT INTO invoice_lines (invoice_id, line_no, kind, product, quantity, amount_minor) VALUES ('inv_integrity_draft', 99, 'flat', 'platform', 1, 100)`,
    );
    await store.pool.query("UPDATE invoice_lines SET amount_minor = 200 WHERE invoice_id = 'inv_integrity_draft'");
    await assert.rejects(
      store.pool.query("UPDATE invoice_lines SET invoice_id = $1 WHERE invoice_id = 'inv_integrity_draft'", [id]),
      /lines of a finalized invoice cannot change/,
    );
    await store.pool.query("DELETE FROM invoice_lines WHERE invoice_id = 'inv_integrity_draft'");
    await store.pool.query("DELETE FROM invoices WHERE id = 'inv_integrity_draft'");
  });

  it('still takes a payment and a void', async () => {
    const [paid, voided] = numbers().slice(1, 3) as [string, string];
    const applied = await pay('pay-frozen', paid, '1.00');
    assert.equal(applied.status, 'applied');
    assert.deepEqual([(await invoiceRow(paid)).amount_paid_minor, (await invoiceRow(paid)).payment_status], ['100', 'partially_paid']);
    const outcome = await voidInvoice(store.pool, { invoice: voided, reason: 'test', actor: 'test', at: new Date().toISOString() });
    assert.equal(outcome.invoice.status, 'void');
    await assert.rejects(
      store.pool.query("UPDATE invoices SET status = 'finalized' WHERE number = $1", [voided]),
      /void; it cannot change/,
    );
  });
});

describe('what is paid stays within 0 and the total (invoices_amount_paid_within_total, invoices_payment_status_derived)', () => {
  it('refuses a negative amount paid, more than the total, and a payment status the amount does not say', async () => {
    const number = numbers()[3] ?? numbers()[0]!;
    await assert.rejects(
      store.pool.query("UPDATE invoices SET amount_paid_minor = -1, payment_status = 'partially_paid' WHERE number = $1", [number]),
      /invoices_amount_paid_within_total/,
    );
    await assert.rejects(
      store.pool.query("UPDATE invoices SET amount_paid_minor = total_minor + 1, payment_status = 'partially_paid' WHERE number = $1", [
        number,
      ]),
      /invoices_amount_paid_within_total/,
    );
    await assert.rejects(
      store.pool.query("UPDATE invoices SET payment_status = 'paid' WHERE number = $1", [number]),
      /invoices_payment_status_derived/,
    );
  });
});

describe('every journal has two lines or more at commit (journals_have_lines)', () => {
  it('refuses a header without lines, and commits one with its balanced lines', async () => {
    const header = (id: string) =>
      `INSERT INTO journals (id, kind, legal_entity, posting_date, source_document, memo, content_hash)
       VALUES ('${id}', 'payment', 'nw-us', '2026-11-30', 'x', 'x', 'x')`;
    await assert.rejects(committed(header('jrn:test:bare')), /journal jrn:test:bare needs at least two lines/);
    await assert.rejects(store.pool.query(header('jrn:test:bare-autocommit')), /needs at least two lines/);
    await transaction(store.pool, async (client) => {
      await client.query(header('jrn:test:whole'));
      await client.query(
        `INSERT INTO journal_lines (journal_id, line_no, account, debit_minor, credit_minor, currency)
         VALUES ('jrn:test:whole', 1, '1000', 100, 0, 'USD'), ('jrn:test:whole', 2, '1200', 0, 100, 'USD')`,
      );
    });
    const count = await store.pool.query("SELECT count(*)::int AS n FROM journals WHERE id LIKE 'jrn:test:%'");
    assert.equal(count.rows[0].n, 1);
  });
});

describe('TRUNCATE is refused on the books (accrue_refuse_statement; 007 for the audit log)', () => {
  it('refuses it on each table', async () => {
    const refused = ['journals', 'journal_lines', 'invoices', 'invoice_lines', 'outbox', 'payments', 'events'];
    for (const table of refused) {
      await assert.rejects(store.pool.query(`TRUNCATE ${table} CASCADE`), new RegExp(`TRUNCATE on ${table} refused`), table);
    }
    for (const table of ['audit_log', 'audit_head']) await assert.rejects(store.pool.query(`TRUNCATE ${table}`), /append-only/, table);
    const counted = await store.pool.query('SELECT count(*)::int AS n FROM events');
    assert.ok(counted.rows[0].n >= 2, 'nothing was truncated');
  });
});

describe('events are never deleted and keep their identity (events_no_delete, events_identity, events_pkey)', () => {
  it('refuses a delete, a change of identity and a second event with a stored key', async () => {
    await assert.rejects(store.pool.query("DELETE FROM events WHERE source = '//integrity' AND id = 'e1'"), /cannot be deleted/);
    await assert.rejects(store.pool.query("UPDATE events SET id = 'e9' WHERE id = 'e1'"), /cannot change its source, id or seq/);
    await assert.rejects(
      store.pool.query("UPDATE events SET seq = seq + 1000 WHERE id = 'e1'"),
      /cannot change its source, id or seq|can only be updated to DEFAULT/,
    );
    // The same identity at another time (once another month's partition, which could hold it again) is refused.
    await assert.rejects(
      store.pool.query(
        `INSERT INTO events (source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id)
         SELECT source, id, type, subject, customer_id, time + interval '40 days', data, meter_values, dimensions, 'other', batch_id
           FROM events WHERE source = '//integrity' AND id = 'e1'`,
      ),
      /events_pkey/,
    );
    assert.equal((await store.pool.query("SELECT count(*)::int AS n FROM events WHERE source = '//integrity'")).rows[0].n, 2);
  });

  it('still flags late events (the close), keeping the key', async () => {
    const before = (await store.pool.query("SELECT seq::text, content_hash, time FROM events WHERE id = 'e2'")).rows[0];
    await store.pool.query("UPDATE events SET late = true WHERE source = '//integrity' AND id = 'e2'");
    assert.deepEqual((await store.pool.query("SELECT seq::text, content_hash, time FROM events WHERE id = 'e2'")).rows[0], before);
  });

  it("removes an event only in a repair's transaction, which frees its key: the event sent again is stored again", async () => {
    await transaction(store.pool, async (client) => {
      await client.query("SELECT set_config('accrue.event_removal', 'on', true)");
      await client.query("DELETE FROM events WHERE source = '//integrity' AND id = 'e1'");
    });
    const flag = (await store.pool.query<{ f: string | null }>("SELECT current_setting('accrue.event_removal', true) AS f")).rows[0]!.f;
    assert.ok(flag === null || flag === '', "the flag was the transaction's own");
    await assert.rejects(store.pool.query("DELETE FROM events WHERE source = '//integrity' AND id = 'e2'"), /cannot be deleted/);
    const again = await ingestBatch(store.pool, catalog, [event('e1', '2026-10-02T00:00:00Z')], { channel: 'file', now: NOW });
    assert.equal(again.results[0]!.status, 'accepted');
    assert.equal((await store.pool.query("SELECT count(*)::int AS n FROM events WHERE id = 'e1'")).rows[0].n, 1);
  });
});

describe('a posted outbox row is final (outbox_posted_final)', () => {
  it('refuses an update or delete of a posted row, and lets pending and dead rows move as the outbox moves them', async () => {
    const rows = (await store.pool.query<{ id: string }>("SELECT id::text FROM outbox WHERE target = 'netsuite' ORDER BY id LIMIT 2")).rows;
    assert.equal(rows.length, 2);
    const [posted, dead] = [rows[0]!.id, rows[1]!.id];
    assert.ok((await claim(store.pool, 'netsuite', 10)).length >= 2, 'pending rows are claimed');
    // The outbox settles a row so (src/post/outbox.ts settleRow).
    const settle = `UPDATE outbox SET status = $2, target_reference = coalesce($3, target_reference), last_error = $4, lease_until = NULL,
                           posted_at = CASE WHEN $2 = 'posted' THEN now() ELSE posted_at END, attempts = attempts + 1
                     WHERE id = $1 AND status = 'pending'`;
    assert.equal((await store.pool.query(settle, [posted, 'posted', 'NS-1', null])).rowCount, 1);
    assert.equal((await store.pool.query(settle, [dead, 'dead', null, '{"message":"refused"}'])).rowCount, 1);
    assert.equal(await replayDeadLetter(store.pool, dead), true, 'a dead row goes back in line');
    await assert.rejects(store.pool.query("UPDATE outbox SET target_reference = 'NS-2' WHERE id = $1", [posted]), /is posted; it is final/);
    await assert.rejects(store.pool.query("UPDATE outbox SET status = 'pending' WHERE id = $1", [posted]), /is posted; it is final/);
    await assert.rejects(store.pool.query('UPDATE outbox SET lease_until = now() WHERE id = $1', [posted]), /is posted; it is final/);
    await assert.rejects(store.pool.query('DELETE FROM outbox WHERE id = $1', [posted]), /is posted; it is final \(DELETE refused\)/);
    const row = (await store.pool.query('SELECT status, target_reference FROM outbox WHERE id = $1', [posted])).rows[0];
    assert.deepEqual(row, { status: 'posted', target_reference: 'NS-1' });
  });
});

describe("an invoice's amount paid is the sum of its applied payments (invoices_paid_by_payments, payments_match_invoices)", () => {
  it("refuses UPDATE invoices SET amount_paid_minor = total_minor, payment_status = 'paid' with no payment behind it", async () => {
    const number = numbers()[0]!;
    await assert.rejects(
      store.pool.query("UPDATE invoices SET amount_paid_minor = total_minor, payment_status = 'paid' WHERE number = $1", [number]),
      /says \d+ paid but its applied payments sum to 0/,
    );
    assert.deepEqual([(await invoiceRow(number)).amount_paid_minor, (await invoiceRow(number)).payment_status], ['0', 'unpaid']);
  });

  it('applies payments partially then fully, and refuses a payment changed, moved or deleted behind the invoice', async () => {
    const number = numbers()[0]!;
    const { total_minor: total, id } = await invoiceRow(number);
    assert.equal((await pay('pay-part', number, '1.00')).status, 'applied');
    const rest = BigInt(total) - 100n;
    const restMajor = `${rest / 100n}.${(rest % 100n).toString().padStart(2, '0')}`;
    const full = await pay('pay-rest', number, restMajor);
    assert.ok(full.status === 'applied' && full.payment_status === 'paid');
    assert.deepEqual([(await invoiceRow(number)).amount_paid_minor, (await invoiceRow(number)).payment_status], [total, 'paid']);
    await assert.rejects(committed("UPDATE payments SET amount_minor = amount_minor + 1 WHERE id = 'pay-part'"), /applied payments sum to/);
    await assert.rejects(committed("DELETE FROM payments WHERE id = 'pay-part'"), /applied payments sum to/);
    await assert.rejects(committed("UPDATE payments SET status = 'exception' WHERE id = 'pay-part'"), /applied payments sum to/);
    const other = (await invoiceRow(numbers()[3] ?? numbers()[1]!)).id;
    await assert.rejects(committed("UPDATE payments SET invoice_id = $1 WHERE id = 'pay-part'", [other]), /applied payments sum to/);
    // The invoice and its payments together, in one transaction, agree: that commits.
    await transaction(store.pool, async (client) => {
      await client.query(
        "UPDATE invoices SET amount_paid_minor = amount_paid_minor - 100, payment_status = 'partially_paid' WHERE id = $1",
        [id],
      );
      await client.query("UPDATE payments SET amount_minor = amount_minor - 100 WHERE id = 'pay-rest'");
      await client.query("UPDATE invoices SET amount_paid_minor = amount_paid_minor + 100, payment_status = 'paid' WHERE id = $1", [id]);
      await client.query("UPDATE payments SET amount_minor = amount_minor + 100 WHERE id = 'pay-rest'");
    });
  });
});
