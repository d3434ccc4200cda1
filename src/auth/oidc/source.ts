import { safeEqual, sha256Hex } from '../secrets.js';
import type { ExternalUser, PasswordSource, Verification } from '../sources.js';
import type { OidcStore } from './ports.js';
import { OidcRefusal, ProviderUnavailableError, type OidcProvider, type VerifiedClaims } from './provider.js';

/** Every registry CLI secret starts so: it is told apart from a JWT and from a password at a glance (and by secret scanners). */
export const CLI_SECRET_PREFIX = 'berth_cli_';

/** How long a verified login through an OIDC source is reused without checking again. */
export const CLI_SECRET_CACHE_MS = 10_000;

/** Three base64url segments: a compact JWS (an ID or access token given as the password). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function looksLikeJwt(password: string): boolean {
  return COMPACT_JWS.test(password);
}

/**
 * Binds `user` to its provider subject in `store`: a username, once bound to a (provider,
 * subject), answers to that subject only, so a provider user who renames themselves to
 * someone else's name (preferred_username is often editable) gets nothing. False: the name
 * belongs to another subject.
 */
export async function bindSubject(store: OidcStore, provider: OidcProvider, user: VerifiedClaims['user']): Promise<boolean> {
  const link = {
    username: user.username,
    provider: provider.name,
    subject: user.subject,
    email: user.email ?? null,
    groups: user.groups,
    lastLoginAt: new Date(),
  };
  const existing = (await store.getLink(user.username)) ?? ((await store.createLink(link)) ? link : await store.getLink(user.username));
  if (!existing || existing.provider !== provider.name || existing.subject !== user.subject) return false;
  if (existing !== link) await store.updateLink(link);
  return true;
}

/**
 * The PasswordSource (src/auth/sources.ts) of one OIDC provider, named `oidc:<provider>`. The
 * Authenticator asks it for Basic credentials of its users (and of new names). It accepts:
 * - a **registry CLI secret** (`berth_cli_…`) the user created after a browser login: checked
 *   against its sha256 and expiry; the groups are those of the user's last login or direct
 *   token (the provider is not asked: it may be down, and the CLI secret is Harbor's answer to
 *   clients that cannot do a browser flow), re-checked against the allowed groups and matched
 *   against the bindings at each login (ExternalIdentities replaces the grants);
 * - a **direct token** (CI): an ID or access token of this issuer, verified (signature by the
 *   provider's JWKS, iss, aud among `audiences`, exp); its username claim must equal the Basic
 *   username, and its groups claim is used as given.
 * A verified login is reused for CLI_SECRET_CACHE_MS (a `podman login` burst, Basic auth on
 * each /v2 request: the grants refresh and the audit row of a checked login are then skipped);
 * revoking or replacing a CLI secret drops the cached logins of that user on this process at
 * once (OidcService), other replicas stop accepting it within that time.
 */
export class OidcPasswordSource implements PasswordSource {
  readonly name: string;
  readonly cacheTtlMs = CLI_SECRET_CACHE_MS;

  constructor(
    private readonly provider: OidcProvider,
    private readonly store: OidcStore,
  ) {
    this.name = provider.source;
  }

  async verify(username: string, password: string): Promise<Verification> {
    if (looksLikeJwt(password)) return this.directToken(username, password);
    if (password.startsWith(CLI_SECRET_PREFIX)) return this.cliSecret(username, password);
    return null;
  }

  private async cliSecret(username: string, secret: string): Promise<ExternalUser | null> {
    const [record, link] = await Promise.all([this.store.getCliSecret(username), this.store.getLink(username)]);
    if (!record || !link || link.provider !== this.provider.name) return null;
    if (record.expiresAt.getTime() <= Date.now() || !safeEqual(Buffer.from(sha256Hex(secret)), Buffer.from(record.hash))) return null;
    try {
      this.provider.checkAllowed(link.groups);
    } catch {
      return null;
    }
    const admin = this.provider.adminOf(link.groups);
    return { username, groups: link.groups, ...(link.email ? { email: link.email } : {}), ...(admin !== undefined ? { admin } : {}) };
  }

  private async directToken(username: string, token: string): Promise<Verification> {
    const audiences = this.provider.config.audiences;
    if (audiences.length === 0 || !this.provider.issued(token)) return null;
    let user: VerifiedClaims['user'];
    try {
      user = this.provider.userOf(await this.provider.verify(token, audiences));
    } catch (err) {
      if (err instanceof ProviderUnavailableError) return 'unavailable';
      if (err instanceof OidcRefusal) return null;
      throw err;
    }
    if (user.username !== username || !(await bindSubject(this.store, this.provider, user))) return null;
    return user;
  }
}
