import type { Logger } from 'pino';
import type { UploadService } from '../core/uploads.js';
import type { Job } from './scheduler.js';

/** Deletes upload sessions idle for longer than `maxAgeMs`, with their staged bytes. */
export function uploadPurgeJob(uploads: UploadService, maxAgeMs: number, intervalMs: number, logger: Logger): Job {
  return {
    name: 'upload-purge',
    intervalMs,
    async run() {
      const purged = await uploads.purgeOlderThan(new Date(Date.now() - maxAgeMs));
      if (purged > 0) logger.info({ purged }, 'purged abandoned upload sessions');
    },
  };
}
