// `accrue erp`: the ERP connections (one per legal entity's books), their mappings from Accrue's ids to the ERP's as
// versioned, audited data (docs/mappings.md), and `erp check`, which looks every mapping up in the ERP.
import { approvalNeeded, commandActor, proposeAndReport } from './auth.js';
import { auditActor } from '../domain/controls.js';
import { planMappingsImport } from '../controls/apply.js';
import type pg from 'pg';
import type { Command } from 'commander';
import type { ReferenceChecker } from '../domain/erp.js';
import { listConnections, saveConnections } from '../connectors/connections.js';
import { openConnection } from '../connectors/open.js';
import { currentCatalog } from '../catalog/service.js';
import { ProblemError } from '../domain/result.js';
import { importMappings, isIsoDate } from '../map/import.js';
import { exportMappings, exportRows, mappingHistory, mappingsInForce } from '../map/store.js';
import { runErpCheck } from '../map/check.js';
import type { Config } from './config.js';
import { EXIT, globals, output, readText, withStore } from './context.js';
import { table } from './table.js';

/** The configured connections written to the store first, so the store knows every connection configuration names. */
async function syncConnections(pool: pg.Pool, cfg: Config): Promise<void> {
  if (cfg.erpConnections.length === 0) return;
  const saved = await saveConnections(pool, cfg.erpConnections, 'system:config');
  if (!saved.ok) throw new ProblemError(saved.problems);
}

const today = (): string => new Date().toISOString().slice(0, 10);

function dateFlag(value: string | undefined, flag: string): string {
  if (value === undefined) return today();
  if (!isIsoDate(value)) throw new ProblemError([{ path: flag, code: 'invalid_date', message: 'must be a real date written YYYY-MM-DD' }]);
  return value;
}

export function registerErpCommands(program: Command): void {
  const erp = program
    .command('erp')
    .description('ERP connections, the mappings from Accrue ids to ERP ids, and checking them in the ERP (docs/mappings.md)');
  registerErpConnections(erp);
  registerErpMappings(erp);
  registerErpCheck(erp);
}

function registerErpConnections(erp: Command): void {
  erp
    .command('connections')
    .description('the ERP connections with their status, when parked, and the legal entities that post to each')
    .action(async () => {
      await withStore(async (store, cfg) => {
        await syncConnections(store.pool, cfg);
        const connections = await listConnections(store.pool);
        const rows = connections.map((c) => [
          c.name,
          c.kind,
          c.status + (c.status_reason ? ` (${c.status_reason})` : ''),
          c.parked_until ? `until ${c.parked_until}${c.parked_reason ? ` (${c.parked_reason})` : ''}` : '',
          c.legal_entities.join(', '),
        ]);
        output(
          connections.length
            ? table(['connection', 'kind', 'status', 'parked', 'legal entities'], rows)
            : 'no ERP connections; configure erp.connections',
          connections,
        );
      });
    });
}

function registerErpMappings(erp: Command): void {
  const mappings = erp
    .command('mappings')
    .description('mappings from Accrue ids to ERP ids, per connection: versioned, effective-dated, audited');
  registerMappingsImport(mappings);
  registerMappingsList(mappings);
  registerMappingsExport(mappings);
}

function registerMappingsImport(mappings: Command): void {
  mappings
    .command('import <file>')
    .description(
      'record the mappings of a CSV (connection,kind,source,target,effective_from) or YAML (mappings: [...]) file; all rows or none; a row already in force records nothing; an empty target ends a mapping',
    )
    .option('--reason <text>', 'why, for the approver and the audit log')
    .action(async (file: string, flags: { reason?: string }) => {
      const text = readText(file);
      const format = /\.csv$/i.test(file) ? 'csv' : /\.ya?ml$/i.test(file) ? 'yaml' : undefined;
      await withStore(async (store, cfg) => {
        const actor = await commandActor(store.pool, 'change.propose');
        await syncConnections(store.pool, cfg);
        if (approvalNeeded(cfg, actor, 'mappings.import')) {
          await proposeAndReport(
            store.pool,
            actor,
            await planMappingsImport(store.pool, text, { format, origin: file, reason: flags.reason }),
          );
          return;
        }
        const result = await importMappings(store.pool, text, { by: auditActor(actor), format, origin: file });
        if (!result.ok) throw new ProblemError(result.problems);
        const o = result.value;
        const lines = [`${o.rows} rows: ${o.recorded} recorded, ${o.unchanged} already in force`];
        for (const c of o.changes)
          lines.push(
            `  ${c.connection} ${c.kind} ${c.source} from ${c.effective_from}: ${c.before ?? '(none)'} -> ${c.after ?? '(ended)'} (version ${c.version})`,
          );
        if (o.woken) lines.push(`${o.woken} documents waiting for a mapping will try again now`);
        output(lines.join('\n'), o);
      });
    });
}

function registerMappingsList(mappings: Command): void {
  mappings
    .command('list')
    .description('the mappings in force on a date (default today), or with --history every version with who recorded it and when')
    .option('--connection <name>', 'only this connection')
    .option('--on <date>', 'in force on this date (YYYY-MM-DD)')
    .option('--history', 'every version ever recorded, ended ones included')
    .action(async (flags: { connection?: string; on?: string; history?: boolean }) => {
      const on = dateFlag(flags.on, '--on');
      await withStore(async (store) => {
        if (flags.history) {
          const rows = await mappingHistory(store.pool, flags.connection);
          output(
            rows.length
              ? table(
                  ['connection', 'kind', 'source', 'target', 'effective_from', 'version', 'recorded_by', 'recorded_at'],
                  rows.map((r) => [
                    r.connection,
                    r.kind,
                    r.source,
                    r.target ?? '(ended)',
                    r.effective_from,
                    `v${r.version}`,
                    r.recorded_by,
                    r.recorded_at,
                  ]),
                )
              : 'no mappings recorded',
            rows,
          );
          return;
        }
        const rows = await mappingsInForce(store.pool, on, flags.connection);
        output(
          rows.length
            ? table(
                ['connection', 'kind', 'source', 'target', 'since', 'version'],
                rows.map((r) => [r.connection, r.kind, r.source, r.target, r.effective_from, `v${r.version}`]),
              )
            : `no mappings in force on ${on}`,
          rows,
        );
      });
    });
}

function registerMappingsExport(mappings: Command): void {
  mappings
    .command('export')
    .description(
      'write the mappings (every start date, ended ones as an empty target) as CSV or YAML to standard output; importing it back records nothing',
    )
    .option('--connection <name>', 'only this connection')
    .option('--format <format>', 'csv or yaml', 'csv')
    .action(async (flags: { connection?: string; format: string }) => {
      if (flags.format !== 'csv' && flags.format !== 'yaml')
        throw new ProblemError([{ path: '--format', code: 'unknown_format', message: 'must be csv or yaml' }]);
      const format = flags.format;
      await withStore(async (store) => {
        if (globals().json) output('', await exportRows(store.pool, flags.connection));
        else process.stdout.write(await exportMappings(store.pool, format, flags.connection));
      });
    });
}

function registerErpCheck(erp: Command): void {
  erp
    .command('check')
    .description(
      'look every mapping of a connection up in the ERP and list what is unmapped, missing or inactive; exit 0 when none, 1 otherwise',
    )
    .requiredOption('--connection <name>', 'the connection to check')
    .option('--on <date>', 'the mappings in force on this date (default today)')
    .action(async (flags: { connection: string; on?: string }) => {
      const on = dateFlag(flags.on, '--on');
      await withStore(async (store, cfg) => {
        await syncConnections(store.pool, cfg);
        const connection = (await listConnections(store.pool)).find((c) => c.name === flags.connection);
        if (!connection)
          throw new ProblemError([
            {
              path: '--connection',
              code: 'unknown_connection',
              message: `no connection ${JSON.stringify(flags.connection)}; see accrue erp connections`,
            },
          ]);
        const catalog = await currentCatalog(store.pool);
        if (!catalog)
          throw new ProblemError([
            { path: '', code: 'no_catalog', message: 'no catalog has been applied; run `accrue catalog apply FILE`' },
          ]);
        const settings = { ...connection.settings, legal_entities: connection.legal_entities };
        // The connector is opened only when there is a mapping to look up, through it (and its shared limits).
        let opened: ReferenceChecker | undefined;
        const checker: ReferenceChecker = {
          async checkReference(kind, target) {
            opened ??= (await openConnection(store.pool, settings)).target;
            return opened.checkReference(kind, target);
          },
        };
        const report = await runErpCheck(store.pool, catalog.catalog, settings, checker, on);
        const shown = report.findings.filter((f) => f.state !== 'active');
        const c = report.counts;
        const summary = `${report.connection} on ${report.on}: ${c.active} active, ${c.unmapped} unmapped, ${c.missing} missing, ${c.inactive} inactive, ${c.unmapped_optional} optional not mapped`;
        output(
          [
            shown.length
              ? table(
                  ['kind', 'source', 'target', 'state', 'detail'],
                  shown.map((f) => [f.kind, f.source, f.target ?? '', f.state, f.detail]),
                )
              : '',
            summary,
            report.ok ? 'check passed' : 'check FAILED',
          ]
            .filter(Boolean)
            .join('\n'),
          report,
        );
        if (!report.ok) process.exitCode = EXIT.failed;
      });
    });
}
