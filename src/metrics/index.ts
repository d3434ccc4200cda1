import type { GaugeSample, MetricsRegistry } from '../core/metrics.js';
import type { BlobStore } from '../core/ports.js';
import type { JobRunStore } from '../jobs/ports.js';
import type { JobObserver } from '../jobs/scheduler.js';
import { instrumentBlobStore } from './blob-store.js';
import { HttpMetrics } from './http.js';
import type { MetadataObserver, MetricsQueries, PoolUsage } from './ports.js';
import { ProjectLabels } from './projects.js';
import { PromMetrics } from './registry.js';
import { CounterFamily, HistogramFamily, type FastCounter, type FastHistogram } from './fast.js';

/** Statement latency: most indexed reads take well under a millisecond. */
const QUERY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

export { HttpMetrics } from './http.js';

export interface MetricsSettings {
  /** How long gauges computed by a query keep their value (metrics.refresh). */
  refreshMs: number;
  /** Distinct `project` label values per series before the rest share `_other` (metrics.projectlabels). */
  projectLabels: number;
  /** metrics.storagecapacity: the bytes the storage may hold (0: not exported), for the 85 % alert. */
  storageCapacityBytes: number;
}

/** A project's quota as the quotas feature keeps it (its `project_usage` rows): bytes used, limit or null. */
export interface ProjectQuota {
  project: string;
  used: number;
  limit: number | null;
}

/** The outbox as a scrape reads it (the events feature's OutboxStore satisfies it). */
export interface OutboxReader {
  status(): Promise<{ unsequenced: number; lastSeq: number; cursors: Record<string, number> }>;
  read(after: number, limit: number): Promise<{ seq: number; at: number }[]>;
}

/** What the scrape-time gauges read, each through a cache (metrics.refresh). */
export interface MetricSources {
  queries: MetricsQueries;
  /** Per-project usage and limits as the quotas feature keeps them (a table read, not a scan). */
  quotas: () => Promise<ProjectQuota[]>;
  outbox: OutboxReader;
  consumers: readonly string[];
  jobRuns: JobRunStore;
  jobNames: () => string[];
  /** Throws when this replica cannot serve (the /readyz check). */
  ready: () => Promise<void>;
}

type LoginOutcome = 'success' | 'failure' | 'ratelimited';

/**
 * Berth's metrics: one Prometheus registry per process with the HTTP, registry, storage, auth
 * and job series, the scrape-time gauges over the stores, Node's process metrics, and any
 * series a feature registers through `registry` (core's MetricsRegistry port).
 * docs/observability.md lists every series.
 */
export class BerthMetrics {
  readonly prom: PromMetrics;
  readonly http: HttpMetrics;
  readonly jobs: JobObserver;
  readonly logins: (outcome: LoginOutcome) => void;
  private readonly projects: ProjectLabels;
  private readonly lastSuccess = new Map<string, number>();

  constructor(
    private readonly settings: MetricsSettings,
    onCollectError: (metric: string, err: unknown) => void = () => undefined,
  ) {
    const collectErrors: { inc: (metric: string) => void } = { inc: () => undefined };
    this.prom = new PromMetrics(settings.refreshMs, (metric, err) => {
      collectErrors.inc(metric);
      onCollectError(metric, err);
    }).withProcessMetrics();
    const errors = this.prom.counter<'metric'>({
      name: 'berth_metrics_collect_errors_total',
      help: 'Scrape-time gauge queries that failed (the gauge keeps its last value)',
      labels: ['metric'],
    });
    collectErrors.inc = (metric) => errors.inc({ metric });
    this.projects = new ProjectLabels(settings.projectLabels);
    this.http = new HttpMetrics(this.prom, (project) => this.projects.label(project));
    this.jobs = this.jobObserver();
    const logins = this.prom.counter<'outcome'>({
      name: 'berth_auth_logins_total',
      help: 'Password and robot-secret checks by outcome: success, failure, ratelimited',
      labels: ['outcome'],
    });
    this.logins = (outcome) => logins.inc({ outcome });
  }

  /** The port features register their own series on. */
  get registry(): MetricsRegistry {
    return this.prom;
  }

  /** What the composition root applies to the adapters: the BlobStore wrapper and the metadata observer. */
  storeInstruments(): { blobs(store: BlobStore, driver: string): BlobStore; metadata: MetadataObserver } {
    return { blobs: (store, driver) => instrumentBlobStore(store, driver, this.prom), metadata: this.metadataObserver() };
  }

  private metadataObserver(): MetadataObserver {
    const duration = new HistogramFamily(
      'berth_metadata_query_duration_seconds',
      'Metadata database statement latency by statement (select, insert, update, delete, other)',
      this.prom.registry,
      QUERY_BUCKETS,
    );
    const failures = new CounterFamily(
      'berth_metadata_query_errors_total',
      'Metadata database statements that failed, by statement',
      'counter',
      this.prom.registry,
    );
    const children = new Map<string, { duration: FastHistogram; failures: FastCounter }>();
    return {
      query: (statement, seconds, failed) => {
        let child = children.get(statement);
        if (!child) children.set(statement, (child = { duration: duration.child({ statement }), failures: failures.child({ statement }) }));
        child.duration.observe(seconds);
        if (failed) child.failures.value++;
      },
      // Registered only where there is a pool (PostgreSQL), and once: a label-less gauge would otherwise show 0.
      pool: (read) => {
        if (this.prom.registry.getSingleMetric('berth_metadata_pool_connections')) return;
        const gauge = (name: string, help: string, pick: (usage: PoolUsage) => number) =>
          this.prom.gauge({ name, help, aggregate: 'sum', collect: async () => [{ labels: {}, value: pick(read()) }] });
        gauge('berth_metadata_pool_connections', 'Connections the metadata pool holds (PostgreSQL)', (u) => u.total);
        gauge('berth_metadata_pool_idle_connections', 'Idle connections in the metadata pool (PostgreSQL)', (u) => u.idle);
        gauge('berth_metadata_pool_waiting_queries', 'Queries waiting for a metadata pool connection (PostgreSQL)', (u) => u.waiting);
      },
    };
  }

  /** Registers the gauges a scrape computes from the stores (cached for metrics.refresh). */
  watch(sources: MetricSources): void {
    this.watchStorage(sources);
    this.watchOutbox(sources.outbox, sources.consumers);
    this.watchJobs(sources.jobRuns, sources.jobNames);
    const ready = this.prom.cached('berth_ready', () =>
      sources.ready().then(
        () => [{ labels: {}, value: 1 }],
        () => [{ labels: {}, value: 0 }],
      ),
    );
    this.prom.gauge({
      name: 'berth_ready',
      help: '1 when this replica can serve (its metadata database and storage answer), else 0',
      aggregate: 'min',
      collect: ready,
    });
  }

  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.prom.contentType, body: await this.prom.scrape() };
  }

  private watchStorage(sources: MetricSources): void {
    const prom = this.prom;
    const stored = prom.cached('berth_storage_physical_bytes', async () => [await sources.queries.stored()]);
    prom.gauge({
      name: 'berth_storage_physical_bytes',
      help: 'Bytes stored: every blob once, after deduplication',
      collect: async () => (await stored()).map((s) => ({ labels: {}, value: s.bytes })),
    });
    prom.gauge({
      name: 'berth_storage_blobs',
      help: 'Blobs stored (deduplicated)',
      collect: async () => (await stored()).map((s) => ({ labels: {}, value: s.blobs })),
    });
    if (this.settings.storageCapacityBytes > 0) {
      prom
        .gauge({
          name: 'berth_storage_capacity_bytes',
          help: 'Capacity of the storage as configured (metrics.storagecapacity)',
          aggregate: 'max',
        })
        .set({}, this.settings.storageCapacityBytes);
    }

    const quotas = prom.cached('berth_project_usage_bytes', sources.quotas);
    const usage = (project: string) => this.capped(quotas, (q) => q.used, project);
    const limits = (project: string) => this.capped(quotas, (q) => q.limit, project);
    prom.gauge<'project'>({
      name: 'berth_project_usage_bytes',
      help: 'Bytes a project uses (each distinct blob once per project)',
      labels: ['project'],
      collect: () => usage('project'),
    });
    prom.gauge<'project_name'>({
      name: 'harbor_project_quota_usage_byte',
      help: 'Harbor-compatible: bytes a project uses',
      labels: ['project_name'],
      collect: () => usage('project_name'),
    });
    prom.gauge<'project'>({
      name: 'berth_project_quota_bytes',
      help: "A project's storage quota (projects with a limit only)",
      labels: ['project'],
      collect: () => limits('project'),
    });
    prom.gauge<'project_name'>({
      name: 'harbor_project_quota_byte',
      help: "Harbor-compatible: a project's storage quota",
      labels: ['project_name'],
      collect: () => limits('project_name'),
    });

    const inventory = prom.cached('berth_project_repositories', () => sources.queries.projects());
    prom.gauge<'project'>({
      name: 'berth_project_repositories',
      help: 'Repositories per project',
      labels: ['project'],
      collect: () => this.capped(inventory, (p) => p.repositories, 'project'),
    });
    prom.gauge<'project'>({
      name: 'berth_project_artifacts',
      help: 'Artifacts (manifests: images, indexes, signatures…) per project',
      labels: ['project'],
      collect: () => this.capped(inventory, (p) => p.artifacts, 'project'),
    });
  }

  /**
   * One sample per project, the largest first, at most metrics.projectlabels of them; the rest
   * are summed into `_other`. Null values (no limit) are left out.
   */
  private async capped<T extends { project: string }, L extends string>(
    load: () => Promise<T[]>,
    value: (row: T) => number | null,
    label: L,
  ): Promise<GaugeSample<L>[]> {
    const rows = (await load()).filter((r) => value(r) !== null).sort((a, b) => value(b)! - value(a)!);
    const kept = rows.slice(0, this.settings.projectLabels);
    const samples: GaugeSample<L>[] = kept.map((r) => ({ labels: { [label]: r.project } as Record<L, string>, value: value(r)! }));
    const rest = rows.slice(kept.length);
    if (rest.length > 0)
      samples.push({ labels: { [label]: ProjectLabels.OTHER } as Record<L, string>, value: rest.reduce((sum, r) => sum + value(r)!, 0) });
    return samples;
  }

  private watchOutbox(outbox: OutboxReader, consumers: readonly string[]): void {
    const lag = this.prom.cached('berth_outbox_pending_events', async () => {
      const status = await outbox.status();
      const now = Date.now();
      return Promise.all(
        consumers.map(async (consumer) => {
          const cursor = status.cursors[consumer] ?? 0;
          const [oldest] = cursor < status.lastSeq ? await outbox.read(cursor, 1) : [];
          return {
            consumer,
            pending: status.lastSeq - cursor + status.unsequenced,
            age: oldest ? Math.max(0, (now - oldest.at) / 1000) : 0,
          };
        }),
      );
    });
    this.prom.gauge<'consumer'>({
      name: 'berth_outbox_pending_events',
      help: 'Domain events a consumer has not handled yet (events not yet sequenced count for every consumer)',
      labels: ['consumer'],
      collect: async () => (await lag()).map((l) => ({ labels: { consumer: l.consumer }, value: l.pending })),
    });
    this.prom.gauge<'consumer'>({
      name: 'berth_outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest sequenced event a consumer has not handled yet (0 when it is caught up)',
      labels: ['consumer'],
      collect: async () => (await lag()).map((l) => ({ labels: { consumer: l.consumer }, value: l.age })),
    });
  }

  private jobObserver(): JobObserver {
    // `job_name`, not `job`: Prometheus gives every scraped series its own `job` label (the scrape job).
    const runs = this.prom.counter<'job_name' | 'outcome'>({
      name: 'berth_job_runs_total',
      help: 'Background job runs in this process by job and outcome: ok, failed, skipped, idle',
      labels: ['job_name', 'outcome'],
    });
    const duration = this.prom.histogram<'job_name'>({
      name: 'berth_job_duration_seconds',
      help: 'Background job run time by job (idle ticks excluded)',
      labels: ['job_name'],
      buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    });
    return {
      finished: (job, outcome, seconds) => {
        runs.inc({ job_name: job, outcome });
        if (outcome !== 'idle') duration.observe({ job_name: job }, seconds);
        if (outcome !== 'failed') this.lastSuccess.set(job, Date.now() / 1000);
      },
    };
  }

  /** Last success per job: this process's own runs, or the cluster's from the run history (lease jobs run on one replica). */
  private watchJobs(history: JobRunStore, jobNames: () => string[]): void {
    const recorded = this.prom.cached('berth_job_last_success_timestamp_seconds', () =>
      Promise.all(
        jobNames().map(async (job) => {
          const runs = await history.list(20, job);
          const ok = runs.find((r) => r.outcome === 'ok' || r.outcome === 'skipped');
          return { job, at: ok?.finishedAt ? ok.finishedAt.getTime() / 1000 : 0 };
        }),
      ),
    );
    this.prom.gauge<'job_name'>({
      name: 'berth_job_last_success_timestamp_seconds',
      help: 'When a job last finished without failing (Unix seconds; 0: never), from this process or the run history',
      labels: ['job_name'],
      collect: async () =>
        (await recorded()).map(({ job, at }) => ({ labels: { job_name: job }, value: Math.max(at, this.lastSuccess.get(job) ?? 0) })),
    });
  }
}
