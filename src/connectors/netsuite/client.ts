// NetSuite SuiteTalk REST: journal entries upserted by external ID, so NetSuite itself honours our idempotency key.
// Built from Oracle's documentation (docs/connectors.md): PUT /services/rest/record/v1/journalEntry/eid:{externalId}
// creates or updates; GET on the same path reads; errors carry `o:errorDetails` with `o:errorCode`; HTTP 429 when the
// account's concurrency limit is exceeded.
import type { Journal } from '../../domain/model.js';
import { formatMajor } from '../../domain/money.js';
import { TargetError, type ErpTarget, type PostedReference, type TargetLimits } from '../../post/target.js';
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
        headers: { authorization: `Bearer ${this.config.token}`, 'content-type': 'application/json', prefer: 'transient' },
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
