// Structured JSON logs: pino (the logger Fastify uses), one object per line, ISO time, the level as a word, and the
// trace and span ids of the active span so a log line leads to its trace. The billing run, the outbox worker and the
// API add the correlation ids of docs/explain.md (`correlation`, `rating_run`, `invoice`, `journal`, `outbox`).
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { traceFields } from './tracing.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The pino options every Accrue logger shares; ACCRUE_LOG_LEVEL (default info) sets the level. */
export function loggerOptions(env: NodeJS.ProcessEnv = process.env): LoggerOptions {
  const level = LOG_LEVELS.includes(env.ACCRUE_LOG_LEVEL as LogLevel) ? (env.ACCRUE_LOG_LEVEL as LogLevel) : 'info';
  return {
    level,
    base: { service: 'accrue' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: () => traceFields(),
  };
}

/** A JSON logger; by default to standard error (standard output stays for the command's own report and --json). */
export function jsonLogger(
  destination: DestinationStream = pino.destination({ fd: 2, sync: true }),
  env: NodeJS.ProcessEnv = process.env,
): Logger {
  return pino(loggerOptions(env), destination);
}

/**
 * The `log` option the billing run and the outbox worker take (`{ level, msg, ...fields }`), written through pino so
 * the lines carry time, level, trace ids and follow ACCRUE_LOG_LEVEL.
 */
export function logLine(logger: Logger): (line: Record<string, unknown>) => void {
  return (line) => {
    const { level, msg, ...fields } = line;
    const method = LOG_LEVELS.includes(level as LogLevel) ? (level as LogLevel) : 'info';
    logger[method](fields, typeof msg === 'string' ? msg : '');
  };
}
