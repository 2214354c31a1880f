// NDJSON files: streamed as bytes line by line, each line read strictly (src/domain/strict-json.ts: UTF-8 decoded
// fatally, no repeated key, exact numbers, bounded nesting), ingested in batches; a line that cannot be read is
// rejected by its line number, naming the field and the byte within the line.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { INGEST_LIMITS, parseNdjsonLineBytes } from './cloudevent.js';
import { ingestBatch, type EventOutcome, type EventStatus, type IngestOptions } from './service.js';

export interface FileOutcome {
  lines: number;
  counts: Record<EventStatus, number>;
  /** Lines not accepted (rejected, conflict, quarantined), at most `problemsMax` of them. */
  problems: Array<{ line: number } & EventOutcome>;
  batch_ids: string[];
}

export const FILE_PROBLEMS_MAX = 1000;
/** Bytes of one line; a longer line is rejected (without being held in memory) and reading goes on after it. */
export const FILE_LINE_BYTES_MAX = 4 * INGEST_LIMITS.eventBytesMax;

type FileOptions = Omit<IngestOptions, 'channel'> & { onProgress?: (bytesRead: number, bytesTotal: number, lines: number) => void };

/** The state of one file's reading: what is counted so far, the lines waiting for a batch and the unfinished line. */
interface FileRun {
  pool: pg.Pool;
  catalog: CatalogVersion;
  options: FileOptions;
  stream: ReturnType<typeof createReadStream>;
  total: number;
  counts: Record<EventStatus, number>;
  problems: FileOutcome['problems'];
  batchIds: string[];
  lineNo: number;
  pending: Array<{ line: number; value: unknown }>;
  // The unfinished line carried between chunks; `skipping` while the rest of an over-long line goes by.
  carry: Buffer[];
  carried: number;
  skipping: boolean;
}

function note(run: FileRun, line: number, outcome: EventOutcome): void {
  run.counts[outcome.status] += 1;
  if (outcome.status !== 'accepted' && outcome.status !== 'duplicate' && run.problems.length < FILE_PROBLEMS_MAX)
    run.problems.push({ ...outcome, line });
}

/** Ingests the pending lines as one batch and reports progress. */
async function flush(run: FileRun): Promise<void> {
  if (run.pending.length === 0) return;
  const pending = run.pending;
  const outcome = await ingestBatch(
    run.pool,
    run.catalog,
    pending.map((p) => p.value),
    { ...run.options, channel: 'file' },
  );
  run.batchIds.push(outcome.batch_id);
  outcome.results.forEach((result, i) => note(run, pending[i]!.line, result));
  run.pending = [];
  run.options.onProgress?.(Math.min(run.stream.bytesRead, run.total), run.total, run.lineNo);
}

/** Reads one complete line: rejected by its number when it cannot be read, else pending for the next batch. */
function take(run: FileRun, bytes: Uint8Array): void {
  run.lineNo += 1;
  const lineNo = run.lineNo;
  const entry = parseNdjsonLineBytes(bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, -1) : bytes, lineNo);
  if (!entry) return;
  if (entry.problems) note(run, lineNo, { index: lineNo - 1, status: 'rejected', problems: entry.problems });
  else run.pending.push({ line: lineNo, value: entry.value });
}

function tooLong(run: FileRun): void {
  run.lineNo += 1;
  const lineNo = run.lineNo;
  note(run, lineNo, {
    index: lineNo - 1,
    status: 'rejected',
    problems: [
      {
        path: `line ${lineNo}`,
        code: 'line_too_long',
        message: `is longer than ${FILE_LINE_BYTES_MAX} bytes; an event is at most ${INGEST_LIMITS.eventBytesMax} bytes as canonical JSON`,
      },
    ],
  });
}

/** Takes the lines a chunk completes (flushing full batches) and carries its unfinished tail. */
async function readChunk(run: FileRun, chunk: Buffer): Promise<void> {
  let start = 0;
  for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, start)) {
    if (run.skipping) run.skipping = false;
    else if (run.carried + (at - start) > FILE_LINE_BYTES_MAX) tooLong(run);
    else take(run, run.carried === 0 ? chunk.subarray(start, at) : Buffer.concat([...run.carry, chunk.subarray(start, at)]));
    run.carry = [];
    run.carried = 0;
    start = at + 1;
    if (run.pending.length >= INGEST_LIMITS.batchEventsMax) await flush(run);
  }
  if (run.skipping || start >= chunk.length) return;
  if (run.carried + (chunk.length - start) > FILE_LINE_BYTES_MAX) {
    tooLong(run);
    run.skipping = true;
    run.carry = [];
    run.carried = 0;
  } else {
    run.carry.push(chunk.subarray(start));
    run.carried += chunk.length - start;
  }
}

export async function ingestFile(pool: pg.Pool, catalog: CatalogVersion, path: string, options: FileOptions): Promise<FileOutcome> {
  const total = (await stat(path)).size;
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  const run: FileRun = {
    pool,
    catalog,
    options,
    stream,
    total,
    counts: { accepted: 0, duplicate: 0, conflict: 0, rejected: 0, quarantined: 0 },
    problems: [],
    batchIds: [],
    lineNo: 0,
    pending: [],
    carry: [],
    carried: 0,
    skipping: false,
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) await readChunk(run, chunk);
  if (!run.skipping && run.carried > 0) take(run, Buffer.concat(run.carry));
  await flush(run);
  options.onProgress?.(total, total, run.lineNo);
  return { lines: run.lineNo, counts: run.counts, problems: run.problems, batch_ids: run.batchIds };
}
