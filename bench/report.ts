// The figures table every bench prints: each figure beside its reference, measured in the same run, as a ratio.
export interface Figure {
  figure: string;
  value: string;
  reference: string;
  ratio: string;
}

const WIDTHS = [52, 12, 36, 6];

export function printFigures(figures: readonly Figure[]): void {
  const row = (cells: string[]) => cells.map((c, i) => c.padEnd(WIDTHS[i]!)).join('  ');
  console.log(row(['figure', 'value', 'reference', 'ratio']));
  for (const f of figures) console.log(row([f.figure, f.value, f.reference, f.ratio]));
}

/** A server setting (`current_setting`), the name passed as a parameter. */
export async function pgSetting(
  db: { query: <R extends object>(sql: string, values: unknown[]) => Promise<{ rows: R[] }> },
  name: string,
): Promise<string> {
  return (await db.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0]!.v;
}
