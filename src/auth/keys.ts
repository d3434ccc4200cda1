import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { SealedSecretError } from '../core/secrets.js';
import type { SigningKeyRecord, SigningKeyRows } from './ports.js';

export const SIGNING_ALG = 'ES256';

/** Least time between two key reloads triggered by tokens naming unknown keys. */
const UNKNOWN_KEY_RELOAD_MS = 1000;

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey | KeyObject | Uint8Array;
}

/** Makes a fresh ES256 key pair, identified by its JWK thumbprint. */
export async function newSigningKeyRecord(): Promise<Omit<SigningKeyRecord, 'retiredAt'>> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = await exportJWK(privateKey);
  return {
    kid,
    privateJwk: JSON.stringify({ ...privateJwk, kid, alg: SIGNING_ALG }),
    publicJwk: JSON.stringify({ ...publicJwk, kid, alg: SIGNING_ALG, use: 'sig' }),
    createdAt: new Date(),
  };
}

/**
 * Berth's own token keys, kept in the metadata DB so every replica signs and verifies with
 * the same set. The newest unretired key signs; a retired key still verifies until every
 * token it could have signed has expired (`graceMs` = token lifetime + clock tolerance).
 * Reloads from the DB every `refreshMs`, and at once when a token names an unknown kid,
 * so `berth auth rotate-key` run elsewhere takes effect without a restart.
 */
export class KeyRing {
  private keys: SigningKeyRecord[] = [];
  private loadedAt = 0;
  private pendingReload: Promise<void> | null = null;

  constructor(
    private readonly store: SigningKeyRows,
    private readonly graceMs: number,
    private readonly refreshMs = 30_000,
  ) {}

  /**
   * Creates the first key if there is none. Keys that cannot be opened (sealed at rest, and the
   * secrets key is missing or another one) stop the start: making a new key in their place would
   * invalidate every token already issued, and the sealed keys would stay unusable.
   */
  async init(): Promise<void> {
    try {
      await this.reload();
    } catch (err) {
      if (!(err instanceof SealedSecretError)) throw err;
      throw new SealedSecretError(
        `cannot load the token signing keys: ${err.message}. Berth does not make a new key in their place: that would invalidate every token already issued`,
      );
    }
    if (!this.keys.some((k) => k.retiredAt === null)) {
      await this.store.addSigningKey(await newSigningKeyRecord());
      await this.reload();
    }
  }

  async rotate(): Promise<string> {
    const key = await newSigningKeyRecord();
    await this.store.addSigningKey(key);
    await this.reload();
    return key.kid;
  }

  async signingKey(): Promise<SigningKey> {
    if (Date.now() - this.loadedAt > this.refreshMs) await this.reload();
    const active = this.keys.find((k) => k.retiredAt === null);
    if (!active) throw new Error('no active token signing key');
    return { kid: active.kid, privateKey: await importJWK(JSON.parse(active.privateJwk) as JWK, SIGNING_ALG) };
  }

  /** jose key resolver: the public key named by the token's `kid`, if still trusted. */
  readonly verificationKey: JWTVerifyGetKey = async (header) => {
    if (header.alg !== SIGNING_ALG || typeof header.kid !== 'string') throw new Error('token is not signed by a Berth key');
    let key = this.trusted(header.kid);
    if (!key) {
      await this.reloadForUnknownKey();
      key = this.trusted(header.kid);
    }
    if (!key) throw new Error('token signed by an unknown or expired key');
    return importJWK(JSON.parse(key.publicJwk) as JWK, SIGNING_ALG);
  };

  /** Public keys still trusted, as a JWKS document (served at /token/jwks.json). */
  async publicJwks(): Promise<{ keys: JWK[] }> {
    if (Date.now() - this.loadedAt > this.refreshMs) await this.reload();
    return { keys: this.keys.filter((k) => this.trusted(k.kid)).map((k) => JSON.parse(k.publicJwk) as JWK) };
  }

  private trusted(kid: string): SigningKeyRecord | undefined {
    const key = this.keys.find((k) => k.kid === kid);
    if (!key) return undefined;
    return key.retiredAt === null || key.retiredAt.getTime() + this.graceMs > Date.now() ? key : undefined;
  }

  /**
   * A token names a key this process has not loaded: another replica may have just created it
   * (replicas starting together, `berth auth rotate-key`). Reload, at most once a second however
   * many such tokens arrive (bogus kids must not flood the database): a caller arriving within
   * a second of the last load waits for the next one instead of being refused.
   */
  private reloadForUnknownKey(): Promise<void> {
    this.pendingReload ??= (async () => {
      const wait = this.loadedAt + UNKNOWN_KEY_RELOAD_MS - Date.now();
      if (wait > 0) await sleep(wait);
      await this.reload();
    })().finally(() => {
      this.pendingReload = null;
    });
    return this.pendingReload;
  }

  private async reload(): Promise<void> {
    this.keys = await this.store.listSigningKeys();
    this.loadedAt = Date.now();
  }
}

/** Key resolver for tokens from an external issuer: a JWKS (URL or file) or a PEM certificate bundle. */
export function externalKeyResolver(options: { jwks?: string; certificates?: string }): JWTVerifyGetKey {
  if (options.jwks !== undefined) {
    if (/^https?:\/\//.test(options.jwks)) return createRemoteJWKSet(new URL(options.jwks));
    return createLocalJWKSet(JSON.parse(readFileSync(options.jwks, 'utf8')) as { keys: JWK[] });
  }
  const certs = readCertificates(options.certificates!);
  if (certs.length === 0) throw new Error(`no certificates found in ${options.certificates}`);
  return async (header) => {
    // Distribution-style issuers put the signing certificate in `x5c`; it must be one we trust.
    const leaf = Array.isArray(header.x5c) && typeof header.x5c[0] === 'string' ? Buffer.from(header.x5c[0], 'base64') : null;
    const cert = leaf ? certs.find((c) => c.raw.equals(leaf)) : certs.length === 1 ? certs[0] : undefined;
    if (!cert) throw new Error('token is not signed by a trusted certificate');
    return createPublicKey(cert.publicKey.export({ format: 'pem', type: 'spki' }));
  };
}

function readCertificates(file: string): X509Certificate[] {
  const pem = readFileSync(file, 'utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}
