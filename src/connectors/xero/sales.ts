// Xero sales documents and payments, in the Accounting API's shapes (docs/connectors.md says which parts are from
// Xero's documentation):
//   Invoices    POST /api.xro/2.0/Invoices     {"Invoices":[{"Type":"ACCREC", "Contact", "LineItems", ...}]}
//   CreditNotes POST /api.xro/2.0/CreditNotes  {"CreditNotes":[{"Type":"ACCRECCREDIT", ...}]}
//   Payments    GET  /api.xro/2.0/Payments     If-Modified-Since header, `page` (up to 100 a page), `where`, `order`
import { formatMajor } from '../../domain/money.js';
import { addDays } from '../../domain/invoice-terms.js';
import type { SalesDocument } from '../../post/erp-documents.js';
import type { ErpPayment } from '../../settle/poll.js';
import { decimalLiteral, stringifyWithDecimals } from '../json-decimal.js';

export interface XeroSalesOptions {
  /** Xero TaxType per tax jurisdiction of the catalog (e.g. DE -> OUTPUT2); default OUTPUT, or NONE at a zero rate. */
  taxTypeByJurisdiction?: Record<string, string>;
  /**
   * Days from the document date to its due date (Xero requires a due date on an AUTHORISED invoice), used only for an
   * invoice stored before invoices carried their own due date; otherwise DueDate is the invoice's.
   */
  dueDays?: number;
}

export const XERO_DUE_DAYS_DEFAULT = 30;
/** Payments a page, as Xero documents it for GET Payments (`page`). */
export const XERO_PAYMENTS_PAGE_SIZE = 100;
/** Xero's documented maximum lengths: Reference 255, line Description 4000. */
const REFERENCE_MAX = 255;
const DESCRIPTION_MAX = 4000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A Xero ContactID is a UUID; any other ERP customer id is the contact's ContactNumber (Xero's id for external systems). */
export const xeroContact = (erpCustomerId: string) => (UUID.test(erpCustomerId) ? { ContactID: erpCustomerId } : { ContactNumber: erpCustomerId });

/** Xero's documented maximum lengths of an Address (AddressLine1-4 500, City and Region 255, PostalCode 50). */
const ADDRESS_LINE_MAX = 500;
const CITY_MAX = 255;
const POSTAL_CODE_MAX = 50;
const TAX_NUMBER_MAX = 50;

/**
 * The Contact of a sales document: the ERP customer id, and the buyer's billing address (a POBOX address, the one
 * Xero prints on invoices) and tax number as the invoice names them, where it names them.
 */
export function xeroDocumentContact(document: SalesDocument): Record<string, unknown> {
  const address = document.buyer?.address;
  const taxNumber = document.buyer?.tax_id;
  return {
    ...xeroContact(document.customer_erp_id),
    ...(address
      ? {
          Addresses: [
            {
              AddressType: 'POBOX',
              ...Object.fromEntries(address.lines.slice(0, 4).map((line, i) => [`AddressLine${i + 1}`, line.slice(0, ADDRESS_LINE_MAX)])),
              City: address.city.slice(0, CITY_MAX),
              ...(address.region ? { Region: address.region.slice(0, CITY_MAX) } : {}),
              ...(address.postal_code ? { PostalCode: address.postal_code.slice(0, POSTAL_CODE_MAX) } : {}),
              Country: address.country,
            },
          ],
        }
      : {}),
    ...(taxNumber ? { TaxNumber: taxNumber.slice(0, TAX_NUMBER_MAX) } : {}),
  };
}

/**
 * An ACCREC invoice or ACCRECCREDIT credit note: Accrue's number as InvoiceNumber / CreditNoteNumber, our key in
 * Reference (how a lost response is found again), one line item per product on its revenue AccountCode, amounts
 * exclusive of tax with Accrue's tax per line (TaxAmount), as exact decimal literals.
 */
export function salesDocumentBody(key: string, document: SalesDocument, options: XeroSalesOptions = {}): string {
  const money = (minor: bigint) => decimalLiteral(formatMajor(minor, document.currency));
  const taxType = document.tax
    ? (options.taxTypeByJurisdiction?.[document.tax.jurisdiction] ?? (/^0(\.0*)?$/.test(document.tax.rate) ? 'NONE' : 'OUTPUT'))
    : 'NONE';
  const common = {
    Contact: xeroDocumentContact(document),
    Date: document.date,
    Reference: key.slice(0, REFERENCE_MAX),
    CurrencyCode: document.currency,
    Status: 'AUTHORISED',
    LineAmountTypes: 'Exclusive',
    LineItems: document.lines.map((line) => ({
      Description: line.description.slice(0, DESCRIPTION_MAX),
      Quantity: 1,
      UnitAmount: money(line.amount_minor),
      LineAmount: money(line.amount_minor),
      AccountCode: line.account,
      TaxType: taxType,
      TaxAmount: money(line.tax_minor),
    })),
  };
  if (document.kind === 'invoice') {
    return stringifyWithDecimals({ Invoices: [{ Type: 'ACCREC', InvoiceNumber: document.number, DueDate: document.due_date ?? addDays(document.date, options.dueDays ?? XERO_DUE_DAYS_DEFAULT), ...common }] });
  }
  return stringifyWithDecimals({ CreditNotes: [{ Type: 'ACCRECCREDIT', CreditNoteNumber: document.number, ...common }] });
}

/** `/Date(1764460800000+0000)/` (Xero's JSON dates) as an ISO timestamp; an ISO text passes through. */
export function xeroTimestamp(value: unknown): string {
  const text = String(value ?? '');
  const ms = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/.exec(text)?.[1];
  if (ms === undefined) return text;
  return new Date(Number(ms)).toISOString();
}

/** If-Modified-Since takes a UTC timestamp `yyyy-mm-ddThh:mm:ss`; seconds are floored, so the window only widens. */
export const ifModifiedSince = (isoTimestamp: string) => isoTimestamp.slice(0, 19);

export interface XeroPaymentRecord {
  PaymentID?: string;
  Date?: string;
  Amount?: string; // read as literal text (parseJsonDecimals)
  Status?: string;
  PaymentType?: string;
  UpdatedDateUTC?: string;
  Invoice?: { InvoiceID?: string; InvoiceNumber?: string; CurrencyCode?: string; Type?: string };
}

/** One Xero payment as an ERP payment; null for payments that are not receipts against a sales invoice. */
export function paymentFromXero(record: XeroPaymentRecord): ErpPayment | null {
  if (record.PaymentType !== undefined && record.PaymentType !== 'ACCRECPAYMENT') return null;
  if (!record.PaymentID || !record.UpdatedDateUTC || record.Amount === undefined) {
    throw new Error(`Xero payment without PaymentID, UpdatedDateUTC or Amount: ${JSON.stringify(record)}`);
  }
  return {
    id: record.PaymentID,
    invoice_reference: record.Invoice?.InvoiceID ?? null,
    invoice_key: null,
    invoice_number: record.Invoice?.InvoiceNumber ?? null,
    amount: record.Amount.replace(/^-/, ''),
    currency: record.Invoice?.CurrencyCode ?? '',
    received_on: xeroTimestamp(record.Date).slice(0, 10),
    modified_at: xeroTimestamp(record.UpdatedDateUTC),
    deleted: record.Status === 'DELETED',
  };
}
