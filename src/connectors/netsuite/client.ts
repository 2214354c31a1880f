// NetSuite SuiteTalk REST: journal entries upserted by external ID, so NetSuite itself honours our idempotency key.
// Built from Oracle's documentation (docs/connectors.md): PUT /services/rest/record/v1/journalEntry/eid:{externalId}
// creates or updates; GET on the same path reads; errors carry `o:errorDetails` with `o:errorCode`; HTTP 429 when the
// account's concurrency limit is exceeded.
import type { Journal } from '../../domain/model.js';
import { formatMajor } from '../../domain/money.js';
import { correlationHeaders } from '../../post/correlation.js';
import { ERP_DOCUMENTS_MAX, TargetError, type ErpDocument, type ErpTarget, type PostedReference, type TargetLimits } from '../../post/target.js';
import { parsePeriod } from '../../meter/period.js';
import type { SalesDocument } from '../../post/erp-documents.js';
import type { ErpPayment, PaymentSource } from '../../settle/poll.js';
import { parseJsonDecimals } from '../json-decimal.js';
import { NETSUITE_RECORD_TYPE, paymentFromRow, paymentsQuery, salesRecordBody, SUITEQL_PAGE_MAX, type NetSuiteSalesOptions } from './sales.js';

export interface NetSuiteConfig {
  baseUrl: string; // https://<account>.suitetalk.api.netsuite.com
  token: string; // OAuth 2.0 access token (machine-to-machine)
  subsidiaryByEntity: Record<string, string>; // legal entity -> NetSuite subsidiary internal id
  limits?: Partial<TargetLimits>;
  timeoutMs?: number;
  taxCodeByJurisdiction?: NetSuiteSalesOptions['taxCodeByJurisdiction'];
  creditsRestoredItem?: string;
  /** SuiteQL rows per page when polling payments (at most 1000). */
  paymentsPageSize?: number;
}

/** NetSuite's default REST concurrency for an account without SuiteCloud Plus licences is 15; stay under it. */
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
 * invoice's or credit memo's total (tax included) in the transaction currency.
 */
export function journalListQuery(subsidiary: string, from: string, to: string): string {
  return [
    "SELECT t.id AS id, t.externalid AS externalid, t.type AS type, cur.symbol AS currency, TO_CHAR(t.trandate, 'YYYY-MM-DD') AS trandate,",
    "TO_CHAR(CASE WHEN t.type = 'Journal' THEN SUM(tl.debitforeignamount) ELSE ABS(t.foreigntotal) END) AS amount",
    'FROM transaction t JOIN transactionline tl ON tl.transaction = t.id JOIN currency cur ON cur.id = t.currency',
    `WHERE t.type IN ('Journal', 'CustInvc', 'CustCred') AND tl.subsidiary = '${subsidiary}'`,
    `AND t.trandate >= TO_DATE('${from}', 'YYYY-MM-DD') AND t.trandate < TO_DATE('${to}', 'YYYY-MM-DD')`,
    'GROUP BY t.id, t.externalid, t.type, cur.symbol, t.trandate, t.foreigntotal ORDER BY t.id',
  ].join(' ');
}

// Oracle's TO_CHAR drops the leading zero (.5, -.5).
const decimalFromText = (text: string) => text.replace(/^(-?)\./, (_m, sign: string) => `${sign}0.`);

export function journalEntryRecord(journal: Journal, config: Pick<NetSuiteConfig, 'subsidiaryByEntity'>, externalId: string) {
  const currency = journal.lines[0]?.currency;
  return {
    externalId,
    tranDate: journal.posting_date,
    memo: journal.memo.slice(0, 999),
    subsidiary: { id: config.subsidiaryByEntity[journal.legal_entity] ?? journal.legal_entity },
    currency: { refName: currency },
    line: {
      items: journal.lines.map((l) => ({
        account: { externalId: l.account },
        ...(l.debit_minor > 0n ? { debit: formatMajor(l.debit_minor, l.currency) } : { credit: formatMajor(l.credit_minor, l.currency) }),
        ...(l.customer ? { entity: { externalId: l.customer } } : {}),
        ...(l.memo ? { memo: l.memo.slice(0, 999) } : {}),
      })),
    },
  };
}

export class NetSuiteTarget implements ErpTarget, PaymentSource {
  readonly name: string;
  readonly limits: TargetLimits;
  constructor(
    private readonly config: NetSuiteConfig,
    name = 'netsuite',
  ) {
    this.name = name;
    this.limits = { ...NETSUITE_DEFAULT_LIMITS, ...config.limits };
  }

  private url(externalId: string, recordType = 'journalEntry') {
    return `${this.config.baseUrl}/services/rest/record/v1/${recordType}/eid:${encodeURIComponent(externalId)}`;
  }

  private async request(method: 'GET' | 'PUT', externalId: string, body?: unknown, recordType = 'journalEntry'): Promise<Response> {
    try {
      return await fetch(this.url(externalId, recordType), {
        method,
        headers: { authorization: `Bearer ${this.config.token}`, 'content-type': 'application/json', prefer: 'transient', ...correlationHeaders() },
        // A string body is already JSON (sales records carry exact decimal literals).
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        signal: AbortSignal.timeout(this.config.timeoutMs ?? 30_000),
      });
    } catch (error) {
      // A timeout or a dropped connection: the request may or may not have been applied; retry looks it up first.
      throw new TargetError(`NetSuite ${method} ${externalId}: ${(error as Error).message}`, { permanent: false, code: (error as Error).name });
    }
  }

  async find(key: string): Promise<PostedReference | undefined> {
    const externalId = netsuiteExternalId(key);
    const res = await this.request('GET', externalId);
    if (res.status === 404) return undefined;
    if (res.ok) {
      const record = (await res.json()) as { id?: string };
      return { reference: String(record.id ?? externalId) };
    }
    throw await this.failure(res, `GET ${externalId}`);
  }

  async post(key: string, journal: Journal): Promise<PostedReference> {
    const externalId = netsuiteExternalId(key);
    const res = await this.request('PUT', externalId, journalEntryRecord(journal, this.config, externalId));
    if (res.status === 204 || res.ok) {
      const location = res.headers.get('location') ?? '';
      return { reference: location.split('/').pop() || externalId };
    }
    throw await this.failure(res, `PUT ${externalId}`);
  }

  /** Step 3 for an invoice or credit note: the invoice / creditMemo record with our key as its external ID. */
  async findDocument(key: string, document: SalesDocument): Promise<PostedReference | undefined> {
    const externalId = netsuiteExternalId(key);
    const recordType = NETSUITE_RECORD_TYPE[document.kind];
    const res = await this.request('GET', externalId, undefined, recordType);
    if (res.status === 404) return undefined;
    if (res.ok) {
      const record = (await res.json()) as { id?: string };
      return { reference: String(record.id ?? externalId) };
    }
    throw await this.failure(res, `GET ${recordType} ${externalId}`);
  }

  /** Step 4: upsert the invoice / creditMemo by external ID; NetSuite books receivable, revenue and tax from it. */
  async postDocument(key: string, document: SalesDocument): Promise<PostedReference> {
    const externalId = netsuiteExternalId(key);
    const recordType = NETSUITE_RECORD_TYPE[document.kind];
    const res = await this.request('PUT', externalId, salesRecordBody(document, this.config, externalId), recordType);
    if (res.status === 204 || res.ok) {
      const location = res.headers.get('location') ?? '';
      return { reference: location.split('/').pop() || externalId };
    }
    throw await this.failure(res, `PUT ${recordType} ${externalId}`);
  }

  /** Customer payments modified at or after `since`, through SuiteQL, page by page (limit/offset, hasMore). */
  async *paymentPages(since: string | null): AsyncIterable<ErpPayment[]> {
    const q = paymentsQuery(since);
    const limit = Math.min(SUITEQL_PAGE_MAX, this.config.paymentsPageSize ?? SUITEQL_PAGE_MAX);
    for (let offset = 0; ; offset += limit) {
      let res: Response;
      try {
        res = await fetch(`${this.config.baseUrl}/services/rest/query/v1/suiteql?limit=${limit}&offset=${offset}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.config.token}`, 'content-type': 'application/json', prefer: 'transient' },
          body: JSON.stringify({ q }),
          signal: AbortSignal.timeout(this.config.timeoutMs ?? 30_000),
        });
      } catch (error) {
        throw new TargetError(`NetSuite SuiteQL payments: ${(error as Error).message}`, { permanent: false, code: (error as Error).name });
      }
      if (!res.ok) throw await this.failure(res, 'POST suiteql (payments)');
      const page = parseJsonDecimals(await res.text()) as { items?: Array<Record<string, unknown>>; hasMore?: unknown };
      yield (page.items ?? []).map(paymentFromRow);
      // parseJsonDecimals leaves booleans as they are.
      if (page.hasMore !== true) return;
    }
  }

  storedKey(key: string): string {
    return netsuiteExternalId(key);
  }

  /** Journal entries, invoices and credit memos of the entity's subsidiary dated in the period, page by page through SuiteQL. */
  async listDocuments(legalEntity: string, period: string): Promise<ErpDocument[]> {
    const window = parsePeriod(period);
    if (!window.ok) throw new TargetError(`NetSuite listDocuments: ${window.problems[0]!.message}`, { permanent: true });
    const subsidiary = this.config.subsidiaryByEntity[legalEntity] ?? legalEntity;
    // The subsidiary goes into the query text: only an id-shaped value may.
    if (!/^[A-Za-z0-9_-]+$/.test(subsidiary)) throw new TargetError(`NetSuite listDocuments: subsidiary ${JSON.stringify(subsidiary)} is not an id`, { permanent: true });
    const q = journalListQuery(subsidiary, window.value.start_date, window.value.end_date);
    const documents: ErpDocument[] = [];
    for (let offset = 0; ; offset += NETSUITE_SUITEQL_PAGE) {
      let res: Response;
      try {
        res = await fetch(`${this.config.baseUrl}/services/rest/query/v1/suiteql?limit=${NETSUITE_SUITEQL_PAGE}&offset=${offset}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.config.token}`, 'content-type': 'application/json', prefer: 'transient' },
          body: JSON.stringify({ q }),
          signal: AbortSignal.timeout(this.config.timeoutMs ?? 30_000),
        });
      } catch (error) {
        throw new TargetError(`NetSuite SuiteQL: ${(error as Error).message}`, { permanent: false, code: (error as Error).name });
      }
      if (!res.ok) throw await this.failure(res, 'POST suiteql');
      const page = (await res.json()) as { items?: Array<Record<string, unknown>>; hasMore?: boolean };
      for (const item of page.items ?? []) {
        const form = NETSUITE_DOCUMENT_TYPES[String(item.type) as keyof typeof NETSUITE_DOCUMENT_TYPES];
        if (typeof item.amount !== 'string' || form === undefined) throw new TargetError(`NetSuite SuiteQL: transaction ${String(item.id)} has no text amount or an unexpected type`, { permanent: true, body: item });
        documents.push({
          key: typeof item.externalid === 'string' ? item.externalid : '',
          reference: String(item.id),
          currency: typeof item.currency === 'string' ? item.currency : '',
          form,
          amount: decimalFromText(item.amount),
          posted_on: String(item.trandate ?? ''),
        });
      }
      if (documents.length > ERP_DOCUMENTS_MAX) throw new TargetError(`NetSuite listDocuments: more than ${ERP_DOCUMENTS_MAX} transactions in ${period}`, { permanent: true });
      if (!page.hasMore) return documents;
    }
  }

  private async failure(res: Response, what: string): Promise<TargetError> {
    const body = (await res.json().catch(() => undefined)) as { title?: string; 'o:errorDetails'?: Array<{ detail?: string; 'o:errorCode'?: string }> } | undefined;
    const detail = body?.['o:errorDetails']?.[0];
    const retryAfter = res.headers.get('retry-after');
    const retryAfterMs = retryAfter && /^\d+$/.test(retryAfter) ? Number.parseInt(retryAfter, 10) * 1000 : undefined;
    const transient = res.status === 429 || res.status >= 500;
    return new TargetError(`NetSuite ${what}: ${res.status} ${detail?.detail ?? body?.title ?? res.statusText}`, {
      status: res.status,
      code: detail?.['o:errorCode'],
      retryAfterMs,
      permanent: !transient,
      body,
    });
  }
}
