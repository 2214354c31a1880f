// Who runs a command: every command that changes state acts as an authenticated principal, the owner of the API key
// in ACCRUE_API_KEY or in the file --key-file (ACCRUE_API_KEY_FILE) names, and is refused unless the principal's roles
// grant what it needs. Without a key, only the explicit local development mode (--dev, ACCRUE_DEV_MODE=1) acts, as
// `dev:<os user>` with every permission and no second approver; the audit log labels each such record.
import { readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Pool } from 'pg';
import { findKey, keyActor } from '../controls/keys.js';
import { ROLES, rolesGrant, rolesWith, type Actor, type ChangeKind, type Permission } from '../domain/controls.js';
import { ProblemError } from '../domain/result.js';
import { globals, output } from './context.js';
import { proposeChange, type ChangeRequest, type ProposeInput } from '../controls/changes.js';
import type { Config } from './config.js';

export const DEV_MODE_ENV = 'ACCRUE_DEV_MODE';

/** The key's secret from ACCRUE_API_KEY or the key file, or undefined when neither is given. */
export function cliSecret(): string | undefined {
  const fromEnv = process.env.ACCRUE_API_KEY?.trim();
  if (fromEnv) return fromEnv;
  const file = globals().keyFile ?? process.env.ACCRUE_API_KEY_FILE;
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ProblemError([{ path: '--key-file', code: 'unreadable', message: `cannot read ${file}: ${(error as Error).message}` }]);
  }
  if ((statSync(file).mode & 0o077) !== 0 && process.platform !== 'win32')
    process.stderr.write(`accrue: warning: key file ${file} can be read by other users; chmod 600 it\n`);
  const secret = text.trim();
  if (!secret) throw new ProblemError([{ path: '--key-file', code: 'empty', message: `${file} holds no key` }]);
  return secret;
}

export function devMode(): boolean {
  return globals().dev === true || process.env[DEV_MODE_ENV] === '1';
}

/** The development-mode actor: every role, no entity limit, labelled in the audit log as `dev:<os user>`. */
export function devActor(): Actor {
  const user = process.env.USER ?? safeUser();
  return { principal: `dev:${user}`, name: `dev:${user}`, roles: [...ROLES], entities: [], dev: true };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/**
 * The actor for a state-changing command: the key's principal when it may do `permission` (403 otherwise), the
 * development-mode actor when asked for explicitly and no key is given, and a 401 problem when neither.
 */
export async function commandActor(pool: Pool, permission: Permission): Promise<Actor> {
  const secret = cliSecret();
  if (secret === undefined) {
    if (devMode()) return devActor();
    throw new ProblemError(
      [
        {
          path: 'ACCRUE_API_KEY',
          code: 'unauthenticated',
          message: `this command needs ${permission}: give an API key (ACCRUE_API_KEY or --key-file FILE) of a principal with the ${rolesWith(permission).join(' or ')} role, or run in local development mode (--dev or ${DEV_MODE_ENV}=1), which the audit log labels as such`,
        },
      ],
      401,
    );
  }
  const key = await findKey(pool, secret);
  if (!key) throw new ProblemError([{ path: 'ACCRUE_API_KEY', code: 'unauthenticated', message: 'unknown or revoked API key' }], 401);
  const actor = keyActor(key);
  requirePermission(actor, permission);
  return actor;
}

/** Refuses (403) an actor whose roles do not grant the permission; development mode grants everything. */
export function requirePermission(actor: Actor, permission: Permission): void {
  if (actor.dev || rolesGrant(actor.roles, permission)) return;
  throw new ProblemError(
    [
      {
        path: 'ACCRUE_API_KEY',
        code: 'forbidden',
        message: `${actor.name} (roles ${actor.roles.join(', ') || 'none'}) may not ${permission}; the roles that may: ${rolesWith(permission).join(', ')}`,
      },
    ],
    403,
  );
}

/** Whether this actor's change of this kind waits for a second person (never in development mode). */
export const approvalNeeded = (cfg: Config, actor: Actor, kind: ChangeKind): boolean => !actor.dev && cfg.approvalRequired.includes(kind);

/** Records a proposal and says what happens next. */
export async function proposeAndReport(pool: Pool, actor: Actor, input: ProposeInput): Promise<ChangeRequest> {
  const { request, created } = await proposeChange(pool, actor, input);
  const lines = [
    `${created ? 'proposed' : 'already proposed'}: change ${request.id} (${request.kind}) — ${request.summary}`,
    `it comes into force when a different principal with the controller role approves it: accrue changes approve ${request.id}`,
  ];
  output(lines.join('\n'), { status: 'pending', created, request });
  return request;
}

/**
 * The legal entities a reading command may show (docs/controls-entities.md): with a key given (ACCRUE_API_KEY or
 * --key-file), its entity limit, after checking it may read (data.read); without one, every entity (`[]`): anyone with
 * the database URL can read the database anyway, so a key only narrows what the command shows.
 */
export async function readerScope(pool: Pool): Promise<readonly string[]> {
  const secret = cliSecret();
  if (secret === undefined) return [];
  const key = await findKey(pool, secret);
  if (!key) throw new ProblemError([{ path: 'ACCRUE_API_KEY', code: 'unauthenticated', message: 'unknown or revoked API key' }], 401);
  requirePermission(keyActor(key), 'data.read');
  return key.entities;
}

/** Refuses (403, naming the flag) an entity the reading command's key may not see. */
export function requireEntityInScope(scope: readonly string[], entity: string, flag: string): void {
  if (scope.length === 0 || scope.includes(entity)) return;
  throw new ProblemError(
    [{ path: flag, code: 'entity_not_permitted', message: `this key is limited to ${scope.join(', ')}; it may not see ${entity}` }],
    403,
  );
}
