// A Xero Accounting API simulator, as strict as Xero where Accrue depends on it:
// - every request authenticated: a bearer token the simulator issued (expiring on an injectable clock; 401 in Xero's
//   shape, `TokenExpired` or `AuthenticationUnsuccessful`) and an `xero-tenant-id` the token was granted (403
//   otherwise), or an injected `auth` hook (test/support/oauth-sim.ts);
// - data per tenant (organisation): two tenants never see each other's documents, contacts or limits;
// - accounts, tax rates, items, currencies and contacts configured per tenant; unknown, archived or deleted ones
//   refused with Xero's ValidationException shape and messages (as integrators report them: "Account code '120' is
//   not a valid code for this document.", "The TaxType code 'X' does not exist or cannot be used for this type of
//   transaction.", "The contact name X is already assigned to another contact. The contact name must be unique across
//   all active contacts.", "The document date cannot be before the period lock date, currently set at 30-Nov-2018");
// - the organisation's PeriodLockDate and EndOfYearLockDate;
// - 429 per tenant for 5 concurrent calls, 60 a minute and 5,000 a day, with X-Rate-Limit-Problem (concurrent,
//   minute, day) and Retry-After in seconds;
// - every request body validated against Xero's OpenAPI description (../shared/specs/xero/xero_accounting.yaml) with
//   ajv, the schemas closed (a property the spec does not name is refused: stricter than Xero, which ignores it, so a
//   misspelt field fails here instead of being silently dropped there); an invalid body is a 400
//   PostDataInvalidException;
// - Idempotency-Key on writes (a repeated key returns the first answer), faults injected for the outbox tests.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import type { Fault } from './netsuite-sim.js';
import { Decimal, decimalText } from '../../src/domain/money.js';
import { parseJsonDecimals } from '../../src/connectors/json-decimal.js';

// ---------- Xero's request schemas ----------

/** Xero's OpenAPI description: ACCRUE_XERO_SPEC, the shared copy beside the repository, or the copy in test/fixtures/xero. */
export function xeroSpecPath(): string {
  const candidates = [
    process.env.ACCRUE_XERO_SPEC,
    '../shared/specs/xero/xero_accounting.yaml',
    '/work/shared/specs/xero/xero_accounting.yaml',
    'test/fixtures/xero/xero_accounting.yaml',
  ]
    .filter((p): p is string => !!p)
    .map((p) => resolve(p));
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`Xero's spec xero_accounting.yaml not found at ${candidates.join(', ')} (set ACCRUE_XERO_SPEC)`);
  return found;
}

/** The spec's schemas closed: a property the spec does not name is an error (the spec itself leaves objects open). */
function closed(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closed);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) if (!k.startsWith('x-') && k !== 'externalDocs' && k !== 'example') out[k] = closed(v);
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  if (typeof out.$ref === 'string') return { $ref: (out.$ref as string).replace('#/components/schemas/', 'xero#/components/schemas/') };
  return out;
}

/** The request schemas Accrue's connector uses, by the name the spec gives them. */
export type XeroRequestSchema =
  'ManualJournals' | 'Invoices' | 'CreditNotes' | 'Contacts' | 'Payments' | 'Allocations' | 'Invoice' | 'CreditNote';
let compiled: Map<string, ValidateFunction> | undefined;

/** Errors of `body` against the spec's schema `name` (closed); [] when it fits. */
export function xeroSchemaErrors(name: XeroRequestSchema, body: unknown): string[] {
  if (!compiled) {
    const spec = parse(readFileSync(xeroSpecPath(), 'utf8')) as { components: { schemas: Record<string, unknown> } };
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    ajv.addSchema({ $id: 'xero', components: { schemas: closed(spec.components.schemas) } });
    compiled = new Map();
    for (const n of ['ManualJournals', 'Invoices', 'CreditNotes', 'Contacts', 'Payments', 'Allocations', 'Invoice', 'CreditNote'])
      compiled.set(n, ajv.compile({ $ref: `xero#/components/schemas/${n}` }));
  }
  const validate = compiled.get(name)!;
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
}

// ---------- data ----------

/** An ACCREC invoice or ACCRECCREDIT credit note as stored; amounts are the literal text of the request. */
export interface XeroSalesDocument {
  id: string; // InvoiceID or CreditNoteID
  Type: 'ACCREC' | 'ACCRECCREDIT';
  Number: string; // InvoiceNumber or CreditNoteNumber
  Reference: string;
  Contact: { ContactID?: string; ContactNumber?: string; Name?: string };
  CurrencyCode: string;
  Date: string;
  DueDate?: string;
  Status: string;
  LineItems: Array<{
    Description?: string;
    Quantity?: string;
    UnitAmount?: string;
    LineAmount?: string;
    AccountCode?: string;
    ItemCode?: string;
    TaxType?: string;
    TaxAmount?: string;
  }>;
  Total: string;
  TotalTax: string;
  /** Invoices: what is still owed; credit notes: RemainingCredit. Absent on documents pushed by hand: the Total. */
  AmountDue?: string;
  AmountPaid?: string;
  AmountCredited?: string;
  RemainingCredit?: string;
  Allocations?: Array<{ AllocationID: string; Amount: string; Date: string; InvoiceID: string; CreditNoteID: string }>;
}

export interface XeroSimPayment {
  PaymentID: string;
  Date: string; // YYYY-MM-DD
  Amount: string;
  Status: 'AUTHORISED' | 'DELETED';
  PaymentType: 'ACCRECPAYMENT' | 'ARCREDITPAYMENT';
  UpdatedDateUTC: number; // ms since the epoch
  invoiceId: string;
  Reference?: string;
  AccountCode?: string;
}

export interface XeroSimContact {
  ContactID: string;
  ContactNumber?: string;
  Name: string;
  ContactStatus: 'ACTIVE' | 'ARCHIVED' | 'GDPRREQUEST';
  TaxNumber?: string;
  DefaultCurrency?: string;
  Addresses?: Array<Record<string, string>>;
  UpdatedDateUTC: number;
}

export interface XeroSimAccount {
  AccountID: string;
  Code: string;
  Name: string;
  Type: string; // REVENUE, BANK, CURRLIAB, CURRENT, ...
  Status: 'ACTIVE' | 'ARCHIVED' | 'DELETED';
  EnablePaymentsToAccount: boolean;
}

export interface XeroSimTaxRate {
  Name: string;
  TaxType: string;
  Status: 'ACTIVE' | 'DELETED' | 'ARCHIVED' | 'PENDING';
  EffectiveRate: string;
}

export interface XeroSimItem {
  ItemID: string;
  Code: string;
  Name: string;
  IsSold: boolean;
}

export interface XeroTenantConfig {
  name?: string;
  baseCurrency?: string; // default USD
  currencies?: string[]; // enabled currencies besides the base currency
  accounts?: Array<string | (Partial<XeroSimAccount> & { Code: string })>;
  taxTypes?: Array<string | (Partial<XeroSimTaxRate> & { TaxType: string })>;
  items?: Array<string | (Partial<XeroSimItem> & { Code: string })>;
  contacts?: Array<Partial<XeroSimContact> & { Name: string }>;
  periodLockDate?: string; // YYYY-MM-DD
  endOfYearLockDate?: string;
}

/** One Xero organisation: its settings, its documents, its limits. */
export class XeroTenant {
  name: string;
  baseCurrency: string;
  readonly currencies = new Set<string>();
  readonly accounts = new Map<string, XeroSimAccount>();
  readonly taxRates = new Map<string, XeroSimTaxRate>();
  readonly items = new Map<string, XeroSimItem>();
  readonly contacts: XeroSimContact[] = [];
  periodLockDate: string | undefined;
  endOfYearLockDate: string | undefined;
  readonly journals: Array<{
    ManualJournalID: string;
    Narration: string;
    lines: string[];
    accounts?: string[];
    Date?: string;
    Status?: string;
  }> = [];
  readonly invoices: XeroSalesDocument[] = [];
  readonly creditNotes: XeroSalesDocument[] = [];
  readonly payments: XeroSimPayment[] = [];
  /** Every write, as sent: method, path and body text (the contract test validates them again). */
  readonly writes: Array<{ method: string; path: string; body: string }> = [];
  readonly answers = new Map<string, string>();
  inFlight = 0;
  minuteCalls: number[] = [];
  dayCalls: number[] = [];
  calls = 0;

  constructor(
    readonly id: string,
    config: XeroTenantConfig = {},
  ) {
    this.name = config.name ?? id;
    this.baseCurrency = config.baseCurrency ?? 'USD';
    this.currencies.add(this.baseCurrency);
    for (const c of config.currencies ?? []) this.currencies.add(c);
    for (const a of config.accounts ?? []) this.addAccount(typeof a === 'string' ? { Code: a } : a);
    for (const t of config.taxTypes ?? []) this.addTaxRate(typeof t === 'string' ? { TaxType: t } : t);
    for (const i of config.items ?? []) this.addItem(typeof i === 'string' ? { Code: i } : i);
    for (const c of config.contacts ?? []) this.addContact(c);
    this.periodLockDate = config.periodLockDate;
    this.endOfYearLockDate = config.endOfYearLockDate;
  }

  addAccount(a: Partial<XeroSimAccount> & { Code: string }): XeroSimAccount {
    const account: XeroSimAccount = {
      AccountID: randomUUID(),
      Name: `Account ${a.Code}`,
      Type: 'REVENUE',
      Status: 'ACTIVE',
      EnablePaymentsToAccount: a.Type === 'BANK',
      ...a,
    };
    this.accounts.set(account.Code, account);
    return account;
  }

  addTaxRate(t: Partial<XeroSimTaxRate> & { TaxType: string }): XeroSimTaxRate {
    const rate: XeroSimTaxRate = { Name: t.TaxType, Status: 'ACTIVE', EffectiveRate: '0', ...t };
    this.taxRates.set(rate.TaxType, rate);
    return rate;
  }

  addItem(i: Partial<XeroSimItem> & { Code: string }): XeroSimItem {
    const item: XeroSimItem = { ItemID: randomUUID(), Name: i.Code, IsSold: true, ...i };
    this.items.set(item.Code, item);
    return item;
  }

  addContact(c: Partial<XeroSimContact> & { Name: string }): XeroSimContact {
    const contact: XeroSimContact = { ContactID: randomUUID(), ContactStatus: 'ACTIVE', UpdatedDateUTC: Date.now(), ...c };
    this.contacts.push(contact);
    return contact;
  }

  /** The later of the two lock dates, with its name as Xero's message gives it. */
  lock(): { date: string; kind: string } | undefined {
    const locks = [
      { date: this.periodLockDate, kind: 'period lock date' },
      { date: this.endOfYearLockDate, kind: 'end of year lock date' },
    ].filter((l): l is { date: string; kind: string } => !!l.date);
    return locks.sort((a, b) => (a.date < b.date ? 1 : -1))[0];
  }
}

// ---------- answers in Xero's shapes ----------

const validation = (...messages: string[]) => ({
  ErrorNumber: 10,
  Type: 'ValidationException',
  Message: 'A validation exception occurred',
  Elements: [{ ValidationErrors: messages.map((Message) => ({ Message })) }],
});
const postDataInvalid = (message: string) => ({ ErrorNumber: 14, Type: 'PostDataInvalidException', Message: message });
const notFound = () => ({ Title: 'Not Found', Status: 404, Detail: "The resource you're looking for cannot be found" });
const problem = (status: number, title: string, detail: string) => ({
  Type: null,
  Title: title,
  Status: status,
  Detail: detail,
  Instance: randomUUID(),
  Extensions: {},
});
const msDate = (ms: number) => `/Date(${ms}+0000)/`;
const dayMs = (date: string) => Date.parse(`${date}T00:00:00Z`);
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** Xero writes a lock date in its message as 30-Nov-2018. */
const xeroDay = (date: string) => `${date.slice(8, 10)}-${MONTHS[Number(date.slice(5, 7)) - 1]}-${date.slice(0, 4)}`;
const text = (value: unknown) => (value === undefined || value === null ? undefined : String(value));

export type XeroAuthVerdict = { ok: true } | { ok: false; status: 401 | 403; detail: string };
/** Decides one request's authentication: the Authorization header and the xero-tenant-id header as sent. */
export type XeroAuthHook = (authorization: string | undefined, tenantId: string | undefined) => XeroAuthVerdict | Promise<XeroAuthVerdict>;

export interface XeroSimOptions {
  timeoutDelayMs?: number;
  /** Calls a minute per tenant (Xero: 60). */
  perMinute?: number;
  /** Calls in progress per tenant (Xero: 5). */
  concurrent?: number;
  /** Calls a day per tenant (Xero: 5,000); rolling 24 hours. */
  perDay?: number;
  /** The minute window's length (tests shorten it). */
  minuteWindowMs?: number;
  /** The simulator's clock (token expiry, rate windows, payment modification times). */
  now?: () => number;
  /** Access tokens the simulator issues live this long (Xero: 30 minutes). */
  tokenTtlMs?: number;
  /** Replaces the simulator's own token check (e.g. the identity simulator's). */
  auth?: XeroAuthHook;
}

type TenantRequest = FastifyRequest & { xeroTenant?: XeroTenant };

export class XeroSimulator {
  readonly faults: Fault[] = [];
  readonly tenants = new Map<string, XeroTenant>();
  private readonly tokens = new Map<string, { tenants: Set<string>; expiresAt: number }>();
  inFlightMax = 0;
  /** Requests refused for authentication, by status. */
  readonly refused = { 401: 0, 403: 0, 429: 0 };
  /** The limit behind each 429 answered: concurrent, minute or day. */
  readonly limitedBy: string[] = [];
  private app: FastifyInstance | undefined;
  url = '';
  readonly now: () => number;

  constructor(readonly options: XeroSimOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  // ---------- tenants and tokens ----------

  /** Adds (or returns) an organisation. */
  addTenant(id: string, config: XeroTenantConfig = {}): XeroTenant {
    const existing = this.tenants.get(id);
    if (existing) return existing;
    const tenant = new XeroTenant(id, config);
    this.tenants.set(id, tenant);
    return tenant;
  }

  tenant(id: string): XeroTenant {
    const tenant = this.tenants.get(id);
    if (!tenant) throw new Error(`no tenant ${id} in the Xero simulator`);
    return tenant;
  }

  /** The first organisation added: what the single-tenant accessors below read. */
  get main(): XeroTenant {
    const first = this.tenants.values().next().value;
    if (!first) throw new Error('the Xero simulator has no tenant yet (addTenant)');
    return first;
  }

  get journals() {
    return this.main.journals;
  }
  get invoices() {
    return this.main.invoices;
  }
  get creditNotes() {
    return this.main.creditNotes;
  }
  get payments() {
    return this.main.payments;
  }

  /** An access token granted to these tenants, expiring after tokenTtlMs (default 30 minutes) on the simulator's clock. */
  issueToken(tenants: string[], ttlMs = this.options.tokenTtlMs ?? 30 * 60_000): string {
    const token = randomBytes(24).toString('base64url');
    this.tokens.set(token, { tenants: new Set(tenants), expiresAt: this.now() + ttlMs });
    return token;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  private ownAuth(authorization: string | undefined, tenantId: string | undefined): XeroAuthVerdict {
    const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    const grant = token ? this.tokens.get(token) : undefined;
    if (!grant) return { ok: false, status: 401, detail: 'AuthenticationUnsuccessful' };
    if (this.now() >= grant.expiresAt)
      return { ok: false, status: 401, detail: `TokenExpired: token expired at ${new Date(grant.expiresAt).toISOString()}` };
    if (!tenantId || !grant.tenants.has(tenantId)) return { ok: false, status: 403, detail: 'AuthorizationUnsuccessful' };
    return { ok: true };
  }

  // ---------- test back doors ----------

  /** A receipt entered in Xero by hand against an invoice, by its number; returns the PaymentID. */
  addPayment(payment: {
    invoiceNumber: string;
    amount: string;
    date: string;
    updatedAt: Date;
    type?: XeroSimPayment['PaymentType'];
    tenant?: string;
  }): string {
    const tenant = payment.tenant ? this.tenant(payment.tenant) : this.main;
    const invoice = tenant.invoices.find((i) => i.Number === payment.invoiceNumber);
    if (!invoice) throw new Error(`no invoice ${payment.invoiceNumber} in the simulator`);
    const id = randomUUID();
    tenant.payments.push({
      PaymentID: id,
      Date: payment.date,
      Amount: payment.amount,
      Status: 'AUTHORISED',
      PaymentType: payment.type ?? 'ACCRECPAYMENT',
      UpdatedDateUTC: payment.updatedAt.getTime(),
      invoiceId: invoice.id,
    });
    return id;
  }

  deletePayment(paymentId: string, at: Date): void {
    for (const tenant of this.tenants.values()) {
      const payment = tenant.payments.find((p) => p.PaymentID === paymentId);
      if (!payment) continue;
      payment.Status = 'DELETED';
      payment.UpdatedDateUTC = at.getTime();
      return;
    }
    throw new Error(`no payment ${paymentId}`);
  }

  // ---------- checks shared by the writes ----------

  private lockRefusal(tenant: XeroTenant, date: string): string | undefined {
    const lock = tenant.lock();
    if (lock && date <= lock.date) return `The document date cannot be before the ${lock.kind}, currently set at ${xeroDay(lock.date)}`;
    return undefined;
  }

  private accountRefusal(tenant: XeroTenant, code: string | undefined): string | undefined {
    if (!code) return 'Account code must be specified';
    const account = tenant.accounts.get(code);
    if (!account || account.Status === 'DELETED') return `Account code '${code}' is not a valid code for this document.`;
    if (account.Status === 'ARCHIVED')
      return `Account code '${code}' has been archived, or deleted. Each line item must reference a valid account.`;
    return undefined;
  }

  private contactOf(tenant: XeroTenant, contact: { ContactID?: string; ContactNumber?: string } | undefined): XeroSimContact | string {
    if (!contact?.ContactID && !contact?.ContactNumber) return 'A Contact must be specified for this type of transaction';
    const found = contact.ContactID
      ? tenant.contacts.find((c) => c.ContactID === contact.ContactID)
      : tenant.contacts.find((c) => c.ContactNumber === contact.ContactNumber);
    if (!found)
      return contact.ContactID
        ? `The contact with ContactID '${contact.ContactID}' could not be found`
        : `The contact with ContactNumber '${contact.ContactNumber}' could not be found`;
    if (found.ContactStatus !== 'ACTIVE')
      return 'The contact with the specified contact details has been archived. The contact must be un-archived before creating new invoices or credit notes.';
    return found;
  }

  // ---------- writes ----------

  private createJournal(tenant: XeroTenant, input: Record<string, any>): { status: number; body: unknown } {
    const lines = (input.JournalLines ?? []) as Array<Record<string, any>>;
    const date = String(input.Date ?? '');
    const problems: string[] = [];
    if (!input.Narration) problems.push('Narration must be specified');
    if (lines.length < 2) problems.push('Journals must have at least two lines');
    const locked = this.lockRefusal(tenant, date);
    if (locked) problems.push(locked);
    for (const line of lines) {
      const refused = this.accountRefusal(tenant, text(line.AccountCode));
      if (refused) problems.push(refused);
    }
    const sum = lines.reduce((s, l) => s.plus(new Decimal(String(l.LineAmount ?? '0'))), new Decimal(0));
    if (!sum.isZero()) problems.push('The total debits must equal total credits');
    if (problems.length > 0) return { status: 400, body: validation(...[...new Set(problems)]) };
    const journal = {
      ManualJournalID: randomUUID(),
      Narration: String(input.Narration),
      lines: lines.map((l) => String(l.LineAmount)),
      accounts: lines.map((l) => String(l.AccountCode)),
      Date: date,
      Status: String(input.Status ?? 'DRAFT'),
    };
    tenant.journals.push(journal);
    return {
      status: 200,
      body: {
        ManualJournals: [
          { ManualJournalID: journal.ManualJournalID, Narration: journal.Narration, Date: msDate(dayMs(date)), Status: journal.Status },
        ],
      },
    };
  }

  /** POST/PUT Invoices / CreditNotes: Xero's checks, then the document with its totals. */
  private createSales(tenant: XeroTenant, kind: 'invoice' | 'credit_note', input: Record<string, any>): { status: number; body: unknown } {
    const type = kind === 'invoice' ? 'ACCREC' : 'ACCRECCREDIT';
    if (input.Type !== type) return { status: 400, body: validation(`Type must be ${type} for this simulator`) };
    const problems: string[] = [];
    const contact = this.contactOf(tenant, input.Contact);
    if (typeof contact === 'string') problems.push(contact);
    const currency = String(input.CurrencyCode ?? tenant.baseCurrency);
    if (!tenant.currencies.has(currency))
      problems.push(
        `The currency code '${currency}' is not a valid currency for this organisation. Currencies must be added in Settings before they are used.`,
      );
    if (!['Exclusive', 'Inclusive', 'NoTax'].includes(input.LineAmountTypes)) problems.push('LineAmountTypes is not valid');
    if (kind === 'invoice' && input.Status === 'AUTHORISED' && !input.DueDate) problems.push('Due Date is required');
    const date = String(input.Date ?? '');
    const locked = this.lockRefusal(tenant, date);
    if (locked) problems.push(locked);
    const number = String((kind === 'invoice' ? input.InvoiceNumber : input.CreditNoteNumber) ?? '');
    const store = kind === 'invoice' ? tenant.invoices : tenant.creditNotes;
    if (number && store.some((d) => d.Number === number && d.Status !== 'DELETED' && d.Status !== 'VOIDED'))
      problems.push(`${kind === 'invoice' ? 'Invoice' : 'Credit Note'} # must be unique.`);
    const lines = (input.LineItems ?? []) as Array<Record<string, any>>;
    if (lines.length === 0) problems.push('At least one line item is required');
    let total = new Decimal(0);
    let tax = new Decimal(0);
    for (const line of lines) {
      const refused = this.accountRefusal(tenant, text(line.AccountCode));
      if (refused) problems.push(refused);
      if (line.ItemCode !== undefined) {
        const item = tenant.items.get(String(line.ItemCode));
        if (!item) problems.push(`Item code '${line.ItemCode}' is not valid.`);
        else if (!item.IsSold) problems.push(`Item code '${line.ItemCode}' cannot be used on a sales transaction: the item is not sold.`);
      }
      if (input.LineAmountTypes !== 'NoTax') {
        const taxType = text(line.TaxType);
        const rate = taxType ? tenant.taxRates.get(taxType) : undefined;
        // Without a TaxType Xero would take the account's default rate; the simulator refuses instead, so a missing tax
        // mapping can never pass unseen.
        if (!taxType)
          problems.push(
            'A TaxType must be specified on each line of a taxed document (this simulator does not apply account default tax rates)',
          );
        else if (!rate || rate.Status !== 'ACTIVE')
          problems.push(`The TaxType code '${taxType}' does not exist or cannot be used for this type of transaction.`);
      } else if (line.TaxAmount !== undefined && !new Decimal(String(line.TaxAmount)).isZero())
        problems.push('TaxAmount must be zero on a NoTax document');
      const amount = new Decimal(String(line.LineAmount ?? '0'));
      if (
        line.UnitAmount !== undefined &&
        !new Decimal(String(line.UnitAmount)).times(new Decimal(String(line.Quantity ?? '1'))).equals(amount)
      )
        problems.push('LineAmount must equal Quantity × UnitAmount');
      total = total.plus(amount);
      tax = tax.plus(new Decimal(String(line.TaxAmount ?? '0')));
    }
    if (input.LineAmountTypes === 'Exclusive') total = total.plus(tax);
    if (total.isNegative()) problems.push('The document total cannot be negative');
    if (problems.length > 0) return { status: 400, body: validation(...[...new Set(problems)]) };
    const found = contact as XeroSimContact;
    const document: XeroSalesDocument = {
      id: randomUUID(),
      Type: type,
      Number: number || `${type}-${store.length + 1}`,
      Reference: String(input.Reference ?? ''),
      Contact: { ContactID: found.ContactID, ...(found.ContactNumber ? { ContactNumber: found.ContactNumber } : {}), Name: found.Name },
      CurrencyCode: currency,
      Date: date,
      DueDate: input.DueDate,
      Status: String(input.Status ?? 'DRAFT'),
      LineItems: lines.map((l) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, String(v)]))),
      Total: decimalText(total),
      TotalTax: decimalText(tax),
      ...(kind === 'invoice'
        ? { AmountDue: decimalText(total), AmountPaid: '0', AmountCredited: '0' }
        : { RemainingCredit: decimalText(total), Allocations: [] }),
    };
    store.push(document);
    return {
      status: 200,
      body: kind === 'invoice' ? { Invoices: [this.invoiceJson(document)] } : { CreditNotes: [this.creditNoteJson(document)] },
    };
  }

  /**
   * POST Invoices/{InvoiceID}: this simulator takes a status change to VOIDED only, and refuses it as Xero does for an
   * invoice that is not AUTHORISED/SUBMITTED/DRAFT, has payments or credit notes allocated, or is dated in a locked
   * period. The refusal texts are the simulator's own, in Xero's ValidationException shape.
   */
  private updateInvoice(tenant: XeroTenant, id: string, input: Record<string, any>): { status: number; body: unknown } {
    const invoice = tenant.invoices.find((d) => d.id === id);
    if (!invoice) return { status: 404, body: problem(404, 'Not Found', 'The resource you are looking for cannot be found') };
    if (input.InvoiceID !== undefined && input.InvoiceID !== id)
      return { status: 400, body: validation('InvoiceID does not match the URL') };
    const other = Object.keys(input).filter((k) => k !== 'InvoiceID' && k !== 'Status');
    if (input.Status !== 'VOIDED' || other.length > 0)
      return { status: 400, body: validation(`This simulator only voids invoices (Status VOIDED); got ${JSON.stringify(input)}`) };
    if (invoice.Status === 'VOIDED') return { status: 200, body: { Invoices: [this.invoiceJson(invoice)] } };
    const problems: string[] = [];
    if (!['AUTHORISED', 'SUBMITTED', 'DRAFT'].includes(invoice.Status)) problems.push(`Invoice not of valid status for modification`);
    if (!new Decimal(invoice.AmountPaid ?? '0').isZero() || !new Decimal(invoice.AmountCredited ?? '0').isZero())
      problems.push('This document cannot be voided as it has payments or credit notes allocated to it');
    const locked = this.lockRefusal(tenant, invoice.Date);
    if (locked) problems.push(locked);
    if (problems.length > 0) return { status: 400, body: validation(...problems) };
    invoice.Status = 'VOIDED';
    invoice.AmountDue = '0';
    return { status: 200, body: { Invoices: [this.invoiceJson(invoice)] } };
  }

  private invoiceJson(d: XeroSalesDocument) {
    return {
      InvoiceID: d.id,
      InvoiceNumber: d.Number,
      Reference: d.Reference,
      Status: d.Status,
      Type: d.Type,
      CurrencyCode: d.CurrencyCode,
      Total: d.Total,
      TotalTax: d.TotalTax,
      AmountDue: d.AmountDue ?? d.Total,
      AmountPaid: d.AmountPaid ?? '0',
      AmountCredited: d.AmountCredited ?? '0',
      Contact: d.Contact,
    };
  }

  private creditNoteJson(d: XeroSalesDocument) {
    return {
      CreditNoteID: d.id,
      CreditNoteNumber: d.Number,
      Reference: d.Reference,
      Status: d.Status,
      Type: d.Type,
      CurrencyCode: d.CurrencyCode,
      Total: d.Total,
      TotalTax: d.TotalTax,
      RemainingCredit: d.RemainingCredit ?? d.Total,
      Contact: d.Contact,
      Allocations: (d.Allocations ?? []).map((a) => ({
        AllocationID: a.AllocationID,
        Amount: a.Amount,
        Date: msDate(dayMs(a.Date)),
        Invoice: { InvoiceID: a.InvoiceID },
      })),
    };
  }

  private contactJson(c: XeroSimContact) {
    return {
      ContactID: c.ContactID,
      ContactNumber: c.ContactNumber,
      ContactStatus: c.ContactStatus,
      Name: c.Name,
      TaxNumber: c.TaxNumber,
      DefaultCurrency: c.DefaultCurrency,
      Addresses: c.Addresses ?? [],
      UpdatedDateUTC: msDate(c.UpdatedDateUTC),
    };
  }

  /** PUT Contacts (create) and POST Contacts/{id} (update): Name required and unique among active contacts, ContactNumber unique. */
  private saveContact(tenant: XeroTenant, input: Record<string, any>, contactId?: string): { status: number; body: unknown } {
    const existing = contactId ? tenant.contacts.find((c) => c.ContactID === contactId) : undefined;
    if (contactId && !existing) return { status: 404, body: notFound() };
    const name = text(input.Name) ?? existing?.Name;
    if (!name) return { status: 400, body: validation('The contact name must be specified.') };
    const others = tenant.contacts.filter((c) => c !== existing);
    if (others.some((c) => c.ContactStatus === 'ACTIVE' && c.Name.toLowerCase() === name.toLowerCase())) {
      return {
        status: 400,
        body: validation(
          `The contact name ${name} is already assigned to another contact. The contact name must be unique across all active contacts.`,
        ),
      };
    }
    const number = text(input.ContactNumber) ?? existing?.ContactNumber;
    if (number && others.some((c) => c.ContactNumber === number)) {
      return {
        status: 400,
        body: validation(
          `The contact number ${number} is already assigned to another contact. The contact number must be unique across all contacts.`,
        ),
      };
    }
    const currency = text(input.DefaultCurrency);
    if (currency && !tenant.currencies.has(currency))
      return {
        status: 400,
        body: validation(
          `The currency code '${currency}' is not a valid currency for this organisation. Currencies must be added in Settings before they are used.`,
        ),
      };
    const fields = {
      Name: name,
      ...(number ? { ContactNumber: number } : {}),
      ...(input.TaxNumber !== undefined ? { TaxNumber: String(input.TaxNumber) } : {}),
      ...(currency ? { DefaultCurrency: currency } : {}),
      ...(input.Addresses
        ? {
            Addresses: (input.Addresses as Array<Record<string, unknown>>).map((a) =>
              Object.fromEntries(Object.entries(a).map(([k, v]) => [k, String(v)])),
            ),
          }
        : {}),
      UpdatedDateUTC: this.now(),
    };
    const contact = existing ? Object.assign(existing, fields) : tenant.addContact(fields);
    return { status: 200, body: { Contacts: [this.contactJson(contact)] } };
  }

  /** PUT CreditNotes/{id}/Allocations: an authorised credit note applied to an authorised invoice of the same contact and currency. */
  private allocate(tenant: XeroTenant, creditNoteId: string, input: Record<string, any>): { status: number; body: unknown } {
    const note = tenant.creditNotes.find((d) => d.id === creditNoteId);
    if (!note) return { status: 404, body: notFound() };
    const results = [];
    for (const a of (input.Allocations ?? []) as Array<Record<string, any>>) {
      const invoice = tenant.invoices.find((i) => i.id === a.Invoice?.InvoiceID);
      const amount = new Decimal(String(a.Amount ?? '0'));
      const date = String(a.Date ?? '');
      const problems: string[] = [];
      if (!invoice) problems.push('Invoice could not be found');
      if (note.Status !== 'AUTHORISED') problems.push('Credit note must be AUTHORISED to be allocated');
      if (invoice && invoice.Status !== 'AUTHORISED') problems.push('Invoice must be AUTHORISED to be allocated a credit note');
      if (invoice && invoice.CurrencyCode !== note.CurrencyCode)
        problems.push('The currency of the credit note must match the currency of the invoice');
      if (invoice && invoice.Contact.ContactID !== note.Contact.ContactID)
        problems.push('The credit note and the invoice must belong to the same contact');
      if (!amount.isPositive() || amount.isZero()) problems.push('The allocation amount must be greater than zero');
      if (amount.gt(new Decimal(note.RemainingCredit ?? note.Total)))
        problems.push('The amount allocated cannot be greater than the remaining credit on the credit note');
      if (invoice && amount.gt(new Decimal(invoice.AmountDue ?? invoice.Total)))
        problems.push('The amount allocated cannot be greater than the amount due on the invoice');
      const locked = this.lockRefusal(tenant, date);
      if (locked) problems.push(locked);
      if (problems.length > 0) return { status: 400, body: validation(...problems) };
      const allocation = {
        AllocationID: randomUUID(),
        Amount: decimalText(amount),
        Date: date,
        InvoiceID: invoice!.id,
        CreditNoteID: note.id,
      };
      (note.Allocations ??= []).push(allocation);
      note.RemainingCredit = decimalText(new Decimal(note.RemainingCredit ?? note.Total).minus(amount));
      if (new Decimal(note.RemainingCredit).isZero()) note.Status = 'PAID';
      invoice!.AmountDue = decimalText(new Decimal(invoice!.AmountDue ?? invoice!.Total).minus(amount));
      invoice!.AmountCredited = decimalText(new Decimal(invoice!.AmountCredited ?? '0').plus(amount));
      if (new Decimal(invoice!.AmountDue).isZero()) invoice!.Status = 'PAID';
      results.push({
        AllocationID: allocation.AllocationID,
        Amount: allocation.Amount,
        Date: msDate(dayMs(date)),
        Invoice: { InvoiceID: invoice!.id },
        CreditNote: { CreditNoteID: note.id },
      });
    }
    return { status: 200, body: { Allocations: results } };
  }

  /** PUT Payments: a receipt applied to an authorised invoice, paid into an active bank account, no more than what is due. */
  private pay(tenant: XeroTenant, input: Record<string, any>): { status: number; body: unknown } {
    const results = [];
    for (const p of (input.Payments ?? []) as Array<Record<string, any>>) {
      const invoice = p.Invoice?.InvoiceID
        ? tenant.invoices.find((i) => i.id === p.Invoice.InvoiceID)
        : tenant.invoices.find((i) => i.Number === p.Invoice?.InvoiceNumber);
      const code = text(p.Account?.Code);
      const account = code ? tenant.accounts.get(code) : undefined;
      const amount = new Decimal(String(p.Amount ?? '0'));
      const date = String(p.Date ?? '');
      const problems: string[] = [];
      if (!invoice) problems.push('Invoice could not be found');
      if (!code) problems.push('Account code must be specified');
      else if (!account || account.Status === 'DELETED') problems.push(`Account code '${code}' is not a valid code for this document.`);
      else if (account.Status === 'ARCHIVED')
        problems.push(`Account code '${code}' has been archived, or deleted. Each line item must reference a valid account.`);
      else if (account.Type !== 'BANK' && !account.EnablePaymentsToAccount)
        problems.push(
          `Account code '${code}' is not a valid code for this document. Payments must be made to a bank account or an account with payments enabled.`,
        );
      if (invoice && invoice.Status !== 'AUTHORISED') problems.push('Invoice not of valid status for modification');
      if (!amount.isPositive() || amount.isZero()) problems.push('Payment amount must be greater than zero');
      if (invoice && amount.gt(new Decimal(invoice.AmountDue ?? invoice.Total)))
        problems.push('Payment amount exceeds the amount outstanding on this document');
      const locked = this.lockRefusal(tenant, date);
      if (locked) problems.push(locked);
      if (problems.length > 0) return { status: 400, body: validation(...problems) };
      const payment: XeroSimPayment = {
        PaymentID: randomUUID(),
        Date: date,
        Amount: decimalText(amount),
        Status: 'AUTHORISED',
        PaymentType: 'ACCRECPAYMENT',
        UpdatedDateUTC: this.now(),
        invoiceId: invoice!.id,
        Reference: text(p.Reference),
        AccountCode: code,
      };
      tenant.payments.push(payment);
      invoice!.AmountDue = decimalText(new Decimal(invoice!.AmountDue ?? invoice!.Total).minus(amount));
      invoice!.AmountPaid = decimalText(new Decimal(invoice!.AmountPaid ?? '0').plus(amount));
      if (new Decimal(invoice!.AmountDue).isZero()) invoice!.Status = 'PAID';
      results.push(this.paymentJson(tenant, payment));
    }
    return { status: 200, body: { Payments: results } };
  }

  private paymentJson(tenant: XeroTenant, p: XeroSimPayment) {
    const invoice = tenant.invoices.find((i) => i.id === p.invoiceId)!;
    return {
      PaymentID: p.PaymentID,
      Date: msDate(dayMs(p.Date)),
      Amount: p.Amount,
      Reference: p.Reference,
      Status: p.Status,
      PaymentType: p.PaymentType,
      UpdatedDateUTC: msDate(p.UpdatedDateUTC),
      Invoice: this.invoiceJson(invoice),
      ...(p.AccountCode ? { Account: { Code: p.AccountCode } } : {}),
    };
  }

  // ---------- the server ----------

  async start(): Promise<void> {
    // Connections closed on stop, kept-alive ones included (a stop otherwise waits for the keep-alive timeout).
    const app = Fastify({ forceCloseConnections: true });
    xeroSchemaErrors('Invoices', {}); // compile the schemas now, not inside the first request
    this.app = app;
    // Keep amounts as written: the body is read as text, and amounts parsed as their literal text, never as floats.
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_r, body, done) => done(null, body));
    app.addHook('onRequest', async (request: TenantRequest, reply) => {
      const tenantHeader = request.headers['xero-tenant-id'];
      const tenantId = Array.isArray(tenantHeader) ? tenantHeader[0] : tenantHeader;
      const verdict = await (this.options.auth ?? ((a, t) => this.ownAuth(a, t)))(request.headers.authorization, tenantId);
      if (!verdict.ok) {
        this.refused[verdict.status] += 1;
        if (verdict.status === 401) reply.header('www-authenticate', `Bearer error="invalid_token"`);
        return reply
          .code(verdict.status)
          .send(problem(verdict.status, verdict.status === 401 ? 'Unauthorized' : 'Forbidden', verdict.detail));
      }
      const tenant = tenantId ? this.tenants.get(tenantId) : undefined;
      if (!tenant) {
        this.refused[403] += 1;
        return reply.code(403).send(problem(403, 'Forbidden', 'AuthorizationUnsuccessful'));
      }
      const now = this.now();
      const window = this.options.minuteWindowMs ?? 60_000;
      tenant.minuteCalls = tenant.minuteCalls.filter((t) => now - t < window);
      tenant.dayCalls = tenant.dayCalls.filter((t) => now - t < 86_400_000);
      const limited = (problemName: string, retryAfterS: number) => {
        this.refused[429] += 1;
        this.limitedBy.push(problemName);
        return reply
          .code(429)
          .header('retry-after', String(Math.max(0, retryAfterS)))
          .header('x-rate-limit-problem', problemName)
          .send({ Title: 'Too Many Requests', Status: 429, Detail: `Rate limit exceeded: ${problemName}` });
      };
      if (tenant.inFlight + 1 > (this.options.concurrent ?? 5)) return limited('concurrent', 1);
      if (tenant.dayCalls.length >= (this.options.perDay ?? 5000))
        return limited('day', Math.ceil((tenant.dayCalls[0]! + 86_400_000 - now) / 1000));
      if (tenant.minuteCalls.length >= (this.options.perMinute ?? 60))
        return limited('minute', Math.ceil((tenant.minuteCalls[0]! + window - now) / 1000));
      tenant.minuteCalls.push(now);
      tenant.dayCalls.push(now);
      tenant.calls += 1;
      tenant.inFlight += 1;
      this.inFlightMax = Math.max(this.inFlightMax, tenant.inFlight);
      reply.raw.on('close', () => (tenant.inFlight -= 1));
      reply.header('x-daylimit-remaining', String((this.options.perDay ?? 5000) - tenant.dayCalls.length));
      reply.header('x-minlimit-remaining', String((this.options.perMinute ?? 60) - tenant.minuteCalls.length));
      request.xeroTenant = tenant;
    });
    const tenantOf = (request: FastifyRequest) => (request as TenantRequest).xeroTenant!;
    const query = (request: FastifyRequest) => request.query as Record<string, string | undefined>;

    /** A write: the body validated against the spec, the Idempotency-Key honoured, faults injected, then `create`. */
    const write =
      (
        schema: XeroRequestSchema,
        create: (tenant: XeroTenant, input: Record<string, any>, request: FastifyRequest) => { status: number; body: unknown },
        faults = false,
      ) =>
      async (request: FastifyRequest, reply: FastifyReply) => {
        const tenant = tenantOf(request);
        const body = String(request.body ?? '');
        tenant.writes.push({ method: request.method, path: request.url.split('?')[0]!, body });
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch (error) {
          return reply.code(400).send(postDataInvalid(`JSON for post data was invalid, ${(error as Error).message}`));
        }
        const invalid = xeroSchemaErrors(schema, json);
        if (invalid.length > 0) return reply.code(400).send(postDataInvalid(`JSON for post data was invalid: ${invalid.join('; ')}`));
        const key = String(request.headers['idempotency-key'] ?? '');
        const earlier = key ? tenant.answers.get(key) : undefined;
        if (earlier) return reply.code(200).type('application/json').send(earlier);
        const fault = faults ? this.faults.shift() : undefined;
        if (fault === '429')
          return reply
            .code(429)
            .header('retry-after', '0')
            .header('x-rate-limit-problem', 'minute')
            .send({ Title: 'Too Many Requests', Status: 429 });
        if (fault === '500') return reply.code(503).send({ Message: 'Service unavailable' });
        if (fault === 'invalid') return reply.code(400).send(validation("Account code '9999' is not a valid code for this document."));
        if (fault === 'timeout') {
          await new Promise((r) => setTimeout(r, this.options.timeoutDelayMs ?? 600));
          return reply.code(503).send({ Message: 'too late' });
        }
        const created = create(tenant, parseJsonDecimals(body) as Record<string, any>, request);
        if (created.status !== 200) return reply.code(created.status).send(created.body);
        const answer = JSON.stringify(created.body);
        if (key) tenant.answers.set(key, answer);
        if (fault === 'lost') {
          request.raw.socket.destroy();
          return reply;
        }
        return reply.code(200).type('application/json').send(answer);
      };
    const first = <T>(input: Record<string, any>, collection: string): T => ((input[collection] ?? []) as T[])[0] ?? ({} as T);

    for (const method of ['PUT', 'POST'] as const) {
      app.route({
        method,
        url: '/api.xro/2.0/ManualJournals',
        handler: write('ManualJournals', (t, input) => this.createJournal(t, first(input, 'ManualJournals')), true),
      });
      app.route({
        method,
        url: '/api.xro/2.0/Invoices',
        handler: write('Invoices', (t, input) => this.createSales(t, 'invoice', first(input, 'Invoices')), true),
      });
      app.route({
        method,
        url: '/api.xro/2.0/CreditNotes',
        handler: write('CreditNotes', (t, input) => this.createSales(t, 'credit_note', first(input, 'CreditNotes')), true),
      });
    }
    app.post(
      '/api.xro/2.0/Invoices/:id',
      write('Invoices', (t, input, r) => this.updateInvoice(t, (r.params as { id: string }).id, first(input, 'Invoices'))),
    );
    app.put(
      '/api.xro/2.0/Contacts',
      write('Contacts', (t, input) => this.saveContact(t, first(input, 'Contacts'))),
    );
    app.post(
      '/api.xro/2.0/Contacts/:id',
      write('Contacts', (t, input, r) => this.saveContact(t, first(input, 'Contacts'), (r.params as { id: string }).id)),
    );
    app.put(
      '/api.xro/2.0/CreditNotes/:id/Allocations',
      write('Allocations', (t, input, r) => this.allocate(t, (r.params as { id: string }).id, input)),
    );
    app.put(
      '/api.xro/2.0/Payments',
      write('Payments', (t, input) => this.pay(t, input)),
    );

    app.get('/api.xro/2.0/Organisation', async (request) => {
      const t = tenantOf(request);
      return {
        Organisations: [
          {
            OrganisationID: t.id,
            Name: t.name,
            BaseCurrency: t.baseCurrency,
            ...(t.periodLockDate ? { PeriodLockDate: msDate(dayMs(t.periodLockDate)) } : {}),
            ...(t.endOfYearLockDate ? { EndOfYearLockDate: msDate(dayMs(t.endOfYearLockDate)) } : {}),
          },
        ],
      };
    });
    const whereValue = (where: string | undefined, field: string) => new RegExp(`${field}==(?:Guid\\()?"([^"]*)"`).exec(where ?? '')?.[1];
    app.get('/api.xro/2.0/Accounts', async (request) => {
      const code = whereValue(query(request).where, 'Code');
      return {
        Accounts: [...tenantOf(request).accounts.values()].filter((a) => code === undefined || (a.Code === code && a.Status !== 'DELETED')),
      };
    });
    app.get('/api.xro/2.0/TaxRates', async (request) => {
      const taxType = whereValue(query(request).where, 'TaxType');
      return { TaxRates: [...tenantOf(request).taxRates.values()].filter((r) => taxType === undefined || r.TaxType === taxType) };
    });
    app.get('/api.xro/2.0/Items', async (request) => {
      const code = whereValue(query(request).where, 'Code');
      return { Items: [...tenantOf(request).items.values()].filter((i) => code === undefined || i.Code === code) };
    });
    app.get('/api.xro/2.0/Currencies', async (request) => ({
      Currencies: [...tenantOf(request).currencies].map((Code) => ({ Code, Description: Code })),
    }));
    app.get('/api.xro/2.0/Contacts', async (request) => {
      const q = query(request);
      const number = whereValue(q.where, 'ContactNumber');
      const id = whereValue(q.where, 'ContactID');
      const name = whereValue(q.where, 'Name');
      const archived = q.includeArchived === 'true';
      const list = tenantOf(request).contacts.filter(
        (c) =>
          (archived || c.ContactStatus === 'ACTIVE') &&
          (number === undefined || c.ContactNumber === number) &&
          (id === undefined || c.ContactID === id) &&
          (name === undefined || c.Name === name),
      );
      return { Contacts: list.map((c) => this.contactJson(c)) };
    });

    app.get('/api.xro/2.0/ManualJournals', async (request, reply) => {
      const t = tenantOf(request);
      const where = String(query(request).where ?? '');
      // Reconciliation: a date-range filter with `page` lists journals with their lines, 100 a page, dates as /Date(ms+0000)/.
      const range = /Date >= DateTime\((\d+),(\d+),(\d+)\) AND Date < DateTime\((\d+),(\d+),(\d+)\)/.exec(where);
      if (range) {
        const [from, to] = [range.slice(1, 4).join('-'), range.slice(4, 7).join('-')];
        const page = Number(query(request).page ?? 1);
        const inRange = t.journals.filter((j) => (j.Date ?? '') >= from && (j.Date ?? '') < to).slice((page - 1) * 100, page * 100);
        const body = inRange.map((j) => {
          const lines = j.lines
            .map((amount, i) => `{"LineAmount":${amount},"AccountCode":${JSON.stringify(j.accounts?.[i] ?? '0')}}`)
            .join(',');
          return `{"ManualJournalID":${JSON.stringify(j.ManualJournalID)},"Narration":${JSON.stringify(j.Narration)},"Date":"${msDate(dayMs(j.Date ?? '1970-01-01'))}","Status":${JSON.stringify(j.Status ?? 'POSTED')},"JournalLines":[${lines}]}`;
        });
        return reply.type('application/json').send(`{"ManualJournals":[${body.join(',')}]}`);
      }
      const needle = /Narration\.Contains\("(.*)"\)/.exec(where)?.[1] ?? '\u0000';
      return {
        ManualJournals: t.journals
          .filter((j) => j.Narration.includes(needle))
          .map((j) => ({ ManualJournalID: j.ManualJournalID, Narration: j.Narration })),
      };
    });
    // Reconciliation: where Type=="…" AND Date >= DateTime(…) AND Date < DateTime(…), with page: documents with totals.
    const listed = (where: string, store: XeroSalesDocument[], collection: 'Invoices' | 'CreditNotes', page: number) => {
      const range = /Type=="([A-Z]+)" AND Date >= DateTime\((\d+),(\d+),(\d+)\) AND Date < DateTime\((\d+),(\d+),(\d+)\)/.exec(where);
      if (!range) return undefined;
      const [from, to] = [range.slice(2, 5).join('-'), range.slice(5, 8).join('-')];
      const idField = collection === 'Invoices' ? 'InvoiceID' : 'CreditNoteID';
      const body = store
        .filter((d) => d.Type === range[1] && d.Date >= from && d.Date < to)
        .slice((page - 1) * 100, page * 100)
        .map(
          (d) =>
            `{"${idField}":${JSON.stringify(d.id)},"Type":"${d.Type}","Reference":${JSON.stringify(d.Reference)},"Status":"${d.Status}","CurrencyCode":"${d.CurrencyCode}","Date":"${msDate(dayMs(d.Date))}","Total":${d.Total},"TotalTax":${d.TotalTax}}`,
        );
      return `{"${collection}":[${body.join(',')}]}`;
    };
    app.get('/api.xro/2.0/Invoices', async (request, reply) => {
      const t = tenantOf(request);
      const q = query(request);
      const page = listed(String(q.where ?? ''), t.invoices, 'Invoices', Number(q.page ?? 1));
      if (page) return reply.type('application/json').send(page);
      const numbers = String(q.InvoiceNumbers ?? '')
        .split(',')
        .filter(Boolean);
      // Written by hand: amounts are JSON numbers with the digits kept.
      const body = t.invoices
        .filter((d) => numbers.length === 0 || numbers.includes(d.Number))
        .map((d) => {
          const j = this.invoiceJson(d);
          return `{"InvoiceID":${JSON.stringify(j.InvoiceID)},"InvoiceNumber":${JSON.stringify(j.InvoiceNumber)},"Reference":${JSON.stringify(j.Reference)},"Status":"${j.Status}","Type":"${j.Type}","CurrencyCode":"${j.CurrencyCode}","Total":${j.Total},"TotalTax":${j.TotalTax},"AmountDue":${j.AmountDue},"AmountPaid":${j.AmountPaid},"AmountCredited":${j.AmountCredited},"Contact":${JSON.stringify(j.Contact)}}`;
        });
      return reply.type('application/json').send(`{"Invoices":[${body.join(',')}]}`);
    });
    app.get('/api.xro/2.0/Invoices/:id', async (request, reply) => {
      const found = tenantOf(request).invoices.find((d) => d.id === (request.params as { id: string }).id);
      if (!found) return reply.code(404).send(problem(404, 'Not Found', 'The resource you are looking for cannot be found'));
      return reply.type('application/json').send(JSON.stringify({ Invoices: [this.invoiceJson(found)] }));
    });
    const creditNoteText = (d: XeroSalesDocument) => {
      const j = this.creditNoteJson(d);
      const allocations = j.Allocations.map(
        (a) =>
          `{"AllocationID":"${a.AllocationID}","Amount":${a.Amount},"Date":"${a.Date}","Invoice":{"InvoiceID":"${a.Invoice.InvoiceID}"}}`,
      );
      return `{"CreditNoteID":${JSON.stringify(j.CreditNoteID)},"CreditNoteNumber":${JSON.stringify(j.CreditNoteNumber)},"Reference":${JSON.stringify(j.Reference)},"Status":"${j.Status}","Type":"${j.Type}","CurrencyCode":"${j.CurrencyCode}","Total":${j.Total},"TotalTax":${j.TotalTax},"RemainingCredit":${j.RemainingCredit},"Contact":${JSON.stringify(j.Contact)},"Allocations":[${allocations.join(',')}]}`;
    };
    app.get('/api.xro/2.0/CreditNotes', async (request, reply) => {
      const t = tenantOf(request);
      const q = query(request);
      const page = listed(String(q.where ?? ''), t.creditNotes, 'CreditNotes', Number(q.page ?? 1));
      if (page) return reply.type('application/json').send(page);
      const number = /CreditNoteNumber=="([^"]*)"/.exec(String(q.where ?? ''))?.[1];
      return reply.type('application/json').send(
        `{"CreditNotes":[${t.creditNotes
          .filter((d) => number === undefined || d.Number === number)
          .map(creditNoteText)
          .join(',')}]}`,
      );
    });
    app.get('/api.xro/2.0/CreditNotes/:id', async (request, reply) => {
      const note = tenantOf(request).creditNotes.find((d) => d.id === (request.params as { id: string }).id);
      if (!note) return reply.code(404).send(notFound());
      return reply.type('application/json').send(`{"CreditNotes":[${creditNoteText(note)}]}`);
    });
    // Payments: If-Modified-Since (UTC, yyyy-mm-ddThh:mm:ss), where PaymentType=="…" or Reference=="…", order UpdatedDateUTC, page/pageSize.
    app.get('/api.xro/2.0/Payments', async (request, reply) => {
      const t = tenantOf(request);
      const q = query(request);
      const header = request.headers['if-modified-since'];
      const since = header ? Date.parse(`${String(header)}Z`) : Number.NEGATIVE_INFINITY;
      if (Number.isNaN(since)) return reply.code(400).send(validation('If-Modified-Since is not a valid date'));
      const type = /PaymentType=="([A-Z]+)"/.exec(q.where ?? '')?.[1];
      const reference = /Reference=="([^"]*)"/.exec(q.where ?? '')?.[1];
      const pageSize = Math.min(1000, Number(q.pageSize ?? 100));
      const page = Number(q.page ?? 1);
      const matching = t.payments
        .filter(
          (p) =>
            p.UpdatedDateUTC >= since &&
            (type === undefined || p.PaymentType === type) &&
            (reference === undefined || p.Reference === reference),
        )
        .sort((a, b) => a.UpdatedDateUTC - b.UpdatedDateUTC || (a.PaymentID < b.PaymentID ? -1 : 1))
        .slice((page - 1) * pageSize, page * pageSize);
      // Written by hand: Amount is a JSON number with the digits Xero keeps, dates in Xero's /Date(ms+0000)/ form.
      const body = matching.map((p) => {
        const j = this.paymentJson(t, p);
        const invoice = this.invoiceJson(t.invoices.find((i) => i.id === p.invoiceId)!);
        return `{"PaymentID":${JSON.stringify(j.PaymentID)},"Date":"${j.Date}","Amount":${j.Amount},${j.Reference !== undefined ? `"Reference":${JSON.stringify(j.Reference)},` : ''}"Status":"${j.Status}","PaymentType":"${j.PaymentType}","UpdatedDateUTC":"${j.UpdatedDateUTC}","Invoice":{"InvoiceID":${JSON.stringify(invoice.InvoiceID)},"InvoiceNumber":${JSON.stringify(invoice.InvoiceNumber)},"Type":"${invoice.Type}","Status":"${invoice.Status}","CurrencyCode":"${invoice.CurrencyCode}","Contact":${JSON.stringify(invoice.Contact)}}}`;
      });
      return reply.type('application/json').send(`{"Payments":[${body.join(',')}]}`);
    });
    this.url = await app.listen({ host: '127.0.0.1', port: 0 });
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }
}
