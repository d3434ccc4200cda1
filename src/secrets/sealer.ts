import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { PLAINTEXT_SEALER, SEALED_PREFIX, SealedSecretError, sealedKeyId, type SecretSealer } from '../core/secrets.js';

const ALGORITHM = 'aes-256-gcm';
/** 96-bit random nonce per value, GCM's recommended size. */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/**
 * The key id written into each envelope: the first 8 hex digits of a SHA-256 of the key under
 * a label of its own. It tells "sealed with another key" apart from "damaged" in error messages
 * and lets a later key rotation pick the key; 32 bits of a hash reveal nothing usable about a
 * 256-bit random key.
 */
export function secretsKeyId(key: Buffer): string {
  return createHash('sha256').update('berth secrets key id\0').update(key).digest('hex').slice(0, 8);
}

/**
 * AES-256-GCM sealing (node:crypto): a random 96-bit nonce per value, the 128-bit tag
 * authenticates the ciphertext and the context (additional authenticated data), so a value
 * altered, sealed with another key, or moved to another row does not open.
 */
export class AesGcmSealer implements SecretSealer {
  readonly enabled = true;
  readonly keyId: string;
  /** Every key that opens values, by key id: the current one and the previous ones (key rotation). */
  private readonly keys = new Map<string, Buffer>();

  constructor(
    private readonly key: Buffer,
    previous: Buffer[] = [],
  ) {
    for (const k of [key, ...previous]) {
      if (k.length !== 32) throw new Error('AES-256-GCM needs a 32-byte key');
      if (!this.keys.has(secretsKeyId(k))) this.keys.set(secretsKeyId(k), k);
    }
    this.keyId = secretsKeyId(key);
  }

  seal(plaintext: string, context: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${SEALED_PREFIX}${this.keyId}:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url')}`;
  }

  open(stored: string, context: string): string {
    const keyId = sealedKeyId(stored);
    if (keyId === null) {
      // Stored before a key was configured; sealed at the next start (see sealing at start).
      if (stored.startsWith('berth:'))
        throw new SealedSecretError(`${context} is sealed in a format this version of Berth does not know (${stored.slice(0, 12)}…)`);
      return stored;
    }
    const key = this.keys.get(keyId);
    if (!key) {
      throw new SealedSecretError(
        `${context} is sealed with secrets key ${keyId}, but the configured secrets key is ${this.keyId}: configure the key it was sealed with (as secrets.key, or in secrets.previouskeys while changing keys; docs/security.md#secrets-at-rest)`,
      );
    }
    const raw = Buffer.from(stored.slice(SEALED_PREFIX.length + keyId.length + 1), 'base64url');
    if (raw.length < NONCE_BYTES + TAG_BYTES) throw new SealedSecretError(`${context} is damaged (sealed value too short)`);
    const decipher = createDecipheriv(ALGORITHM, key, raw.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SealedSecretError(`${context} does not open with secrets key ${keyId}: the value is damaged or belongs to another row`);
    }
  }

  needsSealing(stored: string): boolean {
    return sealedKeyId(stored) !== this.keyId;
  }
}

/** The sealer for a decoded key (and the keys used before it), or the plain-text one without a key. */
export function sealerFor(key: Buffer | null, previous: Buffer[] = []): SecretSealer {
  return key ? new AesGcmSealer(key, previous) : PLAINTEXT_SEALER;
}
