import type { WaitingCandidates } from './ports.js';

/** What one garbage-collection run did (or, for a dry run, would do). */
export interface GcReport {
  dryRun: boolean;
  /** False when another process held the GC lease: nothing was done. */
  ran: boolean;
  /** Holder of the lease when `ran` is false. */
  heldBy?: string | null;
  /** False when the run stopped early (lease lost, storage error): the next run continues. */
  completed: boolean;
  startedAt: string;
  durationMs: number;
  gracePeriodMs: number;
  untagged: 'delete' | 'keep';
  counts: GcCounts;
  /** What was deleted, in order (each list capped at REPORT_LIST_LIMIT entries). */
  deleted: {
    manifests: { repository: string; digest: string }[];
    links: { repository: string; digest: string }[];
    blobs: { digest: string; size: number }[];
  };
  truncated: boolean;
  /**
   * Candidates the run left in the queue because they are still inside the grace period (pushed,
   * mounted or unreferenced less than `gracePeriodMs` ago), and when they can be collected: the
   * first run after `firstCollectableAt` reviews the oldest, the first after `lastCollectableAt`
   * all of them (each is deleted then if it is still unused). Absent when the run stopped early.
   */
  waiting?: WaitingReport;
  error?: string;
}

export interface WaitingReport {
  candidates: number;
  /** ISO times; null when nothing is waiting. */
  firstCollectableAt: string | null;
  lastCollectableAt: string | null;
}

export interface GcCounts {
  /** Queue rows examined. */
  reviewed: number;
  /** Candidates found still in use (dropped from the queue). */
  kept: number;
  /** Candidates still inside the grace period (re-queued). */
  postponed: number;
  manifests: number;
  links: number;
  blobs: number;
  /** Bytes of blob content deleted from storage. */
  bytesFreed: number;
  /** Byte deletions left unfinished by an interrupted run and finished by this one. */
  resumedByteDeletions: number;
  errors: number;
}

export const REPORT_LIST_LIMIT = 10_000;

/** Result of reviewing one candidate. */
export type Verdict =
  | { action: 'kept' | 'postponed' | 'gone' }
  | { action: 'manifest-deleted'; repository: string; digest: string }
  | { action: 'unlinked'; repository: string; digest: string }
  | { action: 'blob-deleted'; digest: string; size: number };

export class ReportBuilder {
  private readonly started = Date.now();
  readonly counts: GcCounts = {
    reviewed: 0,
    kept: 0,
    postponed: 0,
    manifests: 0,
    links: 0,
    blobs: 0,
    bytesFreed: 0,
    resumedByteDeletions: 0,
    errors: 0,
  };
  private readonly deleted: GcReport['deleted'] = { manifests: [], links: [], blobs: [] };
  private truncated = false;
  private waiting: WaitingReport | undefined;

  constructor(private readonly settings: Pick<GcReport, 'dryRun' | 'gracePeriodMs' | 'untagged'>) {}

  record(verdict: Verdict): void {
    this.counts.reviewed++;
    switch (verdict.action) {
      case 'kept':
      case 'gone':
        this.counts.kept++;
        return;
      case 'postponed':
        this.counts.postponed++;
        return;
      case 'manifest-deleted':
        this.counts.manifests++;
        return this.list(this.deleted.manifests, { repository: verdict.repository, digest: verdict.digest });
      case 'unlinked':
        this.counts.links++;
        return this.list(this.deleted.links, { repository: verdict.repository, digest: verdict.digest });
      case 'blob-deleted':
        this.counts.blobs++;
        this.counts.bytesFreed += verdict.size;
        return this.list(this.deleted.blobs, { digest: verdict.digest, size: verdict.size });
    }
  }

  /** What is left in the queue for later runs (queue times + the grace period = when it can go). */
  recordWaiting(waiting: WaitingCandidates): void {
    const at = (queuedAt: number | null) => (queuedAt === null ? null : new Date(queuedAt + this.settings.gracePeriodMs).toISOString());
    this.waiting = {
      candidates: waiting.count,
      firstCollectableAt: at(waiting.oldestQueuedAt),
      lastCollectableAt: at(waiting.newestQueuedAt),
    };
  }

  finish(completed: boolean, error?: unknown): GcReport {
    return {
      ...this.settings,
      ran: true,
      completed,
      startedAt: new Date(this.started).toISOString(),
      durationMs: Date.now() - this.started,
      counts: { ...this.counts },
      deleted: this.deleted,
      truncated: this.truncated,
      ...(this.waiting ? { waiting: this.waiting } : {}),
      ...(error ? { error: (error as Error).message ?? String(error) } : {}),
    };
  }

  private list<T>(items: T[], item: T): void {
    if (items.length < REPORT_LIST_LIMIT) items.push(item);
    else this.truncated = true;
  }
}

/** The report of a run that did not happen because another process holds the lease. */
export function skippedReport(settings: Pick<GcReport, 'dryRun' | 'gracePeriodMs' | 'untagged'>, heldBy: string | null): GcReport {
  return { ...new ReportBuilder(settings).finish(false), ran: false, heldBy };
}
