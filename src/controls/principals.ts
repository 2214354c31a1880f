// Principals: the named people and services that hold roles (src/domain/controls.ts) and own API keys. Only a principal
// with the admin role manages them, and no one changes their own roles. The first admin is made by `accrue principals
// bootstrap`, which works only while the database has no enabled admin.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { appendAudit } from '../audit/log.js';
import { auditActor, isRole, ROLES, type Actor, type Role } from '../domain/controls.js';
import { ProblemError } from '../domain/result.js';
import { transaction } from '../store/store.js';
import { createKey, forgetKeys } from './keys.js';

export interface Principal {
  id: string;
  name: string;
  kind: 'person' | 'service';
  roles: Role[];
  created_by: string;
  created_at: string;
  disabled_at: string | null;
}

export const PRINCIPAL_NAME = /^[a-z0-9][a-z0-9._@-]{0,99}$/;
const PRINCIPAL_KINDS = ['person', 'service'] as const;

/** The roles from a comma-separated list, each known, at least one; a problem naming the field otherwise. */
export function parseRoles(list: string | readonly string[], path = 'roles'): Role[] {
  const items = (typeof list === 'string' ? list.split(',') : [...list]).map((r) => r.trim()).filter(Boolean);
  const unknown = items.filter((r) => !isRole(r));
  if (items.length === 0 || unknown.length > 0)
    throw new ProblemError([
      {
        path,
        code: 'invalid_role',
        message: `${unknown.length ? `unknown role(s) ${unknown.join(', ')}; ` : ''}give one or more of ${ROLES.join(', ')}`,
      },
    ]);
  return [...new Set(items as Role[])].sort();
}

function checkInput(input: { name: string; kind: string }): void {
  if (!PRINCIPAL_NAME.test(input.name))
    throw new ProblemError([
      { path: 'name', code: 'invalid', message: 'a principal name is 1–100 of a-z 0-9 . _ @ - and starts with a letter or digit' },
    ]);
  if (!(PRINCIPAL_KINDS as readonly string[]).includes(input.kind))
    throw new ProblemError([{ path: 'kind', code: 'invalid', message: 'a principal is a person or a service' }]);
}

const COLUMNS = `id, name, kind, roles, created_by, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
  to_char(disabled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS disabled_at`;

async function insertPrincipal(
  client: pg.PoolClient,
  input: { name: string; kind: 'person' | 'service'; roles: Role[] },
  by: string,
): Promise<Principal> {
  const id = `prn_${randomBytes(6).toString('hex')}`;
  const taken = (await client.query('SELECT 1 FROM principals WHERE name = $1', [input.name])).rowCount;
  if (taken) throw new ProblemError([{ path: 'name', code: 'conflict', message: `a principal named ${input.name} exists` }]);
  return (
    await client.query<Principal>(
      `INSERT INTO principals (id, name, kind, roles, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
      [id, input.name, input.kind, input.roles, by],
    )
  ).rows[0]!;
}

/** Creates a principal; the actor must hold principals.manage (the caller checks) and is recorded. */
export async function createPrincipal(
  pool: pg.Pool,
  input: { name: string; kind: 'person' | 'service'; roles: Role[] },
  by: Actor,
): Promise<Principal> {
  checkInput(input);
  return transaction(pool, async (client) => {
    const principal = await insertPrincipal(client, input, auditActor(by));
    await appendAudit(client, {
      actor: auditActor(by),
      action: 'principal.create',
      subject: principal.id,
      details: { name: principal.name, kind: principal.kind, roles: principal.roles, dev_mode: by.dev ?? false },
    });
    return principal;
  });
}

/**
 * The first admin: allowed only while no enabled principal holds the admin role. Creates the principal and its first
 * key in one transaction and returns the key's secret (shown once).
 */
export async function bootstrapAdmin(pool: pg.Pool, input: { name: string; osUser: string }) {
  checkInput({ name: input.name, kind: 'person' });
  const principal = await transaction(pool, async (client) => {
    await client.query('LOCK TABLE principals IN SHARE ROW EXCLUSIVE MODE');
    const admins = (await client.query("SELECT 1 FROM principals WHERE 'admin' = ANY (roles) AND disabled_at IS NULL")).rowCount;
    if (admins)
      throw new ProblemError([
        { path: 'name', code: 'already_bootstrapped', message: 'an admin exists: ask them (`accrue principals create`) for a principal' },
      ]);
    const made = await insertPrincipal(client, { name: input.name, kind: 'person', roles: ['admin'] }, `bootstrap:${input.osUser}`);
    await appendAudit(client, {
      actor: `bootstrap:${input.osUser}`,
      action: 'principal.bootstrap',
      subject: made.id,
      details: { name: made.name, roles: made.roles },
    });
    return made;
  });
  const actor: Actor = { principal: principal.id, name: principal.name, roles: principal.roles, entities: [] };
  const { key, secret } = await createKey(pool, { principal: principal.id, name: `${principal.name}-first-key` }, actor);
  return { principal, key, secret };
}

/** Changes a principal's roles; refused for one's own principal (no one grants themselves a role). */
export async function setRoles(pool: pg.Pool, name: string, roles: Role[], by: Actor): Promise<Principal> {
  const updated = await transaction(pool, async (client) => {
    const before = await lockPrincipal(client, name);
    if (before.id === by.principal)
      throw new ProblemError([{ path: 'name', code: 'self_grant', message: 'no one changes their own roles: ask another admin' }]);
    const after = (await client.query<Principal>(`UPDATE principals SET roles = $2 WHERE id = $1 RETURNING ${COLUMNS}`, [before.id, roles]))
      .rows[0]!;
    await appendAudit(client, {
      actor: auditActor(by),
      action: 'principal.roles',
      subject: before.id,
      details: { name: before.name, before: before.roles, after: after.roles, dev_mode: by.dev ?? false },
    });
    return after;
  });
  forgetKeys(pool);
  return updated;
}

/** Disables a principal: its keys stop working at once in this process and within the key cache time elsewhere. */
export async function disablePrincipal(pool: pg.Pool, name: string, by: Actor, reason?: string): Promise<Principal> {
  const disabled = await transaction(pool, async (client) => {
    const before = await lockPrincipal(client, name);
    if (before.disabled_at) return before;
    const after = (
      await client.query<Principal>(`UPDATE principals SET disabled_at = now() WHERE id = $1 RETURNING ${COLUMNS}`, [before.id])
    ).rows[0]!;
    await appendAudit(client, {
      actor: auditActor(by),
      action: 'principal.disable',
      subject: before.id,
      ...(reason === undefined ? {} : { reason }),
      details: { name: before.name, dev_mode: by.dev ?? false },
    });
    return after;
  });
  forgetKeys(pool);
  return disabled;
}

async function lockPrincipal(client: pg.PoolClient, name: string): Promise<Principal> {
  const row = (await client.query<Principal>(`SELECT ${COLUMNS} FROM principals WHERE name = $1 OR id = $1 FOR UPDATE`, [name])).rows[0];
  if (!row) throw new ProblemError([{ path: 'name', code: 'not_found', message: `no principal ${JSON.stringify(name)}` }]);
  return row;
}

export async function listPrincipals(db: pg.Pool | pg.PoolClient): Promise<Principal[]> {
  return (await db.query<Principal>(`SELECT ${COLUMNS} FROM principals ORDER BY name`)).rows;
}
