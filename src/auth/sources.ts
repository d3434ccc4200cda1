import { createHmac, randomBytes } from 'node:crypto';
import { peers } from '../core/peers.js';
import type { IdentityBindings } from './bindings.js';
import type { ChangeActor, IdentityBindingRows, UserRecord, UserRows } from './ports.js';
import { safeEqual, validateUsername } from './secrets.js';

/**
 * The seam for external identities (issue 17): where the Authenticator (identity.ts) asks
 * identity sources Berth does not own to check Basic credentials, and how such a user gets
 * a users row and project roles.
 *
 * A **PasswordSource** (LDAP/AD in src/auth/ldap; OIDC CLI secrets and ID tokens in
 * src/auth/oidc) answers `verify(username, password)` with the user it vouches for, null
 * (wrong password, unknown or disabled user), or 'unavailable' (it could not tell: directory
 * down, timeout). The composition root builds the configured sources (src/compose.ts
 * `passwordSources`) and hands them to the auth layer; the order given is the order asked.
 *
 * What the Authenticator does with them (ExternalIdentities below):
 * - A user logging in for the first time gets a users row whose password hash is the marker
 *   `!source:<name>` (no bcrypt hash matches it): memberships, the admin flag and the audit log
 *   work as for any user, and the row remembers where the user comes from. Later logins of that
 *   name go to that source only.
 * - A local user (a bcrypt hash) is never taken over by a source of the same name, unless
 *   that source says `takeover` (its config): then a login the local password refuses but the
 *   source accepts turns the row into the source's (audited `user.takeover`).
 * - At each verified login the source's groups (and the name) are matched against the identity
 *   bindings (bindings.ts `rolesFor`) and the user's grants replaced (identity_grants): a user
 *   removed from a group loses the role at their next login, so within one token lifetime
 *   (external users get no refresh tokens: their client logs in again with the password). The
 *   admin flag follows the source when it reports one (`admin` true/false; undefined: leave it).
 * - 'unavailable' never becomes "allow": the login fails with 503 UNAVAILABLE (not counted by
 *   the failed-login throttle), audited `login.failed` with the source and reason. Robots and
 *   local users never ask a source, so they keep working while a directory is down.
 * - Verified logins are cached per source for `cacheTtlMs` (a `podman login` burst, Basic auth
 *   on every /v2 request) under an HMAC of name and password with a per-process key: never the
 *   password. Only positive answers are cached.
 * - Audit entries of these logins and changes carry `source` in their detail.
 */
export interface ExternalUser {
  /** The Berth user name (the name given at login, as the source confirmed it). */
  username: string;
  email?: string;
  /** Group names the bindings of kind `group` are matched against. */
  groups: string[];
  /** System administrator, when the source decides it (an admin group); undefined leaves the flag as it is. */
  admin?: boolean;
}

export type Verification = ExternalUser | null | 'unavailable';

export interface PasswordSource {
  /** The source name bindings and users rows carry: `ldap`, `oidc:<provider>`. */
  readonly name: string;
  /** May a login through this source take over a local user of the same name (see above)? Default false. */
  readonly takeover?: boolean;
  /** How long a verified login is reused without asking again (0: never cached). */
  readonly cacheTtlMs?: number;
  verify(username: string, password: string): Promise<Verification>;
  close?(): Promise<void> | void;
}

const MARKER_PREFIX = '!source:';

/** The users row password hash of a user of `source`. */
export function externalMarker(source: string): string {
  return `${MARKER_PREFIX}${source}`;
}

/** The source a users row belongs to, or null for a local (or htpasswd) user. */
export function sourceOfAccount(passwordHash: string): string | null {
  return passwordHash.startsWith(MARKER_PREFIX) ? passwordHash.slice(MARKER_PREFIX.length) : null;
}

/** Positive answers of one source, under an HMAC of name and password (per-process key). */
export class VerificationCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, { mac: Buffer; user: ExternalUser; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(username: string, password: string): ExternalUser | null {
    const entry = this.entries.get(username);
    if (!entry || entry.until <= Date.now() || !safeEqual(entry.mac, this.mac(username, password))) return null;
    return entry.user;
  }

  set(username: string, password: string, user: ExternalUser): void {
    if (this.ttlMs <= 0) return;
    if (this.entries.size >= this.maxEntries && !this.entries.has(username)) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(username, { mac: this.mac(username, password), user, until: Date.now() + this.ttlMs });
  }

  forget(username: string): void {
    this.entries.delete(username);
  }

  private mac(username: string, password: string): Buffer {
    return createHmac('sha256', this.key).update(username).update('\0').update(password).digest();
  }
}

/** A login through a source: who, and whether the source was asked (not the cache). */
export interface ExternalLogin {
  name: string;
  admin: boolean;
  source: string;
  checked: boolean;
}

/** The outcome of asking the sources: a login, null (refused), or the sources that could not answer. */
export type ExternalOutcome = ExternalLogin | null | { unavailable: string[] };

/**
 * The Authenticator's side of the seam: asks the sources, creates and updates the users rows
 * of external users and replaces their grants from the bindings.
 */
/** What a worker tells its siblings when a cached external login must go (src/core/peers.ts). */
const FORGET_TOPIC = 'external-logins.forget';

export class ExternalIdentities {
  private readonly caches = new Map<string, VerificationCache>();

  constructor(
    private readonly store: Pick<UserRows, 'getUser' | 'createUser' | 'setAdmin' | 'setPassword'> & Pick<IdentityBindingRows, 'setGrants'>,
    private readonly bindings: Pick<IdentityBindings, 'rolesFor'>,
    private readonly sources: readonly PasswordSource[],
  ) {
    const names = new Set<string>();
    for (const source of sources) {
      if (names.has(source.name)) throw new Error(`identity source ${source.name} is registered twice`);
      names.add(source.name);
      this.caches.set(source.name, new VerificationCache(source.cacheTtlMs ?? 0));
    }
    // A credential revoked through another worker of this server is dropped here too.
    peers().subscribe(FORGET_TOPIC, (message) => {
      const { source, username } = (message ?? {}) as { source?: unknown; username?: unknown };
      if (typeof source === 'string' && typeof username === 'string') this.caches.get(source)?.forget(username);
    });
  }

  get enabled(): boolean {
    return this.sources.length > 0;
  }

  /** Whether some source may take over the local user (only asked when the local password failed). */
  get takesOver(): boolean {
    return this.sources.some((s) => s.takeover);
  }

  /** Whether `source` is configured (a users row of a source no longer configured matches nothing). */
  has(source: string): boolean {
    return this.sources.some((s) => s.name === source);
  }

  /**
   * Checks `name` and `password` against the sources that may answer for `user` (the users row
   * of that name, or null): its own source for an external user; for a local user, the sources
   * that may take it over; for a new name, every source in order until one accepts.
   */
  async login(name: string, password: string, user: UserRecord | null, ip: string): Promise<ExternalOutcome> {
    const own = user ? sourceOfAccount(user.passwordHash) : null;
    const candidates =
      own !== null ? this.sources.filter((s) => s.name === own) : user ? this.sources.filter((s) => s.takeover) : this.sources;
    if (candidates.length === 0 || !validName(name)) return null;
    const unavailable: string[] = [];
    for (const source of candidates) {
      const cache = this.caches.get(source.name)!;
      const cached = user && own === source.name ? cache.get(name, password) : null;
      if (cached) return { name, admin: cached.admin ?? user!.admin, source: source.name, checked: false };
      let verified: Verification;
      try {
        verified = await source.verify(name, password);
      } catch {
        verified = 'unavailable';
      }
      if (verified === 'unavailable') {
        unavailable.push(source.name);
        continue;
      }
      if (verified === null || verified.username !== name) continue;
      const login = await this.register(source, verified, user, ip);
      if (!login) continue;
      cache.set(name, password, verified);
      return login;
    }
    return unavailable.length > 0 ? { unavailable } : null;
  }

  /** The user's row made or brought up to date for a verified login, and their grants replaced; null if the name is not the source's to take. */
  private async register(
    source: PasswordSource,
    external: ExternalUser,
    user: UserRecord | null,
    ip: string,
  ): Promise<ExternalLogin | null> {
    const name = external.username;
    const actor = (action?: string, detail: Record<string, unknown> = {}): ChangeActor => ({
      name: source.name,
      ip,
      audit: { ...(action ? { action } : {}), detail: { source: source.name, ...detail } },
    });
    let row = user;
    if (!row) {
      await this.store.createUser(
        { username: name, passwordHash: externalMarker(source.name), admin: external.admin ?? false },
        actor(undefined, { admin: external.admin ?? false }),
      );
      row = await this.store.getUser(name);
    } else if (sourceOfAccount(row.passwordHash) !== source.name) {
      if (!source.takeover) return null;
      await this.store.setPassword(name, externalMarker(source.name), actor('user.takeover'));
      row = await this.store.getUser(name);
    }
    // Someone created a user of that name meanwhile (another replica, an admin): not ours to take.
    if (!row || sourceOfAccount(row.passwordHash) !== source.name) return null;
    let admin = row.admin;
    if (external.admin !== undefined && external.admin !== row.admin) {
      await this.store.setAdmin(name, external.admin, actor());
      admin = external.admin;
    }
    await this.store.setGrants(name, source.name, await this.bindings.rolesFor(source.name, external.groups, name));
    return { name, admin, source: source.name, checked: true };
  }

  /**
   * A user `sourceName` vouched for outside a password check (OIDC's browser login, whose code
   * flow verified them): their row created or brought up to date and their grants replaced, as
   * for a verified login. Null when the name is not the source's to take (a local user, another
   * source's user) or the source is not configured.
   */
  async admit(sourceName: string, external: ExternalUser, ip: string): Promise<ExternalLogin | null> {
    const source = this.sources.find((s) => s.name === sourceName);
    if (!source || !validName(external.username)) return null;
    return this.register(source, external, await this.store.getUser(external.username), ip);
  }

  /** Drops `username`'s cached logins through `sourceName` on this process (a revoked credential must not outlive its revocation here). */
  forget(sourceName: string, username: string): void {
    this.caches.get(sourceName)?.forget(username);
    peers().publish(FORGET_TOPIC, { source: sourceName, username });
  }

  async close(): Promise<void> {
    await Promise.all(this.sources.map(async (s) => s.close?.()));
  }
}

function validName(name: string): boolean {
  try {
    validateUsername(name);
    return true;
  } catch {
    return false;
  }
}
