import type { StoredEvent } from '../core/events.js';
import type { MetadataTx } from '../core/ports.js';

/**
 * The outbox as the dispatcher sees it. Events are appended by core inside the transaction
 * of their change (core's EventAppender); here they are put in order, read, and pruned.
 *
 * Why a sequencing step: on PostgreSQL and MySQL two transactions can commit in the
 * opposite order of their auto-increment ids, so a consumer reading "id > cursor" could
 * step over an event that commits a moment later and never see it. `sequence` gives each
 * committed event its position (`seq`) in the order the sequencer sees them — one
 * sequencer at a time, under a row lock — and consumers read by `seq`, which never has
 * such holes.
 */
export interface OutboxStore {
  /** Positions up to `limit` committed events that have none yet; returns how many it positioned. */
  sequence(limit: number): Promise<number>;
  /** Events after position `after`, in order, at most `limit`. */
  read(after: number, limit: number): Promise<StoredEvent[]>;
  /** The consumer's cursor (0 before its first event). */
  position(consumer: string): Promise<number>;
  /** Moves the consumer's cursor; inside `tx` when given, so it commits with the consumer's own writes. */
  advance(consumer: string, position: number, tx?: MetadataTx): Promise<void>;
  /** Deletes events every named consumer has passed that are older than `before` (epoch ms); returns how many. */
  prune(consumers: string[], before: number): Promise<number>;
  /** Events not yet positioned, and the last position given. */
  status(): Promise<{ unsequenced: number; lastSeq: number; cursors: Record<string, number> }>;
}
