// A NetSuite REST simulator for the tests: the documented journalEntry upsert by external ID, GET by external ID,
// the error body shape (`o:errorDetails`), a concurrency limit answered with 429, and injectable faults.
import Fastify, { type FastifyInstance } from 'fastify';
import { Decimal, decimalText } from '../../src/domain/money.js';
import { parseJsonDecimals } from '../../src/connectors/json-decimal.js';

export type Fault = '429' | '500' | 'timeout' | 'lost' | 'invalid';

interface JournalEntry {
  externalId: string;
  line: { items: Array<{ debit?: string; credit?: string }> };
}

/** An invoice or creditMemo as the REST record API takes it (amounts read as their literal text). */
export interface SalesRecord {
  externalId?: string;
  tranId?: string;
  tranDate?: string;
  dueDate?: string;
  billingAddress?: { addressee?: string; addr1?: string; addr2?: string; addr3?: string; city?: string; state?: string; zip?: string; country?: { id?: string } };
  entity?: { id?: string; externalId?: string };
  subsidiary?: { id?: string };
  currency?: { refName?: string };
  memo?: string;
  item?: { items?: Array<{ item?: { id?: string; externalId?: string }; description?: string; quantity?: string; rate?: string; amount?: string; taxDetailsReference?: string }> };
  taxDetailsOverride?: boolean;
  taxDetails?: { items?: Array<{ taxDetailsReference?: string; taxCode?: { id?: string; externalId?: string }; taxBasis?: string; taxRate?: string; taxAmount?: string }> };
  total?: string; // computed by the simulator, as NetSuite does
}

/** A customer payment and the invoices it applies to (PreviousTransactionLineLink rows, linktype 'Payment'). */
export interface SimPayment {
  id: string;
  tranDate: string;
  modifiedAt: string; // 'YYYY-MM-DD HH:MM:SS', as TO_CHAR writes lastmodifieddate
  currency: string;
  applications: Array<{ invoiceId: string; amount: string }>;
}

export class NetSuiteSimulator {
  // Every record by external ID: journal entries (no type), invoices and credit memos (type set).
  readonly records = new Map<string, { id: string; type?: 'invoice' | 'creditMemo'; body: JournalEntry | SalesRecord; writes: number }>();
  readonly payments: SimPayment[] = [];
  readonly faults: Fault[] = [];
  /** Every request as it arrived (method and URL), to check which documents reached the ERP. */
  readonly seen: Array<{ method: string; url: string }> = [];
  creates = 0;
  requests = 0;
  /** X-Accrue-Correlation of every request, in arrival order. */
  readonly correlations: string[] = [];
  inFlightMax = 0;
  private inFlight = 0;
  private app: FastifyInstance | undefined;
  url = '';

  // serviceMs: a fixed service time for every request (GET and PUT), held in flight, as the ERP's own work.
  constructor(readonly options: { concurrencyLimit: number; timeoutDelayMs: number; putDelayMs?: number; serviceMs?: number }) {}

  private error(status: number, code: string, detail: string) {
    return { type: `https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.${status === 429 ? 'x' : '1'}`, title: status === 429 ? 'Too Many Requests' : 'Bad Request', status, 'o:errorDetails': [{ detail, 'o:errorCode': code }] };
  }

  /** A customer payment applied to invoices this simulator holds (by external ID); returns its internal id. */
  addPayment(payment: { tranDate: string; modifiedAt: string; currency?: string; applications: Array<{ invoiceExternalId: string; amount: string }> }): string {
    const id = String(9000 + this.payments.length + 1);
    const applications = payment.applications.map((a) => {
      const record = this.records.get(a.invoiceExternalId);
      if (!record || record.type !== 'invoice') throw new Error(`no invoice ${a.invoiceExternalId} in the simulator`);
      return { invoiceId: record.id, amount: a.amount };
    });
    const currency = payment.currency ?? (this.records.get(payment.applications[0]!.invoiceExternalId)!.body as SalesRecord).currency?.refName ?? 'USD';
    this.payments.push({ id, tranDate: payment.tranDate, modifiedAt: payment.modifiedAt, currency, applications });
    return id;
  }

  /** Sales records of one type (invoice or creditMemo), by external ID. */
  sales(type: 'invoice' | 'creditMemo'): Array<{ eid: string; id: string; body: SalesRecord; writes: number }> {
    return [...this.records.entries()].filter(([, r]) => r.type === type).map(([eid, r]) => ({ eid, id: r.id, body: r.body as SalesRecord, writes: r.writes }));
  }

  /** The invoice / creditMemo upsert: required fields, item and tax-detail lines, total = amounts + tax. */
  private validateSales(body: SalesRecord): { code: string; detail: string } | { total: string } {
    const missing = [!body.entity?.externalId && !body.entity?.id && 'Customer', !body.subsidiary?.id && 'Subsidiary', !body.tranDate && 'Date'].filter(Boolean);
    if (missing.length > 0) return { code: 'USER_ERROR', detail: `Please enter value(s) for: ${missing.join(', ')}` };
    const items = body.item?.items ?? [];
    if (items.length === 0) return { code: 'USER_ERROR', detail: 'You must enter at least one line item for this transaction.' };
    const decimal = /^-?\d+(\.\d+)?$/;
    let total = new Decimal(0);
    for (const [index, line] of items.entries()) {
      if (!line.item?.externalId && !line.item?.id) return { code: 'INVALID_FLD_VALUE', detail: `Line ${index + 1}: Please enter value(s) for: Item` };
      if (!decimal.test(line.amount ?? '')) return { code: 'INVALID_FLD_VALUE', detail: `Line ${index + 1}: Invalid amount ${line.amount}` };
      total = total.plus(new Decimal(line.amount!));
    }
    if (body.taxDetailsOverride) {
      const references = new Set(items.map((l) => l.taxDetailsReference));
      for (const detail of body.taxDetails?.items ?? []) {
        if (!references.has(detail.taxDetailsReference)) return { code: 'INVALID_FLD_VALUE', detail: `Tax detail ${detail.taxDetailsReference} references no line` };
        if (!detail.taxCode?.externalId && !detail.taxCode?.id) return { code: 'INVALID_FLD_VALUE', detail: 'Please enter value(s) for: Tax Code' };
        if (!decimal.test(detail.taxAmount ?? '')) return { code: 'INVALID_FLD_VALUE', detail: `Invalid tax amount ${detail.taxAmount}` };
        total = total.plus(new Decimal(detail.taxAmount!));
      }
    }
    return { total: decimalText(total) };
  }

  /** SuiteQL over customer payments: the query paymentsQuery writes (CustPymt joined to invoices), since a timestamp. */
  private paymentRows(q: string, query: { limit?: string; offset?: string }) {
    if (!q.includes("p.type = 'CustPymt'") || !q.includes("l.linktype = 'Payment'") || !/JOIN previoustransactionlinelink l ON l\.nextdoc = p\.id/i.test(q)) return undefined;
    const since = /p\.lastmodifieddate >= TO_TIMESTAMP\('([^']+)', 'YYYY-MM-DD HH24:MI:SS'\)/.exec(q)?.[1] ?? '';
    const invoices = new Map([...this.records.entries()].filter(([, r]) => r.type === 'invoice').map(([eid, r]) => [r.id, { eid, body: r.body as SalesRecord }]));
    // Oracle's TO_CHAR: no trailing zeros, no leading zero (.5).
    const oracleText = (d: Decimal) => decimalText(d).replace(/^(-?)0\./, (_m, sign: string) => `${sign}.`);
    const rows = this.payments
      .filter((p) => p.modifiedAt >= since)
      .flatMap((p) => p.applications.map((a) => ({ p, a })))
      .sort((x, y) => (x.p.modifiedAt < y.p.modifiedAt ? -1 : x.p.modifiedAt > y.p.modifiedAt ? 1 : Number(x.p.id) - Number(y.p.id) || Number(x.a.invoiceId) - Number(y.a.invoiceId)))
      .map(({ p, a }) => ({
        links: [],
        payment_id: p.id,
        payment_date: p.tranDate,
        modified_at: p.modifiedAt,
        currency: p.currency,
        invoice_id: a.invoiceId,
        invoice_external_id: invoices.get(a.invoiceId)?.eid ?? null,
        invoice_number: invoices.get(a.invoiceId)?.body.tranId ?? null,
        amount: oracleText(new Decimal(a.amount)),
      }));
    const start = Number(query.offset ?? 0);
    const items = rows.slice(start, start + Math.min(1000, Number(query.limit ?? 1000)));
    return { links: [], count: items.length, hasMore: start + items.length < rows.length, offset: start, totalResults: rows.length, items };
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
      this.inFlight += 1;
      this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
      reply.raw.on('close', () => (this.inFlight -= 1));
      if (this.inFlight > this.options.concurrencyLimit) {
        return reply.code(429).header('retry-after', '0').send(this.error(429, 'CONCURRENCY_LIMIT_EXCEEDED', 'Concurrent request limit exceeded. Request blocked.'));
      }
      if (this.options.serviceMs) await new Promise((r) => setTimeout(r, this.options.serviceMs));
    });
    app.get('/services/rest/record/v1/journalEntry/:eid', async (request, reply) => {
      const eid = (request.params as { eid: string }).eid.replace(/^eid:/, '');
      const found = this.records.get(eid);
      if (!found) return reply.code(404).send(this.error(404, 'NONEXISTENT_ID', `Record ${eid} was not found.`));
      return { ...found.body, id: found.id, externalId: eid };
    });
    app.put('/services/rest/record/v1/journalEntry/:eid', async (request, reply) => {
      const eid = (request.params as { eid: string }).eid.replace(/^eid:/, '');
      const fault = this.faults.shift();
      if (fault === '429') return reply.code(429).header('retry-after', '0').send(this.error(429, 'CONCURRENCY_LIMIT_EXCEEDED', 'Concurrent request limit exceeded.'));
      if (fault === '500') return reply.code(500).send(this.error(500, 'UNEXPECTED_ERROR', 'An unexpected error occurred.'));
      if (fault === 'invalid') return reply.code(400).send(this.error(400, 'INVALID_FLD_VALUE', 'Invalid account reference key 9999.'));
      if (fault === 'timeout') {
        await new Promise((r) => setTimeout(r, this.options.timeoutDelayMs));
        return reply.code(500).send(this.error(500, 'TIMEOUT', 'too late'));
      }
      if (this.options.putDelayMs) await new Promise((r) => setTimeout(r, this.options.putDelayMs));
      const body = request.body as JournalEntry;
      let debit = 0n;
      let credit = 0n;
      for (const item of body.line.items) {
        debit += BigInt((item.debit ?? '0').replace('.', ''));
        credit += BigInt((item.credit ?? '0').replace('.', ''));
      }
      if (debit !== credit) return reply.code(400).send(this.error(400, 'JE_UNBALANCED', 'This transaction is not in balance.'));
      const existing = this.records.get(eid);
      if (existing) {
        existing.body = body;
        existing.writes += 1;
      } else {
        this.creates += 1;
        this.records.set(eid, { id: String(1000 + this.creates), body, writes: 1 });
      }
      const id = this.records.get(eid)!.id;
      if (fault === 'lost') {
        // Committed, but the answer never arrives.
        request.raw.socket.destroy();
        return reply;
      }
      return reply.code(204).header('location', `${this.url}/services/rest/record/v1/journalEntry/${id}`).send();
    });
    for (const type of ['invoice', 'creditMemo'] as const) {
      app.get(`/services/rest/record/v1/${type}/:eid`, async (request, reply) => {
        const eid = (request.params as { eid: string }).eid.replace(/^eid:/, '');
        const found = this.records.get(eid);
        if (!found || found.type !== type) return reply.code(404).send(this.error(404, 'NONEXISTENT_ID', `Record ${eid} was not found.`));
        return { ...found.body, id: found.id, externalId: eid };
      });
      app.put(`/services/rest/record/v1/${type}/:eid`, async (request, reply) => {
        const eid = (request.params as { eid: string }).eid.replace(/^eid:/, '');
        const fault = this.faults.shift();
        if (fault === '429') return reply.code(429).header('retry-after', '0').send(this.error(429, 'CONCURRENCY_LIMIT_EXCEEDED', 'Concurrent request limit exceeded.'));
        if (fault === '500') return reply.code(500).send(this.error(500, 'UNEXPECTED_ERROR', 'An unexpected error occurred.'));
        if (fault === 'invalid') return reply.code(400).send(this.error(400, 'INVALID_FLD_VALUE', 'Invalid account reference key 9999.'));
        if (fault === 'timeout') {
          await new Promise((r) => setTimeout(r, this.options.timeoutDelayMs));
          return reply.code(500).send(this.error(500, 'TIMEOUT', 'too late'));
        }
        if (this.options.putDelayMs) await new Promise((r) => setTimeout(r, this.options.putDelayMs));
        const body = request.body as SalesRecord;
        const checked = this.validateSales(body);
        if ('code' in checked) return reply.code(400).send(this.error(400, checked.code, checked.detail));
        const existing = this.records.get(eid);
        if (existing && existing.type !== type) return reply.code(400).send(this.error(400, 'DUP_RCRD', `A record with external ID ${eid} already exists.`));
        if (existing) {
          existing.body = { ...body, total: checked.total };
          existing.writes += 1;
        } else {
          this.creates += 1;
          this.records.set(eid, { id: String(1000 + this.creates), type, body: { ...body, total: checked.total }, writes: 1 });
        }
        const id = this.records.get(eid)!.id;
        if (fault === 'lost') {
          request.raw.socket.destroy();
          return reply;
        }
        return reply.code(204).header('location', `${this.url}/services/rest/record/v1/${type}/${id}`).send();
      });
    }
    // SuiteQL, for reconciliation: understands the one query journalListQuery writes (subsidiary and date range).
    app.post('/services/rest/query/v1/suiteql', async (request, reply) => {
      const q = String((request.body as { q?: string }).q ?? '');
      const payments = this.paymentRows(q, request.query as { limit?: string; offset?: string });
      if (payments) return payments;
      const subsidiary = /tl\.subsidiary = '([^']*)'/.exec(q)?.[1];
      const from = /trandate >= TO_DATE\('(\d{4}-\d{2}-\d{2})'/.exec(q)?.[1];
      const to = /trandate < TO_DATE\('(\d{4}-\d{2}-\d{2})'/.exec(q)?.[1];
      if (!subsidiary || !from || !to) return reply.code(400).send(this.error(400, 'INVALID_SEARCH', 'Unsupported query.'));
      const { limit, offset } = request.query as { limit?: string; offset?: string };
      // Oracle's TO_CHAR: no trailing zeros, no leading zero (.5).
      const oracleText = (d: Decimal) => decimalText(d).replace(/^(-?)0\./, (_m, sign: string) => `${sign}.`);
      // Journal entries (type Journal: their debit total) and sales records (CustInvc, CustCred: their total with tax).
      const types = { invoice: 'CustInvc', creditMemo: 'CustCred' } as const;
      const rows = [...this.records.entries()]
        .map(([eid, r]) => ({ eid, id: r.id, type: r.type, body: r.body as (JournalEntry | SalesRecord) & { tranDate?: string; subsidiary?: { id?: string }; currency?: { refName?: string } } }))
        .filter(({ body }) => body.subsidiary?.id === subsidiary && (body.tranDate ?? '') >= from && (body.tranDate ?? '') < to)
        .sort((a, b) => Number(a.id) - Number(b.id))
        .map(({ eid, id, type, body }) => ({
          links: [],
          id,
          externalid: eid,
          type: type === undefined ? 'Journal' : types[type],
          currency: body.currency?.refName ?? null,
          trandate: body.tranDate,
          amount: oracleText(type === undefined ? (body as JournalEntry).line.items.reduce((sum, item) => sum.plus(new Decimal(item.debit ?? '0')), new Decimal(0)) : new Decimal((body as SalesRecord).total ?? '0')),
        }));
      const start = Number(offset ?? 0);
      const items = rows.slice(start, start + Number(limit ?? 1000));
      return { links: [], count: items.length, hasMore: start + items.length < rows.length, offset: start, totalResults: rows.length, items };
    });
    this.url = await app.listen({ host: '127.0.0.1', port: 0 });
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }
}
