// A Xero Accounting API simulator: ManualJournals POST with Idempotency-Key (a repeated key returns the first
// answer), GET with a Narration.Contains filter, the 5-concurrent and 60-a-minute limits answered with 429 and
// Retry-After / X-Rate-Limit-Problem, validation errors in Xero's shape, and injectable faults.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Fault } from './netsuite-sim.js';

export class XeroSimulator {
  readonly journals: Array<{ ManualJournalID: string; Narration: string; lines: string[] }> = [];
  readonly faults: Fault[] = [];
  private readonly answers = new Map<string, string>();
  private inFlight = 0;
  inFlightMax = 0;
  private calls: number[] = [];
  private app: FastifyInstance | undefined;
  url = '';

  constructor(readonly options: { timeoutDelayMs: number; perMinute: number; concurrent: number }) {}

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
    app.get('/api.xro/2.0/ManualJournals', async (request) => {
      const where = String((request.query as { where?: string }).where ?? '');
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
      const journal = { ManualJournalID: `mj-${this.journals.length + 1}`, Narration: JSON.parse(`"${narration}"`) as string, lines: amounts };
      this.journals.push(journal);
      const answer = JSON.stringify({ ManualJournals: [{ ManualJournalID: journal.ManualJournalID, Status: 'POSTED' }] });
      if (key) this.answers.set(key, answer);
      if (fault === 'lost') {
        request.raw.socket.destroy();
        return reply;
      }
      return reply.code(200).type('application/json').send(answer);
    });
    this.url = await app.listen({ host: '127.0.0.1', port: 0 });
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }
}
