// PUT /v1/catalog applies a catalog (YAML or JSON) as a new version; GET reads the one in force.
import type { FastifyInstance } from 'fastify';
import { parseDocument } from 'yaml';
import { CATALOG_YAML_ALIASES_MAX } from '../../domain/catalog.js';
import { applyCatalog, currentCatalog, listCatalogVersions } from '../../catalog/service.js';
import { problemDetails, sendProblem } from '../problem.js';
import { strictTextParser } from '../json-body.js';
import { unstorableText } from '../params.js';
import type { ServerOptions } from '../server.js';

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'];

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

export async function registerCatalogRoutes(app: FastifyInstance, options: ServerOptions): Promise<void> {
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'buffer' }, strictTextParser); // UTF-8 decoded fatally (src/api/json-body.ts)

  app.put(
    '/v1/catalog',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Apply a catalog',
        description:
          'Validates the whole catalog (docs/catalog.md) and makes it a new version; the same content as the version in force is a no-op. An invalid catalog is refused whole with every problem listed by path, and the catalog in force is unchanged.',
        tags: ['catalog'],
        body: { content: { 'application/yaml': { schema: { type: 'string' } }, 'application/json': { schema: { type: 'object' } } } },
        response: {
          200: { type: 'object', properties: { version: { type: 'integer' }, hash: { type: 'string' }, changed: { type: 'boolean' } } },
          400: { $ref: 'Problem#' },
          401: { $ref: 'Problem#' },
          403: { $ref: 'Problem#' },
        },
      },
    },
    async (request, reply) => {
      const isYaml = typeof request.body === 'string';
      const text = isYaml ? (request.body as string) : JSON.stringify(request.body);
      // Text the database cannot store is refused here by path; the catalog's validator checks everything else (a YAML
      // that does not parse is left to it, which reports the syntax error).
      const unstorable = unstorableText(isYaml ? yamlValue(text) : request.body);
      if (unstorable.length > 0)
        return sendProblem(
          reply,
          problemDetails(
            400,
            'invalid_catalog',
            `the catalog was refused with ${unstorable.length} problem(s); the catalog in force is unchanged`,
            unstorable,
          ),
        );
      const result = await applyCatalog(options.pool, text, {
        by: `api-key:${request.apiKey?.id}`,
        source: 'api',
        format: isYaml ? 'yaml' : 'json',
      });
      if (!result.ok)
        return sendProblem(
          reply,
          problemDetails(
            400,
            'invalid_catalog',
            `the catalog was refused with ${result.problems.length} problem(s); the catalog in force is unchanged`,
            result.problems,
          ),
        );
      return result.value;
    },
  );

  app.get(
    '/v1/catalog',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'The catalog in force',
        tags: ['catalog'],
        response: {
          200: {
            type: 'object',
            properties: {
              version: { type: 'integer' },
              hash: { type: 'string' },
              applied_at: { type: 'string' },
              applied_by: { type: 'string' },
              catalog: { type: 'object', additionalProperties: true },
            },
          },
          404: { $ref: 'Problem#' },
        },
      },
    },
    async (_request, reply) => {
      const current = await currentCatalog(options.pool);
      if (!current) return sendProblem(reply, problemDetails(404, 'no_catalog', 'no catalog has been applied'));
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
      config: { scope: 'read' },
      schema: {
        summary: 'Every catalog version with who applied it, when and its content hash',
        tags: ['catalog'],
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                version: { type: 'integer' },
                hash: { type: 'string' },
                applied_by: { type: 'string' },
                applied_at: { type: 'string' },
                source: { type: ['string', 'null'] },
              },
            },
          },
        },
      },
    },
    async () => listCatalogVersions(options.pool),
  );
}
