import { RegistryError } from '../core/errors.js';
import type { Authenticator, Identity } from './identity.js';
import type { RefreshTokenRows } from './ports.js';
import { generateSecret, sha256Hex } from './secrets.js';

const REFRESH_PREFIX = 'berth_rt_';

/**
 * Refresh tokens are opaque random secrets stored as a sha256 (they have 256 bits of entropy,
 * so a slow hash adds nothing): unlike a signed JWT they can be revoked — a password change or
 * user deletion drops them — and they carry no claims a client could misread.
 */
export class RefreshTokens {
  constructor(
    private readonly store: RefreshTokenRows,
    private readonly authenticator: Authenticator,
    private readonly lifetimeMs: number,
  ) {}

  /** A new refresh token for `username`, bound to `clientId`. */
  async issue(username: string, clientId: string): Promise<string> {
    const secret = `${REFRESH_PREFIX}${generateSecret()}`;
    const now = new Date();
    await this.store.saveRefreshToken({
      hash: sha256Hex(secret),
      username,
      clientId,
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.lifetimeMs),
    });
    return secret;
  }

  /** The current identity behind a refresh token; UNAUTHORIZED when unknown, expired, of another client, or its user is gone. */
  async redeem(secret: string, clientId: string): Promise<Identity> {
    const record = secret.startsWith(REFRESH_PREFIX) ? await this.store.getRefreshToken(sha256Hex(secret)) : null;
    const identity =
      record && record.expiresAt.getTime() > Date.now() && record.clientId === clientId
        ? await this.authenticator.current(record.username)
        : null;
    if (!identity) throw new RegistryError('UNAUTHORIZED', 'invalid or expired refresh token');
    return identity;
  }
}
