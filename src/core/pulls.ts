import type { PullCount } from './ports.js';

/**
 * Pull counts, kept in memory and flushed in batches: a row write per pull would cost more
 * than the pull itself (manifest GETs are the hottest path). A flush writes one aggregate per
 * manifest pulled since the last one (count, last pulled at); a failed flush keeps its counts
 * for the next. What a killed process had not flushed yet is lost — counts are statistics,
 * not records (docs/architecture.md).
 */
export class PullCounter {
  private pending = new Map<string, PullCount>();

  constructor(private readonly flushTo: (counts: PullCount[]) => Promise<void>) {}

  count(repository: string, digest: string, at = Date.now()): void {
    const key = `${repository}@${digest}`;
    const entry = this.pending.get(key);
    if (entry) {
      entry.pulls++;
      entry.lastPulledAt = at;
    } else {
      this.pending.set(key, { repository, digest, pulls: 1, lastPulledAt: at });
    }
  }

  /** Writes what was counted since the last flush; returns how many manifests it covered. */
  async flush(): Promise<number> {
    if (this.pending.size === 0) return 0;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.flushTo([...batch.values()]);
      return batch.size;
    } catch (err) {
      // Put the counts back (merged with any counted meanwhile) for the next flush.
      for (const [key, entry] of batch) {
        const newer = this.pending.get(key);
        if (newer) {
          newer.pulls += entry.pulls;
          newer.lastPulledAt = Math.max(newer.lastPulledAt, entry.lastPulledAt);
        } else this.pending.set(key, entry);
      }
      throw err;
    }
  }
}
