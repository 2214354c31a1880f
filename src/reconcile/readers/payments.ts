// The payments side (payments_vs_receivable): payments applied in the period against the receivable their
// journals cleared, per invoice.
import type { CatalogVersion } from '../../catalog/service.js';
import { invariant } from '../../domain/result.js';
import type { PeriodWindow } from '../../meter/period.js';
import type { ReconKey } from '../checkpoints.js';
import { keyText, Sides, type Db, type DocumentRef } from '../sides.js';
import type { AppliedPayment } from './applied-payments.js';
import type { StoredJournal } from './journals.js';

interface Slot {
  key: ReconKey;
  amount: bigint;
  docs: DocumentRef[];
}

/** The receivable each stored payment journal cleared, summed per invoice (a journal without one is its own item). */
async function clearedReceivable(
  db: Db,
  entity: string,
  window: PeriodWindow,
  stored: readonly StoredJournal[],
  receivable: string,
): Promise<Map<string, Slot>> {
  const invoiceOf = new Map(
    (
      await db.query<{ id: string; invoice_id: string | null }>('SELECT id, invoice_id FROM payments WHERE id = ANY($1)', [
        stored.filter((s) => s.kind === 'payment').map((s) => s.source_document),
      ])
    ).rows.map((r) => [r.id, r.invoice_id]),
  );
  const cleared = new Map<string, Slot>();
  for (const s of stored) {
    if (s.kind !== 'payment') continue;
    const invoice = invoiceOf.get(s.source_document) ?? null;
    for (const line of s.lines) {
      if (line.account !== receivable) continue;
      // Payments are in the invoice's currency: a receivable booked from another currency is compared in it.
      const key: ReconKey = {
        legal_entity: entity,
        customer: s.customer ?? '',
        currency: line.tx_currency ?? line.currency,
        item: invoice ? `${invoice}@${window.period}` : `(journal ${s.id})@${window.period}`,
      };
      const slot = cleared.get(keyText(key)) ?? { key, amount: 0n, docs: invoice ? [{ kind: 'invoice', id: invoice }] : [] };
      slot.amount +=
        line.tx_amount_minor === undefined
          ? line.credit_minor - line.debit_minor
          : line.credit_minor > 0n
            ? line.tx_amount_minor
            : -line.tx_amount_minor;
      if (!slot.docs.some((d) => d.id === s.id)) slot.docs.push({ kind: 'journal', id: s.id });
      cleared.set(keyText(key), slot);
    }
  }
  return cleared;
}

/** Payments applied (received in the period, or whose journal is dated in it) against the receivable their journals cleared. */
export async function paymentSides(
  db: Db,
  entity: string,
  window: PeriodWindow,
  stored: readonly StoredJournal[],
  payments: readonly AppliedPayment[],
  catalog: CatalogVersion,
): Promise<Sides> {
  const sides = new Sides();
  const receivable = catalog.catalog.accounts[entity]?.receivable;
  invariant(receivable !== undefined, `the catalog has a receivable account for ${entity}`);
  // Several payments on one invoice in a period are one entry per side: the sums are what must agree.
  const byInvoice = new Map<string, Slot>();
  for (const p of payments) {
    const key: ReconKey = { legal_entity: entity, customer: p.customer, currency: p.currency, item: `${p.invoice_id}@${window.period}` };
    const slot = byInvoice.get(keyText(key)) ?? { key, amount: 0n, docs: [{ kind: 'invoice', id: p.invoice_id }] };
    slot.amount += BigInt(p.amount_minor);
    slot.docs.push({ kind: 'payment', id: p.id });
    byInvoice.set(keyText(key), slot);
  }
  for (const slot of byInvoice.values()) sides.add('left', slot.key, slot.amount, slot.docs);
  for (const slot of (await clearedReceivable(db, entity, window, stored, receivable)).values())
    sides.add('right', slot.key, slot.amount, slot.docs);
  return sides;
}
