// GET /metrics: Prometheus text. Business measures are read from the store at scrape time, so every API node reports
// the same truth however many processes ingest, close or post; totals the store keeps (events received, replays) are
// served as counters. Process-local events (HTTP requests, failed ERP calls made here) are counters of this process;
// process basics come from prom-client's defaults. docs/operations.md lists every series and what it means.
import { keyActor } from '../controls/keys.js';
import { unscopedRouteRefusal } from './entity-scope.js';
import Fastify, { type FastifyInstance } from 'fastify';
import type pg from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { currentCatalog } from '../catalog/service.js';
import { minorToMajor } from '../domain/money.js';
import { inReportingCurrency, openReceivablesByCurrency, reportingSettings } from '../map/reporting-currency.js';
import { unbilledUsage, type UnbilledUsage } from '../rate/unbilled.js';
import { processRegistry } from '../observe/counters.js';
import { OWNER_QUEUES } from '../reconcile/exceptions.js';
import { CHANGE_STATUSES } from '../controls/changes.js';
import { AuthFailureLimiter, authenticate } from './auth-limit.js';
import { problemDetails, sendProblem } from './problem.js';

/** Limit: how long an unbilled-usage estimate is served before a scrape starts a new one (it rates every open period). */
export const UNBILLED_CACHE_MS = 30_000;

/** Buckets for the time from a period's end to its invoice's finalization: an hour to a month. */
export const INVOICE_LATENCY_BUCKETS_SECONDS = [
  3_600,
  6 * 3_600,
  12 * 3_600,
  86_400,
  2 * 86_400,
  3 * 86_400,
  5 * 86_400,
  7 * 86_400,
  14 * 86_400,
  31 * 86_400,
];
/** Buckets for a dispute's cycle time, from opened to resolved or rejected: an hour to ninety days. */
export const DISPUTE_RESOLUTION_BUCKETS_SECONDS = [
  3_600,
  4 * 3_600,
  86_400,
  2 * 86_400,
  3 * 86_400,
  7 * 86_400,
  14 * 86_400,
  30 * 86_400,
  60 * 86_400,
  90 * 86_400,
];
/** Buckets for an ERP payment's modification to its application in Accrue: ten seconds to a day. */
export const PAYMENT_SYNC_BUCKETS_SECONDS = [10, 30, 60, 300, 900, 1_800, 3_600, 6 * 3_600, 86_400];

type Row = Record<string, string | number | null>;
type Labels = Record<string, string>;

/**
 * Who may read GET /metrics (it shows revenue per legal entity): `public` answers anyone who can reach the address
 * (the default); `key` wants an API key whose principal may read data (operator, controller or auditor), `Authorization: Bearer <key>`.
 */
export type MetricsAccess = 'public' | 'key';
export const METRICS_ACCESS: readonly MetricsAccess[] = ['public', 'key'];

export interface MetricsOptions {
  access?: MetricsAccess;
  /** Serve GET /metrics on the API's own address (default); false when it is served on a separate one (buildMetricsServer). */
  route?: boolean;
  /** ERP connectors configured in this deployment: their series are 0, not absent, before anything is posted. */
  connectors?: readonly string[];
}

/** Label values known before anything happened, so a series with nothing to count reads 0 instead of being absent. */
interface Known {
  entities: string[];
  entityCurrencies: Array<{ legal_entity: string; currency: string }>;
  meters: string[];
  connectors: string[];
}

/** Limit: how long the known label values (catalog, connectors seen) are reused: one scrape reads them once. */
const KNOWN_CACHE_MS = 1_000;

// Label values of the store's own vocabularies (CHECK constraints of the migrations; src/settle/payments.ts).
const INVOICE_KINDS = ['invoice', 'credit_note'];
const INVOICE_STATUSES = ['draft', 'finalized', 'void'];
const OUTBOX_STATUSES = ['pending', 'posted', 'dead'];
const OPEN_EXCEPTION_STATUSES = ['open', 'assigned'];
const QUARANTINE_REASONS = ['unknown_type', 'unknown_subject'];
const PAYMENT_REJECTIONS = ['payment_unmatched', 'payment_currency_mismatch', 'payment_overpayment'];
const ERP_FAILURE_KINDS = ['permanent', 'transient'];
const DISPUTE_OUTCOMES = ['resolved', 'rejected'];

/** Every combination of the given label values: [{a: 1, b: x}, {a: 1, b: y}, …]. */
function combinations(dimensions: Record<string, readonly string[]>): Labels[] {
  return Object.entries(dimensions).reduce<Labels[]>(
    (sets, [name, values]) => sets.flatMap((set) => values.map((value) => ({ ...set, [name]: value }))),
    [{}],
  );
}

const labelsOf = (row: Row, names: readonly string[]): Labels => Object.fromEntries(names.map((n) => [n, String(row[n] ?? '')]));

/** A counter whose total the store keeps: each scrape sets it to the store's value (it only grows, as a counter must). */
type ZeroSets = () => Promise<Labels[]>;

function storeCounter(
  registry: Registry,
  pool: pg.Pool,
  spec: { name: string; help: string; labelNames: readonly string[]; sql: string; zeros?: ZeroSets },
): void {
  new Counter({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames,
    registers: [registry],
    async collect() {
      const [zeros, rows] = await Promise.all([spec.zeros?.() ?? [], pool.query<Row>(spec.sql)]);
      this.reset();
      for (const labels of zeros) this.inc(labels, 0);
      for (const row of rows.rows) this.inc(labelsOf(row, spec.labelNames), Number(row.value));
    },
  });
}

function storeGauge(
  registry: Registry,
  pool: pg.Pool,
  spec: { name: string; help: string; labelNames: readonly string[]; sql: string; zeros?: ZeroSets },
): void {
  new Gauge({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames,
    registers: [registry],
    async collect() {
      const [zeros, rows] = await Promise.all([spec.zeros?.() ?? [], pool.query<Row>(spec.sql)]);
      this.reset();
      for (const labels of zeros) this.set(labels, 0);
      for (const row of rows.rows) this.set(labelsOf(row, spec.labelNames), Number(row.value));
    },
  });
}

/**
 * A histogram over rows of the store, bucketed by the database in one query (`spec.sql` yields the label columns and
 * `v`, the observed value in seconds). prom-client's Histogram only counts observations made in this process, so the
 * family is rendered from the query's counts.
 */
function storeHistogram(
  registry: Registry,
  pool: pg.Pool,
  spec: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[]; sql: string; zeros?: ZeroSets },
): void {
  const columns = spec.buckets.map((b, i) => `count(*) FILTER (WHERE v <= ${b}) AS b${i}`).join(', ');
  const grouped = spec.labelNames.join(', ');
  const sql = `SELECT ${grouped ? `${grouped}, ` : ''}count(*) AS n, coalesce(sum(v), 0) AS total, ${columns} FROM (${spec.sql}) observed${grouped ? ` GROUP BY ${grouped}` : ''}`;
  const metric = {
    name: spec.name,
    help: spec.help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
      const [zeros, result] = await Promise.all([spec.zeros?.() ?? [], pool.query<Row>(sql)]);
      const rows: Array<{ row: Row; labels: Labels }> = result.rows.map((row) => ({ row, labels: labelsOf(row, spec.labelNames) }));
      const seen = new Set(rows.map((row) => JSON.stringify(row.labels)));
      for (const labels of zeros) {
        if (seen.has(JSON.stringify(labelsOf(labels, spec.labelNames)))) continue;
        rows.push({
          row: { ...Object.fromEntries(spec.buckets.map((_, i) => [`b${i}`, 0])), n: 0, total: 0 },
          labels: labelsOf(labels, spec.labelNames),
        });
      }
      for (const { row, labels } of rows) {
        spec.buckets.forEach((b, i) =>
          values.push({ labels: { le: b, ...labels }, value: Number(row[`b${i}`]), metricName: `${spec.name}_bucket` }),
        );
        values.push({ labels: { le: '+Inf', ...labels }, value: Number(row.n), metricName: `${spec.name}_bucket` });
        values.push({ labels, value: Number(row.total), metricName: `${spec.name}_sum` });
        values.push({ labels, value: Number(row.n), metricName: `${spec.name}_count` });
      }
      return { name: spec.name, help: spec.help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

/**
 * The unbilled estimate rates every open period, so it is computed at most every UNBILLED_CACHE_MS and a scrape
 * serves the last one while the next is computed; only the first scrape waits for it.
 */
class UnbilledCache {
  private value: UnbilledUsage | null = null;
  private computedAtMs = 0;
  private pending: Promise<UnbilledUsage | null> | null = null;
  constructor(private readonly pool: pg.Pool) {}

  async get(): Promise<{ value: UnbilledUsage | null; ageSeconds: number }> {
    if (Date.now() - this.computedAtMs >= UNBILLED_CACHE_MS && !this.pending) {
      this.pending = this.compute().finally(() => {
        this.pending = null;
      });
    }
    if (!this.value && this.pending) await this.pending;
    return { value: this.value, ageSeconds: this.value ? (Date.now() - this.computedAtMs) / 1000 : 0 };
  }

  private async compute(): Promise<UnbilledUsage | null> {
    const catalog = await currentCatalog(this.pool);
    const startedMs = Date.now();
    this.value = catalog ? await unbilledUsage(this.pool, catalog) : null;
    this.computedAtMs = startedMs;
    return this.value;
  }
}

/** What every group of metric families registers with: the registry, the store and the known label values. */
interface Families {
  registry: Registry;
  pool: pg.Pool;
  getKnown: () => Promise<Known>;
  zeros: (dimensions: (k: Known) => Record<string, readonly string[]>) => ZeroSets;
}

/**
 * The catalog's legal entities (with their currency) and meters, and every connector configured or ever used, read at
 * most every KNOWN_CACHE_MS; each read also starts the failed-ERP-call counters of newly seen connectors at 0.
 */
function knownLabels(pool: pg.Pool, options: Pick<MetricsOptions, 'connectors'>, failures: Counter | undefined): () => Promise<Known> {
  let known: { at: number; value: Promise<Known> } | undefined;
  const readKnown = async (): Promise<Known> => {
    const [catalog, used] = await Promise.all([
      currentCatalog(pool),
      pool.query<{ target: string }>('SELECT target FROM outbox GROUP BY target UNION SELECT target FROM payment_sync_cursors'),
    ]);
    const entities = (catalog?.catalog.legal_entities ?? []).map((e) => e.id);
    const connectors = [...new Set([...(options.connectors ?? []), ...used.rows.map((r) => r.target)])].sort();
    for (const labels of combinations({ connector: connectors, kind: ERP_FAILURE_KINDS })) failures?.inc(labels, 0);
    return {
      entities,
      entityCurrencies: (catalog?.catalog.legal_entities ?? []).map((e) => ({ legal_entity: e.id, currency: e.currency })),
      meters: (catalog?.catalog.meters ?? []).map((m) => m.id),
      connectors,
    };
  };
  return (): Promise<Known> => {
    if (!known || Date.now() - known.at >= KNOWN_CACHE_MS) {
      const value = readKnown();
      known = { at: Date.now(), value };
      value.catch(() => (known = undefined));
    }
    return known.value;
  };
}

export function metricsRegistry(pool: pg.Pool, options: Pick<MetricsOptions, 'connectors'> = {}): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // Failed ERP calls are counted by the process that makes them: configured connectors start at 0 (others once seen).
  const failures = processRegistry.getSingleMetric('accrue_erp_call_failures_total') as Counter | undefined;
  for (const labels of combinations({ connector: [...(options.connectors ?? [])], kind: ERP_FAILURE_KINDS })) failures?.inc(labels, 0);

  const getKnown = knownLabels(pool, options, failures);
  const zeros =
    (dimensions: (k: Known) => Record<string, readonly string[]>): ZeroSets =>
    async () =>
      combinations(dimensions(await getKnown()));
  const families: Families = { registry, pool, getKnown, zeros };
  ingestionFamilies(families);
  unbilledFamilies(families);
  invoicingFamilies(families);
  settlementFamilies(families);
  postingFamilies(families);
  erpConnectionFamilies(families);
  reconciliationFamilies(families);
  disputeFamilies(families);
  controlsFamilies(families);
  return registry;
}

/** Events received, quarantined and late. */
function ingestionFamilies({ registry, pool, getKnown }: Families): void {
  new Counter({
    name: 'accrue_events_received_total',
    help: 'Usage events received over all batches, by outcome: accepted, duplicate, conflict, rejected, quarantined.',
    labelNames: ['outcome'],
    registers: [registry],
    async collect() {
      const row = (
        await pool.query<Record<string, string>>(
          `SELECT coalesce(sum(accepted), 0) AS accepted, coalesce(sum(duplicates), 0) AS duplicate, coalesce(sum(conflicts), 0) AS conflict,
                  coalesce(sum(rejected), 0) AS rejected, coalesce(sum(quarantined), 0) AS quarantined FROM ingest_receipts`,
        )
      ).rows[0]!;
      this.reset();
      for (const [outcome, value] of Object.entries(row)) this.inc({ outcome }, Number(value));
    },
  });
  storeGauge(registry, pool, {
    name: 'accrue_quarantine_pending',
    help: 'Quarantined events (unknown type or subject) waiting for replay, by reason.',
    labelNames: ['reason'],
    sql: 'SELECT reason, count(*) AS value FROM quarantine WHERE replayed_at IS NULL GROUP BY reason',
    zeros: async () => combinations({ reason: QUARANTINE_REASONS }),
  });
  const catalogEntities = async () => {
    const catalog = await currentCatalog(pool);
    return new Map((catalog?.catalog.customers ?? []).map((c) => [c.id, c.legal_entity]));
  };
  new Counter({
    name: 'accrue_late_events_total',
    help: 'Events that arrived after their billing period closed (billed by correction in the next run), by legal entity of the customer.',
    labelNames: ['legal_entity'],
    registers: [registry],
    async collect() {
      const [entities, { entities: all }] = await Promise.all([catalogEntities(), getKnown()]);
      this.reset();
      for (const legal_entity of all) this.inc({ legal_entity }, 0);
      for (const row of (
        await pool.query<{ customer: string; n: string }>('SELECT customer_id AS customer, count(*) AS n FROM events WHERE late GROUP BY 1')
      ).rows) {
        this.inc({ legal_entity: entities.get(row.customer) ?? 'unknown' }, Number(row.n));
      }
    },
  });
}

/** The estimate of usage in billing periods not yet closed. */
function unbilledFamilies({ registry, pool, getKnown }: Families): void {
  const unbilled = new UnbilledCache(pool);
  new Gauge({
    name: 'accrue_unbilled_usage_quantity',
    help: 'Usage metered in billing periods not yet closed, per legal entity and meter, summed over customers as each one is billed.',
    labelNames: ['legal_entity', 'meter'],
    registers: [registry],
    async collect() {
      const [{ value }, k] = await Promise.all([unbilled.get(), getKnown()]);
      this.reset();
      for (const labels of combinations({ legal_entity: k.entities, meter: k.meters })) this.set(labels, 0);
      for (const q of value?.quantities ?? []) this.set({ legal_entity: q.legal_entity, meter: q.meter }, Number(q.quantity));
    },
  });
  new Gauge({
    name: 'accrue_unbilled_amount',
    help: 'Estimated invoice total (major units, tax included) of the billing periods not yet closed, rated now with the catalog in force, per legal entity and currency.',
    labelNames: ['legal_entity', 'currency'],
    registers: [registry],
    async collect() {
      const [{ value }, k] = await Promise.all([unbilled.get(), getKnown()]);
      this.reset();
      for (const labels of k.entityCurrencies) this.set(labels, 0);
      // Prometheus samples are floats: the exact amount is in the invoices; this is an estimate for a chart.
      for (const a of value?.amounts ?? [])
        this.set({ legal_entity: a.legal_entity, currency: a.currency }, minorToMajor(a.amount_minor, a.currency).toNumber());
    },
  });
  reportingFamilies({ registry, pool }, unbilled);
  new Gauge({
    name: 'accrue_unbilled_events',
    help: 'Usage events in billing periods not yet closed, per legal entity.',
    labelNames: ['legal_entity'],
    registers: [registry],
    async collect() {
      const [{ value }, k] = await Promise.all([unbilled.get(), getKnown()]);
      this.reset();
      for (const legal_entity of k.entities) this.set({ legal_entity }, 0);
      for (const e of value?.events ?? []) this.set({ legal_entity: e.legal_entity }, e.events);
    },
  });
  new Gauge({
    name: 'accrue_unbilled_estimate_age_seconds',
    help: `Age of the unbilled usage estimate served (recomputed at most every ${UNBILLED_CACHE_MS / 1000} s).`,
    registers: [registry],
    async collect() {
      this.set((await unbilled.get()).ageSeconds);
    },
  });
}

/**
 * The group reporting currency (ACCRUE_REPORTING_CURRENCY): the unbilled estimate and the open receivables of every
 * legal entity as one total, each currency converted at the named source's rate of the day (labelled with the source
 * and the oldest rate date used); a currency without a usable rate is left out and counted in
 * accrue_reporting_rate_missing. No series without a reporting currency.
 */
function reportingFamilies({ registry, pool }: Pick<Families, 'registry' | 'pool'>, unbilled: UnbilledCache): void {
  const settings = reportingSettings();
  if (!settings) return;
  const missing = new Gauge({
    name: 'accrue_reporting_rate_missing',
    help: 'Currencies left out of the reporting-currency totals for want of a usable rate (1 per currency).',
    labelNames: ['measure', 'currency'],
    registers: [registry],
  });
  new Gauge({
    name: 'accrue_reporting_amount',
    help: `Group totals in the reporting currency (major units): unbilled (the estimate of periods not yet closed) and receivable_open (finalized invoices not yet paid), converted at the rate source's rate of the day.`,
    labelNames: ['measure', 'currency', 'rate_source', 'rate_date'],
    registers: [registry],
    async collect() {
      const today = new Date().toISOString().slice(0, 10);
      const estimate = (await unbilled.get()).value;
      const measures = {
        unbilled: (estimate?.amounts ?? []).map((a) => ({ currency: a.currency, amount_minor: a.amount_minor })),
        receivable_open: await openReceivablesByCurrency(pool),
      };
      this.reset();
      missing.reset();
      for (const [measure, amounts] of Object.entries(measures)) {
        const total = await inReportingCurrency(pool, settings, today, amounts);
        const rateDate = total.rates.map((r) => r.rate_date).sort()[0] ?? today;
        this.set(
          { measure, currency: total.currency, rate_source: total.source, rate_date: rateDate },
          minorToMajor(total.amount_minor, total.currency).toNumber(),
        );
        for (const currency of total.missing) missing.set({ measure, currency }, 1);
      }
    },
  });
}

/** Invoices by status and how long they take. */
function invoicingFamilies({ registry, pool, zeros }: Families): void {
  storeGauge(registry, pool, {
    name: 'accrue_invoices',
    help: 'Invoices and credit notes by legal entity, kind and status.',
    labelNames: ['legal_entity', 'kind', 'status'],
    sql: 'SELECT legal_entity, kind, status, count(*) AS value FROM invoices GROUP BY 1, 2, 3',
    zeros: zeros((k) => ({ legal_entity: k.entities, kind: INVOICE_KINDS, status: INVOICE_STATUSES })),
  });
  storeHistogram(registry, pool, {
    name: 'accrue_invoice_generation_latency_seconds',
    help: "Time from a billing period's end to its invoice's finalization, per legal entity (a close before the period ended counts as 0).",
    labelNames: ['legal_entity'],
    buckets: INVOICE_LATENCY_BUCKETS_SECONDS,
    sql: `SELECT legal_entity, greatest(0, extract(epoch FROM finalized_at - (period_end::timestamp AT TIME ZONE 'UTC')))::float8 AS v
            FROM invoices WHERE kind = 'invoice' AND corrects IS NULL AND finalized_at IS NOT NULL`,
    zeros: zeros((k) => ({ legal_entity: k.entities })),
  });
}

/** Payments refused and ERP payment polling. */
function settlementFamilies({ registry, pool, zeros }: Families): void {
  storeCounter(registry, pool, {
    name: 'accrue_charge_rejections_total',
    help: 'Payments (charges collected from a customer, by webhook or from an ERP) refused for application and filed as exceptions, by legal entity and reason.',
    labelNames: ['legal_entity', 'reason'],
    sql: "SELECT coalesce(legal_entity, 'unknown') AS legal_entity, kind AS reason, count(*) AS value FROM exceptions WHERE details ? 'payment' GROUP BY 1, 2",
    zeros: zeros((k) => ({ legal_entity: k.entities, reason: PAYMENT_REJECTIONS })),
  });
  storeGauge(registry, pool, {
    name: 'accrue_payment_sync_last_poll_age_seconds',
    help: 'Seconds since the last successful payment poll finished, per ERP connector.',
    labelNames: ['connector'],
    sql: 'SELECT target AS connector, extract(epoch FROM now() - last_polled_at)::float8 AS value FROM payment_sync_cursors WHERE last_polled_at IS NOT NULL',
  });
  storeHistogram(registry, pool, {
    name: 'accrue_payment_sync_delay_seconds',
    help: "Time from a payment's last change at the ERP to the poll that applied it in Accrue, per ERP connector.",
    labelNames: ['connector'],
    buckets: PAYMENT_SYNC_BUCKETS_SECONDS,
    sql: `SELECT target AS connector, greatest(0, extract(epoch FROM first_polled_at - erp_modified_at::timestamptz))::float8 AS v
            FROM erp_payment_sync WHERE outcome = 'applied' AND erp_modified_at ~ '^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}(:?\\d{2})?)$'`,
    zeros: zeros((k) => ({ connector: k.connectors })),
  });
}

/** The outbox to the ERPs: backlog, failures, dead letters, replays. */
function postingFamilies({ registry, pool, zeros }: Families): void {
  const outboxEntity = "coalesce((SELECT j.legal_entity FROM journals j WHERE j.id = o.document_id), 'unknown')";
  storeGauge(registry, pool, {
    name: 'accrue_outbox_entries',
    help: 'Outbox entries by ERP connector, legal entity and status: pending is the posting backlog, dead the dead-letter queue.',
    labelNames: ['connector', 'legal_entity', 'status'],
    sql: `SELECT o.target AS connector, ${outboxEntity} AS legal_entity, o.status, count(*) AS value FROM outbox o GROUP BY 1, 2, 3`,
    zeros: zeros((k) => ({ connector: k.connectors, legal_entity: k.entities, status: OUTBOX_STATUSES })),
  });
  storeGauge(registry, pool, {
    name: 'accrue_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest pending outbox entry (the posting backlog) per ERP connector.',
    labelNames: ['connector'],
    sql: "SELECT target AS connector, extract(epoch FROM now() - min(created_at))::float8 AS value FROM outbox WHERE status = 'pending' GROUP BY 1",
    zeros: zeros((k) => ({ connector: k.connectors })), // no backlog: 0 s
  });
  storeGauge(registry, pool, {
    name: 'accrue_outbox_failing_entries',
    help: 'Pending outbox entries whose last ERP call failed and that wait for a retry, per ERP connector.',
    labelNames: ['connector'],
    sql: "SELECT target AS connector, count(*) AS value FROM outbox WHERE status = 'pending' AND last_error IS NOT NULL GROUP BY 1",
    zeros: zeros((k) => ({ connector: k.connectors })),
  });
  storeGauge(registry, pool, {
    name: 'accrue_dead_letter_entries',
    help: 'Dead-letter entries (refused by the ERP or out of retries) waiting for a person, per ERP connector.',
    labelNames: ['connector'],
    sql: "SELECT target AS connector, count(*) AS value FROM outbox WHERE status = 'dead' GROUP BY 1",
    zeros: zeros((k) => ({ connector: k.connectors })),
  });
  storeCounter(registry, pool, {
    name: 'accrue_outbox_replays_total',
    help: 'Dead letters put back in the outbox (accrue dlq replay, POST /v1/dlq/{id}/replay), per ERP connector.',
    labelNames: ['connector'],
    sql: 'SELECT target AS connector, sum(replays) AS value FROM outbox GROUP BY 1',
    zeros: zeros((k) => ({ connector: k.connectors })),
  });
}

/** ERP connections: status, parking, entries waiting on them. */
function erpConnectionFamilies({ registry, pool }: Families): void {
  storeGauge(registry, pool, {
    name: 'accrue_erp_connection_status',
    help: 'ERP connections by status: 1 for the status each is in (active, unauthorized, needs_reauthorization), 0 for the others. needs_reauthorization: its documents wait until someone runs accrue connect again.',
    labelNames: ['connection', 'status'],
    sql: "SELECT c.name AS connection, s.status, (c.status = s.status)::int AS value FROM erp_connections c CROSS JOIN unnest(ARRAY['active', 'unauthorized', 'needs_reauthorization']) AS s(status)",
  });
  storeGauge(registry, pool, {
    name: 'accrue_erp_connection_parked_seconds',
    help: 'Seconds until an ERP connection parked by a daily limit may be called again (0: not parked).',
    labelNames: ['connection'],
    sql: 'SELECT name AS connection, greatest(0, extract(epoch FROM coalesce(parked_until, now()) - now()))::float8 AS value FROM erp_connections',
  });
  storeGauge(registry, pool, {
    name: 'accrue_outbox_waiting_entries',
    help: 'Pending outbox entries waiting for something other than a retry, per connection and reason: mapping_missing, period_locked, needs_reauthorization, parked, invoice_first.',
    labelNames: ['connector', 'reason'],
    sql: "SELECT target AS connector, last_error->>'code' AS reason, count(*) AS value FROM outbox WHERE status = 'pending' AND last_error->>'code' IN ('mapping_missing', 'period_locked', 'needs_reauthorization', 'parked', 'invoice_first') GROUP BY 1, 2",
  });
}

/** Open exceptions. */
function reconciliationFamilies({ registry, pool, zeros }: Families): void {
  storeGauge(registry, pool, {
    name: 'accrue_exceptions_open',
    help: 'Exceptions not yet resolved or waived, by owner queue, status (open, assigned) and legal entity.',
    labelNames: ['queue', 'status', 'legal_entity'],
    sql: "SELECT owner_queue AS queue, status, coalesce(legal_entity, 'unknown') AS legal_entity, count(*) AS value FROM exceptions WHERE status IN ('open', 'assigned') GROUP BY 1, 2, 3",
    zeros: zeros((k) => ({ queue: OWNER_QUEUES, status: OPEN_EXCEPTION_STATUSES, legal_entity: k.entities })),
  });
  // One exception per document and difference (its id is deterministic), and exceptions are never deleted: a count.
  storeCounter(registry, pool, {
    name: 'accrue_tax_mismatches_total',
    help: "Invoices and credit notes whose tax in an ERP differed from Accrue's when reconciliation compared them (checkpoint tax_vs_erp), by legal entity and connector.",
    labelNames: ['legal_entity', 'connector'],
    sql: "SELECT legal_entity, connector, count(*) AS value FROM exceptions WHERE checkpoint = 'tax_vs_erp' GROUP BY 1, 2",
    zeros: zeros((k) => ({ legal_entity: k.entities, connector: k.connectors })),
  });
}

/** Disputes (migration 029): the open ones, and the cycle time of the closed ones. */
function disputeFamilies({ registry, pool, zeros }: Families): void {
  storeGauge(registry, pool, {
    name: 'accrue_disputes_open',
    help: 'Disputes of invoice lines not yet resolved by a credit note or rejected, by legal entity.',
    labelNames: ['legal_entity'],
    sql: "SELECT legal_entity, count(*) AS value FROM disputes WHERE status = 'open' GROUP BY 1",
    zeros: zeros((k) => ({ legal_entity: k.entities })),
  });
  storeHistogram(registry, pool, {
    name: 'accrue_dispute_resolution_seconds',
    help: 'Cycle time of a dispute, from opened to resolved (by credit note) or rejected, by legal entity and outcome.',
    labelNames: ['legal_entity', 'outcome'],
    buckets: DISPUTE_RESOLUTION_BUCKETS_SECONDS,
    sql: `SELECT legal_entity, status AS outcome, greatest(0, extract(epoch FROM closed_at - opened_at))::float8 AS v
            FROM disputes WHERE status IN ('resolved', 'rejected')`,
    zeros: zeros((k) => ({ legal_entity: k.entities, outcome: DISPUTE_OUTCOMES })),
  });
}

/** Four eyes: change requests by status, and refused proposals and decisions (recorded in the audit log). */
function controlsFamilies({ registry, pool }: Families): void {
  storeGauge(registry, pool, {
    name: 'accrue_change_requests',
    help: 'Change requests (maker-checker) by status: pending waits for a controller; approved, rejected and cancelled are final.',
    labelNames: ['status'],
    sql: 'SELECT status, count(*) AS value FROM change_requests GROUP BY 1',
    zeros: async () => combinations({ status: CHANGE_STATUSES }),
  });
  storeCounter(registry, pool, {
    name: 'accrue_change_refusals_total',
    help: 'Refused proposals and decisions of change requests (self-approval, no permission, already decided, stale), counted from the audit log.',
    labelNames: [],
    sql: "SELECT count(*) AS value FROM audit_log WHERE action IN ('change.refused', 'change.propose_refused')", // REFUSAL_ACTIONS
  });
}

/** HTTP basics of this process: requests by route pattern (never the raw URL, so ids do not become series) and status. */
function httpMetrics(app: FastifyInstance, registry: Registry): void {
  const requests = new Counter({
    name: 'accrue_http_requests_total',
    help: 'HTTP requests answered by this process, by method, route and status code.',
    labelNames: ['method', 'route', 'status_code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'accrue_http_request_duration_seconds',
    help: 'Time to answer an HTTP request in this process, by method and route.',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ method: request.method, route, status_code: String(reply.statusCode) });
    duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
}

/**
 * Counts the app's HTTP requests and, unless `options.route` is false, serves GET /metrics on it (with `access: 'key'`
 * only to a read or admin key). Returns the registry, for buildMetricsServer when /metrics has an address of its own.
 */
export async function registerMetricsRoute(app: FastifyInstance, pool: pg.Pool, options: MetricsOptions = {}): Promise<Registry> {
  const own = metricsRegistry(pool, options);
  httpMetrics(app, own);
  const registry = Registry.merge([own, processRegistry]);
  if (options.route !== false) {
    app.get(
      '/metrics',
      { config: { permission: options.access === 'key' ? 'data.read' : 'public' }, schema: { hide: true } },
      async (_request, reply) => {
        reply.type(registry.contentType);
        return withoutMisnamedGauges(await registry.metrics());
      },
    );
  }
  return registry;
}

/**
 * GET /metrics alone, for its own listen address (`accrue serve --metrics-listen 127.0.0.1:9464`): the API's address
 * then has no /metrics. Without `registry` (a worker, which serves no API) it serves the store's and this process's series.
 */
export async function buildMetricsServer(options: {
  pool: pg.Pool;
  access?: MetricsAccess;
  registry?: Registry;
  connectors?: readonly string[];
}): Promise<FastifyInstance> {
  const registry = options.registry ?? Registry.merge([metricsRegistry(options.pool, { connectors: options.connectors }), processRegistry]);
  const app = Fastify({ logger: false });
  const failures = new AuthFailureLimiter();
  app.get('/metrics', async (request, reply) => {
    if (options.access === 'key') {
      const auth = await authenticate(options.pool, failures, request, 'data.read');
      if ('problem' in auth) {
        if (auth.retryAfterSeconds !== undefined) reply.header('retry-after', String(auth.retryAfterSeconds));
        return sendProblem(reply, auth.problem);
      }
      // The series are not labelled by legal entity: a key limited to entities is refused, as on the API's /metrics.
      const unscoped = unscopedRouteRefusal(keyActor(auth.key), undefined, 'GET /metrics');
      if (unscoped) return sendProblem(reply, unscoped);
    }
    reply.type(registry.contentType);
    return withoutMisnamedGauges(await registry.metrics());
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      problemDetails(404, 'not_found', `no route ${request.method} ${request.url}: this address serves GET /metrics only`),
    ),
  );
  return app;
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
