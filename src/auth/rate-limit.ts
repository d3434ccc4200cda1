import { peers } from '../core/peers.js';

/** The failed-login throttle's settings (auth.ratelimit). */
export interface RateLimitSettings {
  /** Failures tolerated for one account from one client address within `windowMs`. */
  failures: number;
  /** Failures tolerated from one client address across all accounts within `windowMs` (password spraying). */
  perIp: number;
  windowMs: number;
  /** The first wait once a limit is reached; it doubles with each further failure, up to `windowMs`. */
  backoffMs: number;
}

/** A refusal: how long until the next attempt is allowed, and whether this is the first refusal of the block. */
export interface Blocked {
  retryAfterMs: number;
  first: boolean;
}

/** What a worker tells its siblings about each login (src/core/peers.ts). */
const PEER_TOPIC = 'login-throttle';

interface Entry {
  /** Failure times within the window, oldest first. */
  times: number[];
  /** No attempt is allowed before this instant (epoch ms). */
  until: number;
  /** Whether a refusal has been reported since `until` was last set (the audit records one per block). */
  reported: boolean;
}

/**
 * Failed-login throttle, keyed by account *and* client address, so a stranger cannot lock
 * anyone out (the admin included): after `failures` failures of one account from one address
 * within the window, that pair waits `backoffMs`, then twice as long after each further
 * failure (at most the window). A client address failing `perIp` times across accounts waits
 * the same way for every account. A success clears the pair (not the address: one good password
 * must not reset a spray). Counters live in this process: the workers of one server tell each
 * other every failure and success (src/core/peers.ts), so they count together; with several
 * replicas each applies the limits on its own (docs/security.md).
 */
export class LoginRateLimiter {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly settings: RateLimitSettings) {
    peers().subscribe(PEER_TOPIC, (message) => {
      const { op, account, ip, at } = (message ?? {}) as { op?: unknown; account?: unknown; ip?: unknown; at?: unknown };
      if (typeof account !== 'string' || typeof ip !== 'string') return;
      if (op === 'fail' && typeof at === 'number') this.failAt(account, ip, at);
      else if (op === 'succeed') this.entries.delete(this.keys(account, ip)[0]);
    });
  }

  /** Null when `account` may try from `ip` now; otherwise how long to wait. */
  blocked(account: string, ip: string): Blocked | null {
    const now = Date.now();
    let worst: Entry | null = null;
    for (const key of this.keys(account, ip)) {
      const entry = this.entries.get(key);
      if (entry && entry.until > now && (!worst || entry.until > worst.until)) worst = entry;
    }
    if (!worst) return null;
    const first = !worst.reported;
    worst.reported = true;
    return { retryAfterMs: worst.until - now, first };
  }

  fail(account: string, ip: string): void {
    const now = Date.now();
    this.failAt(account, ip, now);
    peers().publish(PEER_TOPIC, { op: 'fail', account, ip, at: now });
  }

  succeed(account: string, ip: string): void {
    // Every worker holds the same entries (failures are told to all): nothing to tell when none is here.
    if (this.entries.delete(this.keys(account, ip)[0])) peers().publish(PEER_TOPIC, { op: 'succeed', account, ip });
  }

  private failAt(account: string, ip: string, now: number): void {
    const [pair, address] = this.keys(account, ip);
    this.record(pair!, this.settings.failures, now);
    this.record(address!, this.settings.perIp, now);
    if (this.entries.size > 100_000) this.prune(now);
  }

  private keys(account: string, ip: string): [string, string] {
    return [`${account.toLowerCase()}\n${ip}`, `\n${ip}`];
  }

  private record(key: string, limit: number, now: number): void {
    const { windowMs, backoffMs } = this.settings;
    const entry = this.entries.get(key) ?? { times: [], until: 0, reported: false };
    entry.times = entry.times.filter((t) => t > now - windowMs);
    entry.times.push(now);
    const over = entry.times.length - limit;
    if (over >= 0) {
      entry.until = now + Math.min(windowMs, backoffMs * 2 ** Math.min(over, 30));
      entry.reported = false;
    }
    this.entries.set(key, entry);
  }

  private prune(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.until <= now && !entry.times.some((t) => t > now - this.settings.windowMs)) this.entries.delete(key);
    }
  }
}
