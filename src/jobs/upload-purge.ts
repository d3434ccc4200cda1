import type { Logger } from 'pino';
import type { UploadService } from '../core/uploads.js';
import { withLease, type LeaseStore } from './leases.js';
import type { Job } from './scheduler.js';

export const UPLOAD_PURGE_LEASE = 'upload-purge';

/**
 * Deletes upload sessions idle for longer than `maxAgeMs`, with their staged bytes. With
 * `leases`, only one process (replica or `berth gc`) purges at a time.
 */
export function uploadPurgeJob(uploads: UploadService, maxAgeMs: number, intervalMs: number, logger: Logger, leases?: LeaseStore): Job {
  return {
    name: 'upload-purge',
    intervalMs,
    async run() {
      const purged = await purgeUploads(uploads, maxAgeMs, leases);
      if (purged > 0) logger.info({ purged }, 'purged abandoned upload sessions');
    },
  };
}

/** Purges abandoned sessions under the upload-purge lease; 0 when another process holds it. */
export async function purgeUploads(uploads: UploadService, maxAgeMs: number, leases?: LeaseStore): Promise<number> {
  const purge = () => uploads.purgeOlderThan(new Date(Date.now() - maxAgeMs));
  if (!leases) return purge();
  const outcome = await withLease(leases, UPLOAD_PURGE_LEASE, purge);
  return outcome.acquired ? outcome.value : 0;
}
