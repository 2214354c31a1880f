// Explain a journal: which invoice (or payment) it posts, which invoice lines each journal line carries, and, for one
// journal line, those invoice lines down to their events. Also found by outbox key or by the ERP's reference.
import { readJournalLines } from '../post/journals.js';
import type pg from 'pg';
import { isChargeLine, revenueAccountResolver } from '../domain/journal.js';
import type { AccountMap, InvoiceLine } from '../domain/model.js';
import { formatMajor } from '../domain/money.js';
import { fail, ok, problem, type Result } from '../domain/result.js';
import { invoiceById, journalsOf } from './documents.js';
import { explainInvoice, explainLines, lineContext } from './explain-invoice.js';
import type { JournalExplanation, JournalLineExplanation } from './model.js';

interface JournalRow {
  id: string;
  kind: string;
  legal_entity: string;
  posting_date: string;
  dated_on: string | null;
  posting_policy: string;
  source_document: string;
  source_number: string | null;
  memo: string;
}

const JOURNAL_COLUMNS = 'id, kind, legal_entity, posting_date, dated_on, posting_policy, source_document, source_number, memo';

/** A journal id, an outbox key (`out:v1:<target>:<journal id>`) or the reference an ERP gave the posted document. */
/** By id, outbox key or ERP reference; with `entities`, only among those legal entities' journals (a key's limit). */
async function findJournal(db: pg.Pool | pg.PoolClient, ref: string, entities?: readonly string[]): Promise<Result<JournalRow>> {
  const direct = (
    await db.query<JournalRow>(`SELECT ${JOURNAL_COLUMNS} FROM journals WHERE id = $1 AND ($2::text[] IS NULL OR legal_entity = ANY($2))`, [
      ref,
      entities ?? null,
    ])
  ).rows;
  if (direct.length === 1) return ok(direct[0]!);
  const viaOutbox = (
    await db.query<JournalRow & { target: string }>(
      `SELECT DISTINCT ${JOURNAL_COLUMNS.split(', ')
        .map((c) => `j.${c}`)
        .join(', ')}, o.target FROM outbox o JOIN journals j ON j.id = o.document_id
        WHERE (o.key = $1 OR o.target_reference = $1) AND ($2::text[] IS NULL OR j.legal_entity = ANY($2)) ORDER BY j.id, o.target`,
      [ref, entities ?? null],
    )
  ).rows;
  if (viaOutbox.length === 0)
    return fail(problem('journal', 'not_found', `no journal, outbox key or ERP reference ${JSON.stringify(ref)}`));
  const ids = [...new Set(viaOutbox.map((r) => r.id))];
  if (ids.length > 1)
    return fail(
      problem(
        'journal',
        'ambiguous',
        `${JSON.stringify(ref)} is the reference of ${ids.length} journals (${viaOutbox.map((r) => `${r.id} at ${r.target}`).join(', ')}); give the journal id`,
      ),
    );
  return ok(viaOutbox[0]!);
}

/** Which invoice lines move a revenue account in a journal of this kind (src/domain/journal.ts, the treatment). */
function movesRevenue(kind: string, line: InvoiceLine): boolean {
  if (kind === 'credit_drawdown') return line.kind === 'credit';
  if (kind === 'credit_note') return isChargeLine(line) || line.kind === 'discount';
  return isChargeLine(line) || line.kind === 'discount' || line.kind === 'credit';
}

type Db = pg.Pool | pg.PoolClient;
type JournalLine = Awaited<ReturnType<typeof readJournalLines>>[number];

interface PaymentRow {
  id: string;
  invoice_id: string | null;
  currency: string;
  amount_minor: string;
  received_on: string;
}

/** What a journal line is matched against: the journal's kind, its entity's accounts and the invoice's lines. */
interface LineView {
  kind: string;
  accounts: AccountMap | undefined;
  invoiceLines: readonly InvoiceLine[];
  /** The revenue account of a product in the journal's legal entity, undefined when the catalog version lacks it. */
  revenueOf: (product: string) => string | undefined;
}

export async function explainJournal(
  db: Db,
  journalRef: string,
  options: { line?: number; entities?: readonly string[] } = {},
): Promise<Result<JournalExplanation>> {
  const found = await findJournal(db, journalRef, options.entities);
  if (!found.ok) return found;
  const head = found.value;
  const lines = await readJournalLines(db, [head.id]);
  if (options.line !== undefined && !lines.some((l) => l.line_no === options.line)) {
    return fail(problem('line', 'no_such_line', `journal ${head.id} has lines 1 to ${lines.length}; there is no line ${options.line}`));
  }

  const payment = head.kind === 'payment' ? await readPayment(db, head.source_document) : undefined;
  const invoiceId = head.kind === 'payment' ? payment?.invoice_id : head.source_document;
  const invoiceRow = invoiceId ? await invoiceById(db, invoiceId) : undefined;
  if (!invoiceRow)
    return fail(
      problem(
        'journal.source_document',
        'not_found',
        `journal ${head.id} posts ${head.source_document}, which is not an invoice, credit note or applied payment in the store`,
      ),
    );
  const invoice = await explainInvoice(db, invoiceRow.id, { lines: false });
  if (!invoice.ok) return invoice;
  const ctx = await lineContext(db, invoiceRow);
  const view = lineView(head, ctx);
  const explainedLines = lines.map((l) => explainJournalLine(l, view));

  const chosen = options.line !== undefined ? explainedLines.find((l) => l.line_no === options.line)! : undefined;
  const posted = (await journalsOf(db, [invoiceRow.id])).find((j) => j.id === head.id) ?? { ...head, outbox: [] };
  return ok({
    journal: { ...posted, legal_entity: head.legal_entity, source_document: head.source_document, source_number: head.source_number },
    payment: payment
      ? { id: payment.id, amount: formatMajor(BigInt(payment.amount_minor), payment.currency), received_on: payment.received_on }
      : null,
    lines: explainedLines,
    explained: chosen ? { journal_line: chosen.line_no, invoice_lines: await explainLines(db, ctx, chosen.invoice_lines) } : null,
    invoice: invoice.value,
  });
}

async function readPayment(db: Db, id: string): Promise<PaymentRow | undefined> {
  return (await db.query<PaymentRow>('SELECT id, invoice_id, currency, amount_minor, received_on FROM payments WHERE id = $1', [id]))
    .rows[0];
}

function lineView(head: JournalRow, ctx: Awaited<ReturnType<typeof lineContext>>): LineView {
  const products = ctx.catalog?.catalog.products ?? [];
  return {
    kind: head.kind,
    accounts: ctx.catalog?.index.accounts.get(head.legal_entity),
    invoiceLines: ctx.invoice.lines,
    revenueOf: (product: string): string | undefined => {
      try {
        return revenueAccountResolver(products, head.legal_entity)(product);
      } catch {
        return undefined; // a product missing from that catalog version simply maps to no account
      }
    },
  };
}

/** A journal line's role (by its account) and the invoice lines it carries. */
function lineRole(l: JournalLine, view: LineView): { role: JournalLineExplanation['role']; invoiceLines: number[] } {
  const { accounts, invoiceLines: all, revenueOf } = view;
  if (view.kind === 'payment')
    return { role: l.account === accounts?.cash ? 'cash' : l.account === accounts?.receivable ? 'receivable' : 'other', invoiceLines: [] };
  if (l.account === accounts?.receivable) return { role: 'receivable', invoiceLines: all.map((x) => x.line_no) }; // the document's total
  if (l.account === accounts?.tax_payable) return { role: 'tax_payable', invoiceLines: [] };
  if (l.account === accounts?.deferred_revenue)
    return { role: 'deferred_revenue', invoiceLines: all.filter((x) => x.kind === 'credit').map((x) => x.line_no) };
  const carried = all.filter(
    (x) => revenueOf(x.product) === l.account && (!l.product || l.product === x.product) && movesRevenue(view.kind, x),
  );
  const role = carried.length > 0 || all.some((x) => revenueOf(x.product) === l.account) ? 'revenue' : 'other';
  return { role, invoiceLines: carried.map((x) => x.line_no) };
}

function explainJournalLine(l: JournalLine, view: LineView): JournalLineExplanation {
  const { role, invoiceLines } = lineRole(l, view);
  return {
    line_no: l.line_no,
    account: l.account,
    role,
    debit: formatMajor(BigInt(l.debit_minor), l.currency),
    credit: formatMajor(BigInt(l.credit_minor), l.currency),
    currency: l.currency,
    customer: l.customer,
    product: l.product,
    memo: l.memo,
    invoice_lines: invoiceLines,
  };
}
