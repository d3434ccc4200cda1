import type { JobRunStore } from './ports.js';
import type { Job } from './scheduler.js';

/** Run history is kept this long… */
export const JOB_HISTORY_RETENTION_MS = 7 * 86_400_000;
/** …but the newest runs of each job are kept whatever their age. */
export const JOB_HISTORY_KEEP = 100;

/** Bounds the run history (busy replicas record an events round every second). */
export function jobHistoryPruneJob(history: JobRunStore, everyMs = 3_600_000): Job {
  return {
    name: 'job-history-prune',
    schedule: { everyMs },
    async run() {
      const pruned = await history.prune(new Date(Date.now() - JOB_HISTORY_RETENTION_MS), JOB_HISTORY_KEEP);
      return { summary: { pruned }, idle: pruned === 0 };
    },
  };
}
