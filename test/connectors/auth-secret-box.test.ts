import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { loadSecretKey, open, seal, secretKeyFrom } from '../../src/connectors/auth/secret-box.js';

const key = secretKeyFrom(randomBytes(32));

test('sealed secrets open to what was sealed', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.string()), (secrets) => {
      const { sealed, keyId } = seal(key, secrets);
      assert.equal(keyId, key.id);
      assert.deepEqual({ ...open<Record<string, string>>(key, sealed, keyId) }, { ...secrets });
    }),
  );
});

test('any flipped byte is refused, and the error names key ids, never the secret', () => {
  const secret = 'refresh-token-SECRET-123';
  const { sealed, keyId } = seal(key, { refresh_token: secret });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: sealed.length - 1 }), fc.integer({ min: 1, max: 255 }), (index, flip) => {
      const tampered = Buffer.from(sealed);
      tampered[index] = tampered[index]! ^ flip;
      assert.throws(
        () => open(key, tampered, keyId),
        (error: Error) => !error.message.includes(secret) && error.message.includes(keyId),
      );
    }),
  );
  const other = secretKeyFrom(randomBytes(32));
  assert.throws(
    () => open(other, sealed, keyId),
    (error: Error) => error.message.includes(keyId) && error.message.includes(other.id) && !error.message.includes(secret),
  );
});

test('the key comes from ACCRUE_SECRET_KEY (base64 or hex) or ACCRUE_SECRET_KEY_FILE; none says how to set one', (t) => {
  const bytes = randomBytes(32);
  assert.equal(loadSecretKey({ ACCRUE_SECRET_KEY: bytes.toString('base64') }).id, secretKeyFrom(bytes).id);
  assert.equal(loadSecretKey({ ACCRUE_SECRET_KEY: bytes.toString('hex') }).id, secretKeyFrom(bytes).id);
  const dir = mkdtempSync(join(tmpdir(), 'accrue-key-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'key');
  writeFileSync(file, `${bytes.toString('base64')}\n`);
  assert.equal(loadSecretKey({ ACCRUE_SECRET_KEY_FILE: file }).id, secretKeyFrom(bytes).id);
  assert.throws(() => loadSecretKey({}), /ACCRUE_SECRET_KEY.*openssl rand -base64 32/);
  assert.throws(() => loadSecretKey({ ACCRUE_SECRET_KEY: randomBytes(16).toString('base64') }), /32 bytes/);
});
