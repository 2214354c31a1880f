// Outgoing notifications, from the outbox that migration 013's triggers fill in the transaction of each fact.
//   1. A notification row commits with its fact (invoice finalized, document posted or dead-lettered, exception opened,
//      period closed; an audit checkpoint signed, written by src/audit/checkpoints.ts). Crash after: the row waits for
//      any publisher.
//   2. Fan-out: a publisher marks a batch of new notifications and creates one delivery row per configured channel
//      ('nats', 'webhook:<url>') in one statement. Crash after: the deliveries wait, unclaimed.
//   3. Claim due deliveries with FOR UPDATE SKIP LOCKED and a lease. Crash after: the lease expires; another claims them.
//   4. Deliver: publish to JetStream with Nats-Msg-Id = the notification id (the stream's duplicate window drops a
//      repeat), or POST to the webhook signed with HMAC-SHA256. Crash after: step 3 repeats and delivers again: at least
//      once, and every copy carries the same id for the receiver to deduplicate.
//   5. Record delivered, or a retry with backoff, or dead after `attemptsMax`.
import type pg from 'pg';
import { connect, headers as natsHeaders, nanos, type JetStreamClient, type JetStreamManager, type NatsConnection } from 'nats';
import { backoffMs } from '../post/outbox.js';
import { signWebhook } from '../settle/payments.js';

export const NOTIFICATION_TYPES = [
  'invoice.finalized',
  'credit_note.finalized',
  'document.posted',
  'document.posting_failed',
  'exception.opened',
  'period.closed',
  'audit.checkpoint',
] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

/** Limits (TigerStyle). */
export const NOTIFY_LIMITS = Object.freeze({
  /** Notifications fanned out and deliveries claimed per round. */
  claimBatch: 100,
  /** Deliveries in flight at once per publisher. */
  concurrency: 8,
  leaseMs: 30_000,
  /** Attempts per delivery before it is dead (listed by `accrue stream notifications --status dead`, replayable). */
  attemptsMax: 12,
  backoffBaseMs: 1000,
  /** How long one webhook POST or JetStream publish may take. */
  requestTimeoutMs: 10_000,
  /** How often an idle publisher looks for new notifications. */
  pollMs: 500,
  /** Characters of an error kept on the delivery row. */
  errorCharsMax: 500,
  /** JetStream's duplicate window on the notifications stream Accrue creates. */
  duplicateWindowMs: 60 * 60_000,
});

export interface NatsChannelOptions {
  servers: string;
  /** The stream capturing `<subjectPrefix>.>`; created when no stream captures those subjects. */
  stream: string;
  /** Subjects are `<prefix>.<type>`, e.g. accrue.invoice.finalized. */
  subjectPrefix: string;
}

export interface WebhookChannelOptions {
  urls: string[];
  secret: string;
}

export interface PublisherOptions {
  nats?: NatsChannelOptions;
  webhooks?: WebhookChannelOptions;
  attemptsMax?: number;
  backoffBaseMs?: number;
  leaseMs?: number;
  pollMs?: number;
  log?: (line: Record<string, unknown>) => void;
  /** The source attribute of the CloudEvents sent. */
  source?: string;
}

export interface Notification {
  id: string;
  type: NotificationType;
  subject: string;
  data: Record<string, unknown>;
  created_at: Date;
}

interface Delivery extends Notification {
  seq: string;
  channel: string;
  attempts: number;
}

export interface PublishOutcome {
  fanned_out: number;
  delivered: number;
  retried: number;
  dead: number;
}

/** The channels a publisher with these options delivers to; every publisher of one database should share them. */
export function notificationChannels(options: Pick<PublisherOptions, 'nats' | 'webhooks'>): string[] {
  return [...(options.nats ? ['nats'] : []), ...(options.webhooks?.urls ?? []).map((url) => `webhook:${url}`)];
}

/** Webhooks from the environment: ACCRUE_NOTIFY_WEBHOOK_URLS (comma-separated) signed with ACCRUE_NOTIFY_WEBHOOK_SECRET. */
export function webhooksFromEnv(env: NodeJS.ProcessEnv = process.env): WebhookChannelOptions | undefined {
  const urls = (env.ACCRUE_NOTIFY_WEBHOOK_URLS ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  if (urls.length === 0) return undefined;
  for (const url of urls) {
    if (!/^https?:\/\/[^\s]+$/.test(url)) throw new Error(`ACCRUE_NOTIFY_WEBHOOK_URLS: ${JSON.stringify(url)} is not an http(s) URL`);
  }
  const secret = env.ACCRUE_NOTIFY_WEBHOOK_SECRET;
  if (!secret) throw new Error('ACCRUE_NOTIFY_WEBHOOK_URLS is set: set ACCRUE_NOTIFY_WEBHOOK_SECRET too, the key webhooks are signed with');
  return { urls, secret };
}

/** The notification as a structured-mode CloudEvent (JSON), the body of both the NATS message and the webhook POST. */
export function toCloudEvent(notification: Notification, source = '/accrue'): Record<string, unknown> {
  return {
    specversion: '1.0',
    id: notification.id,
    source,
    type: `accrue.${notification.type}`,
    subject: notification.subject,
    time: new Date(notification.created_at).toISOString(),
    datacontenttype: 'application/json',
    data: notification.data,
  };
}

/** Step 2: fan new notifications out to the channels, at most `limit` of them; answers how many. */
export async function fanOut(pool: pg.Pool, channels: string[], limit = NOTIFY_LIMITS.claimBatch): Promise<number> {
  const result = await pool.query(
    `WITH fresh AS (SELECT seq FROM notifications WHERE fanned_out_at IS NULL ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED),
          marked AS (UPDATE notifications n SET fanned_out_at = now() FROM fresh WHERE n.seq = fresh.seq RETURNING n.id),
          inserted AS (INSERT INTO notification_deliveries (notification_id, channel)
                       SELECT m.id, c FROM marked m CROSS JOIN unnest($1::text[]) AS c ON CONFLICT DO NOTHING)
     SELECT count(*)::int AS n FROM marked`,
    [channels, limit],
  );
  return result.rows[0]!.n as number;
}

/** Step 3: claim due deliveries of these channels under a lease. */
async function claim(pool: pg.Pool, channels: string[], limit: number, leaseMs: number): Promise<Delivery[]> {
  const result = await pool.query<Delivery>(
    `WITH claimed AS (
       UPDATE notification_deliveries SET lease_until = now() + ($3 || ' milliseconds')::interval, attempts = attempts + 1
        WHERE seq IN (SELECT seq FROM notification_deliveries
                       WHERE channel = ANY($1) AND status = 'pending' AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
                       ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING seq, notification_id, channel, attempts)
     SELECT c.seq, c.channel, c.attempts, n.id, n.type, n.subject, n.data, n.created_at
       FROM claimed c JOIN notifications n ON n.id = c.notification_id ORDER BY c.seq`,
    [channels, limit, String(leaseMs)],
  );
  return result.rows;
}

/** A failed delivery, with what the retry needs: whether to give up now and how long the receiver asked us to wait. */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly details: { status?: number; retryAfterMs?: number } = {},
  ) {
    super(message);
  }
}

export interface Channel {
  name: string;
  /** Delivers once; answers the reference to record (stream sequence, HTTP status); throws on failure. */
  deliver(notification: Notification, body: string): Promise<string>;
  close(): Promise<void>;
}

/** JetStream: `<prefix>.<type>` with Nats-Msg-Id set to the notification id. */
export async function natsChannel(options: NatsChannelOptions, log?: PublisherOptions['log']): Promise<Channel> {
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: options.servers.split(','), name: 'accrue-notify' });
  } catch (error) {
    throw new Error(`cannot connect to NATS at ${options.servers}: ${(error as Error).message}`, { cause: error });
  }
  try {
    await ensureNotificationStream(await nc.jetstreamManager(), options, log);
  } catch (error) {
    await nc.close();
    throw error;
  }
  const js: JetStreamClient = nc.jetstream();
  return {
    name: 'nats',
    async deliver(notification, body) {
      const h = natsHeaders();
      h.set('Content-Type', 'application/cloudevents+json');
      const ack = await js.publish(`${options.subjectPrefix}.${notification.type}`, new TextEncoder().encode(body), {
        msgID: notification.id,
        headers: h,
        timeout: NOTIFY_LIMITS.requestTimeoutMs,
      });
      return `${ack.stream}:${ack.seq}${ack.duplicate ? ':duplicate' : ''}`;
    },
    close: () => nc.drain(),
  };
}

/** Uses the stream that already captures the notification subjects, or creates one with a duplicate window. */
export async function ensureNotificationStream(
  jsm: JetStreamManager,
  options: NatsChannelOptions,
  log?: PublisherOptions['log'],
): Promise<string> {
  const probe = `${options.subjectPrefix}.${NOTIFICATION_TYPES[0]}`;
  const existing = await jsm.streams.find(probe).catch(() => undefined);
  if (existing) return existing;
  await jsm.streams.add({
    name: options.stream,
    subjects: [`${options.subjectPrefix}.>`],
    duplicate_window: nanos(NOTIFY_LIMITS.duplicateWindowMs),
  });
  log?.({ level: 'info', msg: 'notification stream created', stream: options.stream, subjects: [`${options.subjectPrefix}.>`] });
  return options.stream;
}

/** A webhook: POST the CloudEvent, signed `Accrue-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function webhookChannel(url: string, secret: string, now: () => number = Date.now): Channel {
  return {
    name: `webhook:${url}`,
    async deliver(notification, body) {
      const signature = signWebhook(secret, body, Math.floor(now() / 1000));
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/cloudevents+json',
            'accrue-signature': signature,
            'accrue-notification-id': notification.id,
          },
          body,
          signal: AbortSignal.timeout(NOTIFY_LIMITS.requestTimeoutMs),
        });
      } catch (error) {
        throw new DeliveryError(`POST ${url}: ${(error as Error).message}`);
      }
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return String(response.status);
      const retryAfter = Number.parseInt(response.headers.get('retry-after') ?? '', 10);
      throw new DeliveryError(`POST ${url}: HTTP ${response.status}`, {
        status: response.status,
        retryAfterMs: Number.isSafeInteger(retryAfter) ? retryAfter * 1000 : undefined,
      });
    },
    async close() {},
  };
}

/** Steps 2-5 until nothing is due: one pass of a publisher over the given channels. */
export async function publishDue(
  pool: pg.Pool,
  channels: Channel[],
  options: Omit<PublisherOptions, 'nats' | 'webhooks'> = {},
): Promise<PublishOutcome> {
  const outcome: PublishOutcome = { fanned_out: 0, delivered: 0, retried: 0, dead: 0 };
  const byName = new Map(channels.map((c) => [c.name, c]));
  const names = [...byName.keys()];
  if (names.length === 0) return outcome;
  const attemptsMax = options.attemptsMax ?? NOTIFY_LIMITS.attemptsMax;
  for (;;) {
    const fanned = await fanOut(pool, names);
    outcome.fanned_out += fanned;
    const due = await claim(pool, names, NOTIFY_LIMITS.claimBatch, options.leaseMs ?? NOTIFY_LIMITS.leaseMs);
    if (due.length === 0 && fanned === 0) return outcome;
    let cursor = 0;
    await Promise.all(
      Array.from({ length: Math.min(NOTIFY_LIMITS.concurrency, due.length) }, async () => {
        while (cursor < due.length) {
          const delivery = due[cursor++]!;
          const channel = byName.get(delivery.channel)!;
          try {
            const reference = await channel.deliver(delivery, JSON.stringify(toCloudEvent(delivery, options.source))); // step 4
            await settle(pool, delivery, { status: 'delivered', reference }); // step 5
            outcome.delivered += 1;
          } catch (error) {
            const details = error instanceof DeliveryError ? error.details : {};
            const record = { message: String((error as Error).message).slice(0, NOTIFY_LIMITS.errorCharsMax), ...details };
            if (delivery.attempts >= attemptsMax) {
              await settle(pool, delivery, { status: 'dead', error: record });
              outcome.dead += 1;
            } else {
              await settle(pool, delivery, {
                status: 'pending',
                error: record,
                delayMs: backoffMs(
                  delivery.attempts,
                  details.retryAfterMs,
                  Math.random,
                  options.backoffBaseMs ?? NOTIFY_LIMITS.backoffBaseMs,
                ),
              });
              outcome.retried += 1;
            }
            options.log?.({
              level: 'warn',
              msg: 'notification not delivered',
              id: delivery.id,
              channel: delivery.channel,
              attempts: delivery.attempts,
              error: record.message,
            });
          }
        }
      }),
    );
  }
}

async function settle(
  pool: pg.Pool,
  delivery: Delivery,
  update: { status: 'delivered' | 'pending' | 'dead'; reference?: string; error?: unknown; delayMs?: number },
): Promise<void> {
  await pool.query(
    `UPDATE notification_deliveries SET status = $2, reference = coalesce($3, reference), last_error = coalesce($4::jsonb, last_error),
            next_attempt_at = now() + ($5 || ' milliseconds')::interval, lease_until = NULL,
            delivered_at = CASE WHEN $2 = 'delivered' THEN now() END
      WHERE seq = $1 AND status = 'pending'`,
    [
      delivery.seq,
      update.status,
      update.reference ?? null,
      update.error === undefined ? null : JSON.stringify(update.error),
      String(update.delayMs ?? 0),
    ],
  );
}

export interface NotificationPublisher {
  stop(): Promise<PublishOutcome>;
  done: Promise<PublishOutcome>;
  channels: string[];
}

/** Runs the publisher until stop(): a pass, then a pause of `pollMs` when nothing was due. */
export async function startNotificationPublisher(pool: pg.Pool, options: PublisherOptions): Promise<NotificationPublisher> {
  const channels: Channel[] = [];
  if (options.nats) channels.push(await natsChannel(options.nats, options.log));
  for (const url of options.webhooks?.urls ?? []) channels.push(webhookChannel(url, options.webhooks!.secret));
  if (channels.length === 0) throw new Error('no notification channel: give a NATS server or set ACCRUE_NOTIFY_WEBHOOK_URLS');
  const total: PublishOutcome = { fanned_out: 0, delivered: 0, retried: 0, dead: 0 };
  let stopping = false;
  let wake: () => void = () => {};
  const loop = async () => {
    let failures = 0;
    while (!stopping) {
      try {
        const pass = await publishDue(pool, channels, options);
        for (const key of Object.keys(total) as Array<keyof PublishOutcome>) total[key] += pass[key];
        failures = 0;
      } catch (error) {
        failures += 1;
        options.log?.({ level: 'warn', msg: 'notification publisher pass failed', error: (error as Error).message });
      }
      if (stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(
          resolve,
          failures > 0
            ? Math.min(30_000, (options.pollMs ?? NOTIFY_LIMITS.pollMs) * 2 ** failures)
            : (options.pollMs ?? NOTIFY_LIMITS.pollMs),
        );
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return total;
  };
  const done = loop().finally(async () => {
    for (const channel of channels) await channel.close().catch(() => {});
  });
  return {
    done,
    channels: channels.map((c) => c.name),
    async stop() {
      stopping = true;
      wake();
      return done;
    },
  };
}

// ---------- inspection and replay ----------

export async function listNotifications(pool: pg.Pool, options: { status?: 'pending' | 'delivered' | 'dead'; limit?: number } = {}) {
  return (
    await pool.query(
      `SELECT n.id, n.type, n.subject, n.created_at, d.channel, d.status, d.attempts, d.reference, d.last_error, d.delivered_at
         FROM notifications n LEFT JOIN notification_deliveries d ON d.notification_id = n.id
        WHERE ($1::text IS NULL OR d.status = $1) ORDER BY n.seq DESC, d.channel LIMIT $2`,
      [options.status ?? null, options.limit ?? 100],
    )
  ).rows;
}

/** Puts dead deliveries back in line (all, or one notification's); answers how many. */
export async function replayDeadNotifications(pool: pg.Pool, notificationId?: string): Promise<number> {
  const result = await pool.query(
    `UPDATE notification_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), lease_until = NULL, replays = replays + 1
      WHERE status = 'dead' AND ($1::text IS NULL OR notification_id = $1)`,
    [notificationId ?? null],
  );
  return result.rowCount ?? 0;
}
