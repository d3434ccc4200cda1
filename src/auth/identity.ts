import { RegistryError } from '../core/errors.js';
import type { AuditOutcome } from '../core/events.js';
import { HTPASSWD_ACTOR, HTPASSWD_MARKER, isHtpasswdAccount, type HtpasswdUsers } from './htpasswd.js';
import type { AuditEntry, AuditRows, RobotPermission, RobotRows, UserRecord, UserRows } from './ports.js';
import type { Role } from './permissions.js';
import type { LoginRateLimiter } from './rate-limit.js';
import { CredentialCache, verifySecret } from './secrets.js';
import { sourceOfAccount, type ExternalIdentities } from './sources.js';

/** Who a request acts as, once credentials or a token have been checked. */
export type Identity =
  | { kind: 'anonymous' }
  /** `source`: the identity source of an external user (ldap, oidc:<provider>; src/auth/sources.ts); absent for local and htpasswd users. */
  | { kind: 'user'; name: string; admin: boolean; source?: string }
  | { kind: 'robot'; name: string; project: string | null; permissions: RobotPermission[] }
  /** Someone an external token issuer vouches for; what they may do is exactly the token's `access`. */
  | { kind: 'external'; name: string }
  /**
   * A workload known by its SPIFFE ID (a client certificate, src/auth/mtls): `roles` are the
   * project roles its identity bindings give, resolved when it authenticated.
   */
  | { kind: 'workload'; name: string; source: 'spiffe'; roles: Readonly<Record<string, Role>> };

export const ANONYMOUS: Identity = { kind: 'anonymous' };

export const ROBOT_PREFIX = 'robot$';

/** Token subjects of workloads (SPIFFE IDs); no username can start so. */
export const SPIFFE_SCHEME = 'spiffe://';

export function identityName(identity: Identity): string {
  return identity.kind === 'anonymous' ? '' : identity.name;
}

export function isSystemAdmin(identity: Identity): boolean {
  return identity.kind === 'user' && identity.admin;
}

/**
 * `Authorization: Basic …` → credentials, or null when absent, not Basic, or malformed (not
 * canonical base64, no colon, empty username). Callers that must not treat a malformed header
 * as anonymous check isBasicScheme as well.
 */
export function basicCredentials(header: string | undefined): { username: string; password: string } | null {
  if (typeof header !== 'string') return null;
  const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (!m) return null;
  const bytes = Buffer.from(m[1]!, 'base64');
  // Base64 that does not round-trip (wrong length or padding; unpadded is tolerated) is garbage, not credentials.
  const canonical = bytes.toString('base64');
  if (m[1] !== canonical && m[1] !== canonical.replace(/=+$/, '')) return null;
  const decoded = bytes.toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Whether the header uses the Basic scheme at all (well-formed or not). */
export function isBasicScheme(header: string | undefined): boolean {
  return typeof header === 'string' && /^basic(?:\s|$)/i.test(header);
}

/** `Authorization: Bearer …` → the token, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (typeof header !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

/** Where a login came in (the audit entry's detail): /v2 Basic auth, /token, /api/v1, or a password change's currentPassword. */
export type LoginVia = 'v2' | 'token' | 'api' | 'password-change';

/**
 * The throttle's account key. currentPassword guesses count apart from logins: the caller of a
 * password change is already signed in (often with a token), and each of its logins would
 * otherwise clear the count of its guesses.
 */
function limiterAccount(username: string, via: LoginVia): string {
  return via === 'password-change' ? `${username}\u0000current-password` : username;
}

/** Audited names are cut to this length: a failed attempt may carry any string as its username. */
const MAX_AUDITED_NAME = 128;

/**
 * Checks a name and secret against users (bcrypt), htpasswd users (bcrypt from the file) and
 * robot accounts (bcrypt, expiry), throttled per account and client IP (LoginRateLimiter), and
 * audits the outcome: `login` when a secret was checked against its stored hash (repeats
 * served by the credential cache within its minute are not recorded again), `login.failed`
 * (the attempted username, never the password), and `login.ratelimited` once per block.
 */
export class Authenticator {
  private readonly cache = new CredentialCache();

  constructor(
    private readonly store: UserRows & RobotRows & AuditRows,
    private readonly limiter: LoginRateLimiter,
    /** Users of auth.htpasswd, when configured. A Berth user of the same name takes precedence. */
    private readonly htpasswd: HtpasswdUsers | null = null,
    /** External identity sources (LDAP, OIDC; src/auth/sources.ts), asked for names that are not local. */
    private readonly external: ExternalIdentities | null = null,
  ) {}

  /** Resolves the identity, or throws UNAUTHORIZED (bad credentials) / TOOMANYREQUESTS. */
  async login(username: string, password: string, ip: string, challenge: Record<string, string>, via: LoginVia = 'v2'): Promise<Identity> {
    await this.throttle(username, ip, via);
    const outcome = await this.verify(username, password, ip);
    if (outcome && 'unavailable' in outcome) {
      // Never "allow": the credentials could not be checked. Not a guess, so not throttled.
      this.observeLogin('failure');
      await this.audit('login.failed', 'failure', username, ip, { via, source: outcome.unavailable.join(','), reason: 'unavailable' });
      throw new RegistryError(
        'UNAVAILABLE',
        `the identity source (${outcome.unavailable.join(', ')}) is unavailable: the credentials could not be checked; try again later`,
      );
    }
    if (!outcome) {
      await this.failed(username, ip, via);
      throw new RegistryError('UNAUTHORIZED', 'invalid username or password', null, challenge);
    }
    this.limiter.succeed(limiterAccount(username, via), ip);
    this.observeLogin('success');
    const source = outcome.identity.kind === 'user' ? outcome.identity.source : undefined;
    if (outcome.checked) await this.audit('login', 'success', username, ip, source ? { via, source } : { via });
    return outcome.identity;
  }

  /**
   * Whether `password` is the current password of user `username` (a password change by the
   * user themself), under the same throttle and audit as a login: guessing it is guessing a password.
   */
  async confirmPassword(username: string, password: string, ip: string): Promise<boolean> {
    const via: LoginVia = 'password-change';
    await this.throttle(username, ip, via);
    const outcome = await this.verify(username, password, ip);
    if (!outcome || 'unavailable' in outcome || outcome.identity.kind !== 'user' || outcome.identity.name !== username) {
      await this.failed(username, ip, via);
      return false;
    }
    this.limiter.succeed(limiterAccount(username, via), ip);
    return true;
  }

  private async throttle(username: string, ip: string, via: LoginVia): Promise<void> {
    const blocked = this.limiter.blocked(limiterAccount(username, via), ip);
    if (!blocked) return;
    const retryAfter = Math.max(1, Math.ceil(blocked.retryAfterMs / 1000));
    this.observeLogin('ratelimited');
    if (blocked.first) await this.audit('login.ratelimited', 'failure', username, ip, { via, retryAfter });
    throw new RegistryError(
      'TOOMANYREQUESTS',
      'too many failed login attempts; try again later',
      { retryAfter },
      { 'retry-after': String(retryAfter) },
    );
  }

  private async failed(username: string, ip: string, via: LoginVia): Promise<void> {
    this.limiter.fail(limiterAccount(username, via), ip);
    this.observeLogin('failure');
    await this.audit('login.failed', 'failure', username, ip, { via });
  }

  /**
   * Where a login's audit entry goes when the database refuses it (a full disk, a read-only
   * replica): the server log (AuthService.init). Logging in — and so pulling — must keep
   * working then, as pulls do on a full disk.
   */
  auditFailed: (entry: AuditEntry, err: unknown) => void = () => {};

  /** Told of each login's outcome (metrics: the composition root sets it; auth never imports src/metrics). */
  observeLogin: (outcome: 'success' | 'failure' | 'ratelimited') => void = () => {};

  private async audit(action: string, outcome: AuditOutcome, username: string, ip: string, detail: Record<string, unknown>): Promise<void> {
    const name = username.slice(0, MAX_AUDITED_NAME);
    const entry: AuditEntry = { actor: name, action, target: name, ip, detail, outcome };
    try {
      await this.store.audit(entry);
    } catch (err) {
      this.auditFailed(entry, err);
    }
  }

  /**
   * The identity behind a name and secret (null: wrong), and whether a stored hash or an
   * identity source was checked (not a cache); `unavailable`: the sources that had to answer could not.
   */
  private async verify(
    name: string,
    secret: string,
    ip: string,
  ): Promise<{ identity: Identity; checked: boolean } | { unavailable: string[] } | null> {
    const checked = { value: false };
    const identity = await this.resolve(name, secret, checked, ip);
    if (identity && 'unavailable' in identity) return identity;
    return identity ? { identity, checked: checked.value } : null;
  }

  private async resolve(
    name: string,
    secret: string,
    checked: { value: boolean },
    ip: string,
  ): Promise<Identity | { unavailable: string[] } | null> {
    if (name.startsWith(ROBOT_PREFIX)) {
      const robot = await this.store.getRobot(name);
      if (robot && robot.expiresAt !== null && robot.expiresAt.getTime() <= Date.now()) return null;
      if (!(await this.check(name, secret, robot?.secretHash ?? null, checked))) return null;
      return { kind: 'robot', name, project: robot!.project, permissions: robot!.permissions };
    }
    const user = await this.store.getUser(name);
    if (user && sourceOfAccount(user.passwordHash) !== null) return this.fromSource(name, secret, user, checked, ip);
    if (user && !isHtpasswdAccount(user.passwordHash)) {
      if (!(await this.check(name, secret, user.passwordHash, checked))) {
        // A source configured to take over local users of its names may still vouch for this one.
        return this.external?.takesOver ? this.fromSource(name, secret, user, checked, ip) : null;
      }
      return { kind: 'user', name, admin: user.admin };
    }
    // Nobody here or in the htpasswd file: the identity sources, when configured.
    if (!user && this.external?.enabled && !this.htpasswd?.has(name)) return this.fromSource(name, secret, null, checked, ip);
    // An htpasswd user, or nobody: a name in neither place still costs one bcrypt compare.
    const fileHash = this.htpasswd?.hashOf(name) ?? null;
    if (!(await this.check(name, secret, fileHash, checked))) return null;
    const account = user ?? (await this.htpasswdAccount(name));
    return account ? { kind: 'user', name, admin: account.admin } : null;
  }

  /** A user of an identity source (sources.ts): the source vouches for them, or cannot tell. */
  private async fromSource(
    name: string,
    secret: string,
    user: UserRecord | null,
    checked: { value: boolean },
    ip: string,
  ): Promise<Identity | { unavailable: string[] } | null> {
    const outcome = this.external ? await this.external.login(name, secret, user, ip) : null;
    if (!outcome || 'unavailable' in outcome) return outcome;
    checked.value = outcome.checked;
    return { kind: 'user', name: outcome.name, admin: outcome.admin, source: outcome.source };
  }

  /** The users row of an htpasswd user the file watcher has not registered yet (it is created here). */
  private async htpasswdAccount(name: string): Promise<UserRecord | null> {
    // Recorded as the file watcher records it (whichever of the two creates the row audits it).
    await this.store.createUser({ username: name, passwordHash: HTPASSWD_MARKER, admin: false }, HTPASSWD_ACTOR);
    const user = await this.store.getUser(name);
    // Someone created a Berth user of that name meanwhile: it takes precedence over the file.
    return user && isHtpasswdAccount(user.passwordHash) ? user : null;
  }

  private async check(name: string, secret: string, storedHash: string | null, checked: { value: boolean }): Promise<boolean> {
    if (storedHash !== null && this.cache.matches(name, secret, storedHash)) return true;
    checked.value = true;
    const ok = await verifySecret(secret, storedHash);
    if (ok) this.cache.remember(name, secret, storedHash!);
    return ok;
  }

  /** Resolves token subjects that are SPIFFE IDs (src/auth/mtls sets it when client certificates are on). */
  workloads: ((subject: string) => Promise<Identity | null>) | null = null;

  /** The current identity behind a token subject issued by this server, or null if it no longer exists. */
  async current(subject: string): Promise<Identity | null> {
    if (subject === '') return ANONYMOUS;
    if (subject.startsWith(SPIFFE_SCHEME)) return this.workloads ? this.workloads(subject) : null;
    if (subject.startsWith(ROBOT_PREFIX)) {
      const robot = await this.store.getRobot(subject);
      if (!robot || (robot.expiresAt !== null && robot.expiresAt.getTime() <= Date.now())) return null;
      return { kind: 'robot', name: robot.name, project: robot.project, permissions: robot.permissions };
    }
    const user = await this.store.getUser(subject);
    if (!user) return null;
    const source = sourceOfAccount(user.passwordHash);
    // A user of an identity source that is no longer configured matches nothing.
    if (source !== null) return this.external?.has(source) ? { kind: 'user', name: user.username, admin: user.admin, source } : null;
    // An htpasswd user removed from the file loses access on their next request.
    if (isHtpasswdAccount(user.passwordHash) && !this.htpasswd?.has(subject)) return null;
    return { kind: 'user', name: user.username, admin: user.admin };
  }
}
