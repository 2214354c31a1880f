// Prepaid credits in the books at each close (docs/accounting.md#prepaid-credits): the paid grants granted by the
// period's end are booked as sold (Dr cash, Cr deferred revenue) and those expired by then release what was never
// drawn as breakage revenue, after the period's invoices drew from them. Each journal is keyed by its grant, so a
// grant is booked once whichever close first sees it.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { creditExpiryJournal, creditGrantJournal, grantMinor } from '../domain/credits.js';
import { ProblemError } from '../domain/result.js';
import type { Journal } from '../domain/model.js';
import { erpRouting, type RolloutScope } from '../post/rollout.js';
import { bookingRate, recordJournals } from '../post/journals.js';
import { inFunctionalCurrency } from '../domain/fx-journals.js';
import { grantBalancesUsed } from '../rate/store.js';
import { transaction } from '../store/store.js';

export async function bookCreditLife(
  pool: pg.Pool,
  catalog: CatalogVersion,
  entities: readonly string[],
  periodEnd: string, // exclusive
  erpTargets: readonly string[],
  rollout: RolloutScope | undefined,
): Promise<Journal[]> {
  const booked: Journal[] = [];
  await transaction(pool, async (client) => {
    for (const grant of catalog.catalog.credit_grants) {
      const customer = catalog.index.customers.get(grant.customer);
      const accounts = customer ? catalog.catalog.accounts[customer.legal_entity] : undefined;
      if (!customer || !accounts || !entities.includes(customer.legal_entity)) continue;
      const wanted: Journal[] = [];
      if (grant.granted < periodEnd) {
        const sold = creditGrantJournal(grant, customer.legal_entity, accounts, customer.erp_customer_id);
        if (sold) wanted.push(sold);
      }
      if (grant.expires < periodEnd && !(await booked_(client, `jrn:v1:credit_expiry:${grant.id}`))) {
        const drawn = (await grantBalancesUsed(client, grant.customer, '')).get(grant.id) ?? 0n;
        if (grant.kind !== 'promotional' && drawn < grantMinor(grant) && !accounts.breakage_revenue)
          throw new ProblemError(
            [
              {
                path: `accounts.${customer.legal_entity}.breakage_revenue`,
                code: 'required',
                message: `prepaid credit grant ${grant.id} expired on ${grant.expires} with credit unused: name the account its breakage revenue is booked to`,
              },
            ],
            409,
          );
        const expired = creditExpiryJournal(grant, drawn, customer.legal_entity, accounts, customer.erp_customer_id);
        if (expired) wanted.push(expired);
      }
      for (const asBuilt of wanted) {
        if (await booked_(client, asBuilt.id)) continue; // booked by an earlier close: never dated again
        // A grant in the customer's currency, when its legal entity keeps its books in another: at the rate of its date.
        const entity = catalog.index.legalEntities.get(customer.legal_entity)!;
        const fx = await bookingRate(
          client,
          { id: grant.id, currency: grant.currency, legal_entity: entity.id },
          catalog,
          asBuilt.posting_date,
        );
        const journal = fx ? inFunctionalCurrency(asBuilt, fx, entity.currency, entity.rounding) : asBuilt;
        await recordJournals(
          client,
          [journal],
          null,
          erpRouting(erpTargets, rollout, { customer: grant.customer, legal_entity: customer.legal_entity }),
        );
        booked.push(journal);
      }
    }
  });
  return booked;
}

const booked_ = async (client: pg.PoolClient, id: string): Promise<boolean> =>
  ((await client.query('SELECT 1 FROM journals WHERE id = $1', [id])).rowCount ?? 0) > 0;
