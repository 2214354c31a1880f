// Xero Accounting API: manual journals posted with an `Idempotency-Key` header (Xero honours it on PUT, POST and
// PATCH), and found again by the key carried in the narration. Limits from Xero's documentation: 5 calls in progress
// and 60 calls a minute per tenant; 429 with Retry-After beyond them.
import type { Journal } from '../../domain/model.js';
import { formatMajor } from '../../domain/money.js';
import { TargetError, type ErpTarget, type PostedReference, type TargetLimits } from '../../post/target.js';

export interface XeroConfig {
  baseUrl: string; // https://api.xero.com
  token: string; // OAuth 2.0 access token
  tenantId: string; // xero-tenant-id of the organisation (one per legal entity)
  timeoutMs?: number;
  limits?: Partial<TargetLimits>;
}

export const XERO_LIMITS: TargetLimits = { concurrency: 5, requestsPerMinute: 60 };

const narration = (key: string, journal: Journal) => `${journal.memo} [${key}]`;

/** The request body, written by hand around exact decimal literals: JSON numbers, never JS floats. */
export function manualJournalBody(key: string, journal: Journal): string {
  const lines = journal.lines.map((l) => {
    // Xero's LineAmount is positive for a debit and negative for a credit.
    const amount = l.debit_minor > 0n ? formatMajor(l.debit_minor, l.currency) : `-${formatMajor(l.credit_minor, l.currency)}`;
    return `{"LineAmount":${amount},"AccountCode":${JSON.stringify(l.account)},"Description":${JSON.stringify(l.memo ?? journal.memo)}}`;
  });
  return `{"ManualJournals":[{"Narration":${JSON.stringify(narration(key, journal))},"Date":${JSON.stringify(journal.posting_date)},"LineAmountTypes":"NoTax","Status":"POSTED","JournalLines":[${lines.join(',')}]}]}`;
}

export class XeroTarget implements ErpTarget {
  readonly name: string;
  readonly limits: TargetLimits;
  constructor(
    private readonly config: XeroConfig,
    name = 'xero',
  ) {
    this.name = name;
    this.limits = { ...XERO_LIMITS, ...config.limits };
  }

  private async request(method: 'GET' | 'POST', path: string, extra: { body?: string; idempotencyKey?: string } = {}): Promise<Response> {
    try {
      return await fetch(`${this.config.baseUrl}/api.xro/2.0/${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.config.token}`,
          'xero-tenant-id': this.config.tenantId,
          accept: 'application/json',
          ...(extra.body ? { 'content-type': 'application/json' } : {}),
          ...(extra.idempotencyKey ? { 'idempotency-key': extra.idempotencyKey } : {}),
        },
        body: extra.body,
        signal: AbortSignal.timeout(this.config.timeoutMs ?? 30_000),
      });
    } catch (error) {
      throw new TargetError(`Xero ${method} ${path}: ${(error as Error).message}`, { permanent: false, code: (error as Error).name });
    }
  }

  async find(key: string): Promise<PostedReference | undefined> {
    const where = encodeURIComponent(`Narration.Contains("[${key}]")`);
    const res = await this.request('GET', `ManualJournals?where=${where}`);
    if (!res.ok) throw await this.failure(res, 'GET ManualJournals');
    const found = ((await res.json()) as { ManualJournals?: Array<{ ManualJournalID: string }> }).ManualJournals ?? [];
    return found[0] ? { reference: found[0].ManualJournalID } : undefined;
  }

  async post(key: string, journal: Journal): Promise<PostedReference> {
    const res = await this.request('POST', 'ManualJournals', { body: manualJournalBody(key, journal), idempotencyKey: key });
    if (!res.ok) throw await this.failure(res, 'POST ManualJournals');
    const created = ((await res.json()) as { ManualJournals?: Array<{ ManualJournalID: string }> }).ManualJournals?.[0];
    if (!created) throw new TargetError('Xero POST ManualJournals: no journal in the answer', { permanent: false, status: res.status });
    return { reference: created.ManualJournalID };
  }

  private async failure(res: Response, what: string): Promise<TargetError> {
    const body = (await res.json().catch(() => undefined)) as { Message?: string; Type?: string; Elements?: Array<{ ValidationErrors?: Array<{ Message?: string }> }> } | undefined;
    const validation = body?.Elements?.[0]?.ValidationErrors?.[0]?.Message;
    const retryAfter = res.headers.get('retry-after');
    return new TargetError(`Xero ${what}: ${res.status} ${validation ?? body?.Message ?? res.statusText}`, {
      status: res.status,
      code: res.headers.get('x-rate-limit-problem') ?? body?.Type,
      retryAfterMs: retryAfter && /^\d+$/.test(retryAfter) ? Number.parseInt(retryAfter, 10) * 1000 : undefined,
      permanent: !(res.status === 429 || res.status >= 500),
      body,
    });
  }
}
