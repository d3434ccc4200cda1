import { RegistryError } from '../core/errors.js';

/**
 * Failed-login throttle: more than `limit` failures for one key (an account or a client IP)
 * within `windowMs` blocks further attempts for that key until the oldest failure ages out.
 * Counters live in this process, so with several replicas the limit applies per replica.
 */
export class LoginRateLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Throws TOOMANYREQUESTS (429 + Retry-After) if any of `keys` is blocked. */
  check(keys: string[]): void {
    const now = Date.now();
    for (const key of keys) {
      const recent = this.recent(key, now);
      if (recent.length >= this.limit) {
        const retryAfter = Math.max(1, Math.ceil((recent[0]! + this.windowMs - now) / 1000));
        throw new RegistryError('TOOMANYREQUESTS', 'too many failed login attempts; try again later', { retryAfter }, { 'retry-after': String(retryAfter) });
      }
    }
  }

  fail(keys: string[]): void {
    const now = Date.now();
    for (const key of keys) {
      const recent = this.recent(key, now);
      recent.push(now);
      this.failures.set(key, recent);
    }
    if (this.failures.size > 100_000) this.prune(now);
  }

  /** A successful login clears the account's counter (not the IP's: one good password must not reset a spray). */
  succeed(key: string): void {
    this.failures.delete(key);
  }

  private recent(key: string, now: number): number[] {
    return (this.failures.get(key) ?? []).filter((t) => t > now - this.windowMs);
  }

  private prune(now: number): void {
    for (const [key, times] of this.failures) if (!times.some((t) => t > now - this.windowMs)) this.failures.delete(key);
  }
}
