// Shared by every command: the program, global flags, configuration, the store's lifecycle and output.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { Pool } from 'pg';
import { loadConfig, type Config } from './config.js';
import { openStore, type Store } from '../store/store.js';
import { decodeUtf8 } from '../domain/strict-json.js';
import { ProblemError } from '../domain/result.js';
import { currentCatalog } from '../catalog/service.js';

export const EXIT = { ok: 0, failed: 1, badInput: 2, refused: 3 } as const;

interface GlobalFlags {
  config?: string;
  databaseUrl?: string;
  dataDir?: string;
  json?: boolean;
  keyFile?: string;
  dev?: boolean;
}

export const program = new Command();
program
  .name('accrue')
  .description('Accrue: the governed path from product usage to invoices, the books and cash.')
  .option('--config <file>', 'configuration file (YAML or JSON); also ACCRUE_CONFIG')
  .option('--database-url <url>', 'PostgreSQL server to use instead of the embedded one; also DATABASE_URL')
  .option('--data-dir <dir>', 'data directory of the embedded PostgreSQL (default ./.accrue/pg); also ACCRUE_DATA_DIR')
  .option('--json', 'machine-readable output')
  .option(
    '--key-file <file>',
    'file holding the API key a state-changing command acts with; also ACCRUE_API_KEY_FILE, or the key itself in ACCRUE_API_KEY',
  )
  .option(
    '--dev',
    'local development mode: act without a key as dev:<os user>, every permission, no second approver; the audit log labels it (also ACCRUE_DEV_MODE=1)',
  )
  .showHelpAfterError();

export function globals(): GlobalFlags {
  return program.opts<GlobalFlags>();
}

export function config(extra: { host?: string; port?: string } = {}): Config {
  return loadConfig({ ...globals(), ...extra });
}

/** Opens the store for one command and closes it on every way out, Ctrl-C included. */
export async function withStore<T>(
  work: (store: Store, cfg: Config) => Promise<T>,
  extra: { host?: string; port?: string } = {},
): Promise<T> {
  const cfg = config(extra);
  const store = await openStore({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping${store.embedded ? ' the embedded PostgreSQL' : ''}…\n`);
    store.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await work(store, cfg);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (!stopping) await store.close();
  }
}

export function output(human: string, machine: unknown): void {
  if (globals().json) process.stdout.write(`${JSON.stringify(machine, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
  else if (human) process.stdout.write(`${human}\n`);
}

export function readText(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ProblemError([{ path: 'FILE', code: 'unreadable', message: `cannot read ${path}: ${(error as Error).message}` }]);
  }
  // Decoded fatally: an invalid byte is named, never turned into U+FFFD (src/domain/strict-json.ts).
  const decoded = decodeUtf8(bytes);
  if (!decoded.ok) throw new ProblemError([{ path, code: decoded.problem.code, message: decoded.problem.message }]);
  return decoded.text;
}

/** The catalog in force; without one, a problem telling to apply one (exit 2). */
/** What every `accrue serve` passes the API server from the configuration and the environment. */
export function apiOptions(cfg: Config, pool: Pool) {
  return {
    pool,
    logger: true,
    bodyLimitBytes: cfg.bodyLimitBytes,
    futureSkewMsMax: cfg.futureSkewSeconds * 1000,
    webhookSecret: process.env.ACCRUE_WEBHOOK_SECRET,
    approvalRequired: cfg.approvalRequired,
  };
}

export async function requireCatalog(pool: Pool) {
  const current = await currentCatalog(pool);
  if (!current)
    throw new ProblemError([
      { path: '', code: 'no_catalog', message: 'no catalog has been applied; run `accrue catalog apply FILE` first' },
    ]);
  return current;
}
