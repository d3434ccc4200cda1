/**
 * The metrics seam: how a feature exports its own Prometheus series without importing
 * src/metrics (features depend inward only). The composition root passes one `MetricsRegistry`
 * to every feature that wants one; with metrics switched off it is `NO_METRICS`, which
 * records nothing. Names follow Prometheus conventions (`berth_<feature>_<what>_<unit>`,
 * counters end in `_total`); label values must come from a small, bounded set (an endpoint
 * name, an outcome), never from a tag, a digest or a user name.
 */

export interface MetricSpec<L extends string> {
  name: string;
  help: string;
  labels?: readonly L[];
}

export type Labels<L extends string> = Partial<Record<L, string>>;

export interface CounterMetric<L extends string> {
  inc(labels?: Labels<L>, value?: number): void;
}

export interface GaugeMetric<L extends string> {
  set(labels: Labels<L>, value: number): void;
  inc(labels?: Labels<L>, value?: number): void;
  dec(labels?: Labels<L>, value?: number): void;
}

export interface HistogramMetric<L extends string> {
  /** Records one observation (seconds for durations, bytes for sizes). */
  observe(labels: Labels<L>, value: number): void;
}

export interface MetricsRegistry {
  counter<L extends string = never>(spec: MetricSpec<L>): CounterMetric<L>;
  /**
   * A gauge. With `collect`, its values are computed at scrape time (e.g. a backlog read from
   * a store); the registry caches them for its refresh interval, so scrapes stay cheap.
   */
  gauge<L extends string = never>(spec: MetricSpec<L> & { collect?: () => Promise<GaugeSample<L>[]> }): GaugeMetric<L>;
  histogram<L extends string = never>(spec: MetricSpec<L> & { buckets?: readonly number[] }): HistogramMetric<L>;
}

export interface GaugeSample<L extends string> {
  labels: Labels<L>;
  value: number;
}

const noop = () => undefined;

/** The registry of a process that exports no metrics: every series is a no-op. */
export const NO_METRICS: MetricsRegistry = {
  counter: () => ({ inc: noop }),
  gauge: () => ({ set: noop, inc: noop, dec: noop }),
  histogram: () => ({ observe: noop }),
};
