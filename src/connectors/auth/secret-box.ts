// Secrets at rest (issue #15): ERP tokens, consumer/token secrets and private keys are sealed with AES-256-GCM under a
// key the operator provides (ACCRUE_SECRET_KEY, 32 bytes as base64 or hex, or ACCRUE_SECRET_KEY_FILE). Errors name
// key ids (first 16 hex of sha256 of the key), never a secret.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface SecretKey {
  readonly id: string;
  readonly bytes: Buffer;
}

export const keyIdOf = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex').slice(0, 16);

function decodeKey(text: string, origin: string): Buffer {
  const t = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (bytes.length !== 32)
    throw new Error(
      `${origin} must hold 32 bytes as base64 or 64 hex digits (got ${bytes.length} bytes); create one with: openssl rand -base64 32`,
    );
  return bytes;
}

/** The operator's key from ACCRUE_SECRET_KEY or ACCRUE_SECRET_KEY_FILE; throws saying how to set one when neither is set. */
export function loadSecretKey(env: Record<string, string | undefined> = process.env): SecretKey {
  let bytes: Buffer;
  if (env.ACCRUE_SECRET_KEY) bytes = decodeKey(env.ACCRUE_SECRET_KEY, 'ACCRUE_SECRET_KEY');
  else if (env.ACCRUE_SECRET_KEY_FILE) {
    let text: string;
    try {
      text = readFileSync(env.ACCRUE_SECRET_KEY_FILE, 'utf8');
    } catch (error) {
      throw new Error(
        `ACCRUE_SECRET_KEY_FILE ${env.ACCRUE_SECRET_KEY_FILE} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
        { cause: error },
      );
    }
    bytes = decodeKey(text, `ACCRUE_SECRET_KEY_FILE ${env.ACCRUE_SECRET_KEY_FILE}`);
  } else {
    throw new Error(
      'no secret key: set ACCRUE_SECRET_KEY to 32 random bytes (base64 or hex, e.g. `openssl rand -base64 32`) or ACCRUE_SECRET_KEY_FILE to a file holding them',
    );
  }
  return { id: keyIdOf(bytes), bytes };
}

export const secretKeyFrom = (bytes: Buffer): SecretKey => {
  if (bytes.length !== 32) throw new Error('a secret key is 32 bytes');
  return { id: keyIdOf(bytes), bytes };
};

const VERSION = 1;

/** Sealed layout: version (1 byte) | iv (12) | tag (16) | ciphertext; the key id is authenticated as associated data. */
export function seal(key: SecretKey, secrets: Record<string, unknown>): { sealed: Buffer; keyId: string } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.bytes, iv);
  cipher.setAAD(Buffer.from(`accrue-secrets:v${VERSION}:${key.id}`));
  const body = Buffer.concat([cipher.update(JSON.stringify(secrets), 'utf8'), cipher.final()]);
  return { sealed: Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]), keyId: key.id };
}

export function open<T = Record<string, unknown>>(key: SecretKey, sealed: Buffer, keyId: string): T {
  if (keyId !== key.id)
    throw new Error(
      `secrets were sealed with key ${keyId} but the configured key is ${key.id}: set ACCRUE_SECRET_KEY to the key they were sealed with`,
    );
  if (sealed.length < 29 || sealed[0] !== VERSION) throw new Error(`sealed secrets (key ${keyId}) are malformed or of an unknown version`);
  const decipher = createDecipheriv('aes-256-gcm', key.bytes, sealed.subarray(1, 13));
  decipher.setAAD(Buffer.from(`accrue-secrets:v${VERSION}:${key.id}`));
  decipher.setAuthTag(sealed.subarray(13, 29));
  let text: string;
  try {
    text = Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()]).toString('utf8');
  } catch {
    throw new Error(`sealed secrets (key ${keyId}) fail authentication: tampered, or sealed with another key than ${key.id}`);
  }
  return JSON.parse(text) as T;
}
