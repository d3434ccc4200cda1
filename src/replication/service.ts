import { Cron } from 'croner';
import picomatch from 'picomatch';
import { RegistryError } from '../core/errors.js';
import type { DomainEvent, EventConsumer, StoredEvent } from '../core/events.js';
import { isIndexMediaType } from '../core/media-types.js';
import type { MetricsRegistry } from '../core/metrics.js';
import type { Job } from '../jobs/scheduler.js';
import type { RegistryEndpoint } from '../registries/ports.js';
import { CopyEngine, emptyStats, type CopyResult, type RegistryAccess, type UploadCheckpoints } from './engine.js';
import { parseManifest, rewriteRepository } from './graph.js';
import { sleep } from '../client/retry.js';
import { backoff } from './limits.js';
import type {
  Execution,
  ExecutionScope,
  ReplicationPolicy,
  ReplicationPolicyInput,
  ReplicationStore,
  Task,
  TaskStatus,
  TriggerKind,
} from './ports.js';

/** Signature artifact types an `onlySigned` policy accepts as "signed". */
export const SIGNATURE_TYPES = [
  'application/vnd.dev.cosign.artifact.sig.v1+json',
  'application/vnd.cncf.notary.signature',
  'application/vnd.dev.sigstore.bundle.v0.3+json',
];
/** Tags of the referrers tag schema (`sha256-<hex>`): kept by the engine itself, never copied as tags. */
const REFERRERS_TAG = /^sha256-[0-9a-f]{64}$/;
const GLOB_CHARS = /[*?[\]{}!()+@]/;

export interface ReplicationLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ReplicationDeps {
  store: ReplicationStore;
  /** Registry endpoints by name (src/registries). */
  endpoint(name: string): Promise<RegistryEndpoint | null>;
  /** A client for an endpoint (src/registries openRegistryClient). */
  open(endpoint: RegistryEndpoint): RegistryAccess;
  /** This Berth (local.ts over core's Registry). */
  local(): RegistryAccess;
  logger: ReplicationLogger;
  metrics: MetricsRegistry;
  /** Appends a domain event to the outbox (its own transaction): `replication.finished` per execution. */
  emit?(event: DomainEvent): Promise<void>;
  /** Tuning for tests: per-blob tries and backoff, chunk size, task tries. */
  tuning?: { attempts?: number; baseDelayMs?: number; chunkSize?: number; taskAttempts?: number; tickMs?: number; leaseTtlMs?: number };
}

/**
 * Replication policies and their executions. An execution is a row: `run` (manual), the
 * cron check of the `replication` job, or the outbox consumer (push events) insert it as
 * pending; the `replication` job — a leased job, so one replica of a cluster runs it at a
 * time — picks pending rows and runs them one after the other. A row left `running` by a
 * process that died is picked again by the next lease holder and continues: artifacts done
 * are not redone (their tasks are kept; the destination is checked anyway) and blobs in
 * flight continue from their checkpoints (replication_uploads).
 */
export class ReplicationService {
  private readonly executionsTotal;
  private readonly artifactsTotal;
  private readonly bytesTotal;

  constructor(private readonly deps: ReplicationDeps) {
    this.executionsTotal = deps.metrics.counter<'direction' | 'status'>({
      name: 'berth_replication_executions_total',
      help: 'Replication executions finished, by direction and outcome',
      labels: ['direction', 'status'],
    });
    this.artifactsTotal = deps.metrics.counter<'direction' | 'status'>({
      name: 'berth_replication_artifacts_total',
      help: 'Artifacts handled by replication, by direction and outcome (copied, skipped, failed, deleted)',
      labels: ['direction', 'status'],
    });
    this.bytesTotal = deps.metrics.counter<'direction'>({
      name: 'berth_replication_bytes_total',
      help: 'Blob bytes sent to replication destinations',
      labels: ['direction'],
    });
  }

  // ── Policies ───────────────────────────────────────────────────────────────

  list(): Promise<ReplicationPolicy[]> {
    return this.deps.store.listPolicies();
  }

  async get(name: string): Promise<ReplicationPolicy> {
    const policy = await this.deps.store.policy(name);
    if (!policy) throw new RegistryError('NOT_FOUND', `replication policy ${name} does not exist`);
    return policy;
  }

  async create(input: ReplicationPolicyInput): Promise<ReplicationPolicy> {
    await this.validate(input);
    return this.deps.store.createPolicy(input, Date.now());
  }

  async update(name: string, patch: Partial<Omit<ReplicationPolicyInput, 'name'>>): Promise<ReplicationPolicy> {
    const current = await this.get(name);
    const next: ReplicationPolicyInput = { ...current, ...patch, name };
    await this.validate(next);
    const updated = await this.deps.store.updatePolicy(name, next, Date.now());
    if (!updated) throw new RegistryError('NOT_FOUND', `replication policy ${name} does not exist`);
    return updated;
  }

  async remove(name: string): Promise<void> {
    if (!(await this.deps.store.deletePolicy(name))) throw new RegistryError('NOT_FOUND', `replication policy ${name} does not exist`);
  }

  private async validate(p: ReplicationPolicyInput): Promise<void> {
    if (!(await this.deps.endpoint(p.registry)))
      throw new RegistryError('INVALID_ARGUMENT', `registry endpoint ${p.registry} does not exist`);
    if (p.trigger === 'cron') {
      if (!p.cron) throw new RegistryError('INVALID_ARGUMENT', 'trigger cron needs a cron expression');
      try {
        new Cron(p.cron, { paused: true }).stop();
      } catch (err) {
        throw new RegistryError('INVALID_ARGUMENT', `invalid cron expression "${p.cron}": ${(err as Error).message}`);
      }
    }
    if (p.trigger === 'event' && p.direction !== 'push')
      throw new RegistryError('INVALID_ARGUMENT', 'trigger event (on push) applies to push policies only');
    for (const glob of [...p.repositories, ...p.tags]) {
      try {
        picomatch.makeRe(glob);
      } catch {
        throw new RegistryError('INVALID_ARGUMENT', `invalid glob "${glob}"`);
      }
    }
  }

  // ── Executions ─────────────────────────────────────────────────────────────

  /** Queues an execution of the policy (the job runs it within a few seconds). */
  async run(name: string, trigger: TriggerKind = 'manual', scope: ExecutionScope | null = null): Promise<Execution> {
    const policy = await this.get(name);
    if (!policy.enabled && trigger !== 'manual') throw new RegistryError('CONFLICT', `replication policy ${name} is disabled`);
    return this.deps.store.createExecution(name, trigger, scope, Date.now());
  }

  executions(query: { policy?: string; before?: number; limit: number }): Promise<Execution[]> {
    return this.deps.store.listExecutions(query);
  }

  async execution(id: number): Promise<Execution> {
    const execution = await this.deps.store.execution(id);
    if (!execution) throw new RegistryError('NOT_FOUND', `replication execution ${id} does not exist`);
    return execution;
  }

  /** Stops an execution: a pending one at once, a running one before its next artifact (what is being copied finishes). */
  async stop(id: number): Promise<Execution> {
    const stopped = await this.deps.store.requestStop(id, Date.now());
    if (stopped) return stopped;
    const execution = await this.execution(id);
    throw new RegistryError(
      'CONFLICT',
      `replication execution ${id} is ${execution.status}: only a pending or running execution can be stopped`,
    );
  }

  async tasks(id: number, query: { status?: TaskStatus; after?: number; limit: number }): Promise<Task[]> {
    await this.execution(id);
    return this.deps.store.tasks(id, query);
  }

  /** The leased job: queues due cron executions, then runs every runnable execution in order. */
  job(): Job {
    return {
      name: 'replication',
      schedule: { everyMs: this.deps.tuning?.tickMs ?? 2000 },
      scope: 'lease',
      leaseTtlMs: this.deps.tuning?.leaseTtlMs,
      history: 'work',
      hasWork: async () => (await this.deps.store.runnable(1)).length > 0 || (await this.dueCronPolicies(Date.now())).length > 0,
      run: async (signal) => {
        const queued = await this.queueCron();
        const done: { id: number; policy: string; status: string }[] = [];
        for (;;) {
          // One at a time: while this job runs no other process holds its lease, so a running row is an orphan of a dead one.
          const [next] = await this.deps.store.runnable(1);
          if (!next || signal.aborted) break;
          const status = await this.execute(next, signal);
          done.push({ id: next.id, policy: next.policy, status });
        }
        return done.length === 0 && queued === 0 ? { idle: true } : { summary: { queued, executions: done } };
      },
    };
  }

  /** Bounds the execution history: finished executions older than `retentionMs` go with their tasks (the newest of each policy stays). */
  pruneJob(retentionMs: number): Job {
    return {
      name: 'replication-prune',
      schedule: { everyMs: 3_600_000 },
      run: async () => {
        const pruned = await this.deps.store.pruneExecutions(Date.now() - retentionMs);
        return { summary: { pruned }, idle: pruned === 0 };
      },
    };
  }

  /** Push-triggered policies: a `manifest.pushed` with tags in a matching repository queues an execution for them. */
  consumer(): EventConsumer {
    return {
      name: 'replication',
      transactional: false,
      handle: async (events: StoredEvent[]) => {
        const pushes = events
          .map((e) => e.event)
          .filter(
            (e): e is Extract<StoredEvent['event'], { type: 'manifest.pushed' }> => e.type === 'manifest.pushed' && e.tags.length > 0,
          );
        if (pushes.length === 0) return;
        const policies = (await this.deps.store.listPolicies()).filter((p) => p.enabled && p.trigger === 'event' && p.direction === 'push');
        for (const policy of policies) {
          const byRepo = new Map<string, Set<string>>();
          for (const push of pushes) {
            if (!matches(policy.repositories, push.repository)) continue;
            const tags = push.tags.filter((t) => matches(policy.tags, t));
            if (tags.length === 0) continue;
            const set = byRepo.get(push.repository) ?? new Set<string>();
            for (const t of tags) set.add(t);
            byRepo.set(push.repository, set);
          }
          for (const [repository, tags] of byRepo)
            await this.deps.store.createExecution(policy.name, 'event', { repository, tags: [...tags] }, Date.now());
        }
      },
    };
  }

  private async queueCron(): Promise<number> {
    const now = Date.now();
    const due = await this.dueCronPolicies(now);
    for (const policy of due) await this.deps.store.createExecution(policy, 'cron', null, now);
    return due.length;
  }

  /** The enabled cron policies whose next run after their last cron execution (or last change) is due at `now`. */
  private async dueCronPolicies(now: number): Promise<string[]> {
    const due: string[] = [];
    for (const policy of await this.deps.store.listPolicies()) {
      if (!policy.enabled || policy.trigger !== 'cron' || !policy.cron) continue;
      const last = await this.deps.store.lastExecution(policy.name, 'cron');
      const base = new Date(Math.max(last?.createdAt ?? 0, policy.updatedAt));
      const next = new Cron(policy.cron, { paused: true }).nextRun(base);
      if (next && next.getTime() <= now) due.push(policy.name);
    }
    return due;
  }

  /** Runs one execution to its end; returns its final status. */
  async execute(execution: Execution, signal: AbortSignal): Promise<string> {
    const { store, logger } = this.deps;
    await store.markRunning(execution.id, Date.now());
    // A stop asked before this runner took the row (or while a runner that died had it).
    const stopRequested = async () => ['stopping', 'stopped'].includes((await store.execution(execution.id))?.status ?? 'stopped');
    const policy = await store.policy(execution.policy);
    const endpoint = policy ? await this.deps.endpoint(policy.registry) : null;
    if (!policy || !endpoint) {
      const error = !policy ? `policy ${execution.policy} no longer exists` : `registry endpoint ${policy.registry} no longer exists`;
      await store.finishExecution(
        execution.id,
        { status: 'failed', copied: 0, skipped: 0, failed: 0, deleted: 0, bytes: 0, error },
        Date.now(),
      );
      this.executionsTotal.inc({ direction: policy?.direction ?? 'push', status: 'failed' });
      return 'failed';
    }
    logger.info({ execution: execution.id, policy: policy.name, trigger: execution.trigger }, 'replication execution started');
    const remote = this.deps.open(endpoint);
    const local = this.deps.local();
    const [source, destination] = policy.direction === 'push' ? [local, remote] : [remote, local];
    const tuning = this.deps.tuning ?? {};
    const checkpoints: UploadCheckpoints = {
      get: async (key) => store.checkpoint(`${policy.name}|${key}`),
      put: async (key, session) => store.saveCheckpoint(`${policy.name}|${key}`, session.location, session.offset, Date.now()),
      delete: async (key) => store.deleteCheckpoint(`${policy.name}|${key}`),
    };
    const engine = new CopyEngine({
      override: policy.override,
      concurrency: policy.concurrency,
      bandwidth: policy.bandwidth,
      checkpoints,
      signal,
      attempts: tuning.attempts,
      baseDelayMs: tuning.baseDelayMs,
      chunkSize: tuning.chunkSize,
    });
    // Artifacts an earlier (interrupted) run of this execution finished.
    const done = new Set(
      (await store.tasks(execution.id, { limit: 1_000_000 }))
        .filter((t) => t.status !== 'failed')
        .map((t) => `${t.sourceRepository}|${t.reference}`),
    );
    let error: string | null = null;
    let stopped = await stopRequested();
    try {
      const repositories = stopped ? [] : await this.sourceRepositories(policy, source, execution.scope);
      for (const repository of repositories) {
        if (signal.aborted || stopped) break;
        const destRepository = rewriteRepository(repository, { namespace: policy.destNamespace, flatten: policy.flatten });
        // Docker Hub's official images live under library/: `nginx` in a pull policy is library/nginx there.
        const sourceRepository =
          policy.direction === 'pull' && endpoint.kind === 'docker-hub' && !repository.includes('/') ? `library/${repository}` : repository;
        let sourceTags: string[];
        try {
          sourceTags = (await source.listTags(sourceRepository)).filter((t) => !REFERRERS_TAG.test(t));
        } catch (err) {
          // One repository that cannot be listed (gone, no access) is a failed task, not a failed execution.
          if (signal.aborted) throw err;
          await this.record(
            execution.id,
            policy,
            { repository, destRepository, tag: '*', started: Date.now() },
            {
              status: 'failed',
              digest: null,
              tag: null,
              reason: `listing tags: ${(err as Error).message}`,
              stats: emptyStats(),
              durationMs: 0,
            },
          );
          continue;
        }
        let tags = sourceTags.filter((t) => matches(policy.tags, t));
        if (execution.scope?.tags) tags = tags.filter((t) => execution.scope!.tags!.includes(t));
        await pool(tags, Math.min(4, Math.max(1, policy.concurrency)), async (tag) => {
          if (done.has(`${repository}|${tag}`) || signal.aborted || stopped) return;
          // One primary-key read per artifact: a stop asked through the API ends the execution here.
          if (await stopRequested()) {
            stopped = true;
            return;
          }
          const started = Date.now();
          const filtered = await this.filterOut(policy, source, sourceRepository, tag);
          if (filtered) {
            await this.record(
              execution.id,
              policy,
              { repository, destRepository, tag, started },
              {
                status: 'skipped',
                digest: filtered.digest,
                tag,
                reason: filtered.reason,
                stats: emptyStats(),
                durationMs: Date.now() - started,
              },
            );
            return;
          }
          let result: CopyResult;
          for (let attempt = 1; ; attempt++) {
            result = await engine.copy(
              { client: source, repository: sourceRepository },
              { client: destination, repository: destRepository },
              tag,
            );
            if (result.status !== 'failed' || !result.retryable || attempt >= (tuning.taskAttempts ?? 3) || signal.aborted) break;
            await sleep(backoff(attempt, tuning.baseDelayMs ?? 1000), signal);
          }
          await this.record(execution.id, policy, { repository, destRepository, tag, started }, result);
        });
        if (policy.deletion && !execution.scope?.tags && !stopped) {
          const gone = (await destination.listTags(destRepository)).filter(
            (t) => !REFERRERS_TAG.test(t) && matches(policy.tags, t) && !sourceTags.includes(t),
          );
          for (const tag of gone) {
            const started = Date.now();
            try {
              await engine.deleteTag({ client: destination, repository: destRepository }, tag);
              await this.record(
                execution.id,
                policy,
                { repository, destRepository, tag, started },
                { status: 'deleted' as never, digest: null, tag, stats: emptyStats(), durationMs: Date.now() - started },
              );
            } catch (err) {
              await this.record(
                execution.id,
                policy,
                { repository, destRepository, tag, started },
                {
                  status: 'failed',
                  digest: null,
                  tag,
                  reason: `delete: ${(err as Error).message}`,
                  stats: emptyStats(),
                  durationMs: Date.now() - started,
                },
              );
            }
          }
        }
      }
    } catch (err) {
      if (signal.aborted) throw err;
      error = (err as Error).message.slice(0, 1000);
    }
    if (signal.aborted) {
      // The lease was lost or the server stops: the row stays `running`; the next holder continues it.
      logger.warn({ execution: execution.id }, 'replication execution interrupted; it continues on the next run of the job');
      return 'interrupted';
    }
    const tasks = await store.tasks(execution.id, { limit: 1_000_000 });
    const count = (s: TaskStatus) => tasks.filter((t) => t.status === s).length;
    const totals = {
      copied: count('copied'),
      skipped: count('skipped'),
      failed: count('failed'),
      deleted: count('deleted'),
      bytes: tasks.reduce((n, t) => n + t.bytes, 0),
    };
    const status = stopped
      ? 'stopped'
      : error !== null
        ? 'failed'
        : totals.failed === 0
          ? 'succeeded'
          : totals.copied + totals.skipped + totals.deleted > 0
            ? 'partial'
            : 'failed';
    const finishedAt = Date.now();
    await store.finishExecution(execution.id, { status, ...totals, error }, finishedAt);
    this.executionsTotal.inc({ direction: policy.direction, status });
    const startedAt = (await store.execution(execution.id))?.startedAt ?? finishedAt;
    await this.deps
      .emit?.({
        type: 'replication.finished',
        policy: policy.name,
        executionId: execution.id,
        direction: policy.direction,
        registry: policy.registry,
        trigger: execution.trigger,
        status,
        ...totals,
        durationMs: finishedAt - startedAt,
      })
      .catch((err: unknown) => logger.warn({ err, execution: execution.id }, 'could not append replication.finished'));
    logger.info({ execution: execution.id, policy: policy.name, status, ...totals }, 'replication execution finished');
    return status;
  }

  private async record(
    executionId: number,
    policy: ReplicationPolicy,
    where: { repository: string; destRepository: string; tag: string; started: number },
    result: CopyResult | (Omit<CopyResult, 'status'> & { status: TaskStatus }),
  ): Promise<void> {
    const status = result.status as TaskStatus;
    await this.deps.store.addTask({
      executionId,
      sourceRepository: where.repository,
      destRepository: where.destRepository,
      reference: where.tag,
      digest: result.digest,
      status,
      reason: result.reason ?? null,
      bytes: result.stats.bytes,
      resumedBytes: result.stats.resumedBytes,
      durationMs: result.durationMs,
      finishedAt: Date.now(),
    });
    this.artifactsTotal.inc({ direction: policy.direction, status });
    if (result.stats.bytes > 0) this.bytesTotal.inc({ direction: policy.direction }, result.stats.bytes);
  }

  /** The source repositories a run covers: the scope's, the literal names, or the catalog filtered by the globs. */
  private async sourceRepositories(policy: ReplicationPolicy, source: RegistryAccess, scope: ExecutionScope | null): Promise<string[]> {
    if (scope?.repository) return matches(policy.repositories, scope.repository) ? [scope.repository] : [];
    if (policy.repositories.length > 0 && !policy.repositories.some((g) => GLOB_CHARS.test(g))) return [...policy.repositories];
    return (await source.catalog()).filter((r) => matches(policy.repositories, r));
  }

  /** Why an artifact is left out by the policy's artifact-type and signature filters, or null. */
  private async filterOut(
    policy: ReplicationPolicy,
    source: RegistryAccess,
    repository: string,
    tag: string,
  ): Promise<{ digest: string | null; reason: string } | null> {
    if (policy.artifactTypes.length === 0 && !policy.onlySigned) return null;
    const manifest = await source.getManifest(repository, tag);
    if (!manifest) return null; // the copy reports it
    if (policy.artifactTypes.length > 0) {
      const graph = parseManifest(manifest.bytes, manifest.mediaType);
      let type = graph.artifactType;
      if (isIndexMediaType(graph.mediaType)) {
        const first = graph.children[0];
        const child = first ? await source.getManifest(repository, first.digest) : null;
        type = first?.artifactType ?? (child ? parseManifest(child.bytes, child.mediaType).artifactType : null);
      }
      if (!type || !policy.artifactTypes.includes(type))
        return {
          digest: manifest.digest,
          reason: `filtered out: artifact type ${type ?? 'unknown'} is not one of ${policy.artifactTypes.join(', ')}`,
        };
    }
    if (policy.onlySigned) {
      const referrers = await source.referrers(repository, manifest.digest);
      const signed = referrers.manifests.some((m) => m.artifactType && SIGNATURE_TYPES.includes(m.artifactType));
      const cosignTag = signed ? true : (await source.headManifest(repository, `${manifest.digest.replace(':', '-')}.sig`)) !== null;
      if (!cosignTag) return { digest: manifest.digest, reason: 'filtered out: not signed (onlySigned)' };
    }
    return null;
  }
}

function matches(globs: string[], value: string): boolean {
  return globs.length === 0 || globs.some((g) => picomatch.isMatch(value, g, { dot: true }));
}

async function pool<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
}
