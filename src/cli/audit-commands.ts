// `accrue audit`: verify the hash chain (exit 1 naming the first broken link) and list records.
import type { Command } from 'commander';
import { AUDIT_READ_LIMIT_MAX, readAudit, verifyAudit } from '../audit/log.js';
import { ProblemError } from '../domain/result.js';
import { EXIT, output, withStore } from './context.js';
import { table } from './table.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the hash-chained audit log: who did what, when and why (docs/reconciliation.md)');
  audit
    .command('verify')
    .description("recompute every record's hash from seq 1 to the head; exit 0 when intact, 1 naming the first broken link")
    .action(async () => {
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
