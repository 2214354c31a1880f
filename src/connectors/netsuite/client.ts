// NetSuite SuiteTalk REST: records upserted by external ID, so NetSuite itself honours our idempotency key.
//   PUT /services/rest/record/v1/{type}/eid:{externalId} creates or updates; GET on the same path reads; errors carry
//   `o:errorDetails` with `o:errorCode` (Error Handling in REST Web Services,
//   https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156570709583.html); the account's
//   concurrency limit is shared by every web services and RESTlet request (Concurrency Governance,
//   https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/subsect_1559222360.html).
//   A void credits the invoice in full: POST /services/rest/record/v1/invoice/{id}/!transform/creditMemo with the body
//   fields to set (externalId, tranDate, memo), 204 with the new record's Location (Transforming Records,
//   https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_157901123882.html); the credit memo
//   NetSuite makes from an invoice copies its lines and applies to it.
// Every request goes through the connection's ErpCaller (src/connectors/caller.ts): it authorizes (TBA or
// bearer), shares the limits and refreshes once after a 401. Every reference comes from the connection's mappings.
import type { Journal } from '../../domain/model.js';
import { Decimal, decimalText, formatMajor } from '../../domain/money.js';
import { correlationHeaders } from '../../post/correlation.js';
import {
  ERP_DOCUMENTS_MAX,
  TargetError,
  type ErpDocument,
  type ErpTarget,
  type PostedReference,
  type TargetLimits,
} from '../../post/target.js';
import { parsePeriod } from '../../meter/period.js';
import type { SalesDocument, VoidDocument } from '../../post/erp-documents.js';
import type { ErpPayment, PaymentSource } from '../../settle/poll.js';
import { decimalLiteral, parseJsonDecimals, stringifyWithDecimals } from '../json-decimal.js';
import {
  MappingMissing,
  PeriodLocked,
  ReauthorizationRequired,
  type ConnectionSettings,
  type MappingKind,
  type MappingResolver,
  type MappingSource,
  type PaymentDocument,
  type ReferenceChecker,
  type ReferenceState,
} from '../../domain/erp.js';
import type { ErpCaller } from '../caller.js';
import { baseUrl, concurrencyOf } from '../connections.js';
import { readAnswer, retryAfterMs } from '../http.js';
import {
  billingAddressOf,
  NETSUITE_RECORD_TYPE,
  TEXT_MAX as NETSUITE_TEXT_MAX,
  paymentFromRow,
  paymentsQuery,
  References,
  salesRecordBody,
  SUITEQL_PAGE_MAX,
} from './sales.js';
import { suiteqlText } from './suiteql.js';

export { suiteqlText } from './suiteql.js';

export interface NetSuiteTargetOptions {
  settings: ConnectionSettings;
  /** Every request goes through it: shared limits, TBA or bearer authorization, one refresh after a 401. */
  caller: ErpCaller;
  mappings: MappingSource;
  limits?: Partial<TargetLimits>;
  timeoutMs?: number;
  /** SuiteQL rows per page when polling payments (at most 1000). */
  paymentsPageSize?: number;
  /** The catalog's cash account (the `cash` role of paymentJournal, src/domain/journal.ts): the source of a pushed payment's `account` mapping. */
  cashAccount?: (legalEntity: string) => string | undefined;
  /**
   * The Accrue customer id of a catalog ERP customer id (what journal lines carry): customer mappings are keyed by
   * Accrue's customer id (`accrue erp mappings import` checks them against the catalog), so a receivable line's
   * customer is looked up by it.
   */
  customerOf?: (erpCustomerId: string) => string | undefined;
}

/** NetSuite's concurrency is the account's (configuration `concurrency`, 5 by default); requests a minute are not limited by NetSuite. */
export const NETSUITE_DEFAULT_LIMITS: TargetLimits = { concurrency: 5, requestsPerMinute: 600 };

/** External IDs may hold letters, digits, underscore and hyphen only: `jrn:v1:invoice:inv_x` -> `jrn-v1-invoice-inv_x`. */
export const netsuiteExternalId = (key: string) => key.replace(/[^A-Za-z0-9_-]/g, '-');

/** SuiteQL answers at most 1000 rows a page. */
export const NETSUITE_SUITEQL_PAGE = 1000;

/** SuiteQL transaction types of what Accrue posts: journal entries, invoices and credit memos. */
export const NETSUITE_DOCUMENT_TYPES = { Journal: 'journal', CustInvc: 'invoice', CustCred: 'credit_note' } as const;

/**
 * The SuiteQL query behind listDocuments: journal entries, invoices and credit memos of one subsidiary dated in
 * [from, to), each with its amount as text (TO_CHAR, so none travels as a JSON float): a journal's debit total, an
 * invoice's or credit memo's total (tax included) in the transaction currency, and for those their tax: the sum of the
 * transaction's tax lines (transactionline.taxline = 'T', the lines SuiteTax books the tax on), in the same currency.
 */
export function journalListQuery(subsidiary: string, from: string, to: string): string {
  return [
    "SELECT t.id AS id, t.externalid AS externalid, t.type AS type, cur.symbol AS currency, TO_CHAR(t.trandate, 'YYYY-MM-DD') AS trandate,",
    "TO_CHAR(CASE WHEN t.type = 'Journal' THEN SUM(tl.debitforeignamount) ELSE ABS(t.foreigntotal) END) AS amount,",
    "TO_CHAR(ABS(SUM(CASE WHEN tl.taxline = 'T' THEN tl.foreignamount ELSE 0 END))) AS tax",
    'FROM transaction t JOIN transactionline tl ON tl.transaction = t.id JOIN currency cur ON cur.id = t.currency',
    `WHERE t.type IN ('Journal', 'CustInvc', 'CustCred') AND tl.subsidiary = ${suiteqlText(subsidiary)}`,
    `AND t.trandate >= TO_DATE(${suiteqlText(from)}, 'YYYY-MM-DD') AND t.trandate < TO_DATE(${suiteqlText(to)}, 'YYYY-MM-DD')`,
    'GROUP BY t.id, t.externalid, t.type, cur.symbol, t.trandate, t.foreigntotal ORDER BY t.id',
  ].join(' ');
}

// Oracle's TO_CHAR drops the leading zero (.5, -.5).
const decimalFromText = (text: string) => text.replace(/^(-?)\./, (_m, sign: string) => `${sign}0.`);

/** The journalEntry record: subsidiary, currency, each line's account and customer from the connection's mappings. */
export function journalEntryRecord(
  journal: Journal,
  refs: References,
  externalId: string,
  entityOf: (customer: string, field: string) => { id: string } | { externalId: string },
) {
  const currency = journal.lines[0]?.currency ?? '';
  return {
    externalId,
    tranDate: journal.posting_date,
    memo: journal.memo.slice(0, 999),
    subsidiary: refs.ref('subsidiary', journal.legal_entity, 'subsidiary'),
    currency: refs.ref('currency', currency, 'currency'),
    line: {
      items: journal.lines.map((l, i) => ({
        account: refs.ref('account', l.account, `line.items[${i}].account`),
        ...(l.debit_minor > 0n
          ? { debit: decimalLiteral(formatMajor(l.debit_minor, l.currency)) }
          : { credit: decimalLiteral(formatMajor(l.credit_minor, l.currency)) }),
        ...(l.customer ? { entity: entityOf(l.customer, `line.items[${i}].entity`) } : {}),
        ...(l.memo ? { memo: l.memo.slice(0, 999) } : {}),
      })),
    },
  };
}

/** The SuiteQL table of each mapping kind, for `erp check` (SuiteTax: tax codes are salestaxitem records). */
const REFERENCE_TABLE: Record<MappingKind, string> = {
  subsidiary: 'subsidiary',
  account: 'account',
  item: 'item',
  currency: 'currency',
  customer: 'customer',
  tax_code: 'salestaxitem',
  tax_type: 'taxtype',
  nexus: 'nexus',
};

/**
 * Whether a connection's account has SuiteTax, learned once per connection (per process) and shared by every target
 * built for it: 'legacy' refuses taxed documents at once, without a request.
 */
const taxModeOf = new Map<string, 'suitetax' | 'legacy'>();

/**
 * The refusal of a taxed document on an account without SuiteTax. Oracle: "REST web services do not support legacy tax
 * features" (https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/subsect_1544786455.html); SOAP web services
 * keep the legacy tax records (Sales Tax Item: add, update, upsert, https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_N3754277.html),
 * and CSV import takes transactions with legacy tax codes.
 */
export function legacyTaxRefusal(connection: string, detail: string): TargetError {
  return new TargetError(
    `NetSuite connection ${connection}: the account uses legacy tax, and NetSuite's REST web services support SuiteTax only ` +
      `("REST web services do not support legacy tax features", Oracle: REST Web Services Supported Records). Enable SuiteTax in the ` +
      `account, or post this connection's taxed invoices and credit memos through SOAP web services or CSV import instead (${detail})`,
    { permanent: true, code: 'netsuite_legacy_tax' },
  );
}

// A refusal about a reference. Oracle lists REST errors as `o:errorDetails` with `o:errorCode` and the optional
// `o:errorPath` into the request body (Error Handling in REST Web Services,
// https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156570709583.html). Reference refusals come as
// INVALID_KEY_OR_REF ("Invalid Field Value 99 for the following field: item") or, on older releases, USER_ERROR /
// INVALID_FLD_VALUE with "Invalid <field> reference key <value>" (the wording CSV import and SOAP also use).
const REFERENCE_CODES = new Set(['INVALID_KEY_OR_REF', 'INVALID_FLD_VALUE', 'USER_ERROR', 'INVALID_REF_KEY']);
const REFERENCE_DETAIL = /invalid field value (\S+) for the following field: (\S+)|invalid (\w+) reference key (\S+)/i;
// A date in a closed or locked period (Setup > Accounting > Manage Accounting Periods): NetSuite refuses to save it.
const PERIOD_DETAIL = /(period|posting period)[^.]*\b(closed|locked)\b|not within an open accounting period|closed period/i;
// The account's answer to a SuiteTax-only field or record when SuiteTax is off.
const LEGACY_TAX_DETAIL = /suitetax/i;

type ErrorBody = { title?: string; 'o:errorDetails'?: Array<{ detail?: string; 'o:errorCode'?: string; 'o:errorPath'?: string }> };

export class NetSuiteTarget implements ErpTarget, PaymentSource, ReferenceChecker {
  readonly name: string;
  readonly limits: TargetLimits;
  private readonly settings: ConnectionSettings;
  private readonly caller: ErpCaller;
  private readonly mappings: MappingSource;
  private readonly base: string;
  /** Customers upserted (create mode) or found (link mode) by this target: their internal ids. */
  private readonly customers = new Map<string, string>();

  constructor(private readonly options: NetSuiteTargetOptions) {
    this.settings = options.settings;
    this.caller = options.caller;
    this.mappings = options.mappings;
    this.name = options.settings.name;
    this.base = baseUrl(options.settings).replace(/\/+$/, '');
    this.limits = { ...NETSUITE_DEFAULT_LIMITS, concurrency: concurrencyOf(options.settings), ...options.limits };
  }

  private recordUrl(recordType: string, externalId: string) {
    return `${this.base}/services/rest/record/v1/${recordType}/eid:${encodeURIComponent(externalId)}`;
  }

  private call(method: string, url: string, body?: unknown): Promise<Response> {
    return this.caller.call(method, url, {
      headers: { 'content-type': 'application/json', prefer: 'transient', ...correlationHeaders() },
      // A string body is already JSON (sales records carry exact decimal literals).
      body: body === undefined ? undefined : typeof body === 'string' ? body : stringifyWithDecimals(body),
      timeoutMs: this.options.timeoutMs ?? 30_000,
    });
  }

  private async get(recordType: string, externalId: string): Promise<PostedReference | undefined> {
    const res = await this.call('GET', this.recordUrl(recordType, externalId));
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.ok) {
      const record = (await res.json()) as { id?: string };
      return { reference: String(record.id ?? externalId) };
    }
    throw await this.failure(res, `GET ${recordType} ${externalId}`);
  }

  /** PUT record/eid:<externalId>: NetSuite's upsert by external ID (create or update), 204 with the record's Location. */
  private async upsert(
    recordType: string,
    externalId: string,
    body: unknown,
    refs: References | undefined,
    date: string | undefined,
  ): Promise<PostedReference> {
    const res = await this.call('PUT', this.recordUrl(recordType, externalId), body);
    if (res.status === 204 || res.ok) {
      const location = res.headers.get('location') ?? '';
      await res.body?.cancel();
      return { reference: location.split('/').pop() || externalId };
    }
    throw await this.failure(res, `PUT ${recordType} ${externalId}`, refs, date);
  }

  async find(key: string): Promise<PostedReference | undefined> {
    return this.get('journalEntry', netsuiteExternalId(key));
  }

  async post(key: string, journal: Journal): Promise<PostedReference> {
    const externalId = netsuiteExternalId(key);
    const resolver = await this.mappings.load();
    const refs = new References(resolver, journal.posting_date);
    // Receivable lines name the customer (the catalog's ERP customer id): mapped, created or linked before the entry.
    const customers = new Map<string, string>();
    for (const [i, line] of journal.lines.entries()) {
      if (!line.customer || customers.has(line.customer)) continue;
      customers.set(
        line.customer,
        await this.customerId(
          line.customer,
          journal.legal_entity,
          line.currency,
          journal.posting_date,
          null,
          resolver,
          `line.items[${i}].entity`,
        ),
      );
    }
    const record = journalEntryRecord(journal, refs, externalId, (customer, field) =>
      refs.note('customer', this.customerSource(customer), customers.get(customer)!, field),
    );
    return this.upsert('journalEntry', externalId, record, refs, journal.posting_date);
  }

  /** Step 3 for an invoice or credit note: the invoice / creditMemo record with our key as its external ID. */
  async findDocument(key: string, document: SalesDocument): Promise<PostedReference | undefined> {
    return this.get(NETSUITE_RECORD_TYPE[document.kind], netsuiteExternalId(key));
  }

  /**
   * Taxed documents need SuiteTax. Learned once per connection: from a cheap lookup of the nexus records (a
   * SuiteTax-only record type) before the first taxed document, or from a document's refusal naming SuiteTax.
   */
  private async requireSuiteTax(): Promise<void> {
    const known = taxModeOf.get(this.name);
    if (known === 'legacy') throw legacyTaxRefusal(this.name, 'learned from an earlier answer of this account; no request sent');
    if (known === 'suitetax') return;
    const res = await this.call('GET', `${this.base}/services/rest/record/v1/nexus?limit=1`);
    if (res.ok) {
      await res.body?.cancel();
      taxModeOf.set(this.name, 'suitetax');
      return;
    }
    const body = (await readAnswer(res)).json as ErrorBody | undefined;
    const detail = body?.['o:errorDetails']?.[0]?.detail ?? '';
    if ((res.status === 400 || res.status === 404) && LEGACY_TAX_DETAIL.test(detail)) {
      taxModeOf.set(this.name, 'legacy');
      throw legacyTaxRefusal(this.name, detail);
    }
    // Anything else (a role without access to nexus records, a 5xx): not a verdict; the document itself will tell.
  }

  /** The internal id and amount remaining of the invoice Accrue posted with this number (its tranId). */
  private async invoiceByNumber(number: string): Promise<{ id: string; remaining: string } | undefined> {
    const q = `SELECT t.id AS id, TO_CHAR(t.foreignamountremaining) AS remaining FROM transaction t WHERE t.type = 'CustInvc' AND t.tranid = ${suiteqlText(number)}`;
    const page = await this.suiteql(q, 2, 0, `invoice ${number}`);
    const row = page.items?.[0];
    if (!row) return undefined;
    return { id: String(row.id), remaining: decimalFromText(String(row.remaining ?? '0')) };
  }

  /** Step 4: upsert the invoice / creditMemo by external ID; NetSuite books receivable, revenue and tax from it. */
  async postDocument(key: string, document: SalesDocument): Promise<PostedReference> {
    const externalId = netsuiteExternalId(key);
    const recordType = NETSUITE_RECORD_TYPE[document.kind];
    if (document.tax) await this.requireSuiteTax();
    const resolver = await this.mappings.load();
    const refs = new References(resolver, document.date);
    // The customer as the ERP knows it: the catalog's ERP customer id, which the document's journal lines carry too,
    // so a customer is one NetSuite record whether a journal or a document reaches NetSuite first.
    const customer = document.customer_erp_id;
    const entity = refs.note(
      'customer',
      document.customer,
      await this.customerId(
        customer,
        document.legal_entity,
        document.currency,
        document.date,
        document.buyer,
        resolver,
        'entity',
        document.customer,
      ),
      'entity',
    );
    let apply: { invoiceId: string; amount: string } | undefined;
    if (document.kind === 'credit_note' && document.corrects) {
      const invoice = await this.invoiceByNumber(document.corrects);
      // The invoice is posted before its credit note (outbox order); until it is there, this is a retry, not a refusal.
      if (!invoice)
        throw new TargetError(`NetSuite creditMemo ${externalId}: the invoice it corrects (${document.corrects}) is not in NetSuite yet`, {
          permanent: false,
          code: 'invoice_not_posted',
        });
      const total = new Decimal(formatMajor(document.total_minor, document.currency));
      const remaining = new Decimal(invoice.remaining);
      // Applied once: the upsert replaces the sublist, so a repeat applies the same amount to the same invoice.
      const existing = await this.get(recordType, externalId);
      const amount = existing ? total : Decimal.min(total, remaining);
      if (amount.gt(0)) apply = { invoiceId: invoice.id, amount: decimalText(amount) };
    }
    const body = salesRecordBody(document, refs, externalId, entity, apply);
    try {
      return await this.upsert(recordType, externalId, body, refs, document.date);
    } catch (error) {
      if (error instanceof TargetError && error.details.code === 'netsuite_legacy_tax') taxModeOf.set(this.name, 'legacy');
      throw error;
    }
  }

  /** Step 3 for a void: the credit memo transformed from the invoice under our key (its external ID). */
  async findVoid(key: string, _document: VoidDocument): Promise<PostedReference | undefined> {
    return this.get('creditMemo', netsuiteExternalId(key));
  }

  /**
   * Step 4 for a void: a credit memo transformed from the invoice (NetSuite copies its lines and tax and applies it to
   * the invoice), with our key as external ID and dated the reversal's date; a closed period is a PeriodLocked.
   */
  async postVoid(key: string, document: VoidDocument): Promise<PostedReference> {
    const externalId = netsuiteExternalId(key);
    const url = `${this.base}/services/rest/record/v1/invoice/${encodeURIComponent(document.invoice_reference)}/!transform/creditMemo`;
    const res = await this.call('POST', url, { externalId, tranDate: document.date, memo: document.memo.slice(0, NETSUITE_TEXT_MAX) });
    if (res.status === 204 || res.ok) {
      const location = res.headers.get('location') ?? '';
      await res.body?.cancel();
      return { reference: location.split('/').pop() || externalId };
    }
    throw await this.failure(res, `POST invoice ${document.invoice_reference} !transform creditMemo`, undefined, document.date);
  }

  /**
   * The customer's internal id: a 'customer' mapping of the ERP customer id, else (create, the default) the customer
   * upserted as customer/eid:<ERP customer id> with subsidiary, currency, name and default billing address, once per
   * target, else (link) the existing record with that external ID, or MappingMissing('customer').
   */
  /** The mapping source of a customer: Accrue's customer id (given, or found from the catalog's ERP customer id). */
  private customerSource(erpId: string, accrueId?: string): string {
    return accrueId ?? this.options.customerOf?.(erpId) ?? erpId;
  }

  private async customerId(
    customer: string,
    legalEntity: string,
    currency: string,
    on: string,
    buyer: SalesDocument['buyer'],
    resolver: MappingResolver,
    field: string,
    accrueId?: string,
  ): Promise<string> {
    const source = this.customerSource(customer, accrueId);
    const mapped = resolver.find('customer', source, on);
    if (mapped !== undefined) return mapped;
    const known = this.customers.get(customer);
    if (known) return known;
    const externalId = netsuiteExternalId(customer);
    if ((this.settings.customers ?? 'create') === 'link') {
      const found = await this.get('customer', externalId);
      if (!found) throw new MappingMissing(this.name, 'customer', source, field, undefined);
      this.customers.set(customer, found.reference);
      return found.reference;
    }
    const refs = new References(resolver, on);
    const address = billingAddressOf({ buyer });
    const record = {
      externalId,
      companyName: (buyer?.name ?? customer).slice(0, 83),
      subsidiary: refs.ref('subsidiary', legalEntity, 'customer.subsidiary'),
      currency: refs.ref('currency', currency, 'customer.currency'),
      ...(address ? { addressBook: { items: [{ defaultBilling: true, defaultShipping: false, addressBookAddress: address }] } } : {}),
    };
    const posted = await this.upsert('customer', externalId, record, refs, undefined);
    this.customers.set(customer, posted.reference);
    return posted.reference;
  }

  /** A payment Accrue received, as it was pushed (customerPayment by our key as its external ID). */
  async findPayment(key: string, _payment: PaymentDocument): Promise<PostedReference | undefined> {
    return this.get('customerPayment', netsuiteExternalId(key));
  }

  /** Pushes a payment: customerPayment upserted by external ID, its `apply` sublist paying the invoice. */
  async postPayment(key: string, payment: PaymentDocument): Promise<PostedReference> {
    const externalId = netsuiteExternalId(key);
    const resolver = await this.mappings.load();
    const refs = new References(resolver, payment.received_on);
    const cash = this.options.cashAccount?.(payment.legal_entity);
    if (!cash) throw new MappingMissing(this.name, 'account', '(cash)', 'account');
    const customer = refs.note(
      'customer',
      payment.customer,
      await this.customerId(
        payment.customer_erp_id,
        payment.legal_entity,
        payment.currency,
        payment.received_on,
        null,
        resolver,
        'customer',
        payment.customer,
      ),
      'customer',
    );
    const invoice = await this.invoiceByNumber(payment.invoice_number);
    if (!invoice)
      throw new TargetError(`NetSuite customerPayment ${externalId}: invoice ${payment.invoice_number} is not in NetSuite yet`, {
        permanent: false,
        code: 'invoice_not_posted',
      });
    const amount = decimalLiteral(formatMajor(payment.amount_minor, payment.currency));
    const record = {
      externalId,
      customer,
      subsidiary: refs.ref('subsidiary', payment.legal_entity, 'subsidiary'),
      tranDate: payment.received_on,
      currency: refs.ref('currency', payment.currency, 'currency'),
      account: refs.ref('account', cash, 'account'),
      payment: amount,
      memo: `Accrue payment ${payment.payment_id}`.slice(0, 999),
      apply: { items: [{ doc: { id: invoice.id }, apply: true, amount }] },
    };
    return this.upsert('customerPayment', externalId, record, refs, payment.received_on);
  }

  private async suiteql(
    q: string,
    limit: number,
    offset: number,
    what: string,
  ): Promise<{ items?: Array<Record<string, unknown>>; hasMore?: unknown }> {
    const res = await this.call('POST', `${this.base}/services/rest/query/v1/suiteql?limit=${limit}&offset=${offset}`, { q });
    if (!res.ok) throw await this.failure(res, `POST suiteql (${what})`);
    return parseJsonDecimals(await res.text()) as { items?: Array<Record<string, unknown>>; hasMore?: unknown };
  }

  /** Customer payments modified at or after `since`, through SuiteQL, page by page (limit/offset, hasMore); Accrue's own pushed payments are left out. */
  async *paymentPages(since: string | null): AsyncIterable<ErpPayment[]> {
    const q = paymentsQuery(since);
    const limit = Math.min(SUITEQL_PAGE_MAX, this.options.paymentsPageSize ?? SUITEQL_PAGE_MAX);
    for (let offset = 0; ; offset += limit) {
      const page = await this.suiteql(q, limit, offset, 'payments');
      yield (page.items ?? []).map(paymentFromRow);
      // parseJsonDecimals leaves booleans as they are.
      if (page.hasMore !== true) return;
    }
  }

  storedKey(key: string): string {
    return netsuiteExternalId(key);
  }

  /** `accrue erp check`: the record behind a mapping target, by internal id, with its isinactive flag (SuiteQL). */
  async checkReference(kind: MappingKind, target: string): Promise<ReferenceState> {
    const table = REFERENCE_TABLE[kind];
    const byExternalId = target.startsWith('eid:');
    const value = byExternalId ? target.slice(4) : target;
    if (!byExternalId && !/^\d{1,18}$/.test(value))
      return { state: 'missing', detail: `${JSON.stringify(target)} is not a NetSuite internal id` };
    const where = byExternalId ? `externalid = ${suiteqlText(value)}` : `id = ${value}`;
    const page = await this.suiteql(`SELECT id, isinactive FROM ${table} WHERE ${where}`, 2, 0, `${kind} ${target}`);
    const row = page.items?.[0];
    if (!row) return { state: 'missing', detail: `no ${table} record ${target} in NetSuite` };
    if (row.isinactive === 'T' || row.isinactive === true)
      return { state: 'inactive', detail: `${table} ${target} is inactive in NetSuite` };
    return { state: 'active' };
  }

  /** Journal entries, invoices and credit memos of the entity's subsidiary dated in the period, page by page through SuiteQL. */
  async listDocuments(legalEntity: string, period: string): Promise<ErpDocument[]> {
    const window = parsePeriod(period);
    if (!window.ok) throw new TargetError(`NetSuite listDocuments: ${window.problems[0]!.message}`, { permanent: true });
    const resolver = await this.mappings.load();
    const mapped = resolver.resolve('subsidiary', legalEntity, window.value.start_date, 'subsidiary');
    const subsidiary = mapped.startsWith('eid:') ? mapped.slice(4) : mapped;
    // The subsidiary goes into the query text: only an id-shaped value may.
    if (!/^[A-Za-z0-9_-]+$/.test(subsidiary))
      throw new TargetError(`NetSuite listDocuments: subsidiary ${JSON.stringify(subsidiary)} is not an id`, { permanent: true });
    const q = journalListQuery(subsidiary, window.value.start_date, window.value.end_date);
    const documents: ErpDocument[] = [];
    for (let offset = 0; ; offset += NETSUITE_SUITEQL_PAGE) {
      const page = await this.suiteql(q, NETSUITE_SUITEQL_PAGE, offset, 'documents');
      for (const item of page.items ?? []) {
        const form = NETSUITE_DOCUMENT_TYPES[String(item.type) as keyof typeof NETSUITE_DOCUMENT_TYPES];
        if (typeof item.amount !== 'string' || form === undefined)
          throw new TargetError(`NetSuite SuiteQL: transaction ${String(item.id)} has no text amount or an unexpected type`, {
            permanent: true,
            body: item,
          });
        documents.push({
          key: typeof item.externalid === 'string' ? item.externalid : '',
          reference: String(item.id),
          currency: typeof item.currency === 'string' ? item.currency : '',
          form,
          amount: decimalFromText(item.amount),
          ...(form !== 'journal' && typeof item.tax === 'string' ? { tax: decimalFromText(item.tax) } : {}),
          posted_on: String(item.trandate ?? ''),
        });
      }
      if (documents.length > ERP_DOCUMENTS_MAX)
        throw new TargetError(`NetSuite listDocuments: more than ${ERP_DOCUMENTS_MAX} transactions in ${period}`, { permanent: true });
      if (page.hasMore !== true) return documents;
    }
  }

  /** The first day of the first open (not closed) posting period after `date`, if NetSuite has one. */
  private async firstOpenDay(date: string): Promise<string | null> {
    try {
      const q =
        "SELECT TO_CHAR(MIN(p.startdate), 'YYYY-MM-DD') AS first_open FROM accountingperiod p " +
        `WHERE p.isposting = 'T' AND p.closed = 'F' AND p.isquarter = 'F' AND p.isyear = 'F' AND p.enddate >= TO_DATE(${suiteqlText(date)}, 'YYYY-MM-DD')`;
      const page = await this.suiteql(q, 1, 0, 'first open period');
      const first = page.items?.[0]?.first_open;
      return typeof first === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(first) ? (first > date ? first : date) : null;
    } catch {
      return null;
    }
  }

  private async failure(res: Response, what: string, refs?: References, date?: string): Promise<Error> {
    const body = (await readAnswer(res)).json as ErrorBody | undefined;
    const detail = body?.['o:errorDetails']?.[0];
    const text = detail?.detail ?? body?.title ?? res.statusText;
    const code = detail?.['o:errorCode'];
    if (res.status === 401) return new ReauthorizationRequired(this.name, `NetSuite refused the credentials after a refresh: ${text}`);
    if (res.status === 400 && LEGACY_TAX_DETAIL.test(text) && /tax/i.test(what + text)) {
      taxModeOf.set(this.name, 'legacy');
      return legacyTaxRefusal(this.name, text);
    }
    if (res.status === 400 && date && PERIOD_DETAIL.test(text))
      return new PeriodLocked(this.name, date, await this.firstOpenDay(date), text);
    if (res.status === 400 && refs && code && REFERENCE_CODES.has(code)) {
      const path = detail?.['o:errorPath'];
      const match = REFERENCE_DETAIL.exec(text);
      const value = match?.[1] ?? match?.[4];
      const field = match?.[2] ?? match?.[3];
      const used =
        (path && refs.used.find((u) => u.field === path)) ||
        (value && refs.used.find((u) => u.target === value || u.target === `eid:${value}`)) ||
        (field && refs.used.find((u) => u.field.split('.').pop()!.toLowerCase() === field.toLowerCase() || u.kind === field.toLowerCase()));
      if (used) return new MappingMissing(this.name, used.kind, used.source, used.field, text);
    }
    const transient = res.status === 429 || res.status >= 500;
    return new TargetError(`NetSuite ${what}: ${res.status} ${text}`, {
      status: res.status,
      code,
      retryAfterMs: retryAfterMs(res.headers.get('retry-after')),
      permanent: !transient,
      body,
    });
  }
}
