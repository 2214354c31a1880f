// Catalog versions in the store: apply (new version, or a no-op for the same content) and the catalog in force.
import type pg from 'pg';
import { parseCatalog, indexCatalog, type CatalogIndex } from '../domain/catalog.js';
import type { Catalog } from '../domain/model.js';
import { ok, type Result } from '../domain/result.js';
import { transaction } from '../store/store.js';
import { appendAudit } from '../audit/log.js';

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
    await appendAudit(client, {
      actor: meta.by,
      action: 'catalog.apply',
      subject: `catalog:v${version}`,
      details: { version, hash, previous_hash: current?.content_hash ?? null, source: meta.source ?? null },
    });
    return { version, hash, changed: true };
  });
  return ok(outcome);
}

/** The catalog in force (the latest version), or undefined before any apply. */
export async function currentCatalog(db: pg.Pool | pg.PoolClient): Promise<CatalogVersion | undefined> {
  // One round trip when the head's content is already parsed (every ingest group and request reads the head).
  return versionOf(db, await readVersionRow(db, 'ORDER BY version DESC LIMIT 1'));
}

// Parsed catalogs and their indexes, by content hash: the same content is the same catalog in any database.
const parsedByHash = new Map<string, { catalog: Catalog; index: CatalogIndex }>();
const PARSED_CACHE_MAX = 16;

export async function catalogVersion(db: pg.Pool | pg.PoolClient, version: number): Promise<CatalogVersion | undefined> {
  return versionOf(db, await readVersionRow(db, 'WHERE version = $1', [version]));
}

type VersionRow = { version: number; content_hash: string; applied_at: Date; applied_by: string };

async function readVersionRow(db: pg.Pool | pg.PoolClient, where: string, values: unknown[] = []): Promise<VersionRow | undefined> {
  return (await db.query<VersionRow>(`SELECT version, content_hash, applied_at, applied_by FROM catalog_versions ${where}`, values))
    .rows[0];
}

/** A version row with its parsed content: from the cache by content hash, else read and indexed once. */
async function versionOf(db: pg.Pool | pg.PoolClient, meta: VersionRow | undefined): Promise<CatalogVersion | undefined> {
  if (!meta) return undefined;
  let parsed = parsedByHash.get(meta.content_hash);
  if (!parsed) {
    const document = (await db.query<{ document: Catalog }>('SELECT document FROM catalog_versions WHERE version = $1', [meta.version]))
      .rows[0]!.document;
    parsed = { catalog: document, index: indexCatalog(document) };
    if (parsedByHash.size >= PARSED_CACHE_MAX) parsedByHash.delete(parsedByHash.keys().next().value!);
    parsedByHash.set(meta.content_hash, parsed);
  }
  return {
    version: meta.version,
    hash: meta.content_hash,
    ...parsed,
    applied_at: meta.applied_at.toISOString(),
    applied_by: meta.applied_by,
  };
}

export async function listCatalogVersions(pool: pg.Pool) {
  return (
    await pool.query<{ version: number; content_hash: string; applied_by: string; applied_at: Date; source: string | null }>(
      'SELECT version, content_hash, applied_by, applied_at, source FROM catalog_versions ORDER BY version',
    )
  ).rows.map((r) => ({
    version: r.version,
    hash: r.content_hash,
    applied_by: r.applied_by,
    applied_at: r.applied_at.toISOString(),
    source: r.source,
  }));
}
