// `accrue catalog`: apply a catalog, show the one in force, list its versions (docs/catalog.md).
import type { Command } from 'commander';
import { applyCatalog, currentCatalog, listCatalogVersions } from '../catalog/service.js';
import { ProblemError } from '../domain/result.js';
import { output, readText, withStore } from './context.js';
import { table } from './table.js';

export function registerCatalogCommands(program: Command): void {
  const catalog = program.command('catalog').description('load and inspect the catalog (docs/catalog.md)');
  catalog
    .command('apply <file>')
    .description('validate a YAML or JSON catalog and make it the version in force; the same content twice is a no-op')
    .option('--by <who>', 'who applies it, for the version history', process.env.USER ?? 'cli')
    .action(async (file: string, flags: { by: string }) => {
      const text = readText(file);
      await withStore(async (store) => {
        const result = await applyCatalog(store.pool, text, {
          by: flags.by,
          source: file,
          format: /\.json$/i.test(file) ? 'json' : undefined,
        });
        if (!result.ok) throw new ProblemError(result.problems);
        const { version, hash, changed } = result.value;
        output(
          changed
            ? `catalog version ${version} applied (sha256 ${hash})`
            : `unchanged: catalog version ${version} already has this content (sha256 ${hash})`,
          result.value,
        );
      });
    });
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
