// Explain over HTTP: an invoice or journal traced back to its usage events, an event walked forward to the ERP.
import { Type } from 'typebox';
import type { Problem } from '../../domain/result.js';
import { explainEvent } from '../../explain/explain-event.js';
import { explainInvoice } from '../../explain/explain-invoice.js';
import { explainJournal } from '../../explain/explain-journal.js';
import { problemDetails, problemRef, valueOr } from '../problem.js';
import { INGEST_LIMITS } from '../../ingest/cloudevent.js';
import { idString, integerString, nullableObject, nullableString, stringEnum } from '../params.js';
import type { RoutePlugin } from '../route-support.js';
import { currentCatalog } from '../../catalog/service.js';
import { hideUnlessVisible, scopeEntities } from '../entity-scope.js';

const StringMap = Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' } });

const DocumentRef = Type.Object({
  id: Type.String(),
  number: nullableString(),
  kind: stringEnum(['invoice', 'credit_note']),
  status: Type.String(),
});

const OutboxRef = Type.Object({
  key: Type.Optional(Type.String()),
  target: Type.Optional(Type.String()),
  journal: Type.Optional(Type.String()),
  status: Type.Optional(Type.String()),
  attempts: Type.Optional(Type.Integer()),
  erp_document: Type.Optional(nullableString()),
  posted_at: Type.Optional(nullableString()),
  last_error: Type.Optional(nullableString()),
});

const JournalRef = Type.Object({
  id: Type.Optional(Type.String()),
  kind: Type.Optional(Type.String()),
  posting_date: Type.Optional(Type.String()),
  dated_on: Type.Optional(nullableString()),
  posting_policy: Type.Optional(Type.String()),
  memo: Type.Optional(Type.String()),
  outbox: Type.Optional(Type.Array(OutboxRef)),
});

const Usage = nullableObject(
  Type.Object(
    {
      usage_ref: Type.Optional(Type.String()),
      meter: Type.Optional(Type.String()),
      event_type: Type.Optional(Type.String()),
      aggregation: Type.Optional(Type.String()),
      window: Type.Optional(Type.Object({ from: Type.Optional(Type.String()), to: Type.Optional(Type.String()) })),
      group_by: Type.Optional(Type.Array(Type.String())),
      customer: Type.Optional(Type.String()),
      event_seq_watermark: Type.Optional(Type.String()),
      includes_late_usage: Type.Optional(Type.Boolean()),
      quantity: Type.Optional(Type.String()),
      event_count: Type.Optional(Type.Integer()),
      first_event_time: Type.Optional(nullableString()),
      last_event_time: Type.Optional(nullableString()),
      by_dimensions: Type.Optional(
        Type.Array(
          Type.Object({
            dimensions: Type.Optional(StringMap),
            quantity: Type.Optional(Type.String()),
            event_count: Type.Optional(Type.Integer()),
          }),
        ),
      ),
      by_dimensions_truncated: Type.Optional(Type.Boolean()),
      usage_batches: Type.Optional(
        Type.Array(
          Type.Object({
            id: Type.Optional(Type.String()),
            channel: Type.Optional(nullableString()),
            received_at: Type.Optional(nullableString()),
            events: Type.Optional(Type.Integer()),
          }),
        ),
      ),
      usage_batch_count: Type.Optional(Type.Integer()),
      sample: Type.Optional(
        Type.Array(
          Type.Object({
            source: Type.Optional(Type.String()),
            id: Type.Optional(Type.String()),
            seq: Type.Optional(Type.String()),
            time: Type.Optional(Type.String()),
            received_at: Type.Optional(Type.String()),
            batch: Type.Optional(Type.String()),
            late: Type.Optional(Type.Boolean()),
            value: Type.Optional(nullableString()),
            dimensions: Type.Optional(StringMap),
          }),
          { description: 'At most five of the counted events: those with the smallest SHA-256 of `source\\nid`, the same every time.' },
        ),
      ),
      rated: Type.Optional(
        nullableObject(Type.Object({ quantity: Type.Optional(Type.String()), event_count: Type.Optional(Type.Integer()) })),
      ),
      consistent: Type.Optional(Type.Boolean()),
    },
    { description: 'The usage aggregate behind the line, recounted from exactly the events its rating run counted.' },
  ),
);

const Tier = Type.Object({
  tier: Type.Optional(Type.Integer()),
  from: Type.Optional(Type.String()),
  up_to: Type.Optional(nullableString()),
  quantity: Type.Optional(Type.String()),
  unit_amount: Type.Optional(Type.String()),
  flat_amount: Type.Optional(Type.String()),
  amount: Type.Optional(Type.String()),
});

const Line = Type.Object({
  line_no: Type.Optional(Type.Integer()),
  kind: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  product: Type.Optional(Type.String()),
  meter: Type.Optional(nullableString()),
  quantity: Type.Optional(Type.String()),
  unit_amount: Type.Optional(nullableString()),
  amount: Type.Optional(Type.String()),
  amount_minor: Type.Optional(Type.String()),
  period: Type.Optional(Type.Object({ start: Type.Optional(Type.String()), end_inclusive: Type.Optional(Type.String()) })),
  price: Type.Optional(
    nullableObject(
      Type.Object({
        id: Type.Optional(Type.String()),
        version: Type.Optional(Type.String()),
        plan: Type.Optional(nullableString()),
        definition: Type.Optional(Type.Unsafe({ type: ['object', 'null'], additionalProperties: true })),
      }),
    ),
  ),
  tiers: Type.Optional(Type.Array(Tier)),
  credit_grant: Type.Optional(nullableString()),
  usage: Type.Optional(Usage),
  note: Type.Optional(nullableString()),
});

const InvoiceExplanation = Type.Object({
  invoice: Type.Optional(
    Type.Object({
      id: Type.Optional(Type.String()),
      number: Type.Optional(nullableString()),
      kind: Type.Optional(stringEnum(['invoice', 'credit_note'])),
      status: Type.Optional(Type.String()),
      customer: Type.Optional(Type.String()),
      customer_name: Type.Optional(nullableString()),
      legal_entity: Type.Optional(Type.String()),
      currency: Type.Optional(Type.String()),
      period: Type.Optional(Type.String()),
      period_start: Type.Optional(Type.String()),
      period_end_inclusive: Type.Optional(Type.String()),
      total: Type.Optional(Type.String()),
      payment_status: Type.Optional(Type.String()),
      amount_paid: Type.Optional(Type.String()),
      finalized_at: Type.Optional(nullableString()),
    }),
  ),
  corrects: Type.Optional(nullableObject(DocumentRef)),
  corrected_by: Type.Optional(Type.Array(DocumentRef)),
  late_usage: Type.Optional(
    Type.Array(
      Type.Object({
        key: Type.Optional(Type.String()),
        period: Type.Optional(Type.String()),
        event_seq_watermark: Type.Optional(Type.String()),
        corrected_invoice: Type.Optional(Type.String()),
        credit_note: Type.Optional(nullableString()),
        replacement: Type.Optional(nullableString()),
        billed_in_period: Type.Optional(Type.String()),
      }),
    ),
  ),
  rating_run: Type.Optional(
    nullableObject(
      Type.Object({
        id: Type.Optional(Type.String()),
        period: Type.Optional(Type.String()),
        catalog_version: Type.Optional(Type.Integer()),
        catalog_hash: Type.Optional(Type.String()),
        event_seq_watermark: Type.Optional(Type.String()),
        includes_late_usage: Type.Optional(Type.Boolean()),
        rated_at: Type.Optional(Type.String()),
      }),
    ),
  ),
  lineage: Type.Optional(
    Type.Object(
      {
        correlation_id: Type.Optional(Type.String()),
        correlation_stored: Type.Optional(Type.Boolean()),
        usage_batches: Type.Optional(Type.Array(Type.String())),
        usage_batch_count: Type.Optional(Type.Integer()),
        rating_run: Type.Optional(nullableString()),
        invoice: Type.Optional(Type.String()),
        invoice_number: Type.Optional(nullableString()),
        journals: Type.Optional(Type.Array(Type.String())),
        outbox: Type.Optional(Type.Array(Type.String())),
        erp_documents: Type.Optional(
          Type.Array(Type.Object({ target: Type.Optional(Type.String()), reference: Type.Optional(Type.String()) })),
        ),
      },
      { description: 'The chain from usage batches to ERP documents, under one correlation id (also sent as X-Accrue-Correlation).' },
    ),
  ),
  lines: Type.Optional(Type.Array(Line)),
  journals: Type.Optional(Type.Array(JournalRef)),
});

const JournalExplanation = Type.Object({
  journal: Type.Optional(
    Type.Object({
      id: Type.Optional(Type.String()),
      kind: Type.Optional(Type.String()),
      posting_date: Type.Optional(Type.String()),
      dated_on: Type.Optional(nullableString()),
      posting_policy: Type.Optional(Type.String()),
      memo: Type.Optional(Type.String()),
      outbox: Type.Optional(Type.Array(OutboxRef)),
      legal_entity: Type.Optional(Type.String()),
      source_document: Type.Optional(Type.String()),
      source_number: Type.Optional(nullableString()),
    }),
  ),
  payment: Type.Optional(
    nullableObject(
      Type.Object({ id: Type.Optional(Type.String()), amount: Type.Optional(Type.String()), received_on: Type.Optional(Type.String()) }),
    ),
  ),
  lines: Type.Optional(
    Type.Array(
      Type.Object({
        line_no: Type.Optional(Type.Integer()),
        account: Type.Optional(Type.String()),
        role: Type.Optional(Type.String()),
        debit: Type.Optional(Type.String()),
        credit: Type.Optional(Type.String()),
        currency: Type.Optional(Type.String()),
        customer: Type.Optional(nullableString()),
        product: Type.Optional(nullableString()),
        memo: Type.Optional(nullableString()),
        invoice_lines: Type.Optional(Type.Array(Type.Integer())),
      }),
    ),
  ),
  explained: Type.Optional(
    nullableObject(Type.Object({ journal_line: Type.Optional(Type.Integer()), invoice_lines: Type.Optional(Type.Array(Line)) })),
  ),
  invoice: Type.Optional(InvoiceExplanation),
});

const EventExplanation = Type.Object({
  event: Type.Optional(
    Type.Object({
      source: Type.Optional(Type.String()),
      id: Type.Optional(Type.String()),
      seq: Type.Optional(Type.String()),
      type: Type.Optional(Type.String()),
      subject: Type.Optional(Type.String()),
      customer: Type.Optional(Type.String()),
      time: Type.Optional(Type.String()),
      received_at: Type.Optional(Type.String()),
      late: Type.Optional(Type.Boolean()),
      meter_values: Type.Optional(StringMap),
      dimensions: Type.Optional(
        Type.Unsafe<Record<string, unknown>>({
          type: 'object',
          additionalProperties: { type: 'object', additionalProperties: { type: 'string' } },
        }),
      ),
    }),
  ),
  usage_batch: Type.Optional(
    nullableObject(
      Type.Object({
        id: Type.Optional(Type.String()),
        channel: Type.Optional(Type.String()),
        received_at: Type.Optional(Type.String()),
        received: Type.Optional(Type.Integer()),
        accepted: Type.Optional(Type.Integer()),
      }),
    ),
  ),
  billed_in: Type.Optional(
    Type.Array(
      Type.Object({
        invoice: Type.Optional(DocumentRef),
        line_no: Type.Optional(Type.Integer()),
        meter: Type.Optional(Type.String()),
        window: Type.Optional(Type.Object({ from: Type.Optional(Type.String()), to: Type.Optional(Type.String()) })),
        rating_run: Type.Optional(Type.String()),
        event_seq_watermark: Type.Optional(Type.String()),
        correlation_id: Type.Optional(Type.String()),
        reversed_by: Type.Optional(Type.Array(DocumentRef)),
        journals: Type.Optional(Type.Array(JournalRef)),
      }),
    ),
  ),
  billed_in_truncated: Type.Optional(Type.Boolean()),
  status: Type.Optional(stringEnum(['billed', 'rerated_unchanged', 'late_pending', 'not_yet_billed', 'not_billed'])),
  note: Type.Optional(Type.String()),
});

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
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'Explain an invoice or credit note down to the usage events',
        description:
          'By id, number or correlation id. Each line: its rating run, price version, tiers applied, usage aggregate (meter, window, dimensions, quantity) and the events counted (count, first and last time, batches, a deterministic sample), then the journals, outbox rows and ERP references.',
        tags: ['explain'],
        params: Type.Object({ id: idString('an invoice or credit note id, number or correlation id') }, { additionalProperties: false }),
        querystring: LineQuery,
        response: { 200: InvoiceExplanation, ...errors },
      },
    },
    async (request) =>
      valueOr(
        await explainInvoice(pool, request.params.id, { ...lineOf(request.query.line), entities: scopeEntities(request) }),
        explainProblem,
      ),
  );

  app.get(
    '/v1/journals/:id/explain',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'Explain a journal: its source document and the invoice lines behind each journal line',
        description:
          'By journal id, outbox key or ERP reference. With `line`, that journal line is explained down to the usage events of the invoice lines it carries.',
        tags: ['explain'],
        params: Type.Object({ id: idString('a journal id, outbox key or ERP reference') }, { additionalProperties: false }),
        querystring: LineQuery,
        response: { 200: JournalExplanation, ...errors },
      },
    },
    async (request) => {
      const { id } = request.params;
      const explained = valueOr(
        await explainJournal(pool, id, { ...lineOf(request.query.line), entities: scopeEntities(request) }),
        explainProblem,
      );
      // Another entity's journal does not exist for a key limited to entities: the same answer as an unknown reference.
      hideUnlessVisible(request, explained.journal.legal_entity, `no journal, outbox key or ERP reference ${JSON.stringify(id)}`);
      return explained;
    },
  );

  app.get(
    '/v1/events/explain',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'Walk forward from a usage event to the invoices, journals and ERP documents that carry it',
        tags: ['explain'],
        querystring: Type.Object(
          { source: idString('the CloudEvents source', { maxLength: INGEST_LIMITS.sourceLengthMax }), id: idString('the CloudEvents id') },
          { additionalProperties: false },
        ),
        response: { 200: EventExplanation, ...errors },
      },
    },
    async (request) => {
      const { source, id } = request.query;
      const explained = valueOr(await explainEvent(pool, source, id), explainProblem);
      // An event belongs to its customer's legal entity (the catalog in force); another entity's event does not exist here.
      if (scopeEntities(request)) {
        const entity = (await currentCatalog(pool))?.index.customers.get(explained.event.customer)?.legal_entity;
        hideUnlessVisible(request, entity, `no accepted event with source ${JSON.stringify(source)} and id ${JSON.stringify(id)}`);
      }
      return explained;
    },
  );
};
