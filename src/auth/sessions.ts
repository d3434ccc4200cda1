import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { RegistryError } from '../core/errors.js';
import type { Job } from '../jobs/scheduler.js';
import type { Authenticator, Identity } from './identity.js';
import type { SessionRecord, SessionRows } from './ports.js';

/** The cookie that carries a browser session's id (docs/api.md#web-ui-api). */
export const SESSION_COOKIE = 'berth_session';
/** The header a mutating call authenticated by the cookie must carry. */
export const CSRF_HEADER = 'x-csrf-token';

export interface SessionSettings {
  /** Absolute lifetime (ui.sessionttl). */
  ttlMs: number;
  /** Idle lifetime (ui.sessionidle). */
  idleMs: number;
}

/** A live session as the HTTP layer answers it. */
export interface LiveSession {
  username: string;
  admin: boolean;
  csrfToken: string;
  /** When it ends without further use: the earlier of the absolute and the idle end. */
  expiresAt: Date;
  identity: Identity;
}

/**
 * Browser sessions of the web UI: an opaque random id in an HttpOnly cookie, stored server-side
 * only as its sha256 (every replica sees the same rows), a CSRF token per session, an absolute
 * and an idle expiry. Each use re-reads the user (Authenticator.current), so a deleted user, an
 * htpasswd user removed from the file or a user of a source no longer configured is signed out
 * at the next request.
 */
export class BrowserSessions {
  constructor(
    private readonly store: SessionRows,
    private readonly authenticator: Authenticator,
    readonly settings: SessionSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a session for `identity` (a user, never a robot); returns the cookie value and the session. */
  async create(identity: Identity): Promise<{ id: string; session: LiveSession }> {
    if (identity.kind !== 'user')
      throw new RegistryError('DENIED', 'only users can sign in to the web UI (robot accounts and workloads use the registry API)');
    const now = this.now();
    const id = randomBytes(32).toString('base64url');
    const record: SessionRecord = {
      idHash: hashId(id),
      username: identity.name,
      csrfToken: randomBytes(32).toString('base64url'),
      createdAt: new Date(now),
      expiresAt: new Date(now + this.settings.ttlMs),
      lastSeenAt: new Date(now),
    };
    await this.store.createSession(record);
    return { id, session: this.live(record, identity) };
  }

  /** The live session behind a cookie value, or null (unknown, expired, signed out, or its user is gone). */
  async resolve(id: string): Promise<LiveSession | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
    const record = await this.store.getSession(hashId(id));
    if (!record) return null;
    const now = this.now();
    if (record.expiresAt.getTime() <= now || record.lastSeenAt.getTime() + this.settings.idleMs <= now) {
      await this.store.deleteSession(record.idHash);
      return null;
    }
    const identity = await this.authenticator.current(record.username);
    if (!identity || identity.kind !== 'user') {
      await this.store.deleteSession(record.idHash);
      return null;
    }
    // One write per session per touch interval, not per request.
    if (now - record.lastSeenAt.getTime() >= this.touchIntervalMs()) {
      record.lastSeenAt = new Date(now);
      await this.store.touchSession(record.idHash, record.lastSeenAt);
    }
    return this.live(record, identity);
  }

  /** Ends the session behind a cookie value (signing out); false when there was none. */
  async revoke(id: string): Promise<boolean> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return false;
    return this.store.deleteSession(hashId(id));
  }

  /** Whether `given` (the X-CSRF-Token header) is the session's token, compared in constant time. */
  static csrfMatches(session: LiveSession, given: string | undefined): boolean {
    if (given === undefined) return false;
    const a = Buffer.from(session.csrfToken);
    const b = Buffer.from(given);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private touchIntervalMs(): number {
    return Math.min(60_000, Math.floor(this.settings.idleMs / 10));
  }

  private live(record: SessionRecord, identity: Identity): LiveSession {
    const idleEnd = record.lastSeenAt.getTime() + this.settings.idleMs;
    return {
      username: record.username,
      admin: identity.kind === 'user' && identity.admin,
      csrfToken: record.csrfToken,
      expiresAt: new Date(Math.min(record.expiresAt.getTime(), idleEnd)),
      identity,
    };
  }
}

export const SESSION_PURGE_JOB = 'session-purge';

/**
 * Deletes expired browser sessions (absolute or idle end passed) every `everyMs` (hourly by
 * default), one process of a cluster at a time (the job's lease). A stale row is harmless
 * meanwhile: `resolve` refuses and deletes an expired session when its cookie comes back.
 */
export function sessionPurgeJob(store: Pick<SessionRows, 'deleteExpiredSessions'>, settings: SessionSettings, everyMs = 3_600_000): Job {
  return {
    name: SESSION_PURGE_JOB,
    schedule: { everyMs },
    async run() {
      const now = Date.now();
      const purged = await store.deleteExpiredSessions(new Date(now), new Date(now - settings.idleMs));
      return { summary: { purged }, idle: purged === 0 };
    },
  };
}

function hashId(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}
