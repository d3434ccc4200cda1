import type { Logger } from 'pino';
import { durationMs, type BerthConfig } from '../config/schema.js';
import type { SecretSealer } from '../core/secrets.js';
import { KyselyFsckStore } from './fsck-store.js';
import { KyselyGcStore } from './gc-store.js';
import { KyselyJobRunStore } from './jobs-store.js';
import { transactionOf, type KyselyMetadataStore } from './kysely-store.js';
import { KyselyOutboxStore } from './outbox-store.js';
import type { MysqlOptions } from './mysql.js';
import type { PostgresOptions } from './postgres.js';
import { SealedAuthStore } from './sealed-auth-store.js';
import { KyselySessionStore } from './session-store.js';
import { KyselyBrowseStore } from './browse-store.js';
import { openSqliteMetadata } from './sqlite.js';
import type { MetadataObserver } from '../metrics/ports.js';
import { KyselyWebhookStore } from './webhook-store.js';
import { KyselyRetentionStore } from './retention-store.js';
import { KyselyTagsStore } from './tags-store.js';
import { KyselyQuotaStore } from './quota-store.js';
import { KyselySignatureStore } from './signature-store.js';
import { KyselyVulnDbStore } from './vulndb-store.js';
import { KyselySupplyChainStore } from './supply-chain-store.js';
import { KyselyVulnPolicyStore } from './vuln-policy-store.js';
import { KyselyOidcStore } from './oidc-store.js';
import { KyselyRegistryEndpointStore } from './registry-endpoint-store.js';
import { KyselyProxyCacheStore } from './proxy-cache-store.js';
import { KyselyReplicationStore } from './replication-store.js';

/** Opens (and migrates) the metadata store the configuration names. */
export async function openMetadataStore(config: BerthConfig, logger?: Logger, observer?: MetadataObserver): Promise<KyselyMetadataStore> {
  switch (config.metadata.driver) {
    case 'sqlite':
      return openSqliteMetadata(config.metadata.path!, observer);
    case 'postgres': {
      // Loaded on demand: embedded (SQLite) installs never pay for the pg driver's memory.
      const { openPostgresMetadata } = await import('./postgres.js');
      return openPostgresMetadata({ ...postgresOptions(config, logger), observer });
    }
    case 'mysql': {
      // Loaded on demand, like pg: only MySQL/MariaDB deployments load mysql2.
      const { openMysqlMetadata } = await import('./mysql.js');
      return openMysqlMetadata({ ...mysqlOptions(config, logger), observer });
    }
  }
}

/**
 * Every metadata port on one database: the registry's own (core) and the feature ports
 * (outbox, job history, auth, gc and leases, fsck). Only the composition root (src/stores.ts) calls this.
 * `sealer` seals secrets at rest (src/secrets' openSealer; required so that no caller forgets it).
 */
export async function openMetadataAdapters(
  config: BerthConfig,
  logger: Logger | undefined,
  sealer: SecretSealer,
  observer?: MetadataObserver,
) {
  const metadata = await openMetadataStore(config, logger, observer);
  // GC keeps manifests a tag pointed to within the tag history window (tags.history.protectgc).
  const history = config.tags.history;
  const gc = new KyselyGcStore(metadata.db, metadata.dialect, transactionOf, history.protectgc ? durationMs(history.retention) : null);
  return {
    metadata,
    outbox: new KyselyOutboxStore(metadata.db, metadata.dialect, transactionOf),
    jobs: new KyselyJobRunStore(metadata.db, metadata.dialect),
    // Token signing keys sealed at rest when a secrets key is configured (docs/security.md#secrets-at-rest).
    auth: new SealedAuthStore(metadata.db, metadata.dialect, sealer),
    gc,
    usage: gc,
    leases: gc,
    fsck: new KyselyFsckStore(metadata.db, metadata.dialect),
    // Webhook policies' secrets and Authorization headers sealed at rest like the signing keys.
    webhooks: new KyselyWebhookStore(metadata.db, metadata.dialect, sealer, transactionOf),
    retention: new KyselyRetentionStore(metadata.db, metadata.dialect, transactionOf),
    tags: new KyselyTagsStore(metadata.db, metadata.dialect, transactionOf),
    quotas: new KyselyQuotaStore(metadata.db, metadata.dialect, transactionOf),
    // Signature trust policies and the counters verdict caches compare with (src/signatures).
    signatures: new KyselySignatureStore(metadata.db, metadata.dialect, transactionOf),
    // The offline vulnerability database: OSV advisories and their import runs (src/scanning).
    vulndb: new KyselyVulnDbStore(metadata.db, metadata.dialect, transactionOf),
    // Scan/SBOM on push settings, their durable work queue and the rescans after an import (src/scanning).
    supplyChain: new KyselySupplyChainStore(metadata.db, metadata.dialect, transactionOf),
    // Vulnerability pull policies and the counters verdict caches compare with (src/scanning/policy.ts).
    vulnPolicies: new KyselyVulnPolicyStore(metadata.db, metadata.dialect, transactionOf),
    // OIDC users' provider identities and CLI secrets (src/auth/oidc).
    oidc: new KyselyOidcStore(metadata.db, metadata.dialect),
    // Browser sessions of the web UI, shared by every replica (src/auth/sessions.ts).
    sessions: new KyselySessionStore(metadata.db),
    // The web UI's listings, searches and badges (src/browse).
    browse: new KyselyBrowseStore(metadata.db, metadata.dialect),
    // Remote registry endpoints, credentials sealed at rest (src/registries).
    registries: new KyselyRegistryEndpointStore(metadata.db, metadata.dialect, sealer),
    // Pull-through cache projects and the manifests and tags fetched for them (src/registries).
    proxyCache: new KyselyProxyCacheStore(metadata.db, metadata.dialect),
    // Replication policies, executions, tasks, upload checkpoints (src/replication).
    replication: new KyselyReplicationStore(metadata.db, metadata.dialect),
  };
}

/** The pool settings of `metadata:` (url, pool.*, statementtimeout), the same keys for PostgreSQL and MySQL. */
function poolOptions(config: BerthConfig, database: string, logger?: Logger) {
  const { url, pool, statementtimeout } = config.metadata;
  if (!url) throw new Error(`metadata.url is required when metadata.driver is ${config.metadata.driver}`);
  return {
    url,
    poolMax: pool.max,
    connectTimeoutMs: durationMs(pool.connecttimeout),
    idleTimeoutMs: durationMs(pool.idletimeout),
    statementTimeoutMs: durationMs(statementtimeout),
    onPoolError: (err: Error) => logger?.warn({ err }, `idle ${database} connection failed; it will be replaced`),
  };
}

/** The pg pool settings of `metadata:`. */
export function postgresOptions(config: BerthConfig, logger?: Logger): PostgresOptions {
  return poolOptions(config, 'PostgreSQL', logger);
}

/** The mysql2 pool settings of `metadata:`. */
export function mysqlOptions(config: BerthConfig, logger?: Logger): MysqlOptions {
  return poolOptions(config, 'MySQL', logger);
}
