// The parallel run against a legacy billing system, with I/O: Accrue's side of a period read from the store, the
// legacy side from DIR/invoices.csv (+ DIR/journal_lines.csv), compared by the pure core in ./compare.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { fail, ok, problem, type Problem, type Result } from '../domain/result.js';
import { parsePeriod, type PeriodWindow } from '../meter/period.js';
import { readJournals } from '../post/journals.js';
import {
  compareWithLegacy,
  parseLegacy,
  type AccrueInvoiceLine,
  type AccrueJournalLine,
  type ComparisonReport,
  type ComparisonScope,
  type LegacyData,
} from './compare.js';

export const LEGACY_FILES = { invoices: 'invoices.csv', journal_lines: 'journal_lines.csv' } as const;
/** The names `--scope` accepts, with what each takes. */
export const SCOPE_NAMES = { customers: 'customer ids separated by commas', entity: 'one legal entity id' } as const;

export interface AccrueSide {
  invoiceLines: AccrueInvoiceLine[];
  journalLines: AccrueJournalLine[];
}

/**
 * Accrue's side of a period. Invoice lines: finalized invoices of the period (credit notes against them count
 * negative, void invoices not at all), summed per (entity, customer, currency, product), leaving out sums of zero.
 * Journal lines: every journal posted in the period, per (entity, account, currency). Both labelled `YYYY-MM`.
 */
export async function readAccrueSide(db: pg.Pool | pg.PoolClient, window: PeriodWindow): Promise<AccrueSide> {
  const invoices = await db.query<{ legal_entity: string; customer: string; currency: string; product: string; amount_minor: string }>(
    `SELECT i.legal_entity, i.customer, i.currency, l.product,
            sum(CASE WHEN i.kind = 'credit_note' THEN -l.amount_minor ELSE l.amount_minor END)::text AS amount_minor
       FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id
      WHERE i.status = 'finalized' AND i.period = $1
      GROUP BY 1, 2, 3, 4
     HAVING sum(CASE WHEN i.kind = 'credit_note' THEN -l.amount_minor ELSE l.amount_minor END) <> 0`,
    [window.period],
  );
  const invoiceLines = invoices.rows.map((r) => ({
    legal_entity: r.legal_entity,
    customer: r.customer,
    currency: r.currency,
    period: window.period,
    product: r.product,
    amount_minor: BigInt(r.amount_minor),
  }));
  const journals = await readJournals(db, { from: window.start_date, to: window.end_date });
  const journalLines = journals.flatMap((j) =>
    j.lines.map((l) => ({
      legal_entity: j.legal_entity,
      period: window.period,
      account: l.account,
      currency: l.currency,
      debit_minor: l.debit_minor,
      credit_minor: l.credit_minor,
    })),
  );
  return { invoiceLines, journalLines };
}

/**
 * `--scope` values: `customers=a,b` and/or `entity=nw-de` (each name once). Problems name the flag and what is
 * wrong: `--scope[0]: unknown scope "customer"; use customers=a,b or entity=<legal entity>`.
 */
export function parseScope(specs: readonly string[], path = '--scope'): Result<ComparisonScope> {
  const problems: Problem[] = [];
  const scope: ComparisonScope = {};
  const usage = 'use customers=a,b or entity=<legal entity>';
  specs.forEach((spec, i) => {
    const at = `${path}[${i}]`;
    const eq = spec.indexOf('=');
    if (eq < 0) {
      problems.push(problem(at, 'not_name_value', `must be name=value, got ${JSON.stringify(spec)}; ${usage}`));
      return;
    }
    const name = spec.slice(0, eq).trim();
    const value = spec.slice(eq + 1).trim();
    if (!Object.hasOwn(SCOPE_NAMES, name)) {
      problems.push(problem(at, 'unknown_scope', `unknown scope ${JSON.stringify(name)}; ${usage}`));
      return;
    }
    if ((name === 'customers' && scope.customers !== undefined) || (name === 'entity' && scope.entity !== undefined)) {
      problems.push(problem(at, 'duplicate_scope', `${name} is given twice; give it once (customers take a comma-separated list)`));
      return;
    }
    if (name === 'entity') {
      if (value === '' || value.includes(','))
        problems.push(problem(at, 'not_entity', `entity takes ${SCOPE_NAMES.entity}, got ${JSON.stringify(value)}`));
      else scope.entity = value;
      return;
    }
    const customers = value.split(',').map((c) => c.trim());
    if (customers.some((c) => c === ''))
      problems.push(problem(at, 'not_customers', `customers takes ${SCOPE_NAMES.customers}, got ${JSON.stringify(value)}`));
    else scope.customers = customers;
  });
  return problems.length > 0 ? fail(...problems) : ok(scope);
}

/** A scope id neither the catalog nor the legacy export knows is a typo, which would otherwise compare nothing and match. */
function checkScopeIds(scope: ComparisonScope, catalog: CatalogVersion | undefined, legacy: LegacyData): Problem[] {
  const problems: Problem[] = [];
  const legacyCustomers = new Set(legacy.invoices.map((l) => l.customer));
  const legacyEntities = new Set([
    ...legacy.invoices.map((l) => l.legal_entity),
    ...(legacy.journal_lines ?? []).map((l) => l.legal_entity),
  ]);
  for (const customer of scope.customers ?? []) {
    if (!catalog?.index.customers.has(customer) && !legacyCustomers.has(customer)) {
      problems.push(
        problem(
          '--scope customers',
          'unknown_customer',
          `${JSON.stringify(customer)} is neither a customer of the catalog nor in ${LEGACY_FILES.invoices}`,
        ),
      );
    }
  }
  if (scope.entity !== undefined && !catalog?.index.legalEntities.has(scope.entity) && !legacyEntities.has(scope.entity)) {
    const known = catalog ? ` (the catalog has ${catalog.catalog.legal_entities.map((e) => e.id).join(', ')})` : '';
    problems.push(
      problem(
        '--scope entity',
        'unknown_legal_entity',
        `${JSON.stringify(scope.entity)} is neither a legal entity of the catalog nor in the legacy export${known}`,
      ),
    );
  }
  return problems;
}

function readLegacyFile(dir: string, name: string, required: boolean): Result<string | undefined> {
  try {
    return ok(readFileSync(join(dir, name), 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return ok(undefined);
    if (code === 'ENOENT')
      return fail(
        problem(
          '--legacy',
          'not_found',
          `${join(dir, name)} does not exist; the legacy export needs ${LEGACY_FILES.invoices} (docs/legacy-format.md)`,
        ),
      );
    return fail(problem('--legacy', 'unreadable', `cannot read ${join(dir, name)}: ${(error as Error).message}`));
  }
}

/** Whether a legacy row belongs to the period: labelled `YYYY-MM` or by the period's first day. */
function inPeriod(period: string, window: PeriodWindow): boolean {
  return period === window.period || period === window.start_date;
}

export interface LegacyRun {
  period: string;
  legacy_dir: string;
  report: ComparisonReport;
  /** Legacy rows of other periods than the one compared, and legacy keys summing to zero: left out, counted. */
  left_out: { other_periods: { invoices: number; journal_lines: number }; zero_invoice_keys: number };
}

/**
 * The parallel run for one period: reads DIR/invoices.csv (required) and DIR/journal_lines.csv (optional), keeps the
 * legacy rows of that period (`YYYY-MM` or its first day), and compares them with Accrue's side within the scope.
 * Bad input (a missing file, a CSV problem, a bad period or scope) comes back as problems.
 */
export async function runLegacyComparison(
  db: pg.Pool | pg.PoolClient,
  options: {
    legacyDir: string;
    period: string;
    scope?: readonly string[] | ComparisonScope;
    catalog?: CatalogVersion;
    onProgress?: (done: number, total: number, note: string) => void;
  },
): Promise<Result<LegacyRun>> {
  const window = parsePeriod(options.period, '--period');
  const scope = Array.isArray(options.scope) ? parseScope(options.scope) : ok((options.scope ?? {}) as ComparisonScope);
  const invoicesText = readLegacyFile(options.legacyDir, LEGACY_FILES.invoices, true);
  const journalText = readLegacyFile(options.legacyDir, LEGACY_FILES.journal_lines, false);
  const early = [window, scope, invoicesText, journalText].flatMap((r) => (r.ok ? [] : r.problems));
  if (early.length > 0 || !window.ok || !scope.ok || !invoicesText.ok || !journalText.ok) return fail(...early);
  const parsed = parseLegacy({
    invoices: invoicesText.value!,
    ...(journalText.value === undefined ? {} : { journal_lines: journalText.value }),
  });
  if (!parsed.ok) return parsed;

  const problems = checkScopeIds(scope.value, options.catalog, parsed.value);
  if (problems.length > 0) return fail(...problems);

  const period = window.value;
  const invoicesOfPeriod = parsed.value.invoices.filter((l) => inPeriod(l.period, period)).map((l) => ({ ...l, period: period.period }));
  // Zero sums count as absent, as on Accrue's side: a legacy system that writes (or leaves out) zero lines is not flagged.
  const sums = new Map<string, bigint>();
  const keyOf = (l: AccrueInvoiceLine) => JSON.stringify([l.legal_entity, l.customer, l.currency, l.product]);
  for (const l of invoicesOfPeriod) sums.set(keyOf(l), (sums.get(keyOf(l)) ?? 0n) + l.amount_minor);
  const zeroKeys = new Set([...sums].filter(([, sum]) => sum === 0n).map(([key]) => key));
  const journalOfPeriod =
    parsed.value.journal_lines?.filter((l) => inPeriod(l.period, period)).map((l) => ({ ...l, period: period.period })) ?? null;
  const legacy: LegacyData = { invoices: invoicesOfPeriod.filter((l) => !zeroKeys.has(keyOf(l))), journal_lines: journalOfPeriod };

  options.onProgress?.(1, 3, 'legacy export read');
  const accrue = await readAccrueSide(db, period);
  options.onProgress?.(2, 3, "Accrue's side read");
  const report = compareWithLegacy(accrue, legacy, scope.value);
  options.onProgress?.(3, 3, 'compared');
  return ok({
    period: period.period,
    legacy_dir: options.legacyDir,
    report,
    left_out: {
      other_periods: {
        invoices: parsed.value.invoices.length - invoicesOfPeriod.length,
        journal_lines: (parsed.value.journal_lines?.length ?? 0) - (journalOfPeriod?.length ?? 0),
      },
      zero_invoice_keys: zeroKeys.size,
    },
  });
}
