// A NetSuite REST simulator for the tests: the documented journalEntry upsert by external ID, GET by external ID,
// the error body shape (`o:errorDetails`), a concurrency limit answered with 429, and injectable faults.
import Fastify, { type FastifyInstance } from 'fastify';

export type Fault = '429' | '500' | 'timeout' | 'lost' | 'invalid';

interface JournalEntry {
  externalId: string;
  line: { items: Array<{ debit?: string; credit?: string }> };
}

export class NetSuiteSimulator {
  readonly records = new Map<string, { id: string; body: JournalEntry; writes: number }>();
  readonly faults: Fault[] = [];
  /** Every request as it arrived (method and URL), to check which documents reached the ERP. */
  readonly seen: Array<{ method: string; url: string }> = [];
  creates = 0;
  requests = 0;
  inFlightMax = 0;
  private inFlight = 0;
  private app: FastifyInstance | undefined;
  url = '';

  constructor(readonly options: { concurrencyLimit: number; timeoutDelayMs: number; putDelayMs?: number }) {}

  private error(status: number, code: string, detail: string) {
    return { type: `https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.${status === 429 ? 'x' : '1'}`, title: status === 429 ? 'Too Many Requests' : 'Bad Request', status, 'o:errorDetails': [{ detail, 'o:errorCode': code }] };
  }

  async start(): Promise<void> {
    const app = Fastify();
    this.app = app;
    app.addHook('onRequest', async (request, reply) => {
      this.requests += 1;
      this.seen.push({ method: request.method, url: request.url });
      this.inFlight += 1;
      this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
      reply.raw.on('close', () => (this.inFlight -= 1));
      if (this.inFlight > this.options.concurrencyLimit) {
        return reply.code(429).header('retry-after', '0').send(this.error(429, 'CONCURRENCY_LIMIT_EXCEEDED', 'Concurrent request limit exceeded. Request blocked.'));
      }
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
    this.url = await app.listen({ host: '127.0.0.1', port: 0 });
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }
}
