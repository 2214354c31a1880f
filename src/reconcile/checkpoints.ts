// Reconciliation checkpoints: each compares two sides of one hand-off in the pipeline, keyed by
// (legal_entity, customer, currency, item), and turns every disagreement into a Difference with a deterministic
// exception id, so that re-running reconciliation on the same state opens nothing new. Pure: no I/O.
// The checkpoints, queues and the exception lifecycle are described in docs/reconciliation.md.
import { contentHash } from '../domain/canonical.js';
import type { TrialBalanceRow } from '../domain/journal.js';
import { Decimal, decimalText, isCurrency, parseDecimal } from '../domain/money.js';
import { fail, invariant, ok, problem, type Problem, type Result } from '../domain/result.js';

export const EXCEPTION_ID_VERSION = 'v1';
/** Limits (TigerStyle): one side of one checkpoint run holds at most this many entries. */
export const SIDE_ENTRIES_MAX = 5_000_000;

export type CheckpointId =
  | 'usage_events_vs_aggregates'
  | 'aggregates_vs_rated'
  | 'rated_vs_invoice_lines'
  | 'invoices_vs_erp_postings'
  | 'tax_vs_erp'
  | 'payments_vs_receivable'
  | 'trial_balance';

export type OwnerQueue = 'billing_engineering' | 'integration_support' | 'finance_operations';

export interface Checkpoint {
  id: CheckpointId;
  description: string;
  owner_queue: OwnerQueue;
  /** What each side holds, and what the `item` part of the key names. */
  left: string;
  right: string;
  item: string;
  /** `quantity`: exact decimals (currency is '' when it does not apply); `money`: bigint minor units. */
  value: 'quantity' | 'money';
  /** Runs once per ERP connector; the connector is part of every difference and exception id. */
  per_connector: boolean;
}

export const CHECKPOINTS: readonly Checkpoint[] = [
  {
    id: 'usage_events_vs_aggregates',
    description: 'Accepted usage events, summed per meter and window, equal the stored usage aggregates.',
    owner_queue: 'billing_engineering',
    left: 'accepted usage events (quantity)',
    right: 'usage aggregates (quantity)',
    item: 'meter and window',
    value: 'quantity',
    per_connector: false,
  },
  {
    id: 'aggregates_vs_rated',
    description: 'Every usage aggregate of a billing period is rated, at its full quantity.',
    owner_queue: 'billing_engineering',
    left: 'usage aggregates (quantity)',
    right: 'rated charges (quantity)',
    item: 'meter and period',
    value: 'quantity',
    per_connector: false,
  },
  {
    id: 'rated_vs_invoice_lines',
    description: 'Rated charges reach the invoice lines unchanged.',
    owner_queue: 'billing_engineering',
    left: 'rated charges (minor units)',
    right: 'invoice lines (minor units)',
    item: 'price and period',
    value: 'money',
    per_connector: false,
  },
  {
    id: 'invoices_vs_erp_postings',
    description: 'Every finalized invoice and credit note is posted to each ERP connector exactly once, for its total.',
    owner_queue: 'integration_support',
    left: 'finalized documents (total, minor units)',
    right: 'documents posted in the ERP (minor units)',
    item: 'document id',
    value: 'money',
    per_connector: true,
  },
  {
    id: 'tax_vs_erp',
    description:
      'Each invoice and credit note an ERP holds in its own form carries the tax Accrue computed; where the ERP computes ' +
      'its own, a difference is a tax mismatch.',
    owner_queue: 'finance_operations',
    left: "Accrue's tax on the document (minor units)",
    right: "the ERP's tax on the document (minor units)",
    item: 'document journal id',
    value: 'money',
    per_connector: true,
  },
  {
    id: 'payments_vs_receivable',
    description: 'Payments received equal the receivable cleared in the ledger, per invoice.',
    owner_queue: 'finance_operations',
    left: 'payments received (minor units)',
    right: 'receivable credited in the ledger (minor units)',
    item: 'invoice id',
    value: 'money',
    per_connector: false,
  },
  {
    id: 'trial_balance',
    description: "The ledger's trial balance equals the balances Accrue's journals imply, and each entity's balances net to zero.",
    owner_queue: 'finance_operations',
    left: "balances implied by Accrue's journals (debit - credit, minor units)",
    right: "the ledger's trial balance (debit - credit, minor units)",
    item: 'account, or (net) for the sum of all accounts',
    value: 'money',
    per_connector: false,
  },
];

export const CHECKPOINT_IDS: readonly CheckpointId[] = CHECKPOINTS.map((c) => c.id);

export function checkpointById(id: CheckpointId): Checkpoint {
  const found = CHECKPOINTS.find((c) => c.id === id);
  invariant(found !== undefined, `unknown checkpoint ${String(id)}`);
  return found;
}

// ---------- comparing sides ----------

export interface ReconKey {
  legal_entity: string;
  customer: string; // '' where the checkpoint is not per customer (trial balance)
  currency: string; // '' where no currency applies (usage quantities)
  item: string; // checkpoint-specific: meter and window, document id, account...
}

/** Money is bigint minor units; a quantity is an exact decimal (string or Decimal; differences carry strings). */
export type Amount = bigint | string;
export type SideEntry = readonly [ReconKey, bigint | string | Decimal];
/** One side: an array of entries, so a key reported twice is seen (a Map's entries work too). */
export type Side = Iterable<SideEntry>;

export type DifferenceKind = 'missing_left' | 'missing_right' | 'amount_differs' | 'duplicate';

export interface Difference {
  exception_id: string; // exc:v1:<sha256>
  checkpoint: CheckpointId;
  connector: string | null;
  key: ReconKey;
  kind: DifferenceKind;
  /** The side's amount; summed when the key appears more than once; null when the side lacks the key. */
  left: Amount | null;
  right: Amount | null;
  /** right - left, a missing side counting as zero. */
  difference: Amount;
  /** How many times each side reported the key (a `duplicate` has a count above 1). */
  occurrences: { left: number; right: number };
  owner_queue: OwnerQueue;
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const keyText = (key: ReconKey): string => JSON.stringify([key.legal_entity, key.customer, key.currency, key.item]);

interface Slot {
  key: ReconKey;
  sum: Decimal | bigint;
  count: number;
}

function collect(checkpoint: Checkpoint, side: Side, name: 'left' | 'right'): Map<string, Slot> {
  const slots = new Map<string, Slot>();
  let entries = 0;
  for (const [key, value] of side) {
    entries += 1;
    invariant(entries <= SIDE_ENTRIES_MAX, `the ${name} side of ${checkpoint.id} has more than ${SIDE_ENTRIES_MAX} entries`);
    for (const part of ['legal_entity', 'customer', 'currency', 'item'] as const) {
      invariant(typeof key[part] === 'string', `${checkpoint.id} ${name} key part ${part} must be a string`);
    }
    let amount: Decimal | bigint;
    if (checkpoint.value === 'money') {
      invariant(
        typeof value === 'bigint',
        `${checkpoint.id} compares money in bigint minor units; ${name} ${keyText(key)} has ${String(value)}`,
      );
      invariant(isCurrency(key.currency), `${checkpoint.id} compares money; ${name} ${keyText(key)} needs an ISO 4217 currency`);
      amount = value;
    } else {
      invariant(typeof value !== 'bigint', `${checkpoint.id} compares exact decimal quantities; ${name} ${keyText(key)} has a bigint`);
      if (typeof value === 'string') {
        const parsed = parseDecimal(value, 'quantity', { allowNegative: true });
        invariant(parsed.ok, `${checkpoint.id} ${name} ${keyText(key)} is not an exact decimal: ${JSON.stringify(value)}`);
        amount = parsed.value;
      } else amount = value;
      invariant(amount.isFinite(), `${checkpoint.id} ${name} ${keyText(key)} is not a finite quantity`);
    }
    const text = keyText(key);
    const slot = slots.get(text);
    if (slot === undefined)
      slots.set(text, {
        key: { legal_entity: key.legal_entity, customer: key.customer, currency: key.currency, item: key.item },
        sum: amount,
        count: 1,
      });
    else {
      slot.count += 1;
      slot.sum = typeof slot.sum === 'bigint' ? slot.sum + (amount as bigint) : slot.sum.plus(amount as Decimal);
    }
  }
  return slots;
}

const asAmount = (value: Decimal | bigint): Amount => (typeof value === 'bigint' ? value : decimalText(value));
const isEqual = (a: Decimal | bigint, b: Decimal | bigint): boolean => (typeof a === 'bigint' ? a === b : a.equals(b as Decimal));
function minus(a: Decimal | bigint, b: Decimal | bigint): Decimal | bigint {
  return typeof a === 'bigint' ? a - (b as bigint) : a.minus(b as Decimal);
}

/** `exc:v1:<sha256 of canonical JSON {checkpoint, connector, key, kind, left, right}>`: same state, same id. */
export function exceptionId(
  checkpoint: CheckpointId,
  connector: string | null,
  key: ReconKey,
  kind: DifferenceKind,
  left: Amount | null,
  right: Amount | null,
): string {
  const hash = contentHash({
    checkpoint,
    connector,
    key: { legal_entity: key.legal_entity, customer: key.customer, currency: key.currency, item: key.item },
    kind,
    left,
    right,
  });
  return `exc:${EXCEPTION_ID_VERSION}:${hash}`;
}

/**
 * Compares the two sides of a checkpoint. A key on one side only is `missing_left` / `missing_right`; a key
 * reported more than once on either side (typically a double posting in the target) is `duplicate`, with the
 * side's amounts summed; otherwise unequal amounts are `amount_differs`. Differences come sorted by key.
 */
export function compareSides(checkpointId: CheckpointId, left: Side, right: Side, options: { connector?: string } = {}): Difference[] {
  const checkpoint = checkpointById(checkpointId);
  const connector = options.connector ?? null;
  invariant(
    !checkpoint.per_connector || (connector !== null && connector !== ''),
    `${checkpoint.id} runs per ERP connector: name the connector`,
  );
  invariant(checkpoint.per_connector || connector === null, `${checkpoint.id} is not per connector`);
  const lefts = collect(checkpoint, left, 'left');
  const rights = collect(checkpoint, right, 'right');
  const zero = (): Decimal | bigint => (checkpoint.value === 'money' ? 0n : new Decimal(0));
  const keys = [...new Set([...lefts.keys(), ...rights.keys()])].sort(compare);
  const differences: Difference[] = [];
  for (const text of keys) {
    const l = lefts.get(text);
    const r = rights.get(text);
    let kind: DifferenceKind | null;
    if (l === undefined) kind = 'missing_left';
    else if (r === undefined) kind = 'missing_right';
    else if (l.count > 1 || r.count > 1) kind = 'duplicate';
    else kind = isEqual(l.sum, r.sum) ? null : 'amount_differs';
    if (kind === null) continue;
    if (kind === 'missing_left' && r!.count > 1) kind = 'duplicate';
    if (kind === 'missing_right' && l!.count > 1) kind = 'duplicate';
    const key = (l ?? r)!.key;
    const leftAmount = l === undefined ? null : asAmount(l.sum);
    const rightAmount = r === undefined ? null : asAmount(r.sum);
    differences.push({
      exception_id: exceptionId(checkpoint.id, connector, key, kind, leftAmount, rightAmount),
      checkpoint: checkpoint.id,
      connector,
      key,
      kind,
      left: leftAmount,
      right: rightAmount,
      difference: asAmount(minus(r?.sum ?? zero(), l?.sum ?? zero())),
      occurrences: { left: l?.count ?? 0, right: r?.count ?? 0 },
      owner_queue: checkpoint.owner_queue,
    });
  }
  return differences;
}

// ---------- building sides ----------

/** The `item` of the trial-balance row that sums all accounts of an entity and currency: it must be zero. */
export const TRIAL_BALANCE_NET = '(net)';

/**
 * A trial balance as one side of the `trial_balance` checkpoint: one entry per (entity, account, currency) with
 * the balance (debit - credit), and one `(net)` entry per (entity, currency) summing them, which is zero for a
 * balanced ledger. A manual one-sided ledger edit then shows on its account and on `(net)`.
 */
export function trialBalanceSide(rows: readonly TrialBalanceRow[]): SideEntry[] {
  const nets = new Map<string, { legal_entity: string; currency: string; net: bigint }>();
  const entries: SideEntry[] = [];
  for (const row of rows) {
    entries.push([
      { legal_entity: row.legal_entity, customer: '', currency: row.currency, item: row.account },
      row.debit_minor - row.credit_minor,
    ]);
    const netKey = JSON.stringify([row.legal_entity, row.currency]);
    const slot = nets.get(netKey) ?? { legal_entity: row.legal_entity, currency: row.currency, net: 0n };
    slot.net += row.debit_minor - row.credit_minor;
    nets.set(netKey, slot);
  }
  for (const { legal_entity, currency, net } of nets.values())
    entries.push([{ legal_entity, customer: '', currency, item: TRIAL_BALANCE_NET }, net]);
  return entries;
}

// ---------- exceptions and their lifecycle ----------

export type ExceptionStatus = 'open' | 'assigned' | 'resolved' | 'waived';

/** open -> assigned -> resolved | waived; an assigned exception may be reassigned; resolved and waived are final. */
export const exceptionTransitions: Readonly<Record<ExceptionStatus, readonly ExceptionStatus[]>> = {
  open: ['assigned'],
  assigned: ['assigned', 'resolved', 'waived'],
  resolved: [],
  waived: [],
};

export interface ExceptionEvent {
  from: ExceptionStatus | null;
  to: ExceptionStatus;
  by: string;
  at: string;
  note?: string;
}

export interface ReconException extends Pick<Difference, 'checkpoint' | 'connector' | 'key' | 'kind' | 'left' | 'right' | 'difference'> {
  id: string; // the difference's exception_id
  owner_queue: OwnerQueue;
  status: ExceptionStatus;
  opened_at: string;
  assignee?: string;
  correcting_document?: string; // resolved: the document that corrects it (credit note, re-post, adjustment)
  waived_reason?: string;
  waived_by?: string;
  history: ExceptionEvent[];
}

export type ExceptionAction =
  | { action: 'assign'; assignee: string; by: string; at: string }
  | { action: 'resolve'; correcting_document: string; by: string; at: string }
  | { action: 'waive'; reason: string; by: string; at: string };

const TARGET: Record<ExceptionAction['action'], ExceptionStatus> = { assign: 'assigned', resolve: 'resolved', waive: 'waived' };

/** A new exception for a difference, in the owner queue of its checkpoint. */
export function openException(difference: Difference, at: string, by = 'system:reconcile'): ReconException {
  return {
    id: difference.exception_id,
    checkpoint: difference.checkpoint,
    connector: difference.connector,
    key: { ...difference.key },
    kind: difference.kind,
    left: difference.left,
    right: difference.right,
    difference: difference.difference,
    owner_queue: difference.owner_queue,
    status: 'open',
    opened_at: at,
    history: [{ from: null, to: 'open', by, at }],
  };
}

/** The differences that have no exception yet (by id): what a re-run of reconciliation opens. */
export function newDifferences(differences: readonly Difference[], existingIds: Iterable<string>): Difference[] {
  const existing = new Set(existingIds);
  return differences.filter((d) => !existing.has(d.exception_id));
}

const blank = (value: unknown): boolean => typeof value !== 'string' || value.trim() === '';

/** Applies one lifecycle action; refuses, naming why, a move the lifecycle does not allow or one missing its facts. */
export function applyTransition(exception: ReconException, action: ExceptionAction): Result<ReconException> {
  const target = TARGET[action.action];
  if (target === undefined)
    return fail(
      problem(
        'action',
        'unknown_action',
        `must be one of assign, resolve, waive, got ${JSON.stringify((action as { action: unknown }).action)}`,
      ),
    );
  const allowed = exceptionTransitions[exception.status];
  if (allowed.length === 0) {
    return fail(
      problem('action', 'terminal', `exception ${exception.id} is ${exception.status}; resolved and waived exceptions are final`),
    );
  }
  if (!allowed.includes(target)) {
    return fail(
      problem(
        'action',
        'not_allowed',
        `exception ${exception.id} is ${exception.status}; it can go to ${allowed.join(' or ')}, not ${target} (assign it first)`,
      ),
    );
  }
  const problems: Problem[] = [];
  if (blank(action.by)) problems.push(problem('by', 'required', 'must name who acts'));
  if (blank(action.at)) problems.push(problem('at', 'required', 'must give the time of the action'));
  if (action.action === 'assign' && blank(action.assignee))
    problems.push(problem('assignee', 'required', 'must name the person or team the exception is assigned to'));
  if (action.action === 'resolve' && blank(action.correcting_document)) {
    problems.push(
      problem(
        'correcting_document',
        'required',
        'must name the document that corrects the difference (a credit note, a re-posting, an adjustment)',
      ),
    );
  }
  if (action.action === 'waive' && blank(action.reason))
    problems.push(problem('reason', 'required', 'must say why the difference is accepted as it is'));
  if (problems.length > 0) return fail(...problems);

  const next: ReconException = { ...exception, key: { ...exception.key }, status: target, history: [...exception.history] };
  const event: ExceptionEvent = { from: exception.status, to: target, by: action.by, at: action.at };
  if (action.action === 'assign') {
    next.assignee = action.assignee;
    event.note = `assigned to ${action.assignee}`;
  } else if (action.action === 'resolve') {
    next.correcting_document = action.correcting_document;
    event.note = `corrected by ${action.correcting_document}`;
  } else {
    next.waived_reason = action.reason;
    next.waived_by = action.by;
    event.note = action.reason;
  }
  next.history.push(event);
  return ok(next);
}
