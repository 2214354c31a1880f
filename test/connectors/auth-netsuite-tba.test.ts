// NetSuite TBA signatures checked against an independent OAuth 1.0a implementation (Python oauthlib), never skipped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import { tbaAuthorization } from '../../src/connectors/auth/netsuite-tba.js';

const SCRIPT = `
import json, sys
import oauthlib.oauth1
out = []
for c in json.load(sys.stdin):
    client = oauthlib.oauth1.Client(c['ck'], client_secret=c['cs'], resource_owner_key=c['tk'], resource_owner_secret=c['ts'],
        signature_method=oauthlib.oauth1.SIGNATURE_HMAC_SHA256, realm=c['realm'], nonce=c['nonce'], timestamp=c['timestamp'])
    uri, headers, body = client.sign(c['url'], http_method=c['method'])
    out.append(headers['Authorization'])
print(json.dumps(out))
`;

interface Case {
  ck: string;
  cs: string;
  tk: string;
  ts: string;
  realm: string;
  nonce: string;
  timestamp: string;
  url: string;
  method: string;
}

function oauthlib(cases: Case[]): string[] {
  const run = spawnSync('/usr/bin/python3', ['-c', SCRIPT], { input: JSON.stringify(cases), encoding: 'utf8' });
  assert.equal(run.status, 0, `/usr/bin/python3 with oauthlib is required for this test (pip install oauthlib): ${run.stderr}`);
  return JSON.parse(run.stdout) as string[];
}

const params = (header: string): Record<string, string> =>
  Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, decodeURIComponent(m[2]!)]));

function compare(cases: Case[]) {
  const theirs = oauthlib(cases);
  cases.forEach((c, i) => {
    const ours = params(
      tbaAuthorization(c.realm, { consumer_key: c.ck, consumer_secret: c.cs, token_id: c.tk, token_secret: c.ts }, c.method, c.url, {
        nonce: c.nonce,
        timestamp: Number(c.timestamp),
      }),
    );
    const other = params(theirs[i]!);
    assert.equal(ours.oauth_signature, other.oauth_signature, `signature of ${c.method} ${c.url}`);
    assert.equal(ours.realm, other.realm);
    assert.equal(ours.oauth_signature_method, 'HMAC-SHA256');
  });
}

const base: Omit<Case, 'url' | 'method'> = {
  ck: 'ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcb5d7f8e9a1b2c3d',
  cs: 'd26ad321a4b2f23b0741c8d38392ce01c3e23e109df6c96eac6d099e9ab9a8b5',
  tk: '2b0ce516420110bcbd36b69e99196d1b7f6de3c6234c5afb799b73d87569f5cc',
  ts: 'c29a677df7d5439a458c063654187e3d9b6bbc9c5b6fd6b1d0d3e9f8a7b6c5d4',
  realm: '1234567_SB1',
  nonce: 'fjaLirsIcCGVZWzBX0pg',
  timestamp: '1508242306',
};

test('TBA signatures equal oauthlib on NetSuite URLs with query strings and characters needing percent-encoding', () => {
  const root = 'https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1';
  compare([
    { ...base, method: 'GET', url: `${root}/customer?q=${encodeURIComponent('externalId IS "acme:cust 1"')}&limit=10` },
    { ...base, method: 'POST', url: `${root}/invoice` },
    { ...base, method: 'GET', url: `${root}/customer/eid:${encodeURIComponent('nw-us/cust #1 (ü)')}?expandSubResources=true` },
    { ...base, method: 'PATCH', url: `${root}/customer/42?replace=addressbook&a=1&a=2&b=${encodeURIComponent("x*y!'()~")}` },
    { ...base, method: 'GET', url: 'https://1234567-sb1.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=123&deploy=1' },
  ]);
});

test('TBA signatures equal oauthlib for any secrets, nonce and query values', () => {
  const cases = fc.sample(
    fc.record({
      ck: fc.stringMatching(/^[0-9a-f]{8,64}$/),
      cs: fc.string({ minLength: 1, maxLength: 40 }),
      tk: fc.stringMatching(/^[0-9a-f]{8,64}$/),
      ts: fc.string({ minLength: 1, maxLength: 40 }),
      realm: fc.constantFrom('1234567', '1234567_SB1', 'TSTDRV99'),
      nonce: fc.stringMatching(/^[A-Za-z0-9]{8,32}$/),
      timestamp: fc.integer({ min: 1_500_000_000, max: 1_900_000_000 }).map(String),
      method: fc.constantFrom('GET', 'POST', 'PATCH', 'PUT', 'DELETE'),
      url: fc
        .tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 12 }))
        .map(
          ([k, v]) =>
            `https://1234567.suitetalk.api.netsuite.com/services/rest/record/v1/customer?${encodeURIComponent(k)}=${encodeURIComponent(v)}&limit=5`,
        ),
    }),
    { numRuns: 150, seed: 15 },
  );
  compare(cases);
});
