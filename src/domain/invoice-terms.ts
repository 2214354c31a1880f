// The legal content of an invoice (docs/catalog.md "Legal content"): who sells, who buys, when it is issued and when
// it is due. Pure and deterministic: dates are UTC calendar dates, the due date is the issue date plus whole days.
import {
  PAYMENT_TERMS_DAYS_DEFAULT,
  type Customer,
  type Invoice,
  type InvoiceParty,
  type LegalEntity,
  type PostalAddress,
} from './model.js';

const DAY_MS = 86_400_000;

/** `date` (YYYY-MM-DD) plus `days` calendar days, in UTC. */
export function addDays(date: string, days: number): string {
  const at = Date.parse(`${date}T00:00:00Z`);
  if (Number.isNaN(at) || !Number.isInteger(days)) throw new Error(`cannot add ${days} days to ${JSON.stringify(date)}`);
  return new Date(at + days * DAY_MS).toISOString().slice(0, 10);
}

/** The customer's payment terms, else its legal entity's, else PAYMENT_TERMS_DAYS_DEFAULT. */
export function paymentTermsDays(entity: LegalEntity, customer: Customer): number {
  return customer.payment_terms_days ?? entity.payment_terms_days ?? PAYMENT_TERMS_DAYS_DEFAULT;
}

const copyAddress = (address: PostalAddress | undefined): PostalAddress | null => (address === undefined ? null : structuredClone(address));

export const sellerOf = (entity: LegalEntity): InvoiceParty => ({
  name: entity.name,
  address: copyAddress(entity.address),
  tax_id: entity.tax_id ?? null,
});
export const buyerOf = (customer: Customer): InvoiceParty => ({
  name: customer.name,
  address: copyAddress(customer.billing_address),
  tax_id: customer.tax_id ?? null,
});

export type LegalFields = Required<Pick<Invoice, 'issue_date' | 'payment_terms_days' | 'due_date' | 'seller' | 'buyer'>>;

/** An invoice's legal fields, issued on `issueDate`: due `paymentTermsDays` later. */
export function invoiceLegalFields(entity: LegalEntity, customer: Customer, issueDate: string): LegalFields {
  const terms = paymentTermsDays(entity, customer);
  return {
    issue_date: issueDate,
    payment_terms_days: terms,
    due_date: addDays(issueDate, terms),
    seller: sellerOf(entity),
    buyer: buyerOf(customer),
  };
}

/**
 * The dates of a document issued again on `issueDate` (a correction issued by a later run), keeping its parties and
 * terms: an invoice falls due its terms after that date; a credit note is not due (it has no terms and no due date).
 */
export function reissued(
  invoice: Invoice,
  kind: Invoice['kind'],
  issueDate: string,
): Pick<Invoice, 'issue_date' | 'payment_terms_days' | 'due_date'> {
  if (kind === 'credit_note') return { issue_date: issueDate, payment_terms_days: null, due_date: null };
  const terms = invoice.payment_terms_days ?? PAYMENT_TERMS_DAYS_DEFAULT;
  return { issue_date: issueDate, payment_terms_days: terms, due_date: addDays(issueDate, terms) };
}

/** "Net 30"; "Due on receipt" at zero days. */
export const paymentTermsText = (days: number): string => (days === 0 ? 'Due on receipt' : `Net ${days}`);

/** An address as printed lines: street lines, then "postal code city", then "region country" (what is there). */
export function addressLines(address: PostalAddress | null | undefined): string[] {
  if (!address) return [];
  const cityLine = [address.postal_code, address.city].filter((part) => part !== undefined && part !== '').join(' ');
  const regionLine = [address.region, address.country].filter((part) => part !== undefined && part !== '').join(', ');
  return [...address.lines, cityLine, regionLine].filter((line) => line !== '');
}
