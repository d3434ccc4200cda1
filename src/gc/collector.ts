import type { Logger } from 'pino';
import type { PolicyHooks } from '../core/policies.js';
import type { BlobStore } from '../core/ports.js';
import { withLease, type LeaseStore } from '../jobs/leases.js';
import type { BlobDeletion, Candidate, GcMetadata, GcQueries, ManifestFacts } from './ports.js';
import { ReportBuilder, skippedReport, type GcCounts, type GcReport, type Verdict } from './report.js';

export interface GcOptions {
  /** Nothing younger than this (since its last push, mount or loss of a reference) is collected. */
  gracePeriodMs: number;
  /** 'keep' leaves untagged manifests alone (referrers whose subject is gone are still collected). */
  untagged: 'delete' | 'keep';
  /** Queue rows read per batch. */
  batchSize: number;
  /** Lease duration without renewal (how long a crashed collector blocks the next). */
  leaseTtlMs?: number;
}

export interface GcRunOptions {
  dryRun?: boolean;
  /** Called after every batch with the running totals. */
  onProgress?: (counts: GcCounts) => void;
}

/** Runs `work` in a metadata transaction (a real run) or inside the dry run's single rolled-back one. */
type UnitOfWork = <T>(work: (queries: GcQueries) => Promise<T>) => Promise<T>;

export const GC_LEASE = 'gc';

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
const PENDING_BATCH = 100;
/** Finished byte deletions are remembered this long (uploads that overlapped them are refused). */
const DELETION_JOURNAL_RETENTION_MS = 24 * 3_600_000;

/**
 * Online, incremental garbage collection. The write paths put candidates in a review
 * queue; a run takes the `gc` lease, then reviews every due candidate in its own
 * transaction, re-checking under row locks that it is still garbage and past the grace
 * period before deleting it. Deleting a manifest queues what it referenced, deleting a
 * link queues the blob, so one run follows garbage down to the bytes. Blob bytes are
 * deleted only after the transaction that removed the blob's last row, through a journal
 * that the next run finishes if this one is killed. Work is proportional to the queue,
 * not to the size of the registry.
 */
export class GarbageCollector {
  constructor(
    private readonly blobs: Pick<BlobStore, 'delete'>,
    private readonly metadata: GcMetadata,
    private readonly leases: LeaseStore,
    readonly options: GcOptions,
    private readonly logger: Logger,
    /** Brings the review queue up to date before a run (the composition root delivers pending events). */
    private readonly prepare: () => Promise<unknown> = async () => undefined,
    /** Core's policy hooks: told, in the deleting transaction, about every link and manifest a run removes (quota usage). */
    private readonly policies?: Pick<PolicyHooks, 'removed'>,
  ) {}

  async run(runOptions: GcRunOptions = {}): Promise<GcReport> {
    await this.prepare();
    const settings = { dryRun: runOptions.dryRun ?? false, gracePeriodMs: this.options.gracePeriodMs, untagged: this.options.untagged };
    const outcome = await withLease(this.leases, GC_LEASE, (lease) => this.collect(new ReportBuilder(settings), runOptions, lease.signal), {
      ttlMs: this.options.leaseTtlMs,
      onLost: (err) => this.logger.warn({ err }, 'gc: lease lost, stopping after the current candidate'),
    });
    if (!outcome.acquired) {
      this.logger.info({ heldBy: outcome.heldBy }, 'gc: another collector holds the lease, skipping');
      return skippedReport(settings, outcome.heldBy);
    }
    return outcome.value;
  }

  private async collect(report: ReportBuilder, runOptions: GcRunOptions, signal: AbortSignal): Promise<GcReport> {
    const dryRun = runOptions.dryRun ?? false;
    const now = Date.now();
    const cutoff = now - this.options.gracePeriodMs;
    this.logger.info({ dryRun, cutoff: new Date(cutoff).toISOString() }, 'gc: run started');
    try {
      await yieldToEventLoop();
      if (!dryRun) await this.resumeByteDeletions(report, signal);
      // What is left for later runs is read where the run's changes are visible: inside the dry
      // run's rolled-back transaction (its postponements included), after a real run's commits.
      if (dryRun) {
        await this.metadata.rolledBack(async (queries) => {
          await this.drainQueue((work) => work(queries), cutoff, report, runOptions, signal);
          report.recordWaiting(await queries.waiting(cutoff));
        });
      } else {
        await this.drainQueue((work) => this.metadata.transaction(work), cutoff, report, runOptions, signal);
        await this.metadata.transaction(async (queries) => {
          report.recordWaiting(await queries.waiting(cutoff));
          // gc.finished (webhooks) commits with the run's last read: one event per completed run, never for a dry run.
          const { manifests, links, blobs, bytesFreed, errors } = report.counts;
          await queries.tx.events.append(
            [{ type: 'gc.finished', manifests, links, blobs, bytesFreed, errors, durationMs: Date.now() - now }],
            null,
          );
        });
      }
      if (!dryRun) await this.metadata.pruneBlobDeletions(now - DELETION_JOURNAL_RETENTION_MS);
    } catch (err) {
      this.logger.error({ err }, 'gc: run stopped early; the next run continues from the queue');
      return report.finish(false, err);
    }
    const result = report.finish(true);
    this.logger.info({ dryRun, ...result.counts, durationMs: result.durationMs }, 'gc: run finished');
    return result;
  }

  /** Reviews due candidates batch by batch until none is left (cascades are due at once). */
  private async drainQueue(
    unit: UnitOfWork,
    cutoff: number,
    report: ReportBuilder,
    runOptions: GcRunOptions,
    signal: AbortSignal,
  ): Promise<void> {
    const dryRun = runOptions.dryRun ?? false;
    for (;;) {
      signal.throwIfAborted();
      const batch = await unit((q) => q.dueCandidates(cutoff, this.options.batchSize));
      if (batch.length === 0) return;
      const verdicts = await this.reviewBatch(unit, batch, cutoff, report, dryRun);
      for (const verdict of verdicts) report.record(verdict);
      if (!dryRun)
        await this.deleteBytes(
          verdicts.filter((v) => v.action === 'blob-deleted'),
          report,
        );
      this.logger.info({ dryRun, ...report.counts }, 'gc: batch done');
      runOptions.onProgress?.({ ...report.counts });
      // SQLite calls are synchronous: give queued requests their turn between batches.
      await yieldToEventLoop();
    }
  }

  /**
   * Where the store prefers it (SQLite: one writer at a time, so a batch costs one commit and
   * one fsync), reviews a batch in one transaction; if that fails, or otherwise (PostgreSQL:
   * row locks held briefly, no lock held across candidates), one transaction per candidate.
   */
  private async reviewBatch(
    unit: UnitOfWork,
    batch: Candidate[],
    cutoff: number,
    report: ReportBuilder,
    dryRun: boolean,
  ): Promise<Verdict[]> {
    if (!dryRun && !this.metadata.batchTransactions) return this.reviewEach(unit, batch, cutoff, report);
    try {
      return await unit(async (q) => {
        const verdicts: Verdict[] = [];
        for (const candidate of batch) verdicts.push(await this.review(q, candidate, cutoff));
        return verdicts;
      });
    } catch (err) {
      if (dryRun) throw err;
      this.logger.warn({ err }, 'gc: batch failed, reviewing its candidates one by one');
      return this.reviewEach(unit, batch, cutoff, report);
    }
  }

  private async reviewEach(unit: UnitOfWork, batch: Candidate[], cutoff: number, report: ReportBuilder): Promise<Verdict[]> {
    const verdicts: Verdict[] = [];
    for (const candidate of batch) {
      const verdict = await this.reviewSafely(unit, candidate, cutoff, report);
      if (verdict) verdicts.push(verdict);
    }
    return verdicts;
  }

  /** A candidate that fails (lock timeout, deadlock) is put back for the next run instead of stopping this one. */
  private async reviewSafely(unit: UnitOfWork, candidate: Candidate, cutoff: number, report: ReportBuilder): Promise<Verdict | null> {
    try {
      return await unit((q) => this.review(q, candidate, cutoff));
    } catch (err) {
      report.counts.errors++;
      this.logger.warn({ err, candidate }, 'gc: candidate failed, re-queued for the next run');
      await unit((q) => q.requeue(candidate, Date.now()));
      return null;
    }
  }

  /**
   * Re-checks one candidate under row locks and deletes it if it is (still) garbage. The
   * queue row is removed last, so the candidate's row is always the first lock taken.
   */
  private async review(q: GcQueries, c: Candidate, cutoff: number): Promise<Verdict> {
    const verdict = await this.decide(q, c, cutoff);
    if (verdict.action !== 'postponed') await q.dequeue(c);
    return verdict;
  }

  private async decide(q: GcQueries, c: Candidate, cutoff: number): Promise<Verdict> {
    switch (c.kind) {
      case 'manifest': {
        const facts = await q.lockManifest(c.repositoryId, c.digest);
        if (!facts) return { action: 'gone' };
        if (facts.createdAt > cutoff) return this.postpone(q, c, facts.createdAt);
        if (!this.isGarbageManifest(facts)) return { action: 'kept' };
        // A tag pointed to it within the tag history window: reviewed again once the window has passed.
        if (facts.retainedUntil !== null && facts.retainedUntil > Date.now())
          return this.postpone(q, c, facts.retainedUntil - this.options.gracePeriodMs);
        await q.deleteManifest(c.repositoryId, c.digest, cutoff);
        await this.policies?.removed([{ repository: c.repository, digest: c.digest }], q.tx);
        return { action: 'manifest-deleted', repository: c.repository, digest: c.digest };
      }
      case 'link': {
        const facts = await q.lockLink(c.repositoryId, c.digest);
        if (!facts) return { action: 'gone' };
        if (facts.referenced) return { action: 'kept' };
        if (facts.createdAt > cutoff) return this.postpone(q, c, facts.createdAt);
        await q.deleteLink(c.repositoryId, c.digest, cutoff);
        await this.policies?.removed([{ repository: c.repository, digest: c.digest }], q.tx);
        return { action: 'unlinked', repository: c.repository, digest: c.digest };
      }
      case 'blob': {
        const facts = await q.lockBlob(c.digest);
        if (!facts) return { action: 'gone' };
        if (facts.linked) return { action: 'kept' };
        await q.deleteBlobRow(c.digest, facts.size, Date.now());
        return { action: 'blob-deleted', digest: c.digest, size: facts.size };
      }
    }
  }

  private async postpone(q: GcQueries, c: Candidate, since: number): Promise<Verdict> {
    await q.requeue(c, since);
    return { action: 'postponed' };
  }

  /**
   * Tagged manifests and children of another manifest (an index) live. A referrer lives
   * exactly as long as its subject. Other untagged manifests follow `gc.untagged`.
   */
  private isGarbageManifest(facts: ManifestFacts): boolean {
    if (facts.tagged || facts.childOfManifest) return false;
    if (facts.subjectDigest !== null) return !facts.subjectExists;
    return this.options.untagged === 'delete';
  }

  /** Deletes the bytes of blobs whose rows are gone, then closes their journal entries. */
  private async deleteBytes(blobs: BlobDeletion[], report: ReportBuilder): Promise<void> {
    const deleted: string[] = [];
    for (const blob of blobs) {
      try {
        await this.blobs.delete(blob.digest);
        deleted.push(blob.digest);
      } catch (err) {
        report.counts.errors++;
        this.logger.warn({ err, digest: blob.digest }, 'gc: deleting blob bytes failed; the next run retries');
      }
    }
    if (deleted.length > 0) await this.metadata.finishBlobDeletions(deleted, Date.now());
  }

  /** Finishes byte deletions an interrupted run journalled but did not complete. */
  private async resumeByteDeletions(report: ReportBuilder, signal: AbortSignal): Promise<void> {
    const seen = new Set<string>();
    for (;;) {
      const pending = (await this.metadata.pendingBlobDeletions(PENDING_BATCH)).filter((p) => !seen.has(p.digest));
      if (pending.length === 0) return;
      signal.throwIfAborted();
      const revived: string[] = [];
      const gone: BlobDeletion[] = [];
      for (const blob of pending) {
        seen.add(blob.digest);
        // Uploads are refused while a deletion is pending, so a row here is not expected; keep its bytes if there is one.
        if (await this.metadata.blobRowExists(blob.digest)) revived.push(blob.digest);
        else gone.push(blob);
      }
      if (revived.length > 0) await this.metadata.finishBlobDeletions(revived, Date.now());
      await this.deleteBytes(gone, report);
      report.counts.resumedByteDeletions += pending.length;
    }
  }
}
