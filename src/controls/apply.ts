// What each change kind proposes and applies. A plan checks the input and builds the payload and the diff an approver
// reads; an applier applies exactly the approved payload, refusing it (409) when what it was diffed against has moved.
// `submitChange` is the one entry: it proposes when the policy wants a second person and applies at once otherwise
// (the policy switched off for the kind, or the explicit development mode), recording which in the audit log.
import { createTwoFilesPatch } from 'diff';
import type pg from 'pg';
import { stringify as toYaml } from 'yaml';
import { applyCatalog, currentCatalog } from '../catalog/service.js';
import { parseCatalog } from '../domain/catalog.js';
import { auditActor, entityVisible, type Actor, type ChangeKind } from '../domain/controls.js';
import { formatMajor } from '../domain/money.js';
import { getInvoice } from '../invoice/store.js';
import { voidInvoice } from '../post/void.js';
import { ProblemError, formatProblems, ok, type Problem, type Result } from '../domain/result.js';
import { importMappings, type ImportOutcome } from '../map/import.js';
import type { MappingFileFormat } from '../map/import.js';
import type { ErpTarget } from '../post/target.js';
import { getException, moveException } from '../reconcile/exceptions.js';
import { closeAccountingPeriod } from '../reconcile/period-close.js';
import { decideChange, proposeChange, type ChangeRequest, type ProposeInput } from './changes.js';
import { applyCreditNote } from './credit-notes.js';

/** What the adapters give the appliers: how to open the ERP connections a period close reconciles against. */
export interface ApplyEnv {
  erpConnectors?: (names: readonly string[]) => Promise<ErpTarget[]>;
}

/** The approval policy: the kinds that need a second person (configuration `controls.approval_required`). */
export interface ApprovalPolicy {
  required: readonly ChangeKind[];
}

type Applier = (pool: pg.Pool, payload: never, by: Actor, env: ApplyEnv) => Promise<unknown>;
const APPLIERS = new Map<ChangeKind, Applier>();

/** Registers how a kind is applied (each kind once; the registrations are below and in the stages' modules). */
export function registerApplier<P>(
  kind: ChangeKind,
  apply: (pool: pg.Pool, payload: P, by: Actor, env: ApplyEnv) => Promise<unknown>,
): void {
  if (APPLIERS.has(kind)) throw new Error(`invariant violated: ${kind} has an applier already`);
  APPLIERS.set(kind, apply as Applier);
}

async function applyPayload(pool: pg.Pool, kind: ChangeKind, payload: unknown, by: Actor, env: ApplyEnv): Promise<unknown> {
  const apply = APPLIERS.get(kind);
  if (!apply) throw new ProblemError([{ path: 'kind', code: 'not_supported', message: `no applier for ${kind}` }], 409);
  return apply(pool, payload as never, by, env);
}

export type Submitted =
  | { status: 'pending'; request: ChangeRequest; created: boolean }
  | { status: 'applied'; result: unknown; approval: 'not_required' | 'development_mode' };

/** Proposes the change when the policy wants a second person for its kind; applies it at once otherwise. */
export async function submitChange(
  pool: pg.Pool,
  actor: Actor,
  policy: ApprovalPolicy,
  input: ProposeInput,
  env: ApplyEnv = {},
): Promise<Submitted> {
  if (actor.dev || !policy.required.includes(input.kind)) {
    const result = await applyPayload(pool, input.kind, input.payload, actor, env);
    return { status: 'applied', result: result ?? null, approval: actor.dev ? 'development_mode' : 'not_required' };
  }
  return { status: 'pending', ...(await proposeChange(pool, actor, input)) };
}

/** Approves (applying the payload) or rejects a pending request; see decideChange. */
export function decide(
  pool: pg.Pool,
  actor: Actor,
  id: string,
  decision: { approve: boolean; note?: string },
  env: ApplyEnv = {},
): Promise<ChangeRequest> {
  return decideChange(pool, actor, id, decision, (request) => applyPayload(pool, request.kind, request.payload, actor, env));
}

const stale = (message: string) => new ProblemError([{ path: 'payload', code: 'stale', message }], 409);
const invalid = (problems: Problem[]) => new ProblemError(problems, 400);

// ---- catalog.apply ------------------------------------------------------------------------------------------------

interface CatalogPayload {
  text: string;
  format: 'yaml' | 'json';
  source: string;
  /** The content hash of the catalog in force when the change was diffed (null: none yet). */
  base_hash: string | null;
}

/** Pretty YAML of a catalog with keys in a stable order, so a diff shows what changed and nothing else. */
function catalogLines(catalog: unknown): string {
  return toYaml(catalog, { sortMapEntries: true, lineWidth: 0 });
}

/** The readable difference between the catalog in force and a proposed one (a unified diff of their normalized YAML). */
export async function catalogDiff(pool: pg.Pool, text: string, format?: 'yaml' | 'json') {
  const parsed = parseCatalog(text, format);
  if (!parsed.ok) throw invalid(parsed.problems);
  const current = await currentCatalog(pool);
  const before = current ? catalogLines(current.catalog) : '';
  const after = catalogLines(parsed.value.catalog);
  const diff = createTwoFilesPatch(
    current ? `catalog v${current.version} (sha256 ${current.hash.slice(0, 12)})` : '(no catalog)',
    `proposed (sha256 ${parsed.value.hash.slice(0, 12)})`,
    before,
    after,
    undefined,
    undefined,
    { context: 3 },
  );
  return {
    diff,
    changed: current?.hash !== parsed.value.hash,
    base_hash: current?.hash ?? null,
    hash: parsed.value.hash,
    base_version: current?.version ?? null,
  };
}

export async function planCatalogChange(
  pool: pg.Pool,
  text: string,
  meta: { format?: 'yaml' | 'json'; source: string; reason?: string },
): Promise<ProposeInput> {
  const d = await catalogDiff(pool, text, meta.format);
  if (!d.changed)
    throw new ProblemError(
      [{ path: 'catalog', code: 'unchanged', message: `the catalog in force already has this content (sha256 ${d.hash})` }],
      409,
    );
  const payload: CatalogPayload = { text, format: meta.format ?? 'yaml', source: meta.source, base_hash: d.base_hash };
  return {
    kind: 'catalog.apply',
    subject: `catalog:${d.hash}`,
    summary: `catalog ${d.base_version === null ? 'first version' : `v${d.base_version} → new version`} (sha256 ${d.hash.slice(0, 12)}) from ${meta.source}`,
    diff: d.diff,
    payload,
    ...(meta.reason === undefined ? {} : { reason: meta.reason }),
  };
}

/** The proposal for a catalog, 'unchanged' when the catalog in force has its content, or the catalog's problems. */
export async function catalogPlan(
  pool: pg.Pool,
  text: string,
  format: 'yaml' | 'json',
  source = 'api',
): Promise<Result<ProposeInput | 'unchanged'>> {
  const parsed = parseCatalog(text, format);
  if (!parsed.ok) return parsed;
  const current = await currentCatalog(pool);
  if (current?.hash === parsed.value.hash) return ok('unchanged');
  return ok(await planCatalogChange(pool, text, { format, source }));
}

registerApplier<CatalogPayload>('catalog.apply', async (pool, payload, by) => {
  const current = await currentCatalog(pool);
  if ((current?.hash ?? null) !== payload.base_hash)
    throw stale(
      `the catalog in force changed since this change was proposed (now v${current?.version}); propose it again against the current catalog`,
    );
  const applied = await applyCatalog(pool, payload.text, { by: auditActor(by), source: payload.source, format: payload.format });
  if (!applied.ok) throw invalid(applied.problems);
  return applied.value;
});

// ---- mappings.import ----------------------------------------------------------------------------------------------

interface MappingsPayload {
  text: string;
  format?: MappingFileFormat;
  origin: string;
  /** The changes the import would record when proposed; applied only if it would still record exactly these. */
  changes: ImportOutcome['changes'];
}

const changeLine = (c: ImportOutcome['changes'][number]) =>
  `${c.connection} ${c.kind} ${c.source} from ${c.effective_from}: ${c.before ?? '(none)'} -> ${c.after ?? '(ended)'}`;

export async function planMappingsImport(
  pool: pg.Pool,
  text: string,
  meta: { format?: MappingFileFormat; origin: string; reason?: string },
): Promise<ProposeInput> {
  const dry = await importMappings(pool, text, { by: 'system:plan', format: meta.format, origin: meta.origin, dryRun: true });
  if (!dry.ok) throw invalid(dry.problems);
  if (dry.value.changes.length === 0)
    throw new ProblemError(
      [{ path: 'file', code: 'unchanged', message: `every one of the ${dry.value.rows} rows is already in force` }],
      409,
    );
  const payload: MappingsPayload = {
    text,
    ...(meta.format ? { format: meta.format } : {}),
    origin: meta.origin,
    changes: dry.value.changes,
  };
  return {
    kind: 'mappings.import',
    subject: `mappings:${meta.origin}`,
    summary: `${dry.value.changes.length} ERP mapping change(s) from ${meta.origin}`,
    diff: dry.value.changes.map(changeLine).join('\n'),
    payload,
    ...(meta.reason === undefined ? {} : { reason: meta.reason }),
  };
}

registerApplier<MappingsPayload>('mappings.import', async (pool, payload, by) => {
  const dry = await importMappings(pool, payload.text, { by: 'system:plan', format: payload.format, origin: payload.origin, dryRun: true });
  if (!dry.ok) throw invalid(dry.problems);
  if (JSON.stringify(dry.value.changes) !== JSON.stringify(payload.changes))
    throw stale('the mappings in force changed since this import was proposed; propose it again');
  const done = await importMappings(pool, payload.text, { by: auditActor(by), format: payload.format, origin: payload.origin });
  if (!done.ok) throw invalid(done.problems);
  return { recorded: done.value.recorded, unchanged: done.value.unchanged, woken: done.value.woken };
});

// ---- period.close -------------------------------------------------------------------------------------------------

interface PeriodClosePayload {
  legal_entity: string;
  period: string;
  erp: string[];
}

export function planPeriodClose(legalEntity: string, period: string, erp: readonly string[], reason?: string): ProposeInput {
  const payload: PeriodClosePayload = { legal_entity: legalEntity, period, erp: [...erp].sort() };
  return {
    kind: 'period.close',
    subject: `period:${legalEntity}:${period}`,
    legalEntity,
    summary: `close the accounting period ${period} of ${legalEntity}${erp.length ? ` (reconciled with ${erp.join(', ')})` : ''}`,
    diff: `accounting period ${legalEntity} ${period}: open -> closed (journals dated in it are then refused or moved)`,
    payload,
    ...(reason === undefined ? {} : { reason }),
  };
}

registerApplier<PeriodClosePayload>('period.close', async (pool, payload, by, env) => {
  if (payload.erp.length > 0 && !env.erpConnectors)
    throw new ProblemError(
      [
        {
          path: 'id',
          code: 'needs_connections',
          message: `this close reconciles with ${payload.erp.join(', ')} first: approve it with \`accrue changes approve\`, which opens the ERP connections`,
        },
      ],
      409,
    );
  const connectors = payload.erp.length && env.erpConnectors ? await env.erpConnectors(payload.erp) : [];
  const outcome = await closeAccountingPeriod(pool, {
    legalEntity: payload.legal_entity,
    period: payload.period,
    by: auditActor(by),
    connectors,
  });
  if (!outcome.result.ok) {
    const status = outcome.open.length > 0 ? 409 : 400;
    throw new ProblemError(
      outcome.result.problems.length
        ? outcome.result.problems
        : [{ path: 'period', code: 'refused', message: formatProblems(outcome.result.problems) }],
      status,
    );
  }
  return outcome.result.value;
});

// ---- exception.waive ----------------------------------------------------------------------------------------------

interface WaivePayload {
  exception_id: string;
  reason: string;
}

export async function planWaiver(pool: pg.Pool, exceptionId: string, reason: string): Promise<ProposeInput> {
  const found = await getException(pool, exceptionId);
  if (!found) throw new ProblemError([{ path: 'id', code: 'not_found', message: `no exception ${exceptionId}` }], 404);
  if (reason.trim() === '') throw invalid([{ path: 'reason', code: 'required', message: 'a waiver says why the difference is accepted' }]);
  const exception = found.exception;
  const payload: WaivePayload = { exception_id: exceptionId, reason };
  return {
    kind: 'exception.waive',
    subject: `exception:${exceptionId}`,
    ...(exception.legal_entity ? { legalEntity: exception.legal_entity } : {}),
    summary: `waive ${exception.kind} ${exceptionId}${exception.difference ? ` (difference ${exception.difference} ${exception.currency ?? ''})` : ''}`,
    diff: `exception ${exceptionId}: ${exception.status} -> waived\nleft ${exception.left_amount ?? '-'}, right ${exception.right_amount ?? '-'}, difference ${exception.difference ?? '-'}\nreason: ${reason}`,
    payload,
    reason,
  };
}

registerApplier<WaivePayload>('exception.waive', async (pool, payload, by) => {
  const moved = await moveException(pool, payload.exception_id, { action: 'waive', reason: payload.reason, by: auditActor(by) });
  if (!moved.ok) throw new ProblemError(moved.problems, moved.problems.some((p) => p.code === 'not_found') ? 404 : 409);
  return { exception: moved.value.id, status: moved.value.status };
});

// ---- invoice.void -------------------------------------------------------------------------------------------------

interface VoidPayload {
  invoice_id: string;
  reason: string;
}

/** The proposal to void an invoice: found by id or number (within `entity` when two entities share the number). */
export async function planVoid(
  pool: pg.Pool,
  actor: Actor,
  input: { invoice: string; entity?: string; reason: string },
): Promise<ProposeInput> {
  const invoice = await getInvoice(pool, input.invoice, { entity: input.entity, entities: actor.entities });
  if (!invoice || !entityVisible(actor, invoice.legal_entity))
    throw new ProblemError([{ path: 'invoice', code: 'not_found', message: `no invoice ${input.invoice}` }], 404);
  if (input.reason.trim() === '') throw invalid([{ path: 'reason', code: 'required', message: 'say why the invoice is voided' }]);
  if (invoice.status !== 'finalized')
    throw new ProblemError(
      [
        {
          path: 'invoice',
          code: invoice.status === 'void' ? 'already_void' : 'not_finalized',
          message: `${invoice.number ?? invoice.id} is ${invoice.status}`,
        },
      ],
      409,
    );
  const name = invoice.number ?? invoice.id;
  const total = `${formatMajor(invoice.total_minor, invoice.currency)} ${invoice.currency}`;
  return {
    kind: 'invoice.void',
    subject: `invoice:${invoice.id}`,
    legalEntity: invoice.legal_entity,
    summary: `void ${name} (${invoice.customer}, ${total})`,
    diff: [
      `invoice ${name} (${invoice.legal_entity}, ${invoice.customer}, period ${invoice.period_start}): finalized -> void`,
      `total ${total}`,
      'its journals are reversed (every line with debit and credit swapped) and the ERP voids it (Xero) or credits it in full (NetSuite)',
      `reason: ${input.reason}`,
    ].join('\n'),
    payload: { invoice_id: invoice.id, reason: input.reason } satisfies VoidPayload,
    reason: input.reason,
  };
}

registerApplier<VoidPayload>('invoice.void', async (pool, payload, by) => {
  const outcome = await voidInvoice(pool, {
    invoice: payload.invoice_id,
    reason: payload.reason,
    actor: auditActor(by),
    at: new Date().toISOString(),
  });
  return {
    invoice: outcome.invoice.id,
    number: outcome.invoice.number,
    already_void: outcome.already_void,
    reversals: outcome.reversals.map((r) => r.id),
  };
});
// ---- credit_note.issue (src/controls/credit-notes.ts: the plan, and the dispute's credit note it issues) --------------

registerApplier('credit_note.issue', applyCreditNote);
