// Signed checkpoints of the audit chain's head: the anchor outside the database. The chain alone cannot show that
// records were removed from its end (rewind audit_head with them and it verifies); a checkpoint kept elsewhere, signed
// with a key the database never holds, names a (seq, hash) the chain must still contain. Pure: no I/O.
//
// The document (version 1), one JSON object:
//   { version: 1, seq: <head seq as a decimal string>, hash: <head hash, 64 lowercase hex>, at: <ISO timestamp>,
//     key_id: <lowercase hex SHA-256 of the public key's DER (SPKI)>, signature: <base64url, no padding> }
//   signature = Ed25519 over the UTF-8 bytes of the RFC 8785 canonical JSON of every field but `signature`.
// seq 0 with GENESIS_HASH is the empty chain. Seqs start at 1 and rise by 1, so seq is also the number of records.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../domain/canonical.js';
import { fail, invariant, ok, problem, type Problem, type Result } from '../domain/result.js';

export const CHECKPOINT_VERSION = 1;

export interface CheckpointBody {
  version: typeof CHECKPOINT_VERSION;
  seq: string;
  hash: string;
  at: string;
  key_id: string;
}

export interface Checkpoint extends CheckpointBody {
  signature: string;
}

const FIELDS = ['version', 'seq', 'hash', 'at', 'key_id', 'signature'] as const;
const SEQ = /^(0|[1-9]\d{0,18})$/;
const HEX64 = /^[0-9a-f]{64}$/;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** An Ed25519 signature is 64 bytes: 86 base64url characters without padding. */
const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;

/** The key id a checkpoint names: lowercase hex SHA-256 of the public key's DER (SubjectPublicKeyInfo). */
export function keyId(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** A new Ed25519 key pair as PEM (private: PKCS#8, public: SPKI) and its key id. */
export function generateSigningKeys(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyId(publicKey),
  };
}

/** An Ed25519 private key from PEM; a problem naming `origin` when the text is no such key. */
export function privateKeyFromPem(pem: string, origin: string): Result<KeyObject> {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    return fail(problem(origin, 'not_a_private_key', `is not a PEM private key: ${(error as Error).message}`));
  }
  if (key.asymmetricKeyType !== 'ed25519')
    return fail(
      problem(origin, 'not_ed25519', `is a ${key.asymmetricKeyType ?? 'symmetric'} key; audit checkpoints are signed with Ed25519`),
    );
  return ok(key);
}

/** An Ed25519 public key from PEM, or the public half of a private key's PEM. */
export function publicKeyFromPem(pem: string, origin: string): Result<KeyObject> {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    return fail(problem(origin, 'not_a_public_key', `is not a PEM public or private key: ${(error as Error).message}`));
  }
  if (key.asymmetricKeyType !== 'ed25519')
    return fail(
      problem(origin, 'not_ed25519', `is a ${key.asymmetricKeyType ?? 'symmetric'} key; audit checkpoints are signed with Ed25519`),
    );
  return ok(key);
}

/** The bytes the signature covers: RFC 8785 canonical JSON of the body (every field but `signature`). */
export function checkpointPayload(body: CheckpointBody): string {
  return canonicalJson({ version: body.version, seq: body.seq, hash: body.hash, at: body.at, key_id: body.key_id });
}

/** Signs the head (seq, hash) at `at` with an Ed25519 private key. */
export function signCheckpoint(head: { seq: bigint; hash: string }, at: string, privateKey: KeyObject): Checkpoint {
  invariant(
    privateKey.type === 'private' && privateKey.asymmetricKeyType === 'ed25519',
    'checkpoints are signed with an Ed25519 private key',
  );
  invariant(head.seq >= 0n && HEX64.test(head.hash), `a checkpoint names a head (seq ${head.seq}, hash ${head.hash})`);
  invariant(ISO_TIMESTAMP.test(at) && !Number.isNaN(Date.parse(at)), `a checkpoint time is an ISO timestamp, got ${JSON.stringify(at)}`);
  const body: CheckpointBody = { version: CHECKPOINT_VERSION, seq: head.seq.toString(), hash: head.hash, at, key_id: keyId(privateKey) };
  const signature = sign(null, Buffer.from(checkpointPayload(body), 'utf8'), privateKey).toString('base64url');
  return { ...body, signature };
}

/** The checkpoint's shape, strictly: exactly the version-1 fields, each well formed. Says nothing of the signature. */
export function parseCheckpoint(value: unknown, path = ''): Result<Checkpoint> {
  const at = (field: string) => (path === '' ? field : `${path}.${field}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return fail(problem(path, 'not_a_checkpoint', 'must be a JSON object'));
  const record = value as Record<string, unknown>;
  const problems: Problem[] = [];
  for (const name of Object.keys(record))
    if (!(FIELDS as readonly string[]).includes(name)) problems.push(problem(at(name), 'unknown_field', `is not a checkpoint field`));
  const check = (name: string, valid: (v: unknown) => boolean, expected: string) => {
    if (!valid(record[name])) problems.push(problem(at(name), record[name] === undefined ? 'required' : 'invalid', `must be ${expected}`));
  };
  const text = (pattern: RegExp) => (v: unknown) => typeof v === 'string' && pattern.test(v);
  check('version', (v) => v === CHECKPOINT_VERSION, `${CHECKPOINT_VERSION}`);
  check('seq', text(SEQ), 'a sequence number as a decimal string');
  check('hash', text(HEX64), '64 lowercase hex digits');
  check('at', (v) => text(ISO_TIMESTAMP)(v) && !Number.isNaN(Date.parse(v as string)), 'an ISO timestamp');
  check('key_id', text(HEX64), '64 lowercase hex digits (SHA-256 of the public key)');
  check('signature', text(SIGNATURE), 'an Ed25519 signature in base64url (86 characters)');
  return problems.length > 0 ? fail(...problems) : ok(record as unknown as Checkpoint);
}

/**
 * The checkpoint, when it is well formed, names one of `publicKeys` by its key id and carries that key's signature over
 * its other fields; otherwise problems naming what failed (`unknown_key`: signed by another key; `bad_signature`).
 */
export function verifyCheckpoint(value: unknown, publicKeys: readonly KeyObject[], path = ''): Result<Checkpoint> {
  const parsed = parseCheckpoint(value, path);
  if (!parsed.ok) return parsed;
  const checkpoint = parsed.value;
  const key = publicKeys.find((k) => keyId(k) === checkpoint.key_id);
  const name = path === '' ? 'signature' : `${path}.signature`;
  if (!key)
    return fail(
      problem(
        path === '' ? 'key_id' : `${path}.key_id`,
        'unknown_key',
        `signed by key ${checkpoint.key_id}, not by ${publicKeys.map(keyId).join(' or ') || 'any key given'}`,
      ),
    );
  const signature = Buffer.from(checkpoint.signature, 'base64url');
  // Only the canonical encoding: the last character's unused bits would otherwise let one signature be spelled 16 ways.
  const canonical = signature.toString('base64url') === checkpoint.signature;
  const good = canonical && verify(null, Buffer.from(checkpointPayload(checkpoint), 'utf8'), key, signature);
  if (!good) return fail(problem(name, 'bad_signature', `does not verify: the checkpoint of seq ${checkpoint.seq} was changed or forged`));
  return ok(checkpoint);
}

/** One checkpoint as its line in a checkpoint log (JSON Lines: one document a line, fields in canonical order). */
export function checkpointLine(checkpoint: Checkpoint): string {
  return `${canonicalJson(checkpoint)}\n`;
}
