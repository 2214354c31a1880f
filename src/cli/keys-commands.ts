// `accrue keys`: create, list and revoke API keys.
import type { Command } from 'commander';
import { createKey, listKeys, revokeKey, SCOPES, type Scope } from '../api/keys.js';
import { ProblemError } from '../domain/result.js';
import { output, withStore } from './context.js';
import { table } from './table.js';

export function registerKeysCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description('API keys: each has one scope (ingest, read, admin) and, for ingest, the sources it may send');
  keys
    .command('create')
    .description('create a key and print it once (only its hash is stored)')
    .requiredOption('--scope <scope>', `one of ${SCOPES.join(', ')}`)
    .option('--name <name>', 'what the key is for', 'unnamed')
    .option('--sources <list>', 'comma-separated CloudEvents sources an ingest key may send (default: any)')
    .action(async (flags: { scope: string; name: string; sources?: string }) => {
      if (!SCOPES.includes(flags.scope as Scope))
        throw new ProblemError([{ path: '--scope', code: 'invalid', message: `must be one of ${SCOPES.join(', ')}` }]);
      await withStore(async (store) => {
        const { key, secret } = await createKey(store.pool, {
          name: flags.name,
          scope: flags.scope as Scope,
          sources: flags.sources
            ?.split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        });
        output(`${secret}\n(key ${key.id}, scope ${key.scope}; store it now: it is not shown again)`, { ...key, secret });
      });
    });
  keys
    .command('list')
    .description('list keys (never their secrets)')
    .action(async () => {
      await withStore(async (store) => {
        const rows = await listKeys(store.pool);
        output(
          table(
            ['id', 'name', 'scope', 'sources', 'revoked'],
            rows.map((r) => [r.id, r.name, r.scope, (r.sources as string[]).join(',') || '*', r.revoked_at ? 'yes' : '']),
          ),
          rows,
        );
      });
    });
  keys
    .command('revoke <id>')
    .description(
      "revoke a key: refused at once by this database's processes that have not used it in the last 5 s, and by every process within 5 s (each caches a key it has checked for that long)",
    )
    .action(async (id: string) => {
      await withStore(async (store) => {
        const done = await revokeKey(store.pool, id);
        if (!done) throw new ProblemError([{ path: 'id', code: 'not_found', message: `no active key ${id}` }]);
        output(`revoked ${id}`, { id, revoked: true });
      });
    });
}
