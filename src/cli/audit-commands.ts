// `accrue audit`: verify the hash chain (exit 1 naming the first broken link), against signed checkpoints too; sign
// checkpoints and make their key; list records.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Command } from 'commander';
import { AUDIT_READ_LIMIT_MAX, readAudit, verifyAudit } from '../audit/log.js';
import { generateSigningKeys, publicKeyFromPem } from '../audit/checkpoint.js';
import {
  readCheckpointLog,
  verifyAgainstCheckpoints,
  writeCheckpoint,
  type CheckpointOutcome,
  type CheckpointVerdict,
} from '../audit/checkpoints.js';
import { ProblemError } from '../domain/result.js';
import { checkpointSink, type Config } from './config.js';
import { EXIT, config, output, withStore } from './context.js';
import { table } from './table.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the hash-chained audit log: who did what, when and why (docs/reconciliation.md)');
  registerVerify(audit);
  registerCheckpoint(audit);
  registerKeygen(audit);
  registerList(audit);
}

function registerVerify(audit: Command): void {
  audit
    .command('verify')
    .description(
      "recompute every record's hash from seq 1 to the head; exit 0 when intact, 1 naming the first broken link; with --checkpoint also that every signed checkpoint is still in the chain",
    )
    .option('--checkpoint <file>', 'a checkpoint log (JSON Lines, e.g. .accrue/audit-checkpoints.jsonl) to verify the chain against')
    .option(
      '--public-key <pem>',
      'with --checkpoint: a public key (PEM) the checkpoints are signed with; repeat for the keys of earlier rotations (default: the public half of audit_signing_key_file)',
      (value: string, keys: string[]) => [...keys, value],
      [] as string[],
    )
    .action(async (flags: { checkpoint?: string; publicKey: string[] }) => {
      if (flags.checkpoint !== undefined) return verifyWithCheckpoints(flags.checkpoint, flags.publicKey);
      if (flags.publicKey.length > 0)
        throw new ProblemError([
          { path: '--public-key', code: 'needs_checkpoint', message: 'verifies checkpoints: give --checkpoint FILE' },
        ]);
      await withStore(async (store) => {
        const verdict = await verifyAudit(store.pool);
        if (verdict.ok) {
          output(`audit log intact: ${verdict.count} records, head seq ${verdict.head.seq} ${verdict.head.hash}`, verdict);
          return;
        }
        output(
          `audit log BROKEN at seq ${verdict.broken_at_seq} (${verdict.reason}): ${verdict.message}\n${verdict.count} records before it verified`,
          verdict,
        );
        process.exitCode = EXIT.failed;
      });
    });
}

function registerCheckpoint(audit: Command): void {
  audit
    .command('checkpoint')
    .description(
      'sign a checkpoint of the chain now (after verifying it): append it to the checkpoint log and announce it (notification audit.checkpoint)',
    )
    .action(async () => {
      const sink = checkpointSink(config());
      if (!sink)
        throw new ProblemError([
          {
            path: 'audit_signing_key_file',
            code: 'not_configured',
            message: 'no signing key: set ACCRUE_AUDIT_SIGNING_KEY_FILE (make one with `accrue audit keygen --out DIR`)',
          },
        ]);
      await withStore(async (store) => {
        const outcome = await writeCheckpoint(store.pool, sink);
        output(checkpointText(outcome), outcome);
        if (outcome.status === 'failed') process.exitCode = EXIT.failed;
      });
    });
}

function registerKeygen(audit: Command): void {
  audit
    .command('keygen')
    .description('make an Ed25519 key pair for signing checkpoints: DIR/audit-signing-key.pem (0600) and DIR/audit-signing-key.pub.pem')
    .requiredOption('--out <dir>', 'the directory to write the two files to (created when absent; existing files are not overwritten)')
    .action((flags: { out: string }) => {
      const keys = generateSigningKeys();
      const privateFile = join(flags.out, 'audit-signing-key.pem');
      const publicFile = join(flags.out, 'audit-signing-key.pub.pem');
      mkdirSync(flags.out, { recursive: true, mode: 0o700 });
      try {
        writeFileSync(privateFile, keys.privatePem, { mode: 0o600, flag: 'wx' });
        chmodSync(privateFile, 0o600);
        writeFileSync(publicFile, keys.publicPem, { mode: 0o644, flag: 'wx' });
      } catch (error) {
        throw new ProblemError([
          { path: '--out', code: 'not_written', message: `${(error as Error).message} (existing keys are never overwritten)` },
        ]);
      }
      output(
        `signing key ${privateFile} (0600: keep it off the database host's backups; set ACCRUE_AUDIT_SIGNING_KEY_FILE to it)\npublic key ${publicFile} (give it to the auditor)\nkey_id ${keys.keyId}`,
        { private_key_file: privateFile, public_key_file: publicFile, key_id: keys.keyId },
      );
    });
}

function registerList(audit: Command): void {
  audit
    .command('list')
    .description(
      'the latest audit records (oldest of them first), or with --after the records after a seq; optionally for one subject, action or actor',
    )
    .option('--subject <id>', 'only records about this subject (an invoice id, a document id, catalog:v3, ...)')
    .option('--action <name>', 'only this action, e.g. invoice.finalize')
    .option('--actor <who>', 'only this actor, e.g. alice or system:outbox')
    .option('--after <seq>', 'the records after this seq, oldest first (to page, or to find a record by its seq)')
    .option('--limit <n>', `how many, 1 to ${AUDIT_READ_LIMIT_MAX}`, '50')
    .action(async (flags: { subject?: string; action?: string; actor?: string; after?: string; limit: string }) => {
      const limit = /^\d{1,4}$/.test(flags.limit) ? Number.parseInt(flags.limit, 10) : Number.NaN;
      if (!(limit >= 1 && limit <= AUDIT_READ_LIMIT_MAX))
        throw new ProblemError([
          { path: '--limit', code: 'out_of_range', message: `must be an integer from 1 to ${AUDIT_READ_LIMIT_MAX}` },
        ]);
      if (flags.after !== undefined && !/^(0|[1-9]\d{0,18})$/.test(flags.after))
        throw new ProblemError([{ path: '--after', code: 'not_seq', message: 'must be a sequence number (a non-negative integer)' }]);
      const filter = { subject: flags.subject, action: flags.action, actor: flags.actor, limit };
      await withStore(async (store) => {
        const records =
          flags.after === undefined
            ? (await readAudit(store.pool, { ...filter, newestFirst: true })).reverse()
            : await readAudit(store.pool, { ...filter, after: BigInt(flags.after) });
        const rows = records.map((r) => [String(r.seq), r.at, r.actor, r.action, r.subject, r.reason ?? '', summary(r.details)]);
        output(
          records.length === 0 ? 'no audit records' : table(['seq', 'at', 'actor', 'action', 'subject', 'reason', 'details'], rows),
          records,
        );
      });
    });
}

/** Limit: characters of details shown per row in the human table (--json has them whole). */
const DETAILS_CHARS_MAX = 80;

function summary(details: unknown): string {
  if (details === null || details === undefined) return '';
  const text = JSON.stringify(details);
  return text.length > DETAILS_CHARS_MAX ? `${text.slice(0, DETAILS_CHARS_MAX - 1)}…` : text;
}

/** `accrue audit verify --checkpoint FILE`: the signatures, the chain, and every checkpoint in the chain; exit 1 on any failure. */
async function verifyWithCheckpoints(file: string, publicKeyFiles: string[]): Promise<void> {
  const cfg = config();
  const keys = publicKeys(cfg, publicKeyFiles);
  const lines = readCheckpointLog(file);
  await withStore(async (store) => {
    const verdict = await verifyAgainstCheckpoints(store.pool, lines, keys);
    output(verdictText(file, verdict), verdict);
    if (!verdict.ok) process.exitCode = EXIT.failed;
  });
}

/** The public keys given, or the public half of the configured signing key. */
function publicKeys(cfg: Config, files: string[]): KeyObject[] {
  const sources = files.length > 0 ? files.map((f) => ({ file: f, origin: '--public-key' })) : [];
  if (sources.length === 0 && cfg.auditSigningKeyFile !== undefined)
    sources.push({ file: cfg.auditSigningKeyFile, origin: 'audit_signing_key_file' });
  if (sources.length === 0)
    throw new ProblemError([
      {
        path: '--public-key',
        code: 'required',
        message: 'name the public key the checkpoints are signed with (or set ACCRUE_AUDIT_SIGNING_KEY_FILE)',
      },
    ]);
  return sources.map(({ file, origin }) => {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ProblemError([{ path: origin, code: 'unreadable', message: `cannot read ${file}: ${(error as Error).message}` }]);
    }
    const key = publicKeyFromPem(pem, `${origin} ${file}`);
    if (!key.ok) throw new ProblemError(key.problems);
    return key.value;
  });
}

function verdictText(file: string, verdict: CheckpointVerdict): string {
  const chain = verdict.chain.ok
    ? `audit log intact: ${verdict.chain.count} records, head seq ${verdict.chain.head.seq} ${verdict.chain.head.hash}`
    : `audit log BROKEN at seq ${verdict.chain.broken_at_seq} (${verdict.chain.reason}): ${verdict.chain.message}`;
  const newest = verdict.newest ? `, newest seq ${verdict.newest.seq} signed ${verdict.newest.at}` : '';
  if (verdict.ok)
    return `${chain}\ncheckpoints intact: ${verdict.checkpoints} signed checkpoints in ${file}${newest}, each still in the chain`;
  return [
    `audit log FAILS its checkpoints: ${verdict.failures.length} failure(s) against ${file} (${verdict.checkpoints} signatures verified${newest})`,
    ...verdict.failures.map((f) => `  ${f.message}`),
    `the chain alone, from seq 1 to its head: ${chain.replace(/^audit log /, '')}`,
  ].join('\n');
}

function checkpointText(outcome: CheckpointOutcome): string {
  switch (outcome.status) {
    case 'signed':
      return `audit checkpoint signed: seq ${outcome.checkpoint.seq} ${outcome.checkpoint.hash} (key ${outcome.checkpoint.key_id.slice(0, 16)}) appended to ${outcome.file}, announced as ${outcome.notification_id}`;
    case 'unchanged':
      return `audit checkpoint unchanged: the head is still seq ${outcome.checkpoint.seq} (signed ${outcome.checkpoint.at})`;
    case 'not_configured':
      return outcome.message;
    case 'failed':
      return `audit checkpoint FAILED: ${outcome.message}`;
  }
}

/** After a close: says on stderr whether a checkpoint was signed; a failed one sets exit 1 (the close itself committed). */
export function reportCheckpoint(outcome: CheckpointOutcome | undefined): void {
  if (outcome === undefined) return;
  const suffix = outcome.status === 'failed' ? ' (the close itself is committed)' : '';
  process.stderr.write(`accrue: ${checkpointText(outcome)}${suffix}\n`);
  if (outcome.status === 'failed') process.exitCode = EXIT.failed;
}
