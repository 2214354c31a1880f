// Shipped migrations are never edited: each file's SQL (comments and whitespace normalised away) is pinned here, and
// the migrator accepts a database that applied an earlier text of a migration only when that text differed in
// comments or whitespace alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { EARLIER_TEXTS, loadMigrations, migrate, normalizeSql } from '../../src/store/migrate.js';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';

const DIR = 'src/store/migrations';

/**
 * SHA-256 of normalizeSql(file) for every shipped migration. A NEW migration gets a new row here. A row is NEVER
 * changed: a shipped migration is never edited, its change goes in a new migration.
 */
const PINS: ReadonlyArray<readonly [string, string]> = [
  ['001_foundation.sql', 'bfc96ffdbba93a9518e86b931b95d05e7e4dfaa5b973be610320538a75c918e3'],
  ['002_rating_invoicing.sql', 'ff87542e91555c34804257f54cc3703fc1f350fbb1c27cacce29317fc510cc05'],
  ['003_corrections.sql', '24afbda6862fb494d4f130bc6b4f3c6166cfacbd9b9b8aff171d61ee5a1dbb7a'],
  ['004_ledger_outbox.sql', 'd0b5a9a68dd4ead3ec3128a2d3466e66ca424f8a89098c35f4adfce78cc75f2c'],
  ['005_settlement.sql', '58a6938d31cde7cb94076ddd961e91d1b5f10e8103fb8a80058720b2f895de0b'],
  ['006_accounting_periods.sql', '434f0a60fd8d21084b5c90aebfe06e711ab8211a51f92175d066cb1a7f25a14e'],
  ['007_audit.sql', '278df018cee8bf67b495d2e5a55ab9f7d45f5f15080eee559b9e49e8eea1a493'],
  ['008_reconciliation.sql', 'c9d991da96a64c8355592bd51c51a59207b1a1ccb27e90e5351b759aea6ce814'],
  ['009_payment_sync.sql', 'bdf6f94598912ae5b9027ec85da583928cbe69c6a946ad0bad276fe935e9ce8d'],
  ['010_lineage.sql', 'da41fd74cdd0c493753a4341722682ea47c68404fec5b3898a8a0e498b60fd14'],
  ['011_rollout.sql', '7b894fb429f6fa4eaca9df067e77f99337d7f518b26e9f37bbba6358c3883b00'],
  ['012_stream.sql', '114a72a243f33da594678a5b879c768f8c53ee321ad0724d06473b8dfd0a087e'],
  ['013_notifications.sql', 'bb23acb67b885979ea382f2f86499a3001069d6fdada724cf3f3c319939b64ab'],
  ['014_partitions.sql', '469ec7cef5b75da174f41220acdc723419b462b6b97f73f1b66e921ea92e4ad8'],
  ['015_rollups.sql', '832fdd8c4586092b2ce0dc1614c63d2ef681ff5b947022602b6531d872c7d4cd'],
  ['016_events_without_key_index.sql', 'ff72655e3a4d446922974cd72592cd11bc7f3194fdb29a036d71d8f6f6979595'],
  ['017_claim_keys_by_index.sql', '00caa3116f4f2d47cea844b15b56711d20866a1ad3480c5fb64f70096cc73b40'],
  ['018_ingest_abort.sql', 'c873d7a5711c04098219b9fddb8aebf6bfbeefc975d2b975c9072019f1354195'],
  ['019_billing_close.sql', 'abc27243d7c79d5ba723910f25f301835bcc5fd7fe3a15db97d0a68e29ed9ea6'],
  ['020_ingest_repeats.sql', '0190054dc1af8adcbca41e477c5f72dd586a03f543ab6460115ac92e31aebf00'],
  ['021_invoice_due_date.sql', 'fcd08f55ed06db293f4dcfcf13d8a6ebfd723c724f8944b9b84481b0757b520d'],
  ['022_erp_connections.sql', '9f066879a050360fdf7325f8869bfc196e706ef8ee27d2bb269054cf54c3e2f8'],
  ['023_outbox_waits.sql', '7acafb20561720cbfd5679dad275004fcb4bce5fd4e7a5597bb7a5dee3be7696'],
  ['024_exception_writer.sql', '5c3d8004f70c04a51bfa33712f90d37de2c41010afaff3d14b71b1098cf22094'],
  ['025_principals.sql', 'f64ffa3df86e7e9162acda4ec9e63fd6e1cd3b5a04c78d9a7b7cbac42efb2aa9'],
  ['026_books_integrity.sql', 'e02358ddde3a43b39627c6fbf750149fd43fe29016b312b9aa3c08caa5fe2a37'],
  ['027_audit_checkpoints.sql', '122894ab23c69b08e4cbc693ccea7a2bc3200fd9d5fea8c211a738f02d481a7a'],
  ['028_void_reversal.sql', '705f940407f381d7386cd81d726700ff87272451826338382b04fc77b9754aa7'],
  ['029_disputes.sql', 'd2001e49943c6dec1ea1fce1cec5cd1526c16cc9429b8cb06e8e6bf1b2502c03'],
  ['030_currencies_revenue.sql', '0ee136996b9c3790604c93913361696c3f6e85d6f216441673da6df7b9984e1c'],
  ['031_tax_mismatch.sql', 'ba1cfc4569269abcbbb234c11a76d78144f8304b3ee74b5dc58d34c1a51ac9af'],
  ['032_rollups_from_watermark.sql', 'aa25a04c4ceb24033939d1e078948c36e6527edb90f719e774d0c70e65292315'],
  ['033_events_keyed.sql', '32d8b6511a36a43738f17b49c1d48e9452c0312c3033e256adfee3bec66a4cb3'],
  ['034_events_customer_day.sql', '76439bb21e9c57fdcf410cfe907c70513f298908119c16617e75d41d69f6bc92'],
  ['035_events_lean_indexes.sql', 'b8299bdcfd3839d30ca0c8c34f092f63c0e1af5e5735a814a9fbd906f458ae37'],
  ['036_event_seq_blocks.sql', '1b5c9a7c8db23f689ef4fb07aebec9888613eef5addeea4d77515fa4a28d021d'],
];

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('shipped migrations', () => {
  const pinned = new Map(PINS);
  const migrations = loadMigrations();

  it('every file in src/store/migrations is a migration the migrator loads', () => {
    assert.deepEqual(
      readdirSync(DIR).sort(),
      migrations.map((m) => m.name),
      `every file in ${DIR} is named NNN_lower_snake.sql`,
    );
    assert.deepEqual(
      migrations.map((m) => m.version),
      migrations.map((_, i) => i + 1),
      'numbered 001, 002, … without gaps or repeats',
    );
  });

  it('is pinned, file by file, and none was changed', () => {
    const problems: string[] = [];
    for (const m of migrations) {
      const pin = pinned.get(m.name);
      if (pin === undefined)
        problems.push(
          `${m.name} has no pin: if it is a NEW migration, add ['${m.name}', '${m.sqlChecksum}'] to PINS in test/store/migrations.test.ts`,
        );
      else if (pin !== m.sqlChecksum)
        problems.push(
          `${m.name} was changed (its SQL now hashes to ${m.sqlChecksum}): shipped migrations are never edited; restore it and put the change in a new migration (never change its pin)`,
        );
    }
    for (const name of pinned.keys())
      if (!migrations.some((m) => m.name === name))
        problems.push(`${name} is pinned but missing: a shipped migration is never removed or renamed`);
    assert.deepEqual(problems, []);
  });

  it('accepts earlier texts only where they differ in comments or whitespace', () => {
    for (const [name, earlier] of Object.entries(EARLIER_TEXTS)) {
      assert.ok(pinned.has(name), `${name} is a shipped migration`);
      for (const text of earlier) assert.equal(text.sqlChecksum, pinned.get(name), `${name}: ${text.note}`);
    }
  });
});

describe('normalizeSql', () => {
  const same = (a: string, b: string) => assert.equal(normalizeSql(a), normalizeSql(b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  const differs = (a: string, b: string) =>
    assert.notEqual(normalizeSql(a), normalizeSql(b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);

  it('drops comments and whitespace', () => {
    assert.equal(
      normalizeSql('-- a table\nCREATE  TABLE t (\n  a integer, -- the a\n  b text /* the /* nested */ b */\n);\n'),
      'CREATE TABLE t(a integer,b text);',
    );
    same('SELECT a FROM t;', 'SELECT\n\ta\n  FROM t ;  -- done');
    same('SELECT a/*x*/FROM t', 'SELECT a FROM t');
    same(
      'CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  -- why\n  RETURN 1;\nEND $$ LANGUAGE plpgsql',
      'CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql',
    );
  });

  it('keeps literals, quoted identifiers and every token', () => {
    differs("SELECT '-- not a comment'", "SELECT ''");
    differs("SELECT 'a  b'", "SELECT 'a b'");
    differs("SELECT E'it\\'s -- x'", "SELECT E'it\\'s'");
    differs('SELECT "a  b" FROM t', 'SELECT "a b" FROM t');
    differs('SELECT $q$ a $q$', 'SELECT $q$ b $q$');
    differs('SELECT a FROM t', 'SELECT b FROM t');
    differs('SELECT a b', 'SELECT ab');
    differs('SELECT $1', 'SELECT $2');
    assert.equal(normalizeSql("SELECT 'it''s' -- c\n"), "SELECT'it''s'");
  });

  it('pins every shipped file with the SHA-256 of its normalised SQL', () => {
    for (const m of loadMigrations()) assert.equal(m.sqlChecksum, sha256(normalizeSql(m.sql)));
    for (const m of loadMigrations()) assert.equal(m.checksum, sha256(m.sql));
  });
});

describe('the migrator', () => {
  let store: Store;
  before(async () => {
    store = await testStore(); // migrated
  });
  after(() => store.close());

  it('accepts a database that applied an earlier text differing in comments only, and refuses any other', async () => {
    const [name, [earlier]] = Object.entries(EARLIER_TEXTS)[0]!;
    const version = Number.parseInt(name.slice(0, 3), 10);
    await store.pool.query('UPDATE schema_migrations SET checksum = $1 WHERE version = $2', [earlier!.checksum, version]);
    assert.deepEqual(await migrate(store.pool), [], `a database migrated when ${name} was ${earlier!.note}`);
    await store.pool.query('UPDATE schema_migrations SET checksum = $1 WHERE version = $2', [sha256('something else'), version]);
    await assert.rejects(
      migrate(store.pool),
      new RegExp(`migration ${name} was changed after it was applied; add a new migration instead`),
    );
    await store.pool.query('UPDATE schema_migrations SET checksum = $1 WHERE version = $2', [
      loadMigrations().find((m) => m.name === name)!.checksum,
      version,
    ]);
    assert.deepEqual(await migrate(store.pool), []);
  });
});
