// The period overview finance looks at first: usage, unbilled, invoiced, posted and paid per legal entity and
// currency, as totals and as running totals over the days of the period, and the KPIs with the previous period's value.
// Amounts are bigint minor units here and decimal strings in major units on the way out; never floats.
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { Decimal, decimalFixed, formatMajor, minorUnits } from '../domain/money.js';
import { inReportingCurrency, reportingSettings } from '../map/reporting-currency.js';
import { parsePeriod, type PeriodWindow } from '../meter/period.js';
import { NEWEST_EVENT_SEQ } from '../meter/catch-up.js';
import { daysBetween, estimateDaily, ESTIMATE_DAYS_MAX, type DailyEstimate } from './estimate.js';
import { lastDayOfMonth } from '../domain/calendar.js';

export const MONEY_SERIES = ['usage', 'unbilled', 'invoiced', 'posted', 'paid'] as const;
export type MoneySeries = (typeof MONEY_SERIES)[number];

export interface EntityMoney {
  legal_entity: string;
  currency: string;
  usage: string;
  unbilled: string;
  invoiced: string;
  posted: string;
  paid: string;
  outstanding: string;
  invoices: number;
}

export interface EntitySeries {
  legal_entity: string;
  currency: string;
  /** Running totals at the end of each day of `days`, major units. */
  usage: string[];
  unbilled: string[];
  invoiced: string[];
  posted: string[];
  paid: string[];
}

export interface Kpi {
  id: string;
  label: string;
  unit: 'count' | 'money' | 'ratio' | 'seconds';
  currency: string | null;
  value: string | null;
  /** The same measure for the previous period; null where the measure is a state of now (backlog, DLQ). */
  previous: string | null;
}

export interface Overview {
  period: string;
  start_date: string;
  end_date: string; // exclusive
  days: string[];
  entities: Array<{ id: string; name: string; currency: string; status: 'open' | 'closing' | 'closed'; closed_at: string | null }>;
  totals: EntityMoney[];
  series: EntitySeries[];
  events: Array<{ legal_entity: string; per_day: number[]; total: number; late: number }>;
  kpis: Kpi[];
  /** The totals in the group reporting currency (ACCRUE_REPORTING_CURRENCY), each currency at the named source's rate; null without one. */
  group: GroupTotals | null;
}

export interface GroupTotals {
  currency: string;
  rate_source: string;
  rate_date: string; // the day the rates are for (the oldest rate used, or that day when none was needed)
  unbilled: string;
  invoiced: string;
  outstanding: string;
  /** Currencies without a usable rate on that day: left out of the group totals. */
  missing: string[];
}

interface DocumentRow {
  id: string;
  kind: 'invoice' | 'credit_note';
  status: 'finalized' | 'void';
  legal_entity: string;
  customer: string;
  currency: string;
  total_minor: string;
  finalized_on: string | null;
  voided_on: string | null;
  outbox_entries: number;
  outbox_posted: number;
  posted_on: string | null;
  journaled_on: string | null;
}

const DAY_MS = 86_400_000;
const ESTIMATE_CACHE_MAX = 16;
const estimateCache = new Map<string, DailyEstimate[]>();

function previousPeriod(period: string): string {
  const [y, m] = period.split('-').map(Number) as [number, number];
  const d = new Date(Date.UTC(y, m - 2, 1));
  return d.toISOString().slice(0, 7);
}

/**
 * What a key limited to legal entities sees (docs/controls-entities.md): their documents, payments and periods, their
 * customers' events. null: every entity. Passed to each query as a text[] parameter.
 */
interface Scope {
  entities: readonly string[] | null;
  customers: readonly string[] | null;
}

/** Finalized and voided invoices and credit notes of a period, with the day each was posted (all targets done). */
async function periodDocuments(db: pg.Pool, period: string, scope: Scope): Promise<DocumentRow[]> {
  return (
    await db.query<DocumentRow>(
      `WITH entries AS (
         SELECT coalesce(j.source_document, o.document_id) AS invoice_id, o.status, o.posted_at
           FROM outbox o LEFT JOIN journals j ON j.id = o.document_id
       )
       SELECT i.id, i.kind, i.status, i.legal_entity, i.customer, i.currency, i.total_minor::text,
              ((i.finalized_at AT TIME ZONE 'UTC')::date)::text AS finalized_on, ((i.voided_at AT TIME ZONE 'UTC')::date)::text AS voided_on,
              count(e.status)::int AS outbox_entries, count(e.status) FILTER (WHERE e.status = 'posted')::int AS outbox_posted,
              ((max(e.posted_at) AT TIME ZONE 'UTC')::date)::text AS posted_on,
              (SELECT ((min(j.created_at) AT TIME ZONE 'UTC')::date)::text FROM journals j WHERE j.source_document = i.id) AS journaled_on
         FROM invoices i LEFT JOIN entries e ON e.invoice_id = i.id
        WHERE i.period = $1 AND i.status IN ('finalized', 'void') AND ($2::text[] IS NULL OR i.legal_entity = ANY($2))
        GROUP BY i.id ORDER BY i.id`,
      [period, scope.entities],
    )
  ).rows;
}

/** When a document counts as posted: every outbox entry posted, or, with no ERP target, once the built-in ledger holds its journal. */
function postedOn(doc: DocumentRow): string | null {
  if (doc.outbox_entries === 0) return doc.journaled_on ?? doc.finalized_on;
  return doc.outbox_posted === doc.outbox_entries ? doc.posted_on : null;
}

const sign = (doc: DocumentRow) => (doc.kind === 'credit_note' ? -1n : 1n);

/** A running total: the amounts dated on or before each day (an amount dated before the first day counts from it). */
function running(days: readonly string[], dated: Array<{ on: string; minor: bigint }>): bigint[] {
  return days.map((day) => dated.reduce((sum, d) => (d.on <= day ? sum + d.minor : sum), 0n));
}

/** A period at a glance; with `limitTo` (a key's entity limit), only those legal entities and their customers. */
export async function periodOverview(
  pool: pg.Pool,
  catalog: CatalogVersion,
  period: string,
  limitTo?: readonly string[],
): Promise<Overview> {
  const parsed = parsePeriod(period);
  if (!parsed.ok) throw new Error(`not a period: ${period}`);
  const window: PeriodWindow = parsed.value;
  const previous = previousPeriod(period);
  const scope: Scope = {
    entities: limitTo ?? null,
    customers: limitTo ? catalog.catalog.customers.filter((c) => limitTo.includes(c.legal_entity)).map((c) => c.id) : null,
  };
  const seen = (entity: string) => scope.entities === null || scope.entities.includes(entity);
  const documents = await periodDocuments(pool, period, scope);
  const payments = await periodPayments(pool, period, scope);
  const days = axisDays(window, documents, payments);

  const estimates = (await cachedEstimate(pool, catalog, window, days)).filter((e) => seen(e.legal_entity));
  const periodStatus = await periodStatuses(pool, period);

  const totals: EntityMoney[] = [];
  const series: EntitySeries[] = [];
  const unbilledMinor = new Map<string, bigint>();
  for (const [key, { legal_entity, currency }] of entityCurrencies(catalog, estimates, documents, seen)) {
    const money = entityMoney({ legal_entity, currency }, days, {
      all: documents,
      mine: documents.filter((d) => `${d.legal_entity}|${d.currency}` === key),
      estimates: estimates.filter((e) => `${e.legal_entity}|${e.currency}` === key),
      payments: payments.filter((p) => `${p.legal_entity}|${p.currency}` === key),
    });
    unbilledMinor.set(currency, (unbilledMinor.get(currency) ?? 0n) + money.unbilledTotal);
    totals.push(money.total);
    series.push(money.series);
  }

  const events = await eventsPerDay(pool, catalog, window, days, scope);
  const kpis = await periodKpis(pool, { window, previous, scope }, unbilledMinor, documents);
  return {
    period,
    start_date: window.start_date,
    end_date: window.end_date,
    days,
    entities: catalog.catalog.legal_entities
      .filter((e) => seen(e.id))
      .map((e) => {
        const status = periodStatus.get(e.id);
        return {
          id: e.id,
          name: e.name,
          currency: e.currency,
          status: status?.status ?? 'open',
          closed_at: status?.closed_at?.toISOString() ?? null,
        };
      }),
    totals,
    series,
    events,
    kpis,
    group: await groupTotals(pool, window, totals),
  };
}

/** The period's totals in the reporting currency, at the rates of its last day (of today while it runs). */
async function groupTotals(pool: pg.Pool, window: PeriodWindow, totals: readonly EntityMoney[]): Promise<GroupTotals | null> {
  const settings = reportingSettings();
  if (!settings) return null;
  const today = new Date().toISOString().slice(0, 10);
  const lastDay = lastDayOfMonth(window.period);
  const date = today < lastDay ? today : lastDay;
  const minor = (major: string, currency: string) => BigInt(new Decimal(major).mul(new Decimal(10).pow(minorUnits(currency))).toFixed(0));
  const measure = (field: 'unbilled' | 'invoiced' | 'outstanding') =>
    inReportingCurrency(
      pool,
      settings,
      date,
      totals.map((t) => ({ currency: t.currency, amount_minor: minor(t[field], t.currency) })),
    );
  const [unbilled, invoiced, outstanding] = await Promise.all([measure('unbilled'), measure('invoiced'), measure('outstanding')]);
  const rateDates = [...unbilled.rates, ...invoiced.rates, ...outstanding.rates].map((r) => r.rate_date).sort();
  return {
    currency: settings.currency,
    rate_source: settings.source,
    rate_date: rateDates[0] ?? date,
    unbilled: formatMajor(unbilled.amount_minor, settings.currency),
    invoiced: formatMajor(invoiced.amount_minor, settings.currency),
    outstanding: formatMajor(outstanding.amount_minor, settings.currency),
    missing: [...new Set([...unbilled.missing, ...invoiced.missing, ...outstanding.missing])].sort(),
  };
}

interface PaymentRow {
  invoice_id: string;
  legal_entity: string;
  currency: string;
  amount_minor: string;
  received_on: string;
}

/** The payments applied to the period's invoices. */
async function periodPayments(pool: pg.Pool, period: string, scope: Scope): Promise<PaymentRow[]> {
  return (
    await pool.query<PaymentRow>(
      `SELECT p.invoice_id, i.legal_entity, i.currency, p.amount_minor::text, p.received_on::text
         FROM payments p JOIN invoices i ON i.id = p.invoice_id
        WHERE i.period = $1 AND p.status = 'applied' AND ($2::text[] IS NULL OR i.legal_entity = ANY($2))`,
      [period, scope.entities],
    )
  ).rows;
}

/** The axis runs over the period and on to the last day something of this period happened (the close, postings, cash). */
function axisDays(window: PeriodWindow, documents: readonly DocumentRow[], payments: readonly PaymentRow[]): string[] {
  const activity = [...documents.flatMap((d) => [d.finalized_on, d.voided_on, postedOn(d)]), ...payments.map((p) => p.received_on)].filter(
    (d): d is string => d !== null,
  );
  const lastPeriodDay = new Date(Date.parse(`${window.end_date}T00:00:00Z`) - DAY_MS).toISOString().slice(0, 10);
  const lastDay = activity.reduce((max, d) => (d > max ? d : max), lastPeriodDay);
  const axisEndMs = Math.min(
    Date.parse(`${lastDay}T00:00:00Z`) + DAY_MS,
    Date.parse(`${window.start_date}T00:00:00Z`) + ESTIMATE_DAYS_MAX * DAY_MS,
  );
  return daysBetween(window.start_date, new Date(axisEndMs).toISOString().slice(0, 10));
}

async function periodStatuses(pool: pg.Pool, period: string) {
  return new Map(
    (
      await pool.query<{ legal_entity: string; status: 'open' | 'closing' | 'closed'; closed_at: Date | null }>(
        'SELECT legal_entity, status, closed_at FROM billing_periods WHERE period = $1',
        [period],
      )
    ).rows.map((r) => [r.legal_entity, r]),
  );
}

/** Per (entity, currency), in key order: the keys come from the catalog's plans, the estimates and the documents. */
function entityCurrencies(
  catalog: CatalogVersion,
  estimates: readonly DailyEstimate[],
  documents: readonly DocumentRow[],
  seen: (entity: string) => boolean,
): Array<[string, { legal_entity: string; currency: string }]> {
  const keys = new Map<string, { legal_entity: string; currency: string }>();
  const keyOf = (entity: string, currency: string) => {
    const key = `${entity}|${currency}`;
    if (!keys.has(key)) keys.set(key, { legal_entity: entity, currency });
    return key;
  };
  for (const e of catalog.catalog.legal_entities) if (seen(e.id)) keyOf(e.id, e.currency);
  for (const e of estimates) keyOf(e.legal_entity, e.currency);
  for (const d of documents) keyOf(d.legal_entity, d.currency);
  return [...keys].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** One (entity, currency)'s totals and daily series: usage, unbilled, invoiced, posted, paid. */
function entityMoney(
  { legal_entity, currency }: { legal_entity: string; currency: string },
  days: readonly string[],
  rows: { all: readonly DocumentRow[]; mine: DocumentRow[]; estimates: DailyEstimate[]; payments: PaymentRow[] },
): { total: EntityMoney; series: EntitySeries; unbilledTotal: bigint } {
  const { all: documents, mine, estimates: myEstimates, payments: myPayments } = rows;
  const invoicedBy = (customer: string, day: string) =>
    documents.some(
      (d) =>
        d.kind === 'invoice' &&
        d.customer === customer &&
        d.currency === currency &&
        d.legal_entity === legal_entity &&
        d.finalized_on !== null &&
        d.finalized_on <= day,
    );
  const invoicedNow = (customer: string) =>
    documents.some(
      (d) =>
        d.kind === 'invoice' &&
        d.status === 'finalized' &&
        d.customer === customer &&
        d.currency === currency &&
        d.legal_entity === legal_entity,
    );
  const usage = days.map((_, i) => myEstimates.reduce((sum, e) => sum + e.total_minor[i]!, 0n));
  const unbilled = days.map((day, i) => myEstimates.reduce((sum, e) => (invoicedBy(e.customer, day) ? sum : sum + e.total_minor[i]!), 0n));
  const { invoicedDated, postedDated, paidDated } = datedAmounts(mine, myPayments);
  const sum = (dated: Array<{ minor: bigint }>) => dated.reduce((s, d) => s + d.minor, 0n);
  const last = days.length - 1;
  const invoicedTotal = sum(invoicedDated);
  const paidTotal = sum(paidDated);
  const unbilledTotal = myEstimates.reduce((s, e) => (invoicedNow(e.customer) ? s : s + e.total_minor[last]!), 0n);
  const fmt = (minor: bigint) => formatMajor(minor, currency);
  const total: EntityMoney = {
    legal_entity,
    currency,
    usage: fmt(usage[last]!),
    unbilled: fmt(unbilledTotal),
    invoiced: fmt(invoicedTotal),
    posted: fmt(sum(postedDated)),
    paid: fmt(paidTotal),
    outstanding: fmt(invoicedTotal - paidTotal),
    invoices: mine.filter((d) => d.kind === 'invoice' && d.status === 'finalized').length,
  };
  const series: EntitySeries = {
    legal_entity,
    currency,
    usage: usage.map(fmt),
    unbilled: unbilled.map(fmt),
    invoiced: running(days, invoicedDated).map(fmt),
    posted: running(days, postedDated).map(fmt),
    paid: running(days, paidDated).map(fmt),
  };
  return { total, series, unbilledTotal };
}

/** The dated amounts of one (entity, currency): invoiced (a void reverses on its day), posted, and paid. */
function datedAmounts(mine: readonly DocumentRow[], myPayments: readonly PaymentRow[]) {
  const invoicedDated = mine.flatMap((d) => [
    ...(d.finalized_on ? [{ on: d.finalized_on, minor: sign(d) * BigInt(d.total_minor) }] : []),
    ...(d.status === 'void' && d.voided_on ? [{ on: d.voided_on, minor: -sign(d) * BigInt(d.total_minor) }] : []),
  ]);
  const postedDated = mine
    .filter((d) => d.status === 'finalized')
    .flatMap((d) => {
      const on = postedOn(d);
      return on ? [{ on, minor: sign(d) * BigInt(d.total_minor) }] : [];
    });
  const paidDated = myPayments.map((p) => ({ on: p.received_on, minor: BigInt(p.amount_minor) }));
  return { invoicedDated, postedDated, paidDated };
}

/** The estimate only changes with new events, a new catalog or newly finalized invoices (credit grants): cache on those. */
async function cachedEstimate(pool: pg.Pool, catalog: CatalogVersion, window: PeriodWindow, days: string[]): Promise<DailyEstimate[]> {
  const state = (
    await pool.query<{ seq: string | null; finalized: string }>(
      `SELECT ${NEWEST_EVENT_SEQ}::text AS seq, (SELECT count(*)::text FROM invoices WHERE status <> 'draft') AS finalized`,
    )
  ).rows[0]!;
  const key = [window.period, days.length, catalog.version, state.seq ?? '0', state.finalized].join('|');
  const cached = estimateCache.get(key);
  if (cached) return cached;
  const estimates = await estimateDaily(pool, catalog, window, days);
  if (estimateCache.size >= ESTIMATE_CACHE_MAX) estimateCache.delete(estimateCache.keys().next().value!);
  estimateCache.set(key, estimates);
  return estimates;
}

async function eventsPerDay(
  pool: pg.Pool,
  catalog: CatalogVersion,
  window: PeriodWindow,
  days: readonly string[],
  scope: Scope,
): Promise<Overview['events']> {
  const rows = (
    await pool.query<{ day: string; customer_id: string; n: number; late: number }>(
      `SELECT ((time AT TIME ZONE 'UTC')::date)::text AS day, customer_id, count(*)::int AS n, count(*) FILTER (WHERE late)::int AS late
         FROM events WHERE time >= $1 AND time < $2 AND ($3::text[] IS NULL OR customer_id = ANY($3)) GROUP BY 1, 2`,
      [window.from, window.to, scope.customers],
    )
  ).rows;
  const entityOf = (customer: string) => catalog.index.customers.get(customer)?.legal_entity ?? '(unknown)';
  const ids = catalog.catalog.legal_entities.map((e) => e.id).filter((id) => scope.entities === null || scope.entities.includes(id));
  const entities = [...new Set([...ids, ...rows.map((r) => entityOf(r.customer_id))])];
  return entities.map((entity) => {
    const mine = rows.filter((r) => entityOf(r.customer_id) === entity);
    const per_day = days.map((day) => mine.filter((r) => r.day === day).reduce((s, r) => s + r.n, 0));
    return { legal_entity: entity, per_day, total: mine.reduce((s, r) => s + r.n, 0), late: mine.reduce((s, r) => s + r.late, 0) };
  });
}

async function periodKpis(
  pool: pg.Pool,
  { window, previous, scope }: { window: PeriodWindow; previous: string; scope: Scope },
  unbilledMinor: ReadonlyMap<string, bigint>,
  documents: DocumentRow[],
): Promise<Kpi[]> {
  const prevWindow = parsePeriod(previous);
  if (!prevWindow.ok) throw new Error('unreachable: the previous month of a period is a period');
  const [now, before] = await Promise.all([kpiCounts(pool, window, scope), kpiCounts(pool, prevWindow.value, scope)]);
  const state = await outboxState(pool, scope);
  const previousDocuments = await periodDocuments(pool, previous, scope);

  const currencies = [...unbilledMinor.keys()].sort();
  const kpis: Kpi[] = [
    { id: 'events_accepted', label: 'Events accepted', unit: 'count', currency: null, value: now.accepted, previous: before.accepted },
    {
      id: 'events_late',
      label: 'Late events (billed at the next close)',
      unit: 'count',
      currency: null,
      value: now.late,
      previous: before.late,
    },
  ];
  for (const currency of currencies)
    kpis.push(
      ...(await currencyKpis(pool, currency, { window: window.period, previous, scope }, { documents, previousDocuments }, unbilledMinor)),
    );
  kpis.push(
    {
      id: 'close_latency_seconds',
      label: 'Invoice generation latency',
      unit: 'seconds',
      currency: null,
      value: await closeLatency(pool, window, scope),
      previous: await closeLatency(pool, prevWindow.value, scope),
    },
    { id: 'exceptions_open', label: 'Open exceptions', unit: 'count', currency: null, value: now.exceptions, previous: before.exceptions },
    { id: 'quarantine_pending', label: 'Quarantined events', unit: 'count', currency: null, value: state.quarantined, previous: null },
    { id: 'erp_backlog', label: 'ERP posting backlog', unit: 'count', currency: null, value: state.backlog, previous: null },
    {
      id: 'erp_oldest_pending_seconds',
      label: 'Oldest unposted document',
      unit: 'seconds',
      currency: null,
      value: state.oldest,
      previous: null,
    },
    { id: 'dlq_entries', label: 'Dead letters', unit: 'count', currency: null, value: state.dead, previous: null },
    ...(await disputeKpis(pool, window, prevWindow.value)),
  );
  return kpis;
}

/** Disputes open now, and the median cycle time (opened to resolved or rejected) of those closed in the period. */
async function disputeKpis(pool: pg.Pool, w: PeriodWindow, before: PeriodWindow): Promise<Kpi[]> {
  const median = async (p: PeriodWindow) =>
    (
      await pool.query<{ s: string | null }>(
        `SELECT floor(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - opened_at)))::bigint::text AS s
           FROM disputes WHERE status IN ('resolved', 'rejected') AND closed_at >= $1 AND closed_at < $2`,
        [p.from, p.to],
      )
    ).rows[0]!.s;
  const open = (await pool.query<{ n: string }>("SELECT count(*)::text AS n FROM disputes WHERE status = 'open'")).rows[0]!.n;
  return [
    { id: 'disputes_open', label: 'Open disputes', unit: 'count', currency: null, value: open, previous: null },
    {
      id: 'dispute_resolution_seconds',
      label: 'Dispute cycle time (median)',
      unit: 'seconds',
      currency: null,
      value: await median(w),
      previous: await median(before),
    },
  ];
}

/** Events accepted and late in a period's window, and the period's open exceptions. */
async function kpiCounts(pool: pg.Pool, w: PeriodWindow, scope: Scope) {
  return (
    await pool.query<{ accepted: string; late: string; exceptions: string }>(
      `SELECT (SELECT count(*) FROM events WHERE time >= $1 AND time < $2 AND ($4::text[] IS NULL OR customer_id = ANY($4)))::text AS accepted,
              (SELECT count(*) FROM events WHERE time >= $1 AND time < $2 AND late AND ($4::text[] IS NULL OR customer_id = ANY($4)))::text AS late,
              (SELECT count(*) FROM exceptions WHERE period = $3 AND status IN ('open', 'assigned')
                  AND ($5::text[] IS NULL OR legal_entity = ANY($5)))::text AS exceptions`,
      [w.from, w.to, w.period, scope.customers, scope.entities],
    )
  ).rows[0]!;
}

/**
 * Now: quarantined events, the outbox backlog and its oldest entry's age, dead letters. With a scope, the outbox rows
 * of its entities' journals and invoices; quarantined events name no customer yet, so a scoped answer has none (null).
 */
async function outboxState(pool: pg.Pool, scope: Scope) {
  const mine = `($1::text[] IS NULL OR EXISTS (SELECT 1 FROM journals j WHERE j.id = o.document_id AND j.legal_entity = ANY($1))
                 OR EXISTS (SELECT 1 FROM invoices i WHERE i.id = o.document_id AND i.legal_entity = ANY($1)))`;
  const row = (
    await pool.query<{ quarantined: string | null; backlog: string; oldest: string | null; dead: string }>(
      `SELECT CASE WHEN $1::text[] IS NULL THEN (SELECT count(*) FROM quarantine WHERE replayed_at IS NULL)::text END AS quarantined,
              (SELECT count(*) FROM outbox o WHERE status = 'pending' AND ${mine})::text AS backlog,
              (SELECT floor(extract(epoch FROM now() - min(created_at)))::bigint::text FROM outbox o WHERE status = 'pending' AND ${mine}) AS oldest,
              (SELECT count(*) FROM outbox o WHERE status = 'dead' AND ${mine})::text AS dead`,
      [scope.entities],
    )
  ).rows[0]!;
  return row;
}

/** A currency's KPIs: invoiced, unbilled (estimate), and the paid share of what was invoiced, against the previous period. */
async function currencyKpis(
  pool: pg.Pool,
  currency: string,
  periods: { window: string; previous: string; scope: Scope },
  docs: { documents: DocumentRow[]; previousDocuments: DocumentRow[] },
  unbilledMinor: ReadonlyMap<string, bigint>,
): Promise<Kpi[]> {
  const invoicedMinor = (rows: DocumentRow[]) =>
    rows.filter((d) => d.currency === currency && d.status === 'finalized').reduce((s, d) => s + sign(d) * BigInt(d.total_minor), 0n);
  const share = (paid: bigint, invoiced: bigint) =>
    invoiced === 0n ? null : decimalFixed(new Decimal(paid.toString()).div(invoiced.toString()), 4);
  const invoicedNow = invoicedMinor(docs.documents);
  const invoicedBefore = invoicedMinor(docs.previousDocuments);
  return [
    {
      id: `invoiced_${currency}`,
      label: `Invoiced ${currency}`,
      unit: 'money',
      currency,
      value: formatMajor(invoicedNow, currency),
      previous: formatMajor(invoicedBefore, currency),
    },
    {
      id: `unbilled_${currency}`,
      label: `Unbilled ${currency} (estimate)`,
      unit: 'money',
      currency,
      value: formatMajor(unbilledMinor.get(currency) ?? 0n, currency),
      previous: null,
    },
    {
      id: `paid_share_${currency}`,
      label: `Paid share ${currency}`,
      unit: 'ratio',
      currency,
      value: share(await paidMinor(pool, periods.window, currency, periods.scope), invoicedNow),
      previous: share(await paidMinor(pool, periods.previous, currency, periods.scope), invoicedBefore),
    },
  ];
}

async function paidMinor(pool: pg.Pool, period: string, currency: string, scope: Scope): Promise<bigint> {
  return BigInt(
    (
      await pool.query<{ paid: string }>(
        `SELECT coalesce(sum(p.amount_minor), 0)::text AS paid FROM payments p JOIN invoices i ON i.id = p.invoice_id
          WHERE i.period = $1 AND i.currency = $2 AND p.status = 'applied' AND ($3::text[] IS NULL OR i.legal_entity = ANY($3))`,
        [period, currency, scope.entities],
      )
    ).rows[0]!.paid,
  );
}

// From the period's end to its last invoice finalized; a close run before the month ended (a replayed month) counts 0.
async function closeLatency(pool: pg.Pool, w: PeriodWindow, scope: Scope): Promise<string | null> {
  return (
    await pool.query<{ s: string | null }>(
      `SELECT CASE WHEN max(finalized_at) IS NULL THEN NULL ELSE greatest(0, floor(extract(epoch FROM max(finalized_at) - $2::timestamptz)))::bigint::text END AS s
         FROM invoices WHERE period = $1 AND kind = 'invoice' AND finalized_at IS NOT NULL AND ($3::text[] IS NULL OR legal_entity = ANY($3))`,
      [w.period, w.to, scope.entities],
    )
  ).rows[0]!.s;
}
