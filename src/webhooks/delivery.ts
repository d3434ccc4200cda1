import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import { withLease, type LeaseStore } from '../jobs/leases.js';
import type { Job, JobResult } from '../jobs/scheduler.js';
import type { AttemptOutcome, Delivery, WebhookStore } from './ports.js';
import { retryDelayMs, type DeliveryTarget } from './targets.js';

export const WEBHOOKS_JOB = 'webhooks';
export const SIGNATURE_HEADER = 'X-Berth-Signature';
/**
 * An endpoint's lease is renewed every third of this while its worker sends; short, so that a
 * killed process holds up that endpoint's deliveries for seconds only.
 */
const ENDPOINT_LEASE_TTL_MS = 5_000;
const LAST_ERROR_MAX = 500;

/** `sha256=<hex HMAC-SHA256 of the body under the endpoint's secret>`: what X-Berth-Signature carries. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Where a queue's endpoint is now: a target, or the reason its deliveries are given up (policy deleted or disabled). */
export type ResolvedTarget = { target: DeliveryTarget } | { gone: string };

export interface DeliveryObserver {
  /** Called after each attempt (metrics). */
  attempted(endpoint: string, outcome: AttemptOutcome): void;
}

export interface DelivererOptions {
  intervalMs: number;
  /** Endpoints this process sends to at once. */
  concurrency: number;
  resolve(endpoint: string): Promise<ResolvedTarget>;
  observer?: DeliveryObserver;
}

interface RoundStats {
  delivered: number;
  retrying: number;
  failed: number;
}

/**
 * Sends queued deliveries. Each endpoint's queue is worked by one worker at a time in the
 * whole cluster (a lease per endpoint), oldest first, one request at a time: per-endpoint
 * order. Only a queue's head is ever sent, so an endpoint in backoff waits as a whole, and a
 * later event never overtakes an earlier one. Workers of different endpoints run concurrently
 * (up to `concurrency` per process): a slow or dead endpoint holds only its own worker, for at
 * most its timeout per attempt. A delivery is marked after its response, so a crash between
 * the two sends it again: at-least-once, with a stable event id for receivers to deduplicate.
 */
export class WebhookDeliverer {
  private readonly active = new Map<string, Promise<void>>();

  constructor(
    private readonly store: WebhookStore,
    private readonly leases: LeaseStore,
    private readonly logger: Logger,
    private readonly options: DelivererOptions,
  ) {}

  /** The job: every process looks for due queues (scope process; each queue is leased by itself). */
  job(): Job {
    return {
      name: WEBHOOKS_JOB,
      schedule: { everyMs: this.options.intervalMs },
      scope: 'process',
      history: 'work',
      run: (signal) => this.round(signal),
    };
  }

  /**
   * Starts a worker for each due queue and keeps looking for newly due ones every interval
   * while any worker runs, so a new event for one endpoint does not wait for another's slow
   * request. Returns when every worker is done (or, after `signal`, has stopped).
   */
  async round(signal: AbortSignal): Promise<JobResult> {
    const stats: RoundStats = { delivered: 0, retrying: 0, failed: 0 };
    // Queues another process holds (or whose worker failed) wait for the next round instead of being retried in a loop.
    const skipped = new Set<string>();
    for (;;) {
      if (!signal.aborted) await this.startDueWorkers(stats, skipped, signal);
      if (this.active.size === 0) break;
      await waitForAny([...this.active.values()], this.options.intervalMs, signal);
      if (signal.aborted) {
        await Promise.allSettled(this.active.values());
        break;
      }
    }
    return { summary: stats, idle: stats.delivered + stats.retrying + stats.failed === 0 };
  }

  private async startDueWorkers(stats: RoundStats, skipped: Set<string>, signal: AbortSignal): Promise<void> {
    const free = this.options.concurrency - this.active.size;
    if (free <= 0) return;
    const due = await this.store.dueEndpoints(Date.now(), this.options.concurrency + this.active.size + skipped.size);
    for (const endpoint of due.filter((e) => !this.active.has(e) && !skipped.has(e)).slice(0, free)) {
      const worker = this.work(endpoint, stats, signal)
        .then((ran) => {
          if (!ran) skipped.add(endpoint);
        })
        .catch((err: unknown) => {
          skipped.add(endpoint);
          this.logger.warn({ err, endpoint }, 'webhook worker failed; its queue is retried next round');
        })
        .finally(() => this.active.delete(endpoint));
      this.active.set(endpoint, worker);
    }
  }

  /** Drains the endpoint's queue under its lease; false when another process holds it. */
  private async work(endpoint: string, stats: RoundStats, signal: AbortSignal): Promise<boolean> {
    const outcome = await withLease(
      this.leases,
      `${WEBHOOKS_JOB}:${endpoint}`,
      (lease) => this.drain(endpoint, stats, anyOf(signal, lease.signal)),
      {
        ttlMs: ENDPOINT_LEASE_TTL_MS,
      },
    );
    return outcome.acquired;
  }

  /** Sends the queue's due head until it is empty, not yet due, or the worker must stop. */
  private async drain(endpoint: string, stats: RoundStats, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const head = await this.store.head(endpoint);
      if (!head || head.nextAttemptAt > Date.now()) return;
      const resolved = await this.options.resolve(endpoint);
      if ('gone' in resolved) {
        stats.failed += await this.store.abandon(endpoint, resolved.gone, Date.now());
        return;
      }
      const outcome = await this.attempt(head, resolved.target, signal);
      if (!outcome) return;
      if (!(await this.store.recordAttempt(head.id, head.attempts, outcome))) return;
      stats[outcome.status === 'delivered' ? 'delivered' : outcome.status === 'failed' ? 'failed' : 'retrying']++;
      this.options.observer?.attempted(endpoint, outcome);
      if (outcome.status === 'failed')
        this.logger.warn(
          { endpoint, delivery: head.id, eventId: head.eventId, attempts: head.attempts + 1, error: outcome.error },
          'webhook delivery given up',
        );
    }
  }

  /** One POST; null when the process is stopping (the attempt does not count). */
  private async attempt(delivery: Delivery, target: DeliveryTarget, stop: AbortSignal): Promise<AttemptOutcome | null> {
    const headers: Record<string, string> = {
      ...target.headers,
      'Content-Type': delivery.contentType,
      'User-Agent': 'Berth-Webhooks/1',
      'X-Berth-Event': delivery.kind,
      'X-Berth-Event-Id': delivery.eventId,
      'X-Berth-Delivery': String(delivery.id),
    };
    if (target.secret) headers[SIGNATURE_HEADER] = signature(target.secret, delivery.body);
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const response = await fetch(target.url, {
        method: 'POST',
        headers,
        body: delivery.body,
        redirect: 'manual',
        signal: anyOf(stop, AbortSignal.timeout(target.timeoutMs)),
      });
      statusCode = response.status;
      await response.body?.cancel().catch(() => undefined);
      // Distribution counts any 2xx or 3xx as delivered.
      if (statusCode >= 400) error = `HTTP ${statusCode}`;
    } catch (err) {
      if (stop.aborted) return null;
      error = describeFailure(err, target.timeoutMs);
    }
    const at = Date.now();
    const latencyMs = Math.round(performance.now() - started);
    if (error === null) return { status: 'delivered', statusCode, error: null, latencyMs, at, nextAttemptAt: at };
    const attempts = delivery.attempts + 1;
    if (attempts >= target.maxAttempts) return { status: 'failed', statusCode, error, latencyMs, at, nextAttemptAt: at };
    return { status: 'pending', statusCode, error, latencyMs, at, nextAttemptAt: at + retryDelayMs(target, attempts) };
  }
}

/** What went wrong, without the URL (it may carry credentials) and short enough for the log. */
function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no response within ${timeoutMs} ms`;
  const detail = e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
  return `request failed: ${detail}`.slice(0, LAST_ERROR_MAX);
}

/** A signal aborted when either is (listeners removed once it fires). */
function anyOf(a: AbortSignal, b: AbortSignal): AbortSignal {
  return AbortSignal.any([a, b]);
}

/** Waits until one of `promises` settles, `ms` pass, or `signal` aborts. */
async function waitForAny(promises: Promise<unknown>[], ms: number, signal: AbortSignal): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const wake = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([...promises, wake]);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort!);
  }
}
