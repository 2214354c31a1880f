// Test keys: a principal with the given roles (named uniquely per call) and one key for it, made by a test admin.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { createKey } from '../../src/controls/keys.js';
import { createPrincipal } from '../../src/controls/principals.js';
import type { Actor, Role } from '../../src/domain/controls.js';

/** The actor tests create principals and keys as (the audit log names it). */
export const TEST_ADMIN: Actor = { principal: 'system:test', name: 'test', roles: ['admin'], entities: [] };

/** Roles that let a key do what the single `admin` scope did before principals: run billing and read the audit log. */
export const OPERATOR_AUDITOR: Role[] = ['operator', 'auditor'];

export async function testKey(
  pool: pg.Pool,
  input: { name: string; roles: Role[]; entities?: string[]; sources?: string[]; kind?: 'person' | 'service' },
) {
  const name = `${input.name.toLowerCase().replace(/[^a-z0-9._@-]/g, '-')}-${randomBytes(3).toString('hex')}`;
  const principal = await createPrincipal(pool, { name, kind: input.kind ?? 'service', roles: input.roles }, TEST_ADMIN);
  const made = await createKey(
    pool,
    { principal: principal.id, name: input.name, entities: input.entities, sources: input.sources },
    TEST_ADMIN,
  );
  return { ...made, principal };
}
