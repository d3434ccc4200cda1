import type { Job } from '../jobs/scheduler.js';
import type { TagsMetadata } from './ports.js';

/** Forgets tag history older than `tags.history.retention` (one replica, under the job's lease). */
export function tagHistoryPruneJob(store: Pick<TagsMetadata, 'pruneHistory'>, retentionMs: number, everyMs = 3_600_000): Job {
  return {
    name: 'tag-history-prune',
    schedule: { everyMs },
    async run() {
      const pruned = await store.pruneHistory(new Date(Date.now() - retentionMs));
      return { summary: { pruned }, idle: pruned === 0 };
    },
  };
}
