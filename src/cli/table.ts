// Plain aligned columns for terminal output; numbers (decimal strings) right-aligned.
import type { TrialBalanceRow } from '../domain/journal.js';
import { formatMajor } from '../domain/money.js';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => /^-?[\d.,]+$/.test(r[i] ?? '')));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A trial balance as a table: account, currency, debit, credit and balance in major units. */
export function trialBalanceTable(rows: readonly TrialBalanceRow[]): string {
  return table(
    ['account', 'currency', 'debit', 'credit', 'balance'],
    rows.map((r) => [
      r.account,
      r.currency,
      formatMajor(r.debit_minor, r.currency),
      formatMajor(r.credit_minor, r.currency),
      formatMajor(r.balance_minor, r.currency),
    ]),
  );
}
