// NetSuite SuiteTalk REST: journal entries upserted by external ID, so NetSuite itself honours our idempotency key.
// Built from Oracle's documentation (docs/connectors.md): PUT /services/rest/record/v1/journalEntry/eid:{externalId}
// creates or updates; GET on the same path reads; errors carry `o:errorDetails` with `o:errorCode`; HTTP 429 when the
// account's concurrency limit is exceeded.
import type { Journal } from '../../domain/model.js';
import { formatMajor } from '../../domain/money.js';
import { TargetError, type ErpTarget, type PostedReference, type TargetLimits } from '../../post/target.js';

export interface NetSuiteConfig {
  baseUrl: string; // https://<account>.suitetalk.api.netsuite.com
  token: string; // OAuth 2.0 access token (machine-to-machine)
  subsidiaryByEntity: Record<string, string>; // legal entity -> NetSuite subsidiary internal id
  limits?: Partial<TargetLimits>;
  timeoutMs?: number;
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

export class NetSuiteTarget implements ErpTarget {
  readonly name: string;
  readonly limits: TargetLimits;
  constructor(
    private readonly config: NetSuiteConfig,
    name = 'netsuite',
  ) {
    this.name = name;
    this.limits = { ...NETSUITE_DEFAULT_LIMITS, ...config.limits };
  }

  private url(externalId: string) {
    return `${this.config.baseUrl}/services/rest/record/v1/journalEntry/eid:${encodeURIComponent(externalId)}`;
  }

  private async request(method: 'GET' | 'PUT', externalId: string, body?: unknown): Promise<Response> {
    try {
      return await fetch(this.url(externalId), {
        method,
        headers: { authorization: `Bearer ${this.config.token}`, 'content-type': 'application/json', prefer: 'transient' },
        body: body === undefined ? undefined : JSON.stringify(body),
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
