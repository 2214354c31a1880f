// NDJSON files: streamed line by line, ingested in batches; a malformed line is rejected by its line number.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type pg from 'pg';
import type { CatalogVersion } from '../catalog/service.js';
import { INGEST_LIMITS } from './cloudevent.js';
import { ingestBatch, type EventOutcome, type EventStatus, type IngestOptions } from './service.js';

export interface FileOutcome {
  lines: number;
  counts: Record<EventStatus, number>;
  /** Lines not accepted (rejected, conflict, quarantined), at most `problemsMax` of them. */
  problems: Array<{ line: number } & EventOutcome>;
  batch_ids: string[];
}

export const FILE_PROBLEMS_MAX = 1000;

export async function ingestFile(
  pool: pg.Pool,
  catalog: CatalogVersion,
  path: string,
  options: Omit<IngestOptions, 'channel'> & { onProgress?: (bytesRead: number, bytesTotal: number, lines: number) => void },
): Promise<FileOutcome> {
  const total = (await stat(path)).size;
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const reader = createInterface({ input: stream, crlfDelay: Infinity });
  const counts: Record<EventStatus, number> = { accepted: 0, duplicate: 0, conflict: 0, rejected: 0, quarantined: 0 };
  const problems: FileOutcome['problems'] = [];
  const batchIds: string[] = [];
  let lineNo = 0;
  let pending: Array<{ line: number; value: unknown }> = [];

  const note = (line: number, outcome: EventOutcome) => {
    counts[outcome.status] += 1;
    if (outcome.status !== 'accepted' && outcome.status !== 'duplicate' && problems.length < FILE_PROBLEMS_MAX) problems.push({ ...outcome, line });
  };
  const flush = async () => {
    if (pending.length === 0) return;
    const outcome = await ingestBatch(pool, catalog, pending.map((p) => p.value), { ...options, channel: 'file' });
    batchIds.push(outcome.batch_id);
    outcome.results.forEach((result, i) => note(pending[i]!.line, result));
    pending = [];
    options.onProgress?.(Math.min(stream.bytesRead, total), total, lineNo);
  };

  for await (const text of reader) {
    lineNo += 1;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      note(lineNo, { index: lineNo - 1, status: 'rejected', problems: [{ path: `line ${lineNo}`, code: 'malformed_json', message: (error as Error).message }] });
      continue;
    }
    pending.push({ line: lineNo, value });
    if (pending.length >= INGEST_LIMITS.batchEventsMax) await flush();
  }
  await flush();
  options.onProgress?.(total, total, lineNo);
  return { lines: lineNo, counts, problems, batch_ids: batchIds };
}
