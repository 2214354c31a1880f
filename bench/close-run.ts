// npm run bench:close -- --customers N --events M: the month-end figure alone (also part of npm run bench).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openStore } from '../src/store/store.js';
import { benchClose } from './close.js';

const { values } = parseArgs({ options: { customers: { type: 'string', default: '10000' }, events: { type: 'string', default: '10000000' } } });
const dataDir = process.env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'accrue-bench-close-'));
const store = await openStore({ databaseUrl: process.env.DATABASE_URL, dataDir });
try {
  const f = await benchClose(store.pool, Number.parseInt(values.customers!, 10), Number.parseInt(values.events!, 10), (l) => console.error(l));
  console.log(`close a month: ${f.customers} customers, ${f.events} events, ${f.invoices} invoices: ${f.close_seconds.toFixed(1)} s; bare GROUP BY over the same events: ${f.group_by_seconds.toFixed(1)} s; ratio ${(f.close_seconds / f.group_by_seconds).toFixed(1)}`);
} finally {
  await store.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
