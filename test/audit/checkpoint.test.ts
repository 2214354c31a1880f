import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import fc from 'fast-check';
import {
  checkpointLine,
  checkpointPayload,
  generateSigningKeys,
  keyId,
  parseCheckpoint,
  privateKeyFromPem,
  publicKeyFromPem,
  signCheckpoint,
  verifyCheckpoint,
  type Checkpoint,
} from '../../src/audit/checkpoint.js';

const keys = generateSigningKeys();
const privateKey = createPrivateKey(keys.privatePem);
const publicKey = createPublicKey(keys.publicPem);
const other = generateKeyPairSync('ed25519');
const HEAD = { seq: 42n, hash: 'ab'.repeat(32) };
const AT = '2026-12-01T00:00:00.000Z';

const codes = (result: ReturnType<typeof verifyCheckpoint>) => (result.ok ? [] : result.problems.map((p) => p.code));

describe('audit checkpoints: the document and its signature', () => {
  it('signs the canonical JSON of every field but the signature, with the key id of the public key DER', () => {
    const checkpoint = signCheckpoint(HEAD, AT, privateKey);
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const id = createHash('sha256').update(der).digest('hex');
    assert.equal(checkpoint.key_id, id);
    assert.equal(keys.keyId, id);
    assert.equal(keyId(privateKey), id, 'the key id of a private key is that of its public half');
    // RFC 8785: keys sorted, no spaces; the recipe written out by hand.
    const payload = `{"at":"${AT}","hash":"${HEAD.hash}","key_id":"${id}","seq":"42","version":1}`;
    assert.equal(checkpointPayload(checkpoint), payload);
    assert.ok(verify(null, Buffer.from(payload), publicKey, Buffer.from(checkpoint.signature, 'base64url')));
    assert.match(checkpoint.signature, /^[A-Za-z0-9_-]{86}$/);
    assert.deepEqual(verifyCheckpoint(checkpoint, [publicKey]), { ok: true, value: checkpoint });
    const line = checkpointLine(checkpoint);
    assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
    assert.deepEqual(verifyCheckpoint(JSON.parse(line), [publicKey]).ok, true, 'a line of the log verifies as written');
  });

  it('refuses a checkpoint signed by another key, and one forged under this key id', () => {
    const foreign = signCheckpoint(HEAD, AT, other.privateKey);
    assert.deepEqual(codes(verifyCheckpoint(foreign, [publicKey])), ['unknown_key']);
    assert.deepEqual(verifyCheckpoint(foreign, [publicKey, other.publicKey]).ok, true, 'several keys: each checkpoint by its own');
    const forged = { ...foreign, key_id: keyId(publicKey) };
    assert.deepEqual(codes(verifyCheckpoint(forged, [publicKey])), ['bad_signature']);
  });

  it('breaks on any change of any field (property)', () => {
    const checkpoint = signCheckpoint(HEAD, AT, privateKey);
    const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
    const changes = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 62n }).map((seq) => ['seq', seq.toString()] as const),
      hex64.map((hash) => ['hash', hash] as const),
      fc
        .date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
        .map((d) => ['at', d.toISOString()] as const),
      hex64.map((id) => ['key_id', id] as const),
      fc.integer({ min: -5, max: 5 }).map((v) => ['version', v] as const),
      fc
        .tuple(fc.nat({ max: 85 }), fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'))
        .map(([i, c]) => ['signature', checkpoint.signature.slice(0, i) + c + checkpoint.signature.slice(i + 1)] as const),
      fc.string({ minLength: 1, maxLength: 8 }).map((name) => [`extra_${name}`, 'x'] as const),
    );
    fc.assert(
      fc.property(changes, ([field, value]) => {
        const changed = { ...checkpoint, [field]: value } as Record<string, unknown>;
        fc.pre(changed[field] !== (checkpoint as unknown as Record<string, unknown>)[field]);
        const verdict = verifyCheckpoint(changed, [publicKey]);
        assert.equal(verdict.ok, false, `${field} = ${JSON.stringify(value)} still verifies`);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a signature spelled in a non-canonical base64url (the last character has unused bits)', () => {
    const checkpoint = signCheckpoint(HEAD, AT, privateKey);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(checkpoint.signature.at(-1)!);
    const respelled = checkpoint.signature.slice(0, -1) + alphabet[last ^ 1]; // a low bit that decodes to the same bytes
    assert.deepEqual(Buffer.from(respelled, 'base64url'), Buffer.from(checkpoint.signature, 'base64url'));
    assert.deepEqual(codes(verifyCheckpoint({ ...checkpoint, signature: respelled }, [publicKey])), ['bad_signature']);
  });

  it('names each malformed field, and refuses what is not an object', () => {
    const bad = parseCheckpoint({ version: 2, seq: '01', hash: 'AB', at: 'yesterday', key_id: 'x', signature: '=', extra: 1 }, 'line 3');
    assert.ok(!bad.ok);
    assert.deepEqual(bad.problems.map((p) => p.path).sort(), [
      'line 3.at',
      'line 3.extra',
      'line 3.hash',
      'line 3.key_id',
      'line 3.seq',
      'line 3.signature',
      'line 3.version',
    ]);
    const missing = parseCheckpoint({});
    assert.ok(!missing.ok && missing.problems.every((p) => p.code === 'required'));
    for (const value of [null, [], 'x', 1]) assert.equal(parseCheckpoint(value).ok, false);
  });

  it('reads keys from PEM: Ed25519 only; a public key from either half', () => {
    assert.equal(privateKeyFromPem(keys.privatePem, 'k').ok, true);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const refused = privateKeyFromPem(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'key.pem');
    assert.ok(!refused.ok && refused.problems[0]!.code === 'not_ed25519' && refused.problems[0]!.path === 'key.pem');
    assert.equal(privateKeyFromPem(keys.publicPem, 'k').ok, false, 'a public key cannot sign');
    assert.equal(privateKeyFromPem('not a key', 'k').ok, false);
    const fromPrivate = publicKeyFromPem(keys.privatePem, 'k');
    assert.ok(fromPrivate.ok && keyId(fromPrivate.value) === keys.keyId);
    assert.equal(publicKeyFromPem('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', 'k').ok, false);
  });

  it('signs only an Ed25519 private key, a well-formed head and an ISO time', () => {
    assert.throws(() => signCheckpoint(HEAD, AT, publicKey));
    assert.throws(() => signCheckpoint({ seq: -1n, hash: HEAD.hash }, AT, privateKey));
    assert.throws(() => signCheckpoint({ seq: 1n, hash: 'zz' }, AT, privateKey));
    assert.throws(() => signCheckpoint(HEAD, 'now', privateKey));
    const empty: Checkpoint = signCheckpoint({ seq: 0n, hash: '0'.repeat(64) }, AT, privateKey);
    assert.equal(verifyCheckpoint(empty, [publicKey]).ok, true, 'the empty chain (seq 0) can be checkpointed');
  });
});
