// RFC 9457 problem details: the one place expected failures become HTTP answers (the Problem schema, the error handler).
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { ProblemError, type Problem } from '../domain/result.js';

/** The Problem schema every error answer follows; registered once as `Problem` and referenced as `Problem#`. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), code: Type.String(), message: Type.String() }))),
  },
  { additionalProperties: true },
);

export type ProblemDetails = Static<typeof ProblemSchema> & { errors?: Problem[]; [extension: string]: unknown };

/** A route's reference to the shared Problem schema. */
export const problemRef = () => Type.Unsafe<ProblemDetails>({ $ref: 'Problem#' });

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problemDetails(
  status: number,
  code: string,
  detail?: string,
  errors?: Problem[],
  extra: Record<string, unknown> = {},
): ProblemDetails {
  return {
    type: `https://accrue.dev/problems/${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    ...(detail ? { detail } : {}),
    ...(errors && errors.length > 0 ? { errors } : {}),
    ...extra,
  };
}

export function sendProblem(reply: FastifyReply, details: ProblemDetails): FastifyReply {
  return reply.code(details.status).type('application/problem+json').send(details);
}

/** An expected failure a route answers with: raised by `refuse`, answered by the error handler below. */
export class HttpProblem extends Error {
  constructor(
    readonly details: ProblemDetails,
    readonly headers: Record<string, string> = {},
  ) {
    super(details.detail ?? details.type);
    this.name = 'HttpProblem';
  }
}

/** Ends the request with this problem (the error handler sends it). */
export function refuse(details: ProblemDetails, headers?: Record<string, string>): never {
  throw new HttpProblem(details, headers);
}

/** A Result's value, or the problem `toDetails` makes of its failure. */
export function valueOr<T>(
  result: { ok: true; value: T } | { ok: false; problems: Problem[] },
  toDetails: (problems: Problem[]) => ProblemDetails,
): T {
  if (!result.ok) refuse(toDetails(result.problems));
  return result.value;
}

/** How a route names the failures its use cases raise (a ProblemError, a stage's own error); undefined leaves them to the defaults. */
export type ProblemMapper = (error: Error, request: FastifyRequest) => ProblemDetails | undefined;

type ValidationItem = { instancePath: string; message?: string; params?: Record<string, unknown> };

function validationProblem(validation: ValidationItem[]): ProblemDetails {
  const errors = validation.map((v) => ({
    path:
      v.instancePath
        .replace(/^\//, '')
        .replace(/\/(\d+)/g, '[$1]')
        .replace(/\//g, '.') + (v.params?.missingProperty ? `${v.instancePath ? '.' : ''}${String(v.params.missingProperty)}` : ''),
    code: 'invalid',
    message: v.message ?? 'is invalid',
  }));
  return problemDetails(400, 'validation', 'the request does not match the schema', errors);
}

/** The problem for an error Fastify or a use case raised, or undefined for a bug (answered 500). */
function expectedProblem(error: FastifyError & { validation?: unknown[] }, request: FastifyRequest, bodyLimitBytes: number) {
  if (error instanceof HttpProblem) return error.details;
  if (error.validation) return validationProblem(error.validation as ValidationItem[]);
  const mapped = request.routeOptions.config?.problems?.(error, request);
  if (mapped) return mapped;
  if (error instanceof ProblemError)
    return problemDetails(error.status, error.problems[0]?.code ?? 'refused', error.message, error.problems);
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return problemDetails(413, 'body_too_large', `the body is over the limit of ${bodyLimitBytes} bytes`);
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return problemDetails(415, 'unsupported_media_type', error.message);
  const status = error.statusCode ?? 500;
  if (status < 500) return problemDetails(status, 'bad_request', error.message);
  return undefined;
}

/** The API's one error handler: every expected failure as its problem; anything else logged and answered 500. */
export function problemErrorHandler(bodyLimitBytes: number) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const details = expectedProblem(error, request, bodyLimitBytes);
    if (error instanceof HttpProblem) for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
    if (details) return sendProblem(reply, details);
    reply.log.error(error);
    return sendProblem(reply, problemDetails(500, 'internal', 'an internal error occurred; nothing was half-written'));
  };
}
