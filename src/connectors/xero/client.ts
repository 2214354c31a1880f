// Xero Accounting API: manual journals posted with an `Idempotency-Key` header (Xero honours it on PUT, POST and
// PATCH), and found again by the key carried in the narration. Limits from Xero's documentation: 5 calls in progress
// and 60 calls a minute per tenant; 429 with Retry-After beyond them.
import type { Journal } from '../../domain/model.js';
import { formatMajor } from '../../domain/money.js';
import { correlationHeaders } from '../../post/correlation.js';
import { ERP_DOCUMENTS_MAX, TargetError, type ErpDocument, type ErpTarget, type PostedReference, type TargetLimits } from '../../post/target.js';
import { Decimal, decimalText } from '../../domain/money.js';
import { parsePeriod } from '../../meter/period.js';
import { parseJsonDecimals } from '../json-decimal.js';
import type { SalesDocument } from '../../post/erp-documents.js';
import type { ErpPayment, PaymentSource } from '../../settle/poll.js';
import { ifModifiedSince, paymentFromXero, salesDocumentBody, XERO_PAYMENTS_PAGE_SIZE, type XeroPaymentRecord, type XeroSalesOptions } from './sales.js';

export interface XeroConfig {
  baseUrl: string; // https://api.xero.com
  token: string; // OAuth 2.0 access token
  tenantId: string; // xero-tenant-id of the organisation (one per legal entity)
  timeoutMs?: number;
  limits?: Partial<TargetLimits>;
  taxTypeByJurisdiction?: XeroSalesOptions['taxTypeByJurisdiction'];
  dueDays?: number;
  /** Payments per page when polling (Xero's default and documented page is 100). */
  paymentsPageSize?: number;
}

export const XERO_LIMITS: TargetLimits = { concurrency: 5, requestsPerMinute: 60 };

const narration = (key: string, journal: Journal) => `${journal.memo} [${key}]`;

/** Xero pages manual journals 100 at a time (with their lines when `page` is given). */
export const XERO_PAGE_SIZE = 100;

/** `Date >= DateTime(2026,11,01) AND Date < DateTime(2026,12,01)`: the period's journals by their date. */
export function periodWhere(from: string, to: string): string {
  const at = (date: string) => `DateTime(${date.slice(0, 4)},${date.slice(5, 7)},${date.slice(8, 10)})`;
  return `Date >= ${at(from)} AND Date < ${at(to)}`;
}

/** Xero writes dates as `/Date(1764460800000+0000)/`; an ISO date passes through. */
export function xeroDate(value: unknown): string {
  const text = String(value ?? '');
  const ms = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/.exec(text)?.[1];
  return ms === undefined ? text.slice(0, 10) : new Date(Number(ms)).toISOString().slice(0, 10);
}

/** The request body, written by hand around exact decimal literals: JSON numbers, never JS floats. */
export function manualJournalBody(key: string, journal: Journal): string {
  const lines = journal.lines.map((l) => {
    // Xero's LineAmount is positive for a debit and negative for a credit.
    const amount = l.debit_minor > 0n ? formatMajor(l.debit_minor, l.currency) : `-${formatMajor(l.credit_minor, l.currency)}`;
    return `{"LineAmount":${amount},"AccountCode":${JSON.stringify(l.account)},"Description":${JSON.stringify(l.memo ?? journal.memo)}}`;
  });
  return `{"ManualJournals":[{"Narration":${JSON.stringify(narration(key, journal))},"Date":${JSON.stringify(journal.posting_date)},"LineAmountTypes":"NoTax","Status":"POSTED","JournalLines":[${lines.join(',')}]}]}`;
}

export class XeroTarget implements ErpTarget, PaymentSource {
  readonly name: string;
  readonly limits: TargetLimits;
  constructor(
    private readonly config: XeroConfig,
    name = 'xero',
  ) {
    this.name = name;
    this.limits = { ...XERO_LIMITS, ...config.limits };
  }

  private async request(method: 'GET' | 'POST', path: string, extra: { body?: string; idempotencyKey?: string; ifModifiedSince?: string } = {}): Promise<Response> {
    try {
      return await fetch(`${this.config.baseUrl}/api.xro/2.0/${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.config.token}`,
          'xero-tenant-id': this.config.tenantId,
          accept: 'application/json',
          ...(extra.body ? { 'content-type': 'application/json' } : {}),
          ...(extra.idempotencyKey ? { 'idempotency-key': extra.idempotencyKey } : {}),
          ...correlationHeaders(),
          ...(extra.ifModifiedSince ? { 'if-modified-since': extra.ifModifiedSince } : {}),
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

  /**
   * Step 3 for an invoice or credit note: the document with Accrue's number, which must carry our key in Reference
   * (the same number with another reference is someone else's document: refused, never overwritten).
   */
  async findDocument(key: string, document: SalesDocument): Promise<PostedReference | undefined> {
    const invoice = document.kind === 'invoice';
    const path = invoice
      ? `Invoices?InvoiceNumbers=${encodeURIComponent(document.number)}`
      : `CreditNotes?where=${encodeURIComponent(`CreditNoteNumber=="${document.number.replace(/"/g, '')}"`)}`;
    const res = await this.request('GET', path);
    if (!res.ok) throw await this.failure(res, `GET ${invoice ? 'Invoices' : 'CreditNotes'}`);
    const body = (await res.json()) as { Invoices?: Array<{ InvoiceID: string; Reference?: string; Status?: string }>; CreditNotes?: Array<{ CreditNoteID: string; Reference?: string; Status?: string }> };
    const found = (invoice ? (body.Invoices ?? []).map((d) => ({ id: d.InvoiceID, ...d })) : (body.CreditNotes ?? []).map((d) => ({ id: d.CreditNoteID, ...d }))).filter((d) => d.Status !== 'DELETED');
    if (found.length === 0) return undefined;
    const ours = found.find((d) => d.Reference === key);
    if (!ours) {
      throw new TargetError(`Xero ${document.kind} ${document.number} exists with another reference (${found[0]!.Reference ?? 'none'}), not ${key}`, { permanent: true, code: 'exists_with_different_reference' });
    }
    return { reference: ours.id };
  }

  /** Step 4: POST the invoice (ACCREC) or credit note (ACCRECCREDIT) with our key as Idempotency-Key. */
  async postDocument(key: string, document: SalesDocument): Promise<PostedReference> {
    const invoice = document.kind === 'invoice';
    const path = invoice ? 'Invoices' : 'CreditNotes';
    const res = await this.request('POST', path, { body: salesDocumentBody(key, document, this.config), idempotencyKey: key });
    if (!res.ok) throw await this.failure(res, `POST ${path}`);
    const body = (await res.json()) as { Invoices?: Array<{ InvoiceID: string }>; CreditNotes?: Array<{ CreditNoteID: string }> };
    const id = invoice ? body.Invoices?.[0]?.InvoiceID : body.CreditNotes?.[0]?.CreditNoteID;
    if (!id) throw new TargetError(`Xero POST ${path}: no document in the answer`, { permanent: false, status: res.status });
    return { reference: id };
  }

  /** Receipts against sales invoices modified at or after `since`, oldest first, page by page. */
  async *paymentPages(since: string | null): AsyncIterable<ErpPayment[]> {
    const pageSize = this.config.paymentsPageSize ?? XERO_PAYMENTS_PAGE_SIZE;
    const filter = `&order=${encodeURIComponent('UpdatedDateUTC ASC')}&where=${encodeURIComponent('PaymentType=="ACCRECPAYMENT"')}`;
    for (let page = 1; ; page += 1) {
      const res = await this.request('GET', `Payments?page=${page}&pageSize=${pageSize}${filter}`, since ? { ifModifiedSince: ifModifiedSince(since) } : {});
      if (res.status === 304) return; // nothing modified since
      if (!res.ok) throw await this.failure(res, 'GET Payments');
      const records = (parseJsonDecimals(await res.text()) as { Payments?: XeroPaymentRecord[] }).Payments ?? [];
      yield records.map(paymentFromXero).filter((p): p is ErpPayment => p !== null);
      if (records.length < pageSize) return;
    }
  }

  /**
   * Everything Accrue posts, dated in the period, page by page: manual journals (our key read back from the
   * narration), sales invoices and credit notes (our key in Reference). The tenant is one organisation (one legal
   * entity), so `legalEntity` selects nothing here. Amounts are read as their literal text.
   */
  async listDocuments(_legalEntity: string, period: string): Promise<ErpDocument[]> {
    const window = parsePeriod(period);
    if (!window.ok) throw new TargetError(`Xero listDocuments: ${window.problems[0]!.message}`, { permanent: true });
    const dates = periodWhere(window.value.start_date, window.value.end_date);
    const documents: ErpDocument[] = [];
    const pages = async (path: string, what: string, take: (body: Record<string, unknown>) => number) => {
      for (let page = 1; ; page += 1) {
        const res = await this.request('GET', `${path}&page=${page}`);
        if (!res.ok) throw await this.failure(res, `GET ${what}`);
        const count = take(parseJsonDecimals(await res.text()) as Record<string, unknown>);
        if (documents.length > ERP_DOCUMENTS_MAX) throw new TargetError(`Xero listDocuments: more than ${ERP_DOCUMENTS_MAX} documents in ${period}`, { permanent: true });
        if (count < XERO_PAGE_SIZE) return;
      }
    };
    await pages(`ManualJournals?where=${encodeURIComponent(dates)}`, 'ManualJournals', (body) => {
      const journals = (body.ManualJournals ?? []) as Array<{ ManualJournalID: string; Narration?: string; Date?: string; Status?: string; JournalLines?: Array<{ LineAmount?: string }> }>;
      for (const j of journals) {
        if ((j.Status ?? 'POSTED') !== 'POSTED') continue; // drafts, voided and deleted journals move no balance
        const debit = (j.JournalLines ?? []).reduce((sum, l) => (l.LineAmount && !l.LineAmount.startsWith('-') ? sum.plus(new Decimal(l.LineAmount)) : sum), new Decimal(0));
        documents.push({ key: /\[([^\]]+)\]$/.exec(j.Narration ?? '')?.[1] ?? '', reference: j.ManualJournalID, currency: '', form: 'journal', amount: decimalText(debit), posted_on: xeroDate(j.Date) });
      }
      return journals.length;
    });
    type Sales = { InvoiceID?: string; CreditNoteID?: string; Reference?: string; CurrencyCode?: string; Total?: string; Date?: string; Status?: string };
    for (const [collection, type, form] of [['Invoices', 'ACCREC', 'invoice'], ['CreditNotes', 'ACCRECCREDIT', 'credit_note']] as const) {
      await pages(`${collection}?where=${encodeURIComponent(`Type=="${type}" AND ${dates}`)}`, collection, (body) => {
        const list = (body[collection] ?? []) as Sales[];
        for (const d of list) {
          if (!['AUTHORISED', 'PAID'].includes(d.Status ?? '')) continue; // drafts, submitted, voided and deleted documents book nothing
          documents.push({ key: d.Reference ?? '', reference: d.InvoiceID ?? d.CreditNoteID ?? '', currency: d.CurrencyCode ?? '', form, amount: d.Total ?? '0', posted_on: xeroDate(d.Date) });
        }
        return list.length;
      });
    }
    return documents;
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
