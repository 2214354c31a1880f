// npm run bench:post (also part of npm run bench): posting N finalized invoices, each figure beside its reference.
//   ledger:   journals recorded through the real path (recordJournals, FINALIZE_BATCH invoices per transaction, one
//             connection, as the billing run does) vs raw COPY of the same journals and journal_lines rows into the
//             same tables in one transaction, with the balance trigger on: the hardware's own limit for those rows.
//   NetSuite: the same journals queued in the outbox and drained by drainOutbox + NetSuiteTarget against the NetSuite
//             simulator, whose concurrency limit equals the target's and whose every request takes a fixed service
//             time, vs the theoretical maximum: min(concurrency / service time, rate limit) / requests per document.
// The simulator runs in a worker thread (its own event loop), as NetSuite runs on other machines.
// Flags: --documents N (default 100000), --concurrency N (default 50), --service-ms N (default 25),
// --per-minute N (the target's rate limit, default 150000). DATABASE_URL to use a server instead of the embedded one.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem, platform, release } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import pgCopy from 'pg-copy-streams';
import type pg from 'pg';
import { openStore, transaction } from '../src/store/store.js';
import { copyLines } from '../src/store/copy-text.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../src/catalog/service.js';
import { FINALIZE_BATCH } from '../src/close/close-period.js';
import { journalsFor, outboxKey, recordJournals } from '../src/post/journals.js';
import { drainOutbox, OUTBOX_LIMITS } from '../src/post/outbox.js';
import { netsuiteExternalId } from '../src/connectors/netsuite/client.js';
import { netsuiteTarget } from '../test/support/netsuite-target.js';
import { contentHash } from '../src/domain/canonical.js';
import { taxRateAt } from '../src/domain/catalog.js';
import { minorToMajor, roundToMinor } from '../src/domain/money.js';
import type { Invoice, InvoiceLine } from '../src/domain/model.js';
import { progress } from '../src/cli/progress.js';
import { printFigures, type Figure, pgSetting, truncateBehindTriggers } from './report.js';

// The simulator in a worker thread: starts, reports its URL, and on request reports what it holds.
const SIMULATOR = `
const { parentPort, workerData } = require('node:worker_threads');
import('tsx/esm/api').then(({ register }) => { register(); return import(workerData.module); }).then(async ({ NetSuiteSimulator }) => {
  const sim = new NetSuiteSimulator(workerData.options);
  await sim.start();
  parentPort.on('message', async (message) => {
    if (message !== 'report') return;
    let rewritten = 0;
    for (const record of sim.records.values()) if (record.writes !== 1) rewritten += 1;
    parentPort.postMessage({ records: sim.records.size, creates: sim.creates, requests: sim.requests, rewritten, inFlightMax: sim.inFlightMax, externalIds: [...sim.records.keys()] });
    await sim.stop();
  });
  parentPort.postMessage({ url: sim.url });
});
`;

interface SimulatorReport {
  records: number;
  creates: number;
  requests: number;
  rewritten: number;
  inFlightMax: number;
  externalIds: string[];
}

const { values: flags } = parseArgs({
  options: {
    documents: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '50' },
    'service-ms': { type: 'string', default: '25' },
    'per-minute': { type: 'string', default: '150000' },
  },
});
const DOCUMENTS = Number.parseInt(flags.documents!, 10);
const CONCURRENCY = Number.parseInt(flags.concurrency!, 10);
const SERVICE_MS = Number.parseInt(flags['service-ms']!, 10);
const PER_MINUTE = Number.parseInt(flags['per-minute']!, 10);
const POSTING_DATE = '2026-10-31';

/** A finalized October invoice with four charge lines (flat platform fee, three usage products) and its tax. */
function benchInvoice(i: number, catalog: CatalogVersion): Invoice {
  const customers = catalog.catalog.customers;
  const customer = customers[i % customers.length]!;
  const entity = catalog.catalog.legal_entities.find((e) => e.id === customer.legal_entity)!;
  const rate = taxRateAt(
    catalog.catalog.tax_rates.find((t) => t.jurisdiction === customer.tax_jurisdiction)!,
    '2026-10-01',
  )!;
  const amounts: Array<[InvoiceLine['kind'], string, bigint]> = [
    ['flat', 'platform', 50_000n],
    ['usage', 'api', 1_000n + BigInt((i * 7_919) % 100_000)],
    ['usage', 'storage', 500n + BigInt((i * 104_729) % 250_000)],
    ['usage', 'analytics', 2_500n + BigInt((i * 1_299_709) % 40_000)],
  ];
  const lines: InvoiceLine[] = amounts.map(([kind, product, amount_minor], index) => ({
    line_no: index + 1,
    kind,
    product,
    meter: null,
    price_id: null,
    price_version: null,
    description: `${product} October 2026`,
    quantity: '1',
    unit_amount: null,
    tiers: [],
    amount_minor,
    period_start: '2026-10-01',
    period_end: '2026-11-01',
    taxable: true,
  }));
  const subtotal = lines.reduce((sum, l) => sum + l.amount_minor, 0n);
  const tax = roundToMinor(minorToMajor(subtotal, entity.currency).times(rate), entity.currency, entity.rounding);
  const id = `inv_bench_${String(i).padStart(7, '0')}`;
  return {
    id,
    key: `inv:v1:${entity.id}:${customer.id}:${entity.currency}:bench-${i}`,
    kind: 'invoice',
    number: `${entity.invoice_number_prefix}B${String(i).padStart(7, '0')}`,
    status: 'finalized',
    legal_entity: entity.id,
    customer: customer.id,
    currency: entity.currency,
    period_start: '2026-10-01',
    period_end: '2026-11-01',
    rounding: entity.rounding,
    lines,
    subtotal_minor: subtotal,
    discount_minor: 0n,
    credits_applied_minor: 0n,
    tax_lines: [{ jurisdiction: customer.tax_jurisdiction, rate, taxable_minor: subtotal, tax_minor: tax }],
    tax_minor: tax,
    total_minor: subtotal + tax,
    rating_run: 'bench',
  };
}

/** The rows exactly as recordJournals writes them (no closed periods, so every journal posts as dated). */
function ledgerCopyText(
  invoices: readonly Invoice[],
  catalog: CatalogVersion,
): { journals: Buffer; lines: Buffer; journalCount: number; lineCount: number } {
  const heads: Array<Array<string | null>> = [];
  const lines: Array<Array<string | null>> = [];
  for (const invoice of invoices) {
    for (const j of journalsFor(invoice, catalog, POSTING_DATE)) {
      heads.push([
        j.id,
        j.kind,
        j.legal_entity,
        j.posting_date,
        j.source_document,
        invoice.number,
        j.memo,
        contentHash(j),
        j.posting_date,
        'as_dated',
      ]);
      for (const l of j.lines)
        lines.push([
          j.id,
          String(l.line_no),
          l.account,
          l.debit_minor.toString(),
          l.credit_minor.toString(),
          l.currency,
          l.customer ?? null,
          l.product ?? null,
          l.memo ?? null,
        ]);
    }
  }
  return { journals: copyLines(heads), lines: copyLines(lines), journalCount: heads.length, lineCount: lines.length };
}

/** Both COPYs in one transaction, timed to the commit, where the deferred balance trigger runs for every line. */
async function timeLedgerCopy(pool: pg.Pool, text: { journals: Buffer; lines: Buffer }): Promise<number> {
  const db = await pool.connect();
  try {
    const start = process.hrtime.bigint();
    await db.query('BEGIN');
    await pipeline(
      Readable.from([text.journals]),
      db.query(
        pgCopy.from(
          'COPY journals (id, kind, legal_entity, posting_date, source_document, source_number, memo, content_hash, dated_on, posting_policy) FROM STDIN',
        ),
      ),
    );
    await pipeline(
      Readable.from([text.lines]),
      db.query(
        pgCopy.from(
          'COPY journal_lines (journal_id, line_no, account, debit_minor, credit_minor, currency, customer, product, memo) FROM STDIN',
        ),
      ),
    );
    await db.query('COMMIT');
    return Number(process.hrtime.bigint() - start) / 1e9;
  } catch (error) {
    await db.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    db.release();
  }
}

/** The real path: FINALIZE_BATCH invoices per transaction, one after another, journals built and recorded as the billing run does. */
async function timeLedgerPosting(pool: pg.Pool, invoices: readonly Invoice[], catalog: CatalogVersion): Promise<number> {
  const bar = progress('bench post (built-in ledger)');
  const start = process.hrtime.bigint();
  for (let from = 0; from < invoices.length; from += FINALIZE_BATCH) {
    bar.update(from, invoices.length);
    const batch = invoices.slice(from, from + FINALIZE_BATCH);
    await transaction(pool, async (client) => {
      for (const invoice of batch) await recordJournals(client, journalsFor(invoice, catalog, POSTING_DATE), invoice.number, []);
    });
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  bar.update(invoices.length, invoices.length);
  bar.stop();
  return seconds;
}

async function count(pool: pg.Pool, sql: string): Promise<number> {
  return Number((await pool.query<{ n: string }>(sql)).rows[0]!.n);
}

async function main(): Promise<void> {
  const dataDir = process.env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'accrue-bench-post-'));
  const store = await openStore({ databaseUrl: process.env.DATABASE_URL, dataDir });
  const figures: Figure[] = [];
  const log = (line: string) => console.error(line);
  try {
    const applied = await applyCatalog(store.pool, readFileSync('examples/northwind/catalog.yaml', 'utf8'), { by: 'bench' });
    if (!applied.ok) throw new Error('catalog refused');
    const catalog = (await currentCatalog(store.pool))!;
    const setting = (name: string) => pgSetting(store.pool, name);
    const cpu = cpus();
    console.log(
      `machine: ${cpu.length} cores (${cpu[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${release()}; node ${process.version}`,
    );
    console.log(
      `postgres: ${await setting('server_version')} (${store.embedded ? 'embedded, started by the bench' : 'external'}); ` +
        `synchronous_commit=${await setting('synchronous_commit')}, fsync=${await setting('fsync')}, wal_level=${await setting('wal_level')}`,
    );

    const invoices = Array.from({ length: DOCUMENTS }, (_, i) => benchInvoice(i, catalog));
    const copyText = ledgerCopyText(invoices, catalog);
    if (copyText.journalCount !== DOCUMENTS) throw new Error(`expected one journal per invoice, got ${copyText.journalCount}`);
    console.log(
      `documents: ${DOCUMENTS} finalized invoices, one journal each, ${copyText.lineCount} journal lines (${(copyText.lineCount / DOCUMENTS).toFixed(1)} per journal)`,
    );

    // Each figure starts from empty ledger tables and a checkpoint, so neither pays for the other's writes.
    const fresh = async () => {
      await truncateBehindTriggers(store.pool, ['journals', 'journal_lines', 'outbox', 'rollout_holds']);
      await store.pool.query('CHECKPOINT');
    };

    // --- built-in ledger ---
    await fresh();
    log('post: raw COPY of the journal rows…');
    const copySeconds = await timeLedgerCopy(store.pool, copyText);
    await fresh();
    const ledgerSeconds = await timeLedgerPosting(store.pool, invoices, catalog);
    const journals = await count(store.pool, 'SELECT count(*) AS n FROM journals');
    const lines = await count(store.pool, 'SELECT count(*) AS n FROM journal_lines');
    if (journals !== DOCUMENTS || lines !== copyText.lineCount)
      throw new Error(`ledger holds ${journals} journals and ${lines} lines, expected ${DOCUMENTS} and ${copyText.lineCount}`);
    const ledgerRate = DOCUMENTS / ledgerSeconds;
    const copyRate = DOCUMENTS / copySeconds;
    figures.push({
      figure: `built-in ledger, ${FINALIZE_BATCH} per transaction (docs/s)`,
      value: ledgerRate.toFixed(0),
      reference: `raw COPY, same rows + trigger: ${copyRate.toFixed(0)}`,
      ratio: (ledgerRate / copyRate).toFixed(2),
    });

    // --- NetSuite simulator through the outbox ---
    // Queue the recorded journals as recordJournals does for an ERP target: one row per document, the key in code.
    const ids = (await store.pool.query<{ id: string }>('SELECT id FROM journals ORDER BY id')).rows.map((r) => r.id);
    await store.pool.query(
      `INSERT INTO outbox (key, target, document_kind, document_id) SELECT k, 'netsuite', 'journal', d FROM unnest($1::text[], $2::text[]) AS u(k, d)`,
      [ids.map((id) => outboxKey('netsuite', id)), ids],
    );
    await store.pool.query('VACUUM ANALYZE outbox');
    await store.pool.query('CHECKPOINT');

    const sim = new Worker(SIMULATOR, {
      eval: true,
      workerData: {
        module: new URL('../test/support/netsuite-sim.ts', import.meta.url).href,
        options: { concurrencyLimit: CONCURRENCY, timeoutDelayMs: 1_000, serviceMs: SERVICE_MS },
      },
    });
    const simFailed = new Promise<never>((_, reject) => {
      sim.once('error', reject);
      sim.once('exit', (code) => reject(new Error(`simulator worker exited with ${code}`)));
    });
    const next = <T>() => Promise.race([new Promise<T>((resolve) => sim.once('message', resolve)), simFailed]);
    const { url } = await next<{ url: string }>();
    // Signed with TBA (the simulator checks every signature), references by external ID as before mappings.
    const target = netsuiteTarget(url, {
      subsidiaries: { 'nw-us': '1', 'nw-de': '2' },
      limits: { concurrency: CONCURRENCY, requestsPerMinute: PER_MINUTE },
    });
    // Requests per document: the outbox looks the document up (GET) before it posts (PUT).
    const requestsPerDocument = 2;
    const concurrencyBound = (CONCURRENCY * 1000) / SERVICE_MS;
    const rateBound = PER_MINUTE / 60;
    const theoreticalDocsPerSecond = Math.min(concurrencyBound, rateBound) / requestsPerDocument;
    console.log(
      `netsuite simulator: concurrency limit ${CONCURRENCY}, service time ${SERVICE_MS} ms per request, target rate limit ${PER_MINUTE}/min, ` +
        `claim batch ${Math.min(OUTBOX_LIMITS.claimBatch, CONCURRENCY * 4)}; theoretical maximum min(${concurrencyBound.toFixed(0)}, ${rateBound.toFixed(0)}) req/s / ${requestsPerDocument} req per document = ${theoreticalDocsPerSecond.toFixed(0)} docs/s\n`,
    );
    const bar = progress('bench post (NetSuite simulator)');
    // Progress from the outbox itself, every 2 s: one count, nothing on the drain's own path.
    const ticker = setInterval(() => {
      void count(store.pool, "SELECT count(*) AS n FROM outbox WHERE target = 'netsuite' AND status = 'posted'").then(
        (n) => bar.update(n, DOCUMENTS),
        () => {},
      );
    }, 2_000);
    const busy = performance.eventLoopUtilization();
    const start = process.hrtime.bigint();
    const outcome = await Promise.race([drainOutbox(store.pool, target, { untilEmptyMs: 10 * 60_000 }), simFailed]).finally(() =>
      clearInterval(ticker),
    );
    const netsuiteSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    // How busy the thread running the outbox and its HTTP client was: near 1, the client's CPU is the limit, not the ERP's.
    const clientBusy = performance.eventLoopUtilization(busy).utilization;
    bar.update(DOCUMENTS, DOCUMENTS);
    bar.stop();
    sim.postMessage('report');
    const report = await next<SimulatorReport>();
    await sim.terminate();

    // The simulator must hold exactly the documents, each written once, under the keys the outbox carried.
    if (report.records !== DOCUMENTS || report.creates !== DOCUMENTS || report.rewritten !== 0) {
      throw new Error(
        `NetSuite simulator holds ${report.records} records (${report.creates} creates, ${report.rewritten} written more than once), expected exactly ${DOCUMENTS}`,
      );
    }
    const held = new Set(report.externalIds);
    const missing = ids.filter((id) => !held.has(netsuiteExternalId(outboxKey('netsuite', id))));
    if (missing.length > 0) throw new Error(`${missing.length} journals missing from the NetSuite simulator, e.g. ${missing[0]}`);
    const posted = await count(store.pool, "SELECT count(*) AS n FROM outbox WHERE target = 'netsuite' AND status = 'posted'");
    if (posted !== DOCUMENTS || outcome.dead !== 0)
      throw new Error(`outbox: ${posted} posted, ${outcome.dead} dead, expected ${DOCUMENTS} posted`);
    console.log(
      `netsuite outcome: ${outcome.posted} posted, ${outcome.found_existing} found existing, ${outcome.retried} retried, ${outcome.dead} dead; ` +
        `${report.requests} requests (${(report.requests / DOCUMENTS).toFixed(2)} per document), ${report.inFlightMax} in flight at most; ${netsuiteSeconds.toFixed(1)} s; outbox thread busy ${(clientBusy * 100).toFixed(0)}% of the time\n`,
    );
    const netsuiteRate = DOCUMENTS / netsuiteSeconds;
    figures.push({
      figure: `NetSuite sim, ${CONCURRENCY} concurrent, ${SERVICE_MS} ms/request (docs/s)`,
      value: netsuiteRate.toFixed(0),
      reference: `theoretical maximum: ${theoreticalDocsPerSecond.toFixed(0)}`,
      ratio: (netsuiteRate / theoreticalDocsPerSecond).toFixed(2),
    });
  } finally {
    await store.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }

  printFigures(figures);
}

await main();
