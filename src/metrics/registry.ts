import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CounterMetric, GaugeMetric, GaugeSample, HistogramMetric, Labels, MetricSpec, MetricsRegistry } from '../core/metrics.js';

/**
 * The process's Prometheus registry behind core's `MetricsRegistry` port: Berth's own series
 * (src/metrics/*.ts) and every feature's are registered here and rendered by `scrape()`. One
 * per server (tests run several in one process), never prom-client's global registry.
 */
export class PromMetrics implements MetricsRegistry {
  readonly registry = new Registry();

  constructor(
    /** How long a gauge computed by a query keeps its value (metrics.refresh). */
    private readonly refreshMs: number,
    /** Where a failing gauge query is reported (the scrape still answers, without that gauge). */
    private readonly onCollectError: (metric: string, err: unknown) => void = () => undefined,
  ) {}

  /** Node process metrics (CPU, memory, event loop lag, GC, handles), as prom-client names them. */
  withProcessMetrics(): this {
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters (promtool check metrics rejects them); nodejs_active_{handles,requests,resources} by type stay.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      this.registry.removeSingleMetric(name);
    return this;
  }

  /**
   * This process is a worker of a `berth serve` cluster: its series are what the primary's
   * prom-client AggregatorRegistry gathers and sums with the other workers' (src/cluster.ts).
   */
  joinClusterAggregation(): void {
    AggregatorRegistry.setRegistries([this.registry]);
    // Constructing one installs prom-client's listener for the primary's requests in this worker.
    new AggregatorRegistry();
  }

  counter<L extends string = never>(spec: MetricSpec<L>): CounterMetric<L> & { prom: Counter<L> } {
    const prom = new Counter<L>({ name: spec.name, help: spec.help, labelNames: spec.labels ?? [], registers: [this.registry] });
    return {
      prom,
      inc: (labels?: Labels<L>, value = 1) => (labels ? prom.inc(labels, value) : prom.inc(value)),
    };
  }

  /**
   * A gauge. `aggregate`: how a cluster's workers' values combine (src/cluster.ts). By default a
   * gauge a scrape computes (`collect`: a count in the shared database) is the same in every
   * worker, so the largest is shown, not the sum; one each process moves itself is summed.
   */
  gauge<L extends string = never>(
    spec: MetricSpec<L> & { collect?: () => Promise<GaugeSample<L>[]>; aggregate?: 'sum' | 'max' | 'min' },
  ): GaugeMetric<L> & { prom: Gauge<L> } {
    const load = spec.collect ? this.cached(spec.name, spec.collect) : undefined;
    const prom = new Gauge<L>({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labels ?? [],
      registers: [this.registry],
      aggregator: spec.aggregate ?? (spec.collect ? 'max' : 'sum'),
      ...(load
        ? {
            async collect(this: Gauge<L>) {
              const samples = await load();
              // A project deleted since the last refresh must disappear, not keep its last value.
              this.reset();
              for (const s of samples) this.set(s.labels, s.value);
            },
          }
        : {}),
    });
    return {
      prom,
      set: (labels, value) => prom.set(labels, value),
      inc: (labels?: Labels<L>, value = 1) => (labels ? prom.inc(labels, value) : prom.inc(value)),
      dec: (labels?: Labels<L>, value = 1) => (labels ? prom.dec(labels, value) : prom.dec(value)),
    };
  }

  histogram<L extends string = never>(spec: MetricSpec<L> & { buckets?: readonly number[] }): HistogramMetric<L> & { prom: Histogram<L> } {
    const prom = new Histogram<L>({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labels ?? [],
      registers: [this.registry],
      ...(spec.buckets ? { buckets: [...spec.buckets] } : {}),
    });
    return { prom, observe: (labels, value) => prom.observe(labels, value) };
  }

  /**
   * `load`, at most once per refresh interval however often Prometheus scrapes (and once at a
   * time when scrapes overlap). A failing load keeps the previous values, so a database outage
   * shows as stale gauges plus the error counter, not as a failed scrape.
   */
  cached<T>(metric: string, load: () => Promise<T[]>): () => Promise<T[]> {
    let value: T[] = [];
    let loadedAt = -Infinity;
    let pending: Promise<T[]> | null = null;
    return () => {
      if (Date.now() - loadedAt < this.refreshMs) return Promise.resolve(value);
      pending ??= load()
        .then((fresh) => {
          value = fresh;
          return fresh;
        })
        .catch((err: unknown) => {
          this.onCollectError(metric, err);
          return value;
        })
        .finally(() => {
          loadedAt = Date.now();
          pending = null;
        });
      return pending;
    };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}
