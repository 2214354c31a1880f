// A NetSuite REST simulator for the tests, as strict as NetSuite where Accrue depends on it:
//   - every request authenticated: Token-Based Authentication (OAuth 1.0a, HMAC-SHA256, realm = account id) verified
//     here with node:crypto after RFC 5849 section 3.4, independently of the oauth-1.0a library the tests sign with
//     (known consumer and token, nonce replay and timestamp skew refused), or a bearer token that expires 60 minutes
//     after it was issued on an injectable clock (`bearerVerifier` can be replaced by an identity simulator's check);
//     a refusal is 401 with NetSuite's INVALID_LOGIN body (Error Handling in REST Web Services, "Invalid Login
//     Information": https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156570709583.html);
//   - journalEntry, invoice, creditMemo, customer and customerPayment upserted by external ID (PUT .../eid:<id>);
//   - references (subsidiary, account, item, currency, customer, tax code / type, nexus) checked against declared
//     records when `references` is given, refused as INVALID_KEY_OR_REF with `o:errorPath`; a customer's subsidiary
//     must be the transaction's ("Invalid entity reference key X for subsidiary Y");
//   - closed periods (`closedThrough`), a legacy-tax account (`legacyTax`: REST supports SuiteTax only), credit memo
//     and payment `apply` sublists reducing the invoice's amount remaining;
//   - the account's concurrency limit answered with 429 (Concurrency Governance:
//     https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/bridgehead_1525252812.html) and injectable faults.
// Without `references` the simulator accepts any reference (the mode older tests run in); authentication is always on.
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Decimal, decimalText } from '../../src/domain/money.js';
import { parseJsonDecimals } from '../../src/connectors/json-decimal.js';

export type Fault = '429' | '500' | 'timeout' | 'lost' | 'invalid';

/** The account and TBA credentials every simulator knows unless told otherwise (test credentials, not secrets). */
export const NS_SIM_ACCOUNT = '1234567';
export const NS_SIM_TBA = {
  consumerKey: 'accrue-test-consumer',
  consumerSecret: 'accrue-test-consumer-secret',
  tokenId: 'accrue-test-token',
  tokenSecret: 'accrue-test-token-secret',
};
/** NetSuite refuses TBA timestamps too far from its clock; 5 minutes here. */
export const NS_SIM_SKEW_SECONDS = 300;
export const NS_SIM_BEARER_SECONDS = 3600;
/** A bearer token every simulator issues at construction (60 minutes, like any other), for CLI tests passing NETSUITE_TOKEN. */
export const NS_SIM_BEARER = 'test-token';

export type SimRefKind = 'subsidiary' | 'account' | 'item' | 'currency' | 'customer' | 'tax_code' | 'tax_type' | 'nexus';
export interface SimRef {
  inactive?: boolean;
  externalId?: string;
  subsidiary?: string; // customers: the subsidiary they belong to
  symbol?: string; // currencies: the ISO code (SuiteQL currency.symbol)
}

export interface NetSuiteSimOptions {
  concurrencyLimit: number;
  timeoutDelayMs: number;
  putDelayMs?: number;
  serviceMs?: number;
  account?: string;
  /** Declared records by kind and internal id; when given, every reference must name one (active). */
  references?: Partial<Record<SimRefKind, Record<string, SimRef>>>;
  /** The account has legacy tax, not SuiteTax: taxDetails and SuiteTax records are refused. */
  legacyTax?: boolean;
  /** The last day of the last closed accounting period: transactions dated on or before it are refused. */
  closedThrough?: string;
}

interface Ref {
  id?: string;
  externalId?: string;
  refName?: string;
}

interface JournalEntry {
  externalId: string;
  tranDate?: string;
  subsidiary?: Ref;
  currency?: Ref;
  line: { items: Array<{ account?: Ref; debit?: string; credit?: string; entity?: Ref }> };
}

/** An invoice or creditMemo as the REST record API takes it (amounts read as their literal text). */
export interface SalesRecord {
  externalId?: string;
  tranId?: string;
  tranDate?: string;
  exchangeRate?: string; // base currency units per transaction unit, for a transaction in a foreign currency
  dueDate?: string;
  billingAddress?: {
    addressee?: string;
    addr1?: string;
    addr2?: string;
    addr3?: string;
    city?: string;
    state?: string;
    zip?: string;
    country?: { id?: string };
  };
  entity?: Ref;
  subsidiary?: Ref;
  currency?: Ref;
  memo?: string;
  nexus?: Ref;
  item?: {
    items?: Array<{ item?: Ref; description?: string; quantity?: string; rate?: string; amount?: string; taxDetailsReference?: string }>;
  };
  taxDetailsOverride?: boolean;
  taxDetails?: {
    items?: Array<{ taxDetailsReference?: string; taxType?: Ref; taxCode?: Ref; taxBasis?: string; taxRate?: string; taxAmount?: string }>;
  };
  apply?: { items?: Array<{ doc?: { id?: string }; apply?: boolean; amount?: string }> };
  total?: string; // computed by the simulator, as NetSuite does
}

interface CustomerRecord {
  externalId?: string;
  companyName?: string;
  subsidiary?: Ref;
  currency?: Ref;
  addressBook?: { items?: Array<{ defaultBilling?: boolean; addressBookAddress?: Record<string, unknown> }> };
}

interface PaymentRecord {
  externalId?: string;
  customer?: Ref;
  subsidiary?: Ref;
  tranDate?: string;
  currency?: Ref;
  account?: Ref;
  payment?: string;
  apply?: { items?: Array<{ doc?: { id?: string }; apply?: boolean; amount?: string }> };
}

/** A customer payment and the invoices it applies to (PreviousTransactionLineLink rows, linktype 'Payment'). */
export interface SimPayment {
  id: string;
  tranDate: string;
  modifiedAt: string; // 'YYYY-MM-DD HH:MM:SS', as TO_CHAR writes lastmodifieddate
  currency: string;
  externalId?: string; // set on payments pushed through the REST record API
  applications: Array<{ invoiceId: string; amount: string }>;
}

type Failure = { status: number; code: string; detail: string; path?: string };

/** RFC 3986 percent-encoding as RFC 5849 section 3.6 requires (unreserved characters kept). */
const pct = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The signature base string of RFC 5849 section 3.4.1, for HMAC-SHA256. */
export function tbaBaseString(method: string, url: string, oauthParams: Record<string, string>): string {
  const u = new URL(url);
  const defaultPort = (u.protocol === 'http:' && u.port === '80') || (u.protocol === 'https:' && u.port === '443') || u.port === '';
  const base = `${u.protocol.toLowerCase()}//${u.hostname.toLowerCase()}${defaultPort ? '' : `:${u.port}`}${u.pathname}`;
  const params: Array<[string, string]> = [];
  for (const [k, v] of u.searchParams) params.push([pct(k), pct(v)]);
  for (const [k, v] of Object.entries(oauthParams)) if (k !== 'realm' && k !== 'oauth_signature') params.push([pct(k), pct(v)]);
  params.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return [method.toUpperCase(), pct(base), pct(params.map(([k, v]) => `${k}=${v}`).join('&'))].join('&');
}

/** `OAuth realm="...", oauth_x="..."` -> its parameters, decoded. */
export function parseOAuthHeader(header: string): Record<string, string> | undefined {
  if (!/^OAuth\s/i.test(header)) return undefined;
  const out: Record<string, string> = {};
  for (const m of header.slice(6).matchAll(/([A-Za-z0-9_]+)="([^"]*)"/g)) out[m[1]!] = decodeURIComponent(m[2]!);
  return out;
}

export class NetSuiteSimulator {
  // Every transaction by external ID: journal entries (no type), invoices and credit memos (type set).
  readonly records = new Map<string, { id: string; type?: 'invoice' | 'creditMemo'; body: JournalEntry | SalesRecord; writes: number }>();
  /** Customers upserted through the record API, by external ID. */
  readonly customers = new Map<string, { id: string; body: CustomerRecord; writes: number }>();
  /** Customer payments pushed through the record API, by external ID. */
  readonly pushedPayments = new Map<string, { id: string; body: PaymentRecord; writes: number }>();
  readonly payments: SimPayment[] = [];
  readonly faults: Fault[] = [];
  /** Every request as it arrived (method and URL), to check which documents reached the ERP. */
  readonly seen: Array<{ method: string; url: string }> = [];
  /** Why each refused authentication was refused (never the secrets). */
  readonly authFailures: string[] = [];
  creates = 0;
  requests = 0;
  /** X-Accrue-Correlation of every request, in arrival order. */
  readonly correlations: string[] = [];
  inFlightMax = 0;
  private inFlight = 0;
  private app: FastifyInstance | undefined;
  private nextId = 7000; // customers; transactions are 1000 + creates, payments 9000 + n
  private readonly nonces = new Set<string>();
  private readonly bearers = new Map<string, number>(); // token -> expiry (ms on the clock)
  url = '';
  readonly account: string;
  /** TBA consumers and tokens the account knows. */
  readonly consumers = new Map<string, string>([[NS_SIM_TBA.consumerKey, NS_SIM_TBA.consumerSecret]]);
  readonly tokens = new Map<string, string>([[NS_SIM_TBA.tokenId, NS_SIM_TBA.tokenSecret]]);
  /** The simulator's clock (ms); tests move it to expire tokens. */
  clock: () => number = () => Date.now();
  /** Checks a bearer token; replaceable by an identity simulator's verifier. */
  bearerVerifier: (token: string, now: number) => boolean = (token, now) => {
    const expiry = this.bearers.get(token);
    return expiry !== undefined && now < expiry;
  };

  // serviceMs: a fixed service time for every request (GET and PUT), held in flight, as the ERP's own work.
  constructor(readonly options: NetSuiteSimOptions) {
    this.account = options.account ?? NS_SIM_ACCOUNT;
    this.bearers.set(NS_SIM_BEARER, this.clock() + NS_SIM_BEARER_SECONDS * 1000);
  }

  /** An OAuth 2.0 access token valid for 60 minutes from now on the simulator's clock. */
  issueBearer(): string {
    const token = randomBytes(24).toString('base64url');
    this.bearers.set(token, this.clock() + NS_SIM_BEARER_SECONDS * 1000);
    return token;
  }

  private error(status: number, code: string, detail: string, path?: string) {
    const titles: Record<number, string> = {
      400: 'Bad Request',
      401: 'Unauthorized',
      404: 'Not Found',
      429: 'Too Many Requests',
      500: 'Internal Server Error',
    };
    const sections: Record<number, string> = { 400: '15.5.1', 401: '15.5.2', 404: '15.5.5', 500: '15.6.1' };
    return {
      type:
        status === 429
          ? 'https://www.rfc-editor.org/rfc/rfc6585.html#section-4'
          : `https://www.rfc-editor.org/rfc/rfc9110.html#section-${sections[status] ?? '15.5.1'}`,
      title: titles[status] ?? 'Error',
      status,
      'o:errorDetails': [{ detail, 'o:errorCode': code, ...(path ? { 'o:errorPath': path } : {}) }],
    };
  }

  private fail(f: Failure) {
    return this.error(f.status, f.code, f.detail, f.path);
  }

  /** Authentication of one request; a reason when refused. */
  private authenticate(request: FastifyRequest): string | undefined {
    const header = request.headers.authorization;
    if (typeof header !== 'string') return 'no Authorization header';
    if (/^Bearer\s/i.test(header))
      return this.bearerVerifier(header.slice(7).trim(), this.clock()) ? undefined : 'bearer token unknown or expired';
    const oauth = parseOAuthHeader(header);
    if (!oauth) return 'neither OAuth nor Bearer';
    if (oauth.realm !== this.account) return 'realm is not the account id';
    if (oauth.oauth_signature_method !== 'HMAC-SHA256') return 'signature method is not HMAC-SHA256';
    if (oauth.oauth_version !== undefined && oauth.oauth_version !== '1.0') return 'oauth_version is not 1.0';
    const consumerSecret = this.consumers.get(oauth.oauth_consumer_key ?? '');
    if (consumerSecret === undefined) return 'unknown consumer key';
    const tokenSecret = this.tokens.get(oauth.oauth_token ?? '');
    if (tokenSecret === undefined) return 'unknown token';
    const timestamp = Number(oauth.oauth_timestamp);
    if (!/^\d+$/.test(oauth.oauth_timestamp ?? '') || Math.abs(timestamp - this.clock() / 1000) > NS_SIM_SKEW_SECONDS)
      return 'timestamp outside the allowed skew';
    if (!oauth.oauth_nonce) return 'no nonce';
    const url = `http://${request.headers.host}${request.url}`;
    const expected = createHmac('sha256', `${pct(consumerSecret)}&${pct(tokenSecret)}`)
      .update(tbaBaseString(request.method, url, oauth))
      .digest();
    const given = Buffer.from(oauth.oauth_signature ?? '', 'base64');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'signature does not match';
    const nonceKey = `${oauth.oauth_consumer_key}:${oauth.oauth_token}:${oauth.oauth_timestamp}:${oauth.oauth_nonce}`;
    if (this.nonces.has(nonceKey)) return 'nonce already used';
    this.nonces.add(nonceKey);
    return undefined;
  }

  /** A declared record of a kind, by a reference's id or external ID; in open mode any reference is known. */
  private lookup(kind: SimRefKind, ref: Ref | undefined): { id: string; ref: SimRef } | 'missing' | 'open' {
    if (kind === 'customer') {
      const created = [...this.customers.values()].find(
        (c) => c.id === ref?.id || (ref?.externalId !== undefined && c.body.externalId === ref.externalId),
      );
      if (created) return { id: created.id, ref: { externalId: created.body.externalId, subsidiary: created.body.subsidiary?.id } };
    }
    const table = this.options.references?.[kind];
    if (!this.options.references) return ref?.id || ref?.externalId || ref?.refName ? 'open' : 'missing';
    if (!table) return 'missing';
    if (ref?.id !== undefined && table[ref.id]) return { id: ref.id, ref: table[ref.id]! };
    const byEid = Object.entries(table).find(([, r]) => ref?.externalId !== undefined && r.externalId === ref.externalId);
    return byEid ? { id: byEid[0], ref: byEid[1] } : 'missing';
  }

  /** NetSuite's refusal of a reference it does not know (or that is inactive), pointing at the field. */
  private checkRef(kind: SimRefKind, ref: Ref | undefined, path: string): Failure | undefined {
    const found = this.lookup(kind, ref);
    const field = path
      .split('.')
      .pop()!
      .replace(/\[\d+\]$/, '');
    const shown = ref?.id ?? ref?.externalId ?? ref?.refName ?? '';
    if (found === 'missing' || (found !== 'open' && found.ref.inactive))
      return { status: 400, code: 'INVALID_KEY_OR_REF', detail: `Invalid Field Value ${shown} for the following field: ${field}`, path };
    return undefined;
  }

  private customerSubsidiary(entity: Ref | undefined): string | undefined {
    const found = this.lookup('customer', entity);
    return typeof found === 'object' ? found.ref.subsidiary : undefined;
  }

  private checkPeriod(tranDate: string | undefined): Failure | undefined {
    if (this.options.closedThrough && tranDate && tranDate <= this.options.closedThrough) {
      return {
        status: 400,
        code: 'USER_ERROR',
        detail: `The accounting period of the transaction date ${tranDate} is closed. You cannot post to a closed period.`,
      };
    }
    return undefined;
  }

  /** The transaction's subsidiary, currency and customer: known, and the customer belongs to the subsidiary. */
  private checkHeader(
    body: { subsidiary?: Ref; currency?: Ref; tranDate?: string },
    entity: Ref | undefined,
    entityPath: string,
  ): Failure | undefined {
    const failure =
      this.checkRef('subsidiary', body.subsidiary, 'subsidiary') ??
      this.checkRef('currency', body.currency, 'currency') ??
      (entity ? this.checkRef('customer', entity, entityPath) : undefined) ??
      this.checkPeriod(body.tranDate);
    if (failure) return failure;
    const customerSubsidiary = entity ? this.customerSubsidiary(entity) : undefined;
    if (customerSubsidiary !== undefined && body.subsidiary?.id !== undefined && customerSubsidiary !== body.subsidiary.id) {
      return {
        status: 400,
        code: 'INVALID_KEY_OR_REF',
        detail: `Invalid entity reference key ${entity?.id ?? entity?.externalId} for subsidiary ${body.subsidiary.id}.`,
        path: entityPath,
      };
    }
    return undefined;
  }

  /** The invoice's amount remaining: its total less what credit memos and payments apply to it (`except` left out). */
  amountRemaining(invoiceId: string, except?: string): Decimal {
    const invoice = [...this.records.values()].find((r) => r.id === invoiceId && r.type === 'invoice');
    if (!invoice) return new Decimal(0);
    let remaining = new Decimal((invoice.body as SalesRecord).total ?? '0');
    for (const r of this.records.values()) {
      if (r.type !== 'creditMemo' || r.id === except) continue;
      for (const a of (r.body as SalesRecord).apply?.items ?? [])
        if (a.apply !== false && a.doc?.id === invoiceId) remaining = remaining.minus(new Decimal(a.amount ?? '0'));
    }
    for (const p of this.payments) {
      if (p.id === except) continue;
      for (const a of p.applications) if (a.invoiceId === invoiceId) remaining = remaining.minus(new Decimal(a.amount));
    }
    return remaining;
  }

  /** An `apply` sublist: each line an open invoice of this simulator, applying no more than it has remaining. */
  private checkApply(apply: SalesRecord['apply'], self: string | undefined): Failure | undefined {
    for (const [index, line] of (apply?.items ?? []).entries()) {
      if (line.apply === false) continue;
      const path = `apply.items[${index}].doc`;
      const invoice = [...this.records.values()].find((r) => r.id === line.doc?.id && r.type === 'invoice');
      if (!invoice)
        return {
          status: 400,
          code: 'INVALID_KEY_OR_REF',
          detail: `Invalid Field Value ${line.doc?.id ?? ''} for the following field: doc`,
          path,
        };
      if (!/^\d+(\.\d+)?$/.test(line.amount ?? ''))
        return { status: 400, code: 'INVALID_FLD_VALUE', detail: `Invalid amount ${line.amount}`, path: `apply.items[${index}].amount` };
      if (new Decimal(line.amount!).gt(this.amountRemaining(invoice.id, self)))
        return {
          status: 400,
          code: 'USER_ERROR',
          detail: `The amount applied to invoice ${invoice.id} exceeds its amount due.`,
          path: `apply.items[${index}].amount`,
        };
    }
    return undefined;
  }

  /** A customer payment applied to invoices this simulator holds (by external ID); returns its internal id. */
  addPayment(payment: {
    tranDate: string;
    modifiedAt: string;
    currency?: string;
    applications: Array<{ invoiceExternalId: string; amount: string }>;
  }): string {
    const id = String(9000 + this.payments.length + 1);
    const applications = payment.applications.map((a) => {
      const record = this.records.get(a.invoiceExternalId);
      if (!record || record.type !== 'invoice') throw new Error(`no invoice ${a.invoiceExternalId} in the simulator`);
      return { invoiceId: record.id, amount: a.amount };
    });
    const currency =
      payment.currency ??
      this.currencySymbol((this.records.get(payment.applications[0]!.invoiceExternalId)!.body as SalesRecord).currency) ??
      'USD';
    this.payments.push({ id, tranDate: payment.tranDate, modifiedAt: payment.modifiedAt, currency, applications });
    return id;
  }

  /** Sales records of one type (invoice or creditMemo), by external ID. */
  sales(type: 'invoice' | 'creditMemo'): Array<{ eid: string; id: string; body: SalesRecord; writes: number }> {
    return [...this.records.entries()]
      .filter(([, r]) => r.type === type)
      .map(([eid, r]) => ({ eid, id: r.id, body: r.body as SalesRecord, writes: r.writes }));
  }

  /** The invoice / creditMemo upsert: required fields, references, item and tax-detail lines, total = amounts + tax. */
  private validateSales(body: SalesRecord): Failure | { total: string } {
    const missing = [
      !body.entity?.externalId && !body.entity?.id && 'Customer',
      !body.subsidiary?.id && !body.subsidiary?.externalId && 'Subsidiary',
      !body.tranDate && 'Date',
    ].filter(Boolean);
    if (missing.length > 0) return { status: 400, code: 'USER_ERROR', detail: `Please enter value(s) for: ${missing.join(', ')}` };
    if (this.options.legacyTax && (body.taxDetails || body.taxDetailsOverride || body.nexus)) {
      return {
        status: 400,
        code: 'INVALID_FLD_VALUE',
        detail:
          'The taxDetails sublist and nexus field are available only when the SuiteTax feature is enabled. This account uses legacy tax.',
        path: 'taxDetails',
      };
    }
    const header = this.checkHeader(body, body.entity, 'entity');
    if (header) return header;
    const items = body.item?.items ?? [];
    if (items.length === 0)
      return { status: 400, code: 'USER_ERROR', detail: 'You must enter at least one line item for this transaction.' };
    const decimal = /^-?\d+(\.\d+)?$/;
    let total = new Decimal(0);
    for (const [index, line] of items.entries()) {
      if (!line.item?.externalId && !line.item?.id)
        return { status: 400, code: 'INVALID_FLD_VALUE', detail: `Line ${index + 1}: Please enter value(s) for: Item` };
      const ref = this.checkRef('item', line.item, `item.items[${index}].item`);
      if (ref) return ref;
      if (!decimal.test(line.amount ?? ''))
        return { status: 400, code: 'INVALID_FLD_VALUE', detail: `Line ${index + 1}: Invalid amount ${line.amount}` };
      total = total.plus(new Decimal(line.amount!));
    }
    if (body.taxDetailsOverride) {
      if (body.nexus) {
        const ref = this.checkRef('nexus', body.nexus, 'nexus');
        if (ref) return ref;
      }
      const references = new Set(items.map((l) => l.taxDetailsReference));
      for (const [index, detail] of (body.taxDetails?.items ?? []).entries()) {
        if (!references.has(detail.taxDetailsReference))
          return { status: 400, code: 'INVALID_FLD_VALUE', detail: `Tax detail ${detail.taxDetailsReference} references no line` };
        if (!detail.taxCode?.externalId && !detail.taxCode?.id)
          return { status: 400, code: 'INVALID_FLD_VALUE', detail: 'Please enter value(s) for: Tax Code' };
        const ref =
          (detail.taxType ? this.checkRef('tax_type', detail.taxType, `taxDetails.items[${index}].taxType`) : undefined) ??
          this.checkRef('tax_code', detail.taxCode, `taxDetails.items[${index}].taxCode`);
        if (ref) return ref;
        if (!decimal.test(detail.taxAmount ?? ''))
          return { status: 400, code: 'INVALID_FLD_VALUE', detail: `Invalid tax amount ${detail.taxAmount}` };
        total = total.plus(new Decimal(detail.taxAmount!));
      }
    }
    return { total: decimalText(total) };
  }

  /** Transforms counted, to name the records made without an external ID. */
  transforms = 0;

  /** An invoice transformed into a credit memo: its lines, tax and parties copied, applied to it up to what is due. */
  private transform(params: { type: string; id: string; to: string }, input: unknown): Failure | string {
    if (params.type !== 'invoice' || params.to !== 'creditMemo')
      return {
        status: 400,
        code: 'INVALID_TRANSFORM',
        detail: `Transformation from ${params.type} to ${params.to} is not supported by this simulator (it transforms invoice to creditMemo).`,
      };
    const body = (input ?? {}) as { externalId?: string; tranDate?: string; memo?: string };
    const unknown = Object.keys(body).filter((k) => !['externalId', 'tranDate', 'memo'].includes(k));
    if (unknown.length > 0)
      return {
        status: 400,
        code: 'INVALID_FLD_VALUE',
        detail: `This simulator sets only externalId, tranDate and memo: ${unknown.join(', ')}`,
      };
    const source = [...this.records.values()].find((r) => r.id === params.id && r.type === 'invoice');
    if (!source) return { status: 404, code: 'NONEXISTENT_ID', detail: `Record invoice ${params.id} was not found.` };
    const period = this.checkPeriod(body.tranDate);
    if (period) return period;
    this.transforms += 1;
    const eid = body.externalId ?? `transform:${this.transforms}`;
    if (this.records.has(eid)) return { status: 400, code: 'DUP_RCRD', detail: `A record with external ID ${eid} already exists.` };
    const invoice = source.body as SalesRecord;
    const total = new Decimal(invoice.total ?? '0');
    const applied = Decimal.min(total, this.amountRemaining(source.id));
    const memo: SalesRecord = {
      ...invoice,
      externalId: eid,
      tranDate: body.tranDate ?? invoice.tranDate,
      memo: body.memo ?? invoice.memo,
      apply: { items: applied.gt(0) ? [{ doc: { id: source.id }, apply: true, amount: decimalText(applied) }] : [] },
      total: decimalText(total),
    };
    delete memo.tranId;
    delete memo.dueDate;
    this.creates += 1;
    this.records.set(eid, { id: String(1000 + this.creates), type: 'creditMemo', body: memo, writes: 1 });
    return this.records.get(eid)!.id;
  }

  /** Oracle's TO_CHAR: no trailing zeros, no leading zero (.5). */
  private oracleText(d: Decimal) {
    return decimalText(d).replace(/^(-?)0\./, (_m, sign: string) => `${sign}.`);
  }

  /** SuiteQL over customer payments: the query paymentsQuery writes (CustPymt joined to invoices), since a timestamp. */
  private paymentRows(q: string, query: { limit?: string; offset?: string }) {
    if (
      !q.includes("p.type = 'CustPymt'") ||
      !q.includes("l.linktype = 'Payment'") ||
      !/JOIN previoustransactionlinelink l ON l\.nextdoc = p\.id/i.test(q)
    )
      return undefined;
    const since = /p\.lastmodifieddate >= TO_TIMESTAMP\('([^']+)', 'YYYY-MM-DD HH24:MI:SS'\)/.exec(q)?.[1] ?? '';
    const excluded = /p\.externalid NOT LIKE '([A-Za-z0-9_-]+)%'/.exec(q)?.[1];
    const invoices = new Map(
      [...this.records.entries()].filter(([, r]) => r.type === 'invoice').map(([eid, r]) => [r.id, { eid, body: r.body as SalesRecord }]),
    );
    const rows = this.payments
      .filter((p) => p.modifiedAt >= since)
      .filter((p) => excluded === undefined || p.externalId === undefined || !p.externalId.startsWith(excluded))
      .flatMap((p) => p.applications.map((a) => ({ p, a })))
      .sort((x, y) =>
        x.p.modifiedAt < y.p.modifiedAt
          ? -1
          : x.p.modifiedAt > y.p.modifiedAt
            ? 1
            : Number(x.p.id) - Number(y.p.id) || Number(x.a.invoiceId) - Number(y.a.invoiceId),
      )
      .map(({ p, a }) => ({
        links: [],
        payment_id: p.id,
        payment_date: p.tranDate,
        modified_at: p.modifiedAt,
        currency: p.currency,
        invoice_id: a.invoiceId,
        invoice_external_id: invoices.get(a.invoiceId)?.eid ?? null,
        invoice_number: invoices.get(a.invoiceId)?.body.tranId ?? null,
        amount: this.oracleText(new Decimal(a.amount)),
      }));
    return this.page(rows, query);
  }

  private page<T>(rows: T[], query: { limit?: string; offset?: string }) {
    const start = Number(query.offset ?? 0);
    const items = rows.slice(start, start + Math.min(1000, Number(query.limit ?? 1000)));
    return { links: [], count: items.length, hasMore: start + items.length < rows.length, offset: start, totalResults: rows.length, items };
  }

  /** SuiteQL the connector writes besides payments and listings: an invoice by number, a reference's state, the first open period. */
  private otherQuery(q: string, query: { limit?: string; offset?: string }): object | Failure | undefined {
    const invoice = /WHERE t\.type = 'CustInvc' AND t\.tranid = '((?:[^']|'')*)'$/.exec(q);
    if (invoice) {
      const number = invoice[1]!.replace(/''/g, "'");
      const rows = [...this.records.values()]
        .filter((r) => r.type === 'invoice' && (r.body as SalesRecord).tranId === number)
        .map((r) => ({ links: [], id: r.id, remaining: this.oracleText(this.amountRemaining(r.id)) }));
      return this.page(rows, query);
    }
    const reference = /^SELECT id, isinactive FROM (\w+) WHERE (?:id = (\d+)|externalid = '((?:[^']|'')*)')$/.exec(q);
    if (reference) {
      const kinds: Record<string, SimRefKind> = {
        subsidiary: 'subsidiary',
        account: 'account',
        item: 'item',
        currency: 'currency',
        customer: 'customer',
        salestaxitem: 'tax_code',
        taxtype: 'tax_type',
        nexus: 'nexus',
      };
      const kind = kinds[reference[1]!];
      if (!kind) return { status: 400, code: 'INVALID_SEARCH', detail: `Invalid search query. Unknown table ${reference[1]}.` };
      if (this.options.legacyTax && (kind === 'nexus' || kind === 'tax_type'))
        return { status: 400, code: 'INVALID_SEARCH', detail: `Record type ${reference[1]} is available only with the SuiteTax feature.` };
      const found = this.lookup(kind, reference[2] ? { id: reference[2] } : { externalId: reference[3]!.replace(/''/g, "'") });
      const rows =
        found === 'missing'
          ? []
          : found === 'open'
            ? [{ links: [], id: reference[2] ?? '0', isinactive: 'F' }]
            : [{ links: [], id: found.id, isinactive: found.ref.inactive ? 'T' : 'F' }];
      return this.page(rows, query);
    }
    if (/FROM accountingperiod p WHERE p\.isposting = 'T' AND p\.closed = 'F'/.test(q)) {
      const next = this.options.closedThrough
        ? new Date(Date.parse(`${this.options.closedThrough}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10)
        : null;
      return this.page([{ links: [], first_open: next }], query);
    }
    return undefined;
  }

  private injected(fault: Fault | undefined): Failure | 'timeout' | undefined {
    if (fault === '429')
      return { status: 429, code: 'CONCURRENCY_LIMIT_EXCEEDED', detail: 'Concurrent request limit exceeded. Request blocked.' };
    if (fault === '500') return { status: 500, code: 'UNEXPECTED_ERROR', detail: 'An unexpected error occurred.' };
    if (fault === 'invalid') return { status: 400, code: 'INVALID_FLD_VALUE', detail: 'Invalid account reference key 9999.' };
    if (fault === 'timeout') return 'timeout';
    return undefined;
  }

  /** A currency reference as SuiteQL's currency.symbol: the declared record's symbol, else the reference's text. */
  currencySymbol(ref: Ref | undefined): string | null {
    if (!ref) return null;
    const declared = ref.id !== undefined ? this.options.references?.currency?.[ref.id]?.symbol : undefined;
    return declared ?? ref.refName ?? ref.externalId ?? ref.id ?? null;
  }

  private nextInternalId(): string {
    this.nextId += 1;
    return String(this.nextId);
  }

  async start(): Promise<void> {
    const app = Fastify();
    this.app = app;
    // Amounts stay exact: JSON numbers in request bodies are read as their literal text.
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
      try {
        done(null, parseJsonDecimals(String(body)));
      } catch (error) {
        done(error as Error, undefined);
      }
    });
    app.addHook('onRequest', async (request, reply) => {
      this.requests += 1;
      this.seen.push({ method: request.method, url: request.url });
      const correlation = request.headers['x-accrue-correlation'];
      if (typeof correlation === 'string') this.correlations.push(correlation);
      const refused = this.authenticate(request);
      if (refused) {
        this.authFailures.push(refused);
        return reply
          .code(401)
          .header('www-authenticate', `OAuth realm="${this.account}"`)
          .send(
            this.error(
              401,
              'INVALID_LOGIN',
              'Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.',
            ),
          );
      }
      this.inFlight += 1;
      this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
      reply.raw.on('close', () => (this.inFlight -= 1));
      if (this.inFlight > this.options.concurrencyLimit) {
        return reply
          .code(429)
          .header('retry-after', '0')
          .send(this.error(429, 'CONCURRENCY_LIMIT_EXCEEDED', 'Concurrent request limit exceeded. Request blocked.'));
      }
      if (this.options.serviceMs) await new Promise((r) => setTimeout(r, this.options.serviceMs));
    });
    const eidOf = (request: FastifyRequest) => decodeURIComponent((request.params as { eid: string }).eid).replace(/^eid:/, '');
    /** Faults, the PUT delay, then the write; 'lost' commits and drops the answer. */
    const put = async (request: FastifyRequest, reply: import('fastify').FastifyReply, type: string, write: () => Failure | string) => {
      const fault = this.faults.shift();
      const injected = this.injected(fault);
      if (injected === 'timeout') {
        await new Promise((r) => setTimeout(r, this.options.timeoutDelayMs));
        return reply.code(500).send(this.error(500, 'TIMEOUT', 'too late'));
      }
      if (injected)
        return reply
          .code(injected.status)
          .header(injected.status === 429 ? 'retry-after' : 'x-sim', '0')
          .send(this.fail(injected));
      if (this.options.putDelayMs) await new Promise((r) => setTimeout(r, this.options.putDelayMs));
      const written = write();
      if (typeof written !== 'string') return reply.code(written.status).send(this.fail(written));
      if (fault === 'lost') {
        // Committed, but the answer never arrives.
        request.raw.socket.destroy();
        return reply;
      }
      return reply.code(204).header('location', `${this.url}/services/rest/record/v1/${type}/${written}`).send();
    };
    const upsertTransaction = (eid: string, type: 'invoice' | 'creditMemo' | undefined, body: JournalEntry | SalesRecord): string => {
      const existing = this.records.get(eid);
      if (existing) {
        existing.body = body;
        existing.writes += 1;
      } else {
        this.creates += 1;
        this.records.set(eid, { id: String(1000 + this.creates), ...(type ? { type } : {}), body, writes: 1 });
      }
      return this.records.get(eid)!.id;
    };

    app.get('/services/rest/record/v1/journalEntry/:eid', async (request, reply) => {
      const eid = eidOf(request);
      const found = this.records.get(eid);
      if (!found || found.type !== undefined)
        return reply.code(404).send(this.error(404, 'NONEXISTENT_ID', `Record ${eid} was not found.`));
      return { ...found.body, id: found.id, externalId: eid };
    });
    app.put('/services/rest/record/v1/journalEntry/:eid', async (request, reply) =>
      put(request, reply, 'journalEntry', () => {
        const eid = eidOf(request);
        const body = request.body as JournalEntry;
        const header = this.checkHeader(body, undefined, 'entity');
        if (header) return header;
        let debit = new Decimal(0);
        let credit = new Decimal(0);
        for (const [index, item] of body.line.items.entries()) {
          const ref =
            this.checkRef('account', item.account, `line.items[${index}].account`) ??
            (item.entity ? this.checkRef('customer', item.entity, `line.items[${index}].entity`) : undefined);
          if (ref) return ref;
          debit = debit.plus(new Decimal(item.debit ?? '0'));
          credit = credit.plus(new Decimal(item.credit ?? '0'));
        }
        if (!debit.eq(credit)) return { status: 400, code: 'JE_UNBALANCED', detail: 'This transaction is not in balance.' };
        const existing = this.records.get(eid);
        if (existing && existing.type !== undefined)
          return { status: 400, code: 'DUP_RCRD', detail: `A record with external ID ${eid} already exists.` };
        return upsertTransaction(eid, undefined, body);
      }),
    );
    for (const type of ['invoice', 'creditMemo'] as const) {
      app.get(`/services/rest/record/v1/${type}/:eid`, async (request, reply) => {
        const eid = eidOf(request);
        const found = this.records.get(eid);
        if (!found || found.type !== type) return reply.code(404).send(this.error(404, 'NONEXISTENT_ID', `Record ${eid} was not found.`));
        return {
          ...found.body,
          id: found.id,
          externalId: eid,
          ...(type === 'invoice' ? { amountRemaining: this.oracleText(this.amountRemaining(found.id)) } : {}),
        };
      });
      app.put(`/services/rest/record/v1/${type}/:eid`, async (request, reply) =>
        put(request, reply, type, () => {
          const eid = eidOf(request);
          const body = request.body as SalesRecord;
          const checked = this.validateSales(body);
          if ('code' in checked) return checked;
          const existing = this.records.get(eid);
          if (existing && existing.type !== type)
            return { status: 400, code: 'DUP_RCRD', detail: `A record with external ID ${eid} already exists.` };
          if (type === 'creditMemo') {
            const applied = this.checkApply(body.apply, existing?.id);
            if (applied) return applied;
          }
          return upsertTransaction(eid, type, { ...body, total: checked.total });
        }),
      );
    }
    // Transforming Records: POST record/v1/{type}/{id}/!transform/{toType}, 204 with the new record's Location. This
    // simulator transforms an invoice into a credit memo only (the pair a void uses), and refuses what NetSuite refuses:
    // an unsupported pair, a source that does not exist, an external ID already taken, a date in a closed period.
    app.post('/services/rest/record/v1/:type/:id/!transform/:to', async (request, reply) =>
      put(request, reply, 'creditMemo', () => this.transform(request.params as { type: string; id: string; to: string }, request.body)),
    );
    app.get('/services/rest/record/v1/customer/:eid', async (request, reply) => {
      const eid = eidOf(request);
      const found = this.customers.get(eid) ?? [...this.customers.values()].find((c) => c.id === eid);
      if (!found) return reply.code(404).send(this.error(404, 'NONEXISTENT_ID', `Record ${eid} was not found.`));
      return { ...found.body, id: found.id };
    });
    app.put('/services/rest/record/v1/customer/:eid', async (request, reply) =>
      put(request, reply, 'customer', () => {
        const eid = eidOf(request);
        const body = request.body as CustomerRecord;
        if (!body.companyName) return { status: 400, code: 'USER_ERROR', detail: 'Please enter value(s) for: Company Name' };
        const ref = this.checkRef('subsidiary', body.subsidiary, 'subsidiary') ?? this.checkRef('currency', body.currency, 'currency');
        if (ref) return ref;
        const existing = this.customers.get(eid);
        if (existing) {
          existing.body = body;
          existing.writes += 1;
          return existing.id;
        }
        const id = this.nextInternalId();
        this.customers.set(eid, { id, body: { ...body, externalId: eid }, writes: 1 });
        return id;
      }),
    );
    app.get('/services/rest/record/v1/customerPayment/:eid', async (request, reply) => {
      const eid = eidOf(request);
      const found = this.pushedPayments.get(eid);
      if (!found) return reply.code(404).send(this.error(404, 'NONEXISTENT_ID', `Record ${eid} was not found.`));
      return { ...found.body, id: found.id, externalId: eid };
    });
    app.put('/services/rest/record/v1/customerPayment/:eid', async (request, reply) =>
      put(request, reply, 'customerPayment', () => {
        const eid = eidOf(request);
        const body = request.body as PaymentRecord;
        if (!body.customer || !body.payment || !body.tranDate)
          return { status: 400, code: 'USER_ERROR', detail: 'Please enter value(s) for: Customer, Payment Amount, Date' };
        const header = this.checkHeader(body, body.customer, 'customer') ?? this.checkRef('account', body.account, 'account');
        if (header) return header;
        const existing = this.pushedPayments.get(eid);
        const applied = this.checkApply(body.apply, existing?.id);
        if (applied) return applied;
        const applications = (body.apply?.items ?? [])
          .filter((a) => a.apply !== false)
          .map((a) => ({ invoiceId: a.doc!.id!, amount: a.amount! }));
        const modifiedAt = new Date(this.clock()).toISOString().slice(0, 19).replace('T', ' ');
        if (existing) {
          existing.body = body;
          existing.writes += 1;
          const payment = this.payments.find((p) => p.id === existing.id)!;
          Object.assign(payment, { tranDate: body.tranDate, modifiedAt, applications });
          return existing.id;
        }
        const id = String(9000 + this.payments.length + 1);
        this.pushedPayments.set(eid, { id, body, writes: 1 });
        this.payments.push({
          id,
          tranDate: body.tranDate,
          modifiedAt,
          currency: this.currencySymbol(body.currency) ?? '',
          externalId: eid,
          applications,
        });
        return id;
      }),
    );
    // A SuiteTax-only record type: present only when the account has SuiteTax.
    app.get('/services/rest/record/v1/nexus', async (_request, reply) => {
      if (this.options.legacyTax)
        return reply
          .code(400)
          .send(
            this.error(
              400,
              'INVALID_PARAMETER',
              "Record type 'nexus' does not exist. Nexus records are available only when the SuiteTax feature is enabled.",
            ),
          );
      const nexus = Object.keys(this.options.references?.nexus ?? {})
        .slice(0, 1)
        .map((id) => ({ links: [], id }));
      return { links: [], count: nexus.length, hasMore: false, offset: 0, totalResults: nexus.length, items: nexus };
    });
    // SuiteQL: the queries the connector writes (payments, listings, invoices by number, reference states, periods).
    app.post('/services/rest/query/v1/suiteql', async (request, reply) => {
      const q = String((request.body as { q?: string }).q ?? '');
      const payments = this.paymentRows(q, request.query as { limit?: string; offset?: string });
      if (payments) return payments;
      const other = this.otherQuery(q, request.query as { limit?: string; offset?: string });
      if (other && 'code' in other) return reply.code((other as Failure).status).send(this.fail(other as Failure));
      if (other) return other;
      const subsidiary = /tl\.subsidiary = '([^']*)'/.exec(q)?.[1];
      const from = /trandate >= TO_DATE\('(\d{4}-\d{2}-\d{2})'/.exec(q)?.[1];
      const to = /trandate < TO_DATE\('(\d{4}-\d{2}-\d{2})'/.exec(q)?.[1];
      if (!subsidiary || !from || !to) return reply.code(400).send(this.error(400, 'INVALID_SEARCH', 'Unsupported query.'));
      const { limit, offset } = request.query as { limit?: string; offset?: string };
      const oracleText = (d: Decimal) => this.oracleText(d);
      // Journal entries (type Journal: their debit total) and sales records (CustInvc, CustCred: their total with tax).
      const types = { invoice: 'CustInvc', creditMemo: 'CustCred' } as const;
      const rows = [...this.records.entries()]
        .map(([eid, r]) => ({
          eid,
          id: r.id,
          type: r.type,
          body: r.body as (JournalEntry | SalesRecord) & {
            tranDate?: string;
            subsidiary?: { id?: string };
            currency?: { refName?: string };
          },
        }))
        .filter(({ body }) => body.subsidiary?.id === subsidiary && (body.tranDate ?? '') >= from && (body.tranDate ?? '') < to)
        .sort((a, b) => Number(a.id) - Number(b.id))
        .map(({ eid, id, type, body }) => ({
          links: [],
          id,
          externalid: eid,
          type: type === undefined ? 'Journal' : types[type],
          currency: this.currencySymbol(body.currency),
          trandate: body.tranDate,
          amount: oracleText(
            type === undefined
              ? (body as JournalEntry).line.items.reduce((sum, item) => sum.plus(new Decimal(item.debit ?? '0')), new Decimal(0))
              : new Decimal((body as SalesRecord).total ?? '0'),
          ),
          // The tax lines' sum (transactionline.taxline = 'T'): a journal entry has none.
          tax: oracleText(
            type === undefined
              ? new Decimal(0)
              : ((body as SalesRecord).taxDetails?.items ?? []).reduce(
                  (sum, d) => sum.plus(new Decimal(d.taxAmount ?? '0')),
                  new Decimal(0),
                ),
          ),
        }));
      const start = Number(offset ?? 0);
      const items = rows.slice(start, start + Number(limit ?? 1000));
      return {
        links: [],
        count: items.length,
        hasMore: start + items.length < rows.length,
        offset: start,
        totalResults: rows.length,
        items,
      };
    });
    this.url = await app.listen({ host: '127.0.0.1', port: 0 });
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }
}
