// What a reconciliation run reports: per checkpoint, the sides compared and each difference with its documents.
import { invariant } from '../domain/result.js';
import { checkpointById, compareSides, type CheckpointId, type Difference, type OwnerQueue, type ReconKey } from './checkpoints.js';
import { amountText, keyText, type DocumentRef, type Sides } from './sides.js';

/** Limit (TigerStyle): differences one checkpoint may record in one run; more means something upstream is broken wholesale. */
export const DIFFERENCES_PER_CHECKPOINT_MAX = 10_000;

export interface DifferenceReport {
  exception_id: string;
  kind: Difference['kind'];
  key: ReconKey;
  left: string | null;
  right: string | null;
  difference: string;
  occurrences: Difference['occurrences'];
  documents: DocumentRef[];
  /** Opened by this run (false: it was already there, or nothing was recorded). */
  opened: boolean;
  status: string | null;
}

export interface CheckpointReport {
  checkpoint: CheckpointId;
  legal_entity: string;
  connector: string | null;
  owner_queue: OwnerQueue;
  description: string;
  status: 'green' | 'red';
  compared: { left: number; right: number };
  /** ERP connectors: documents still waiting in the outbox, left out of the comparison until posted or dead. */
  pending: number;
  differences: DifferenceReport[];
}

export interface ClearedException {
  id: string;
  checkpoint: string;
  legal_entity: string;
  item: string;
  status: string;
}

export interface ReconcileReport {
  period: string;
  legal_entities: string[];
  connectors: string[];
  recorded: boolean;
  status: 'green' | 'red';
  checkpoints: CheckpointReport[];
  opened: string[];
  /** Exceptions whose difference a run no longer finds: still open until a person resolves or waives them. */
  cleared: ClearedException[];
  /** Open and assigned exceptions of the period, per legal entity and queue (settlement's included). */
  open_exceptions: Array<{ legal_entity: string; owner_queue: string; open: number; assigned: number }>;
}

/** One checkpoint compared: the report and the core's differences, in the same order. */
export interface CheckpointResult {
  report: CheckpointReport;
  differences: Difference[];
}

/** Compares the two sides of one checkpoint with the pure core and reports each difference with its documents. */
export function checkpointReport(checkpoint: CheckpointId, entity: string, connector: string | null, sides: Sides): CheckpointResult {
  const differences = compareSides(checkpoint, sides.left, sides.right, connector === null ? {} : { connector });
  invariant(
    differences.length <= DIFFERENCES_PER_CHECKPOINT_MAX,
    `${checkpoint} found ${differences.length} differences for ${entity}; more than ${DIFFERENCES_PER_CHECKPOINT_MAX} means a stage failed wholesale`,
  );
  const definition = checkpointById(checkpoint);
  return {
    differences,
    report: {
      checkpoint,
      legal_entity: entity,
      connector,
      owner_queue: definition.owner_queue,
      description: definition.description,
      status: differences.length === 0 ? 'green' : 'red',
      compared: { left: sides.left.length, right: sides.right.length },
      pending: sides.pending,
      differences: differences.map((d) => ({
        exception_id: d.exception_id,
        kind: d.kind,
        key: d.key,
        left: amountText(d.left),
        right: amountText(d.right),
        difference: amountText(d.difference)!,
        occurrences: d.occurrences,
        documents: sides.documents.get(keyText(d.key)) ?? [],
        opened: false,
        status: null,
      })),
    },
  };
}
