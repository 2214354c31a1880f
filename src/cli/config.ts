// Configuration: defaults, then a file (--config, ACCRUE_CONFIG or ./accrue.config.{yaml,json}), then the
// environment, then flags; each later source wins. docs/configuration.md lists every key.
import { CHANGE_KINDS, DEFAULT_APPROVAL_REQUIRED, isChangeKind, type ChangeKind } from '../domain/controls.js';
import { existsSync, readFileSync } from 'node:fs';
import YAML from 'yaml';
import { DEFAULT_DATA_DIR } from '../store/store.js';
import { NO_ROLLOUT_LIMIT, type RolloutScope } from '../post/rollout.js';
import { METRICS_ACCESS, type MetricsAccess } from '../api/metrics.js';
import { connectionsFromFile } from '../connectors/connections.js';
import { formatProblems } from '../domain/result.js';
import type { ConnectionSettings } from '../domain/erp.js';
import { DEFAULT_CHECKPOINT_FILE, DEFAULT_CHECKPOINT_INTERVAL_SECONDS, loadSigningKey, type CheckpointSink } from '../audit/checkpoints.js';

export interface Config {
  databaseUrl?: string;
  dataDir: string;
  host: string;
  port: number;
  futureSkewSeconds: number;
  bodyLimitBytes: number;
  /** Which customers and legal entities post to external ERPs (src/post/rollout.ts); unlimited by default. */
  rollout: RolloutScope;
  /** Who may read GET /metrics: public (default) or key (an API key with the read or admin scope). */
  metricsAccess: MetricsAccess;
  /** host:port to serve GET /metrics on instead of the API's address; unset: on the API's address. */
  metricsListen?: string;
  /** ERP connections by name (`erp.connections`, src/connectors/connections.ts); none by default. */
  erpConnections: ConnectionSettings[];
  /** The change kinds that need a second person's approval (`controls.approval_required`); every one by default. */
  approvalRequired: ChangeKind[];
  /** The Ed25519 private key (PEM) audit checkpoints are signed with; unset: no checkpoint is signed (docs/operations.md). */
  auditSigningKeyFile?: string;
  /** The checkpoint log signed checkpoints are appended to (JSON Lines). */
  auditCheckpointFile: string;
  /** Seconds between the serve worker's checkpoints, each only when the audit head moved; 0: none. */
  auditCheckpointIntervalSeconds: number;
}

export const DEFAULTS: Config = {
  dataDir: DEFAULT_DATA_DIR,
  host: '127.0.0.1',
  port: 8080,
  futureSkewSeconds: 300,
  bodyLimitBytes: 4 * 1024 * 1024,
  rollout: NO_ROLLOUT_LIMIT,
  metricsAccess: 'public',
  erpConnections: [],
  approvalRequired: [...DEFAULT_APPROVAL_REQUIRED],
  auditCheckpointFile: DEFAULT_CHECKPOINT_FILE,
  auditCheckpointIntervalSeconds: DEFAULT_CHECKPOINT_INTERVAL_SECONDS,
};

const ENV: Record<string, keyof Config> = {
  DATABASE_URL: 'databaseUrl',
  ACCRUE_DATA_DIR: 'dataDir',
  ACCRUE_HOST: 'host',
  ACCRUE_PORT: 'port',
  ACCRUE_FUTURE_SKEW_SECONDS: 'futureSkewSeconds',
  ACCRUE_BODY_LIMIT_BYTES: 'bodyLimitBytes',
  ACCRUE_METRICS_ACCESS: 'metricsAccess',
  ACCRUE_METRICS_LISTEN: 'metricsListen',
  ACCRUE_AUDIT_SIGNING_KEY_FILE: 'auditSigningKeyFile',
  ACCRUE_AUDIT_CHECKPOINT_FILE: 'auditCheckpointFile',
  ACCRUE_AUDIT_CHECKPOINT_INTERVAL_SECONDS: 'auditCheckpointIntervalSeconds',
};

const FILE_KEYS: Record<string, keyof Config> = {
  database_url: 'databaseUrl',
  data_dir: 'dataDir',
  host: 'host',
  port: 'port',
  future_skew_seconds: 'futureSkewSeconds',
  body_limit_bytes: 'bodyLimitBytes',
  metrics_access: 'metricsAccess',
  metrics_listen: 'metricsListen',
  audit_signing_key_file: 'auditSigningKeyFile',
  audit_checkpoint_file: 'auditCheckpointFile',
  audit_checkpoint_interval_seconds: 'auditCheckpointIntervalSeconds',
};

const NUMERIC: ReadonlySet<keyof Config> = new Set(['port', 'futureSkewSeconds', 'bodyLimitBytes', 'auditCheckpointIntervalSeconds']);

export class ConfigError extends Error {}

function assign(config: Config, key: keyof Config, value: unknown, origin: string): void {
  if (value === undefined || value === null || value === '') return;
  if (NUMERIC.has(key)) {
    const n = typeof value === 'number' ? value : Number.parseInt(String(value), 10);
    if (!Number.isSafeInteger(n) || n < 0 || String(n) !== String(value).trim())
      throw new ConfigError(`${origin}: must be a whole number, got ${JSON.stringify(value)}`);
    (config as unknown as Record<string, unknown>)[key] = n;
  } else {
    (config as unknown as Record<string, unknown>)[key] = String(value);
  }
}

export function loadConfig(
  flags: {
    config?: string;
    databaseUrl?: string;
    dataDir?: string;
    host?: string;
    port?: string;
    metricsListen?: string;
    metricsAccess?: string;
  },
  env = process.env,
): Config {
  const config: Config = { ...DEFAULTS };
  const file =
    flags.config ?? env.ACCRUE_CONFIG ?? ['accrue.config.yaml', 'accrue.config.yml', 'accrue.config.json'].find((f) => existsSync(f));
  if (file) {
    if (!existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
    const parsed = YAML.parse(readFileSync(file, 'utf8')) as Record<string, unknown> | null;
    for (const [name, value] of Object.entries(parsed ?? {})) {
      if (name === 'rollout') {
        config.rollout = rolloutFromFile(value, `${file}: rollout`);
        continue;
      }
      if (name === 'erp') {
        const result = connectionsFromFile(value, `${file}: erp`);
        if (!result.ok) throw new ConfigError(formatProblems(result.problems));
        config.erpConnections = result.value;
        continue;
      }
      if (name === 'controls') {
        config.approvalRequired = controlsFromFile(value, `${file}: controls`);
        continue;
      }
      const key = FILE_KEYS[name];
      if (!key)
        throw new ConfigError(
          `${file}: unknown key ${JSON.stringify(name)}; known keys: ${[...Object.keys(FILE_KEYS), 'rollout', 'erp', 'controls'].join(', ')}`,
        );
      assign(config, key, value, `${file}: ${name}`);
    }
  }
  for (const [name, key] of Object.entries(ENV)) assign(config, key, env[name], name);
  if (env.ACCRUE_APPROVAL_REQUIRED !== undefined)
    config.approvalRequired = changeKinds(env.ACCRUE_APPROVAL_REQUIRED, 'ACCRUE_APPROVAL_REQUIRED');
  const customers = idList(env.ACCRUE_ROLLOUT_CUSTOMERS, 'ACCRUE_ROLLOUT_CUSTOMERS');
  const entities = idList(env.ACCRUE_ROLLOUT_ENTITIES, 'ACCRUE_ROLLOUT_ENTITIES');
  if (customers || entities)
    config.rollout = { customers: customers ?? config.rollout.customers, legal_entities: entities ?? config.rollout.legal_entities };
  assign(config, 'databaseUrl', flags.databaseUrl, '--database-url');
  assign(config, 'dataDir', flags.dataDir, '--data-dir');
  assign(config, 'host', flags.host, '--host');
  assign(config, 'port', flags.port, '--port');
  assign(config, 'metricsAccess', flags.metricsAccess, '--metrics-access');
  assign(config, 'metricsListen', flags.metricsListen, '--metrics-listen');
  if (!METRICS_ACCESS.includes(config.metricsAccess))
    throw new ConfigError(`metrics access must be one of ${METRICS_ACCESS.join(', ')}, got ${JSON.stringify(config.metricsAccess)}`);
  if (config.metricsListen !== undefined) parseListen(config.metricsListen, 'metrics listen address');
  return config;
}

/** `controls: { approval_required: [kind, …] }`: which change kinds need a second person ([] for none). */
function controlsFromFile(value: unknown, origin: string): ChangeKind[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${origin}: must be a mapping`);
  const unknown = Object.keys(value).filter((k) => k !== 'approval_required');
  if (unknown.length) throw new ConfigError(`${origin}: unknown key(s) ${unknown.join(', ')}; known: approval_required`);
  const list = (value as { approval_required?: unknown }).approval_required;
  if (list === undefined) return [...DEFAULT_APPROVAL_REQUIRED];
  if (!Array.isArray(list) || list.some((k) => typeof k !== 'string'))
    throw new ConfigError(`${origin}.approval_required: must be a list of change kinds`);
  return changeKinds(list.join(','), `${origin}.approval_required`);
}

/** A comma-separated list of change kinds; `none` (or empty) for none. */
function changeKinds(text: string, origin: string): ChangeKind[] {
  const items =
    text.trim() === 'none'
      ? []
      : text
          .split(',')
          .map((k) => k.trim())
          .filter(Boolean);
  const bad = items.filter((k) => !isChangeKind(k));
  if (bad.length) throw new ConfigError(`${origin}: unknown change kind(s) ${bad.join(', ')}; known: ${CHANGE_KINDS.join(', ')}`);
  return [...new Set(items as ChangeKind[])];
}

/** `host:port` (an IPv6 host in brackets: `[::1]:9464`) as Fastify's listen options. */
export function parseListen(value: string, origin: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number.parseInt(match[3]!, 10) : NaN;
  if (!match || port < 1 || port > 65_535)
    throw new ConfigError(`${origin} must be host:port (e.g. 127.0.0.1:9464), got ${JSON.stringify(value)}`);
  return { host: match[1] ?? match[2]!, port };
}

/** A comma-separated list of ids from the environment; unset or blank means not configured. */
function idList(value: string | undefined, origin: string): string[] | null {
  if (value === undefined || value.trim() === '') return null;
  const ids = value.split(',').map((id) => id.trim());
  if (ids.some((id) => id === '')) throw new ConfigError(`${origin}: must be ids separated by commas, got ${JSON.stringify(value)}`);
  return ids;
}

/** `rollout: { customers: [...], legal_entities: [...] }`; a list left out is not configured, an empty list names no one. */
function rolloutFromFile(value: unknown, origin: string): RolloutScope {
  if (value === null || value === undefined) return NO_ROLLOUT_LIMIT;
  if (typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError(`${origin}: must be a mapping with customers and/or legal_entities`);
  const lists: Record<string, string[] | null> = { customers: null, legal_entities: null };
  for (const [name, ids] of Object.entries(value)) {
    if (!Object.hasOwn(lists, name))
      throw new ConfigError(`${origin}: unknown key ${JSON.stringify(name)}; known keys: customers, legal_entities`);
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string' || id.trim() === ''))
      throw new ConfigError(`${origin}.${name}: must be a list of ids, got ${JSON.stringify(ids)}`);
    lists[name] = ids as string[];
  }
  return { customers: lists.customers ?? null, legal_entities: lists.legal_entities ?? null };
}

/** Where signed audit checkpoints go, with the key they are signed with; undefined when no signing key is configured. */
export function checkpointSink(config: Config): CheckpointSink | undefined {
  if (config.auditSigningKeyFile === undefined) return undefined;
  return { privateKey: loadSigningKey(config.auditSigningKeyFile), file: config.auditCheckpointFile };
}
