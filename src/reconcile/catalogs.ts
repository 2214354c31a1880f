// The catalog cache of one reconciliation run: each version loaded once, and the version in force at a moment.
import { catalogVersion, type CatalogVersion } from '../catalog/service.js';
import { invariant } from '../domain/result.js';
import type { Db } from './sides.js';

/** Catalog versions by number, loaded once per run; `at` answers which one was in force at a moment. */
export class Catalogs {
  private readonly loaded = new Map<number, CatalogVersion>();
  private applied: Array<{ version: number; at: number }> | undefined;
  constructor(private readonly db: Db) {}

  async version(version: number): Promise<CatalogVersion> {
    const cached = this.loaded.get(version);
    if (cached) return cached;
    const loaded = await catalogVersion(this.db, version);
    invariant(loaded !== undefined, `catalog version ${version} exists`);
    this.loaded.set(version, loaded);
    return loaded;
  }

  /** The version in force at a moment: what the billing run or payment that wrote a journal used. */
  async at(moment: Date): Promise<CatalogVersion> {
    this.applied ??= (
      await this.db.query<{ version: number; applied_at: Date }>('SELECT version, applied_at FROM catalog_versions ORDER BY version')
    ).rows.map((r) => ({ version: r.version, at: r.applied_at.getTime() }));
    invariant(this.applied.length > 0, 'a catalog has been applied');
    let chosen = this.applied[0]!.version;
    for (const v of this.applied) if (v.at <= moment.getTime()) chosen = v.version;
    return this.version(chosen);
  }
}
