// The explain walk a dispute is opened with: the disputed line back to its usage and events (src/explain), kept as a
// stable summary in the dispute's row so the dispute shows what was billed when it was contested, whatever happens
// to the store afterwards. The full walk stays one command away: `accrue explain invoice <invoice> --line <n>`.
import type pg from 'pg';
import { explainInvoice } from '../explain/explain-invoice.js';
import { EXPLAIN_LIMITS } from '../explain/model.js';
import { ProblemError } from '../domain/result.js';

export interface DisputeWalk {
  invoice: string;
  invoice_number: string | null;
  line_no: number;
  kind: string;
  product: string;
  meter: string | null;
  description: string;
  quantity: string;
  amount: string;
  period: { start: string; end_inclusive: string };
  price: { id: string; version: string } | null;
  usage: {
    usage_ref: string;
    window: { from: string; to: string };
    quantity: string;
    event_count: number;
    usage_batch_count: number;
    first_event_time: string | null;
    last_event_time: string | null;
    consistent: boolean;
    sample: Array<{ source: string; id: string }>;
  } | null;
  correlation_id: string;
  rating_run: { id: string; catalog_version: number; event_seq_watermark: string } | null;
  journals: string[];
  note: string | null;
}

/** The walk of one line of an invoice (by id), summarized; the line's problems as a ProblemError. */
export async function walkOfLine(db: pg.Pool | pg.PoolClient, invoiceId: string, lineNo: number): Promise<DisputeWalk> {
  const explained = await explainInvoice(db, invoiceId, { line: lineNo });
  if (!explained.ok) throw new ProblemError(explained.problems, explained.problems.some((p) => p.code === 'not_found') ? 404 : 400);
  const e = explained.value;
  const line = e.lines[0]!;
  return {
    invoice: e.invoice.id,
    invoice_number: e.invoice.number,
    line_no: line.line_no,
    kind: line.kind,
    product: line.product,
    meter: line.meter,
    description: line.description,
    quantity: line.quantity,
    amount: line.amount,
    period: line.period,
    price: line.price ? { id: line.price.id, version: line.price.version } : null,
    usage: line.usage
      ? {
          usage_ref: line.usage.usage_ref,
          window: line.usage.window,
          quantity: line.usage.quantity,
          event_count: line.usage.event_count,
          usage_batch_count: line.usage.usage_batch_count,
          first_event_time: line.usage.first_event_time,
          last_event_time: line.usage.last_event_time,
          consistent: line.usage.consistent,
          sample: line.usage.sample.slice(0, EXPLAIN_LIMITS.sampleEvents).map((s) => ({ source: s.source, id: s.id })),
        }
      : null,
    correlation_id: e.lineage.correlation_id,
    rating_run: e.rating_run
      ? { id: e.rating_run.id, catalog_version: e.rating_run.catalog_version, event_seq_watermark: e.rating_run.event_seq_watermark }
      : null,
    journals: e.lineage.journals,
    note: line.note,
  };
}

/** The walk as lines of text, for `accrue disputes show`. */
export function renderWalk(w: DisputeWalk): string[] {
  const out = [
    `line ${w.line_no} of ${w.invoice_number ?? w.invoice} (${w.kind}, ${w.product}${w.meter ? `, meter ${w.meter}` : ''}): ${w.description}`,
    `  quantity ${w.quantity}, amount ${w.amount}, ${w.period.start} to ${w.period.end_inclusive}`,
  ];
  if (w.price) out.push(`  price ${w.price.id} version ${w.price.version}`);
  if (w.rating_run)
    out.push(
      `  rated by ${w.rating_run.id} (catalog v${w.rating_run.catalog_version}, events up to seq ${w.rating_run.event_seq_watermark})`,
    );
  if (w.usage) {
    const u = w.usage;
    out.push(
      `  usage ${u.usage_ref}: ${u.event_count} event(s), quantity ${u.quantity}, ${u.window.from} to ${u.window.to}${u.consistent ? '' : ' (recount DIFFERS from the line)'}`,
      `  events ${u.first_event_time ?? '-'} .. ${u.last_event_time ?? '-'} in ${u.usage_batch_count} batch(es); sample: ${u.sample.map((s) => `${s.source} ${s.id}`).join(', ') || '-'}`,
    );
  }
  if (w.note) out.push(`  ${w.note}`);
  out.push(`  correlation ${w.correlation_id}; journals ${w.journals.join(', ') || '-'}`);
  return out;
}
