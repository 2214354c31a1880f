// What a close of a period takes and gives back, and the statuses of its refusals.
import type { Invoice } from '../domain/model.js';
import { type RolloutScope } from '../post/rollout.js';
import type { LogLine } from '../post/correlation.js';
import type { CheckpointOutcome, CheckpointSink } from '../audit/checkpoints.js';

export interface CloseOutcome {
  period: string;
  event_seq_watermark: string;
  invoices: Invoice[];
  /** Late usage for earlier closed periods: a credit note against the invoice in force and its replacement. */
  corrections: Array<{ period: string; customer: string; corrected: Invoice; credit_note: Invoice | null; replacement: Invoice | null }>;
  /** The period was left `closing` by an earlier run (failed, killed or still running) and this run took it up. */
  resumed: boolean;
  /** Closed before the period ended (`early`). */
  early: boolean;
  /** The signed checkpoint of the audit chain written after the close committed, or why none was (set by closePeriod). */
  audit_checkpoint?: CheckpointOutcome;
}

export interface CloseOptions {
  period: string;
  legalEntity?: string;
  erpTargets?: string[];
  by?: string;
  rollout?: RolloutScope;
  log?: LogLine;
  progress?: (done: number, total: number, note: string) => void;
  /** The clock the period's end is judged by (default: the wall clock). */
  now?: Date;
  /** Close a period that has begun but not ended yet; recorded in the audit log. A future period is always refused. */
  early?: boolean;
  /** Where a signed checkpoint of the audit chain goes once the close committed; without it none is signed. */
  checkpoint?: CheckpointSink;
}

/** Status of a refused close: the period has not ended (without `early`) or has not begun. */
export const CLOSE_REFUSED_STATUS = 409;
/** Status of a close that found an invoice the store cannot hold (docs/pricing.md#limits). */
export const CLOSE_UNBILLABLE_STATUS = 422;
