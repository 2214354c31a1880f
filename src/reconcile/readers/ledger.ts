// The built-in ledger's sides: the journals Accrue's documents imply against the journals it holds
// (invoices_vs_erp_postings for the `ledger` connector), and the trial balance of both (trial_balance).
import { trialBalance } from '../../domain/journal.js';
import { trialBalanceSide, type SideEntry } from '../checkpoints.js';
import { keyText, Sides, type DocumentRef } from '../sides.js';
import { debitTotal, journalCurrency, journalDocs, journalKey, type ExpectedJournal, type StoredJournal } from './journals.js';

/** Journal kinds that carry a finalized invoice or credit note to the books (payments come back from the ERP instead). */
const DOCUMENT_JOURNAL_KINDS: readonly string[] = [
  'invoice',
  'credit_drawdown',
  'credit_note',
  'invoice_reversal',
  'credit_drawdown_reversal',
  // Month-end revaluations of receivables in other currencies, built again from the ledger and the rates in force.
  'fx_revaluation',
  'fx_revaluation_reversal',
  // Prepaid credits sold and released, built again from the catalog's grants and what was drawn.
  'credit_grant',
  'credit_expiry',
  // Each month's part of the fees billed in advance, built again from the stored schedules.
  'revenue_recognition',
];

/** The document journals Accrue implies (left) against those the ledger holds (right), by debit total per currency. */
export function ledgerPostingSides(entity: string, expected: readonly ExpectedJournal[], stored: readonly StoredJournal[]): Sides {
  const sides = new Sides();
  for (const e of expected) {
    if (e.source_kind === 'payment') continue;
    sides.add(
      'left',
      journalKey(entity, e.customer, journalCurrency(e.journal.lines), e.journal.id),
      debitTotal(e.journal.lines),
      journalDocs(e.journal.id, e.journal.source_document, e.source_kind),
    );
  }
  for (const s of stored) {
    if (!DOCUMENT_JOURNAL_KINDS.includes(s.kind)) continue;
    const currencies = [...new Set(s.lines.map((l) => l.currency))];
    for (const currency of currencies) {
      const lines = s.lines.filter((l) => l.currency === currency);
      sides.add(
        'right',
        journalKey(entity, s.customer, currency, s.id),
        debitTotal(lines),
        journalDocs(
          s.id,
          s.source_document,
          s.kind === 'credit_note'
            ? 'credit_note'
            : s.kind.startsWith('fx_revaluation')
              ? 'fx_revaluation'
              : s.kind.startsWith('credit_') &&
                  s.kind !== 'credit_drawdown' &&
                  s.kind !== 'credit_drawdown_reversal' &&
                  s.kind !== 'credit_note'
                ? 'credit_grant'
                : 'invoice',
        ),
      );
    }
  }
  return sides;
}

/** Balances the documents imply against the ledger's own trial balance for the period's postings, `(net)` included. */
export function trialBalanceSides(
  entity: string,
  period: string,
  expected: readonly ExpectedJournal[],
  stored: readonly StoredJournal[],
): Sides {
  const sides = new Sides();
  // The period is in the item: the same account and amounts in another month are another exception.
  const withPeriod = (entries: SideEntry[]): SideEntry[] =>
    entries.map(([key, value]) => [{ ...key, item: `${key.item}@${period}` }, value]);
  for (const [key, value] of withPeriod(trialBalanceSide(trialBalance(expected.map((e) => e.journal)))))
    sides.add('left', key, value as bigint);
  const held = stored.map((s) => ({ legal_entity: entity, lines: s.lines }));
  for (const [key, value] of withPeriod(trialBalanceSide(trialBalance(held)))) sides.add('right', key, value as bigint);
  // Which journals touched an account: named on the exception, so the reviewer starts from them.
  for (const s of stored) {
    for (const l of s.lines) {
      const docs: DocumentRef[] = [{ kind: 'journal', id: s.id }];
      for (const item of [`${l.account}@${period}`, `(net)@${period}`]) {
        const text = keyText({ legal_entity: entity, customer: '', currency: l.currency, item });
        const list = sides.documents.get(text) ?? [];
        if (!list.some((d) => d.id === s.id)) list.push(...docs);
        sides.documents.set(text, list);
      }
    }
  }
  return sides;
}
