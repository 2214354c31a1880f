// Catalog versions in the store: apply (new version, or a no-op for the same content) and the catalog in force.
import type pg from 'pg';
import { parseCatalog, indexCatalog, type CatalogIndex } from '../domain/catalog.js';
import type { Catalog } from '../domain/model.js';
import { ok, type Result } from '../domain/result.js';
import { transaction } from '../store/store.js';

export interface CatalogVersion {
  version: number;
  hash: string;
  catalog: Catalog;
  index: CatalogIndex;
  applied_at: string;
  applied_by: string;
}

export interface ApplyOutcome {
  version: number;
  hash: string;
  changed: boolean;
}

const CATALOG_LOCK = 4_242_002;
let cached: CatalogVersion | undefined;

export async function applyCatalog(
  pool: pg.Pool,
  text: string,
  meta: { by: string; source?: string; format?: 'yaml' | 'json' },
): Promise<Result<ApplyOutcome>> {
  const parsed = parseCatalog(text, meta.format);
  if (!parsed.ok) return parsed;
  const { catalog, hash } = parsed.value;
  const outcome = await transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [CATALOG_LOCK]);
    const latest = await client.query<{ version: number; content_hash: string }>(
      'SELECT version, content_hash FROM catalog_versions ORDER BY version DESC LIMIT 1',
    );
    const current = latest.rows[0];
    if (current && current.content_hash === hash) return { version: current.version, hash, changed: false };
    const version = (current?.version ?? 0) + 1;
    await client.query('INSERT INTO catalog_versions (version, content_hash, document, applied_by, source) VALUES ($1, $2, $3, $4, $5)', [
      version,
      hash,
      JSON.stringify(catalog),
      meta.by,
      meta.source ?? null,
    ]);
    return { version, hash, changed: true };
  });
  return ok(outcome);
}

/** The catalog in force (the latest version), or undefined before any apply. Cached per version. */
export async function currentCatalog(pool: pg.Pool | pg.PoolClient): Promise<CatalogVersion | undefined> {
  const head = await pool.query<{ version: number }>('SELECT max(version) AS version FROM catalog_versions');
  const version = head.rows[0]?.version;
  if (version === null || version === undefined) return undefined;
  if (cached && cached.version === version) return cached;
  return catalogVersion(pool, version);
}

export async function catalogVersion(pool: pg.Pool | pg.PoolClient, version: number): Promise<CatalogVersion | undefined> {
  if (cached && cached.version === version) return cached;
  const row = (
    await pool.query<{ version: number; content_hash: string; document: Catalog; applied_at: Date; applied_by: string }>(
      'SELECT version, content_hash, document, applied_at, applied_by FROM catalog_versions WHERE version = $1',
      [version],
    )
  ).rows[0];
  if (!row) return undefined;
  const entry: CatalogVersion = {
    version: row.version,
    hash: row.content_hash,
    catalog: row.document,
    index: indexCatalog(row.document),
    applied_at: row.applied_at.toISOString(),
    applied_by: row.applied_by,
  };
  if (!cached || cached.version < entry.version) cached = entry;
  return entry;
}

export async function listCatalogVersions(pool: pg.Pool) {
  return (
    await pool.query<{ version: number; content_hash: string; applied_by: string; applied_at: Date; source: string | null }>(
      'SELECT version, content_hash, applied_by, applied_at, source FROM catalog_versions ORDER BY version',
    )
  ).rows.map((r) => ({ version: r.version, hash: r.content_hash, applied_by: r.applied_by, applied_at: r.applied_at.toISOString(), source: r.source }));
}
