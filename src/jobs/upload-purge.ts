import type { UploadService } from '../core/uploads.js';
import { withLease, type LeaseStore } from './leases.js';
import type { Job } from './scheduler.js';

export const UPLOAD_PURGE_LEASE = 'upload-purge';

/** Deletes upload sessions idle for longer than `maxAgeMs`, with their staged bytes (one process at a time: the job's lease). */
export function uploadPurgeJob(uploads: UploadService, maxAgeMs: number, intervalMs: number): Job {
  return {
    name: UPLOAD_PURGE_LEASE,
    schedule: { everyMs: intervalMs },
    async run() {
      const purged = await uploads.purgeOlderThan(new Date(Date.now() - maxAgeMs));
      return { summary: { purged }, idle: purged === 0 };
    },
  };
}

/** Purges abandoned sessions under the upload-purge lease (for `berth gc`); 0 when another process holds it. */
export async function purgeUploads(uploads: UploadService, maxAgeMs: number, leases: LeaseStore): Promise<number> {
  const outcome = await withLease(leases, UPLOAD_PURGE_LEASE, () => uploads.purgeOlderThan(new Date(Date.now() - maxAgeMs)));
  return outcome.acquired ? outcome.value : 0;
}
