// Xero Accounting API, one connection = one organisation (tenant). Every request goes through the connection's
// ErpCaller (authorization and xero-tenant-id, the limits shared by every process, one refresh after a 401).
// Documents are posted with an `Idempotency-Key` header (Xero honours it on PUT, POST and PATCH) and found again by
// the key carried in the narration (manual journals) or Reference (invoices, credit notes, payments).
//
// Codes come from the connection's mappings, never from a default: AccountCode (kind 'account'), ItemCode ('item',
// optional in Xero), TaxType per tax jurisdiction ('tax_type', required when the document has tax), CurrencyCode
// ('currency'), the contact ('customer', or customer sync). A refusal by Xero that is about one of those codes is a
// MappingMissing naming the field, with Xero's message; a document dated on or before the organisation's lock date
// is a PeriodLocked. Xero's messages recognised here are the ones its API returns in ValidationErrors, as reported
// by integrators (e.g. "Account code '120' is not a valid code for this document.", "The TaxType code 'X' does not
// exist or cannot be used for this type of transaction.", "The document date cannot be before the period lock
// date, currently set at 30-Nov-2018"); test/support/xero-sim.ts answers with the same shapes.
import { contactRequestKey } from '../../domain/keys.js';
import { createHash } from 'node:crypto';
import type { Journal } from '../../domain/model.js';
import { Decimal, decimalText, formatMajor } from '../../domain/money.js';
import { addDays } from '../../domain/invoice-terms.js';
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
import { readAnswer, retryAfterMs } from '../http.js';
import { parseJsonDecimals } from '../json-decimal.js';
import type { SalesDocument, VoidDocument } from '../../post/erp-documents.js';
import type { ErpPayment, PaymentSource } from '../../settle/poll.js';
import {
  MappingMissing,
  PeriodLocked,
  type ConnectionSettings,
  type MappingKind,
  type MappingResolver,
  type MappingSource,
  type PaymentDocument,
  type ReferenceChecker,
  type ReferenceState,
} from '../../domain/erp.js';
import type { ErpCaller } from '../caller.js';
import {
  voidInvoiceBody,
  allocationBody,
  contactBody,
  contactDetails,
  contactDiffers,
  ifModifiedSince,
  isXeroId,
  paymentBody,
  paymentFromXero,
  salesDocumentBody,
  XERO_PAYMENTS_PAGE_SIZE,
  type XeroContactDetails,
  type XeroContactRecord,
  type XeroLineCodes,
  type XeroPaymentRecord,
} from './sales.js';

export const XERO_BASE_URL = 'https://api.xero.com';
/** Xero's documented limits per tenant: 5 calls in progress, 60 a minute, 5,000 a day. */
export const XERO_LIMITS: TargetLimits = { concurrency: 5, requestsPerMinute: 60 };
/** The organisation (base currency, lock dates) is read again after this long. */
const ORGANISATION_TTL_MS = 5 * 60_000;

export interface XeroTargetOptions {
  settings: ConnectionSettings;
  caller: ErpCaller;
  mappings: MappingSource;
  timeoutMs?: number;
  /** Payments per page when polling (Xero's default and documented page is 100). */
  paymentsPageSize?: number;
  /**
   * The Accrue GL account of the cash role of a legal entity (catalog `accounts.<entity>.cash`, the account
   * src/domain/journal.ts paymentJournal debits): the source of the `account` mapping a pushed payment is paid into.
   */
  cashAccount?: (legalEntity: string) => string | undefined;
  /** Days from the document date to its due date, only for an invoice stored before invoices carried their own. */
  dueDays?: number;
  limits?: Partial<TargetLimits>;
}

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

/** The request body, written by hand around exact decimal literals: JSON numbers, never JS floats. Codes already mapped. */
export function manualJournalBody(key: string, journal: Journal, accountCodes: readonly string[]): string {
  const lines = journal.lines.map((l, i) => {
    // Xero's LineAmount is positive for a debit and negative for a credit.
    const amount = l.debit_minor > 0n ? formatMajor(l.debit_minor, l.currency) : `-${formatMajor(l.credit_minor, l.currency)}`;
    return `{"LineAmount":${amount},"AccountCode":${JSON.stringify(accountCodes[i])},"Description":${JSON.stringify(l.memo ?? journal.memo)}}`;
  });
  return `{"ManualJournals":[{"Narration":${JSON.stringify(narration(key, journal))},"Date":${JSON.stringify(journal.posting_date)},"LineAmountTypes":"NoTax","Status":"POSTED","JournalLines":[${lines.join(',')}]}]}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** Xero's `30-Nov-2018` (and `30 Nov 2018`) as 2018-11-30; undefined when it is not such a date. */
export function xeroTextDate(text: string): string | undefined {
  const m = /(\d{1,2})[- ]([A-Z][a-z]{2})[- ](\d{4})/.exec(text);
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[2]!);
  return month < 0 ? undefined : `${m[3]}-${String(month + 1).padStart(2, '0')}-${m[1]!.padStart(2, '0')}`;
}

/** A code a request carries, and where it came from: how a refusal of the code becomes a MappingMissing. */
interface UsedCode {
  kind: MappingKind;
  source: string;
  target: string;
  field: string;
}

interface Organisation {
  baseCurrency: string;
  lockDate: string | null; // the later of PeriodLockDate and EndOfYearLockDate
  lockKind: string;
}

/** Xero's ValidationException messages about a code, by the mapping kind they refuse. */
const REFUSALS: Array<{ kind: MappingKind; pattern: RegExp }> = [
  { kind: 'account', pattern: /Account code '([^']*)'/i },
  { kind: 'account', pattern: /account code ([^ ]+) (?:has been archived|is not a valid)/i },
  { kind: 'tax_type', pattern: /TaxType code '?([^' ]*)'? (?:does not exist|cannot be used)/i },
  { kind: 'item', pattern: /Item code '([^']*)'/i },
  { kind: 'currency', pattern: /currency(?: code)? '?([A-Z]{3})'?/i },
  { kind: 'customer', pattern: /contact (?:with the specified contact details )?has been archived()/i },
  {
    kind: 'customer',
    pattern: /contact (?:with ContactID|with ContactNumber|number)? ?'?([^' ]*)'? (?:could not be found|does not exist)/i,
  },
];

/** An invoice or credit note as Xero lists it (amounts read as their literal text). */
interface XeroSalesListed {
  InvoiceID?: string;
  CreditNoteID?: string;
  Reference?: string;
  CurrencyCode?: string;
  Total?: string;
  TotalTax?: string;
  Date?: string;
  Status?: string;
}

export class XeroTarget implements ErpTarget, PaymentSource, ReferenceChecker {
  readonly name: string;
  readonly limits: TargetLimits;
  private readonly settings: ConnectionSettings;
  private readonly caller: ErpCaller;
  private readonly mappings: MappingSource;
  private organisationCache: { at: number; value: Promise<Organisation> } | undefined;
  /** ContactID per customer already synced by this target (per details, so a changed address syncs again). */
  private readonly contacts = new Map<string, string>();

  constructor(private readonly options: XeroTargetOptions) {
    this.settings = options.settings;
    this.caller = options.caller;
    this.mappings = options.mappings;
    this.name = options.settings.name;
    this.limits = {
      ...XERO_LIMITS,
      ...(options.settings.concurrency ? { concurrency: options.settings.concurrency } : {}),
      ...options.limits,
    };
  }

  private get base(): string {
    return `${(this.settings.base_url ?? XERO_BASE_URL).replace(/\/$/, '')}/api.xro/2.0/`;
  }

  private async request(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    extra: { body?: string; idempotencyKey?: string; ifModifiedSince?: string } = {},
  ): Promise<Response> {
    return this.caller.call(method, `${this.base}${path}`, {
      headers: {
        accept: 'application/json',
        ...(extra.body ? { 'content-type': 'application/json' } : {}),
        ...(extra.idempotencyKey ? { 'idempotency-key': idempotencyHeader(extra.idempotencyKey) } : {}),
        ...correlationHeaders(),
        ...(extra.ifModifiedSince ? { 'if-modified-since': extra.ifModifiedSince } : {}),
      },
      body: extra.body,
      timeoutMs: this.options.timeoutMs ?? 30_000,
    });
  }

  private async getJson(path: string, what: string): Promise<Record<string, unknown>> {
    const res = await this.request('GET', path);
    if (!res.ok) throw await this.failure(res, `GET ${what}`);
    return parseJsonDecimals(await res.text()) as Record<string, unknown>;
  }

  /** GET Organisation, cached: base currency and lock dates. */
  organisation(): Promise<Organisation> {
    const now = Date.now();
    if (this.organisationCache && now - this.organisationCache.at < ORGANISATION_TTL_MS) return this.organisationCache.value;
    const value = (async () => {
      const body = await this.getJson('Organisation', 'Organisation');
      const org = ((body.Organisations ?? []) as Array<{ BaseCurrency?: string; PeriodLockDate?: string; EndOfYearLockDate?: string }>)[0];
      if (!org?.BaseCurrency)
        throw new TargetError(`Xero GET Organisation of ${this.name}: no organisation in the answer`, { permanent: false });
      const locks = [
        ['period lock date', org.PeriodLockDate ? xeroDate(org.PeriodLockDate) : null],
        ['end of year lock date', org.EndOfYearLockDate ? xeroDate(org.EndOfYearLockDate) : null],
      ].filter((l): l is [string, string] => !!l[1]);
      const latest = locks.sort((a, b) => (a[1] < b[1] ? 1 : -1))[0];
      return { baseCurrency: org.BaseCurrency, lockDate: latest?.[1] ?? null, lockKind: latest?.[0] ?? '' };
    })();
    this.organisationCache = { at: now, value };
    value.catch(() => (this.organisationCache = undefined));
    return value;
  }

  /** A document dated on or before the lock date is refused before it is sent; it may post from the day after. */
  private async checkLock(date: string): Promise<Organisation> {
    const org = await this.organisation();
    if (org.lockDate !== null && date <= org.lockDate) {
      throw new PeriodLocked(this.name, date, addDays(org.lockDate, 1), `Xero organisation's ${org.lockKind} is ${org.lockDate}`);
    }
    return org;
  }

  async find(key: string): Promise<PostedReference | undefined> {
    const where = encodeURIComponent(`Narration.Contains("[${key}]")`);
    const body = await this.getJson(`ManualJournals?where=${where}`, 'ManualJournals');
    const found = (body.ManualJournals ?? []) as Array<{ ManualJournalID: string }>;
    return found[0] ? { reference: found[0].ManualJournalID } : undefined;
  }

  /**
   * A manual journal. Xero's manual journals carry no currency: they book in the organisation's base currency, so a
   * journal in another currency is refused (never booked as base currency); such documents go as invoices and credit
   * notes, which carry their CurrencyCode.
   */
  async post(key: string, journal: Journal): Promise<PostedReference> {
    const mappings = await this.mappings.load();
    const org = await this.organisation();
    const currencies = [...new Set(journal.lines.map((l) => l.currency))];
    if (currencies.some((c) => c !== org.baseCurrency)) {
      throw new TargetError(
        `Xero ${this.name}: journal ${journal.id} is in ${currencies.join(', ')}, the organisation's base currency is ${org.baseCurrency}; Xero manual journals carry no currency, so it would be booked as ${org.baseCurrency}. Send it as an invoice or credit note (which carry CurrencyCode), or post it to an organisation whose base currency is ${currencies.join(', ')}`,
        { permanent: true, code: 'foreign_currency_journal' },
      );
    }
    await this.checkLock(journal.posting_date);
    const used: UsedCode[] = journal.lines.map((l, i) => ({
      kind: 'account',
      source: l.account,
      target: mappings.resolve('account', l.account, journal.posting_date, `JournalLines[${i}].AccountCode`),
      field: `JournalLines[${i}].AccountCode`,
    }));
    const res = await this.request('POST', 'ManualJournals', {
      body: manualJournalBody(
        key,
        journal,
        used.map((u) => u.target),
      ),
      idempotencyKey: key,
    });
    if (!res.ok) throw await this.refusal(res, 'POST ManualJournals', used, journal.posting_date);
    const created = ((await res.json()) as { ManualJournals?: Array<{ ManualJournalID: string }> }).ManualJournals?.[0];
    if (!created) throw new TargetError('Xero POST ManualJournals: no journal in the answer', { permanent: false, status: res.status });
    return { reference: created.ManualJournalID };
  }

  /**
   * Step 3 for an invoice or credit note: the document with Accrue's number, which must carry our key in Reference
   * (the same number with another reference is someone else's document: refused, never overwritten). A credit note
   * found is allocated to its invoice if it is not yet (the post that created it may have stopped before).
   */
  async findDocument(key: string, document: SalesDocument): Promise<PostedReference | undefined> {
    const invoice = document.kind === 'invoice';
    const path = invoice
      ? `Invoices?InvoiceNumbers=${encodeURIComponent(document.number)}`
      : `CreditNotes?where=${encodeURIComponent(`CreditNoteNumber=="${document.number.replace(/"/g, '')}"`)}`;
    const body = (await this.getJson(path, invoice ? 'Invoices' : 'CreditNotes')) as {
      Invoices?: Array<{ InvoiceID: string; Reference?: string; Status?: string }>;
      CreditNotes?: Array<{ CreditNoteID: string; Reference?: string; Status?: string }>;
    };
    const found = (
      invoice
        ? (body.Invoices ?? []).map((d) => ({ id: d.InvoiceID, ...d }))
        : (body.CreditNotes ?? []).map((d) => ({ id: d.CreditNoteID, ...d }))
    ).filter((d) => d.Status !== 'DELETED' && d.Status !== 'VOIDED');
    if (found.length === 0) return undefined;
    const ours = found.find((d) => d.Reference === key);
    if (!ours) {
      throw new TargetError(
        `Xero ${document.kind} ${document.number} exists with another reference (${found[0]!.Reference ?? 'none'}), not ${key}`,
        { permanent: true, code: 'exists_with_different_reference' },
      );
    }
    if (!invoice) await this.allocate(key, ours.id, document);
    return { reference: ours.id };
  }

  /** Step 4: the contact first (customer sync), then the invoice (ACCREC) or credit note (ACCRECCREDIT) with our key as Idempotency-Key. */
  async postDocument(key: string, document: SalesDocument): Promise<PostedReference> {
    const mappings = await this.mappings.load();
    await this.checkLock(document.date);
    const on = document.date;
    const used: UsedCode[] = [];
    const currencyCode = mappings.resolve('currency', document.currency, on, 'CurrencyCode');
    used.push({ kind: 'currency', source: document.currency, target: currencyCode, field: 'CurrencyCode' });
    const lines: XeroLineCodes[] = document.lines.map((line, i) => {
      const accountCode = mappings.resolve('account', line.account, on, `LineItems[${i}].AccountCode`);
      used.push({ kind: 'account', source: line.account, target: accountCode, field: `LineItems[${i}].AccountCode` });
      const itemCode = line.product ? mappings.find('item', line.product, on) : undefined;
      if (itemCode) used.push({ kind: 'item', source: line.product!, target: itemCode, field: `LineItems[${i}].ItemCode` });
      let taxType: string | undefined;
      if (document.tax) {
        taxType = mappings.resolve('tax_type', document.tax.jurisdiction, on, `LineItems[${i}].TaxType`);
        used.push({ kind: 'tax_type', source: document.tax.jurisdiction, target: taxType, field: `LineItems[${i}].TaxType` });
      }
      return { AccountCode: accountCode, ...(itemCode ? { ItemCode: itemCode } : {}), ...(taxType ? { TaxType: taxType } : {}) };
    });
    const contactId = await this.contactOf(document, mappings);
    used.push({ kind: 'customer', source: document.customer, target: contactId, field: 'Contact' });
    const invoice = document.kind === 'invoice';
    const path = invoice ? 'Invoices' : 'CreditNotes';
    const res = await this.request('POST', path, {
      body: salesDocumentBody(key, document, { contactId, currencyCode, lines, dueDays: this.options.dueDays }),
      idempotencyKey: key,
    });
    if (!res.ok) throw await this.refusal(res, `POST ${path}`, used, document.date);
    const body = (await res.json()) as { Invoices?: Array<{ InvoiceID: string }>; CreditNotes?: Array<{ CreditNoteID: string }> };
    const id = invoice ? body.Invoices?.[0]?.InvoiceID : body.CreditNotes?.[0]?.CreditNoteID;
    if (!id) throw new TargetError(`Xero POST ${path}: no document in the answer`, { permanent: false, status: res.status });
    if (!invoice) await this.allocate(key, id, document);
    return { reference: id };
  }

  // ---------- voids ----------

  /** The invoice as Xero holds it, by its InvoiceID (what the invoice's own outbox row recorded). */
  private async invoiceById(document: VoidDocument): Promise<XeroInvoiceState> {
    const found = ((await this.getJson(`Invoices/${encodeURIComponent(document.invoice_reference)}`, 'Invoices')).Invoices ??
      []) as XeroInvoiceState[];
    const invoice = found[0];
    if (!invoice || invoice.InvoiceID !== document.invoice_reference)
      throw new TargetError(`Xero ${this.name}: invoice ${document.number} (${document.invoice_reference}) is not in Xero`, {
        permanent: true,
        code: 'void_invoice_missing',
      });
    return invoice;
  }

  /** Step 3 for a void: the invoice is VOIDED already (a void whose answer was lost, or done by hand). */
  async findVoid(_key: string, document: VoidDocument): Promise<PostedReference | undefined> {
    const invoice = await this.invoiceById(document);
    return invoice.Status === 'VOIDED' ? { reference: invoice.InvoiceID } : undefined;
  }

  /**
   * Step 4 for a void: Xero voids an invoice that has nothing paid or credited on it and is not dated in a locked
   * period; anything else is refused here, before the write, with what stands in the way (permanent: a person decides).
   */
  async postVoid(key: string, document: VoidDocument): Promise<PostedReference> {
    const invoice = await this.invoiceById(document);
    const paid = String(invoice.AmountPaid ?? '0');
    const credited = String(invoice.AmountCredited ?? '0');
    if (!/^0(\.0+)?$/.test(paid) || !/^0(\.0+)?$/.test(credited))
      throw new TargetError(
        `Xero ${this.name}: invoice ${document.number} has ${paid} paid and ${credited} credited in Xero; Xero voids only an invoice with no payments or credit notes allocated: remove them in Xero and replay, or correct the invoice with a credit note`,
        { permanent: true, code: 'void_invoice_paid' },
      );
    if (invoice.Status !== 'AUTHORISED' && invoice.Status !== 'SUBMITTED' && invoice.Status !== 'DRAFT')
      throw new TargetError(
        `Xero ${this.name}: invoice ${document.number} is ${invoice.Status ?? 'without a status'}; it cannot be voided`,
        {
          permanent: true,
          code: 'void_invoice_status',
        },
      );
    const org = await this.organisation();
    // A void takes effect on the invoice's own date: in a locked period Xero refuses it, and no later date helps.
    if (org.lockDate !== null && document.invoice_date <= org.lockDate)
      throw new TargetError(
        `Xero ${this.name}: invoice ${document.number} is dated ${document.invoice_date}, on or before the organisation's ${org.lockKind} ${org.lockDate}; Xero cannot void it: issue a credit note in Xero, or move the lock date and replay`,
        { permanent: true, code: 'void_period_locked' },
      );
    const path = `Invoices/${encodeURIComponent(document.invoice_reference)}`;
    const res = await this.request('POST', path, { body: voidInvoiceBody(document.invoice_reference), idempotencyKey: key });
    if (!res.ok) throw await this.failure(res, `POST ${path} (void)`);
    const voided = ((await res.json()) as { Invoices?: XeroInvoiceState[] }).Invoices?.[0];
    if (voided?.Status !== 'VOIDED')
      throw new TargetError(`Xero POST ${path}: the invoice is ${voided?.Status ?? 'missing'} in the answer, not VOIDED`, {
        permanent: false,
        status: res.status,
      });
    return { reference: voided.InvoiceID };
  }

  // ---------- customers ----------

  private async contactsWhere(where: string): Promise<XeroContactRecord[]> {
    const body = await this.getJson(`Contacts?where=${encodeURIComponent(where)}&includeArchived=true`, 'Contacts');
    return (body.Contacts ?? []) as XeroContactRecord[];
  }

  /**
   * The ContactID of the document's customer. A `customer` mapping names the contact (ContactID, or ContactNumber);
   * without one, `customers: link` refuses (MappingMissing) and `create` (the default) finds the contact whose
   * ContactNumber is Accrue's customer id, creates it (Idempotency-Key from the customer and its details) or
   * updates it when its name, address, tax number or currency differ.
   */
  private async contactOf(document: SalesDocument, mappings: MappingResolver): Promise<string> {
    const wanted = contactDetails(document);
    const cacheKey = `${document.customer}\u0000${JSON.stringify(wanted)}`;
    const cached = this.contacts.get(cacheKey);
    if (cached) return cached;
    const mapped = mappings.find('customer', document.customer, document.date);
    const create = (this.settings.customers ?? 'create') === 'create';
    let held: XeroContactRecord | undefined;
    if (mapped !== undefined) {
      held = (
        await this.contactsWhere(isXeroId(mapped) ? `ContactID==Guid("${mapped}")` : `ContactNumber=="${mapped.replace(/"/g, '')}"`)
      )[0];
      if (!held)
        throw new MappingMissing(this.name, 'customer', document.customer, 'Contact', `no contact ${mapped} in the Xero organisation`);
    } else if (!create) {
      throw new MappingMissing(this.name, 'customer', document.customer, 'Contact');
    } else {
      held = (await this.contactsWhere(`ContactNumber=="${document.customer.replace(/"/g, '')}"`))[0];
    }
    if (held && held.ContactStatus && held.ContactStatus !== 'ACTIVE') {
      throw new MappingMissing(
        this.name,
        'customer',
        document.customer,
        'Contact',
        `the Xero contact ${held.Name ?? held.ContactID} is ${held.ContactStatus}`,
      );
    }
    let id: string;
    if (!held) {
      id = await this.saveContact(document.customer, wanted);
    } else {
      id = held.ContactID;
      // Accrue keeps the details of the contacts it owns (ContactNumber = its customer id) up to date, in create mode;
      // a contact the customer is mapped to is someone's existing record: linked, never rewritten.
      if (create && mapped === undefined && contactDiffers(held, wanted)) await this.saveContact(document.customer, wanted, id);
    }
    this.contacts.set(cacheKey, id);
    return id;
  }

  private async saveContact(customer: string, details: XeroContactDetails, contactId?: string): Promise<string> {
    const body = contactBody(details, contactId);
    // Derived from the customer and what is sent: a retry repeats the same answer, a later change is a new request.
    const res = await this.request(contactId ? 'POST' : 'PUT', contactId ? `Contacts/${contactId}` : 'Contacts', {
      body,
      idempotencyKey: contactRequestKey(this.name, customer, body),
    });
    if (!res.ok) {
      const error = await this.failure(res, contactId ? 'POST Contacts' : 'PUT Contacts');
      if (error.details.status === 400) {
        // A name (or number) another contact holds: Xero keeps contact names unique. A person decides: map the
        // customer to the existing contact (kind 'customer'), or rename one of them.
        throw new MappingMissing(
          this.name,
          'customer',
          customer,
          /name/i.test(error.message) ? 'Contact.Name' : 'Contact',
          validationMessage(error.details.body) ?? error.message,
        );
      }
      throw error;
    }
    const saved = ((await res.json()) as { Contacts?: Array<{ ContactID: string }> }).Contacts?.[0]?.ContactID;
    if (!saved)
      throw new TargetError(`Xero ${contactId ? 'POST' : 'PUT'} Contacts: no contact in the answer`, {
        permanent: false,
        status: res.status,
      });
    return saved;
  }

  // ---------- credit note allocation ----------

  /**
   * Allocates a credit note to the invoice it corrects, once: the credit note's allocations are read first, so a
   * retry never allocates twice (and the PUT carries an Idempotency-Key). The amount is what the credit note has
   * left, up to what the invoice still owes.
   */
  private async allocate(key: string, creditNoteId: string, document: SalesDocument): Promise<void> {
    if (document.kind !== 'credit_note' || !document.corrects) return;
    const note = (
      (await this.getJson(`CreditNotes/${creditNoteId}`, 'CreditNotes')).CreditNotes as
        | Array<{
            Allocations?: Array<{ Invoice?: { InvoiceID?: string }; IsDeleted?: boolean }>;
            RemainingCredit?: string;
            Status?: string;
          }>
        | undefined
    )?.[0];
    if (!note) throw new TargetError(`Xero credit note ${document.number} (${creditNoteId}) not found to allocate`, { permanent: false });
    const invoice = (
      (await this.getJson(`Invoices?InvoiceNumbers=${encodeURIComponent(document.corrects)}`, 'Invoices')).Invoices as
        Array<{ InvoiceID: string; AmountDue?: string; Status?: string; Type?: string }> | undefined
    )?.find((i) => i.Status !== 'DELETED' && i.Status !== 'VOIDED');
    if (!invoice) {
      throw new TargetError(
        `Xero ${this.name}: invoice ${document.corrects}, which credit note ${document.number} corrects, is not in Xero yet; the allocation waits for it`,
        { permanent: false, code: 'allocation_invoice_missing' },
      );
    }
    if ((note.Allocations ?? []).some((a) => a.Invoice?.InvoiceID === invoice.InvoiceID && !a.IsDeleted)) return;
    const remaining = new Decimal(note.RemainingCredit ?? '0');
    const due = new Decimal(invoice.AmountDue ?? '0');
    const amount = Decimal.min(remaining, due);
    if (amount.lte(0)) return; // nothing left to allocate, or the invoice is paid: the credit stays on the contact
    const res = await this.request('PUT', `CreditNotes/${creditNoteId}/Allocations`, {
      body: allocationBody(invoice.InvoiceID, amount.toFixed(), document.date),
      idempotencyKey: `${key}:allocation`,
    });
    if (!res.ok) throw await this.refusal(res, 'PUT CreditNotes Allocations', [], document.date);
  }

  // ---------- payments pushed ----------

  /** The payment Accrue pushed under `key` (its Reference), if Xero has it. */
  async findPayment(key: string, _payment: PaymentDocument): Promise<PostedReference | undefined> {
    const body = await this.getJson(`Payments?where=${encodeURIComponent(`Reference=="${key.replace(/"/g, '')}"`)}`, 'Payments');
    const found = ((body.Payments ?? []) as Array<{ PaymentID: string; Status?: string; Reference?: string }>).filter(
      (p) => p.Status !== 'DELETED' && p.Reference === key,
    );
    return found[0] ? { reference: found[0].PaymentID } : undefined;
  }

  /** A payment received by Accrue, applied in Xero to its invoice (found by number) from the mapped bank account. */
  async postPayment(key: string, payment: PaymentDocument): Promise<PostedReference> {
    const mappings = await this.mappings.load();
    await this.checkLock(payment.received_on);
    const field = 'Payments[0].Account.Code';
    const cash = this.options.cashAccount?.(payment.legal_entity);
    if (cash === undefined) throw new MappingMissing(this.name, 'account', `cash account of ${payment.legal_entity}`, field);
    const accountCode = mappings.resolve('account', cash, payment.received_on, field);
    const invoice = (
      (await this.getJson(`Invoices?InvoiceNumbers=${encodeURIComponent(payment.invoice_number)}`, 'Invoices')).Invoices as
        Array<{ InvoiceID: string; Status?: string; CurrencyCode?: string }> | undefined
    )?.find((i) => i.Status !== 'DELETED' && i.Status !== 'VOIDED');
    if (!invoice)
      throw new TargetError(`Xero ${this.name}: invoice ${payment.invoice_number} of payment ${payment.payment_id} is not in Xero yet`, {
        permanent: false,
        code: 'payment_invoice_missing',
      });
    if (
      invoice.CurrencyCode &&
      invoice.CurrencyCode !== (mappings.find('currency', payment.currency, payment.received_on) ?? payment.currency)
    ) {
      throw new TargetError(
        `Xero ${this.name}: payment ${payment.payment_id} is in ${payment.currency}, invoice ${payment.invoice_number} in ${invoice.CurrencyCode}`,
        { permanent: true, code: 'payment_currency_mismatch' },
      );
    }
    const used: UsedCode[] = [{ kind: 'account', source: cash, target: accountCode, field }];
    const res = await this.request('PUT', 'Payments', {
      body: paymentBody(key, invoice.InvoiceID, accountCode, payment.received_on, formatMajor(payment.amount_minor, payment.currency)),
      idempotencyKey: key,
    });
    if (!res.ok) throw await this.refusal(res, 'PUT Payments', used, payment.received_on);
    const id = ((await res.json()) as { Payments?: Array<{ PaymentID: string }> }).Payments?.[0]?.PaymentID;
    if (!id) throw new TargetError('Xero PUT Payments: no payment in the answer', { permanent: false, status: res.status });
    return { reference: id };
  }

  /** Receipts against sales invoices modified at or after `since`, oldest first, page by page; Accrue's own pushes skipped. */
  async *paymentPages(since: string | null): AsyncIterable<ErpPayment[]> {
    const pageSize = this.options.paymentsPageSize ?? XERO_PAYMENTS_PAGE_SIZE;
    const filter = `&order=${encodeURIComponent('UpdatedDateUTC ASC')}&where=${encodeURIComponent('PaymentType=="ACCRECPAYMENT"')}`;
    for (let page = 1; ; page += 1) {
      const res = await this.request(
        'GET',
        `Payments?page=${page}&pageSize=${pageSize}${filter}`,
        since ? { ifModifiedSince: ifModifiedSince(since) } : {},
      );
      if (res.status === 304) return; // nothing modified since
      if (!res.ok) throw await this.failure(res, 'GET Payments');
      const records = (parseJsonDecimals(await res.text()) as { Payments?: XeroPaymentRecord[] }).Payments ?? [];
      yield records.map(paymentFromXero).filter((p): p is ErpPayment => p !== null);
      if (records.length < pageSize) return;
    }
  }

  // ---------- erp check ----------

  /** `accrue erp check`: what the organisation says of a mapping's target. */
  async checkReference(kind: MappingKind, target: string): Promise<ReferenceState> {
    const quoted = target.replace(/"/g, '');
    switch (kind) {
      case 'account': {
        const account = (
          (await this.getJson(`Accounts?where=${encodeURIComponent(`Code=="${quoted}"`)}`, 'Accounts')).Accounts as
            Array<{ Status?: string; Name?: string }> | undefined
        )?.[0];
        if (!account) return { state: 'missing', detail: `no account with code ${target} in the Xero organisation` };
        return account.Status === 'ACTIVE'
          ? { state: 'active' }
          : { state: 'inactive', detail: `account ${target} (${account.Name ?? ''}) is ${account.Status}` };
      }
      case 'tax_type': {
        const rate = (
          (await this.getJson(`TaxRates?where=${encodeURIComponent(`TaxType=="${quoted}"`)}`, 'TaxRates')).TaxRates as
            Array<{ Status?: string; Name?: string; TaxType?: string }> | undefined
        )?.find((r) => r.TaxType === target);
        if (!rate) return { state: 'missing', detail: `no tax rate with TaxType ${target} in the Xero organisation` };
        return rate.Status === 'ACTIVE'
          ? { state: 'active' }
          : { state: 'inactive', detail: `tax rate ${target} (${rate.Name ?? ''}) is ${rate.Status}` };
      }
      case 'item': {
        const item = (
          (await this.getJson(`Items?where=${encodeURIComponent(`Code=="${quoted}"`)}`, 'Items')).Items as
            Array<{ Code?: string; IsSold?: boolean }> | undefined
        )?.find((i) => i.Code === target);
        if (!item) return { state: 'missing', detail: `no item with code ${target} in the Xero organisation` };
        return item.IsSold === false
          ? { state: 'inactive', detail: `item ${target} is not sold (IsSold false): it cannot be used on a sales invoice` }
          : { state: 'active' };
      }
      case 'currency': {
        const currencies = ((await this.getJson('Currencies', 'Currencies')).Currencies ?? []) as Array<{ Code?: string }>;
        return currencies.some((c) => c.Code === target)
          ? { state: 'active' }
          : { state: 'missing', detail: `currency ${target} is not enabled in the Xero organisation (Settings > Currencies)` };
      }
      case 'customer': {
        const contact = (await this.contactsWhere(isXeroId(target) ? `ContactID==Guid("${quoted}")` : `ContactNumber=="${quoted}"`))[0];
        if (!contact) return { state: 'missing', detail: `no contact ${target} in the Xero organisation` };
        return contact.ContactStatus === undefined || contact.ContactStatus === 'ACTIVE'
          ? { state: 'active' }
          : { state: 'inactive', detail: `contact ${contact.Name ?? target} is ${contact.ContactStatus}` };
      }
      case 'subsidiary':
      case 'nexus':
      case 'tax_code':
        return {
          state: 'missing',
          detail: `${kind} does not apply to Xero: a Xero connection is one organisation (one legal entity), and Xero tax is a TaxType (kind tax_type)`,
        };
    }
  }

  /**
   * Everything Accrue posts, dated in the period, page by page: manual journals (our key read back from the
   * narration), sales invoices and credit notes (our key in Reference). The connection is one organisation, which
   * holds only its own legal entities' documents, so `legalEntity` selects nothing here. Amounts are read as their
   * literal text.
   */
  async listDocuments(_legalEntity: string, period: string): Promise<ErpDocument[]> {
    const window = parsePeriod(period);
    if (!window.ok) throw new TargetError(`Xero listDocuments: ${window.problems[0]!.message}`, { permanent: true });
    const dates = periodWhere(window.value.start_date, window.value.end_date);
    const documents: ErpDocument[] = [];
    const pages = async (path: string, what: string, take: (body: Record<string, unknown>) => number) => {
      for (let page = 1; ; page += 1) {
        const count = take(await this.getJson(`${path}&page=${page}`, what));
        if (documents.length > ERP_DOCUMENTS_MAX)
          throw new TargetError(`Xero listDocuments: more than ${ERP_DOCUMENTS_MAX} documents in ${period}`, { permanent: true });
        if (count < XERO_PAGE_SIZE) return;
      }
    };
    await pages(`ManualJournals?where=${encodeURIComponent(dates)}`, 'ManualJournals', (body) => {
      const journals = (body.ManualJournals ?? []) as Array<{
        ManualJournalID: string;
        Narration?: string;
        Date?: string;
        Status?: string;
        JournalLines?: Array<{ LineAmount?: string }>;
      }>;
      for (const j of journals) {
        if ((j.Status ?? 'POSTED') !== 'POSTED') continue; // drafts, voided and deleted journals move no balance
        const debit = (j.JournalLines ?? []).reduce(
          (sum, l) => (l.LineAmount && !l.LineAmount.startsWith('-') ? sum.plus(new Decimal(l.LineAmount)) : sum),
          new Decimal(0),
        );
        documents.push({
          key: /\[([^\]]+)\]$/.exec(j.Narration ?? '')?.[1] ?? '',
          reference: j.ManualJournalID,
          currency: '',
          form: 'journal',
          amount: decimalText(debit),
          posted_on: xeroDate(j.Date),
        });
      }
      return journals.length;
    });
    for (const [collection, type, form] of [
      ['Invoices', 'ACCREC', 'invoice'],
      ['CreditNotes', 'ACCRECCREDIT', 'credit_note'],
    ] as const) {
      await pages(`${collection}?where=${encodeURIComponent(`Type=="${type}" AND ${dates}`)}`, collection, (body) => {
        const list = (body[collection] ?? []) as XeroSalesListed[];
        for (const d of list) {
          if (!['AUTHORISED', 'PAID'].includes(d.Status ?? '')) continue; // drafts, submitted, voided and deleted documents book nothing
          documents.push({
            key: d.Reference ?? '',
            reference: d.InvoiceID ?? d.CreditNoteID ?? '',
            currency: d.CurrencyCode ?? '',
            form,
            amount: d.Total ?? '0',
            ...(d.TotalTax !== undefined ? { tax: d.TotalTax } : {}),
            posted_on: xeroDate(d.Date),
          });
        }
        return list.length;
      });
    }
    return documents;
  }

  // ---------- failures ----------

  /**
   * A refused write: a refusal about a code the request carries is a MappingMissing naming its field (with Xero's
   * message); a refusal of the date for a lock date is a PeriodLocked; anything else a TargetError.
   */
  private async refusal(res: Response, what: string, used: readonly UsedCode[], date: string): Promise<Error> {
    const error = await this.failure(res, what);
    if (error.details.status !== 400) return error;
    const messages = validationMessages(error.details.body);
    for (const message of messages) {
      if (/lock date/i.test(message)) {
        this.organisationCache = undefined; // the lock date moved since it was read
        const lock = xeroTextDate(message);
        return new PeriodLocked(this.name, date, lock ? addDays(lock, 1) : null, message);
      }
    }
    for (const message of messages) {
      for (const { kind, pattern } of REFUSALS) {
        const match = pattern.exec(message);
        if (!match) continue;
        const code = match[1] ?? '';
        const candidates = used.filter((u) => u.kind === kind);
        const hit = candidates.find((u) => u.target.toLowerCase() === code.toLowerCase()) ?? (code === '' ? candidates[0] : undefined);
        if (!hit) continue;
        if (kind === 'customer')
          for (const k of [...this.contacts.keys()]) if (k.startsWith(`${hit.source}\u0000`)) this.contacts.delete(k);
        return new MappingMissing(this.name, kind, hit.source, hit.field, message);
      }
    }
    return error;
  }

  private async failure(res: Response, what: string): Promise<TargetError> {
    const body = (await readAnswer(res)).json as XeroErrorBody | undefined;
    return new TargetError(
      `Xero ${this.name} ${what}: ${res.status} ${validationMessages(body).join('; ') || body?.Message || body?.Detail || res.statusText}`,
      {
        status: res.status,
        code: res.headers.get('x-rate-limit-problem') ?? body?.Type ?? undefined,
        retryAfterMs: retryAfterMs(res.headers.get('retry-after')),
        permanent: !(res.status === 429 || res.status >= 500),
        body,
      },
    );
  }
}

/** What a void needs to know of an invoice Xero holds. */
interface XeroInvoiceState {
  InvoiceID: string;
  Status?: string;
  AmountPaid?: string;
  AmountCredited?: string;
}

/** A refusal's body as Xero writes it: a ValidationException, or a problem (Title, Detail) for limits and auth. */
interface XeroErrorBody {
  Message?: string;
  Type?: string;
  Title?: string;
  Detail?: string;
  Elements?: Array<{ ValidationErrors?: Array<{ Message?: string }> }>;
}

/** Xero takes an Idempotency-Key of up to 128 characters; a longer key is sent as its digest (the same key, the same digest). */
export const IDEMPOTENCY_KEY_MAX = 128;
export const idempotencyHeader = (key: string) =>
  key.length <= IDEMPOTENCY_KEY_MAX ? key : `sha256:${createHash('sha256').update(key).digest('hex')}`;

/** Every ValidationErrors message of a Xero ValidationException (per element, and at the top level). */
function validationMessages(body: unknown): string[] {
  const b = body as
    { Elements?: Array<{ ValidationErrors?: Array<{ Message?: string }> }>; ValidationErrors?: Array<{ Message?: string }> } | undefined;
  const list = [...(b?.ValidationErrors ?? []), ...(b?.Elements ?? []).flatMap((e) => e.ValidationErrors ?? [])];
  return list.map((v) => v.Message ?? '').filter(Boolean);
}
const validationMessage = (body: unknown) => validationMessages(body)[0];
