import type { BerthConfig } from '../config/schema.js';
import type { BlobStore } from '../core/ports.js';
import { FilesystemBlobStore } from './filesystem.js';

/** Opens the blob store the configuration names. */
export async function openBlobStore(config: BerthConfig): Promise<BlobStore> {
  return new FilesystemBlobStore(config.storage.filesystem!.rootdirectory!).init();
}
