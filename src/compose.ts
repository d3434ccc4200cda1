import type { Logger } from 'pino';
import { auditConsumer } from './auth/audit-consumer.js';
import { projectPolicy } from './auth/project-policy.js';
import { usesExternalIssuer } from './config/auth.js';
import { durationMs, type BerthConfig } from './config/schema.js';
import type { EventConsumer } from './core/events.js';
import { PolicyHooks } from './core/policies.js';
import { PullCounter } from './core/pulls.js';
import { Registry } from './core/registry.js';
import { dispatchJob, EventDispatcher, pruneJob } from './events/dispatcher.js';
import { createGc, gcJob, type GcComponents } from './gc/index.js';
import { gcRacePolicy } from './gc/race-policy.js';
import { gcReviewConsumer } from './gc/review-consumer.js';
import { jobHistoryPruneJob } from './jobs/history.js';
import type { Job } from './jobs/scheduler.js';
import { uploadPurgeJob } from './jobs/upload-purge.js';
import { readOnlyPolicy } from './policies/read-only.js';
import type { Stores } from './stores.js';

/**
 * The composition root's other half: core, its policies, event consumers and jobs, wired on
 * the stores. The server and the CLI share it. A new feature registers here — a policy on a
 * hook, a consumer of the outbox, a job — and touches no route handler or SQL adapter.
 */
export interface Composition {
  registry: Registry;
  policies: PolicyHooks;
  pulls: PullCounter;
  events: EventDispatcher;
  gc: GcComponents;
  /** Every background job, for the scheduler (server) to run. */
  jobs: Job[];
}

export function compose(config: BerthConfig, stores: Stores, logger: Logger): Composition {
  const { blobs, metadata } = stores;

  const policies = new PolicyHooks();
  if (config.storage.maintenance.readonly.enabled) policies.register(readOnlyPolicy());
  policies.register(gcRacePolicy(stores.gc));
  // Projects are created by their first write and pushes re-checked against current roles, where Berth knows the identities.
  if (config.auth.mode !== 'none' && !usesExternalIssuer(config.auth)) policies.register(projectPolicy(config.auth, stores.auth));

  const consumers: EventConsumer[] = [gcReviewConsumer(stores.gc)];
  // /v2 deletes into the audit log, exactly once (with auth: none there is no one to record).
  if (config.auth.mode !== 'none') consumers.push(auditConsumer(stores.auth));
  const events = new EventDispatcher(metadata, stores.outbox, consumers, logger);

  const pulls = new PullCounter((counts) => metadata.recordPulls(counts));
  const registry = new Registry(
    blobs,
    metadata,
    {
      deleteEnabled: config.storage.delete.enabled,
      maxManifestSize: config.limits.manifestsize,
      maxBlobSize: config.limits.blobsize,
      maxConcurrentUploads: config.limits.uploads,
      maxPageSize: config.limits.pagesize,
    },
    policies,
    pulls,
  );
  // GC reviews what the outbox says may be garbage: deliver pending events before each run.
  const gc = createGc(config, blobs, stores.gc, stores.leases, logger, () => events.drain(stores.leases));

  const eventsConfig = config.events;
  const jobs: Job[] = [
    dispatchJob(events, durationMs(eventsConfig.interval)),
    pruneJob(stores.outbox, events.consumerNames, durationMs(eventsConfig.retention), Math.min(durationMs(eventsConfig.retention), 3_600_000)),
    pullFlushJob(pulls, durationMs(eventsConfig.pullflushinterval)),
    jobHistoryPruneJob(stores.jobs),
  ];
  const purging = config.storage.maintenance.uploadpurging;
  if (purging.enabled) jobs.push(uploadPurgeJob(registry.uploads, durationMs(purging.age), durationMs(purging.interval)));
  if (config.gc.enabled) jobs.push(gcJob(gc.collector, config.gc.schedule));
  logger.debug({ policies: policies.describe(), consumers: events.consumerNames, jobs: jobs.map((j) => j.name) }, 'composed');
  return { registry, policies, pulls, events, gc, jobs };
}

/** Each process writes the pull counts it gathered (no lease: the counts are its own). */
function pullFlushJob(pulls: PullCounter, everyMs: number): Job {
  return {
    name: 'pull-flush',
    schedule: { everyMs },
    scope: 'process',
    history: 'work',
    async run() {
      const manifests = await pulls.flush();
      return { summary: { manifests }, idle: manifests === 0 };
    },
  };
}
