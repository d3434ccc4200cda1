import type { Logger } from 'pino';
import type { AuthStore, SessionRows } from './auth/ports.js';
import type { BrowseQueries } from './browse/ports.js';
import type { OidcStore } from './auth/oidc/ports.js';
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
import { KyselyMetricsStore } from './metadata/metrics-store.js';
import type { MetadataObserver, MetricsQueries } from './metrics/ports.js';
import { openSealer } from './secrets/index.js';
import { openBlobStore } from './storage/index.js';
import type { RetentionStore } from './retention/ports.js';
import type { TagsMetadata } from './tags/ports.js';
import type { QuotaStore } from './quotas/ports.js';
import type { WebhookStore } from './webhooks/ports.js';
import type { SupplyChainStore, VulnDbStore, VulnPolicyStore } from './scanning/ports.js';
import type { SignatureStore } from './signatures/ports.js';
import type { RegistryEndpointStore } from './registries/ports.js';
import type { ProxyCacheStore } from './registries/proxy-ports.js';
import type { ReplicationStore } from './replication/ports.js';

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
  /** Retention policies and their runs (src/retention). */
  retention: RetentionStore;
  /** Immutable tag rules and tag history (src/tags). */
  tags: TagsMetadata;
  /** The counts behind the metrics' inventory gauges (src/metrics/ports.ts). */
  metricsQueries: MetricsQueries;
  /** Storage quota limits and usage per project (src/quotas). */
  quotas: QuotaStore;
  /** Webhook policies and the delivery queue and log (src/webhooks). */
  webhooks: WebhookStore;
  /** Signature trust policies per project (src/signatures). */
  signatures: SignatureStore;
  /** The offline vulnerability database: OSV advisories and import runs (src/scanning). */
  vulndb: VulnDbStore;
  /** Scan/SBOM on push settings, the durable queue of that work, and rescans after imports (src/scanning). */
  supplyChain: SupplyChainStore;
  /** Vulnerability pull policies per project (src/scanning/policy.ts). */
  vulnPolicies: VulnPolicyStore;
  /** OIDC users' provider identities and registry CLI secrets (src/auth/oidc). */
  oidc: OidcStore;
  /** Browser sessions of the web UI (src/auth/sessions.ts). */
  sessions: SessionRows;
  /** The web UI's listings, searches and badges (src/browse). */
  browse: BrowseQueries;
  /** Remote registry endpoints for replication and pull-through cache projects (src/registries). */
  registries: RegistryEndpointStore;
  /** Pull-through cache projects, cached manifests and tags (src/registries). */
  proxyCache: ProxyCacheStore;
  /** Replication policies, executions, tasks and upload checkpoints (src/replication). */
  replication: ReplicationStore;
  close(): Promise<void>;
}

/** What metrics wrap or observe in the adapters (the server passes it when metrics are on). */
export interface StoreInstruments {
  /** Wraps the BlobStore adapter once: every operation timed by driver and action. */
  blobs(store: BlobStore, driver: string): BlobStore;
  metadata: MetadataObserver;
}

export async function openStores(config: BerthConfig, logger?: Logger, instruments?: StoreInstruments): Promise<Stores> {
  const sealer = openSealer(config.secrets);
  const [opened, adapters] = await Promise.all([
    openBlobStore(config),
    openMetadataAdapters(config, logger, sealer, instruments?.metadata),
  ]);
  const blobs = instruments ? instruments.blobs(opened, config.storage.s3 ? 's3' : 'filesystem') : opened;
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
    // Webhook policy secrets and Authorization headers likewise.
    const webhookSecrets = await adapters.webhooks.sealStoredSecrets().catch(async (err: unknown) => {
      await close().catch(() => undefined);
      throw err;
    });
    if (webhookSecrets > 0) logger?.info({ sealed: webhookSecrets }, 'sealed webhook secrets stored in plain text with the secrets key');
    // Registry endpoint credentials likewise.
    const endpointSecrets = await adapters.registries.sealStoredSecrets().catch(async (err: unknown) => {
      await close().catch(() => undefined);
      throw err;
    });
    if (endpointSecrets > 0)
      logger?.info({ sealed: endpointSecrets }, 'sealed registry endpoint credentials stored in plain text with the secrets key');
  }
  return { blobs, ...adapters, sealer, metricsQueries: new KyselyMetricsStore(adapters.metadata.db, adapters.metadata.dialect), close };
}
