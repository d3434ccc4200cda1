import type { Logger } from 'pino';
import type { EventConsumer } from '../core/events.js';
import type { MetadataStore } from '../core/ports.js';
import { LeaseBusyError, withLease, type LeaseStore } from '../jobs/leases.js';
import type { Job } from '../jobs/scheduler.js';
import type { OutboxStore } from './ports.js';

export const EVENTS_LEASE = 'events';
/**
 * The events lease is renewed every third of this while a round runs; short, so a process
 * killed mid-round holds up delivery (and GC's review queue) for seconds, not a minute.
 */
const EVENTS_LEASE_TTL_MS = 10_000;

export interface DispatchResult {
  sequenced: number;
  /** Events handled per consumer. */
  delivered: Record<string, number>;
  /** Consumers that failed this round (they retry from their cursor next round). */
  failed: string[];
}

/**
 * Delivers the outbox to its consumers: positions newly committed events, then hands each
 * consumer the events after its cursor, in order, in batches. A transactional consumer's
 * batch and its cursor move commit together (exactly-once effects); any other consumer's
 * cursor moves after its batch succeeded (at-least-once). A failing consumer stops at its
 * cursor and is retried on the next round; the others go on.
 */
export class EventDispatcher {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly outbox: OutboxStore,
    private readonly consumers: EventConsumer[],
    private readonly logger: Logger,
    private readonly batchSize = 500,
  ) {
    const names = new Set(consumers.map((c) => c.name));
    if (names.size !== consumers.length) throw new Error('event consumers need unique names');
  }

  get consumerNames(): string[] {
    return this.consumers.map((c) => c.name);
  }

  /** Whether a round would find anything: events not yet positioned, or a consumer behind the last position (reads only). */
  async hasWork(): Promise<boolean> {
    const { unsequenced, lastSeq, cursors } = await this.outbox.status();
    return unsequenced > 0 || this.consumers.some((c) => (cursors[c.name] ?? 0) < lastSeq);
  }

  /** One round: sequence everything committed, deliver it all (call under the events lease). */
  async dispatch(signal?: AbortSignal): Promise<DispatchResult> {
    const result: DispatchResult = { sequenced: 0, delivered: {}, failed: [] };
    for (;;) {
      const n = await this.outbox.sequence(this.batchSize);
      result.sequenced += n;
      if (n < this.batchSize) break;
    }
    for (const consumer of this.consumers) {
      signal?.throwIfAborted();
      try {
        result.delivered[consumer.name] = await this.deliver(consumer, signal);
      } catch (err) {
        result.failed.push(consumer.name);
        this.logger.warn({ err, consumer: consumer.name }, 'event consumer failed; it retries from its cursor');
      }
    }
    return result;
  }

  /**
   * Dispatches under the events lease, waiting while another process holds it: e.g. `berth gc`
   * makes sure the review queue holds every change committed before it. The default wait is
   * longer than the lease lasts, so a lease its holder could not release (killed, or a full
   * disk refused the release) expires while we wait instead of failing the caller.
   */
  async drain(leases: LeaseStore, timeoutMs = 2 * EVENTS_LEASE_TTL_MS + 1_000): Promise<DispatchResult> {
    const deadline = Date.now() + timeoutMs;
    let told = false;
    for (;;) {
      const outcome = await withLease(leases, EVENTS_LEASE, (lease) => this.dispatch(lease.signal), { ttlMs: EVENTS_LEASE_TTL_MS });
      if (outcome.acquired) return outcome.value;
      if (Date.now() > deadline)
        throw new LeaseBusyError(`the event outbox is being dispatched by ${outcome.heldBy ?? 'another process'}; try again`);
      if (!told) this.logger.info({ heldBy: outcome.heldBy }, 'events: waiting for the outbox dispatch another process runs');
      told = true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private async deliver(consumer: EventConsumer, signal?: AbortSignal): Promise<number> {
    let delivered = 0;
    let position = await this.outbox.position(consumer.name);
    for (;;) {
      signal?.throwIfAborted();
      const batch = await this.outbox.read(position, this.batchSize);
      if (batch.length === 0) return delivered;
      const last = batch.at(-1)!.seq;
      if (consumer.transactional) {
        await this.metadata.transaction(async (tx) => {
          await consumer.handle(batch, tx);
          await this.outbox.advance(consumer.name, last, tx);
        });
      } else {
        await consumer.handle(batch, null);
        await this.outbox.advance(consumer.name, last);
      }
      position = last;
      delivered += batch.length;
    }
  }
}

/** The dispatch job: every `everyMs`, on one process of the cluster (the events lease). */
export function dispatchJob(dispatcher: EventDispatcher, everyMs: number): Job {
  return {
    name: EVENTS_LEASE,
    schedule: { everyMs },
    history: 'work',
    leaseTtlMs: EVENTS_LEASE_TTL_MS,
    hasWork: () => dispatcher.hasWork(),
    async run(signal) {
      const result = await dispatcher.dispatch(signal);
      const delivered = Object.values(result.delivered).reduce((a, b) => a + b, 0);
      return { summary: result, idle: result.sequenced === 0 && delivered === 0 && result.failed.length === 0 };
    },
  };
}

/** Prunes events every consumer has passed once they are older than `retentionMs`. */
export function pruneJob(outbox: OutboxStore, consumers: string[], retentionMs: number, everyMs: number): Job {
  return {
    name: 'events-prune',
    schedule: { everyMs },
    async run() {
      const pruned = await outbox.prune(consumers, Date.now() - retentionMs);
      return { summary: { pruned }, idle: pruned === 0 };
    },
  };
}
