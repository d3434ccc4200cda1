/**
 * Secrets Berth keeps at rest (token signing keys; later replication credentials) are sealed
 * before they reach a database row, when an operator configured a secrets key (`secrets.key`,
 * `BERTH_SECRETS_KEY` or `secrets.keyfile`). The port is here so that adapters and features
 * can seal and open values; the AES-256-GCM implementation is src/secrets/, chosen by the
 * composition root. docs/security.md › Secrets at rest.
 *
 * A sealed value is a versioned envelope, `berth:v1:<key id>:<base64url(nonce | ciphertext | tag)>`;
 * anything else is a value stored before a key was configured (plain text), which `open`
 * passes through so a key can be introduced on an existing installation.
 */
export interface SecretSealer {
  /** True when a key is configured: `seal` encrypts. Without one, `seal` returns the plain text. */
  readonly enabled: boolean;
  /** Short id of the configured key (not secret: a hash prefix), or null without a key. */
  readonly keyId: string | null;
  /**
   * Seals `plaintext`, bound to `context` (e.g. `signing_keys:<kid>`): the sealed value opens
   * only with the same context, so a sealed value copied onto another row does not open.
   */
  seal(plaintext: string, context: string): string;
  /** The plain text of a stored value; a sealed one needs the key and context it was sealed with. */
  open(stored: string, context: string): string;
  /**
   * True when `stored` should be sealed again: a key is configured and the value is plain text
   * (stored before the key was configured) or sealed with another key this sealer can open.
   */
  needsSealing(stored: string): boolean;
}

export const SEALED_PREFIX = 'berth:v1:';

/** The key id a sealed value names, or null for a value that is not sealed. */
export function sealedKeyId(stored: string): string | null {
  if (!stored.startsWith(SEALED_PREFIX)) return null;
  const end = stored.indexOf(':', SEALED_PREFIX.length);
  return end < 0 ? null : stored.slice(SEALED_PREFIX.length, end);
}

/**
 * A sealed value this process cannot open: no key configured, another key, or a damaged value.
 * A start-up error by design: making a new signing key instead would invalidate every token
 * already issued, and the sealed key would still be there, unusable.
 */
export class SealedSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealedSecretError';
  }
}

/** Without a secrets key: values are stored as given; a sealed value found in a row is an error. */
export const PLAINTEXT_SEALER: SecretSealer = {
  enabled: false,
  keyId: null,
  seal: (plaintext) => plaintext,
  open(stored, context) {
    const keyId = sealedKeyId(stored);
    if (keyId === null) return stored;
    throw new SealedSecretError(
      `${context} is sealed with secrets key ${keyId}, but no secrets key is configured: set secrets.key, BERTH_SECRETS_KEY or secrets.keyfile to that key (docs/security.md#secrets-at-rest)`,
    );
  },
  needsSealing: () => false,
};

const KEY_BYTES = 32;

/**
 * Decodes a secrets key: 32 bytes, as 64 hex digits or base64 (standard or URL-safe, padding
 * optional). The error never repeats the value.
 */
export function decodeSecretsKey(text: string): Buffer {
  const value = text.trim();
  let key: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(value)) key = Buffer.from(value, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) key = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== KEY_BYTES) {
    throw new Error(
      `a secrets key must be ${KEY_BYTES} random bytes, base64 or hex encoded (make one with: openssl rand -base64 32)${key ? `; this one decodes to ${key.length} bytes` : ''}`,
    );
  }
  return key;
}
