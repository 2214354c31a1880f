// Xero sales documents, contacts, allocations and payments, in the Accounting API's shapes (Xero's OpenAPI
// description, ../shared/specs/xero/xero_accounting.yaml, is the contract; test/connectors/xero-contract.test.ts
// validates every body built here against its request schema):
//   Invoices    POST /api.xro/2.0/Invoices                    {"Invoices":[{"Type":"ACCREC", "Contact", "LineItems", ...}]}
//   CreditNotes POST /api.xro/2.0/CreditNotes                 {"CreditNotes":[{"Type":"ACCRECCREDIT", ...}]}
//   Void        POST /api.xro/2.0/Invoices/{InvoiceID}         {"Invoices":[{"InvoiceID","Status":"VOIDED"}]}
//   Allocations PUT  /api.xro/2.0/CreditNotes/{id}/Allocations {"Allocations":[{"Amount","Invoice":{"InvoiceID"},"Date"}]}
//   Contacts    PUT  /api.xro/2.0/Contacts, POST /Contacts/{ContactID}
//   Payments    PUT  /api.xro/2.0/Payments                    {"Payments":[{"Invoice","Account":{"Code"},"Date","Amount","Reference"}]}
//               GET  /api.xro/2.0/Payments                    If-Modified-Since header, `page` (up to 100 a page), `where`, `order`
// Every code in a body (AccountCode, ItemCode, TaxType, CurrencyCode, the contact) comes from the connection's
// mappings, resolved by the caller (client.ts): nothing here defaults a code.
import { Decimal, decimalText, formatMajor } from '../../domain/money.js';
import { addDays } from '../../domain/invoice-terms.js';
import type { SalesDocument } from '../../post/erp-documents.js';
import type { ErpPayment } from '../../settle/poll.js';
import { decimalLiteral, stringifyWithDecimals } from '../json-decimal.js';

export const XERO_DUE_DAYS_DEFAULT = 30;
/** Payments a page, as Xero documents it for GET Payments (`page`). */
export const XERO_PAYMENTS_PAGE_SIZE = 100;
/** Xero's documented maximum lengths: Reference 255, line Description 4000, contact Name 255. */
const REFERENCE_MAX = 255;
const DESCRIPTION_MAX = 4000;
const NAME_MAX = 255;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isXeroId = (text: string) => UUID.test(text);

/** A Xero ContactID is a UUID; any other ERP customer id is the contact's ContactNumber (Xero's id for external systems). */
export const xeroContact = (erpCustomerId: string) =>
  isXeroId(erpCustomerId) ? { ContactID: erpCustomerId } : { ContactNumber: erpCustomerId };

/** Xero's documented maximum lengths of an Address (AddressLine1-4 500, City and Region 255, PostalCode 50). */
const ADDRESS_LINE_MAX = 500;
const CITY_MAX = 255;
const POSTAL_CODE_MAX = 50;
const TAX_NUMBER_MAX = 50;

/** Accrue's outbox keys (`out:v1:<target>:<document>`, src/post/journals.ts): a Xero Reference holding one is Accrue's own. */
export const isAccrueKey = (reference: string | undefined) => /^out:v\d+:/.test(reference ?? '');

/** The contact Accrue keeps in Xero for a customer: ContactNumber = Accrue's customer id, name, billing address, tax number. */
export interface XeroContactDetails {
  ContactNumber: string;
  Name: string;
  Addresses?: Array<Record<string, string>>;
  TaxNumber?: string;
  DefaultCurrency: string;
}

/** The contact details of a sales document's customer, as the invoice names them (a POBOX address, the one Xero prints). */
export function contactDetails(document: SalesDocument): XeroContactDetails {
  const address = document.buyer?.address;
  const taxNumber = document.buyer?.tax_id;
  return {
    ContactNumber: document.customer,
    Name: (document.buyer?.name ?? document.customer).slice(0, NAME_MAX),
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
    DefaultCurrency: document.currency,
  };
}

/** Create (no ContactID) or update (with it) one contact. */
export function contactBody(details: XeroContactDetails, contactId?: string): string {
  return stringifyWithDecimals({ Contacts: [{ ...(contactId ? { ContactID: contactId } : {}), ...details }] });
}

/** What Xero holds of a contact, read back for comparison. */
export interface XeroContactRecord {
  ContactID: string;
  ContactNumber?: string;
  Name?: string;
  ContactStatus?: string;
  TaxNumber?: string;
  DefaultCurrency?: string;
  Addresses?: Array<Record<string, string>>;
}

/** The fields Accrue owns differ from Xero's copy (an empty address Xero pads in is no address). */
export function contactDiffers(held: XeroContactRecord, wanted: XeroContactDetails): boolean {
  const address = (list: Array<Record<string, string>> | undefined) => {
    const pobox = (list ?? []).find((a) => a.AddressType === 'POBOX');
    if (!pobox) return '';
    const filled = Object.entries(pobox).filter(([, v]) => v !== '' && v !== undefined && v !== null);
    return JSON.stringify(filled.sort(([a], [b]) => (a < b ? -1 : 1)));
  };
  return (
    (held.Name ?? '') !== wanted.Name ||
    (held.TaxNumber ?? '') !== (wanted.TaxNumber ?? '') ||
    (held.DefaultCurrency ?? '') !== wanted.DefaultCurrency ||
    address(held.Addresses) !== address(wanted.Addresses)
  );
}

/** The codes a document's lines use in Xero, resolved from the connection's mappings. */
export interface XeroLineCodes {
  AccountCode: string;
  ItemCode?: string;
  TaxType?: string; // absent when the document has no tax (LineAmountTypes NoTax)
}

/**
 * An ACCREC invoice or ACCRECCREDIT credit note: Accrue's number as InvoiceNumber / CreditNoteNumber, our key in
 * Reference (how a lost response is found again), one line item per product on its mapped AccountCode, amounts
 * exclusive of tax with Accrue's tax per line (TaxAmount), as exact decimal literals. A document without tax is
 * NoTax, so Xero applies no account default tax rate.
 */
/**
 * Xero's CurrencyRate of a document booked from another currency: units of the document's currency per one unit of
 * the organisation's base currency (the inverse of Accrue's rate, which is functional per transaction unit), to the
 * 6 decimal places Xero keeps, half-even. Absent for a document in the base currency: Xero would otherwise take the
 * XE.com rate of the day, and its books would not match the journal Accrue booked.
 */
export function xeroCurrencyRate(document: Pick<SalesDocument, 'fx'>): string | undefined {
  if (!document.fx) return undefined;
  return decimalText(new Decimal(1).div(document.fx.rate).toDecimalPlaces(6, Decimal.ROUND_HALF_EVEN));
}

export function salesDocumentBody(
  key: string,
  document: SalesDocument,
  resolved: { contactId: string; currencyCode: string; lines: XeroLineCodes[]; dueDays?: number },
): string {
  const money = (minor: bigint) => decimalLiteral(formatMajor(minor, document.currency));
  const taxed = document.tax !== null;
  const common = {
    Contact: { ContactID: resolved.contactId },
    Date: document.date,
    Reference: key.slice(0, REFERENCE_MAX),
    CurrencyCode: resolved.currencyCode,
    ...(xeroCurrencyRate(document) !== undefined ? { CurrencyRate: decimalLiteral(xeroCurrencyRate(document)!) } : {}),
    Status: 'AUTHORISED',
    LineAmountTypes: taxed ? 'Exclusive' : 'NoTax',
    LineItems: document.lines.map((line, i) => ({
      Description: line.description.slice(0, DESCRIPTION_MAX),
      Quantity: 1,
      UnitAmount: money(line.amount_minor),
      LineAmount: money(line.amount_minor),
      AccountCode: resolved.lines[i]!.AccountCode,
      ...(resolved.lines[i]!.ItemCode ? { ItemCode: resolved.lines[i]!.ItemCode } : {}),
      ...(taxed ? { TaxType: resolved.lines[i]!.TaxType, TaxAmount: money(line.tax_minor) } : {}),
    })),
  };
  if (document.kind === 'invoice') {
    return stringifyWithDecimals({
      Invoices: [
        {
          Type: 'ACCREC',
          InvoiceNumber: document.number,
          DueDate: document.due_date ?? addDays(document.date, resolved.dueDays ?? XERO_DUE_DAYS_DEFAULT),
          ...common,
        },
      ],
    });
  }
  return stringifyWithDecimals({ CreditNotes: [{ Type: 'ACCRECCREDIT', CreditNoteNumber: document.number, ...common }] });
}

/**
 * The void of an invoice: POST /Invoices/{InvoiceID} with the invoice's id and Status VOIDED, and nothing else (Xero
 * voids an AUTHORISED invoice with no payments or credit notes allocated; see docs/connectors.md).
 */
export const voidInvoiceBody = (invoiceId: string) => stringifyWithDecimals({ Invoices: [{ InvoiceID: invoiceId, Status: 'VOIDED' }] });

/** One allocation of a credit note to the invoice it corrects. `amount` is an exact decimal string. */
export const allocationBody = (invoiceId: string, amount: string, date: string) =>
  stringifyWithDecimals({ Allocations: [{ Amount: decimalLiteral(amount), Invoice: { InvoiceID: invoiceId }, Date: date }] });

/** A receipt applied to an invoice, paid into the mapped bank account, with our key as Reference. */
export const paymentBody = (key: string, invoiceId: string, accountCode: string, date: string, amount: string) =>
  stringifyWithDecimals({
    Payments: [
      {
        Invoice: { InvoiceID: invoiceId },
        Account: { Code: accountCode },
        Date: date,
        Amount: decimalLiteral(amount),
        Reference: key.slice(0, REFERENCE_MAX),
      },
    ],
  });

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
  Reference?: string;
  UpdatedDateUTC?: string;
  Invoice?: { InvoiceID?: string; InvoiceNumber?: string; CurrencyCode?: string; Type?: string };
}

/**
 * One Xero payment as an ERP payment; null for payments that are not receipts against a sales invoice, and for the
 * payments Accrue pushed itself (Reference = an Accrue key): those were applied in Accrue when they were received.
 */
export function paymentFromXero(record: XeroPaymentRecord): ErpPayment | null {
  if (record.PaymentType !== undefined && record.PaymentType !== 'ACCRECPAYMENT') return null;
  if (isAccrueKey(record.Reference)) return null;
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
