// Explain over HTTP: an invoice or journal traced back to its usage events, an event walked forward to the ERP.
import { Type } from 'typebox';
import type { Problem } from '../../domain/result.js';
import { explainEvent } from '../../explain/explain-event.js';
import { explainInvoice } from '../../explain/explain-invoice.js';
import { explainJournal } from '../../explain/explain-journal.js';
import { problemDetails, problemRef, valueOr } from '../problem.js';
import { INGEST_LIMITS } from '../../ingest/cloudevent.js';
import { idString, integerString } from '../params.js';
import type { RoutePlugin } from '../route-support.js';

const str = { type: 'string' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const strings = { type: 'array', items: str } as const;
const stringMap = { type: 'object', additionalProperties: str } as const;

const documentRef = {
  type: 'object',
  required: ['id', 'number', 'kind', 'status'],
  properties: { id: str, number: nullableStr, kind: { type: 'string', enum: ['invoice', 'credit_note'] }, status: str },
} as const;

const outboxRef = {
  type: 'object',
  properties: {
    key: str,
    target: str,
    journal: str,
    status: str,
    attempts: { type: 'integer' },
    erp_document: nullableStr,
    posted_at: nullableStr,
    last_error: nullableStr,
  },
} as const;

const journalRef = {
  type: 'object',
  properties: {
    id: str,
    kind: str,
    posting_date: str,
    dated_on: nullableStr,
    posting_policy: str,
    memo: str,
    outbox: { type: 'array', items: outboxRef },
  },
} as const;

const usage = {
  type: ['object', 'null'],
  description: 'The usage aggregate behind the line, recounted from exactly the events its rating run counted.',
  properties: {
    usage_ref: str,
    meter: str,
    event_type: str,
    aggregation: str,
    window: { type: 'object', properties: { from: str, to: str } },
    group_by: strings,
    customer: str,
    event_seq_watermark: str,
    includes_late_usage: { type: 'boolean' },
    quantity: str,
    event_count: { type: 'integer' },
    first_event_time: nullableStr,
    last_event_time: nullableStr,
    by_dimensions: {
      type: 'array',
      items: { type: 'object', properties: { dimensions: stringMap, quantity: str, event_count: { type: 'integer' } } },
    },
    by_dimensions_truncated: { type: 'boolean' },
    usage_batches: {
      type: 'array',
      items: { type: 'object', properties: { id: str, channel: nullableStr, received_at: nullableStr, events: { type: 'integer' } } },
    },
    usage_batch_count: { type: 'integer' },
    sample: {
      type: 'array',
      description: 'At most five of the counted events: those with the smallest SHA-256 of `source\\nid`, the same every time.',
      items: {
        type: 'object',
        properties: {
          source: str,
          id: str,
          seq: str,
          time: str,
          received_at: str,
          batch: str,
          late: { type: 'boolean' },
          value: nullableStr,
          dimensions: stringMap,
        },
      },
    },
    rated: { type: ['object', 'null'], properties: { quantity: str, event_count: { type: 'integer' } } },
    consistent: { type: 'boolean' },
  },
} as const;

const tier = {
  type: 'object',
  properties: { tier: { type: 'integer' }, from: str, up_to: nullableStr, quantity: str, unit_amount: str, flat_amount: str, amount: str },
} as const;

const line = {
  type: 'object',
  properties: {
    line_no: { type: 'integer' },
    kind: str,
    description: str,
    product: str,
    meter: nullableStr,
    quantity: str,
    unit_amount: nullableStr,
    amount: str,
    amount_minor: str,
    period: { type: 'object', properties: { start: str, end_inclusive: str } },
    price: {
      type: ['object', 'null'],
      properties: { id: str, version: str, plan: nullableStr, definition: { type: ['object', 'null'], additionalProperties: true } },
    },
    tiers: { type: 'array', items: tier },
    credit_grant: nullableStr,
    usage,
    note: nullableStr,
  },
} as const;

const invoiceExplanation = {
  type: 'object',
  properties: {
    invoice: {
      type: 'object',
      properties: {
        ...documentRef.properties,
        customer: str,
        customer_name: nullableStr,
        legal_entity: str,
        currency: str,
        period: str,
        period_start: str,
        period_end_inclusive: str,
        total: str,
        payment_status: str,
        amount_paid: str,
        finalized_at: nullableStr,
      },
    },
    corrects: { ...documentRef, type: ['object', 'null'] },
    corrected_by: { type: 'array', items: documentRef },
    late_usage: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          key: str,
          period: str,
          event_seq_watermark: str,
          corrected_invoice: str,
          credit_note: nullableStr,
          replacement: nullableStr,
          billed_in_period: str,
        },
      },
    },
    rating_run: {
      type: ['object', 'null'],
      properties: {
        id: str,
        period: str,
        catalog_version: { type: 'integer' },
        catalog_hash: str,
        event_seq_watermark: str,
        includes_late_usage: { type: 'boolean' },
        rated_at: str,
      },
    },
    lineage: {
      type: 'object',
      description: 'The chain from usage batches to ERP documents, under one correlation id (also sent as X-Accrue-Correlation).',
      properties: {
        correlation_id: str,
        correlation_stored: { type: 'boolean' },
        usage_batches: strings,
        usage_batch_count: { type: 'integer' },
        rating_run: nullableStr,
        invoice: str,
        invoice_number: nullableStr,
        journals: strings,
        outbox: strings,
        erp_documents: { type: 'array', items: { type: 'object', properties: { target: str, reference: str } } },
      },
    },
    lines: { type: 'array', items: line },
    journals: { type: 'array', items: journalRef },
  },
} as const;

const journalExplanation = {
  type: 'object',
  properties: {
    journal: {
      type: 'object',
      properties: { ...journalRef.properties, legal_entity: str, source_document: str, source_number: nullableStr },
    },
    payment: { type: ['object', 'null'], properties: { id: str, amount: str, received_on: str } },
    lines: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          line_no: { type: 'integer' },
          account: str,
          role: str,
          debit: str,
          credit: str,
          currency: str,
          customer: nullableStr,
          product: nullableStr,
          memo: nullableStr,
          invoice_lines: { type: 'array', items: { type: 'integer' } },
        },
      },
    },
    explained: {
      type: ['object', 'null'],
      properties: { journal_line: { type: 'integer' }, invoice_lines: { type: 'array', items: line } },
    },
    invoice: invoiceExplanation,
  },
} as const;

const eventExplanation = {
  type: 'object',
  properties: {
    event: {
      type: 'object',
      properties: {
        source: str,
        id: str,
        seq: str,
        type: str,
        subject: str,
        customer: str,
        time: str,
        received_at: str,
        late: { type: 'boolean' },
        meter_values: stringMap,
        dimensions: { type: 'object', additionalProperties: stringMap },
      },
    },
    usage_batch: {
      type: ['object', 'null'],
      properties: { id: str, channel: str, received_at: str, received: { type: 'integer' }, accepted: { type: 'integer' } },
    },
    billed_in: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          invoice: documentRef,
          line_no: { type: 'integer' },
          meter: str,
          window: { type: 'object', properties: { from: str, to: str } },
          rating_run: str,
          event_seq_watermark: str,
          correlation_id: str,
          reversed_by: { type: 'array', items: documentRef },
          journals: { type: 'array', items: journalRef },
        },
      },
    },
    billed_in_truncated: { type: 'boolean' },
    status: { type: 'string', enum: ['billed', 'rerated_unchanged', 'late_pending', 'not_yet_billed', 'not_billed'] },
    note: str,
  },
} as const;

// A string: the server's validator does not coerce types, and query values arrive as text.
const LineQuery = Type.Object(
  { line: Type.Optional(integerString(1n, 999_999n, 'explain only this line (1, 2, …)')) },
  { additionalProperties: false },
);
const lineOf = (line: string | undefined) => ({ line: line === undefined ? undefined : Number.parseInt(line, 10) });

/** not_found and ambiguous are 404 and 409; a line that does not exist is 404 too. */
function explainProblem(problems: Problem[]) {
  const first = problems[0]!;
  const status = first.code === 'ambiguous' ? 409 : first.code === 'not_found' || first.code === 'no_such_line' ? 404 : 400;
  return problemDetails(status, first.code, first.message, problems);
}

const errors = { 400: problemRef(), 404: problemRef(), 409: problemRef() };

export const explainRoutes: RoutePlugin = async (app, { pool }) => {
  app.get(
    '/v1/invoices/:id/explain',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Explain an invoice or credit note down to the usage events',
        description:
          'By id, number or correlation id. Each line: its rating run, price version, tiers applied, usage aggregate (meter, window, dimensions, quantity) and the events counted (count, first and last time, batches, a deterministic sample), then the journals, outbox rows and ERP references.',
        tags: ['explain'],
        params: Type.Object({ id: idString('an invoice or credit note id, number or correlation id') }, { additionalProperties: false }),
        querystring: LineQuery,
        response: { 200: Type.Unsafe<object>(invoiceExplanation), ...errors },
      },
    },
    async (request) => valueOr(await explainInvoice(pool, request.params.id, lineOf(request.query.line)), explainProblem),
  );

  app.get(
    '/v1/journals/:id/explain',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Explain a journal: its source document and the invoice lines behind each journal line',
        description:
          'By journal id, outbox key or ERP reference. With `line`, that journal line is explained down to the usage events of the invoice lines it carries.',
        tags: ['explain'],
        params: Type.Object({ id: idString('a journal id, outbox key or ERP reference') }, { additionalProperties: false }),
        querystring: LineQuery,
        response: { 200: Type.Unsafe<object>(journalExplanation), ...errors },
      },
    },
    async (request) => valueOr(await explainJournal(pool, request.params.id, lineOf(request.query.line)), explainProblem),
  );

  app.get(
    '/v1/events/explain',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Walk forward from a usage event to the invoices, journals and ERP documents that carry it',
        tags: ['explain'],
        querystring: Type.Object(
          { source: idString('the CloudEvents source', { maxLength: INGEST_LIMITS.sourceLengthMax }), id: idString('the CloudEvents id') },
          { additionalProperties: false },
        ),
        response: { 200: Type.Unsafe<object>(eventExplanation), ...errors },
      },
    },
    async (request) => valueOr(await explainEvent(pool, request.query.source, request.query.id), explainProblem),
  );
};
