import type { Logger } from 'pino';
import { auditSinkConsumers } from './audit/index.js';
import { auditConsumer } from './auth/audit-consumer.js';
import { LdapSource } from './auth/ldap/index.js';
import { projectPolicy } from './auth/project-policy.js';
import { sessionPurgeJob } from './auth/sessions.js';
import { OidcService } from './auth/oidc/service.js';
import type { PasswordSource } from './auth/sources.js';
import { usesExternalIssuer } from './config/auth.js';
import { durationMs, type BerthConfig } from './config/schema.js';
import type { EventConsumer } from './core/events.js';
import { NO_METRICS, type MetricsRegistry } from './core/metrics.js';
import { PolicyHooks } from './core/policies.js';
import { PullCounter, pulledEvents } from './core/pulls.js';
import { Registry } from './core/registry.js';
import { dispatchJob, EventDispatcher, pruneJob } from './events/dispatcher.js';
import { createGc, gcJob, type GcComponents } from './gc/index.js';
import { gcRacePolicy } from './gc/race-policy.js';
import { gcReviewConsumer } from './gc/review-consumer.js';
import { jobHistoryPruneJob } from './jobs/history.js';
import type { Job } from './jobs/scheduler.js';
import { uploadPurgeJob } from './jobs/upload-purge.js';
import { readOnlyPolicy } from './policies/read-only.js';
import { quotaPolicy, QuotaService } from './quotas/index.js';
import type { Stores } from './stores.js';
import { createWebhooks, webhookMetrics, type WebhookComponents } from './webhooks/index.js';
import { RetentionService } from './retention/service.js';
import { proxyCachePolicyOnBind } from './retention/policy.js';
import { ImmutableRules, immutableTagsPolicy, tagHistoryPolicy, tagHistoryPruneJob, TagsService } from './tags/index.js';
import { coreArtifactReader, signaturePolicy, SignatureService, TrustCache, violationRecorder } from './signatures/index.js';
import { readFileSync } from 'node:fs';
import type { AuthService } from './auth/service.js';
import type { Identity } from './auth/identity.js';
import { HarborScanner, ScannerError, type PullCredentials } from './scanning/harbor.js';
import { ArtifactScanner } from './scanning/scanner.js';
import { supplyChainConsumer, SupplyChainService } from './scanning/supply-chain.js';
import { supplyChainMetrics } from './scanning/metrics.js';
import { vulnerabilityPolicy, VulnPolicyService, VulnVerdictCache, vulnViolationRecorder } from './scanning/index.js';
import { coreArtifactStore, SbomService } from './sbom/index.js';
import { sqliteRpmDbReader } from './metadata/rpmdb.js';
import path from 'node:path';
import { RegistryService } from './registries/service.js';
import { ProxyCache, proxyMetrics } from './registries/proxy-cache.js';
import { proxyCachePolicy } from './registries/proxy-policy.js';
import { ProxyCacheService } from './registries/proxy-service.js';
import { openRegistryClient } from './registries/open-client.js';
import { LocalRegistry, ReplicationService } from './replication/index.js';

/**
 * The composition root's other half: core, its policies, event consumers and jobs, wired on
 * the stores. The server and the CLI share it. A new feature registers here — a policy on a
 * hook, a consumer of the outbox, a job — and touches no route handler or SQL adapter.
 */
export interface Composition {
  /** OIDC single sign-on: providers, their password sources, browser login and CLI secrets (src/auth/oidc). */
  oidc: OidcService;
  registry: Registry;
  policies: PolicyHooks;
  pulls: PullCounter;
  events: EventDispatcher;
  gc: GcComponents;
  /** Every background job, for the scheduler (server) to run. */
  jobs: Job[];
  /** Retention policies, their runs and the job that runs them on their schedules (src/retention). */
  retention: RetentionService;
  /** Immutable tag rules, tag history and rollback (src/tags). */
  tags: TagsService;
  /** Where features register their Prometheus series (NO_METRICS when metrics are off or in the CLI). */
  metrics: MetricsRegistry;
  /** Storage quotas: limits and usage per project (admin API, CLI). */
  quotas: QuotaService;
  /** Webhooks: the outbox consumer, the delivery job, and the service of the admin API and CLI (src/webhooks). */
  webhooks: WebhookComponents;
  /** Signature trust policies and artifact signature status (src/signatures). */
  signatures: SignatureService;
  /** Vulnerability scans of artifacts against the offline OSV database (src/scanning). */
  scanning: ArtifactScanner;
  /** Vulnerability pull policies per project (src/scanning/policy.ts). */
  vulnPolicy: VulnPolicyService;
  /** SBOMs of images: generated from their layers or pushed by clients, attached as OCI referrers (src/sbom). */
  sbom: SbomService;
  /** SBOM and scan on push per project, backfills, rescans after a database import (src/scanning/supply-chain.ts). */
  supplyChain: SupplyChainService;
  /** Remote registry endpoints, for the admin API, the CLI, replication and cache projects (src/registries). */
  registries: RegistryService;
  /** Pull-through cache: core's read-through source for cache projects (or the mirror), and its bindings service. */
  proxyCache: { cache: ProxyCache; service: ProxyCacheService };
  /** Replication policies, executions, the leased job and the push consumer (src/replication). */
  replication: ReplicationService;
}

export function compose(config: BerthConfig, stores: Stores, logger: Logger, metrics: MetricsRegistry = NO_METRICS): Composition {
  const { blobs, metadata } = stores;

  const policies = new PolicyHooks();
  if (config.storage.maintenance.readonly.enabled) policies.register(readOnlyPolicy());
  policies.register(gcRacePolicy(stores.gc));
  // Projects are created by their first write and pushes re-checked against current roles, where Berth knows the identities.
  if (config.auth.mode !== 'none' && !usesExternalIssuer(config.auth)) policies.register(projectPolicy(config.auth, stores.auth));
  // Immutable tags refuse moves and deletes of the tags a project's rules protect.
  const immutableRules = new ImmutableRules();
  policies.register(immutableTagsPolicy(stores.tags, immutableRules));
  // Storage quotas: usage kept on every push and removal, limits enforced under the project's row lock.
  policies.register(quotaPolicy(stores.quotas, metadata, { warningPercent: config.quotas.warning }, logger));
  // Signatures: a pull of a manifest without a valid signature is refused (enforce) or recorded (audit), per project;
  // verdicts are cached per project until its policy, keys or signatures change. Blobs are read through core's Registry.
  const auditWriter = config.auth.mode !== 'none' ? stores.auth.auditWithin.bind(stores.auth) : null;
  const trustCache = new TrustCache(stores.signatures);
  const artifacts = coreArtifactReader(metadata, (repository, digest) => registry.findBlob(repository, digest));
  policies.register(signaturePolicy(stores.signatures, trustCache, artifacts, violationRecorder(metadata, auditWriter, logger)));
  // Vulnerabilities: a pull of a manifest whose last scan has findings at or above the project's threshold (or unscanned,
  // when the policy says so) is refused or recorded; verdicts cached like signatures', signature artifacts exempt alike.
  const vulnCache = new VulnVerdictCache(stores.vulnPolicies);
  const vulnReads = {
    scans: stores.vulndb,
    isExempt: (repository: string, digest: string) => trustCache.isArtifact(artifacts, repository, digest),
  };
  policies.register(vulnerabilityPolicy(stores.vulnPolicies, vulnCache, vulnReads, vulnViolationRecorder(metadata, auditWriter, logger)));
  // Keep last: tag history records each tag change once every policy above has agreed to it.
  policies.register(tagHistoryPolicy(stores.tags));

  const consumers: EventConsumer[] = [gcReviewConsumer(stores.gc)];
  // /v2 deletes into the audit log, exactly once (with auth: none there is no one to record).
  if (config.auth.mode !== 'none') consumers.push(auditConsumer(stores.auth));
  // Audit export (audit.sinks): each sink reads the audit.recorded events after its own cursor.
  consumers.push(...auditSinkConsumers(config.audit.sinks));
  // Webhooks: each event queued once per endpoint that wants it; sent by their own job, never in the outbox round.
  const webhooks = createWebhooks(config, {
    store: stores.webhooks,
    leases: stores.leases,
    logger,
    observer: webhookMetrics(metrics, stores.webhooks),
  });
  consumers.push(webhooks.consumer);
  // SBOM and scan on push: a pushed image of a project that asked for them is queued in the cursor's transaction.
  consumers.push(supplyChainConsumer(stores.supplyChain));
  // Replication: push-triggered policies queue an execution per push; the leased job runs executions.
  const replicationConfig = config.replication;
  const replication = new ReplicationService({
    store: stores.replication,
    endpoint: (name) => stores.registries.byName(name),
    open: (endpoint) => openRegistryClient(endpoint, { retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 5_000 } }),
    local: () => new LocalRegistry(registry),
    logger,
    metrics,
    emit: (event) => metadata.transaction((tx) => tx.events.append([event], null)),
    tuning: {
      tickMs: durationMs(replicationConfig.interval),
      chunkSize: replicationConfig.chunksize,
      attempts: replicationConfig.attempts,
      taskAttempts: replicationConfig.taskattempts,
      baseDelayMs: durationMs(replicationConfig.backoff),
      leaseTtlMs: durationMs(replicationConfig.leasettl),
    },
  });
  consumers.push(replication.consumer());
  const events = new EventDispatcher(metadata, stores.outbox, consumers, logger);

  // Each flush also appends one aggregated manifest.pulled event per manifest (webhooks' pull events).
  const pulls = new PullCounter((counts) => metadata.recordPulls(counts, pulledEvents(counts)));
  const registry = new Registry(
    blobs,
    metadata,
    {
      deleteEnabled: config.storage.delete.enabled,
      maxManifestSize: config.limits.manifestsize,
      maxBlobSize: config.limits.blobsize,
      maxConcurrentUploads: config.limits.uploads,
      maxPageSize: config.limits.pagesize,
      // Several processes may write an upload session unless this is the one process on its SQLite file.
      claimUploadWriters: !(config.metadata.driver === 'sqlite' && config.server.workers === 1),
    },
    policies,
    pulls,
  );
  // Pull-through cache projects (and proxy.remoteurl): reads of their repositories go through
  // core's ReadThrough seam; writes are refused by the proxy-cache policy.
  const proxyConfig = config.proxy;
  const proxyCache = new ProxyCache(
    stores.proxyCache,
    stores.registries,
    {
      blobs,
      link: (repository, digest, size, lastAppendAt) => registry.linkCachedBlob(repository, digest, size, lastAppendAt),
      spoolDir: path.join(config.data.dir, 'proxy-spool'),
    },
    {
      core: {
        byDigest: (repository, digest) => metadata.manifests.get(repository, digest),
        byTag: (repository, tag) => metadata.manifests.byTag(repository, tag),
        store: async (repository, reference, payload, mediaType) =>
          void (await registry.storeCachedManifest(repository, reference, payload, mediaType)),
        admitBlob: (repository, digest, size) => registry.admitCachedBlob(repository, digest, size),
        deleteTag: (repository, tag, digest) => registry.deleteCachedTag(repository, tag, digest),
      },
      upstreamTimeoutMs: durationMs(proxyConfig.upstreamtimeout),
      refreshMs: 10_000,
      defaultTagTtlMs: durationMs(proxyConfig.tagttl),
      keepDeletedTags: proxyConfig.keepdeletedtags,
      linked: (repository, digest) => metadata.repositories.linkedBlob(repository, digest),
      onFillFailed: (repository, digest, err) =>
        logger.warn(
          { repository, digest, err: err.message, stack: process.env.BERTH_DEBUG_FILL ? err.stack : undefined },
          'pull-through cache: blob download failed; nothing was stored',
        ),
    },
    proxyMetrics(metrics),
    proxyConfig.remoteurl
      ? {
          remoteurl: proxyConfig.remoteurl,
          username: proxyConfig.username,
          password: proxyConfig.password,
          tagTtlMs: durationMs(proxyConfig.tagttl),
        }
      : null,
  );
  registry.attachReadThrough(proxyCache);
  policies.register(proxyCachePolicy(proxyCache, proxyConfig.remoteurl ?? null));
  // GC reviews what the outbox says may be garbage: deliver pending events before each run.
  const gc = createGc(config, blobs, stores.gc, stores.leases, logger, () => events.drain(stores.leases), policies);

  const eventsConfig = config.events;
  const jobs: Job[] = [
    dispatchJob(events, durationMs(eventsConfig.interval)),
    pruneJob(
      stores.outbox,
      events.consumerNames,
      durationMs(eventsConfig.retention),
      Math.min(durationMs(eventsConfig.retention), 3_600_000),
    ),
    pullFlushJob(pulls, durationMs(eventsConfig.pullflushinterval)),
    jobHistoryPruneJob(stores.jobs),
    sessionPurgeJob(stores.sessions, { ttlMs: durationMs(config.ui.sessionttl), idleMs: durationMs(config.ui.sessionidle) }),
  ];
  const purging = config.storage.maintenance.uploadpurging;
  if (purging.enabled) jobs.push(uploadPurgeJob(registry.uploads, durationMs(purging.age), durationMs(purging.interval)));
  if (config.gc.enabled) jobs.push(gcJob(gc.collector, config.gc.schedule));
  const historyRetentionMs = durationMs(config.tags.history.retention);
  jobs.push(tagHistoryPruneJob(stores.tags, historyRetentionMs));
  // Rule changes are audited in their own transaction (with auth: none there is no one to record).
  const auditRuleChanges = config.auth.mode !== 'none' ? stores.auth.auditWithin.bind(stores.auth) : null;
  const tags = new TagsService(metadata, stores.tags, immutableRules, registry, auditRuleChanges, { historyRetentionMs });
  // Retention deletes tags through core (hooks, events); its job runs each project's policy on the policy's cron.
  const retention = new RetentionService(registry, metadata, stores.retention, stores.leases, logger);
  jobs.push(retention.job());
  jobs.push(...webhooks.jobs);
  jobs.push(replication.job(), replication.pruneJob(durationMs(config.replication.retention)));
  logger.debug({ policies: policies.describe(), consumers: events.consumerNames, jobs: jobs.map((j) => j.name) }, 'composed');
  const signatures = new SignatureService(metadata, stores.signatures, trustCache, artifacts, auditWriter);
  // SBOMs read the layers through core and attach as referrers through core's write path; scans list packages from them.
  const sbom = new SbomService(coreArtifactStore(registry, metadata), sqliteRpmDbReader, {
    registryHost: config.http.host ? new URL(config.http.host).host : config.http.addr,
  });
  const scanning = new ArtifactScanner(
    metadata,
    stores.vulndb,
    { name: 'sbom', packagesOf: (repository, digest) => sbom.packages(repository, digest) },
    Date.now,
    { store: stores.vulnPolicies, committed: () => vulnCache.touch() },
    harborScanner(config),
  );
  const vulnPolicy = new VulnPolicyService(metadata, stores.vulnPolicies, vulnCache, auditWriter);
  // The queue worker and the rescan after a database import (leased jobs, never on a push's path); SBOMs reach it as a port.
  const sbomPort = {
    generate: (repository: string, digest: string) => sbom.generate(repository, digest, { actor: null }),
    has: async (repository: string, digest: string) => (await sbom.find(repository, digest)).length > 0,
  };
  const supplyChain = new SupplyChainService(metadata, stores.supplyChain, stores.vulndb, scanning, sbomPort, {
    concurrency: config.scanning.concurrency,
    intervalMs: durationMs(config.scanning.interval),
    rescanIntervalMs: durationMs(config.scanning.rescaninterval),
    rescanBatch: config.scanning.rescanbatch,
  });
  jobs.push(...supplyChain.jobs());
  supplyChainMetrics(metrics, stores.vulndb, stores.supplyChain);
  const oidc = new OidcService(config.auth.oidc, stores.oidc);
  const registries = new RegistryService(stores.registries);
  registries.addUsageCheck(async (endpoint) =>
    (await stores.replication.policiesUsing(endpoint.name)).map((p) => `replication policy ${p}`),
  );
  const proxyService = new ProxyCacheService(
    stores.proxyCache,
    stores.registries,
    proxyCache,
    proxyCachePolicyOnBind(stores.retention, durationMs(proxyConfig.ttl)),
  );
  registries.addUsageCheck((endpoint) => proxyService.usersOf(endpoint.id));
  return {
    oidc,
    registry,
    policies,
    pulls,
    events,
    gc,
    jobs,
    metrics,
    quotas: new QuotaService(stores.quotas),
    tags,
    retention,
    webhooks,
    signatures,
    scanning,
    vulnPolicy,
    sbom,
    supplyChain,
    registries,
    proxyCache: { cache: proxyCache, service: proxyService },
    replication,
  };
}

/** The Harbor scanner adapter client (scanning.scanner.kind: harbor), or null for the built-in matcher; the server attaches its credentials. */
function harborScanner(config: BerthConfig): HarborScanner | null {
  const s = config.scanning.scanner;
  if (s.kind !== 'harbor') return null;
  const authorization = s.authorizationfile !== undefined ? readFileSync(s.authorizationfile, 'utf8').trim() : s.authorization;
  return new HarborScanner({ url: s.url!, authorization, timeoutMs: durationMs(s.timeout), pollIntervalMs: durationMs(s.pollinterval) });
}

/**
 * The credential a Harbor scanner adapter pulls with: a registry token of Berth's own token
 * server holding `repository:<name>:pull` and nothing else, for the one who asked for the scan
 * (so never more than they hold), living no longer than the scan's timeout (and at most
 * auth.token.expiration). With auth.mode none the adapter needs none. Basic mode and an
 * external issuer have no tokens to hand out: the scan fails saying so.
 */
export function scannerCredentials(config: BerthConfig, auth: AuthService): PullCredentials {
  return {
    async pullOnly(repository, requester, lifetimeMs) {
      if (config.auth.mode === 'none') return null;
      if (!auth.issuer)
        throw new ScannerError(
          `a Harbor scanner adapter needs auth.mode token with Berth's own token server (auth.mode is ${config.auth.mode}${usesExternalIssuer(config.auth) ? ' with an external issuer' : ''}): Berth hands the adapter a short-lived pull-only token`,
        );
      const identity = (requester ?? { kind: 'anonymous' }) as Identity;
      if (identity.kind === 'anonymous')
        throw new ScannerError('a scan with a Harbor scanner adapter needs a signed-in caller: the pull token is issued on their behalf');
      const issued = await auth.issuer.issue(identity, [{ type: 'repository', name: repository, actions: ['pull'] }], lifetimeMs);
      return `Bearer ${issued.token}`;
    },
  };
}

/**
 * The external identity sources the Authenticator asks for Basic credentials of names that are
 * not local (src/auth/sources.ts), in the order asked: LDAP/AD (auth.ldap). A new source (OIDC
 * CLI secrets and ID tokens) is added here. The server passes them to the auth layer.
 */
export function passwordSources(config: BerthConfig, logger: Logger, oidc?: OidcService): PasswordSource[] {
  const sources: PasswordSource[] = [];
  if (config.auth.mode === 'none') return sources;
  // OIDC first: it answers a plain password at once (only CLI secrets and JWTs are its), without a directory round trip.
  if (oidc) sources.push(...oidc.sources());
  if (config.auth.ldap) sources.push(new LdapSource(config.auth.ldap, logger));
  return sources;
}

/** Each process writes the pull counts it gathered (no lease: the counts are its own). */
function pullFlushJob(pulls: PullCounter, everyMs: number): Job {
  return {
    name: 'pull-flush',
    schedule: { everyMs },
    scope: 'process',
    // Each worker of a cluster flushes the counts it gathered.
    local: true,
    history: 'work',
    async run() {
      const manifests = await pulls.flush();
      return { summary: { manifests }, idle: manifests === 0 };
    },
  };
}
