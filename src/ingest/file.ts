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

export async function ingestFile(
  pool: pg.Pool,
  catalog: CatalogVersion,
  path: string,
  options: Omit<IngestOptions, 'channel'> & { onProgress?: (bytesRead: number, bytesTotal: number, lines: number) => void },
): Promise<FileOutcome> {
  const total = (await stat(path)).size;
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  const counts: Record<EventStatus, number> = { accepted: 0, duplicate: 0, conflict: 0, rejected: 0, quarantined: 0 };
  const problems: FileOutcome['problems'] = [];
  const batchIds: string[] = [];
  let lineNo = 0;
  let pending: Array<{ line: number; value: unknown }> = [];

  const note = (line: number, outcome: EventOutcome) => {
    counts[outcome.status] += 1;
    if (outcome.status !== 'accepted' && outcome.status !== 'duplicate' && problems.length < FILE_PROBLEMS_MAX)
      problems.push({ ...outcome, line });
  };
  const flush = async () => {
    if (pending.length === 0) return;
    const outcome = await ingestBatch(
      pool,
      catalog,
      pending.map((p) => p.value),
      { ...options, channel: 'file' },
    );
    batchIds.push(outcome.batch_id);
    outcome.results.forEach((result, i) => note(pending[i]!.line, result));
    pending = [];
    options.onProgress?.(Math.min(stream.bytesRead, total), total, lineNo);
  };
  const take = (bytes: Uint8Array) => {
    lineNo += 1;
    const entry = parseNdjsonLineBytes(bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, -1) : bytes, lineNo);
    if (!entry) return;
    if (entry.problems) note(lineNo, { index: lineNo - 1, status: 'rejected', problems: entry.problems });
    else pending.push({ line: lineNo, value: entry.value });
  };
  const tooLong = () => {
    lineNo += 1;
    note(lineNo, {
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
  };

  // The unfinished line carried between chunks; `skipping` while the rest of an over-long line goes by.
  let carry: Buffer[] = [];
  let carried = 0;
  let skipping = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, start)) {
      if (skipping) skipping = false;
      else if (carried + (at - start) > FILE_LINE_BYTES_MAX) tooLong();
      else take(carried === 0 ? chunk.subarray(start, at) : Buffer.concat([...carry, chunk.subarray(start, at)]));
      carry = [];
      carried = 0;
      start = at + 1;
      if (pending.length >= INGEST_LIMITS.batchEventsMax) await flush();
    }
    if (skipping || start >= chunk.length) continue;
    if (carried + (chunk.length - start) > FILE_LINE_BYTES_MAX) {
      tooLong();
      skipping = true;
      carry = [];
      carried = 0;
    } else {
      carry.push(chunk.subarray(start));
      carried += chunk.length - start;
    }
  }
  if (!skipping && carried > 0) take(Buffer.concat(carry));
  await flush();
  options.onProgress?.(total, total, lineNo);
  return { lines: lineNo, counts, problems, batch_ids: batchIds };
}
