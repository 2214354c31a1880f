// NetSuite sales documents and customer payments, as the REST record and SuiteQL APIs take and give them.
//   invoice / creditMemo: PUT /services/rest/record/v1/{invoice|creditMemo}/eid:{externalId} (upsert by external ID),
//     item lines (`item.items[]`) referencing items by external ID, tax as SuiteTax tax details with the override flag
//     (REST web services support SuiteTax only, not legacy tax).
//   customerPayment: read through SuiteQL (POST /services/rest/query/v1/suiteql), joining each payment to the
//     invoices it applies to through PreviousTransactionLineLink, filtered on lastmodifieddate.
// What is from Oracle's documentation and what is not is listed in docs/connectors.md.
import { Decimal, decimalText, formatMajor } from '../../domain/money.js';
import type { SalesDocument } from '../../post/erp-documents.js';
import type { ErpPayment } from '../../settle/poll.js';
import { decimalLiteral, stringifyWithDecimals } from '../json-decimal.js';

export interface NetSuiteSalesOptions {
  subsidiaryByEntity: Record<string, string>;
  /** Tax code (by external ID) per tax jurisdiction of the catalog; default: the jurisdiction itself. */
  taxCodeByJurisdiction?: Record<string, string>;
  /** The item (by external ID) whose income account is deferred revenue, for a credit note's restored credits. */
  creditsRestoredItem?: string;
}

export const NETSUITE_RECORD_TYPE = { invoice: 'invoice', credit_note: 'creditMemo' } as const;

/** Memo and description fields hold at most 999 characters in NetSuite's UI; longer text is cut, never refused. */
const TEXT_MAX = 999;
const itemExternalId = (id: string) => id.replace(/[^A-Za-z0-9_-]/g, '-');

/** NetSuite's address subrecord holds three street lines; a fourth joins the third. */
const ADDRESS_LINES = 3;

/**
 * The buyer's billing address as the transaction's `billingAddress` subrecord (addressee, addr1-3, city, state, zip,
 * country by its ISO code), so the document carries the address the invoice was issued to, whatever the customer
 * record says later.
 */
export function billingAddressOf(document: SalesDocument): Record<string, unknown> | undefined {
  const buyer = document.buyer;
  if (!buyer?.address) return undefined;
  const { lines, city, region, postal_code: zip, country } = buyer.address;
  const street = [...lines.slice(0, ADDRESS_LINES - 1), lines.slice(ADDRESS_LINES - 1).join(', ')].filter((line) => line !== '');
  return {
    addressee: buyer.name.slice(0, TEXT_MAX),
    ...Object.fromEntries(street.map((line, i) => [`addr${i + 1}`, line.slice(0, TEXT_MAX)])),
    city,
    ...(region ? { state: region } : {}),
    ...(zip ? { zip } : {}),
    country: { id: country },
  };
}

/** The invoice or creditMemo record, as JSON text with the amounts written as exact decimal literals. */
export function salesRecordBody(document: SalesDocument, options: NetSuiteSalesOptions, externalId: string): string {
  const money = (minor: bigint) => decimalLiteral(formatMajor(minor, document.currency));
  const reference = (index: number) => `accrue-${index + 1}`;
  const taxCode = document.tax ? (options.taxCodeByJurisdiction?.[document.tax.jurisdiction] ?? document.tax.jurisdiction) : undefined;
  const record = {
    externalId,
    tranId: document.number,
    tranDate: document.date,
    // The invoice's own due date (issue date + payment terms) rather than one NetSuite would derive from its terms.
    ...(document.kind === 'invoice' && document.due_date ? { dueDate: document.due_date } : {}),
    entity: { externalId: document.customer_erp_id },
    subsidiary: { id: options.subsidiaryByEntity[document.legal_entity] ?? document.legal_entity },
    currency: { refName: document.currency },
    memo: (document.corrects ? `${document.memo} (corrects ${document.corrects})` : document.memo).slice(0, TEXT_MAX),
    ...(billingAddressOf(document) ? { billingAddress: billingAddressOf(document) } : {}),
    item: {
      items: document.lines.map((line, index) => ({
        item: { externalId: itemExternalId(line.product ?? options.creditsRestoredItem ?? 'accrue-credits-restored') },
        description: line.description.slice(0, TEXT_MAX),
        quantity: 1,
        rate: money(line.amount_minor),
        amount: money(line.amount_minor),
        ...(document.tax ? { taxDetailsReference: reference(index) } : {}),
      })),
    },
    ...(document.tax
      ? {
          // Accrue computed the tax (rounded once per invoice); the override keeps SuiteTax from computing its own.
          taxDetailsOverride: true,
          taxDetails: {
            items: document.lines.map((line, index) => ({
              taxDetailsReference: reference(index),
              taxCode: { externalId: taxCode },
              taxBasis: money(line.amount_minor),
              taxRate: decimalLiteral(decimalText(new Decimal(document.tax!.rate).times(100))),
              taxAmount: money(line.tax_minor),
            })),
          },
        }
      : {}),
  };
  return stringifyWithDecimals(record);
}

/** SuiteQL answers at most 1000 rows a page. */
export const SUITEQL_PAGE_MAX = 1000;

/** SuiteQL text timestamps: `YYYY-MM-DD HH24:MI:SS`, the only shape a cursor may have before it enters a query. */
export const SUITEQL_TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

/**
 * Customer payments modified at or after `since`, one row per (payment, invoice it applies to), oldest first.
 * Amounts and dates come back as text (TO_CHAR), never as JSON floats.
 */
export function paymentsQuery(since: string | null): string {
  if (since !== null && !SUITEQL_TIMESTAMP.test(since)) throw new Error(`not a SuiteQL timestamp: ${JSON.stringify(since)}`);
  return [
    "SELECT p.id AS payment_id, TO_CHAR(p.trandate, 'YYYY-MM-DD') AS payment_date,",
    "TO_CHAR(p.lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS modified_at, cur.symbol AS currency,",
    'i.id AS invoice_id, i.externalid AS invoice_external_id, i.tranid AS invoice_number, TO_CHAR(ABS(l.foreignamount)) AS amount',
    'FROM transaction p',
    "JOIN previoustransactionlinelink l ON l.nextdoc = p.id AND l.linktype = 'Payment'",
    'JOIN transaction i ON i.id = l.previousdoc',
    'JOIN currency cur ON cur.id = p.currency',
    `WHERE p.type = 'CustPymt'${since === null ? '' : ` AND p.lastmodifieddate >= TO_TIMESTAMP('${since}', 'YYYY-MM-DD HH24:MI:SS')`}`,
    'ORDER BY p.lastmodifieddate, p.id, i.id',
  ].join(' ');
}

// Oracle's TO_CHAR drops the leading zero (.5).
const decimalFromText = (text: string) => text.trim().replace(/^(-?)\./, '$10.');

/** One SuiteQL row as an ERP payment; a row missing what matching needs is refused by name. */
export function paymentFromRow(row: Record<string, unknown>): ErpPayment {
  const text = (field: string) => {
    const value = row[field];
    return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null;
  };
  const paymentId = text('payment_id');
  const invoiceId = text('invoice_id');
  const amount = text('amount');
  const modifiedAt = text('modified_at');
  if (!paymentId || !invoiceId || !amount || !modifiedAt || !SUITEQL_TIMESTAMP.test(modifiedAt)) {
    throw new Error(`SuiteQL payment row without payment_id, invoice_id, amount or modified_at: ${JSON.stringify(row)}`);
  }
  return {
    // One NetSuite payment may pay several invoices: each application is a payment of its own in Accrue.
    id: `${paymentId}/${invoiceId}`,
    invoice_reference: invoiceId,
    invoice_key: text('invoice_external_id'),
    invoice_number: text('invoice_number'),
    amount: decimalFromText(amount),
    currency: text('currency') ?? '',
    received_on: text('payment_date') ?? '',
    modified_at: modifiedAt,
    deleted: false,
  };
}
