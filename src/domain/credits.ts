// The whole life of prepaid credits (docs/accounting.md#prepaid-credits). A paid grant is a contract liability from
// the day it is granted: Dr cash, Cr deferred revenue. Drawing it recognizes revenue (src/domain/journal.ts
// creditDrawdownJournal); what is still unused on its expiry date is released as breakage revenue. A promotional
// grant was never paid for: nothing is booked when it is granted or when it expires, and drawing it is
// contra-revenue. So deferred revenue holds exactly the unused paid credit, per customer, and never a debit. Pure.
import { buildJournal } from './journal.js';
import type { AccountMap, CreditGrant, Journal } from './model.js';
import { toMinorExact } from './limits.js';
import { Decimal } from './money.js';
import { invariant } from './result.js';

export const isPromotional = (grant: Pick<CreditGrant, 'kind'>): boolean => grant.kind === 'promotional';

/** A grant's amount in minor units of its currency (the catalog allows no more places than the currency has). */
export const grantMinor = (grant: Pick<CreditGrant, 'amount' | 'currency'>): bigint =>
  BigInt(toMinorExact(new Decimal(grant.amount), grant.currency).toFixed(0));

function role(accounts: AccountMap, name: string, why: string): string {
  const account = accounts[name];
  invariant(typeof account === 'string' && account !== '', `the account map has no ${name} account, needed for ${why}`);
  return account;
}

function twoLines(
  kind: 'credit_grant' | 'credit_expiry',
  grant: CreditGrant,
  legalEntity: string,
  date: string,
  memo: string,
  debit: { account: string; customer?: string },
  credit: { account: string; customer?: string },
  amount: bigint,
): Journal {
  const built = buildJournal(kind, grant.id, legalEntity, date, memo, [
    {
      line_no: 1,
      account: debit.account,
      debit_minor: amount,
      credit_minor: 0n,
      currency: grant.currency,
      ...(debit.customer ? { customer: debit.customer } : {}),
    },
    {
      line_no: 2,
      account: credit.account,
      debit_minor: 0n,
      credit_minor: amount,
      currency: grant.currency,
      ...(credit.customer ? { customer: credit.customer } : {}),
    },
  ]);
  invariant(built !== null, 'two lines');
  return built;
}

/** A paid grant on its grant date: Dr cash, Cr deferred revenue (the ERP customer on it). Null for a promotional grant. */
export function creditGrantJournal(grant: CreditGrant, legalEntity: string, accounts: AccountMap, erpCustomerId: string): Journal | null {
  if (isPromotional(grant)) return null;
  return twoLines(
    'credit_grant',
    grant,
    legalEntity,
    grant.granted,
    `Prepaid credits ${grant.id} sold to ${grant.customer} (expire ${grant.expires})`,
    { account: role(accounts, 'cash', 'a paid credit grant') },
    { account: role(accounts, 'deferred_revenue', 'a paid credit grant'), customer: erpCustomerId },
    grantMinor(grant),
  );
}

/**
 * A paid grant on its expiry date: what was never drawn, Dr deferred revenue, Cr breakage revenue. Null when all of
 * it was drawn, or for a promotional grant.
 */
export function creditExpiryJournal(
  grant: CreditGrant,
  drawnMinor: bigint,
  legalEntity: string,
  accounts: AccountMap,
  erpCustomerId: string,
): Journal | null {
  if (isPromotional(grant)) return null;
  const unused = grantMinor(grant) - drawnMinor;
  invariant(unused >= 0n, `grant ${grant.id} was drawn beyond its amount`);
  if (unused === 0n) return null;
  return twoLines(
    'credit_expiry',
    grant,
    legalEntity,
    grant.expires,
    `Prepaid credits ${grant.id} of ${grant.customer} expired unused: breakage`,
    { account: role(accounts, 'deferred_revenue', 'an expired credit grant'), customer: erpCustomerId },
    { account: role(accounts, 'breakage_revenue', 'an expired credit grant'), customer: erpCustomerId },
    unused,
  );
}

export interface CreditLedgerRow {
  customer: string;
  grant: string;
  kind: 'paid' | 'promotional';
  currency: string;
  granted: string;
  expires: string;
  granted_minor: bigint;
  drawn_minor: bigint;
  expired_minor: bigint; // released as breakage (paid) or lapsed (promotional)
  remaining_minor: bigint;
}

/** The credit ledger on `asOf`: each grant given by then, what was drawn from it, what expired, what remains. */
export function creditLedger(grants: readonly CreditGrant[], drawn: ReadonlyMap<string, bigint>, asOf: string): CreditLedgerRow[] {
  return grants
    .filter((g) => g.granted <= asOf)
    .map((g) => {
      const total = grantMinor(g);
      const used = drawn.get(g.id) ?? 0n;
      const expired = g.expires < asOf ? total - used : 0n;
      return {
        customer: g.customer,
        grant: g.id,
        kind: isPromotional(g) ? ('promotional' as const) : ('paid' as const),
        currency: g.currency,
        granted: g.granted,
        expires: g.expires,
        granted_minor: total,
        drawn_minor: used,
        expired_minor: expired,
        remaining_minor: total - used - expired,
      };
    })
    .sort((a, b) => (a.customer < b.customer ? -1 : a.customer > b.customer ? 1 : a.grant < b.grant ? -1 : a.grant > b.grant ? 1 : 0));
}
