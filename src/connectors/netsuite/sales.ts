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
import type { MappingKind, MappingResolver } from '../../domain/erp.js';
import { suiteqlText } from './suiteql.js';

// Oracle's documentation used here:
//   - REST Web Services Supported Records / Limitations of REST Web Services: "REST web services do not support legacy
//     tax features. To work with taxation through REST web services, you must have the SuiteTax feature enabled."
//     https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/chapter_1558962745.html
//   - Customer Payment (REST): body fields customer, account, currency, payment and the `apply` sublist of
//     { doc: { id }, apply: true, amount } lines. https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/article_0224093711.html
//   - Deposit Application (REST): apply-sublist lines are keyed by `doc` (the transaction applied to).
//     https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/article_0830101547.html
//   - Nexus, Tax Type, Sales Tax Item (tax code) records: SuiteTax only.
//     https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/article_0811020103.html,
//     https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/article_0814115234.html,
//     https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/article_0814121722.html
//   - Customer (REST): subsidiary, currency, companyName, the addressBook sublist.
//     https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/article_161581923822.html

/**
 * A mapping target as a NetSuite record reference: an internal id (`{ id }`), or `eid:<external id>` for a record
 * referenced by its external ID (`{ externalId }`), as the REST record service accepts both.
 */
export const recordRef = (target: string): { id: string } | { externalId: string } =>
  target.startsWith('eid:') ? { externalId: target.slice(4) } : { id: target };

/** The references a request body carries, so an ERP refusal can be traced to the mapping (and field) it came from. */
export interface UsedReference {
  kind: MappingKind;
  source: string;
  target: string;
  field: string; // the JSON path in the body, e.g. `item.items[2].item`
}

/** Resolves a mapping and remembers where it went in the body. */
export class References {
  readonly used: UsedReference[] = [];
  constructor(
    private readonly resolver: MappingResolver,
    private readonly on: string,
  ) {}
  ref(kind: MappingKind, source: string, field: string) {
    const target = this.resolver.resolve(kind, source, this.on, field);
    this.used.push({ kind, source, target, field });
    return recordRef(target);
  }
  /** A reference already resolved elsewhere (a customer created or linked by external ID). */
  note(kind: MappingKind, source: string, target: string, field: string) {
    this.used.push({ kind, source, target, field });
    return recordRef(target);
  }
}

/** The source id the credits-restored line of a credit note maps from (kind 'item'): it has no product. */
export const CREDITS_RESTORED_ITEM = 'accrue-credits-restored';

export const NETSUITE_RECORD_TYPE = { invoice: 'invoice', credit_note: 'creditMemo' } as const;

/** Memo and description fields hold at most 999 characters in NetSuite's UI; longer text is cut, never refused. */
export const TEXT_MAX = 999;

/** NetSuite's address subrecord holds three street lines; a fourth joins the third. */
const ADDRESS_LINES = 3;

/**
 * The buyer's billing address as the transaction's `billingAddress` subrecord (addressee, addr1-3, city, state, zip,
 * country by its ISO code), so the document carries the address the invoice was issued to, whatever the customer
 * record says later.
 */
export function billingAddressOf(document: Pick<SalesDocument, 'buyer'>): Record<string, unknown> | undefined {
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

/**
 * The invoice or creditMemo record, as JSON text with the amounts written as exact decimal literals. Every reference
 * comes from the connection's mappings (no silent default): subsidiary, currency, items, and SuiteTax's tax type,
 * tax code (per line detail) and nexus (body) for the document's jurisdiction. `entity` is the customer reference
 * (resolved or created by the caller), `apply` the invoice a credit memo applies to.
 */
export function salesRecordBody(
  document: SalesDocument,
  refs: References,
  externalId: string,
  entity: { id: string } | { externalId: string },
  apply?: { invoiceId: string; amount: string },
): string {
  const money = (minor: bigint) => decimalLiteral(formatMajor(minor, document.currency));
  const reference = (index: number) => `accrue-${index + 1}`;
  const subsidiary = refs.ref('subsidiary', document.legal_entity, 'subsidiary');
  const currency = refs.ref('currency', document.currency, 'currency');
  const items = document.lines.map((line, index) => ({
    item: refs.ref('item', line.product ?? CREDITS_RESTORED_ITEM, `item.items[${index}].item`),
    description: line.description.slice(0, TEXT_MAX),
    quantity: 1,
    rate: money(line.amount_minor),
    amount: money(line.amount_minor),
    ...(document.tax ? { taxDetailsReference: reference(index) } : {}),
  }));
  const tax = document.tax;
  const taxRefs = tax
    ? {
        nexus: refs.ref('nexus', tax.jurisdiction, 'nexus'),
        taxType: refs.ref('tax_type', tax.jurisdiction, 'taxDetails.items[0].taxType'),
        taxCode: refs.ref('tax_code', tax.jurisdiction, 'taxDetails.items[0].taxCode'),
      }
    : undefined;
  const record = {
    externalId,
    tranId: document.number,
    tranDate: document.date,
    // The invoice's own due date (issue date + payment terms) rather than one NetSuite would derive from its terms.
    ...(document.kind === 'invoice' && document.due_date ? { dueDate: document.due_date } : {}),
    entity,
    subsidiary,
    currency,
    // Booked from another currency: NetSuite's exchangeRate is base currency units per transaction unit, as Accrue's.
    ...(document.fx ? { exchangeRate: decimalLiteral(document.fx.rate) } : {}),
    memo: (document.corrects ? `${document.memo} (corrects ${document.corrects})` : document.memo).slice(0, TEXT_MAX),
    ...(billingAddressOf(document) ? { billingAddress: billingAddressOf(document) } : {}),
    item: { items },
    ...(tax && taxRefs
      ? {
          nexus: taxRefs.nexus,
          // Accrue computed the tax (rounded once per invoice); the override keeps SuiteTax from computing its own.
          taxDetailsOverride: true,
          taxDetails: {
            items: document.lines.map((line, index) => ({
              taxDetailsReference: reference(index),
              taxType: taxRefs.taxType,
              taxCode: taxRefs.taxCode,
              taxBasis: money(line.amount_minor),
              taxRate: decimalLiteral(decimalText(new Decimal(tax.rate).times(100))),
              taxAmount: money(line.tax_minor),
            })),
          },
        }
      : {}),
    // A credit memo applied to the invoice it corrects (its `apply` sublist, keyed by the invoice's internal id).
    ...(apply ? { apply: { items: [{ doc: { id: apply.invoiceId }, apply: true, amount: decimalLiteral(apply.amount) }] } } : {}),
  };
  return stringifyWithDecimals(record);
}

/** Accrue's idempotency keys (src/post/journals.ts outboxKey: `out:v1:<target>:<document>`) as NetSuite stores them. */
export const ACCRUE_EXTERNAL_ID_PREFIX = 'out-v1-';

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
    // Payments Accrue pushed itself (externalId = an outbox key, `out:v1:...` stored as `out-v1-...`) are applied already.
    `WHERE p.type = 'CustPymt' AND (p.externalid IS NULL OR p.externalid NOT LIKE ${suiteqlText(`${ACCRUE_EXTERNAL_ID_PREFIX}%`)})${since === null ? '' : ` AND p.lastmodifieddate >= TO_TIMESTAMP(${suiteqlText(since)}, 'YYYY-MM-DD HH24:MI:SS')`}`,
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
