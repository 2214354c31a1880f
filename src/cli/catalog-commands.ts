// `accrue catalog`: apply a catalog, show the one in force, list its versions (docs/catalog.md).
import { approvalNeeded, commandActor, proposeAndReport } from './auth.js';
import { auditActor } from '../domain/controls.js';
import { catalogDiff, planCatalogChange } from '../controls/apply.js';
import type { Command } from 'commander';
import { applyCatalog, currentCatalog, listCatalogVersions } from '../catalog/service.js';
import { ProblemError } from '../domain/result.js';
import { output, readText, withStore } from './context.js';
import { table } from './table.js';

const formatOf = (file: string) => (/\.json$/i.test(file) ? 'json' : undefined);

async function submitCatalog(file: string, reason: string | undefined): Promise<void> {
  const text = readText(file);
  await withStore(async (store, cfg) => {
    const actor = await commandActor(store.pool, 'change.propose');
    if (approvalNeeded(cfg, actor, 'catalog.apply')) {
      await proposeAndReport(
        store.pool,
        actor,
        await planCatalogChange(store.pool, text, { format: formatOf(file), source: file, reason }),
      );
      return;
    }
    const result = await applyCatalog(store.pool, text, { by: auditActor(actor), source: file, format: formatOf(file) });
    if (!result.ok) throw new ProblemError(result.problems);
    const { version, hash, changed } = result.value;
    output(
      changed
        ? `catalog version ${version} applied (sha256 ${hash})`
        : `unchanged: catalog version ${version} already has this content (sha256 ${hash})`,
      result.value,
    );
  });
}

export function registerCatalogCommands(program: Command): void {
  const catalog = program.command('catalog').description('load and inspect the catalog (docs/catalog.md)');
  catalog
    .command('diff <file>')
    .description('validate a YAML or JSON catalog and show how it differs from the version in force (prices, plans, customers, tax rates)')
    .action(async (file: string) => {
      const text = readText(file);
      await withStore(async (store) => {
        const d = await catalogDiff(store.pool, text, formatOf(file));
        output(d.changed ? d.diff : `no difference: the catalog in force has this content (sha256 ${d.hash})`, d);
      });
    });
  for (const name of ['propose', 'apply'])
    catalog
      .command(`${name} <file>`)
      .description(
        name === 'propose'
          ? 'propose a catalog as the next version, with its diff, for a different principal with the controller role to approve (`accrue changes approve`)'
          : 'the same as propose where catalog changes need approval (the default); applies at once where controls.approval_required leaves catalog.apply out, and in development mode',
      )
      .option('--reason <text>', 'why, for the approver and the audit log')
      .action(async (file: string, flags: { reason?: string }) => submitCatalog(file, flags.reason));

  catalog
    .command('show')
    .description('print the catalog in force as JSON')
    .action(async () => {
      await withStore(async (store) => {
        const current = await currentCatalog(store.pool);
        if (!current)
          throw new ProblemError([
            { path: '', code: 'no_catalog', message: 'no catalog has been applied; run `accrue catalog apply FILE`' },
          ]);
        process.stdout.write(`${JSON.stringify({ version: current.version, hash: current.hash, catalog: current.catalog }, null, 2)}\n`);
      });
    });
  catalog
    .command('versions')
    .description('list catalog versions with who applied them, when, and their content hash')
    .action(async () => {
      await withStore(async (store) => {
        const versions = await listCatalogVersions(store.pool);
        output(
          table(
            ['version', 'applied_at', 'applied_by', 'sha256'],
            versions.map((v) => [String(v.version), v.applied_at, v.applied_by, v.hash.slice(0, 16)]),
          ),
          versions,
        );
      });
    });
}
