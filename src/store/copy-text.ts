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

/** Rows as COPY's text format, a line each. */
export function copyLines(rows: ReadonlyArray<ReadonlyArray<string | null>>): string {
  let text = '';
  for (const row of rows) text += `${row.map(copyField).join('\t')}\n`;
  return text;
}
