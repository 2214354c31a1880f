// Map (stage 3): `accrue erp check`: every mapping a connection's documents need that the store lacks, and every
// mapping in force looked up in the ERP through the connection's connector (so the calls share its limits), as a list
// of findings. The check passes when nothing required is unmapped and no target is missing or inactive in the ERP.
import type pg from 'pg';
import type { ConnectionSettings, MappingKind, ReferenceChecker } from '../domain/erp.js';
import type { Catalog } from '../domain/model.js';
import { requiredMappings } from './required.js';
import { mappingsInForce } from './store.js';

export type FindingState =
  | 'unmapped' // required by the catalog, no mapping in force: documents will wait as exceptions
  | 'unmapped_optional' // not required (customer sync creates it, an optional Xero item code): reported, not a failure
  | 'missing' // the ERP has no record with that id
  | 'inactive' // the ERP has it, inactive or archived: it refuses documents naming it
  | 'active';

export interface Finding {
  kind: MappingKind;
  source: string;
  target: string | null;
  state: FindingState;
  detail: string;
}

export interface CheckReport {
  connection: string;
  on: string;
  ok: boolean;
  counts: Record<FindingState, number>;
  findings: Finding[];
}

const FAILING: ReadonlySet<FindingState> = new Set(['unmapped', 'missing', 'inactive']);

const today = (): string => new Date().toISOString().slice(0, 10);

/** The findings, in the order: required mappings the store lacks, then each mapping in force with the ERP's answer. */
export async function checkMappings(
  pool: pg.Pool,
  catalog: Catalog,
  settings: ConnectionSettings,
  checker: ReferenceChecker,
  on: string,
): Promise<Finding[]> {
  const inForce = await mappingsInForce(pool, on, settings.name);
  const mapped = new Set(inForce.map((m) => `${m.kind}\u0000${m.source}`));
  const findings: Finding[] = [];
  for (const need of requiredMappings(catalog, settings, on)) {
    if (mapped.has(`${need.kind}\u0000${need.source}`)) continue;
    findings.push({
      kind: need.kind,
      source: need.source,
      target: null,
      state: need.required ? 'unmapped' : 'unmapped_optional',
      detail: `no ${need.kind} mapping in force on ${on}; needed by ${need.needed_by.join(', ')}`,
    });
  }
  // One lookup per (kind, target): several sources may share a target (two jurisdictions on one tax code).
  const answers = new Map<string, Awaited<ReturnType<ReferenceChecker['checkReference']>>>();
  for (const m of inForce) {
    const key = `${m.kind}\u0000${m.target}`;
    let answer = answers.get(key);
    if (!answer) {
      answer = await checker.checkReference(m.kind, m.target);
      answers.set(key, answer);
    }
    findings.push({
      kind: m.kind,
      source: m.source,
      target: m.target,
      state: answer.state,
      detail: answer.state === 'active' ? `in force since ${m.effective_from} (version ${m.version})` : answer.detail,
    });
  }
  return findings;
}

/** checkMappings with the counts and the verdict: ok when nothing required is unmapped and nothing missing or inactive. */
export async function runErpCheck(
  pool: pg.Pool,
  catalog: Catalog,
  settings: ConnectionSettings,
  checker: ReferenceChecker,
  on: string = today(),
): Promise<CheckReport> {
  const findings = await checkMappings(pool, catalog, settings, checker, on);
  const counts: Record<FindingState, number> = { unmapped: 0, unmapped_optional: 0, missing: 0, inactive: 0, active: 0 };
  for (const f of findings) counts[f.state] += 1;
  return { connection: settings.name, on, ok: !findings.some((f) => FAILING.has(f.state)), counts, findings };
}
