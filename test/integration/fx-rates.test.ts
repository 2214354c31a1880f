// Exchange rates in the store (src/map/fx-rates.ts, `accrue fx`, GET /v1/fx/rates): an import is whole or nothing,
// the same file twice is nothing new, a different rate for a rate held is refused (409) and writes nothing, each
// import is in the audit log with its actor, and the rate a document of a date uses comes back with its source.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { testStore } from '../support/db.js';
import { testKey } from '../support/keys.js';
import type { Store } from '../../src/store/store.js';
import { buildServer } from '../../src/api/server.js';
import { fxRateAt, importFxRates, requireFxRate } from '../../src/map/fx-rates.js';
import { ProblemError } from '../../src/domain/result.js';

const HIST = 'test/fixtures/fx/eurofxref-hist-excerpt.csv';
const DAILY = 'test/fixtures/fx/eurofxref-excerpt.csv';
let store: Store;
let app: FastifyInstance;
let auditor: string;
let operator: string;
const dir = mkdtempSync(join(tmpdir(), 'accrue-fx-'));

before(async () => {
  store = await testStore();
  app = await buildServer({ pool: store.pool });
  auditor = (await testKey(store.pool, { name: 'audrey', roles: ['auditor'], kind: 'person' })).secret;
  operator = (await testKey(store.pool, { name: 'olivia', roles: ['operator'], kind: 'person' })).secret;
});
after(async () => {
  await app?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const count = async () => Number((await store.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM fx_rates')).rows[0]!.n);
const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['bin/accrue.js', '--database-url', store.url, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

describe('importing rates', () => {
  it('imports the ECB history file once: the same file again, or the daily file of the same day, adds nothing', async () => {
    const first = await importFxRates(store.pool, { bytes: readFileSync(HIST), fileName: 'eurofxref-hist.csv' }, 'test:fx');
    assert.deepEqual([first.added, first.unchanged, first.repeated, first.source, first.first_date], [24, 0, false, 'ecb', '2023-12-08']);
    const again = await importFxRates(store.pool, { bytes: readFileSync(HIST), fileName: 'eurofxref-hist.csv' }, 'test:fx');
    assert.deepEqual([again.added, again.repeated], [0, true]);
    const daily = await importFxRates(store.pool, { bytes: readFileSync(DAILY), fileName: 'eurofxref.csv' }, 'test:fx');
    assert.deepEqual([daily.added, daily.unchanged], [0, 24]);
    assert.equal(await count(), 24);
  });

  it('refuses a file that would change a rate held (409, naming it) and writes none of its rates', async () => {
    const text = 'date,base,quote,rate\n2023-12-07,EUR,USD,1.0800\n2023-12-08,EUR,USD,1.0800\n';
    await assert.rejects(
      importFxRates(store.pool, { bytes: Buffer.from(text), fileName: 'x.csv', source: 'ecb' }, 'test:fx'),
      (error: unknown) =>
        error instanceof ProblemError &&
        error.status === 409 &&
        error.problems.length === 1 &&
        error.problems[0]!.path === '2023-12-08 EUR/USD',
    );
    assert.equal(await count(), 24);
    // The same rate written another way (1.07770) is the rate held, not a conflict.
    const same = await importFxRates(
      store.pool,
      { bytes: Buffer.from('date,base,quote,rate\n2023-12-08,EUR,USD,1.07770\n'), fileName: 'y.csv', source: 'ecb' },
      'test:fx',
    );
    assert.deepEqual([same.added, same.unchanged], [0, 1]);
  });

  it('records each import in the audit log with its actor and counts', async () => {
    const rows = (
      await store.pool.query<{ actor: string; subject: string; details: { added: number; source: string } }>(
        "SELECT actor, subject, details FROM audit_log WHERE action = 'fx.import' ORDER BY seq",
      )
    ).rows;
    assert.deepEqual(
      rows.map((r) => [r.actor, r.details.added, r.details.source]),
      [
        ['test:fx', 24, 'ecb'],
        ['test:fx', 0, 'ecb'],
        ['test:fx', 0, 'ecb'],
      ],
    );
    assert.match(rows[0]!.subject, /^fx:v1:[0-9a-f]{64}$/);
  });
});

describe('the rate a document uses', () => {
  it('is the inverse of the ECB rate for USD->EUR on a Sunday, from the Friday; none a week later', async () => {
    assert.deepEqual(await fxRateAt(store.pool, { date: '2023-12-10', from: 'USD', to: 'EUR' }), {
      currency: 'USD',
      rate_date: '2023-12-08',
      rate: '0.927902013547',
      source: 'ecb',
      derived: 'inverse',
    });
    assert.equal(await fxRateAt(store.pool, { date: '2023-12-16', from: 'USD', to: 'EUR' }), undefined);
    await assert.rejects(
      requireFxRate(store.pool, { date: '2023-12-16', from: 'USD', to: 'EUR' }),
      /no ecb rate for USD\/EUR on 2023-12-16/,
    );
  });
});

describe('accrue fx and GET /v1/fx/rates', () => {
  it('imports from the command line with a key (exit 0), refuses an auditor (exit 3) and a bad file (exit 2, naming line and column)', () => {
    const file = join(dir, 'treasury.csv');
    writeFileSync(file, 'date,base,quote,rate\n2026-11-30,USD,EUR,0.9200\n2026-12-15,USD,EUR,0.9000\n');
    const refused = cli(['fx', 'import', file, '--source', 'treasury'], { ACCRUE_DEV_MODE: '', ACCRUE_API_KEY: auditor });
    assert.equal(refused.status, 3, refused.stderr);
    const done = cli(['fx', 'import', file, '--source', 'treasury'], { ACCRUE_DEV_MODE: '', ACCRUE_API_KEY: operator });
    assert.equal(done.status, 0, done.stderr);
    assert.match(done.stdout, /2 rates added/);
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'date,base,quote,rate\n2026-11-30,USD,EUR,1e3\n');
    const badRun = cli(['fx', 'import', bad, '--source', 'treasury']);
    assert.equal(badRun.status, 2);
    assert.match(badRun.stderr, /line 2, column 4/);
    const rate = cli(['fx', 'rate', '--date', '2026-12-20', '--from', 'USD', '--to', 'EUR', '--source', 'treasury']);
    assert.equal(rate.status, 0, rate.stderr);
    assert.equal(rate.stdout.trim(), '1 USD = 0.9000 EUR (treasury 2026-12-15)');
  });

  it('answers the rate with its source, lists rates, and names a bad query', async () => {
    const get = (url: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${auditor}` } });
    const one = await get('/v1/fx/rates?date=2023-12-08&from=USD&to=GBP');
    assert.equal(one.statusCode, 200, one.body);
    assert.deepEqual(one.json().rate, {
      currency: 'USD',
      rate: '0.795119235409',
      rate_date: '2023-12-08',
      source: 'ecb',
      derived: 'cross',
      via: 'EUR',
    });
    const list = await get('/v1/fx/rates?from=USD&source=treasury');
    assert.deepEqual(
      list.json().rates.map((r: { date: string; rate: string }) => [r.date, r.rate]),
      [
        ['2026-12-15', '0.9000'],
        ['2026-11-30', '0.9200'],
      ],
    );
    assert.equal((await get('/v1/fx/rates?date=2026-12-08&from=USD&to=GBP')).statusCode, 404);
    const bad = await get('/v1/fx/rates?date=2026-12-08&from=USD');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().errors?.[0]?.path ?? bad.json().problems?.[0]?.path, 'to');
    assert.equal((await app.inject({ method: 'GET', url: '/v1/fx/rates' })).statusCode, 401);
  });
});
