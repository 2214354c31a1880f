// The NetSuite connector against the strict simulator: mappings (missing and refused), customer sync, credit memo and
// payment applications, closed periods, legacy tax, concurrency, TBA and bearer authentication, erp check.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import OAuth from 'oauth-1.0a';
import { MappingMissing, PeriodLocked, type PaymentDocument } from '../../src/domain/erp.js';
import { netsuiteExternalId, suiteqlText } from '../../src/connectors/netsuite/client.js';
import type { SalesDocument } from '../../src/post/erp-documents.js';
import { TargetError } from '../../src/post/target.js';
import { NS_SIM_ACCOUNT, NS_SIM_TBA, NetSuiteSimulator, type NetSuiteSimOptions } from '../support/netsuite-sim.js';
import { bearerAuthorizer, netsuiteTarget, tbaAuthorizer, type MappingTable, type NetSuiteTargetFor } from '../support/netsuite-target.js';

const references: NetSuiteSimOptions['references'] = {
  subsidiary: { '1': {}, '2': {} },
  currency: { '1': { symbol: 'USD' }, '4': { symbol: 'EUR' } },
  item: { '101': {}, '102': {}, '199': { inactive: true } },
  account: { '200': {}, '201': {}, '300': {} },
  tax_code: { '51': {} },
  tax_type: { '61': {} },
  nexus: { '71': {} },
  customer: { '8001': { subsidiary: '2' } },
};
const mappings: MappingTable = {
  subsidiary: { 'nw-us': '1' },
  currency: { USD: '1' },
  item: { api: '101', platform: '102' },
  account: { '1100': '300', '4000': '200', '1200': '201' },
  tax_code: { 'US-CA': '51' },
  tax_type: { 'US-CA': '61' },
  nexus: { 'US-CA': '71' },
};

let connections = 0;
const strictTarget = (sim: NetSuiteSimulator, options: NetSuiteTargetFor = {}) =>
  netsuiteTarget(sim.url, {
    name: `ns-${++connections}`,
    identity: false,
    mappings,
    timeoutMs: 5_000,
    cashAccount: '1100',
    ...options,
    ...(options.mappings ? { mappings: { ...mappings, ...options.mappings } } : {}),
  });

const invoice = (number: string, overrides: Partial<SalesDocument> = {}): SalesDocument => ({
  kind: 'invoice',
  source_document: `inv_${number}`,
  journal_id: `jrn:v1:invoice:inv_${number}`,
  number,
  corrects: null,
  legal_entity: 'nw-us',
  customer: 'acme',
  customer_erp_id: 'C-1',
  currency: 'USD',
  date: '2026-11-30',
  due_date: '2026-12-30',
  buyer: {
    name: 'Acme Corp',
    address: { lines: ['1 Acme Way'], city: 'Los Angeles', region: 'CA', postal_code: '90012', country: 'US' },
    tax_id: null,
  },
  period_start: '2026-11-01',
  period_end: '2026-12-01',
  memo: `Invoice ${number}`,
  tax: { jurisdiction: 'US-CA', rate: '0.0725' },
  lines: [
    { product: 'api', description: 'API calls', account: '4000', amount_minor: 10000n, tax_minor: 725n },
    { product: 'platform', description: 'Platform', account: '4000', amount_minor: 20000n, tax_minor: 1450n },
  ],
  tax_minor: 2175n,
  total_minor: 32175n,
  ...overrides,
});

const creditNote = (number: string, corrects: string): SalesDocument =>
  invoice(number, {
    kind: 'credit_note',
    corrects,
    due_date: null,
    lines: [{ product: 'api', description: 'API calls', account: '4000', amount_minor: 5000n, tax_minor: 0n }],
    tax: null,
    tax_minor: 0n,
    total_minor: 5000n,
  });

const key = (document: SalesDocument) => `out:v1:netsuite:${document.journal_id}`;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a refusal');
}

describe('NetSuite connector against the strict simulator', () => {
  let sim: NetSuiteSimulator;
  before(async () => {
    sim = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600, references, closedThrough: '2026-09-30' });
    await sim.start();
  });
  after(async () => sim.stop());

  it('a missing mapping is MappingMissing naming the field, and nothing is sent for the document', async () => {
    const target = strictTarget(sim, { mappings: { item: { api: '101' } } });
    const before = sim.seen.filter((r) => r.method === 'PUT' && r.url.includes('/invoice/')).length;
    const error = (await rejection(target.postDocument(key(invoice('M-1')), invoice('M-1')))) as MappingMissing;
    assert.ok(error instanceof MappingMissing, String(error));
    assert.deepEqual([error.kind, error.source, error.field, error.refusedBy], ['item', 'platform', 'item.items[1].item', undefined]);
    assert.equal(sim.seen.filter((r) => r.method === 'PUT' && r.url.includes('/invoice/')).length, before, 'no invoice request');
  });

  it('a mapping NetSuite refuses (unknown or inactive record) is MappingMissing with NetSuite detail, not a retry', async () => {
    const target = strictTarget(sim, { mappings: { item: { api: '101', platform: '199' } } });
    const error = (await rejection(target.postDocument(key(invoice('M-2')), invoice('M-2')))) as MappingMissing;
    assert.ok(error instanceof MappingMissing, String(error));
    assert.deepEqual([error.kind, error.source, error.field], ['item', 'platform', 'item.items[1].item']);
    assert.match(error.refusedBy!, /Invalid Field Value 199 for the following field: item/);
    const account = strictTarget(sim, { mappings: { account: { '4000': '999', '1200': '201' } } });
    const journal = {
      id: 'jrn:v1:invoice:inv_j1',
      key: 'k',
      legal_entity: 'nw-us',
      posting_date: '2026-11-30',
      source_document: 'inv_j1',
      kind: 'invoice' as const,
      memo: 'j',
      lines: [
        { line_no: 1, account: '1200', debit_minor: 100n, credit_minor: 0n, currency: 'USD', customer: 'C-1' },
        { line_no: 2, account: '4000', debit_minor: 0n, credit_minor: 100n, currency: 'USD' },
      ],
    };
    const refused = (await rejection(account.post('out:v1:netsuite:jrn:v1:invoice:inv_j1', journal))) as MappingMissing;
    assert.ok(refused instanceof MappingMissing, String(refused));
    assert.deepEqual([refused.kind, refused.source, refused.field], ['account', '4000', 'line.items[1].account']);
  });

  it('creates the customer once (subsidiary, currency, default billing address) before its first document', async () => {
    const upserts = () => sim.seen.filter((r) => r.method === 'PUT' && r.url.includes('/customer/')).length;
    const before = upserts();
    const target = strictTarget(sim);
    await target.postDocument(key(invoice('C-1')), invoice('C-1'));
    await target.postDocument(key(invoice('C-2')), invoice('C-2'));
    await strictTarget(sim).postDocument(key(invoice('C-3')), invoice('C-3')); // another worker: the same upsert, no second record
    const customer = sim.customers.get('C-1')!;
    assert.equal(sim.customers.size, 1);
    assert.deepEqual(
      [customer.body.companyName, customer.body.subsidiary, customer.body.currency],
      ['Acme Corp', { id: '1' }, { id: '1' }],
    );
    assert.equal(customer.body.addressBook?.items?.[0]?.defaultBilling, true);
    assert.equal(upserts() - before, 2, 'one upsert per target, none per document');
    assert.equal(customer.writes, before + 2, 'every upsert wrote the same record');
    const posted = sim.sales('invoice').find((r) => r.body.tranId === 'C-1')!.body;
    assert.deepEqual(posted.entity, { id: customer.id });
  });

  it("a document booked from another currency carries its journal's rate as exchangeRate (base units per transaction unit)", async () => {
    const target = strictTarget(sim);
    const booked = invoice('FX-1', { fx: { currency: 'USD', rate: '0.919455682236', rate_date: '2026-11-30', source: 'ecb' } });
    await target.postDocument(key(booked), booked);
    const posted = sim.sales('invoice').find((r) => r.body.tranId === 'FX-1')!;
    assert.equal(posted.body.exchangeRate, '0.919455682236'); // the simulator reads numbers exactly, as decimal text
    await target.postDocument(key(invoice('FX-2')), invoice('FX-2'));
    assert.equal(sim.sales('invoice').find((r) => r.body.tranId === 'FX-2')!.body.exchangeRate, undefined);
  });

  it('link mode: no customer mapping and no record with that external ID is MappingMissing(customer)', async () => {
    const target = strictTarget(sim, { customers: 'link' });
    const error = (await rejection(
      target.postDocument(
        key(invoice('L-1', { customer: 'initech', customer_erp_id: 'C-404' })),
        invoice('L-1', { customer: 'initech', customer_erp_id: 'C-404' }),
      ),
    )) as MappingMissing;
    assert.ok(error instanceof MappingMissing, String(error));
    // Named by Accrue's customer id: the source `accrue erp mappings import` takes for a customer mapping.
    assert.deepEqual([error.kind, error.source, error.field], ['customer', 'initech', 'entity']);
    assert.equal(sim.customers.has('C-404'), false);
  });

  it('a customer of another subsidiary is refused by NetSuite and named as the customer mapping', async () => {
    const target = strictTarget(sim, { mappings: { customer: { acme: '8001' } } });
    const error = (await rejection(target.postDocument(key(invoice('S-1')), invoice('S-1')))) as MappingMissing;
    assert.ok(error instanceof MappingMissing, String(error));
    assert.deepEqual([error.kind, error.source, error.field], ['customer', 'acme', 'entity']);
    assert.match(error.refusedBy!, /for subsidiary 1/);
  });

  it('applies a credit memo to the invoice it corrects, once: the amount remaining drops by the credit', async () => {
    const target = strictTarget(sim);
    const posted = await target.postDocument(key(invoice('CR-1')), invoice('CR-1'));
    assert.equal(sim.amountRemaining(posted.reference).toString(), '321.75');
    const credit = creditNote('CN-1', 'CR-1');
    await target.postDocument(key(credit), credit);
    assert.equal(sim.amountRemaining(posted.reference).toString(), '271.75');
    await target.postDocument(key(credit), credit); // a retry after a lost answer: the same upsert
    assert.equal(sim.amountRemaining(posted.reference).toString(), '271.75', 'applied once');
    const memo = sim.sales('creditMemo').find((r) => r.body.tranId === 'CN-1')!;
    assert.deepEqual(memo.body.apply?.items, [{ doc: { id: posted.reference }, apply: true, amount: '50' }]);
  });

  it('pushes a payment as a customerPayment applied to its invoice; payment polling does not bring it back', async () => {
    const target = strictTarget(sim);
    const posted = await target.postDocument(key(invoice('P-1')), invoice('P-1'));
    const payment: PaymentDocument = {
      payment_id: 'pay_1',
      invoice_number: 'P-1',
      invoice_id: 'inv_P-1',
      legal_entity: 'nw-us',
      customer: 'C-1',
      customer_erp_id: 'C-1',
      currency: 'USD',
      amount_minor: 32175n,
      received_on: '2026-12-03',
    };
    const paymentKey = 'out:v1:netsuite:payment:pay_1';
    assert.equal(await target.findPayment(paymentKey, payment), undefined);
    const pushed = await target.postPayment(paymentKey, payment);
    assert.equal(sim.amountRemaining(posted.reference).toString(), '0', 'the invoice is paid in NetSuite');
    assert.deepEqual(await target.findPayment(paymentKey, payment), pushed);
    const record = sim.pushedPayments.get(netsuiteExternalId(paymentKey))!.body;
    assert.deepEqual(
      [record.account, record.payment, record.apply?.items?.[0]],
      [{ id: '300' }, '321.75', { doc: { id: posted.reference }, apply: true, amount: '321.75' }],
    );
    const polled = [];
    for await (const page of target.paymentPages(null)) polled.push(...page);
    assert.deepEqual(
      polled.filter((p) => p.invoice_reference === posted.reference),
      [],
      'Accrue applied it already',
    );
    // A payment entered in NetSuite by a person is still polled.
    sim.addPayment({
      tranDate: '2026-12-04',
      modifiedAt: '2026-12-04 10:00:00',
      applications: [{ invoiceExternalId: netsuiteExternalId(key(invoice('C-1'))), amount: '1.00' }],
    });
    const again = [];
    for await (const page of target.paymentPages(null)) again.push(...page);
    assert.equal(again.length, 1);
  });

  it('a date in a closed period is PeriodLocked with the first open day', async () => {
    const target = strictTarget(sim);
    const old = invoice('OLD-1', { date: '2026-09-15' });
    const error = (await rejection(target.postDocument(key(old), old))) as PeriodLocked;
    assert.ok(error instanceof PeriodLocked, String(error));
    assert.deepEqual([error.date, error.firstOpenDay], ['2026-09-15', '2026-10-01']);
    assert.match(error.detail, /closed/);
  });

  it('erp check: active, inactive and missing references', async () => {
    const target = strictTarget(sim);
    assert.deepEqual(await target.checkReference('item', '101'), { state: 'active' });
    assert.equal((await target.checkReference('item', '199')).state, 'inactive');
    assert.equal((await target.checkReference('account', '404')).state, 'missing');
    assert.equal((await target.checkReference('nexus', '71')).state, 'active');
    assert.equal((await target.checkReference('customer', '1 OR 1=1')).state, 'missing', 'not an id: never put into the query');
  });

  it('quotes SuiteQL text literals', async () => {
    assert.equal(suiteqlText("O'Brien"), "'O''Brien'");
    assert.throws(() => suiteqlText('a\nb'));
    const target = strictTarget(sim);
    const quoted = invoice("Q'1");
    await target.postDocument(key(quoted), quoted);
    const credit = creditNote('QCN-1', "Q'1");
    await target.postDocument(key(credit), credit);
    const memo = sim.sales('creditMemo').find((r) => r.body.tranId === 'QCN-1')!;
    assert.equal(memo.body.apply?.items?.[0]?.doc?.id, sim.sales('invoice').find((r) => r.body.tranId === "Q'1")!.id);
  });
});

describe('NetSuite legacy tax', () => {
  it('refuses taxed documents with the cause and the alternative, learned once per connection, no request per document', async () => {
    const sim = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600, references, legacyTax: true });
    await sim.start();
    try {
      const target = strictTarget(sim);
      const errors = [];
      for (const n of [1, 2, 3]) errors.push(await rejection(target.postDocument(key(invoice(`LT-${n}`)), invoice(`LT-${n}`))));
      for (const error of errors) {
        assert.ok(error instanceof TargetError && error.details.code === 'netsuite_legacy_tax' && error.details.permanent, String(error));
        assert.match((error as Error).message, /legacy tax.*SuiteTax only.*SOAP web services or CSV import/s);
      }
      assert.equal(sim.requests, 1, 'one lookup for the connection, no request per document');
      assert.equal(sim.sales('invoice').length, 0);
    } finally {
      await sim.stop();
    }
  });
});

describe('NetSuite concurrency and authentication', () => {
  it("answers over the account's concurrency limit with 429 and NetSuite's error body", async () => {
    const sim = new NetSuiteSimulator({ concurrencyLimit: 1, timeoutDelayMs: 600, serviceMs: 200 });
    await sim.start();
    try {
      const target = netsuiteTarget(sim.url, { name: `ns-${++connections}` });
      const results = await Promise.allSettled([target.find('out:v1:netsuite:a'), target.find('out:v1:netsuite:b')]);
      const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as TargetError);
      assert.equal(refused.length, 1);
      assert.deepEqual(
        [refused[0]!.details.status, refused[0]!.details.code, refused[0]!.details.permanent, refused[0]!.details.retryAfterMs],
        [429, 'CONCURRENCY_LIMIT_EXCEEDED', false, 0],
      );
      assert.deepEqual((refused[0]!.details.body as { 'o:errorDetails': unknown })['o:errorDetails'], [
        { detail: 'Concurrent request limit exceeded. Request blocked.', 'o:errorCode': 'CONCURRENCY_LIMIT_EXCEEDED' },
      ]);
    } finally {
      await sim.stop();
    }
  });

  it('verifies TBA signatures itself: wrong secret, realm, replayed nonce or stale timestamp are 401 INVALID_LOGIN', async () => {
    const sim = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600 });
    await sim.start();
    try {
      const url = `${sim.url}/services/rest/record/v1/journalEntry/eid:x?expandSubResources=true`;
      const sign = (options: { secret?: string; realm?: string; timestamp?: number } = {}) => {
        const oauth = new OAuth({
          consumer: { key: NS_SIM_TBA.consumerKey, secret: options.secret ?? NS_SIM_TBA.consumerSecret },
          signature_method: 'HMAC-SHA256',
          realm: options.realm ?? NS_SIM_ACCOUNT,
          hash_function: (b, k) => createHmac('sha256', k).update(b).digest('base64'),
        });
        const data = oauth.authorize({ url, method: 'GET' }, { key: NS_SIM_TBA.tokenId, secret: NS_SIM_TBA.tokenSecret });
        if (options.timestamp !== undefined) {
          data.oauth_timestamp = options.timestamp;
          data.oauth_signature = oauth.getSignature({ url, method: 'GET' }, NS_SIM_TBA.tokenSecret, data);
        }
        return oauth.toHeader(data).Authorization;
      };
      const get = async (authorization: string) => {
        const res = await fetch(url, { headers: { authorization } });
        return { status: res.status, body: (await res.json()) as { 'o:errorDetails': Array<{ 'o:errorCode': string }> } };
      };
      const good = sign();
      assert.equal((await get(good)).status, 404, 'a valid signature reaches the record (none there)');
      const replay = await get(good);
      assert.deepEqual([replay.status, replay.body['o:errorDetails'][0]!['o:errorCode']], [401, 'INVALID_LOGIN']);
      assert.equal((await get(sign({ secret: 'not-the-secret' }))).status, 401);
      assert.equal((await get(sign({ realm: '7654321' }))).status, 401);
      assert.equal((await get(sign({ timestamp: Math.floor(Date.now() / 1000) - 3600 }))).status, 401);
      assert.equal((await get(good.replace(/oauth_nonce="[^"]*"/, 'oauth_nonce="other"'))).status, 401, 'the nonce is signed');
      assert.deepEqual(sim.authFailures, [
        'nonce already used',
        'signature does not match',
        'realm is not the account id',
        'timestamp outside the allowed skew',
        'signature does not match',
      ]);
      // Through the connector: every request signed (query parameters included), none refused.
      const authorizer = tbaAuthorizer('ns-tba');
      const target = netsuiteTarget(sim.url, { name: `ns-${++connections}`, authorizer });
      for await (const _page of target.paymentPages(null)) void _page;
      assert.equal(await target.find('out:v1:netsuite:nothing'), undefined);
      assert.equal(sim.authFailures.length, 5);
      assert.equal(authorizer.signed, 2);
    } finally {
      await sim.stop();
    }
  });

  it(
    'accepts a TBA header signed by an independent implementation (python oauthlib), for a URL with a query',
    { skip: !existsSync('/usr/bin/python3') },
    async () => {
      const sim = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600 });
      await sim.start();
      try {
        const url = `${sim.url}/services/rest/query/v1/suiteql?limit=5&offset=0`;
        const script = [
          'import sys, json',
          'from oauthlib.oauth1 import Client, SIGNATURE_HMAC_SHA256',
          'a = json.loads(sys.argv[1])',
          "c = Client(a['ck'], a['cs'], resource_owner_key=a['tk'], resource_owner_secret=a['ts'], signature_method=SIGNATURE_HMAC_SHA256, realm=a['realm'])",
          "print(c.sign(a['url'], http_method='POST')[1]['Authorization'])",
        ].join('\n');
        const sign = () =>
          execFileSync(
            '/usr/bin/python3',
            [
              '-c',
              script,
              JSON.stringify({
                ck: NS_SIM_TBA.consumerKey,
                cs: NS_SIM_TBA.consumerSecret,
                tk: NS_SIM_TBA.tokenId,
                ts: NS_SIM_TBA.tokenSecret,
                realm: NS_SIM_ACCOUNT,
                url,
              }),
            ],
            { encoding: 'utf8' },
          ).trim();
        const res = await fetch(url, {
          method: 'POST',
          headers: { authorization: sign(), 'content-type': 'application/json' },
          body: JSON.stringify({ q: 'SELECT id, isinactive FROM item WHERE id = 1' }),
        });
        assert.equal(res.status, 200, await res.text());
        const tampered = await fetch(url.replace('limit=5', 'limit=6'), {
          method: 'POST',
          headers: { authorization: sign(), 'content-type': 'application/json' },
          body: JSON.stringify({ q: 'SELECT id, isinactive FROM item WHERE id = 1' }),
        });
        assert.equal(tampered.status, 401, 'the query string is signed');
        assert.deepEqual(sim.authFailures, ['signature does not match']);
      } finally {
        await sim.stop();
      }
    },
  );

  it('bearer tokens expire after 60 minutes on the clock; the caller renews once and the request passes', async () => {
    const sim = new NetSuiteSimulator({ concurrencyLimit: 5, timeoutDelayMs: 600 });
    await sim.start();
    try {
      let now = Date.now();
      sim.clock = () => now;
      const authorizer = bearerAuthorizer(() => sim.issueBearer());
      const target = netsuiteTarget(sim.url, { name: `ns-${++connections}`, authorizer });
      assert.equal(await target.find('out:v1:netsuite:a'), undefined);
      now += 59 * 60_000;
      assert.equal(await target.find('out:v1:netsuite:a'), undefined);
      assert.equal(authorizer.refreshes, 0);
      now += 2 * 60_000;
      assert.equal(await target.find('out:v1:netsuite:a'), undefined);
      assert.deepEqual([authorizer.refreshes, sim.authFailures], [1, ['bearer token unknown or expired']]);
    } finally {
      await sim.stop();
    }
  });
});
