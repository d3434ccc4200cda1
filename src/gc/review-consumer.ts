import type { EventConsumer, StoredEvent } from '../core/events.js';
import type { MetadataTx } from '../core/ports.js';
import type { GcMetadata, GcTxQueries, ReviewRequest } from './ports.js';

export const GC_REVIEW_CONSUMER = 'gc-review';

/**
 * GC's view of the outbox: turns each change that may create garbage into review-queue rows,
 * in the transaction that moves this consumer's cursor (so each event is queued exactly
 * once). A row is queued at the event's time, so the grace period counts from the change:
 * - a blob committed or mounted: its link (garbage if no manifest comes to reference it);
 * - a blob unlinked: the blob (garbage once no repository links it);
 * - a manifest pushed untagged, a tag moved away or deleted: that manifest;
 * - a manifest deleted: what it referenced, and its referrers.
 */
export function gcReviewConsumer(store: GcMetadata): EventConsumer {
  return {
    name: GC_REVIEW_CONSUMER,
    transactional: true,
    async handle(events: StoredEvent[], tx: MetadataTx | null) {
      if (!tx) throw new Error('the gc-review consumer runs inside a transaction');
      const queries = store.within(tx);
      const ids = new Map<string, number | null>();
      const repositoryId = async (name: string) => {
        if (!ids.has(name)) ids.set(name, await tx.repositories.id(name));
        return ids.get(name)!;
      };
      for (const stored of events) {
        const requests = await reviewsFor(stored, repositoryId, queries);
        if (requests.length > 0) await queries.enqueue(requests, stored.at);
      }
    },
  };
}

async function reviewsFor(
  stored: StoredEvent,
  repositoryId: (name: string) => Promise<number | null>,
  queries: GcTxQueries,
): Promise<ReviewRequest[]> {
  const e = stored.event;
  // Account changes (src/auth) leave no garbage: a deleted project keeps its repositories.
  switch (e.type) {
    case 'repository.created':
    case 'user.created':
    case 'user.updated':
    case 'user.deleted':
    case 'project.created':
    case 'project.updated':
    case 'project.deleted':
    case 'member.set':
    case 'member.removed':
    case 'robot.created':
    case 'robot.deleted':
    case 'binding.created':
    case 'binding.deleted':
    case 'quota.warning':
    case 'quota.exceeded':
    case 'retention.finished':
    case 'audit.recorded':
    case 'gc.finished':
    case 'manifest.pulled':
    case 'scan.completed':
    case 'scan.failed':
    case 'replication.finished':
      return [];
    case 'blob.deleted':
      return [{ kind: 'blob', repositoryId: 0, digest: e.digest }];
  }
  // A repository that is gone took its rows with it: nothing left to review there.
  const id = await repositoryId(e.repository);
  if (id === null) return [];
  switch (e.type) {
    case 'blob.committed':
    case 'blob.mounted':
      return [{ kind: 'link', repositoryId: id, digest: e.digest }];
    case 'manifest.pushed':
      return e.tags.length === 0 ? [{ kind: 'manifest', repositoryId: id, digest: e.digest }] : [];
    case 'tag.moved':
      return [{ kind: 'manifest', repositoryId: id, digest: e.previous }];
    case 'tag.deleted':
      return [{ kind: 'manifest', repositoryId: id, digest: e.digest }];
    case 'tag.created':
      return [];
    case 'manifest.deleted': {
      const referrers = await queries.referrersOf(id, e.digest);
      return [
        ...e.references.map((r): ReviewRequest => ({
          kind: r.kind === 'manifest' ? 'manifest' : 'link',
          repositoryId: id,
          digest: r.digest,
        })),
        ...referrers.map((digest): ReviewRequest => ({ kind: 'manifest', repositoryId: id, digest })),
      ];
    }
  }
}
