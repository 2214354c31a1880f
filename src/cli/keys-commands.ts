// `accrue principals` and `accrue keys`: the people and services that act, their roles, and their API keys. Managed by a
// principal with the admin role (which is not thereby an operator or an approver); the first admin is bootstrapped.
import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { createKey, listKeys, revokeKey } from '../controls/keys.js';
import { bootstrapAdmin, createPrincipal, disablePrincipal, listPrincipals, parseRoles, setRoles } from '../controls/principals.js';
import { ROLE_TITLES, ROLES } from '../domain/controls.js';
import { ProblemError } from '../domain/result.js';
import { commandActor } from './auth.js';
import { output, withStore } from './context.js';
import { table } from './table.js';

const list = (value?: string) =>
  value
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export function registerKeysCommands(program: Command): void {
  registerPrincipalCommands(program);
  const keys = program
    .command('keys')
    .description("API keys: each acts as its principal, with the principal's roles, limited to the entities and sources it names");
  keys
    .command('create')
    .description('create a key for a principal and print it once (only its hash is stored); needs the admin role')
    .requiredOption('--principal <name>', 'the principal the key acts as')
    .option('--name <name>', 'what the key is for', 'unnamed')
    .option('--entities <list>', 'comma-separated legal entities the key may see and act on (default: every entity)')
    .option('--sources <list>', 'comma-separated CloudEvents sources the key may send (default: any)')
    .action(async (flags: { principal: string; name: string; entities?: string; sources?: string }) => {
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'keys.manage');
        const { key, secret } = await createKey(
          store.pool,
          { principal: flags.principal, name: flags.name, entities: list(flags.entities), sources: list(flags.sources) },
          actor,
        );
        output(
          `${secret}\n(key ${key.id} of ${key.principal.name}, roles ${key.principal.roles.join(', ')}${key.entities.length ? `, entities ${key.entities.join(', ')}` : ''}; store it now: it is not shown again)`,
          { ...key, secret },
        );
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
            ['id', 'name', 'principal', 'roles', 'entities', 'sources', 'revoked'],
            rows.map((r) => [
              r.id,
              r.name,
              r.principal,
              r.roles.join(','),
              r.entities.join(',') || '*',
              r.sources.join(',') || '*',
              r.revoked_at ? 'yes' : '',
            ]),
          ),
          rows,
        );
      });
    });
  keys
    .command('revoke <id>')
    .description(
      "revoke a key (admin role): refused at once by this database's processes that have not used it in the last 5 s, and by every process within 5 s (each caches a key it has checked for that long)",
    )
    .action(async (id: string) => {
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'keys.manage');
        const done = await revokeKey(store.pool, id, actor);
        if (!done) throw new ProblemError([{ path: 'id', code: 'not_found', message: `no active key ${id}` }]);
        output(`revoked ${id}`, { id, revoked: true });
      });
    });
}

function registerPrincipalCommands(program: Command): void {
  const principals = program
    .command('principals')
    .description(`people and services that act, with roles: ${ROLES.map((r) => `${r} (${ROLE_TITLES[r]})`).join('; ')}`);
  principals
    .command('bootstrap')
    .description('create the first admin and its first key, printed once; refused once an enabled admin exists')
    .requiredOption('--name <name>', "the admin's name (a person)")
    .action(async (flags: { name: string }) => {
      await withStore(async (store) => {
        const { principal, key, secret } = await bootstrapAdmin(store.pool, { name: flags.name, osUser: userInfo().username });
        output(`${secret}\n(admin ${principal.name}, key ${key.id}; store it now: it is not shown again)`, { principal, key, secret });
      });
    });
  principals
    .command('create <name>')
    .description('create a principal (admin role)')
    .requiredOption('--roles <list>', `comma-separated roles: ${ROLES.join(', ')}`)
    .option('--kind <kind>', 'person or service', 'person')
    .action(async (name: string, flags: { roles: string; kind: string }) => {
      const roles = parseRoles(flags.roles, '--roles');
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'principals.manage');
        const principal = await createPrincipal(store.pool, { name, kind: flags.kind as 'person' | 'service', roles }, actor);
        output(`principal ${principal.name} (${principal.id}), roles ${principal.roles.join(', ')}`, principal);
      });
    });
  principals
    .command('roles <name>')
    .description("set a principal's roles (admin role; never one's own)")
    .requiredOption('--roles <list>', `comma-separated roles: ${ROLES.join(', ')}`)
    .action(async (name: string, flags: { roles: string }) => {
      const roles = parseRoles(flags.roles, '--roles');
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'principals.manage');
        const principal = await setRoles(store.pool, name, roles, actor);
        output(`principal ${principal.name}: roles ${principal.roles.join(', ')}`, principal);
      });
    });
  principals
    .command('disable <name>')
    .description('disable a principal: its keys stop working (admin role)')
    .option('--reason <text>', 'why, for the audit log')
    .action(async (name: string, flags: { reason?: string }) => {
      await withStore(async (store) => {
        const actor = await commandActor(store.pool, 'principals.manage');
        const principal = await disablePrincipal(store.pool, name, actor, flags.reason);
        output(`principal ${principal.name} disabled`, principal);
      });
    });
  principals
    .command('list')
    .description('list principals and their roles')
    .action(async () => {
      await withStore(async (store) => {
        const rows = await listPrincipals(store.pool);
        output(
          table(
            ['name', 'id', 'kind', 'roles', 'created_by', 'disabled'],
            rows.map((p) => [p.name, p.id, p.kind, p.roles.join(','), p.created_by, p.disabled_at ?? '']),
          ),
          rows,
        );
      });
    });
}
