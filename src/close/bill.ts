// One-shot billing: ingest, meter, rate and invoice in a throw-away embedded database, and write the documents.
// This is how finance tries a price change before it goes live, and what a parallel run compares.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyCatalog, catalogVersion } from '../catalog/service.js';
import { ingestFile, type FileOutcome } from '../ingest/file.js';
import { ProblemError } from '../domain/result.js';
import { openStore } from '../store/store.js';
import { closePeriod } from './close-period.js';
import { parsePeriod } from '../meter/period.js';
import { exportInvoices } from '../invoice/export.js';
import { readJournals } from '../post/journals.js';
import { exportJournals, journalsJson } from '../post/plaintext/exports.js';
import type { Invoice } from '../domain/model.js';

export interface BillOptions {
  catalogText: string;
  catalogSource: string;
  eventsFile: string;
  period: string;
  outDir: string;
  onProgress?: (done: number, total: number) => void;
}

export interface BillOutcome {
  ingest: FileOutcome;
  invoices: Invoice[];
  files: string[];
}

export async function bill(options: BillOptions): Promise<BillOutcome> {
  const dataDir = mkdtempSync(join(tmpdir(), 'accrue-bill-'));
  const store = await openStore({ dataDir });
  try {
    const applied = await applyCatalog(store.pool, options.catalogText, { by: 'accrue bill', source: options.catalogSource });
    if (!applied.ok) throw new ProblemError(applied.problems.map((p) => ({ ...p, path: `--catalog ${p.path}` })));
    const catalog = (await catalogVersion(store.pool, applied.value.version))!;
    // The files are history: an event is judged against its own period, never refused as "in the future".
    const ingest = await ingestFile(store.pool, catalog, options.eventsFile, {
      futureSkewMsMax: Number.MAX_SAFE_INTEGER,
      onProgress: options.onProgress,
    });
    // Likewise the period: the files are its history, so it is closed as of its end (a month not yet ended is not early).
    const window = parsePeriod(options.period, '--period');
    if (!window.ok) throw new ProblemError(window.problems);
    const closed = await closePeriod(store.pool, catalog, { period: options.period, now: new Date(window.value.to) });
    mkdirSync(options.outDir, { recursive: true });
    const invoicesPath = join(options.outDir, 'invoices.json');
    writeFileSync(invoicesPath, exportInvoices(closed.invoices));
    const journals = await readJournals(store.pool);
    const journalsPath = join(options.outDir, 'journals.json');
    writeFileSync(journalsPath, journalsJson(journals, catalog.catalog));
    const ledgerPath = join(options.outDir, 'ledger.journal');
    writeFileSync(ledgerPath, exportJournals('hledger', journals, catalog.catalog));
    return { ingest, invoices: closed.invoices, files: [invoicesPath, journalsPath, ledgerPath] };
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
