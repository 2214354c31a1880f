// Stream ingestion and notifications against the real NATS JetStream server at 127.0.0.1:4222 (unique stream names per
// run, deleted afterwards). NATS missing is a failure, never a skip.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, headers as natsHeaders, type JetStreamManager, type NatsConnection } from 'nats';
import { testStore } from '../support/db.js';
import type { Store } from '../../src/store/store.js';
import { applyCatalog, currentCatalog, type CatalogVersion } from '../../src/catalog/service.js';
import { ingestBatch } from '../../src/ingest/service.js';
import { queryUsage } from '../../src/meter/usage.js';
import { closePeriod } from '../../src/close/close-period.js';
import { Decimal } from '../../src/domain/money.js';
import { verifyWebhook } from '../../src/settle/payments.js';
import { decodeMessage, startStreamConsumer } from '../../src/stream/consumer.js';
import { natsChannel, publishDue, startNotificationPublisher } from '../../src/stream/notifications.js';

const NATS_URL = 'nats://127.0.0.1:4222';
const NATS_START =
  'start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log';
const RUN = randomBytes(4).toString('hex');
const NAME = (what: string) => `ACCRUE_TEST_${RUN}_${what}`.toUpperCase();
const SUBJECT = (what: string) => `accrue-test-${RUN}.${what}`;
const NORTHWIND = readFileSync('examples/northwind/catalog.yaml', 'utf8');
// Within the future-skew rule whatever the clock says: an hour ago.
const EVENT_TIME = new Date(Date.now() - 3_600_000).toISOString();
const WINDOW = { from: new Date(Date.now() - 3 * 86_400_000).toISOString(), to: new Date(Date.now() + 86_400_000).toISOString() };

// Warnings (a batch that does not commit, say) show in the test output instead of a silent timeout.
const warn = (line: Record<string, unknown>) => {
  if (line.level !== 'info') process.stderr.write(`${JSON.stringify(line)}\n`);
};

let store: Store;
let catalog: CatalogVersion;
let nc: NatsConnection;
let jsm: JetStreamManager;
const streams: string[] = [];

const storageEvent = (id: string, source: string, subject: string, gbHours: string) => ({
  specversion: '1.0',
  id,
  source,
  type: 'com.northwind.storage.usage',
  subject,
  time: EVENT_TIME,
  data: { gb_hours: gbHours },
});

const encode = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

async function publishAll(subject: string, payloads: Uint8Array[]): Promise<void> {
  const js = nc.jetstream();
  for (let start = 0; start < payloads.length; start += 500) {
    await Promise.all(payloads.slice(start, start + 500).map((p) => js.publish(subject, p)));
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function eventsFrom(source: string): Promise<number> {
  return Number((await store.pool.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE source = $1', [source])).rows[0]!.n);
}

async function storageUsage(customer: string): Promise<{ quantity: string; events: number }> {
  const result = await queryUsage(store.pool, catalog.catalog, { customer, meter: 'storage_gb_hours', ...WINDOW });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  const rows = result.value;
  return {
    quantity: rows.reduce((sum, r) => sum.plus(r.quantity), new Decimal(0)).toString(),
    events: rows.reduce((n, r) => n + r.event_count, 0),
  };
}

async function drained(stream: string, durable: string): Promise<boolean> {
  const info = await jsm.consumers.info(stream, durable);
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

before(async () => {
  try {
    nc = await connect({ servers: NATS_URL, timeout: 3000 });
    jsm = await nc.jetstreamManager();
  } catch (error) {
    throw new Error(`NATS JetStream is not reachable at ${NATS_URL} (${(error as Error).message}); start it with: ${NATS_START}`, {
      cause: error,
    });
  }
  store = await testStore();
  const applied = await applyCatalog(store.pool, NORTHWIND, { by: 'test' });
  assert.ok(applied.ok);
  catalog = (await currentCatalog(store.pool))!;
});

after(async () => {
  for (const stream of streams) await jsm?.streams.delete(stream).catch(() => false);
  await nc?.close();
  await store?.close();
});

describe('message decoding', () => {
  it('reads structured mode, binary mode (ce-* headers, percent-decoded) and refuses what is no single event', () => {
    const structured = decodeMessage(encode(storageEvent('d1', '//t', 'acme-prod', '1')));
    assert.ok(structured.ok);
    assert.equal((structured.event as { id: string }).id, 'd1');
    const h = natsHeaders();
    h.set('ce-specversion', '1.0');
    h.set('ce-id', 'd2');
    h.set('ce-source', '%2F%2Fbinary%20mode');
    h.set('ce-type', 'com.northwind.storage.usage');
    h.set('Content-Type', 'application/json');
    const binary = decodeMessage(encode({ gb_hours: '2' }), h);
    assert.ok(binary.ok);
    assert.deepEqual(binary.event, {
      specversion: '1.0',
      id: 'd2',
      source: '//binary mode',
      type: 'com.northwind.storage.usage',
      datacontenttype: 'application/json',
      data: { gb_hours: '2' },
    });
    const notJson = decodeMessage(encode('{nope'));
    assert.ok(!notJson.ok && notJson.problems[0]!.code === 'malformed_json');
    const array = decodeMessage(encode([storageEvent('d3', '//t', 'acme-prod', '1')]));
    assert.ok(!array.ok && array.problems[0]!.code === 'not_one_event');
    const notUtf8 = decodeMessage(new Uint8Array([0xff, 0xfe]));
    assert.ok(!notUtf8.ok && notUtf8.problems[0]!.code === 'not_utf8');
  });
});

describe('stream ingestion', () => {
  it('ingests what is published: events and usage equal the published totals', async () => {
    const stream = NAME('ING');
    streams.push(stream);
    const source = `//stream-test/${RUN}/ing`;
    let expected = new Decimal(0);
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < 1200; i++) {
      const gb = `${i % 37}.${String(i % 1000).padStart(3, '0')}`;
      expected = expected.plus(gb);
      payloads.push(encode(storageEvent(`ing-${i}`, source, 'acme-prod', gb)));
    }
    await jsm.streams.add({ name: stream, subjects: [SUBJECT('ing.>')] });
    await publishAll(SUBJECT('ing.acme'), payloads);
    const consumer = await startStreamConsumer(store.pool, {
      servers: NATS_URL,
      stream,
      subjects: [SUBJECT('ing.>')],
      durable: 'ingest',
      batchMessagesMax: 200,
      log: warn,
    });
    try {
      await until('1200 events', async () => (await eventsFrom(source)) === 1200);
      await until('every message acked', () => drained(stream, 'ingest'));
    } finally {
      await consumer.stop();
    }
    assert.deepEqual(await storageUsage('acme'), { quantity: expected.toString(), events: 1200 });
    assert.equal(consumer.stats.counts.accepted, 1200);
    const batches = await store.pool.query("SELECT count(*)::int AS n FROM ingest_batches WHERE channel = 'stream'");
    assert.ok(batches.rows[0].n >= 6, 'one ingest transaction per batch of at most 200');
  });

  it('records an invalid message with its reason, quarantines an unknown type, and never redelivers either', async () => {
    const stream = NAME('BAD');
    streams.push(stream);
    const source = `//stream-test/${RUN}/bad`;
    const subject = SUBJECT('bad.x');
    await jsm.streams.add({ name: stream, subjects: [SUBJECT('bad.>')] });
    const h = natsHeaders();
    for (const [k, v] of Object.entries({
      'ce-specversion': '1.0',
      'ce-id': 'bin-1',
      'ce-source': source,
      'ce-type': 'com.northwind.storage.usage',
      'ce-subject': 'acme-prod',
      'ce-time': EVENT_TIME,
    }))
      h.set(k, v);
    const js = nc.jetstream();
    await js.publish(subject, encode('this is not JSON'));
    await js.publish(subject, encode({ ...storageEvent('x', source, 'acme-prod', '1'), id: undefined }));
    await js.publish(subject, encode(storageEvent('bad-value', source, 'acme-prod', 'a lot')));
    await js.publish(subject, encode({ ...storageEvent('unknown-type', source, 'acme-prod', '1'), type: 'com.northwind.teleport' }));
    await js.publish(subject, encode({ gb_hours: '5' }), { headers: h });
    await js.publish(subject, encode(storageEvent('good', source, 'acme-prod', '1')));
    const run = () =>
      startStreamConsumer(store.pool, {
        servers: NATS_URL,
        stream,
        subjects: [SUBJECT('bad.>')],
        durable: 'bad',
        ackWaitMs: 6000,
        log: warn,
      });
    const consumer = await run();
    try {
      await until('every message settled', () => drained(stream, 'bad'));
    } finally {
      await consumer.stop();
    }
    const rejected = await store.pool.query<{ stream_seq: string; id: string | null; codes: string[] }>(
      `SELECT stream_seq, id, array(SELECT p->>'code' FROM jsonb_array_elements(problems) p) AS codes FROM stream_rejections WHERE stream = $1 ORDER BY stream_seq`,
      [stream],
    );
    assert.deepEqual(
      rejected.rows.map((r) => [r.stream_seq, r.id]),
      [
        ['1', null],
        ['2', null],
        ['3', 'bad-value'],
      ],
    );
    assert.deepEqual(rejected.rows[0]!.codes, ['malformed_json']);
    assert.ok(rejected.rows[1]!.codes.includes('required'), JSON.stringify(rejected.rows[1]));
    const quarantined = await store.pool.query('SELECT id, reason FROM quarantine WHERE source = $1', [source]);
    assert.deepEqual(quarantined.rows, [{ id: 'unknown-type', reason: 'unknown_type' }]);
    const stored = await store.pool.query('SELECT id FROM events WHERE source = $1 ORDER BY id', [source]);
    assert.deepEqual(
      stored.rows.map((r) => r.id),
      ['bin-1', 'good'],
    );
    // Well past the ack wait: nothing came back, and a restarted consumer finds nothing to do.
    await new Promise((r) => setTimeout(r, 6500));
    const info = await jsm.consumers.info(stream, 'bad');
    assert.equal(info.delivered.consumer_seq, 6, 'six messages, six deliveries: none came back');
    assert.equal(info.ack_floor.stream_seq, 6);
    const again = await run();
    await new Promise((r) => setTimeout(r, 1200));
    await again.stop();
    assert.equal(again.stats.messages, 0);
    assert.equal((await store.pool.query('SELECT count(*)::int AS n FROM stream_rejections WHERE stream = $1', [stream])).rows[0].n, 3);
  });

  it('a consumer SIGKILLed mid-stream, and one killed between commit and ack, lose nothing and count nothing twice', async () => {
    const stream = NAME('CRASH');
    streams.push(stream);
    const source = `//stream-test/${RUN}/crash`;
    const total = 4000;
    let expected = new Decimal(0);
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < total; i++) {
      const gb = `${(i * 7) % 101}.${i % 10}5`;
      expected = expected.plus(gb);
      payloads.push(encode(storageEvent(`crash-${i}`, source, 'globex', gb)));
    }
    await jsm.streams.add({ name: stream, subjects: [SUBJECT('crash.>')] });
    await publishAll(SUBJECT('crash.globex'), payloads);

    const worker = (
      env: Record<string, string> = {},
    ): {
      child: ChildProcess;
      exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>;
      started: Promise<void>;
    } => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/stream-worker.ts'], {
        env: {
          ...process.env,
          WORKER_DATABASE_URL: store.url,
          WORKER_NATS_URL: NATS_URL,
          WORKER_STREAM: stream,
          WORKER_SUBJECTS: SUBJECT('crash.>'),
          WORKER_DURABLE: 'crash',
          WORKER_BATCH: '20',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      let markStarted: () => void = () => {};
      const started = new Promise<void>((resolve) => (markStarted = resolve));
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('started')) markStarted();
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) =>
        child.on('exit', (code, signal) => resolve({ code, signal, out })),
      );
      return { child, exited, started };
    };

    // 1. SIGTERM mid-stream: it finishes the batch in hand, acks it and exits cleanly, leaving nothing in flight.
    const graceful = worker();
    await graceful.started;
    await until('the first worker to commit something', async () => (await eventsFrom(source)) >= 200);
    graceful.child.kill('SIGTERM');
    const gracefulExit = await graceful.exited;
    assert.equal(gracefulExit.code, 0, gracefulExit.out);
    const afterGraceful = await jsm.consumers.info(stream, 'crash');
    assert.equal(afterGraceful.num_ack_pending, 0, 'a graceful stop acks every message it took');
    assert.ok(afterGraceful.num_pending > 0, 'the worker was stopped mid-stream');
    assert.equal(await eventsFrom(source), afterGraceful.ack_floor.stream_seq, 'what is acked is exactly what is committed');

    // 2. Killed from outside while it works through the stream.
    const before2 = await eventsFrom(source);
    const killed = worker();
    await killed.started;
    await until('the second worker to commit more', async () => (await eventsFrom(source)) >= before2 + 200);
    killed.child.kill('SIGKILL');
    assert.equal((await killed.exited).signal, 'SIGKILL');
    const afterKilled = await eventsFrom(source);
    assert.ok(afterKilled < total, `killed mid-stream (${afterKilled} of ${total} committed)`);

    // 3. Kills itself right after its third commit, before acking that batch: JetStream must redeliver committed events.
    const crashed = worker({ WORKER_CRASH_AFTER_COMMITS: '3' });
    assert.equal((await crashed.exited).signal, 'SIGKILL');

    // 4. Runs to the end.
    const last = worker();
    await last.started;
    try {
      await until('the stream to be consumed', () => drained(stream, 'crash'), 120_000);
    } finally {
      last.child.kill('SIGTERM');
      assert.equal((await last.exited).code, 0);
    }

    assert.equal(await eventsFrom(source), total);
    assert.deepEqual(await storageUsage('globex'), { quantity: expected.toString(), events: total });
    // A redelivered batch with the same messages is the same usage batch again (repeats); a mixed one counts duplicates.
    const seenAgain = await store.pool.query<{ n: string }>(
      "SELECT coalesce(sum(duplicates + repeats), 0) AS n FROM ingest_batches WHERE channel = 'stream'",
    );
    assert.ok(Number(seenAgain.rows[0]!.n) > 0, 'redelivered events were seen again and counted once');
    // Every delivery, redeliveries included, takes a consumer sequence number.
    assert.ok(
      (await jsm.consumers.info(stream, 'crash')).delivered.consumer_seq > total,
      'JetStream redelivered what the killed workers had not acked',
    );
  });
});

describe('notifications', () => {
  it('a finalized invoice is announced once per id on its subject and at a webhook with a valid signature, retried until it answers', async () => {
    const prefix = `accrue-test-${RUN}-ntf`;
    const notifyStream = NAME('NTF');
    streams.push(notifyStream);
    const secret = `whsec-${RUN}`;
    const received: Array<{ id: string; type: string; valid: boolean; body: Record<string, unknown> }> = [];
    let failNext = true;
    const server: Server = createServer((request, response) => {
      let raw = '';
      request.on('data', (chunk) => (raw += chunk));
      request.on('end', () => {
        if (failNext) {
          failNext = false; // the first delivery fails: the publisher must retry it
          response.writeHead(503, { 'retry-after': '0' }).end();
          return;
        }
        const body = JSON.parse(raw) as Record<string, unknown>;
        const valid = verifyWebhook(
          secret,
          raw,
          request.headers['accrue-signature'] as string | undefined,
          Math.floor(Date.now() / 1000),
        ).ok;
        received.push({ id: body.id as string, type: body.type as string, valid, body });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/accrue`;

    try {
      const events = [storageEvent('oct-1', '//ntf-test', 'acme-prod', '1000'), storageEvent('oct-2', '//ntf-test', 'umbrella', '10')].map(
        (e) => ({ ...e, time: '2026-10-10T00:00:00Z' }),
      );
      await ingestBatch(store.pool, catalog, events, { channel: 'file', now: new Date('2026-11-01T00:00:00Z') });
      const closed = await closePeriod(store.pool, catalog, { period: '2026-10' });
      const invoiceIds = closed.invoices.map((i) => i.id).sort();
      assert.ok(invoiceIds.length >= 2);
      const expectedIds = invoiceIds.map((id) => `ntf:v1:invoice.finalized:${id}`);

      const publisher = await startNotificationPublisher(store.pool, {
        nats: { servers: NATS_URL, stream: notifyStream, subjectPrefix: prefix },
        webhooks: { urls: [url], secret },
        pollMs: 50,
        backoffBaseMs: 10,
        log: warn,
      });
      try {
        await until('every delivery to be made', async () => {
          const pending = await store.pool.query("SELECT count(*)::int AS n FROM notification_deliveries WHERE status <> 'delivered'");
          const fresh = await store.pool.query('SELECT count(*)::int AS n FROM notifications WHERE fanned_out_at IS NULL');
          return pending.rows[0].n === 0 && fresh.rows[0].n === 0;
        });
      } finally {
        await publisher.stop();
      }

      // The webhook: every finalized invoice, each body signed; the failed first attempt came again.
      const hooked = received.filter((r) => r.type === 'accrue.invoice.finalized');
      assert.deepEqual([...new Set(hooked.map((r) => r.id))].sort(), expectedIds.sort());
      assert.ok(
        received.every((r) => r.valid),
        'every webhook body carries a valid Accrue-Signature',
      );
      assert.ok(
        received.some((r) => r.type === 'accrue.period.closed'),
        'the period close is announced too',
      );
      const retried = await store.pool.query(
        "SELECT count(*)::int AS n FROM notification_deliveries WHERE channel LIKE 'webhook:%' AND attempts > 1",
      );
      assert.equal(retried.rows[0].n, 1);
      const sample = hooked[0]!.body as { data: Record<string, unknown>; subject: string; specversion: string };
      assert.equal(sample.specversion, '1.0');
      assert.equal(typeof sample.data.total_minor, 'string', 'amounts travel as strings');

      // Simulate a publisher that published, then crashed before recording it: the repeat carries the same
      // Nats-Msg-Id, and JetStream's duplicate window keeps one message per id.
      await store.pool.query(
        "UPDATE notification_deliveries SET status = 'pending', delivered_at = NULL, reference = NULL WHERE channel = 'nats'",
      );
      const channel = await natsChannel({ servers: NATS_URL, stream: notifyStream, subjectPrefix: prefix });
      try {
        const repeat = await publishDue(store.pool, [channel]);
        assert.ok(repeat.delivered >= invoiceIds.length);
      } finally {
        await channel.close();
      }
      const references = await store.pool.query<{ reference: string }>(
        "SELECT reference FROM notification_deliveries WHERE channel = 'nats'",
      );
      assert.ok(
        references.rows.every((r) => r.reference.endsWith(':duplicate')),
        JSON.stringify(references.rows),
      );

      // What the subject holds: one message per finalized invoice, its Nats-Msg-Id the notification id.
      const ordered = await nc.jetstream().consumers.get(notifyStream, { filterSubjects: `${prefix}.invoice.finalized` });
      const ids: string[] = [];
      const messages = await ordered.fetch({ max_messages: 1000, expires: 1000 });
      for await (const m of messages) {
        ids.push(m.headers!.get('Nats-Msg-Id'));
        assert.equal((JSON.parse(new TextDecoder().decode(m.data)) as { id: string }).id, m.headers!.get('Nats-Msg-Id'));
      }
      assert.deepEqual(ids.sort(), expectedIds.sort());
    } finally {
      server.close();
    }
  });

  it('every announced fact is written by the transaction that makes it true, once', async () => {
    await store.pool.query(
      "INSERT INTO accounting_periods (legal_entity, period, status, closed_at, closed_by) VALUES ('nw-us', '2026-09', 'closed', '2026-10-05T00:00:00Z', 'test')",
    );
    await store.pool.query(
      "INSERT INTO outbox (key, target, document_kind, document_id) VALUES ('out:v1:test:j1', 'test', 'journal', 'j1'), ('out:v1:test:j2', 'test', 'journal', 'j2')",
    );
    await store.pool.query("UPDATE outbox SET status = 'posted', target_reference = 'T-1' WHERE key = 'out:v1:test:j1'");
    await store.pool.query("UPDATE outbox SET status = 'dead', last_error = '{\"message\":\"refused\"}' WHERE key = 'out:v1:test:j2'");
    await store.pool.query("UPDATE outbox SET status = 'pending', replays = replays + 1 WHERE key = 'out:v1:test:j2'");
    await store.pool.query("UPDATE outbox SET status = 'dead' WHERE key = 'out:v1:test:j2'");
    // Rolled back: no fact, no notification.
    const client = await store.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        "INSERT INTO exceptions (id, kind, owner_queue, subject, details) VALUES ('exc:test:rolled-back', 'payment_unmatched', 'finance_operations', 'p0', '{}')",
      );
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    await store.pool.query(
      "INSERT INTO exceptions (id, kind, owner_queue, subject, details) VALUES ('exc:test:1', 'payment_unmatched', 'finance_operations', 'p1', '{}')",
    );
    await store.pool.query(
      "INSERT INTO exceptions (id, kind, owner_queue, subject, details) VALUES ('exc:test:1', 'payment_unmatched', 'finance_operations', 'p1', '{}') ON CONFLICT (id) DO NOTHING",
    );
    const rows = await store.pool.query<{ id: string; type: string; data: Record<string, unknown> }>(
      "SELECT id, type, data FROM notifications WHERE id LIKE 'ntf:v1:document.%' OR id LIKE 'ntf:v1:exception.opened:exc:test:%' OR id LIKE 'ntf:v1:period.closed:accounting:%' ORDER BY seq",
    );
    assert.deepEqual(
      rows.rows.map((r) => r.id),
      [
        'ntf:v1:period.closed:accounting:nw-us:2026-09:1791158400000000',
        'ntf:v1:document.posted:out:v1:test:j1',
        'ntf:v1:document.posting_failed:out:v1:test:j2:0',
        'ntf:v1:document.posting_failed:out:v1:test:j2:1',
        'ntf:v1:exception.opened:exc:test:1',
      ],
    );
    assert.equal(rows.rows[0]!.data.closed_by, 'test');
    assert.equal(rows.rows[1]!.data.target_reference, 'T-1');
    assert.equal(rows.rows[2]!.data.error, 'refused');
    assert.equal(rows.rows[4]!.data.kind, 'payment_unmatched');
  });
});
