import type { Logger } from 'pino';
import { RegistryError } from '../core/errors.js';
import type { MetadataStore } from '../core/ports.js';
import type { ChangeBatch, Registry } from '../core/registry.js';
import { withLease, type LeaseStore } from '../jobs/leases.js';
import type { Job } from '../jobs/scheduler.js';
import { consequences, ManifestGraph, pathInProject, planRepository, type RepositoryPlan } from './evaluate.js';
import { nextRun, PolicySchema } from './policy.js';
import type {
  RefusedTag,
  RepositoryReport,
  RepositorySnapshot,
  RetentionPolicy,
  RetentionReport,
  RetentionRun,
  RetentionStore,
  RunTrigger,
  StoredPolicy,
} from './ports.js';

/** Repositories read per batch of snapshot queries. */
const SNAPSHOT_BATCH = 100;

export interface RunOptions {
  dryRun: boolean;
  trigger: RunTrigger;
  actor: string | null;
  /** The run's clock (tests; default: now). */
  now?: number;
}

/** What one repository's change batch did. */
interface RepositoryOutcome {
  report: RepositoryReport;
  garbage: string[];
}

/**
 * Retention policies: CRUD, runs (dry or real) and the scheduled job. A run takes the lease
 * `retention:<project>`, so one project never has two runs at once on any replica. Each
 * repository's deletes are one core change batch (same hooks and events as /v2 deletes); a dry
 * run is the same batch rolled back, so its report is the real run's by construction.
 */
export class RetentionService {
  private readonly background = new Set<Promise<unknown>>();

  constructor(
    private readonly registry: Registry,
    private readonly metadata: MetadataStore,
    private readonly store: RetentionStore,
    private readonly leases: LeaseStore,
    private readonly logger: Logger,
  ) {}

  policy(project: string): Promise<StoredPolicy | null> {
    return this.store.policy(project);
  }

  /** Validates and stores a project's policy (INVALID_ARGUMENT naming the field otherwise); its schedule restarts from now. */
  async setPolicy(project: string, input: unknown, actor: string | null): Promise<StoredPolicy> {
    const parsed = PolicySchema.safeParse(input);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(policy)'}: ${i.message}`);
      throw new RegistryError('INVALID_ARGUMENT', `invalid retention policy: ${issues.join('; ')}`, parsed.error.issues);
    }
    const policy: RetentionPolicy = parsed.data;
    const now = new Date();
    await this.store.setPolicy(project, policy, nextRun(policy.schedule, now), actor, now);
    return (await this.store.policy(project))!;
  }

  async deletePolicy(project: string): Promise<void> {
    if (!(await this.store.deletePolicy(project))) throw noPolicy(project);
  }

  runs(project: string, limit: number): Promise<RetentionRun[]> {
    return this.store.runs(project, limit);
  }

  async runById(project: string, id: number): Promise<RetentionRun> {
    const run = Number.isSafeInteger(id) ? await this.store.run(project, id) : null;
    if (!run) throw new RegistryError('NOT_FOUND', `retention run ${id} of project ${project} not found`, { project, id });
    return run;
  }

  /**
   * Starts a run in the background and resolves with its id once it is recorded (the API's
   * POST …/runs). CONFLICT when a run of the project is already going on.
   */
  start(project: string, options: RunOptions): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const work = this.locked(project, options, resolve)
        .then((outcome) => {
          if (outcome === null) reject(busy(project));
        }, reject)
        .finally(() => this.background.delete(work));
      this.background.add(work);
    });
  }

  /** Runs now and waits for the end (CLI, scheduled job); CONFLICT when a run of the project is going on. */
  async run(project: string, options: RunOptions): Promise<RetentionRun> {
    const id = await this.locked(project, options);
    if (id === null) throw busy(project);
    return this.runById(project, id);
  }

  /** Waits for runs started in the background (shutdown, tests). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }

  /** The scheduler's job: every minute, runs the policies whose cron came due (each once, on one replica). */
  job(everyMs = 60_000): Job {
    return {
      name: 'retention',
      schedule: { everyMs },
      scope: 'lease',
      history: 'work',
      run: async () => {
        const due = await this.store.duePolicies(new Date());
        const ran: { project: string; runId: number | null; error?: string }[] = [];
        for (const policy of due) {
          // Moved before running: a crash skips this occurrence instead of repeating it forever.
          if (!(await this.store.advance(policy.project, policy.nextRunAt!, nextRun(policy.schedule, new Date())))) continue;
          try {
            const run = await this.run(policy.project, { dryRun: false, trigger: 'schedule', actor: 'retention' });
            ran.push({ project: policy.project, runId: run.id });
          } catch (err) {
            this.logger.warn({ err, project: policy.project }, 'retention: scheduled run failed');
            ran.push({ project: policy.project, runId: null, error: (err as Error).message });
          }
        }
        return { summary: { runs: ran }, idle: ran.length === 0 };
      },
    };
  }

  /** Under the project's lease: records the run, executes it, records its end. Null when the lease is held. */
  private async locked(project: string, options: RunOptions, started?: (id: number) => void): Promise<number | null> {
    const policy = await this.store.policy(project);
    if (!policy) throw noPolicy(project);
    const outcome = await withLease(this.leases, `retention:${project}`, async (lease) => {
      // A run still marked running lost its process (a crash, a shutdown mid-run): with the lease held, none is running.
      await this.store.failUnfinished(project, 'interrupted: its process stopped before the run finished', new Date());
      const id = await this.store.startRun({
        project,
        dryRun: options.dryRun,
        trigger: options.trigger,
        actor: options.actor,
        at: new Date(),
      });
      started?.(id);
      try {
        await this.execute(id, project, policy, options, lease.signal);
      } catch (err) {
        this.logger.warn({ err, project, runId: id }, 'retention: run failed');
        await this.store.failRun(id, (err as Error).message, new Date());
      }
      return id;
    });
    return outcome.acquired ? outcome.value : null;
  }

  private async execute(id: number, project: string, policy: RetentionPolicy, options: RunOptions, signal: AbortSignal): Promise<void> {
    const now = options.now ?? Date.now();
    const repositories = await this.store.repositories(project);
    const reports: RepositoryReport[] = [];
    const garbage = new Map<number, string[]>();
    for (let i = 0; i < repositories.length; i += SNAPSHOT_BATCH) {
      for (const snapshot of await this.store.snapshots(repositories.slice(i, i + SNAPSHOT_BATCH))) {
        signal.throwIfAborted();
        const outcome = await this.applyToRepository(snapshot, project, policy, options, now);
        if (!outcome) continue;
        reports.push(outcome.report);
        if (outcome.garbage.length > 0) garbage.set(snapshot.id, outcome.garbage);
      }
    }
    const report: RetentionReport = { totals: totalsOf(reports, await this.store.freedBytes(garbage)), repositories: reports };
    const { tagsRemoved, manifestsUntagged, bytes } = report.totals;
    // The report and its event commit together: a consumer (webhooks) never hears of a run whose report is missing.
    await this.metadata.transaction(async (tx) => {
      await this.store.within(tx).finishRun(id, report.totals, report, new Date());
      await tx.events.append(
        [{ type: 'retention.finished', project, runId: id, dryRun: options.dryRun, tagsRemoved, manifestsUntagged, bytes }],
        options.actor,
      );
    });
  }

  /** Plans one repository and, when the plan deletes anything, applies it in one change batch (rolled back for a dry run). */
  private async applyToRepository(
    snapshot: RepositorySnapshot,
    project: string,
    policy: RetentionPolicy,
    options: RunOptions,
    now: number,
  ): Promise<RepositoryOutcome | null> {
    const graph = new ManifestGraph(snapshot);
    const plan = planRepository(graph, pathInProject(snapshot.name, project), policy.rules, now);
    if (plan.kept.size === 0 && plan.remove.size === 0 && plan.deleteUntagged.length === 0) return null;
    if (plan.remove.size === 0 && plan.deleteUntagged.length === 0) return { report: reportOf(snapshot, plan, [], [], []), garbage: [] };
    return this.registry.changeBatch(
      // The tag history records these deletes as retention's (via: retention), by whoever started the run.
      { actor: options.actor ?? 'retention', reason: 'retention' },
      async (batch) => {
        const { removed, refused, deleted } = await this.delete(batch, snapshot, plan);
        const { untagged, garbage } = consequences(graph, new Set(removed.map((r) => r.tag)), deleted);
        return { report: { ...reportOf(snapshot, plan, removed, refused, deleted), untagged }, garbage };
      },
      { rollback: options.dryRun },
    );
  }

  /** The plan's deletes, through core; a tag moved meanwhile is kept, a refused one reported. */
  private async delete(batch: ChangeBatch, snapshot: RepositorySnapshot, plan: RepositoryPlan) {
    const removed: { tag: string; digest: string }[] = [];
    const refused: RefusedTag[] = [];
    const now = await batch.tx.manifests.tagTargets(snapshot.id, [...plan.remove.keys()]);
    const unchanged: { tag: string; digest: string }[] = [];
    for (const [tag, digest] of plan.remove) {
      // Pushed or deleted since the snapshot: the rules judged another tag; leave it for the next run.
      if (now.get(tag) !== digest) plan.kept.set(tag, ['changed during the run']);
      else unchanged.push({ tag, digest });
    }
    const refusals = await batch.deleteTags(snapshot.name, snapshot.id, unchanged);
    for (const { tag, digest } of unchanged) {
      const refusal = refusals.get(tag);
      if (refusal) refused.push(refusalOf(tag, digest, refusal));
      else removed.push({ tag, digest });
    }
    // An untagged artifact tagged meanwhile is no longer a candidate.
    const taggedNow = await this.store.within(batch.tx).tagged(snapshot.id, plan.deleteUntagged);
    const deleted: string[] = [];
    for (const digest of plan.deleteUntagged) {
      if (taggedNow.has(digest)) continue;
      if (!(await batch.deleteManifest(snapshot.name, snapshot.id, digest))) deleted.push(digest);
    }
    return { removed, refused, deleted };
  }
}

function reportOf(
  snapshot: RepositorySnapshot,
  plan: RepositoryPlan,
  removed: RepositoryReport['removed'],
  refused: RefusedTag[],
  deleted: string[],
): RepositoryReport {
  const digests = new Map(snapshot.tags.map((t) => [t.name, t.digest]));
  return {
    repository: snapshot.name,
    // A tag a policy would not let go is kept, with that policy's word as the reason.
    kept: [...plan.kept.entries(), ...refused.map((r): [string, string[]] => [r.tag, [r.reason]])]
      .map(([tag, reasons]) => ({ tag, digest: digests.get(tag) ?? '', reasons }))
      .sort((a, b) => (a.tag < b.tag ? -1 : 1)),
    removed: [...removed].sort((a, b) => (a.tag < b.tag ? -1 : 1)),
    refused,
    untagged: [],
    deleted,
  };
}

function refusalOf(tag: string, digest: string, refusal: RegistryError): RefusedTag {
  const policy = (refusal.detail as { policy?: unknown } | undefined)?.policy;
  return { tag, digest, policy: typeof policy === 'string' ? policy : null, reason: refusal.message };
}

function totalsOf(reports: RepositoryReport[], bytes: number): RetentionReport['totals'] {
  const sum = (count: (r: RepositoryReport) => number) => reports.reduce((n, r) => n + count(r), 0);
  return {
    repositories: reports.length,
    tagsKept: sum((r) => r.kept.length),
    tagsRemoved: sum((r) => r.removed.length),
    tagsRefused: sum((r) => r.refused.length),
    manifestsUntagged: sum((r) => r.untagged.length),
    manifestsDeleted: sum((r) => r.deleted.length),
    bytes,
  };
}

function noPolicy(project: string): RegistryError {
  return new RegistryError('NOT_FOUND', `project ${project} has no retention policy`, { project });
}

function busy(project: string): RegistryError {
  return new RegistryError('CONFLICT', `a retention run of project ${project} is already in progress; try again when it has finished`, {
    project,
  });
}
