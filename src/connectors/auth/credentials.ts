// Sealed credentials of one ERP connection (erp_credentials, migration 022): every worker reads the same row, and a
// refresh holds its lock (FOR UPDATE) so one refresh token is never spent twice.
import type pg from 'pg';
import { open, seal, type SecretKey } from './secret-box.js';

export type Secrets = Record<string, string>;

export interface StoredCredentials {
  secrets: Secrets;
  accessExpiresAt: Date | null;
  generation: number;
}

/** Upserts the sealed secrets; generation +1 on every save (refresh or connect). */
export async function saveCredentials(
  client: pg.PoolClient | pg.Pool,
  connection: string,
  secrets: Secrets,
  accessExpiresAt: Date | null,
  key: SecretKey,
): Promise<number> {
  const { sealed, keyId } = seal(key, secrets);
  const result = await client.query<{ generation: string }>(
    `INSERT INTO erp_credentials (connection, sealed, key_id, access_expires_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (connection) DO UPDATE SET sealed = EXCLUDED.sealed, key_id = EXCLUDED.key_id, access_expires_at = EXCLUDED.access_expires_at,
       generation = erp_credentials.generation + 1, updated_at = now()
     RETURNING generation`,
    [connection, sealed, keyId, accessExpiresAt],
  );
  return Number(result.rows[0]!.generation);
}

export async function readCredentials(
  db: pg.PoolClient | pg.Pool,
  connection: string,
  key: SecretKey,
  options: { forUpdate?: boolean } = {},
): Promise<StoredCredentials | undefined> {
  const result = await db.query<{ sealed: Buffer; key_id: string; access_expires_at: Date | null; generation: string }>(
    `SELECT sealed, key_id, access_expires_at, generation FROM erp_credentials WHERE connection = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
    [connection],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  return {
    secrets: open<Secrets>(key, row.sealed, row.key_id),
    accessExpiresAt: row.access_expires_at,
    generation: Number(row.generation),
  };
}
