// OpenTelemetry traces across the pipeline: ingest, rating, invoicing and posting each open a span through `inSpan`.
// Without a registered provider the API hands out non-recording spans, so the calls cost next to nothing; `startTracing`
// registers one that exports over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set.
import { SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';

export const TRACER_NAME = 'accrue';

/** Span names, one per pipeline step, so a trace view reads like the pipeline. */
export const SPANS = {
  ingestBatch: 'accrue.ingest.batch',
  closePeriod: 'accrue.invoice.close_period',
  rateCustomer: 'accrue.rate.customer',
  finalizeBatch: 'accrue.invoice.finalize_batch',
  finalize: 'accrue.invoice.finalize',
  correctLateUsage: 'accrue.invoice.correct_late_usage',
  outboxPost: 'accrue.post.outbox_row',
} as const;

/** Span attributes that carry the correlation of docs/explain.md, named once. */
export const ATTRIBUTES = {
  correlation: 'accrue.correlation_id',
  ratingRun: 'accrue.rating_run',
  invoice: 'accrue.invoice',
  invoiceNumber: 'accrue.invoice_number',
  customer: 'accrue.customer',
  legalEntity: 'accrue.legal_entity',
  period: 'accrue.period',
  batch: 'accrue.usage_batch',
  connector: 'accrue.connector',
  outboxKey: 'accrue.outbox_key',
  journal: 'accrue.journal',
} as const;

/** Correlation fields as a log line carries them (`documentLogFields`, an outbox chain) turned into span attributes. */
export function correlationAttributes(fields: {
  correlation?: string | null;
  rating_run?: string | null;
  invoice?: string | null;
  number?: string | null;
  customer?: string | null;
  journal?: string | null;
  outbox?: string | null;
}): Attributes {
  const pairs: Array<[string, string | null | undefined]> = [
    [ATTRIBUTES.correlation, fields.correlation],
    [ATTRIBUTES.ratingRun, fields.rating_run],
    [ATTRIBUTES.invoice, fields.invoice],
    [ATTRIBUTES.invoiceNumber, fields.number],
    [ATTRIBUTES.customer, fields.customer],
    [ATTRIBUTES.journal, fields.journal],
    [ATTRIBUTES.outboxKey, fields.outbox],
  ];
  return Object.fromEntries(pairs.filter((p): p is [string, string] => typeof p[1] === 'string'));
}

/**
 * Runs `work` inside a span that is the active one for everything it awaits (child spans, log lines with trace ids).
 * An exception is recorded on the span and rethrown; the span always ends.
 */
export function inSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T> {
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The active span's ids, for log lines; empty when nothing records. */
export function traceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan();
  if (!span || !span.isRecording()) return {};
  const context = span.spanContext();
  return { trace_id: context.traceId, span_id: context.spanId };
}

export interface Tracing {
  /** Whether spans are recorded and exported. */
  enabled: boolean;
  /** Flushes what is buffered and stops exporting; call before the process exits. */
  shutdown(): Promise<void>;
}

const DISABLED: Tracing = { enabled: false, shutdown: async () => undefined };

/**
 * Registers the tracer provider once per process. `exporter` (tests) is used as given with a simple processor;
 * otherwise OTLP/HTTP with batching when an endpoint is configured, nothing when none is. The exporter reads the
 * standard OTEL_EXPORTER_OTLP_* variables itself (endpoint, headers, timeout).
 */
export function startTracing(options: { exporter?: SpanExporter; env?: NodeJS.ProcessEnv } = {}): Tracing {
  const env = options.env ?? process.env;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!options.exporter && (!endpoint || env.OTEL_SDK_DISABLED === 'true')) return DISABLED;
  const processor = options.exporter ? new SimpleSpanProcessor(options.exporter) : new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? 'accrue' }),
    spanProcessors: [processor],
  });
  provider.register();
  return {
    enabled: true,
    async shutdown() {
      await provider.shutdown();
    },
  };
}
