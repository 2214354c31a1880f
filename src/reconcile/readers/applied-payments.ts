// The one query for a period's applied payments: those received in it without a journal, and those whose payment
// journal is dated in it. Both the expected journals and the payments side read it.
import type { PeriodWindow } from '../../meter/period.js';
import type { Db } from '../sides.js';

export interface AppliedPayment {
  id: string;
  invoice_id: string;
  customer: string;
  currency: string;
  amount_minor: string;
  received_on: string;
  created_at: Date;
}

/** Applied payments on one legal entity's invoices for the period, in id order. */
export async function appliedPayments(db: Db, entity: string, window: PeriodWindow): Promise<AppliedPayment[]> {
  return (
    await db.query<AppliedPayment>(
      `SELECT p.id, p.invoice_id, i.customer, p.currency, p.amount_minor::text AS amount_minor, to_char(p.received_on, 'YYYY-MM-DD') AS received_on, p.created_at
         FROM payments p JOIN invoices i ON i.id = p.invoice_id
        WHERE p.status = 'applied' AND i.legal_entity = $1 AND (
              EXISTS (SELECT 1 FROM journals j WHERE j.kind = 'payment' AND j.source_document = p.id AND j.posting_date >= $2 AND j.posting_date < $3)
           OR (p.received_on >= $2 AND p.received_on < $3 AND NOT EXISTS (SELECT 1 FROM journals j WHERE j.kind = 'payment' AND j.source_document = p.id)))
        ORDER BY p.id`,
      [entity, window.start_date, window.end_date],
    )
  ).rows;
}
