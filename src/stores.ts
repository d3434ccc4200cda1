import type { Logger } from 'pino';
import type { AuthStore } from './auth/ports.js';
import type { BerthConfig } from './config/schema.js';
import type { BlobStore, StorageUsageQueries } from './core/ports.js';
import type { SecretSealer } from './core/secrets.js';
import type { OutboxStore } from './events/ports.js';
import type { FsckMetadata } from './fsck/types.js';
import type { GcMetadata } from './gc/ports.js';
import type { LeaseStore } from './jobs/leases.js';
import type { JobRunStore } from './jobs/ports.js';
import { openMetadataAdapters } from './metadata/index.js';
import type { KyselyMetadataStore } from './metadata/kysely-store.js';
import { openSealer } from './secrets/index.js';
import { openBlobStore } from './storage/index.js';

/**
 * The composition root's half that picks adapters: every port Berth uses, opened on the
 * back ends the configuration names. The server, the CLI commands and the tests open their
 * stores here; feature folders receive ports and never build adapters themselves.
 */
export interface Stores {
  blobs: BlobStore;
  metadata: KyselyMetadataStore;
  /** The domain-event outbox (core appends through the metadata transaction; src/events reads). */
  outbox: OutboxStore;
  /** History of background job runs. */
  jobs: JobRunStore;
  auth: AuthStore;
  gc: GcMetadata;
  /** Storage accounting per repository and project (a core port; policies such as quotas read it). */
  usage: StorageUsageQueries;
  leases: LeaseStore;
  fsck: FsckMetadata;
  /** Seals secrets at rest (a no-op pass-through without a secrets key): docs/security.md#secrets-at-rest. */
  sealer: SecretSealer;
  close(): Promise<void>;
}

export async function openStores(config: BerthConfig, logger?: Logger): Promise<Stores> {
  const sealer = openSealer(config.secrets);
  const [blobs, adapters] = await Promise.all([openBlobStore(config), openMetadataAdapters(config, logger, sealer)]);
  const close = async () => {
    await Promise.all([adapters.metadata.close(), blobs.close()]);
  };
  if (sealer.enabled) {
    // Keys stored before the secrets key was configured are sealed now; a wrong key stops here.
    const sealed = await adapters.auth.sealSigningKeys().catch(async (err: unknown) => {
      await close().catch(() => undefined);
      throw err;
    });
    if (sealed > 0) logger?.info({ sealed }, 'sealed token signing keys stored in plain text with the secrets key');
  }
  return { blobs, ...adapters, sealer, close };
}
