// Explain an invoice (or credit note) line by line: the rating run and catalog version that priced it, the price
// version and tiers, the usage aggregate and the very events it counted, and where the document went afterwards
// (journals, outbox rows, ERP references), all under one correlation id.
import type pg from 'pg';
import { currentCatalog, type CatalogVersion } from '../catalog/service.js';
import { correlationId } from '../domain/correlation.js';
import type { Invoice, InvoiceLine } from '../domain/model.js';
import { formatMajor } from '../domain/money.js';
import { fail, ok, problem, type Result } from '../domain/result.js';
import { inclusiveEnd } from '../invoice/export.js';
import { fromDocument } from '../invoice/store.js';
import {
  catalogOfRun,
  correctionsOf,
  documentRef,
  findInvoice,
  invoiceById,
  journalsOf,
  ratedWithLateUsage,
  ratingRun,
  ratingRunRef,
  storedCorrelation,
  type InvoiceRow,
  type RatingRunRow,
} from './documents.js';
import type { InvoiceExplanation, LineExplanation } from './model.js';
import { batchesOfWindows, usageLineage, windowOfLine, type UsageWindow } from './usage-lineage.js';

interface LineContext {
  invoice: Invoice;
  run: RatingRunRow | undefined;
  catalog: CatalogVersion | undefined;
  includesLate: boolean;
}

/** The usage window a line's rating read, or a sentence saying why there is none. */
function usageWindowOf(line: InvoiceLine, ctx: LineContext): UsageWindow | string {
  if (!line.usage_ref || !line.meter) return 'no usage behind this line';
  if (!ctx.run) return `rating run ${ctx.invoice.rating_run} is not in the store`;
  const meter = ctx.catalog?.index.meters.get(line.meter);
  if (!meter) return `meter ${line.meter} is not in catalog version ${ctx.run.catalog_version}`;
  const window = windowOfLine(ctx.invoice.customer, line.meter, line.period_start, line.period_end, line.usage_ref);
  if (!window) return `usage ref ${line.usage_ref} does not match the line's window ${line.period_start} to ${line.period_end}`;
  return {
    usage_ref: line.usage_ref,
    meter,
    customer: ctx.invoice.customer,
    ...window,
    watermark: ctx.run.event_seq_watermark,
    includesLate: ctx.includesLate,
  };
}

function lineNote(line: InvoiceLine, invoice: Invoice): string | null {
  const currency = invoice.currency;
  switch (line.kind) {
    case 'flat':
      return line.quantity === '1'
        ? `flat fee of ${line.unit_amount} ${currency} for the period`
        : `flat fee of ${line.unit_amount} ${currency} prorated by days: ${line.quantity} of the period`;
    case 'minimum_true_up':
      return "the plan's minimum commitment less the period's usage charges";
    case 'discount': {
      const discounted = invoice.lines
        .filter((l) => l.kind !== 'discount' && l.price_id === line.price_id && l.price_version === line.price_version)
        .map((l) => l.line_no);
      return `a percent discount on line${discounted.length === 1 ? '' : 's'} ${discounted.join(', ')}, prorated by the days the discount covers`;
    }
    case 'credit':
      return `drawn from prepaid credit grant ${line.credit_grant}; the credit covers usage charges before tax`;
    default:
      return null;
  }
}

async function explainLine(db: pg.Pool | pg.PoolClient, line: InvoiceLine, ctx: LineContext): Promise<LineExplanation> {
  const found = line.price_id ? ctx.catalog?.index.prices.get(line.price_id) : undefined;
  const version = found?.price.versions.find((v) => v.version_id === line.price_version);
  const window = usageWindowOf(line, ctx);
  const rated = typeof window === 'string' ? undefined : ctx.run?.usage.find((u) => u.usage_ref === window.usage_ref);
  return {
    line_no: line.line_no,
    kind: line.kind,
    description: line.description,
    product: line.product,
    meter: line.meter,
    quantity: line.quantity,
    unit_amount: line.unit_amount,
    amount: formatMajor(line.amount_minor, ctx.invoice.currency),
    amount_minor: line.amount_minor.toString(),
    period: { start: line.period_start, end_inclusive: inclusiveEnd(line.period_end) },
    price:
      line.price_id && line.price_version
        ? {
            id: line.price_id,
            version: line.price_version,
            plan: found?.plan.id ?? null,
            definition: version ? ({ ...version } as Record<string, unknown>) : null,
          }
        : null,
    tiers: line.tiers,
    credit_grant: line.credit_grant ?? null,
    usage:
      typeof window === 'string'
        ? null
        : await usageLineage(db, window, line.quantity, rated ? { quantity: rated.quantity, event_count: rated.event_count } : null),
    note: lineNote(line, ctx.invoice) ?? (typeof window === 'string' && line.kind === 'usage' ? window : null),
  };
}

export interface ExplainOptions {
  line?: number;
  /** false: the document, its lineage and journals without line detail (the journal explanation picks its own lines). */
  lines?: boolean;
  /** Only among these legal entities' documents (a key's entity limit); absent: every entity. */
  entities?: readonly string[];
}

/** The context the lines of one stored invoice are explained in; shared with the journal explanation. */
export async function lineContext(db: pg.Pool | pg.PoolClient, row: InvoiceRow): Promise<LineContext> {
  const invoice = fromDocument(row.document);
  // A credit note copies the lines of the invoice it reverses, so the usage is that invoice's, counted as it was.
  const basis = row.kind === 'credit_note' && row.corrects ? row.corrects : row.id;
  const run = await ratingRun(db, invoice.rating_run);
  const catalog = (await catalogOfRun(db, run)) ?? (await currentCatalog(db));
  return { invoice, run, catalog, includesLate: await ratedWithLateUsage(db, basis) };
}

export async function explainLines(db: pg.Pool | pg.PoolClient, ctx: LineContext, lineNos: readonly number[]): Promise<LineExplanation[]> {
  const lines: LineExplanation[] = [];
  for (const no of lineNos) {
    const line = ctx.invoice.lines.find((l) => l.line_no === no);
    if (line) lines.push(await explainLine(db, line, ctx));
  }
  return lines;
}

export async function explainInvoice(
  db: pg.Pool | pg.PoolClient,
  numberOrId: string,
  options: ExplainOptions = {},
): Promise<Result<InvoiceExplanation>> {
  const found = await findInvoice(db, numberOrId, options.entities);
  if (!found.ok) return found;
  const row = found.value;
  const ctx = await lineContext(db, row);
  const { invoice } = ctx;
  if (options.line !== undefined && !invoice.lines.some((l) => l.line_no === options.line)) {
    return fail(
      problem('line', 'no_such_line', `${row.number ?? row.id} has lines 1 to ${invoice.lines.length}; there is no line ${options.line}`),
    );
  }
  const lineNos = options.line !== undefined ? [options.line] : options.lines === false ? [] : invoice.lines.map((l) => l.line_no);
  const lines = await explainLines(db, ctx, lineNos);

  const windows = invoice.lines.map((l) => usageWindowOf(l, ctx)).filter((w): w is UsageWindow => typeof w !== 'string');
  const batches = await batchesOfWindows(db, windows);
  const journals = await journalsOf(db, [row.id]);
  const outbox = journals.flatMap((j) => j.outbox);
  const computed = correlationId({ invoice: row.id, rating_run: invoice.rating_run ?? null });
  const stored = await storedCorrelation(db, row.id);
  const correctedRow = row.corrects ? await invoiceById(db, row.corrects) : undefined;
  const adjustments = (
    await db.query<InvoiceExplanation['late_usage'][number]>(
      `SELECT key, period, event_seq_watermark, corrected_invoice, credit_note, replacement, billed_in_period FROM late_usage_adjustments
        WHERE corrected_invoice = $1 OR credit_note = $1 OR replacement = $1 ORDER BY created_at, key`,
      [row.id],
    )
  ).rows;
  const customer = ctx.catalog?.index.customers.get(row.customer);

  return ok({
    invoice: {
      ...documentRef(row),
      customer: row.customer,
      customer_name: customer?.name ?? null,
      legal_entity: row.legal_entity,
      currency: row.currency,
      period: row.period,
      period_start: invoice.period_start,
      period_end_inclusive: inclusiveEnd(invoice.period_end),
      total: formatMajor(invoice.total_minor, row.currency),
      payment_status: row.payment_status,
      amount_paid: formatMajor(BigInt(row.amount_paid_minor), row.currency),
      finalized_at: row.finalized_at?.toISOString() ?? null,
    },
    corrects: correctedRow ? documentRef(correctedRow) : null,
    corrected_by: await correctionsOf(db, row.id),
    late_usage: adjustments,
    rating_run: ctx.run ? ratingRunRef(ctx.run, ctx.includesLate) : null,
    lineage: {
      // A mismatch would mean the database and the code disagree on the recipe: show what the code derives, flag it.
      correlation_id: computed,
      correlation_stored: stored === computed,
      usage_batches: batches.ids,
      usage_batch_count: batches.count,
      rating_run: invoice.rating_run ?? null,
      invoice: row.id,
      invoice_number: row.number,
      journals: journals.map((j) => j.id),
      outbox: outbox.map((o) => o.key),
      erp_documents: outbox.filter((o) => o.erp_document !== null).map((o) => ({ target: o.target, reference: o.erp_document! })),
    },
    lines,
    journals,
  });
}
