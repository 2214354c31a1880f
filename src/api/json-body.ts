// Strict JSON bodies for the whole API: every application/json body is read as bytes by src/domain/strict-json.ts,
// so invalid UTF-8, repeated keys, numbers a double cannot carry exactly, NUL or unpaired surrogates, and nesting
// beyond JSON_DEPTH_MAX are refused with a 400 problem naming the field and the byte, never rewritten (docs/ingestion.md, "Reading JSON").
// Content-type parsers are per Fastify instance: registered on the root, they apply to every route that does not
// replace them in its own scope (POST /v1/events reads its bodies itself; POST /v1/payments keeps the raw text).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { decodeUtf8, parseStrictJsonBytes, type JsonProblem } from '../domain/strict-json.js';
import type { Problem } from '../domain/result.js';
import { problemDetails, sendProblem, type ProblemDetails } from './problem.js';

/** A body the strict reader refused; the preValidation hook answers it before any schema or handler sees it. */
export class RefusedBody {
  constructor(readonly problems: readonly Problem[]) {}
}

/** The 400 problem for a refused body: its type is the first problem's code; every problem is listed. */
export function refusedBodyProblem(problems: readonly Problem[], what = 'the body'): ProblemDetails {
  const first = problems[0];
  const code = first?.code ?? 'malformed_json';
  const shown = first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : 'is not JSON';
  return problemDetails(400, code, `${what} was refused: ${shown}; nothing was stored`, problems.map(plainProblem));
}

const plainProblem = (p: Problem | JsonProblem): Problem => ({ path: p.path, code: p.code, message: p.message });

/**
 * For a route that needs the body as text (a signature over the exact bytes): decodes UTF-8 fatally and hands the
 * text on, or a RefusedBody naming the first invalid byte. The route then reads the JSON with parseStrictJson.
 */
export function strictTextParser(
  _request: FastifyRequest,
  body: Buffer | string,
  done: (error: Error | null, body?: unknown) => void,
): void {
  if (typeof body === 'string') return done(null, body);
  const decoded = decodeUtf8(body);
  done(null, decoded.ok ? decoded.text : new RefusedBody([decoded.problem]));
}

export async function registerStrictJson(app: FastifyInstance): Promise<void> {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    // `__proto__` keys are refused here (as Fastify's own parser did): handlers may copy members by assignment.
    const parsed = parseStrictJsonBytes(body as Buffer, { refuseProtoKeys: true });
    done(null, parsed.ok ? parsed.value : new RefusedBody(parsed.problems));
  });
  // Text bodies are decoded fatally too: an invalid byte is refused, never turned into U+FFFD.
  app.addContentTypeParser('text/plain', { parseAs: 'buffer' }, strictTextParser);
  app.addHook('preValidation', async (request, reply) => {
    if (request.body instanceof RefusedBody) return sendProblem(reply, refusedBodyProblem(request.body.problems));
  });
}

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'];

/** YAML bodies (PUT /v1/catalog) decoded fatally as text; registered after the event routes, whose scope has its own parsers. */
export function registerYamlText(app: FastifyInstance): void {
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'buffer' }, strictTextParser);
}
