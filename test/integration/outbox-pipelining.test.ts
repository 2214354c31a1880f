// The outbox keeps every lane busy: no lane waits for a batch's slowest row, and rows settled together share a commit.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testStore } from '../support/db.js';
import { transaction, type Store } from '../../src/store/store.js';
import { drainOutbox } from '../../src/post/outbox.js';
import type { ErpTarget, PostedReference } from '../../src/post/target.js';
import type { Journal } from '../../src/domain/model.js';

let store: Store;

/** `count` balanced two-line journals, each queued for `target`. */
async function queue(target: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => `jrn:v1:invoice:${target}-${String(i).padStart(3, '0')}`);
  // Headers and lines in one transaction: a journal without its lines is refused at commit (migration 026).
  await transaction(store.pool, async (client) => {
    await client.query(
      `INSERT INTO journals (id, kind, legal_entity, posting_date, source_document, memo, content_hash)
       SELECT id, 'invoice', 'nw-us', '2026-10-31', id, 'test', 'h' FROM unnest($1::text[]) AS id`,
      [ids],
    );
    await client.query(
      `INSERT INTO journal_lines (journal_id, line_no, account, debit_minor, credit_minor, currency)
       SELECT id, l, CASE l WHEN 1 THEN '1200' ELSE '4000' END, CASE l WHEN 1 THEN 100 ELSE 0 END, CASE l WHEN 1 THEN 0 ELSE 100 END, 'USD'
         FROM unnest($1::text[]) AS id, generate_series(1, 2) AS l`,
      [ids],
    );
  });
  await store.pool.query(
    `INSERT INTO outbox (key, target, document_kind, document_id) SELECT 'out:v1:' || $2 || ':' || id, $2, 'journal', id FROM unnest($1::text[]) AS id`,
    [ids, target],
  );
  return ids;
}

/** A target whose look-ups wait for `gate(journal)` when it returns a promise; posts answer at once. */
function gatedTarget(
  name: string,
  concurrency: number,
  gate: (journal: Journal) => Promise<void> | undefined,
): ErpTarget & { posts: string[] } {
  const posts: string[] = [];
  return {
    name,
    limits: { concurrency, requestsPerMinute: 600_000 },
    posts,
    async find(_key: string, journal: Journal): Promise<PostedReference | undefined> {
      await gate(journal);
      return undefined;
    },
    async post(key: string): Promise<PostedReference> {
      posts.push(key);
      return { reference: `ref-${posts.length}` };
    },
  };
}

const postedCount = async (target: string) =>
  (await store.pool.query("SELECT count(*)::int AS n FROM outbox WHERE target = $1 AND status = 'posted'", [target])).rows[0].n as number;

before(async () => {
  store = await testStore();
});
after(async () => {
  await store.close();
});

describe('outbox lanes', () => {
  it('posts every other row while one look-up hangs: the slow row holds one lane, not the batch', async () => {
    const ids = await queue('lanes', 20);
    let release!: () => void;
    const hanging = new Promise<void>((resolve) => (release = resolve));
    const target = gatedTarget('lanes', 2, (journal) => (journal.id === ids[0] ? hanging : undefined));
    const drained = drainOutbox(store.pool, target, { untilEmptyMs: 10_000 });
    const deadline = Date.now() + 10_000;
    while ((await postedCount('lanes')) < 19 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await postedCount('lanes'), 19, 'the 19 other rows posted while the first still waits at the target');
    release();
    const outcome = await drained;
    assert.equal(outcome.posted, 20);
    assert.equal(new Set(target.posts).size, 20, 'each row posted once');
  });

  it('settles rows that finish together in shared transactions, each with its own audit record', async () => {
    await queue('group', 10);
    let release!: () => void;
    const together = new Promise<void>((resolve) => (release = resolve));
    let waiting = 0;
    const target = gatedTarget('group', 10, () => {
      waiting += 1;
      if (waiting === 10) setTimeout(release, 10);
      return together;
    });
    const outcome = await drainOutbox(store.pool, target, { untilEmptyMs: 5_000 });
    assert.equal(outcome.posted, 10);
    // now() is the transaction's start: rows committed together carry the same posted_at.
    const commits = (await store.pool.query("SELECT count(DISTINCT posted_at)::int AS n FROM outbox WHERE target = 'group'")).rows[0]
      .n as number;
    assert.ok(commits <= 3, `10 rows finishing at once settle in a few commits, not 10: ${commits}`);
    const audited = (
      await store.pool.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'outbox.posted' AND details->>'target' = 'group'")
    ).rows[0].n as number;
    assert.equal(audited, 10);
  });
});
