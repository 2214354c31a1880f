// The forward walk: from one usage event (source, id) to its usage batch, every invoice line whose aggregate read it
// (by the same rule rating used: customer, meter, window, watermark, late flag), the invoices, their corrections,
// journals and ERP references.
import type pg from 'pg';
import { currentCatalog, catalogVersion, type CatalogVersion } from '../catalog/service.js';
import { correlationId } from '../domain/correlation.js';
import { fail, ok, problem, type Result } from '../domain/result.js';
import { correctionsOf, documentRef, journalsOf, ratedWithLateUsage, ratingRun, type RatingRunRow } from './documents.js';
import { EXPLAIN_LIMITS, type EventExplanation } from './model.js';
import { windowOfRef } from './usage-lineage.js';

interface EventRow {
  seq: string;
  source: string;
  id: string;
  type: string;
  subject: string;
  customer_id: string;
  time: Date;
  received_at: Date;
  late: boolean;
  meter_values: Record<string, string>;
  dimensions: Record<string, Record<string, string>>;
  batch_id: string;
}

type Db = pg.Pool | pg.PoolClient;
type Billed = EventExplanation['billed_in'];

interface BatchRow {
  id: string;
  channel: string;
  received_at: Date;
  received: number;
  accepted: number;
}

interface CandidateLine {
  id: string;
  number: string | null;
  kind: 'invoice' | 'credit_note';
  status: string;
  rating_run: string;
  line_no: number;
  meter: string;
  usage_ref: string;
}

export async function explainEvent(db: Db, source: string, id: string): Promise<Result<EventExplanation>> {
  const event = (
    await db.query<EventRow>(
      `SELECT e.seq, e.source, e.id, e.type, e.subject, e.customer_id, e.time, e.received_at, e.late, e.meter_values, e.dimensions, e.batch_id
         FROM events e WHERE e.source = $1 AND e.id = $2`,
      [source, id],
    )
  ).rows[0];
  if (!event) return notAccepted(db, source, id);
  const batch = (
    await db.query<BatchRow>('SELECT id, channel, received_at, received, accepted FROM ingest_batches WHERE id = $1', [event.batch_id])
  ).rows[0];
  const period = event.time.toISOString().slice(0, 7);
  const { billed, truncated } = await billedLines(db, event, await candidateLines(db, event, period));
  await attachJournals(db, billed);
  const { status, note } = await eventStatus(db, event, period, billed);
  return ok({
    event: eventSummary(event),
    usage_batch: batch
      ? {
          id: batch.id,
          channel: batch.channel,
          received_at: batch.received_at.toISOString(),
          received: batch.received,
          accepted: batch.accepted,
        }
      : null,
    billed_in: billed,
    billed_in_truncated: truncated,
    status,
    note,
  });
}

/** The not_found problem for a key with no accepted event, saying when it waits in quarantine. */
async function notAccepted(db: Db, source: string, id: string): Promise<Result<EventExplanation>> {
  const held = (
    await db.query<{ reason: string; replay_result: string | null }>(
      'SELECT reason, replay_result FROM quarantine WHERE source = $1 AND id = $2 ORDER BY seq DESC LIMIT 1',
      [source, id],
    )
  ).rows[0];
  const why = held
    ? `; it is in quarantine (${held.reason}${held.replay_result ? `, replay: ${held.replay_result}` : ''}) until the catalog knows it`
    : '';
  return fail(problem('event', 'not_found', `no accepted event with source ${JSON.stringify(source)} and id ${JSON.stringify(id)}${why}`));
}

/** Usage lines of the customer's invoices for the event's month; credit notes are found as reversals of these. */
async function candidateLines(db: Db, event: EventRow, period: string): Promise<CandidateLine[]> {
  return (
    await db.query<CandidateLine>(
      `SELECT i.id, i.number, i.kind, i.status, i.document->>'rating_run' AS rating_run, il.line_no, il.meter, il.usage_ref
         FROM invoices i JOIN invoice_lines il ON il.invoice_id = i.id
        WHERE i.customer = $1 AND i.period = $2 AND i.kind = 'invoice' AND i.status <> 'draft' AND il.usage_ref IS NOT NULL AND il.meter IS NOT NULL
        ORDER BY i.finalized_at, i.id, il.line_no`,
      [event.customer_id, period],
    )
  ).rows;
}

/** The candidate lines whose aggregate read the event (by rating's rule), at most EXPLAIN_LIMITS.forwardLines of them. */
async function billedLines(db: Db, event: EventRow, candidates: readonly CandidateLine[]): Promise<{ billed: Billed; truncated: boolean }> {
  const runs = new Map<string, RatingRunRow | undefined>();
  const catalogs = new Map<number, CatalogVersion | undefined>();
  const withLate = new Map<string, boolean>();
  const billed: Billed = [];
  for (const c of candidates) {
    if (!runs.has(c.rating_run)) runs.set(c.rating_run, await ratingRun(db, c.rating_run));
    const run = runs.get(c.rating_run);
    if (!run || BigInt(event.seq) > BigInt(run.event_seq_watermark)) continue;
    if (!catalogs.has(run.catalog_version)) catalogs.set(run.catalog_version, await catalogVersion(db, run.catalog_version));
    const meter = catalogs.get(run.catalog_version)?.index.meters.get(c.meter);
    if (!meter || meter.event_type !== event.type) continue;
    if (meter.aggregation !== 'count' && !(meter.id in event.meter_values)) continue;
    const window = windowOfRef(event.customer_id, c.meter, c.usage_ref);
    if (!window || event.time.getTime() < Date.parse(window.from) || event.time.getTime() >= Date.parse(window.to)) continue;
    if (event.late) {
      if (!withLate.has(c.id)) withLate.set(c.id, await ratedWithLateUsage(db, c.id));
      if (!withLate.get(c.id)) continue;
    }
    if (billed.length >= EXPLAIN_LIMITS.forwardLines) return { billed, truncated: true };
    billed.push({
      invoice: documentRef(c),
      line_no: c.line_no,
      meter: c.meter,
      window,
      rating_run: run.id,
      event_seq_watermark: run.event_seq_watermark,
      correlation_id: correlationId({ invoice: c.id, rating_run: c.rating_run }),
      reversed_by: (await correctionsOf(db, c.id)).filter((d) => d.kind === 'credit_note'),
      journals: [],
    });
  }
  return { billed, truncated: false };
}

/** Sets each billed line's journals, read once per invoice. */
async function attachJournals(db: Db, billed: Billed): Promise<void> {
  const journalsByInvoice = new Map<string, Billed[number]['journals']>();
  for (const b of billed) {
    if (!journalsByInvoice.has(b.invoice.id)) journalsByInvoice.set(b.invoice.id, await journalsOf(db, [b.invoice.id]));
    b.journals = journalsByInvoice.get(b.invoice.id)!;
  }
}

type EventStatus = Pick<EventExplanation, 'status' | 'note'>;

async function eventStatus(db: Db, event: EventRow, period: string, billed: Billed): Promise<EventStatus> {
  const standing = billed.filter((b) => b.invoice.status === 'finalized' && b.reversed_by.length === 0);
  if (standing.length > 0)
    return {
      status: 'billed',
      note: `counted on ${standing.map((b) => `${b.invoice.number ?? b.invoice.id} line ${b.line_no}`).join(', ')}`,
    };
  if (billed.length > 0) {
    return {
      status: 'billed',
      note: `counted on ${billed.map((b) => `${b.invoice.number ?? b.invoice.id} line ${b.line_no}`).join(', ')}, since reversed or voided`,
    };
  }
  return unbilledStatus(db, event, period);
}

/** Why no invoice line counts the event: re-rated without change, late and pending, not yet billed, or not billable. */
async function unbilledStatus(db: Db, event: EventRow, period: string): Promise<EventStatus> {
  const adjustment = event.late
    ? (
        await db.query<{ key: string; credit_note: string | null }>(
          'SELECT key, credit_note FROM late_usage_adjustments WHERE customer = $1 AND period = $2 AND event_seq_watermark >= $3 ORDER BY event_seq_watermark LIMIT 1',
          [event.customer_id, period, event.seq],
        )
      ).rows[0]
    : undefined;
  const entity = (await currentCatalog(db))?.index.customers.get(event.customer_id)?.legal_entity;
  const closed = entity
    ? ((await db.query("SELECT 1 FROM billing_periods WHERE legal_entity = $1 AND period = $2 AND status = 'closed'", [entity, period]))
        .rowCount ?? 0) > 0
    : false;
  if (adjustment && adjustment.credit_note === null) {
    return {
      status: 'rerated_unchanged',
      note: `late usage re-rated in adjustment ${adjustment.key}; the amounts did not change, so no credit note or replacement was issued`,
    };
  }
  if (event.late) {
    return {
      status: 'late_pending',
      note: `arrived after ${period} was closed; the next billing run re-rates ${period} and bills it with a credit note and a replacement if the amounts change`,
    };
  }
  if (!closed) return { status: 'not_yet_billed', note: `${period} is not closed yet; the billing run for ${period} will count it` };
  return {
    status: 'not_billed',
    note: `${period} is closed but no invoice line counted it: no usage price of the customer's plan reads a meter of type ${event.type} in that window, or the event carries no value for it`,
  };
}

function eventSummary(event: EventRow): EventExplanation['event'] {
  return {
    source: event.source,
    id: event.id,
    seq: event.seq,
    type: event.type,
    subject: event.subject,
    customer: event.customer_id,
    time: event.time.toISOString(),
    received_at: event.received_at.toISOString(),
    late: event.late,
    meter_values: event.meter_values,
    dimensions: event.dimensions,
  };
}
