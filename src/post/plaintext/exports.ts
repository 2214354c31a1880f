// The built-in ledger's reports and exports: trial balance, journals.json, hledger and beancount files.
import type { Catalog, Journal } from '../../domain/model.js';
import { accountRoles } from '../../domain/journal.js';
import { formatMajor } from '../../domain/money.js';
import { ProblemError } from '../../domain/result.js';
import { beancountDeclarations, beancountTransactions, toBeancount } from './beancount.js';
import { hledgerDeclarations, hledgerTransactions, toHledger } from './hledger.js';

export type ExportFormat = 'hledger' | 'beancount';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['hledger', 'beancount'];

/**
 * One self-contained file (declarations and transactions), or, for a ledger kept in several files, the declarations
 * of every account and currency (`declarations`: pass all the ledger's journals) or a period's transactions alone
 * (`transactions`): periods then load together after the one declarations file (docs/accounting.md).
 */
export function exportJournals(
  format: ExportFormat,
  journals: readonly Journal[],
  catalog: Catalog,
  part: 'file' | 'declarations' | 'transactions' = 'file',
): string {
  const roles = accountRoles(catalog.accounts, catalog.products);
  if (!roles.ok) throw new ProblemError(roles.problems);
  const options = { roles: roles.value };
  const render = {
    hledger: { file: toHledger, declarations: hledgerDeclarations, transactions: hledgerTransactions },
    beancount: { file: toBeancount, declarations: beancountDeclarations, transactions: beancountTransactions },
  }[format][part];
  return render(journals, options);
}

/** journals.json: every journal with its lines, amounts as decimal strings, the customer on receivable lines. */
export function journalsJson(journals: ReadonlyArray<Journal & { source_number?: string | null }>, catalog: Catalog): string {
  const out = [...journals]
    .sort((a, b) => (a.posting_date === b.posting_date ? (a.id < b.id ? -1 : 1) : a.posting_date < b.posting_date ? -1 : 1))
    .map((j) => {
      const receivable = catalog.accounts[j.legal_entity]?.receivable;
      return {
        id: j.id,
        kind: j.kind,
        legal_entity: j.legal_entity,
        posting_date: j.posting_date,
        source_document: j.source_number ?? j.source_document,
        memo: j.memo,
        lines: j.lines.map((l) => ({
          account: l.account,
          debit: formatMajor(l.debit_minor, l.currency),
          credit: formatMajor(l.credit_minor, l.currency),
          currency: l.currency,
          ...(l.account === receivable && l.customer ? { customer: l.customer } : {}),
        })),
      };
    });
  return `${JSON.stringify(out, null, 2)}\n`;
}
