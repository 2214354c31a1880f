// PUT /v1/catalog applies a catalog (YAML or JSON) as a new version; GET reads the one in force.
import { Type } from 'typebox';
import { parseDocument } from 'yaml';
import { CATALOG_YAML_ALIASES_MAX } from '../../domain/catalog.js';
import { applyCatalog, currentCatalog, listCatalogVersions } from '../../catalog/service.js';
import { problemDetails, problemRef, refuse, valueOr } from '../problem.js';
import { nullableString, unstorableText } from '../params.js';
import type { Problem } from '../../domain/result.js';
import { apiKeyActor, requestActor, type RouteApp, type RoutePlugin } from '../route-support.js';
import type pg from 'pg';
import type { ChangeKind } from '../../domain/controls.js';
import { catalogPlan } from '../../controls/apply.js';
import { proposeChange } from '../../controls/changes.js';
import { changeRequestRef } from './changes.js';

/** The YAML as the catalog parser reads it (YAML 1.2 core schema), or undefined when it does not parse. */
function yamlValue(text: string): unknown {
  const document = parseDocument(text.replace(/^\uFEFF/, ''), { schema: 'core', uniqueKeys: true });
  if (document.errors.length > 0) return undefined;
  try {
    return document.toJS({ maxAliasCount: CATALOG_YAML_ALIASES_MAX });
  } catch {
    return undefined;
  }
}

/** A catalog as YAML text or a JSON object; the catalog's own validator checks it (docs/catalog.md). */
const CatalogBody = Type.Unsafe<unknown>({
  content: { 'application/yaml': { schema: { type: 'string' } }, 'application/json': { schema: { type: 'object' } } },
});

const Applied = Type.Object({
  version: Type.Optional(Type.Integer()),
  hash: Type.Optional(Type.String()),
  changed: Type.Optional(Type.Boolean()),
});

const InForce = Type.Object({
  version: Type.Optional(Type.Integer()),
  hash: Type.Optional(Type.String()),
  applied_at: Type.Optional(Type.String()),
  applied_by: Type.Optional(Type.String()),
  catalog: Type.Optional(Type.Unsafe<object>({ type: 'object', additionalProperties: true })),
});

const Version = Type.Object({
  version: Type.Optional(Type.Integer()),
  hash: Type.Optional(Type.String()),
  applied_by: Type.Optional(Type.String()),
  applied_at: Type.Optional(Type.String()),
  source: Type.Optional(nullableString()),
});

const refused = (problems: Problem[]) =>
  problemDetails(
    400,
    'invalid_catalog',
    `the catalog was refused with ${problems.length} problem(s); the catalog in force is unchanged`,
    problems,
  );

export const catalogRoutes: RoutePlugin = async (app, { pool, approvalRequired }) => {
  putCatalogRoute(app, pool, approvalRequired);
  readCatalogRoutes(app, pool);
};

function putCatalogRoute(app: RouteApp, pool: pg.Pool, approvalRequired: readonly ChangeKind[]): void {
  app.put(
    '/v1/catalog',
    {
      config: { permission: 'change.propose' },
      schema: {
        summary: 'Propose (or apply) a catalog',
        description:
          'Validates the whole catalog (docs/catalog.md). Where catalog changes need a second person (controls.approval_required, the default) it is proposed with its diff and answered 202 with the change request, which a different principal with the controller role approves (POST /v1/changes/{id}/approve); otherwise it becomes a new version at once (200). The same content as the version in force is a no-op (200, changed false). An invalid catalog is refused whole with every problem listed by path, and the catalog in force is unchanged.',
        tags: ['catalog'],
        body: CatalogBody,
        response: { 200: Applied, 202: changeRequestRef(), 400: problemRef(), 401: problemRef(), 403: problemRef(), 409: problemRef() },
      },
    },
    async (request, reply) => {
      const isYaml = typeof request.body === 'string';
      const text = typeof request.body === 'string' ? request.body : JSON.stringify(request.body);
      // Text the database cannot store is refused here by path; the catalog's validator checks everything else (a YAML
      // that does not parse is left to it, which reports the syntax error).
      const unstorable = unstorableText(isYaml ? yamlValue(text) : request.body);
      if (unstorable.length > 0) refuse(refused(unstorable));
      if (approvalRequired.includes('catalog.apply')) {
        const format = isYaml ? 'yaml' : 'json';
        const plan = await catalogPlan(pool, text, format);
        if (!plan.ok) return refuse(refused(plan.problems));
        if (plan.value === 'unchanged') {
          const current = (await currentCatalog(pool))!;
          return { version: current.version, hash: current.hash, changed: false };
        }
        const { request: change } = await proposeChange(pool, requestActor(request), plan.value);
        return reply.code(202).send(change);
      }
      const result = await applyCatalog(pool, text, {
        by: apiKeyActor(request),
        source: 'api',
        format: isYaml ? 'yaml' : 'json',
      });
      return valueOr(result, refused);
    },
  );
}

function readCatalogRoutes(app: RouteApp, pool: pg.Pool): void {
  app.get(
    '/v1/catalog',
    {
      config: { permission: 'data.read' },
      schema: {
        summary: 'The catalog in force',
        tags: ['catalog'],
        response: { 200: InForce, 404: problemRef() },
      },
    },
    async () => {
      const current = await currentCatalog(pool);
      if (!current) refuse(problemDetails(404, 'no_catalog', 'no catalog has been applied'));
      return {
        version: current.version,
        hash: current.hash,
        applied_at: current.applied_at,
        applied_by: current.applied_by,
        catalog: current.catalog,
      };
    },
  );

  app.get(
    '/v1/catalog/versions',
    {
      config: { permission: 'data.read', entityScope: 'scoped' },
      schema: {
        summary: 'Every catalog version with who applied it, when and its content hash',
        tags: ['catalog'],
        response: { 200: Type.Array(Version) },
      },
    },
    async () => listCatalogVersions(pool),
  );
}
