// Keys limited to legal entities (docs/controls-entities.md). A route states that it honours the limit with
// `config: { entityScope: 'scoped' }`; a key limited to some entities is refused (403) on every route that does not, so
// a new route is closed to limited keys until it filters by entity. On a scoped route, a thing of another entity looks
// like it does not exist (404), lists omit it, and a filter naming another entity is refused (403) naming the field.
import type { FastifyRequest } from 'fastify';
import { entityVisible, type Actor } from '../domain/controls.js';
import { problemDetails, refuse, type ProblemDetails } from './problem.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** 'scoped': the route filters what it reads and refuses what it writes by the key's legal entities. */
    entityScope?: 'scoped';
  }
}

/** The 403 answered to a key limited to entities on a route that does not filter by entity, or undefined. */
export function unscopedRouteRefusal(
  actor: Actor,
  config: { entityScope?: 'scoped' } | undefined,
  route: string,
): ProblemDetails | undefined {
  if (actor.entities.length === 0 || config?.entityScope === 'scoped') return undefined;
  return problemDetails(
    403,
    'entity_limited_key',
    `${route} spans every legal entity; a key limited to ${actor.entities.join(', ')} may not use it (use a key without entity limits)`,
  );
}

/** The entities a scoped request may see: undefined for every entity, else the key's list. */
export function scopeEntities(request: FastifyRequest): readonly string[] | undefined {
  const entities = request.actor?.entities ?? [];
  return entities.length === 0 ? undefined : entities;
}

/** A filter a request names (`?entity=`): refused 403 naming the field when the key may not see that entity. */
export function entityFilter(request: FastifyRequest, value: string | undefined, field = 'entity'): string | undefined {
  if (value !== undefined && request.actor && !entityVisible(request.actor, value))
    refuse(
      problemDetails(403, 'entity_not_permitted', `${field}: this key is limited to ${request.actor.entities.join(', ')}`, [
        { path: field, code: 'entity_not_permitted', message: `this key may not see legal entity ${JSON.stringify(value)}` },
      ]),
    );
  return value;
}

/**
 * The one entity a request acts on, for use cases that take a single entity: the one named (checked as above), else the
 * key's only entity; a key limited to several must name one (400 naming the field).
 */
export function singleEntity(request: FastifyRequest, value: string | undefined, field = 'entity'): string | undefined {
  const named = entityFilter(request, value, field);
  if (named !== undefined) return named;
  const entities = scopeEntities(request);
  if (!entities) return undefined;
  if (entities.length === 1) return entities[0];
  return refuse(
    problemDetails(400, 'entity_required', `${field}: this key is limited to ${entities.join(', ')}; name one of them`, [
      { path: field, code: 'required', message: `name one of ${entities.join(', ')}` },
    ]),
  );
}

/** Whether the request's key may see a thing of this entity (unknown entity: only an unlimited key). */
export function visibleTo(request: FastifyRequest, entity: string | null | undefined): boolean {
  const entities = scopeEntities(request);
  if (!entities) return true;
  return entity != null && entities.includes(entity);
}

/** A single resource of another entity answered as not found, with the same words as a missing one. */
export function hideUnlessVisible(request: FastifyRequest, entity: string | null | undefined, notFound: string): void {
  if (!visibleTo(request, entity)) refuse(problemDetails(404, 'not_found', notFound));
}
