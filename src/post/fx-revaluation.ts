// Month-end revaluation of open receivables in other currencies (docs/accounting.md#other-currencies): what each
// invoice booked from another currency still has open at the month's last day, in its currency and at the rates it
// was booked at, brought to that day's rate; the journal and its reversal on the next day written together.
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import type { CatalogVersion } from '../catalog/service.js';
import { revaluationJournals, type OpenReceivable } from '../domain/fx-journals.js';
import type { Journal, JournalFx } from '../domain/model.js';
import { ProblemError } from '../domain/result.js';
import { requireFxRate } from '../map/fx-rates.js';
import { transaction } from '../store/store.js';
import { recordJournals } from './journals.js';
import { lastDayOfMonth } from '../domain/calendar.js';
import { asJournalFx } from '../domain/fx.js';

/** Each invoice's receivable booked from another currency and still open on `date`, from the ledger. */
export async function openForeignReceivables(
  db: pg.Pool | pg.PoolClient,
  entity: string,
  receivable: string,
  date: string,
): Promise<OpenReceivable[]> {
  const rows = (
    await db.query<{ invoice: string; currency: string; customer: string; open_tx: string; carrying: string }>(
      `SELECT x.invoice, max(l.tx_currency) AS currency, max(l.customer) AS customer,
              sum(CASE WHEN l.debit_minor > 0 THEN l.tx_amount_minor ELSE -l.tx_amount_minor END)::text AS open_tx,
              sum(l.debit_minor - l.credit_minor)::text AS carrying
         FROM journals j
         JOIN journal_lines l ON l.journal_id = j.id
         LEFT JOIN payments p ON p.id = j.source_document AND j.kind = 'payment'
         LEFT JOIN invoices c ON c.id = j.source_document AND c.kind = 'credit_note'
        CROSS JOIN LATERAL (SELECT coalesce(p.invoice_id, c.corrects, j.source_document) AS invoice) x
        WHERE j.legal_entity = $1 AND j.posting_date <= $2 AND l.account = $3 AND l.tx_currency IS NOT NULL
          AND j.kind NOT IN ('fx_revaluation', 'fx_revaluation_reversal')
        GROUP BY x.invoice
       HAVING sum(CASE WHEN l.debit_minor > 0 THEN l.tx_amount_minor ELSE -l.tx_amount_minor END) <> 0
        ORDER BY x.invoice`,
      [entity, date, receivable],
    )
  ).rows;
  return rows.map((r) => ({
    invoice: r.invoice,
    currency: r.currency,
    customer: r.customer,
    open_tx_minor: BigInt(r.open_tx),
    carrying_minor: BigInt(r.carrying),
  }));
}

export interface RevaluationOutcome {
  entity: string;
  period: string;
  open_items: number;
  rates: JournalFx[];
  journals: Journal[]; // the revaluation and its reversal; none when nothing moved
}

/**
 * Revalues the entity's open receivables in other currencies at the period's last day: the revaluation journal and
 * its reversal on the first day of the next month, written together (idempotent: the same state writes nothing new).
 * A missing month-end rate is a 409 naming it.
 */
export async function revalueReceivables(
  pool: pg.Pool,
  catalog: CatalogVersion,
  input: { entity: string; period: string },
  actor: string,
): Promise<RevaluationOutcome> {
  const entity = catalog.index.legalEntities.get(input.entity);
  const accounts = catalog.catalog.accounts[input.entity];
  if (!entity || !accounts)
    throw new ProblemError([
      { path: 'entity', code: 'unknown_legal_entity', message: `no legal entity ${JSON.stringify(input.entity)} in the catalog in force` },
    ]);
  const date = lastDayOfMonth(input.period);
  return transaction(pool, async (client) => {
    const items = await openForeignReceivables(client, entity.id, accounts.receivable, date);
    const rates = new Map<string, JournalFx>();
    for (const currency of [...new Set(items.map((i) => i.currency))].sort()) {
      const used = await requireFxRate(client, { date, from: currency, to: entity.currency }, `rate.${currency}`);
      rates.set(currency, asJournalFx(used));
    }
    const built = revaluationJournals(entity.id, input.period, items, rates, accounts, entity.currency, entity.rounding);
    const journals = built ? [built.revaluation, built.reversal] : [];
    if (journals.length > 0) await recordJournals(client, journals, null);
    await appendAudit(client, {
      actor,
      action: 'fx.revalue',
      subject: `fxreval:${entity.id}:${input.period}`,
      details: { open_items: items.length, rates: [...rates.values()], journals: journals.map((j) => j.id) },
    });
    return { entity: entity.id, period: input.period, open_items: items.length, rates: [...rates.values()], journals };
  });
}
