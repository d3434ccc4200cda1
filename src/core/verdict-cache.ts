import { peers } from './peers.js';

/**
 * What a pull policy caches per project: the project's counters as last read (`state`; null: no
 * policy), when they were last compared, and the verdicts reached under them.
 */
export interface CachedProject<S, V> {
  state: S | null;
  checkedAt: number;
  verdicts: Map<string, V>;
}

/** What a worker tells its siblings when a project's verdicts may have changed (src/core/peers.ts). */
const PEER_TOPIC = 'verdict-cache.touch';

/** Verdicts kept per project (the cache starts over beyond). */
const MAX_VERDICTS = 20_000;

/**
 * A per-project cache of a pull policy and its verdicts (signature trust, vulnerability policy),
 * kept valid by counters instead of messages: a replica re-reads the project's counters at most
 * once per `refreshMs` (or at once when asked `fresh`), and reloads the project only when they
 * moved. An allowed pull then costs two map look-ups: no query.
 */
export class CounterCheckedCache<S, V, E extends CachedProject<S, V>> {
  private readonly projects = new Map<string, E>();

  constructor(
    /** The project's counters now (one cheap query), null when it has no policy. */
    private readonly readState: (project: string) => Promise<S | null>,
    /** Loads the project's policy and what is derived from it, with empty verdicts. */
    private readonly load: (project: string, state: S | null, now: number) => Promise<E>,
    /** Whether two readings of the counters are the same (nothing changed in between). */
    private readonly same: (a: S, b: S) => boolean,
    private readonly refreshMs: number,
  ) {
    // A change on another worker of this server applies here at the next pull, not after refreshMs.
    peers().subscribe(PEER_TOPIC, (project) => this.touch(typeof project === 'string' ? project : undefined, false));
  }

  /** The project's entry, re-read when the counters moved (`fresh`: compare them now). */
  async current(project: string, fresh = false): Promise<E> {
    const now = Date.now();
    const cached = this.projects.get(project);
    if (cached && !fresh && now - cached.checkedAt < this.refreshMs) return cached;
    const state = await this.readState(project);
    if (cached && (cached.state === state || (cached.state !== null && state !== null && this.same(cached.state, state)))) {
      cached.checkedAt = now;
      return cached;
    }
    const loaded = await this.load(project, state, now);
    this.projects.set(project, loaded);
    return loaded;
  }

  /** Drops a project's entry (after a change on this replica: it applies here at once, and on this server's other workers at their next pull). */
  forget(project: string): void {
    this.projects.delete(project);
    peers().publish(PEER_TOPIC, project);
  }

  /** Compare the counters at the next pull of `project` (or of every project), here and in this server's other workers. */
  touch(project?: string, tellPeers = true): void {
    if (tellPeers) peers().publish(PEER_TOPIC, project ?? null);
    if (project === undefined) {
      for (const cached of this.projects.values()) cached.checkedAt = 0;
      return;
    }
    const cached = this.projects.get(project);
    if (cached) cached.checkedAt = 0;
  }

  remember(entry: E, key: string, verdict: V): void {
    if (entry.verdicts.size >= MAX_VERDICTS) entry.verdicts.clear();
    entry.verdicts.set(key, verdict);
  }
}
