// The dashboard in a real browser: Debian's headless Chromium driven by playwright-core against `buildServer` over a
// store filled like the demo (test/support/dashboard-data.ts). Every view must show the numbers the database holds;
// an exception is resolved and a dead letter replayed from the page; each view is photographed into SCREENSHOTS.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { testStore } from '../support/db.js';
import { fillDashboardData, type DashboardData } from '../support/dashboard-data.js';
import type { Store } from '../../src/store/store.js';
import { buildServer } from '../../src/api/server.js';
import { testKey, OPERATOR_AUDITOR } from '../support/keys.js';
import { formatMajor } from '../../src/domain/money.js';
import { drainOutbox } from '../../src/post/outbox.js';
import { readFileSync } from 'node:fs';
import { planCatalogChange } from '../../src/controls/apply.js';
import { proposeChange } from '../../src/controls/changes.js';

const CHROMIUM = process.env.ACCRUE_CHROMIUM ?? '/usr/bin/chromium';
/** Where every view's screenshot goes; printed at the start of the run. */
const SCREENSHOTS = resolve(process.env.ACCRUE_SCREENSHOTS ?? 'out/screenshots');
/** ACCRUE_DOCS_SCREENSHOT=1 also refreshes the README's picture of the overview. */
const DOCS_SCREENSHOT = resolve('docs/dashboard-overview.png');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
const WAIT_MS = 20_000;

let store: Store;
let data: DashboardData;
let app: FastifyInstance;
let base: string;
let admin: { id: string; secret: string; actor: string };
let reader: { id: string; secret: string };
let context: BrowserContext;
let profile: string;

before(async () => {
  store = await testStore();
  data = await fillDashboardData(store);
  app = await buildServer({ pool: store.pool, approvalRequired: [] /* the controls' own tests cover approval */ });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const a = await testKey(store.pool, { name: 'ops-admin', roles: OPERATOR_AUDITOR });
  const r = await testKey(store.pool, { name: 'finance-read', roles: ['auditor'] });
  admin = { id: a.key.id, secret: a.secret, actor: `principal:${a.principal.id}/key:${a.key.id}` };
  reader = { id: r.key.id, secret: r.secret };
  profile = mkdtempSync(join(tmpdir(), 'accrue-chromium-'));
  try {
    // A persistent context is how Playwright takes a fresh --user-data-dir of our own.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 1000 },
    });
  } catch (error) {
    throw new Error(
      `Chromium could not be launched from ${CHROMIUM} (install it with \`apt-get install -y chromium\`, or set ACCRUE_CHROMIUM): ${(error as Error).message}`,
      { cause: error },
    );
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  process.stdout.write(`# dashboard screenshots: ${SCREENSHOTS}\n`);
});

after(async () => {
  await context?.close();
  await app?.close();
  await data?.netsuite.stop();
  await store?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function signedIn(key: string): Promise<Page> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  (page as Page & { errors: string[] }).errors = errors;
  await page.goto(`${base}/`);
  await page.fill('#key', key);
  await page.click('[data-testid=key-form] button[type=submit]');
  await page.waitForSelector('[data-testid=scope]', { timeout: WAIT_MS });
  return page;
}

const pageErrors = (page: Page) => (page as Page & { errors: string[] }).errors;

/** Opens a view and waits for each of its parts that loads on its own (a view may make several API calls). */
async function open(page: Page, hash: string, ...ready: string[]): Promise<void> {
  await page.goto(`${base}/#/${hash}`);
  for (const selector of ready) await page.waitForSelector(selector, { timeout: WAIT_MS });
  // Charts draw on the next frame; give them one before a screenshot.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

const value = (page: Page, testid: string) => page.getAttribute(`[data-testid="${testid}"]`, 'data-value');
async function shot(page: Page, name: string): Promise<void> {
  await page.evaluate(() => scrollTo(0, 0)); // the sticky top bar belongs at the top of a full-page picture
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

async function api<T>(path: string, key = reader.secret): Promise<T> {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
  return (await res.json()) as T;
}

/** Drawn charts: canvases with a size and pixels that are not all blank. */
async function drawnCharts(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      [...document.querySelectorAll('canvas')].filter((c) => {
        if (c.width === 0 || c.height === 0) return false;
        const pixels = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
        return false;
      }).length,
  );
}

describe('dashboard in Chromium', () => {
  it('is served by the API server at / with its bundle, and the data routes need a key', async () => {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const html = await page.text();
    const script = html.match(/src="(\/dashboard\/app\.js\?v=[0-9a-f]+)"/)?.[1];
    assert.ok(script, html);
    const js = await fetch(`${base}${script}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.ok((await js.text()).length > 10_000, 'the bundle holds Preact and Chart.js');
    assert.equal((await fetch(`${base}/v1/dashboard/overview?period=${data.period}`)).status, 401);
  });

  it('overview: the period per legal entity and currency as the database has it, with KPIs and charts', async () => {
    const page = await signedIn(reader.secret);
    await open(page, `overview?period=${data.period}`, '[data-testid=totals] td[data-value]');
    const invoiced = (
      await store.pool.query<{ legal_entity: string; currency: string; invoiced: string; n: number }>(
        `SELECT legal_entity, currency, sum(CASE WHEN kind = 'credit_note' THEN -total_minor ELSE total_minor END)::text AS invoiced,
                count(*) FILTER (WHERE kind = 'invoice')::int AS n
           FROM invoices WHERE period = $1 AND status = 'finalized' GROUP BY 1, 2 ORDER BY 1, 2`,
        [data.period],
      )
    ).rows;
    assert.equal(invoiced.length, 2, 'nw-de in EUR and nw-us in USD');
    for (const row of invoiced) {
      const paid = (
        await store.pool.query<{ paid: string }>(
          "SELECT coalesce(sum(p.amount_minor), 0)::text AS paid FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE i.period = $1 AND i.legal_entity = $2 AND p.status = 'applied'",
          [data.period, row.legal_entity],
        )
      ).rows[0]!.paid;
      // Posted: invoices whose every NetSuite entry is posted (the refused one is not).
      const posted = (
        await store.pool.query<{ posted: string }>(
          `SELECT coalesce(sum(i.total_minor), 0)::text AS posted FROM invoices i
            WHERE i.period = $1 AND i.legal_entity = $2 AND i.status = 'finalized'
              AND NOT EXISTS (SELECT 1 FROM outbox o JOIN journals j ON j.id = o.document_id WHERE j.source_document = i.id AND o.status <> 'posted')`,
          [data.period, row.legal_entity],
        )
      ).rows[0]!.posted;
      const cell = (field: string) => value(page, `total-${row.legal_entity}-${row.currency}-${field}`);
      const major = (minor: string) => formatMajor(BigInt(minor), row.currency);
      assert.equal(await cell('invoiced'), major(row.invoiced), `${row.legal_entity} invoiced`);
      assert.equal(await cell('paid'), major(paid), `${row.legal_entity} paid`);
      assert.equal(await cell('posted'), major(posted), `${row.legal_entity} posted`);
      assert.equal(await cell('outstanding'), major((BigInt(row.invoiced) - BigInt(paid)).toString()), `${row.legal_entity} outstanding`);
      // The month is closed with nothing late: the estimate rates to exactly what was invoiced, and nothing is unbilled.
      assert.equal(await cell('usage'), major(row.invoiced), `${row.legal_entity} usage estimate equals the invoices`);
      assert.equal(await cell('unbilled'), major('0'));
      assert.equal(await page.textContent(`[data-testid="total-${row.legal_entity}-${row.currency}-invoices"]`), String(row.n));
    }
    const refused = invoiced.find((r) => r.legal_entity === 'nw-us')!;
    assert.notEqual(
      await value(page, 'total-nw-us-USD-posted'),
      formatMajor(BigInt(refused.invoiced), 'USD'),
      'the dead-lettered invoice is not posted',
    );

    const events = (
      await store.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE time >= '2026-10-01' AND time < '2026-11-01'")
    ).rows[0]!.n;
    const previous = (
      await store.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE time >= '2026-09-01' AND time < '2026-10-01'")
    ).rows[0]!.n;
    assert.equal(await value(page, 'kpi-events_accepted'), String(events));
    assert.match(
      (await page.textContent('[data-testid=kpi-events_accepted]')) ?? '',
      new RegExp(`\\+${(((events - previous) / previous) * 100).toFixed(1)} %`),
      'the trend against September',
    );
    assert.equal(await value(page, 'kpi-dlq_entries'), '1');
    assert.equal(await value(page, 'kpi-quarantine_pending'), '2');
    assert.equal(await value(page, 'kpi-exceptions_open'), '1', 'the NetSuite difference of October');
    assert.equal(await value(page, 'kpi-invoiced_EUR'), formatMajor(BigInt(invoiced.find((r) => r.currency === 'EUR')!.invoiced), 'EUR'));
    const perEntity = (
      await store.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM events WHERE customer_id = 'umbrella' AND time >= '2026-10-01' AND time < '2026-11-01'",
      )
    ).rows[0]!.n;
    assert.equal(await value(page, 'events-nw-de'), String(perEntity));

    // The page shows what the API says, and the API's running totals end on its totals.
    const overview = await api<{ totals: Array<Record<string, string>>; series: Array<Record<string, string[] | string>> }>(
      `/v1/dashboard/overview?period=${data.period}`,
    );
    for (const t of overview.totals) {
      for (const field of ['usage', 'unbilled', 'invoiced', 'posted', 'paid', 'outstanding'])
        assert.equal(await value(page, `total-${t.legal_entity}-${t.currency}-${field}`), t[field]);
      const s = overview.series.find((x) => x.legal_entity === t.legal_entity && x.currency === t.currency)!;
      for (const field of ['usage', 'invoiced', 'posted', 'paid'])
        assert.equal((s[field] as string[]).at(-1), t[field], `${t.legal_entity} ${field} series ends on the total`);
    }
    assert.equal(await drawnCharts(page), 3, 'two money charts and the events chart are drawn');
    await shot(page, 'overview');
    if (process.env.ACCRUE_DOCS_SCREENSHOT === '1') copyFileSync(join(SCREENSHOTS, 'overview.png'), DOCS_SCREENSHOT);
    assert.deepEqual(pageErrors(page), []);
    await page.close();
  });

  it('a read key sees every view but no action, and the API refuses its writes', async () => {
    const page = await signedIn(reader.secret);
    assert.match((await page.textContent('[data-testid=scope]')) ?? '', /read/);
    await open(page, 'pipeline', `[data-testid="dlq-row-${data.deadLetterId}"]`);
    assert.equal(await page.locator('[data-testid^=dlq-replay-]').count(), 0, 'no replay button for a read key');
    await open(page, `reconciliation?period=${data.period}`, `[data-testid="exception-${data.postingException}"]`);
    await page.click(`[data-testid="exception-${data.postingException}"]`);
    assert.equal(
      await page.locator(`[data-testid="actions-${data.postingException}"]`).count(),
      0,
      'no assign, resolve or waive for a read key',
    );
    const refused = await fetch(`${base}/v1/dlq/${data.deadLetterId}/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reader.secret}` },
    });
    assert.equal(refused.status, 403);
    assert.deepEqual(pageErrors(page), []);
    await page.close();
  });

  it('pipeline health: ingestion, quarantine and the NetSuite backlog as stored; a dead letter replayed from the page posts once', async () => {
    const page = await signedIn(admin.secret);
    await open(
      page,
      'pipeline',
      `[data-testid="dlq-row-${data.deadLetterId}"]`,
      '[data-testid=connector-netsuite]',
      '[data-testid=chart-ingestion] canvas',
    );
    const batches = (
      await store.pool.query<{ received: number; accepted: number }>(
        'SELECT sum(received)::int AS received, sum(accepted)::int AS accepted FROM ingest_receipts',
      )
    ).rows[0]!;
    assert.equal(await value(page, 'kpi-received'), String(batches.received));
    assert.equal(await value(page, 'kpi-accepted'), String(batches.accepted));
    assert.equal(await value(page, 'kpi-quarantine'), '2');
    assert.equal(await page.textContent('[data-testid=quarantine-unknown_subject]'), '2');
    const outbox = (
      await store.pool.query<{ posted: number; dead: number; pending: number }>(
        "SELECT count(*) FILTER (WHERE status = 'posted')::int AS posted, count(*) FILTER (WHERE status = 'dead')::int AS dead, count(*) FILTER (WHERE status = 'pending')::int AS pending FROM outbox WHERE target = 'netsuite'",
      )
    ).rows[0]!;
    assert.equal(await page.textContent('[data-testid=connector-netsuite-posted]'), String(outbox.posted));
    assert.equal((await page.textContent('[data-testid=connector-netsuite-dead]'))?.trim(), String(outbox.dead));
    assert.equal(await page.textContent('[data-testid=connector-netsuite-pending]'), String(outbox.pending));
    assert.match((await page.textContent(`[data-testid="dlq-row-${data.deadLetterId}"]`)) ?? '', /INVALID_FLD_VALUE/);
    assert.equal(await drawnCharts(page), 2, 'the ingestion and connector charts');
    await shot(page, 'pipeline');

    await page.click(`[data-testid="dlq-replay-${data.deadLetterId}"]`);
    await page.waitForSelector('[data-testid=dlq-notice]', { timeout: WAIT_MS });
    assert.match((await page.textContent('[data-testid=dlq-notice]')) ?? '', new RegExp(`Dead letter ${data.deadLetterId}`));
    await page.waitForSelector(`[data-testid="dlq-row-${data.deadLetterId}"]`, { state: 'detached', timeout: WAIT_MS });
    const row = (
      await store.pool.query<{ status: string; replays: number }>('SELECT status, replays FROM outbox WHERE id = $1', [data.deadLetterId])
    ).rows[0]!;
    assert.deepEqual(row, { status: 'pending', replays: 1 });
    const audit = (await store.pool.query<{ actor: string }>("SELECT actor FROM audit_log WHERE action = 'outbox.replay'")).rows;
    assert.deepEqual(audit, [{ actor: admin.actor }], 'the replay is audited under the admin key');
    const creates = data.netsuite.creates;
    await drainOutbox(store.pool, data.target, { untilEmptyMs: 5_000, backoffBaseMs: 10 });
    assert.equal(data.netsuite.creates - creates, 1, 'the replayed document is posted once');
    assert.equal((await store.pool.query('SELECT 1 FROM outbox WHERE id = $1 AND status = $2', [data.deadLetterId, 'posted'])).rowCount, 1);
    assert.deepEqual(pageErrors(page), []);
    await page.close();
  });

  it('reconciliation: checkpoints as the API compares them, and an exception assigned then resolved from the page', async () => {
    const page = await signedIn(admin.secret);
    await open(
      page,
      `reconciliation?period=${data.period}`,
      `[data-testid="exception-${data.postingException}"]`,
      '[data-testid=checkpoints-nw-us]',
      '[data-testid=queue-count-integration_support]:text-is("1")',
      '[data-testid=exceptions] canvas',
    );
    const report = await api<{
      status: string;
      checkpoints: Array<{ checkpoint: string; legal_entity: string; connector: string | null; status: string }>;
    }>(`/v1/periods/${data.period}/reconciliation`);
    assert.ok(report.checkpoints.length >= 12, 'six checkpoints for each of two entities');
    for (const c of report.checkpoints) {
      const id = `checkpoint-${c.legal_entity}-${c.checkpoint}${c.connector && c.connector !== 'ledger' ? `-${c.connector}` : ''}`;
      assert.equal(await page.getAttribute(`[data-testid="${id}"]`, 'data-status'), c.status, id);
    }
    const exception = (
      await store.pool.query<{ difference: string; currency: string; owner_queue: string }>(
        'SELECT difference, currency, owner_queue FROM exceptions WHERE id = $1',
        [data.postingException],
      )
    ).rows[0]!;
    assert.equal(exception.owner_queue, 'integration_support');
    assert.match(
      (await page.textContent(`[data-testid="exception-difference-${data.postingException}"]`)) ?? '',
      new RegExp(
        formatMajor(BigInt(exception.difference), exception.currency)
          .replace('-', '−')
          .replace(/\B(?=(\d{3})+(?!\d))/g, ',')
          .replace('.', '\\.'),
      ),
    );
    assert.equal(await drawnCharts(page), 1, 'the queue chart');
    await shot(page, 'reconciliation');

    await page.click(`[data-testid="exception-${data.postingException}"]`);
    await page.fill(`[data-testid="actions-${data.postingException}"] [data-testid=assignee]`, 'dana@integrations');
    await page.click(`[data-testid="actions-${data.postingException}"] [data-testid=assign]`);
    await page.waitForSelector(`[data-testid="exception-status-${data.postingException}"]:has-text("assigned")`, { timeout: WAIT_MS });
    await page.fill(`[data-testid="actions-${data.postingException}"] [data-testid=correcting-document]`, `outbox:${data.deadLetterId}`);
    await shot(page, 'reconciliation-resolving');
    await page.click(`[data-testid="actions-${data.postingException}"] [data-testid=resolve]`);
    await page.waitForSelector('[data-testid=exception-notice]:has-text("resolved")', { timeout: WAIT_MS });
    await page.waitForSelector(`[data-testid="exception-${data.postingException}"]`, { state: 'detached', timeout: WAIT_MS });
    const stored = (
      await store.pool.query('SELECT status, assigned_to, resolution_document FROM exceptions WHERE id = $1', [data.postingException])
    ).rows[0];
    assert.deepEqual(stored, { status: 'resolved', assigned_to: 'dana@integrations', resolution_document: `outbox:${data.deadLetterId}` });
    const moves = (
      await store.pool.query('SELECT action, to_status, actor FROM exception_events WHERE exception_id = $1 ORDER BY ordinal', [
        data.postingException,
      ])
    ).rows;
    assert.deepEqual(moves.slice(1), [
      { action: 'assign', to_status: 'assigned', actor: admin.actor },
      { action: 'resolve', to_status: 'resolved', actor: admin.actor },
    ]);
    await page.waitForSelector('[data-testid=queue-count-integration_support]:text-is("0")', { timeout: WAIT_MS });
    assert.deepEqual(pageErrors(page), []);
    await page.close();
  });

  it('invoices: search, an invoice with its PDF, and the explain walk from a line to its events and back', async () => {
    const page = await signedIn(reader.secret);
    await open(page, `invoices?period=${data.period}`, '[data-testid=invoice-count]');
    const rows = (
      await store.pool.query<{ number: string; total_minor: string; currency: string; customer: string }>(
        'SELECT number, total_minor::text, currency, customer FROM invoices WHERE period = $1 ORDER BY number',
        [data.period],
      )
    ).rows;
    assert.equal(await value(page, 'invoice-count'), String(rows.length));
    for (const r of rows) assert.equal(await value(page, `invoice-total-${r.number}`), formatMajor(BigInt(r.total_minor), r.currency));
    await shot(page, 'invoices');

    await page.fill('[data-testid=invoice-search]', 'Globex');
    await page.click('[data-testid=invoice-search-go]');
    const globex = rows.filter((r) => r.customer === 'globex');
    await page.waitForSelector(`[data-testid="invoice-count"][data-value="${globex.length}"]`, { timeout: WAIT_MS });
    assert.equal(await page.locator('[data-testid^=invoice-row-]').count(), globex.length);

    const acme = rows.find((r) => r.customer === 'acme')!;
    await open(page, `invoices/${acme.number}?period=${data.period}`, '[data-testid=invoice-detail-total]');
    assert.equal(await value(page, 'invoice-detail-total'), formatMajor(BigInt(acme.total_minor), acme.currency));
    // The statement: subtotal, discounts, credits, tax per jurisdiction and total, as stored; seller, buyer and due date as issued.
    await page.waitForSelector('[data-testid=statement-total]', { timeout: WAIT_MS });
    const stored = (
      await store.pool.query<{
        subtotal: string;
        discount: string;
        credits: string;
        total: string;
        due: string;
        tax_lines: Array<{ jurisdiction: string; tax_minor: string }>;
      }>(
        `SELECT subtotal_minor::text AS subtotal, discount_minor::text AS discount, credits_applied_minor::text AS credits, total_minor::text AS total,
                to_char(due_date, 'YYYY-MM-DD') AS due, document->'tax_lines' AS tax_lines FROM invoices WHERE number = $1`,
        [acme.number],
      )
    ).rows[0]!;
    const major = (minor: string) => formatMajor(BigInt(minor), acme.currency);
    const less = (minor: string) => (BigInt(minor) === 0n ? major(minor) : `-${major(minor)}`);
    assert.equal(await value(page, 'statement-subtotal'), major(stored.subtotal));
    assert.equal(await value(page, 'statement-discount'), less(stored.discount));
    assert.equal(await value(page, 'statement-credits'), less(stored.credits));
    assert.ok(stored.tax_lines.length > 0);
    for (const t of stored.tax_lines)
      assert.equal(await value(page, `statement-tax-${t.jurisdiction}`), major(t.tax_minor), `tax ${t.jurisdiction}`);
    assert.equal(await value(page, 'statement-total'), major(stored.total));
    assert.equal(await page.textContent('[data-testid=statement-due-date]'), stored.due);
    const buyer = await page.textContent('[data-testid=statement-buyer]');
    assert.ok(
      buyer?.includes('Acme Corp') && buyer.includes('1 Acme Way') && buyer.includes('90012 Los Angeles'),
      `the buyer's billing address: ${buyer}`,
    );
    const seller = await page.textContent('[data-testid=statement-seller]');
    assert.ok(
      seller?.includes('Northwind Cloud Inc.') && seller.includes('VAT / Tax ID: EIN 94-1234567'),
      `the seller with its tax id: ${seller}`,
    );
    const line = (
      await store.pool.query<{ line_no: number; quantity: string }>(
        "SELECT l.line_no, l.quantity::text FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.number = $1 AND l.kind = 'usage' AND l.meter = 'api_calls' ORDER BY l.line_no LIMIT 1",
        [acme.number],
      )
    ).rows[0]!;
    await page.click(`[data-testid=line-${line.line_no}]`);
    await page.waitForSelector(`[data-testid=explain-line-${line.line_no}]`, { timeout: WAIT_MS });
    assert.equal((await page.textContent(`[data-testid=explain-quantity-${line.line_no}]`))?.replace(/,/g, ''), line.quantity);
    const counted = (
      await store.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM events WHERE customer_id = 'acme' AND type = 'com.northwind.api.request' AND time >= '2026-10-01' AND time < '2026-11-01' AND NOT late",
      )
    ).rows[0]!.n;
    assert.equal(
      (await page.textContent(`[data-testid=explain-events-${line.line_no}]`))?.replace(/,/g, ''),
      String(counted),
      'the events behind the api_calls line',
    );
    await page.locator('[data-testid=sample-event]').first().click();
    await page.waitForSelector(`[data-testid=event-walk] a:has-text("${acme.number}")`, { timeout: WAIT_MS });

    await page.click('[data-testid=open-pdf]');
    const pdfUrl = await (await page.waitForSelector('[data-testid=pdf-link]', { timeout: WAIT_MS })).getAttribute('href');
    const head = await page.evaluate(
      async (url) => new TextDecoder().decode((await (await fetch(url!)).arrayBuffer()).slice(0, 5)),
      pdfUrl,
    );
    assert.equal(head, '%PDF-', 'the PDF came through the API with the key');
    for (const popup of context.pages()) if (popup !== page) await popup.close();
    await shot(page, 'invoice-detail');
    assert.deepEqual(pageErrors(page), []);
    await page.close();
  });

  it("customers: balances as stored, and a customer's usage over time per meter", async () => {
    const page = await signedIn(reader.secret);
    await open(page, `customers?period=${data.period}`, '[data-testid=customer-row-acme]');
    for (const r of (
      await store.pool.query<{ customer_id: string; n: number }>('SELECT customer_id, count(*)::int AS n FROM events GROUP BY 1')
    ).rows) {
      assert.equal(await value(page, `customer-events-${r.customer_id}`), String(r.n));
    }
    const owed = (
      await store.pool.query<{ owed: string }>(
        "SELECT sum(total_minor - amount_paid_minor)::text AS owed FROM invoices WHERE customer = 'globex' AND status = 'finalized' AND kind = 'invoice'",
      )
    ).rows[0]!.owed;
    assert.equal(await value(page, 'customer-outstanding-globex-USD'), formatMajor(BigInt(owed), 'USD'));
    await shot(page, 'customers');

    await open(page, `customers/acme?period=${data.period}`, '[data-testid=usage-api_calls] canvas');
    const meters = (
      await store.pool.query<{ type: string }>(
        "SELECT DISTINCT type FROM events WHERE customer_id = 'acme' AND time >= '2026-10-01' AND time < '2026-11-01' ORDER BY 1",
      )
    ).rows;
    assert.equal(await page.locator('[data-testid^=usage-]').count(), meters.length, 'one chart per meter with usage');
    const usage = await api<{ meters: Array<{ meter: string; quantities: string[]; events: number[] }> }>(
      '/v1/dashboard/customers/acme/usage?from=2026-10-01&to=2026-11-01&bucket=day',
    );
    const calls = usage.meters.find((m) => m.meter === 'api_calls')!;
    const perDay = (
      await store.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM events WHERE customer_id = 'acme' AND type = 'com.northwind.api.request' AND time >= '2026-10-05' AND time < '2026-10-06'",
      )
    ).rows[0]!.n;
    assert.equal(calls.quantities[4], String(perDay), 'api_calls on 5 October');
    assert.equal(await drawnCharts(page), meters.length);
    await shot(page, 'customer');
    assert.deepEqual(pageErrors(page), []);
    await page.close();
  });

  it('controls: a pending change with its diff; its requester is refused, a controller approves it; an operator sees no Approve', async () => {
    const maker = await testKey(store.pool, { name: 'max', roles: ['operator', 'controller'], kind: 'person' });
    const controller = await testKey(store.pool, { name: 'carlos', roles: ['controller'], kind: 'person' });
    const operator = await testKey(store.pool, { name: 'olivia', roles: ['operator'], kind: 'person' });
    const raised = readFileSync('examples/northwind/catalog.yaml', 'utf8').replace('amount: "99.00"', 'amount: "109.00"');
    const plan = await planCatalogChange(store.pool, raised, { source: 'e2e', reason: 'the 2027 price list' });
    const actor = { principal: maker.principal.id, name: maker.principal.name, roles: maker.principal.roles, entities: [] };
    const { request } = await proposeChange(store.pool, actor, plan);
    const row = `[data-testid="change-row-${request.id}"]`;
    const diff = `[data-testid="change-diff-${request.id}"]`;
    const approve = `[data-testid="change-approve-${request.id}"]`;

    const watching = await signedIn(operator.secret);
    await open(watching, 'controls', row, '[data-testid=kpi-changes-pending]');
    assert.match((await watching.textContent(row)) ?? '', new RegExp(`catalog\\.apply[\\s\\S]*${maker.principal.name}`));
    await watching.click(row);
    await watching.waitForSelector(diff, { timeout: WAIT_MS });
    assert.match((await watching.textContent(diff)) ?? '', /\+\s+- amount: "109\.00"/);
    assert.equal(await watching.locator('[data-testid^=change-approve-]').count(), 0, 'no Approve for an operator');
    assert.deepEqual(pageErrors(watching), []);
    await watching.close();

    const self = await signedIn(maker.secret);
    await open(self, 'controls', row);
    await self.click(row);
    await self.click(approve);
    await self.waitForSelector('[data-testid=decision-error]', { timeout: WAIT_MS });
    assert.match((await self.textContent('[data-testid=decision-error]')) ?? '', /a different principal must decide it/);
    await self.close();

    const page = await signedIn(controller.secret);
    await open(page, 'controls', row, '[data-testid^=refusal-code-]');
    assert.equal(await value(page, 'kpi-changes-pending'), '1');
    assert.equal(
      await page.locator('[data-testid^=refusal-code-]:has-text("self_approval")').count(),
      1,
      'the refusal, from the audit log',
    );
    await page.click(row);
    await page.waitForSelector(diff, { timeout: WAIT_MS });
    await shot(page, 'controls');
    await page.fill(`[data-testid="decide-${request.id}"] [data-testid=decision-note]`, 'matches the price list');
    await page.click(approve);
    await page.waitForSelector('[data-testid=controls-notice]', { timeout: WAIT_MS });
    await page.waitForSelector(`[data-testid="decision-status-${request.id}"]:has-text("approved")`, { timeout: WAIT_MS });
    await page.waitForSelector(row, { state: 'detached', timeout: WAIT_MS });
    const stored = (
      await store.pool.query<{ status: string; decided_by: string }>('SELECT status, decided_by FROM change_requests WHERE id = $1', [
        request.id,
      ])
    ).rows[0];
    assert.deepEqual(stored, { status: 'approved', decided_by: controller.principal.id });
    assert.equal(await value(page, 'kpi-changes-pending'), '0');
    assert.deepEqual(pageErrors(page), []);
    await page.close();
  });
});
