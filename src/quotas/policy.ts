import type { Logger } from 'pino';
import type { DomainEvent } from '../core/events.js';
import { projectOf } from '../core/names.js';
import { deny, type Policy } from '../core/policies.js';
import type { MetadataStore, MetadataTx } from '../core/ports.js';
import { describeBytes } from './bytes.js';
import type { QuotaStore, QuotaUsage } from './ports.js';

export const QUOTA_POLICY = 'quota';

export interface QuotaPolicyOptions {
  /** quotas.warning: a `quota.warning` event when a push raises usage across this % of the limit. */
  warningPercent: number;
}

/** Content a push is about to add to a repository. */
interface Addition {
  repository: string;
  digest: string;
  size: number;
  actor: string | null;
  /** 'check': refuse early, before the bytes move (reads only); 'commit': in the transaction that records them. */
  phase: 'check' | 'commit';
}

/**
 * Storage quotas on core's write hooks. A blob commit, a mount and a manifest PUT add their
 * digest to the project's usage unless it already counts there (deduplicated per project);
 * in the transaction of the change, under a lock on the project's usage row, so concurrent
 * pushes into one project cannot overshoot the limit together. A push that would exceed the
 * limit is refused with 403 DENIED; the `quota.exceeded` event is appended in a transaction of
 * its own, since the refused push's transaction rolls back. Removals (deletes, GC) free the
 * bytes of digests no repository of the project holds any more.
 */
export function quotaPolicy(
  store: QuotaStore,
  metadata: Pick<MetadataStore, 'transaction'>,
  options: QuotaPolicyOptions,
  logger: Logger,
): Policy {
  const refuse = (addition: Addition, project: string, usage: QuotaUsage & { limit: number }): never => {
    recordExceeded(
      metadata,
      logger,
      { type: 'quota.exceeded', project, repository: addition.repository, requested: addition.size, used: usage.used, limit: usage.limit },
      addition.actor,
    );
    throw quotaExceeded(project, addition.size, usage.used, usage.limit);
  };
  const overLimit = (usage: QuotaUsage, size: number): usage is QuotaUsage & { limit: number } =>
    usage.limit !== null && usage.used + size > usage.limit;

  const admit = async (addition: Addition, tx: MetadataTx | null): Promise<void> => {
    if (!tx) return;
    const project = projectOf(addition.repository);
    const queries = store.within(tx);
    if (addition.phase === 'check') {
      // Reads only, to refuse before the bytes move; an unlimited project has nothing to check.
      const usage = await queries.usage(project, false);
      if (overLimit(usage, addition.size) && !(await queries.counts(project, addition.digest))) refuse(addition, project, usage);
      return;
    }
    // Locked first: concurrent pushes into the project serialise here, so none overshoots the limit.
    const usage = await queries.usage(project, true);
    // Counted in this transaction (0: the project holds the digest already); a refusal below rolls it back.
    const added = await queries.add(project, addition.digest, addition.size);
    if (added === 0) return;
    if (overLimit(usage, added)) refuse(addition, project, usage);
    const warning = crossedWarning(usage, added, options.warningPercent);
    if (warning) await tx.events.append([warning], addition.actor);
  };

  return {
    name: QUOTA_POLICY,
    hooks: {
      'blob.commit': (c, tx) => admit({ repository: c.repository, digest: c.digest, size: c.size, actor: c.actor, phase: c.phase }, tx),
      'blob.mount': async (c, tx) => {
        // Read in the transaction (SQLite has one connection). No blob row: core's own lock finds it gone and falls back to an upload.
        const size = tx ? await store.within(tx).blobSize(c.digest) : null;
        if (size !== null) await admit({ repository: c.repository, digest: c.digest, size, actor: c.actor, phase: 'commit' }, tx);
      },
      'manifest.put': (c, tx) => admit({ repository: c.repository, digest: c.digest, size: c.size, actor: c.actor, phase: 'commit' }, tx),
    },
    removed: async (removed, tx) => {
      const queries = store.within(tx);
      for (const { repository, digest } of removed) await queries.release(projectOf(repository), digest);
    },
  };
}

/** The refusal clients print (Harbor: 403 DENIED "Quota exceeded when processing the request of adding …"). */
export function quotaExceeded(project: string, requested: number, used: number, limit: number) {
  return deny(
    QUOTA_POLICY,
    'DENIED',
    `storage quota of project ${project} exceeded: adding ${describeBytes(requested)} to the current usage of ${describeBytes(used)} would exceed the limit of ${describeBytes(limit)}`,
    { project, requested, used, limit },
  );
}

/** The warning event when adding `added` bytes takes usage from below the threshold to at or above it. */
function crossedWarning(before: QuotaUsage, added: number, percent: number): DomainEvent | null {
  if (before.limit === null || added === 0) return null;
  const threshold = (before.limit * percent) / 100;
  const used = before.used + added;
  if (before.used >= threshold || used < threshold) return null;
  return { type: 'quota.warning', project: before.project, used, limit: before.limit, threshold: percent };
}

/**
 * Appends `quota.exceeded` in a transaction of its own, once the refused push's transaction
 * has ended (on SQLite it queues behind it; not awaited, so the refusal is not delayed). Losing
 * it to a crash in between loses an event about a change that did not happen.
 */
function recordExceeded(metadata: Pick<MetadataStore, 'transaction'>, logger: Logger, event: DomainEvent, actor: string | null): void {
  void metadata
    .transaction((tx) => tx.events.append([event], actor))
    .catch((err: unknown) => logger.warn({ err, event }, 'quota: could not record the quota.exceeded event'));
}
