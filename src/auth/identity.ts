import { RegistryError } from '../core/errors.js';
import { HTPASSWD_ACTOR, HTPASSWD_MARKER, isHtpasswdAccount, type HtpasswdUsers } from './htpasswd.js';
import type { RobotPermission, RobotRows, UserRecord, UserRows } from './ports.js';
import type { LoginRateLimiter } from './rate-limit.js';
import { CredentialCache, verifySecret } from './secrets.js';

/** Who a request acts as, once credentials or a token have been checked. */
export type Identity =
  | { kind: 'anonymous' }
  | { kind: 'user'; name: string; admin: boolean }
  | { kind: 'robot'; name: string; project: string | null; permissions: RobotPermission[] }
  /** Someone an external token issuer vouches for; what they may do is exactly the token's `access`. */
  | { kind: 'external'; name: string };

export const ANONYMOUS: Identity = { kind: 'anonymous' };

export const ROBOT_PREFIX = 'robot$';

export function identityName(identity: Identity): string {
  return identity.kind === 'anonymous' ? '' : identity.name;
}

export function isSystemAdmin(identity: Identity): boolean {
  return identity.kind === 'user' && identity.admin;
}

/** `Authorization: Basic …` → credentials, or null when absent or not Basic. */
export function basicCredentials(header: string | undefined): { username: string; password: string } | null {
  if (typeof header !== 'string') return null;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** `Authorization: Bearer …` → the token, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (typeof header !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

/**
 * Checks a name and secret against users (bcrypt), htpasswd users (bcrypt from the file) and
 * robot accounts (bcrypt, expiry), throttled per account and per client IP.
 */
export class Authenticator {
  private readonly cache = new CredentialCache();

  constructor(
    private readonly store: UserRows & RobotRows,
    private readonly limiter: LoginRateLimiter,
    /** Users of auth.htpasswd, when configured. A Berth user of the same name takes precedence. */
    private readonly htpasswd: HtpasswdUsers | null = null,
  ) {}

  /** Resolves the identity, or throws UNAUTHORIZED (bad credentials) / TOOMANYREQUESTS. */
  async login(username: string, password: string, ip: string, challenge: Record<string, string>): Promise<Identity> {
    const keys = [`account:${username.toLowerCase()}`, `ip:${ip}`];
    this.limiter.check(keys);
    const identity = await this.verify(username, password);
    if (!identity) {
      this.limiter.fail(keys);
      throw new RegistryError('UNAUTHORIZED', 'invalid username or password', null, challenge);
    }
    this.limiter.succeed(keys[0]!);
    return identity;
  }

  private async verify(name: string, secret: string): Promise<Identity | null> {
    if (name.startsWith(ROBOT_PREFIX)) {
      const robot = await this.store.getRobot(name);
      if (robot && robot.expiresAt !== null && robot.expiresAt.getTime() <= Date.now()) return null;
      if (!(await this.check(name, secret, robot?.secretHash ?? null))) return null;
      return { kind: 'robot', name, project: robot!.project, permissions: robot!.permissions };
    }
    const user = await this.store.getUser(name);
    if (user && !isHtpasswdAccount(user.passwordHash)) {
      if (!(await this.check(name, secret, user.passwordHash))) return null;
      return { kind: 'user', name, admin: user.admin };
    }
    // An htpasswd user, or nobody: a name in neither place still costs one bcrypt compare.
    const fileHash = this.htpasswd?.hashOf(name) ?? null;
    if (!(await this.check(name, secret, fileHash))) return null;
    const account = user ?? (await this.htpasswdAccount(name));
    return account ? { kind: 'user', name, admin: account.admin } : null;
  }

  /** The users row of an htpasswd user the file watcher has not registered yet (it is created here). */
  private async htpasswdAccount(name: string): Promise<UserRecord | null> {
    // Recorded as the file watcher records it (whichever of the two creates the row audits it).
    await this.store.createUser({ username: name, passwordHash: HTPASSWD_MARKER, admin: false }, HTPASSWD_ACTOR);
    const user = await this.store.getUser(name);
    // Someone created a Berth user of that name meanwhile: it takes precedence over the file.
    return user && isHtpasswdAccount(user.passwordHash) ? user : null;
  }

  private async check(name: string, secret: string, storedHash: string | null): Promise<boolean> {
    if (storedHash !== null && this.cache.matches(name, secret, storedHash)) return true;
    const ok = await verifySecret(secret, storedHash);
    if (ok) this.cache.remember(name, secret, storedHash!);
    return ok;
  }

  /** The current identity behind a token subject issued by this server, or null if it no longer exists. */
  async current(subject: string): Promise<Identity | null> {
    if (subject === '') return ANONYMOUS;
    if (subject.startsWith(ROBOT_PREFIX)) {
      const robot = await this.store.getRobot(subject);
      if (!robot || (robot.expiresAt !== null && robot.expiresAt.getTime() <= Date.now())) return null;
      return { kind: 'robot', name: robot.name, project: robot.project, permissions: robot.permissions };
    }
    const user = await this.store.getUser(subject);
    if (!user) return null;
    // An htpasswd user removed from the file loses access on their next request.
    if (isHtpasswdAccount(user.passwordHash) && !this.htpasswd?.has(subject)) return null;
    return { kind: 'user', name: user.username, admin: user.admin };
  }
}
