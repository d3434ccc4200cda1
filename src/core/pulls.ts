import type { DomainEvent } from './events.js';
import type { PullCount } from './ports.js';

/**
 * The outbox events of one flush: one `manifest.pulled` per manifest with the flush's count,
 * written with the counts themselves (webhooks report pulls from these), so a pull never adds a
 * database write of its own.
 */
export function pulledEvents(counts: PullCount[]): DomainEvent[] {
  return counts.map((c) => ({
    type: 'manifest.pulled',
    repository: c.repository,
    digest: c.digest,
    pulls: c.pulls,
    lastPulledAt: c.lastPulledAt,
  }));
}

/**
 * Pull counts, kept in memory and flushed in batches: a row write per pull would cost more
 * than the pull itself (manifest GETs are the hottest path). A flush writes one aggregate per
 * manifest pulled since the last one (count, last pulled at); a failed flush keeps its counts
 * for the next. What a killed process had not flushed yet is lost — counts are statistics,
 * not records (docs/architecture.md).
 */
export class PullCounter {
  /** repository → digest → count: two lookups and no key string built per pull (the hot path). */
  private pending = new Map<string, Map<string, PullCount>>();

  constructor(private readonly flushTo: (counts: PullCount[]) => Promise<void>) {}

  count(repository: string, digest: string, at = Date.now()): void {
    const known = this.pending.get(repository)?.get(digest);
    if (known) {
      known.pulls++;
      known.lastPulledAt = at;
    } else {
      this.add({ repository, digest, pulls: 1, lastPulledAt: at });
    }
  }

  /** Writes what was counted since the last flush; returns how many manifests it covered. */
  async flush(): Promise<number> {
    if (this.pending.size === 0) return 0;
    const batch = [...this.pending.values()].flatMap((digests) => [...digests.values()]);
    this.pending = new Map();
    try {
      await this.flushTo(batch);
      return batch.length;
    } catch (err) {
      // Put the counts back (merged with any counted meanwhile) for the next flush.
      for (const entry of batch) this.add(entry);
      throw err;
    }
  }

  private add(entry: PullCount): void {
    let digests = this.pending.get(entry.repository);
    if (!digests) this.pending.set(entry.repository, (digests = new Map()));
    const known = digests.get(entry.digest);
    if (!known) {
      digests.set(entry.digest, entry);
      return;
    }
    known.pulls += entry.pulls;
    known.lastPulledAt = Math.max(known.lastPulledAt, entry.lastPulledAt);
  }
}
