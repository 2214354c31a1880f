// A Xero Accounting API simulator: ManualJournals POST with Idempotency-Key (a repeated key returns the first
// answer), GET with a Narration.Contains filter, the 5-concurrent and 60-a-minute limits answered with 429 and
// Retry-After / X-Rate-Limit-Problem, validation errors in Xero's shape, and injectable faults.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Fault } from './netsuite-sim.js';
import { Decimal, decimalText } from '../../src/domain/money.js';
import { parseJsonDecimals } from '../../src/connectors/json-decimal.js';

/** An ACCREC invoice or ACCRECCREDIT credit note as stored; amounts are the literal text of the request. */
export interface XeroSalesDocument {
  id: string; // InvoiceID or CreditNoteID
  Type: 'ACCREC' | 'ACCRECCREDIT';
  Number: string; // InvoiceNumber or CreditNoteNumber
  Reference: string;
  Contact: { ContactID?: string; ContactNumber?: string };
  CurrencyCode: string;
  Date: string;
  DueDate?: string;
  Status: string;
  LineItems: Array<{ Description?: string; Quantity?: string; UnitAmount?: string; LineAmount?: string; AccountCode?: string; TaxType?: string; TaxAmount?: string }>;
  Total: string;
  TotalTax: string;
}

export interface XeroSimPayment {
  PaymentID: string;
  Date: string; // YYYY-MM-DD
  Amount: string;
  Status: 'AUTHORISED' | 'DELETED';
  PaymentType: 'ACCRECPAYMENT' | 'ARCREDITPAYMENT';
  UpdatedDateUTC: number; // ms since the epoch
  invoiceId: string;
}

const validation = (message: string) => ({ ErrorNumber: 10, Type: 'ValidationException', Message: 'A validation exception occurred', Elements: [{ ValidationErrors: [{ Message: message }] }] });
const msDate = (ms: number) => `/Date(${ms}+0000)/`;

export class XeroSimulator {
  readonly journals: Array<{ ManualJournalID: string; Narration: string; lines: string[]; Date?: string; Status?: string }> = [];
  readonly faults: Fault[] = [];
  readonly invoices: XeroSalesDocument[] = [];
  readonly creditNotes: XeroSalesDocument[] = [];
  readonly payments: XeroSimPayment[] = [];
  private readonly answers = new Map<string, string>();
  private inFlight = 0;
  inFlightMax = 0;
  private calls: number[] = [];
  private app: FastifyInstance | undefined;
  url = '';

  constructor(readonly options: { timeoutDelayMs: number; perMinute: number; concurrent: number }) {}

  /** A receipt against an invoice this simulator holds, by its number; returns the PaymentID. */
  addPayment(payment: { invoiceNumber: string; amount: string; date: string; updatedAt: Date; type?: XeroSimPayment['PaymentType'] }): string {
    const invoice = this.invoices.find((i) => i.Number === payment.invoiceNumber);
    if (!invoice) throw new Error(`no invoice ${payment.invoiceNumber} in the simulator`);
    const id = `00000000-0000-4000-8000-${String(this.payments.length + 1).padStart(12, '0')}`;
    this.payments.push({ PaymentID: id, Date: payment.date, Amount: payment.amount, Status: 'AUTHORISED', PaymentType: payment.type ?? 'ACCRECPAYMENT', UpdatedDateUTC: payment.updatedAt.getTime(), invoiceId: invoice.id });
    return id;
  }

  deletePayment(paymentId: string, at: Date): void {
    const payment = this.payments.find((p) => p.PaymentID === paymentId);
    if (!payment) throw new Error(`no payment ${paymentId}`);
    payment.Status = 'DELETED';
    payment.UpdatedDateUTC = at.getTime();
  }

  /** POST Invoices / CreditNotes: Xero's checks that matter here, then the document with its totals. */
  private createSales(kind: 'invoice' | 'credit_note', text: string): { status: number; body: unknown } {
    const body = parseJsonDecimals(text) as Record<string, Array<Record<string, unknown>>>;
    const list = kind === 'invoice' ? body.Invoices : body.CreditNotes;
    const input = list?.[0] as Record<string, any> | undefined;
    const type = kind === 'invoice' ? 'ACCREC' : 'ACCRECCREDIT';
    if (!input) return { status: 400, body: validation(`No ${kind === 'invoice' ? 'Invoices' : 'CreditNotes'} in the request`) };
    if (input.Type !== type) return { status: 400, body: validation(`Type must be ${type} for this simulator`) };
    if (!input.Contact?.ContactID && !input.Contact?.ContactNumber) return { status: 400, body: validation('A Contact must be specified for this type of transaction') };
    if (!['Exclusive', 'Inclusive', 'NoTax'].includes(input.LineAmountTypes)) return { status: 400, body: validation('LineAmountTypes is not valid') };
    if (kind === 'invoice' && input.Status === 'AUTHORISED' && !input.DueDate) return { status: 400, body: validation('Due Date is required') };
    const number = String((kind === 'invoice' ? input.InvoiceNumber : input.CreditNoteNumber) ?? '');
    const store = kind === 'invoice' ? this.invoices : this.creditNotes;
    if (number && store.some((d) => d.Number === number && d.Status !== 'DELETED')) return { status: 400, body: validation(`${kind === 'invoice' ? 'Invoice' : 'Credit Note'} # must be unique.`) };
    const lines = (input.LineItems ?? []) as XeroSalesDocument['LineItems'];
    if (lines.length === 0) return { status: 400, body: validation('At least one line item is required') };
    let total = new Decimal(0);
    let tax = new Decimal(0);
    for (const line of lines) {
      if (!line.AccountCode) return { status: 400, body: validation('Account code must be specified') };
      const amount = new Decimal(line.LineAmount ?? '0');
      if (line.UnitAmount !== undefined && !new Decimal(line.UnitAmount).times(new Decimal(line.Quantity ?? '1')).equals(amount)) return { status: 400, body: validation('LineAmount must equal Quantity × UnitAmount') };
      total = total.plus(amount);
      tax = tax.plus(new Decimal(line.TaxAmount ?? '0'));
    }
    if (input.LineAmountTypes === 'Exclusive') total = total.plus(tax);
    if (total.isNegative()) return { status: 400, body: validation('The document total cannot be negative') };
    const id = `${kind === 'invoice' ? 'inv' : 'cn'}-${String(store.length + 1).padStart(4, '0')}-0000-4000-8000-000000000000`;
    const document: XeroSalesDocument = { id, Type: type, Number: number || `${type}-${store.length + 1}`, Reference: String(input.Reference ?? ''), Contact: input.Contact, CurrencyCode: String(input.CurrencyCode ?? ''), Date: String(input.Date ?? ''), DueDate: input.DueDate, Status: String(input.Status ?? 'DRAFT'), LineItems: lines, Total: decimalText(total), TotalTax: decimalText(tax) };
    store.push(document);
    return { status: 200, body: kind === 'invoice' ? { Invoices: [this.invoiceJson(document)] } : { CreditNotes: [{ CreditNoteID: id, CreditNoteNumber: document.Number, Reference: document.Reference, Status: document.Status, Type: type }] } };
  }

  private invoiceJson(d: XeroSalesDocument) {
    return { InvoiceID: d.id, InvoiceNumber: d.Number, Reference: d.Reference, Status: d.Status, Type: d.Type, CurrencyCode: d.CurrencyCode };
  }

  async start(): Promise<void> {
    const app = Fastify();
    this.app = app;
    // Keep LineAmount as written: parse the body as text and read amounts with a pattern, never as floats.
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_r, body, done) => done(null, body));
    app.addHook('onRequest', async (_request, reply) => {
      const now = Date.now();
      this.calls = this.calls.filter((t) => now - t < 60_000);
      this.calls.push(now);
      this.inFlight += 1;
      this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
      reply.raw.on('close', () => (this.inFlight -= 1));
      if (this.inFlight > this.options.concurrent) return reply.code(429).header('retry-after', '0').header('x-rate-limit-problem', 'concurrent').send({ Message: 'Too many concurrent requests' });
      if (this.calls.length > this.options.perMinute) return reply.code(429).header('retry-after', '1').header('x-rate-limit-problem', 'minute').send({ Message: 'Rate limit exceeded' });
    });
    app.get('/api.xro/2.0/ManualJournals', async (request, reply) => {
      const where = String((request.query as { where?: string }).where ?? '');
      // Reconciliation: a date-range filter with `page` lists journals with their lines, 100 a page, dates as /Date(ms+0000)/.
      const range = /Date >= DateTime\((\d+),(\d+),(\d+)\) AND Date < DateTime\((\d+),(\d+),(\d+)\)/.exec(where);
      if (range) {
        const [from, to] = [range.slice(1, 4).join('-'), range.slice(4, 7).join('-')];
        const page = Number((request.query as { page?: string }).page ?? 1);
        const inRange = this.journals.filter((j) => (j.Date ?? '') >= from && (j.Date ?? '') < to).slice((page - 1) * 100, page * 100);
        const body = inRange.map((j) => {
          const lines = j.lines.map((amount) => `{"LineAmount":${amount},"AccountCode":"0"}`).join(',');
          return `{"ManualJournalID":${JSON.stringify(j.ManualJournalID)},"Narration":${JSON.stringify(j.Narration)},"Date":"/Date(${Date.parse(`${j.Date}T00:00:00Z`)}+0000)/","Status":${JSON.stringify(j.Status ?? 'POSTED')},"JournalLines":[${lines}]}`;
        });
        return reply.type('application/json').send(`{"ManualJournals":[${body.join(',')}]}`);
      }
      const needle = /Narration\.Contains\("(.*)"\)/.exec(where)?.[1] ?? '\u0000';
      return { ManualJournals: this.journals.filter((j) => j.Narration.includes(needle)).map((j) => ({ ManualJournalID: j.ManualJournalID, Narration: j.Narration })) };
    });
    app.post('/api.xro/2.0/ManualJournals', async (request, reply) => {
      const key = String(request.headers['idempotency-key'] ?? '');
      const earlier = this.answers.get(key);
      if (key && earlier) return reply.code(200).type('application/json').send(earlier);
      const fault = this.faults.shift();
      if (fault === '429') return reply.code(429).header('retry-after', '0').header('x-rate-limit-problem', 'minute').send({ Message: 'Rate limit exceeded' });
      if (fault === '500') return reply.code(503).send({ Message: 'Service unavailable' });
      if (fault === 'invalid') return reply.code(400).send({ ErrorNumber: 10, Type: 'ValidationException', Message: 'A validation exception occurred', Elements: [{ ValidationErrors: [{ Message: 'Account code 9999 is not a valid code for this document.' }] }] });
      if (fault === 'timeout') {
        await new Promise((r) => setTimeout(r, this.options.timeoutDelayMs));
        return reply.code(503).send({ Message: 'too late' });
      }
      const text = String(request.body);
      const amounts = [...text.matchAll(/"LineAmount":(-?\d+(?:\.\d+)?)/g)].map((m) => m[1]!);
      const sum = amounts.reduce((s, a) => s + BigInt(a.replace('.', '').replace(/^(-?)0+(?=\d)/, '$1')), 0n);
      if (sum !== 0n) return reply.code(400).send({ ErrorNumber: 10, Type: 'ValidationException', Message: 'A validation exception occurred', Elements: [{ ValidationErrors: [{ Message: 'The total debits must equal total credits' }] }] });
      const narration = /"Narration":"((?:[^"\\]|\\.)*)"/.exec(text)?.[1] ?? '';
      const journal = { ManualJournalID: `mj-${this.journals.length + 1}`, Narration: JSON.parse(`"${narration}"`) as string, lines: amounts, Date: /"Date":"(\d{4}-\d{2}-\d{2})"/.exec(text)?.[1], Status: 'POSTED' };
      this.journals.push(journal);
      const answer = JSON.stringify({ ManualJournals: [{ ManualJournalID: journal.ManualJournalID, Status: 'POSTED' }] });
      if (key) this.answers.set(key, answer);
      if (fault === 'lost') {
        request.raw.socket.destroy();
        return reply;
      }
      return reply.code(200).type('application/json').send(answer);
    });
    for (const kind of ['invoice', 'credit_note'] as const) {
      app.post(`/api.xro/2.0/${kind === 'invoice' ? 'Invoices' : 'CreditNotes'}`, async (request, reply) => {
        const key = String(request.headers['idempotency-key'] ?? '');
        const earlier = this.answers.get(key);
        if (key && earlier) return reply.code(200).type('application/json').send(earlier);
        const fault = this.faults.shift();
        if (fault === '429') return reply.code(429).header('retry-after', '0').header('x-rate-limit-problem', 'minute').send({ Message: 'Rate limit exceeded' });
        if (fault === '500') return reply.code(503).send({ Message: 'Service unavailable' });
        if (fault === 'invalid') return reply.code(400).send(validation('Account code 9999 is not a valid code for this document.'));
        if (fault === 'timeout') {
          await new Promise((r) => setTimeout(r, this.options.timeoutDelayMs));
          return reply.code(503).send({ Message: 'too late' });
        }
        const created = this.createSales(kind, String(request.body));
        if (created.status !== 200) return reply.code(created.status).send(created.body);
        const answer = JSON.stringify(created.body);
        if (key) this.answers.set(key, answer);
        if (fault === 'lost') {
          request.raw.socket.destroy();
          return reply;
        }
        return reply.code(200).type('application/json').send(answer);
      });
    }
    // Reconciliation: where Type=="…" AND Date >= DateTime(…) AND Date < DateTime(…), with page: documents with totals.
    const listed = (where: string, store: XeroSalesDocument[], collection: 'Invoices' | 'CreditNotes', page: number) => {
      const range = /Type=="([A-Z]+)" AND Date >= DateTime\((\d+),(\d+),(\d+)\) AND Date < DateTime\((\d+),(\d+),(\d+)\)/.exec(where);
      if (!range) return undefined;
      const [from, to] = [range.slice(2, 5).join('-'), range.slice(5, 8).join('-')];
      const idField = collection === 'Invoices' ? 'InvoiceID' : 'CreditNoteID';
      const body = store
        .filter((d) => d.Type === range[1] && d.Date >= from && d.Date < to)
        .slice((page - 1) * 100, page * 100)
        .map((d) => `{"${idField}":${JSON.stringify(d.id)},"Type":"${d.Type}","Reference":${JSON.stringify(d.Reference)},"Status":"${d.Status}","CurrencyCode":"${d.CurrencyCode}","Date":"${msDate(Date.parse(`${d.Date}T00:00:00Z`))}","Total":${d.Total}}`);
      return `{"${collection}":[${body.join(',')}]}`;
    };
    app.get('/api.xro/2.0/Invoices', async (request, reply) => {
      const q = request.query as { where?: string; page?: string };
      const page = listed(String(q.where ?? ''), this.invoices, 'Invoices', Number(q.page ?? 1));
      if (page) return reply.type('application/json').send(page);
      const numbers = String((request.query as { InvoiceNumbers?: string }).InvoiceNumbers ?? '').split(',').filter(Boolean);
      return { Invoices: this.invoices.filter((d) => numbers.length === 0 || numbers.includes(d.Number)).map((d) => this.invoiceJson(d)) };
    });
    app.get('/api.xro/2.0/CreditNotes', async (request, reply) => {
      const q = request.query as { where?: string; page?: string };
      const page = listed(String(q.where ?? ''), this.creditNotes, 'CreditNotes', Number(q.page ?? 1));
      if (page) return reply.type('application/json').send(page);
      const number = /CreditNoteNumber=="([^"]*)"/.exec(String((request.query as { where?: string }).where ?? ''))?.[1];
      return { CreditNotes: this.creditNotes.filter((d) => number === undefined || d.Number === number).map((d) => ({ CreditNoteID: d.id, CreditNoteNumber: d.Number, Reference: d.Reference, Status: d.Status, Type: d.Type })) };
    });
    // Payments: If-Modified-Since (UTC, yyyy-mm-ddThh:mm:ss), where PaymentType=="…", order UpdatedDateUTC, page/pageSize.
    app.get('/api.xro/2.0/Payments', async (request, reply) => {
      const query = request.query as { page?: string; pageSize?: string; where?: string; order?: string };
      const header = request.headers['if-modified-since'];
      const since = header ? Date.parse(`${String(header)}Z`) : Number.NEGATIVE_INFINITY;
      if (Number.isNaN(since)) return reply.code(400).send(validation('If-Modified-Since is not a valid date'));
      const type = /PaymentType=="([A-Z]+)"/.exec(query.where ?? '')?.[1];
      const pageSize = Math.min(1000, Number(query.pageSize ?? 100));
      const page = Number(query.page ?? 1);
      const matching = this.payments
        .filter((p) => p.UpdatedDateUTC >= since && (type === undefined || p.PaymentType === type))
        .sort((a, b) => a.UpdatedDateUTC - b.UpdatedDateUTC || (a.PaymentID < b.PaymentID ? -1 : 1))
        .slice((page - 1) * pageSize, page * pageSize);
      // Written by hand: Amount is a JSON number with the digits Xero keeps, dates in Xero's /Date(ms+0000)/ form.
      const body = matching.map((p) => {
        const invoice = this.invoices.find((i) => i.id === p.invoiceId)!;
        return `{"PaymentID":${JSON.stringify(p.PaymentID)},"Date":"${msDate(Date.parse(`${p.Date}T00:00:00Z`))}","Amount":${p.Amount},"Status":"${p.Status}","PaymentType":"${p.PaymentType}","UpdatedDateUTC":"${msDate(p.UpdatedDateUTC)}","Invoice":${JSON.stringify({ ...this.invoiceJson(invoice), Contact: invoice.Contact })}}`;
      });
      return reply.type('application/json').send(`{"Payments":[${body.join(',')}]}`);
    });
    this.url = await app.listen({ host: '127.0.0.1', port: 0 });
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }
}
