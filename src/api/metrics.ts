// GET /metrics: Prometheus text. Business measures are read from the store at scrape time, so every API node reports
// the same truth however many processes ingest; process basics come from prom-client's defaults.
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export function metricsRegistry(pool: pg.Pool): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'accrue_events_received',
    help: 'Usage events received, by outcome (accepted, duplicate, conflict, rejected, quarantined), over all batches.',
    labelNames: ['outcome'],
    registers: [registry],
    async collect() {
      const row = (
        await pool.query(
          `SELECT coalesce(sum(accepted), 0) AS accepted, coalesce(sum(duplicates), 0) AS duplicate, coalesce(sum(conflicts), 0) AS conflict,
                  coalesce(sum(rejected), 0) AS rejected, coalesce(sum(quarantined), 0) AS quarantined FROM ingest_batches`,
        )
      ).rows[0] as Record<string, string>;
      for (const [outcome, value] of Object.entries(row)) this.set({ outcome }, Number(value));
    },
  });
  new Gauge({
    name: 'accrue_quarantine_pending',
    help: 'Quarantined events (unknown type or subject) waiting for replay, by reason.',
    labelNames: ['reason'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await pool.query("SELECT reason, count(*)::int AS n FROM quarantine WHERE replayed_at IS NULL GROUP BY reason")).rows) this.set({ reason: r.reason }, r.n);
    },
  });
  new Gauge({
    name: 'accrue_late_events',
    help: 'Events that arrived after their billing period closed, by legal entity of the customer.',
    registers: [registry],
    async collect() {
      this.set(Number((await pool.query('SELECT count(*)::int AS n FROM events WHERE late')).rows[0].n));
    },
  });
  new Gauge({
    name: 'accrue_outbox_entries',
    help: 'Outbox entries by ERP target and status (pending is the posting backlog, dead the dead-letter queue).',
    labelNames: ['target', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await pool.query('SELECT target, status, count(*)::int AS n FROM outbox GROUP BY target, status')).rows) this.set({ target: r.target, status: r.status }, r.n);
    },
  });
  new Gauge({
    name: 'accrue_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest pending outbox entry per ERP target.',
    labelNames: ['target'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await pool.query("SELECT target, extract(epoch FROM now() - min(created_at))::float8 AS age FROM outbox WHERE status = 'pending' GROUP BY target")).rows) {
        this.set({ target: r.target }, r.age);
      }
    },
  });
  new Gauge({
    name: 'accrue_invoices',
    help: 'Invoices and credit notes by legal entity and status.',
    labelNames: ['legal_entity', 'kind', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await pool.query('SELECT legal_entity, kind, status, count(*)::int AS n FROM invoices GROUP BY 1, 2, 3')).rows) {
        this.set({ legal_entity: r.legal_entity, kind: r.kind, status: r.status }, r.n);
      }
    },
  });
  return registry;
}

export async function registerMetricsRoute(app: FastifyInstance, pool: pg.Pool): Promise<void> {
  const registry = metricsRegistry(pool);
  app.get('/metrics', { config: { scope: 'public' }, schema: { hide: true } }, async (_request, reply) => {
    reply.type(registry.contentType);
    return withoutMisnamedGauges(await registry.metrics());
  });
}

/**
 * prom-client's default `nodejs_active_*_total` are gauges with a counter's suffix, which `promtool check metrics`
 * rejects; they total what the unsuffixed `nodejs_active_*` families already give per type, so they are left out.
 */
export function withoutMisnamedGauges(text: string): string {
  const misnamed = new Set([...text.matchAll(/^# TYPE (\S+_total) gauge$/gm)].map((m) => m[1]!));
  return text
    .split('\n')
    .filter((line) => {
      const name = line.startsWith('# ') ? line.split(' ')[2] : line.split(/[{ ]/)[0];
      return !(name && misnamed.has(name));
    })
    .join('\n');
}
