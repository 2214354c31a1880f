// PostgreSQL COPY's text format (https://www.postgresql.org/docs/current/sql-copy.html, "Text Format"): one row a
// line, fields separated by tabs, `\N` for NULL. In a value, backslash, tab, newline and carriage return are written
// escaped; everything else as it is (the text has no NUL, which PostgreSQL cannot store in text at all).
const SPECIAL = /[\\\t\n\r]/;
const SPECIAL_ALL = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value as a field of COPY's text format. */
export function copyText(value: string): string {
  return SPECIAL.test(value) ? value.replace(SPECIAL_ALL, (c) => ESCAPES[c]!) : value;
}

/** A value or NULL as a field of COPY's text format. */
export function copyField(value: string | null): string {
  return value === null ? '\\N' : copyText(value);
}

/** Buffers given back by CopyLines.release, for the next: at most as many as batches a server writes at once, each at most 4 MB. */
const spareBuffers: Buffer[] = [];
const SPARE_BUFFERS_MAX = 16;
const SPARE_BUFFER_BYTES_MAX = 4 * 1024 * 1024;

/**
 * COPY text encoded a line at a time into one growing buffer. In the API server's profile this cost about half of
 * encoding the same text built as one long string (V8 flattens a string built by concatenation before encoding it).
 * Lines are text with no unpaired surrogate (what validation admits), so UTF-8 encoding replaces nothing.
 */
export class CopyLines {
  #buffer: Buffer;
  #length = 0;

  constructor(bytesExpected = 64 * 1024) {
    const kept = spareBuffers.pop();
    this.#buffer = kept !== undefined && kept.length >= bytesExpected ? kept : Buffer.allocUnsafe(Math.max(bytesExpected, 1024));
  }

  /**
   * Gives the buffer back for the next lines, once nothing reads bytes() any more (a COPY that has completed). A
   * buffer of a few hundred kilobytes allocated for every batch and freed by the next collections cost the API
   * server page faults, which are dear on a virtual machine: about 40 a batch of 1,000 events (issue 19).
   */
  release(): void {
    if (spareBuffers.length < SPARE_BUFFERS_MAX && this.#buffer.length <= SPARE_BUFFER_BYTES_MAX) spareBuffers.push(this.#buffer);
    this.#buffer = Buffer.alloc(0);
    this.#length = 0;
  }

  /** Appends a line (its fields already written with copyText or copyField, ending in a newline). */
  add(line: string): void {
    const most = this.#length + line.length * 3; // a UTF-16 code unit is at most 3 bytes of UTF-8
    if (most > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(most, this.#buffer.length * 2));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    this.#length += this.#buffer.write(line, this.#length, 'utf8');
  }

  /** The lines added so far. */
  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }
}

/** Rows as COPY's text format, a line each, encoded. */
export function copyLines(rows: ReadonlyArray<ReadonlyArray<string | null>>): Buffer {
  const lines = new CopyLines();
  for (const row of rows) lines.add(`${row.map(copyField).join('\t')}\n`);
  return lines.bytes();
}
