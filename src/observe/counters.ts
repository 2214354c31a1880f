// Counters for events that happen in this process only and leave no row behind (a failed request to an ERP that
// is retried later). GET /metrics serves them beside the gauges read from the store; a worker process that wants
// them scraped runs beside `accrue serve` in the same process or is read from its own logs.
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { Counter, Registry } from 'prom-client';

export const processRegistry = new Registry();

const erpCallFailures = new Counter({
  name: 'accrue_erp_call_failures_total',
  help: 'Requests to an ERP connector that failed in this process, by connector and whether the failure is permanent (dead-lettered at once) or transient (retried).',
  labelNames: ['connector', 'kind'],
  registers: [processRegistry],
});

/** Counts a failed ERP call and marks the active span (the outbox row's) as failed. */
export function recordErpFailure(connector: string, permanent: boolean, error: unknown): void {
  erpCallFailures.inc({ connector, kind: permanent ? 'permanent' : 'transient' });
  const span = trace.getActiveSpan();
  span?.recordException(error as Error);
  span?.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
}
