import type { BerthConfig } from '../config/schema.js';
import type { BlobStore } from '../core/ports.js';
import { FilesystemBlobStore } from './filesystem.js';

/** Opens the blob store the configuration names: S3 when `storage.s3` is set, else the filesystem. */
export async function openBlobStore(config: BerthConfig): Promise<BlobStore> {
  if (config.storage.s3) {
    // Loaded on demand: the AWS SDK costs ~25 MB of memory that filesystem installs never need.
    const { S3BlobStore } = await import('./s3.js');
    return new S3BlobStore(config.storage.s3);
  }
  return new FilesystemBlobStore(config.storage.filesystem!.rootdirectory!).init();
}
