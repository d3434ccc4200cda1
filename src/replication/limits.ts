/**
 * The two limits a copy runs under: how many blobs move at once (a semaphore) and how
 * many bytes per second move in all (a token bucket shared by every blob of a run).
 */
import { sleep } from '../client/retry.js';

/** A counting semaphore: `use(fn)` runs fn when one of `size` slots is free. */
export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = Math.max(1, Math.floor(size));
  }

  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/**
 * A token bucket in bytes: `take(n)` resolves once n bytes may pass at `bytesPerSecond`,
 * with a burst of one second's worth. Callers take per chunk they read, so a limit holds
 * for the sum of concurrent transfers.
 */
export class Bandwidth {
  private tokens: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly bytesPerSecond: number) {
    this.tokens = bytesPerSecond;
  }

  take(bytes: number, signal?: AbortSignal): Promise<void> {
    // One taker at a time, in order: a big chunk is not starved by small ones.
    const turn = this.queue.then(() => this.wait(bytes, signal));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async wait(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
      this.last = now;
      // A chunk larger than the bucket passes once the bucket is full, leaving it in debt.
      if (this.tokens >= Math.min(bytes, this.bytesPerSecond)) {
        this.tokens -= bytes;
        return;
      }
      const missing = Math.min(bytes, this.bytesPerSecond) - this.tokens;
      await sleep(Math.max(5, Math.ceil((missing / this.bytesPerSecond) * 1000)), signal);
    }
  }
}

/** Exponential backoff with equal jitter: attempt 1 waits about `base`, doubling up to `max`. */
export function backoff(attempt: number, baseMs: number, maxMs = 30_000): number {
  const cap = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}
