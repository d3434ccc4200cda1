/**
 * When and how long to wait before trying a request again. Kept apart from the transport
 * so the policy (which statuses, how many attempts, how long) is one small table a reader
 * can check against the spec, and tests can shorten the delays.
 */

export interface RetryPolicy {
  /** Total tries including the first one; 1 disables retries. */
  attempts: number;
  /** The first backoff; doubled per attempt. */
  baseDelayMs: number;
  /** No single wait exceeds this, including a server's Retry-After. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 200, maxDelayMs: 10_000 };

/**
 * 429 and the 5xx statuses that mean "not processed, try later". 501 (not implemented)
 * and 505 will not change on a retry, so they are not retried.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** Methods whose repetition has the same effect as one call (RFC 9110 §9.2.2). */
export function isIdempotentMethod(method: string): boolean {
  return ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'].includes(method.toUpperCase());
}

/**
 * Delay before retry number `attempt` (1-based): exponential with "equal jitter" (a random
 * wait in [cap/2, cap]) so many clients failing together do not come back together. A server's
 * Retry-After wins when given, bounded by maxDelayMs so a hostile value cannot park us.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxDelayMs);
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/** Retry-After as delta-seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
