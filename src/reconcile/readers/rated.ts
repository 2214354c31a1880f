// The rated side: the quantities each rating run read against the quantities the invoice lines priced
// (checkpoint aggregates_vs_rated).
import { Decimal, decimalText } from '../../domain/money.js';
import type { ReconKey } from '../checkpoints.js';
import { Sides, type Db } from '../sides.js';
import { usageDocs, usageItem, type RunUsage } from './usage.js';

interface UsageLine {
  invoice_id: string;
  customer: string;
  rating_run: string;
  usage_ref: string;
  quantity: string;
}

/** The usage lines of the period's finalized invoices of one legal entity, in invoice and line order. */
async function usageLines(db: Db, entity: string, period: string): Promise<UsageLine[]> {
  return (
    await db.query<UsageLine & { number: string | null; line_no: number }>(
      `SELECT l.invoice_id, i.number, i.customer, i.rating_run, l.usage_ref, l.quantity::text AS quantity, l.line_no
         FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
        WHERE i.legal_entity = $1 AND i.period = $2 AND i.kind = 'invoice' AND i.status <> 'draft' AND l.usage_ref IS NOT NULL
        ORDER BY l.invoice_id, l.line_no`,
      [entity, period],
    )
  ).rows;
}

/** What the runs read (left) against what the invoice lines priced (right), per usage aggregate. */
export async function ratedSides(db: Db, entity: string, period: string, runs: readonly RunUsage[]): Promise<Sides> {
  const rated = new Sides();
  const itemByRef = new Map<string, string>(); // run + usage_ref -> item
  for (const run of runs) {
    for (const u of run.usage) {
      const key: ReconKey = { legal_entity: entity, customer: run.customer, currency: '', item: usageItem(u, run) };
      rated.add('left', key, u.quantity, usageDocs(run, u));
      itemByRef.set(`${run.run}\n${u.usage_ref}`, key.item);
    }
  }
  // A usage aggregate priced by more than one line (two prices on one meter) is one quantity: each distinct quantity counts once.
  const seen = new Set<string>();
  const runsById = new Map(runs.map((r) => [r.run, r]));
  for (const line of await usageLines(db, entity, period)) {
    const run = runsById.get(line.rating_run);
    const item =
      itemByRef.get(`${line.rating_run}\n${line.usage_ref}`) ?? (run ? usageItem(line, run) : `${line.usage_ref} (no rating run)`);
    const quantity = decimalText(new Decimal(line.quantity));
    const once = JSON.stringify([line.customer, item, quantity]);
    if (seen.has(once)) continue;
    seen.add(once);
    rated.add('right', { legal_entity: entity, customer: line.customer, currency: '', item }, quantity, [
      { kind: 'invoice', id: line.invoice_id },
      { kind: 'usage_aggregate', id: line.usage_ref },
    ]);
  }
  return rated;
}
