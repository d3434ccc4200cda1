import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { RegistryError } from '../core/errors.js';

/** bcrypt work factor: ~70 ms per check in bcryptjs; verified logins are cached (see CredentialCache). */
const BCRYPT_ROUNDS = 10;
const MIN_PASSWORD_LENGTH = 8;
/** bcrypt reads at most 72 bytes: a longer password would be cut silently (its tail never checked). */
export const MAX_PASSWORD_BYTES = 72;

export function hashSecret(secret: string): Promise<string> {
  return bcrypt.hash(secret, BCRYPT_ROUNDS);
}

/** bcrypt's compare is constant-time in the secret; a missing hash still costs one compare. */
export async function verifySecret(secret: string, hash: string | null): Promise<boolean> {
  if (hash === null) {
    await bcrypt.compare(secret, dummyHash());
    return false;
  }
  return bcrypt.compare(secret, hash);
}

/**
 * A hash of a random value, compared against when the account does not exist (no
 * user-enumeration by timing). Made on first use: hashing at import cost every start
 * (auth off included) 90–360 ms.
 */
let dummy: string | undefined;
function dummyHash(): string {
  dummy ??= bcrypt.hashSync(randomBytes(16).toString('hex'), BCRYPT_ROUNDS);
  return dummy;
}

/** A random secret for generated passwords, robot secrets and refresh tokens (256 bits, URL-safe). */
export function generateSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Refresh tokens are high-entropy, so a fast hash suffices to store them (unlike passwords). */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * A new password: at least 8 characters and at most 72 bytes in UTF-8 (bcrypt's limit; refused
 * rather than cut, so every character counts). Only setting a password checks this: hashes
 * stored before the limit keep verifying as they always did.
 */
export function validatePassword(password: unknown): string {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH) {
    throw new RegistryError('INVALID_ARGUMENT', `password must be at least ${MIN_PASSWORD_LENGTH} characters long`);
  }
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new RegistryError(
      'INVALID_ARGUMENT',
      `password must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt ignores anything longer)`,
    );
  }
  return password;
}

const USERNAME = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;

export function validateUsername(username: unknown): string {
  if (typeof username !== 'string' || !USERNAME.test(username)) {
    throw new RegistryError(
      'INVALID_ARGUMENT',
      'username must be 1-64 characters of [a-z0-9._-], starting and ending with a letter or digit',
    );
  }
  return username;
}

/**
 * Remembers recently verified (name, secret) pairs so Basic auth on every /v2 request does
 * not pay a bcrypt compare each time. Only an HMAC of the secret (with a per-process key)
 * is kept, bound to the stored hash it was checked against: changing the password (a new
 * hash) invalidates the entry at once.
 */
export class CredentialCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, { storedHash: string; mac: Buffer; until: number }>();

  constructor(
    private readonly ttlMs = 60_000,
    private readonly maxEntries = 10_000,
  ) {}

  matches(name: string, secret: string, storedHash: string): boolean {
    const entry = this.entries.get(name);
    if (!entry || entry.until < Date.now() || entry.storedHash !== storedHash) return false;
    return safeEqual(entry.mac, this.mac(secret));
  }

  remember(name: string, secret: string, storedHash: string): void {
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(name, { storedHash, mac: this.mac(secret), until: Date.now() + this.ttlMs });
  }

  private mac(secret: string): Buffer {
    return createHmac('sha256', this.key).update(secret).digest();
  }
}
