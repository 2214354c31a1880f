// Closing a period, the use case that spans rating, invoicing and posting: begin (watermark), rate and finalize,
// correct late usage of earlier periods, finish (late events flagged, period closed). Every step is keyed, so a
// re-run on the same inputs returns the same documents.
import { billingRunSubject } from '../domain/keys.js';
import { CLOSE_REFUSED_STATUS, type CloseOptions, type CloseOutcome } from './types.js';
import { beginClose, periodTiming } from './period-state.js';
import { rateAndFinalize } from './finalize.js';
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { ProblemError } from '../domain/result.js';
import { parsePeriod } from '../meter/period.js';
import { transaction } from '../store/store.js';
import { appendAudit } from '../audit/log.js';
import { checkpointAfterClose } from '../audit/checkpoints.js';
import { checkRolloutScope } from '../post/rollout.js';
import { ATTRIBUTES, SPANS, inSpan } from '../observe/tracing.js';

/** A close that failed after it began (an I/O failure, a bug): nothing was closed, and the message says how to go on. */
export class CloseFailedError extends Error {
  /** What happened to the period, without the cause's text (for an HTTP answer). */
  readonly summary: string;
  constructor(
    readonly period: string,
    readonly reason: unknown,
  ) {
    const summary = `close of ${period} failed, nothing was closed: the period stays open (closing, its events are not late) and a new close of ${period} resumes it`;
    super(`${summary}. ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
    this.summary = summary;
    this.name = 'CloseFailedError';
  }
}

/** `rollout` limits which documents reach `erpTargets`; the others are journaled and recorded as held back (src/post/rollout.ts). */
export function closePeriod(pool: pg.Pool, catalog: CatalogVersion, options: CloseOptions): Promise<CloseOutcome> {
  return inSpan(
    SPANS.closePeriod,
    { [ATTRIBUTES.period]: String(options.period), ...(options.legalEntity ? { [ATTRIBUTES.legalEntity]: options.legalEntity } : {}) },
    async (span) => {
      const outcome = await closePeriodUntraced(pool, catalog, options);
      span.setAttributes({
        'accrue.event_seq_watermark': outcome.event_seq_watermark,
        'accrue.invoices': outcome.invoices.length,
        'accrue.corrections': outcome.corrections.length,
      });
      return outcome;
    },
  );
}

async function closePeriodUntraced(pool: pg.Pool, catalog: CatalogVersion, options: CloseOptions): Promise<CloseOutcome> {
  const parsed = parsePeriod(options.period);
  if (!parsed.ok) throw new ProblemError(parsed.problems);
  const scope = options.rollout ? checkRolloutScope(options.rollout, catalog) : null;
  if (scope && !scope.ok) throw new ProblemError(scope.problems);
  const window = parsed.value;
  const entities = catalog.catalog.legal_entities.map((e) => e.id).filter((id) => !options.legalEntity || id === options.legalEntity);
  if (entities.length === 0)
    throw new ProblemError([{ path: 'legal_entity', code: 'unknown', message: `no legal entity ${options.legalEntity}` }]);
  const by = options.by ?? 'system:billing-run';
  const now = options.now ?? new Date();
  const timing = periodTiming(window, now, options.early === true);
  if ('refused' in timing) {
    await transaction(pool, (client) =>
      appendAudit(client, {
        actor: by,
        action: 'billing_run.close_refused',
        subject: billingRunSubject(window.period, entities),
        reason: timing.refused.message,
        details: {
          period: window.period,
          legal_entities: entities,
          code: timing.refused.code,
          now: now.toISOString(),
          early: options.early === true,
        },
      }),
    );
    throw new ProblemError([timing.refused], CLOSE_REFUSED_STATUS);
  }
  const start = await beginClose(pool, entities, window.period, { by, early: timing.early, now });
  if (start.resumed)
    options.log?.({
      level: 'warn',
      msg: 'resuming a close that did not finish',
      period: window.period,
      closing_since: start.closingSince,
      event_seq_watermark: start.watermark,
    });
  let outcome: CloseOutcome;
  try {
    outcome = await rateAndFinalize(pool, catalog, options, { window, entities, by, start, early: timing.early });
  } catch (error) {
    options.log?.({
      level: 'error',
      msg: 'close failed, nothing was closed',
      period: window.period,
      error: error instanceof Error ? error.message : String(error),
    });
    if (error instanceof ProblemError) {
      throw new ProblemError(
        [
          ...error.problems,
          {
            path: 'period',
            code: 'close_failed',
            message: `nothing was closed: period ${window.period} stays open (closing, its events are not late); a new close of ${window.period} resumes it`,
          },
        ],
        error.status,
      );
    }
    throw new CloseFailedError(window.period, error);
  }
  // The close committed: anchor the audit chain outside the database (src/audit/checkpoints.ts). A checkpoint that
  // fails does not undo the close; the outcome says so and the command reports it.
  return { ...outcome, audit_checkpoint: await checkpointAfterClose(pool, options.checkpoint) };
}

// The use case's public face: what callers of a close need comes from here.
export { CLOSE_REFUSED_STATUS, CLOSE_UNBILLABLE_STATUS, type CloseOptions, type CloseOutcome } from './types.js';
export { periodTiming } from './period-state.js';
export { FINALIZE_BATCH, RATING_CONCURRENCY } from './finalize.js';
