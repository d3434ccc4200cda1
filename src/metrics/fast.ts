import type { Registry } from 'prom-client';

/**
 * Counters and histograms for the per-request path. prom-client's label children hash their
 * label object on every inc/observe (about 1 µs each, a dozen per request); these children
 * hold plain numbers, bound once per label set, and are rendered by prom-client's registry at
 * scrape time through its metric interface (`get()`), in the same text format.
 */

type LabelSet = Record<string, string>;

interface MetricValue {
  labels: LabelSet;
  value: number;
  metricName?: string;
}

abstract class Family<Child> {
  protected readonly children: { labels: LabelSet; child: Child }[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  /** The child for one label set: call once and keep it (each call adds a series). */
  child(labels: LabelSet): Child {
    const child = this.create();
    this.children.push({ labels, child });
    return child;
  }

  protected abstract create(): Child;
  /** The samples of one child, named after the family `name` (a relabelled copy renders under its own name). */
  protected abstract values(name: string, labels: LabelSet, child: Child): MetricValue[];

  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string } {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.children.flatMap(({ labels, child }) => this.values(this.name, labels, child)),
      aggregator: 'sum',
    };
  }

  /**
   * Registers a second family, rendered at scrape time from this one's children with their
   * labels mapped by `relabel` (null leaves a child out): series that carry the same numbers
   * under another name (Distribution's) cost no update per request. `relabel` must map distinct
   * label sets to distinct ones (it renames, it does not aggregate).
   */
  relabelled(name: string, help: string, registry: Registry, relabel: (labels: LabelSet) => LabelSet | null): void {
    const metric = {
      name,
      help,
      type: this.type,
      get: () => {
        const values: MetricValue[] = [];
        for (const { labels, child } of this.children) {
          const mapped = relabel(labels);
          if (mapped) values.push(...this.values(name, mapped, child));
        }
        return { name, help, type: this.type, values, aggregator: 'sum' };
      },
      reset: () => undefined,
    };
    registry.registerMetric(metric as never);
  }

  /** Series live as long as the process (what a counter means); nothing to reset. */
  reset(): void {}
}

export class FastCounter {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/** A counter family (also usable as a gauge: `type` 'gauge', children inc and dec). */
export class CounterFamily extends Family<FastCounter> {
  protected create(): FastCounter {
    return new FastCounter();
  }

  protected values(_name: string, labels: LabelSet, child: FastCounter): MetricValue[] {
    return [{ labels, value: child.value }];
  }
}

export class FastHistogram {
  /** Per bucket, the observations that fell into it (not cumulative: one increment per observation). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

export class HistogramFamily extends Family<FastHistogram> {
  constructor(
    name: string,
    help: string,
    registry: Registry,
    private readonly bounds: readonly number[],
  ) {
    super(name, help, 'histogram', registry);
  }

  protected create(): FastHistogram {
    return new FastHistogram(this.bounds);
  }

  protected values(name: string, labels: LabelSet, child: FastHistogram): MetricValue[] {
    let cumulative = 0;
    const buckets = this.bounds.map((le, i) => {
      cumulative += child.counts[i]!;
      return { labels: { ...labels, le: String(le) }, value: cumulative, metricName: `${name}_bucket` };
    });
    return [
      ...buckets,
      { labels: { ...labels, le: '+Inf' }, value: child.count, metricName: `${name}_bucket` },
      { labels, value: child.sum, metricName: `${name}_sum` },
      { labels, value: child.count, metricName: `${name}_count` },
    ];
  }
}
