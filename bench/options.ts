/**
 * Every knob of the benchmark, with the defaults from issue 6 and the `--quick` sizes used
 * for smoke runs. Sizes accept suffixes: 512k, 4m, 1g (binary units).
 */
export interface BenchOptions {
  rounds: number;
  /** Workload ids to run (default: all but the opt-in ones). */
  only: string[];
  /** Also run the opt-in big-blob rows (issue 19: push, GET and ranged GET of one bigBlobSize blob). */
  big: boolean;
  /** How Berth is started: a private tsc build (as users run it) or through the tsx loader. */
  berthRuntime: 'build' | 'tsx';
  /** Extra node flags for Berth, e.g. --cpu-prof (profiling runs). */
  berthNodeArgs: string[];
  /**
   * `berth serve --workers` for every Berth started (BERTH_SERVER_WORKERS). Default 1 (undefined):
   * the figures are one process's (its RSS, its CPU), as before cluster mode. --cluster-scaling
   * compares 1 with this (default: one per core).
   */
  berthWorkers?: number;
  /**
   * A/B overhead variants only: run Berth on CPU 0 and the load generator on CPU 1 (taskset),
   * so the two never trade cores between rounds and each round measures one saturated core.
   */
  pin: boolean;
  /** Workload 1: one blob pushed as a single stream, then pulled. */
  blobSize: number;
  /** Memory over one long push (issue 6: "flat for a 4 GiB blob push"). */
  bigBlobSize: number;
  /** Workload 2: skopeo pushes. */
  images: number;
  layersPerImage: number;
  layerSize: number;
  skopeoParallel: number;
  /** Workloads 3 and 4: autocannon. */
  connections: number;
  durationSeconds: number;
  loadBlobSize: number;
  /** Workload 5: listings. */
  tags: number;
  repositories: number;
  pageSize: number;
  /** Sequential repetitions per listing figure (the median is reported). */
  listingRepeats: number;
  catalogWalkRepeats: number;
  seedConcurrency: number;
  /** Machine limit probes. */
  openSslSeconds: number;
  ddSize: number;
  /** Where latest.md / latest.json go; null = do not write files. */
  resultsDir: string | null;
  quick: boolean;
  /** A named Berth configuration to run instead of the default one (BERTH_VARIANTS), or null. */
  variant: string | null;
}

/**
 * Berth configurations a run can measure instead of the defaults (`--variant <name>`), as
 * BERTH_* variables: compare a run with and without to see what a feature costs.
 */
export const BERTH_VARIANTS: Record<string, Record<string, string>> = {
  /** Metrics are on by default; this measures Berth without them (docs/observability.md#measured-overhead). */
  'metrics-off': { BERTH_METRICS_ENABLED: 'false' },
  /** Issue 13's project policies on the bench project (BERTH_VARIANT_SETUP configures them): compare with the default. */
  policies: {},
};

/** A `berth` command run against a Berth's fresh data directory before it serves (`stdin`: its input). */
export interface SetupCommand {
  args: string[];
  stdin?: string;
}

/**
 * Variants that need state in the metadata DB, not only settings: the commands that create it,
 * run with the server's environment before `berth serve`. `policies`: project `bench` (every
 * bench repository is in it) gets a 1 TiB quota (never refuses, but every push is checked and
 * counted under the project's row lock), an immutable rule (tags release-*: checked on every
 * tag a push sets, matches none of the bench's) and a retention policy (keep the 10 latest
 * pushed, nightly: its job is scheduled, it does not run during a bench).
 */
export const BERTH_VARIANT_SETUP: Record<string, SetupCommand[]> = {
  policies: [
    { args: ['project', 'add', 'bench', '--public'] },
    { args: ['quota', 'set', 'bench', '1TiB'] },
    { args: ['tag', 'rule', 'add', 'bench', '--tag', 'release-*'] },
    {
      args: ['retention', 'set', 'bench', '-f', '-'],
      stdin: JSON.stringify({ rules: [{ template: 'latestPushedK', count: 10 }], schedule: '0 3 * * *' }),
    },
  ],
};

export const DEFAULT_OPTIONS: BenchOptions = {
  rounds: 3,
  only: [],
  big: false,
  berthRuntime: 'build',
  berthNodeArgs: [],
  pin: false,
  blobSize: 1024 ** 3,
  bigBlobSize: 4 * 1024 ** 3,
  images: 20,
  layersPerImage: 5,
  layerSize: 4 * 1024 ** 2,
  skopeoParallel: 8,
  connections: 64,
  durationSeconds: 10,
  loadBlobSize: 1024 ** 2,
  tags: 5000,
  repositories: 2000,
  pageSize: 100,
  listingRepeats: 20,
  catalogWalkRepeats: 3,
  seedConcurrency: 32,
  openSslSeconds: 3,
  ddSize: 1024 ** 3,
  resultsDir: 'bench/results',
  quick: false,
  variant: null,
};

/** Small sizes and one round: the whole run takes about two minutes. */
export const QUICK_OPTIONS: Partial<BenchOptions> = {
  rounds: 1,
  blobSize: 64 * 1024 ** 2,
  bigBlobSize: 256 * 1024 ** 2,
  images: 6,
  layersPerImage: 2,
  layerSize: 1024 ** 2,
  skopeoParallel: 4,
  durationSeconds: 3,
  tags: 500,
  repositories: 300,
  listingRepeats: 10,
  catalogWalkRepeats: 2,
  openSslSeconds: 1,
  ddSize: 64 * 1024 ** 2,
  quick: true,
};

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Parses "1g", "4m", "512k" or a plain number of bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)i?b?$/i.exec(text.trim());
  if (!m) throw new Error(`invalid size "${text}": expected e.g. 1g, 4m, 512k`);
  return Math.round(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

/** "1.0 GiB", "4.0 MiB" — for headings. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= size) return `${+(bytes / size).toFixed(1)} ${unit}`;
  }
  return `${bytes} B`;
}

/** Defaults, then --quick sizes, then explicit flags (explicit always wins). */
export function resolveOptions(explicit: Partial<BenchOptions>): BenchOptions {
  return { ...DEFAULT_OPTIONS, ...(explicit.quick ? QUICK_OPTIONS : {}), ...explicit };
}

/** How the chosen sizes differ from the defaults, printed with the results. */
export function scaledDownNotes(options: BenchOptions): string[] {
  const notes: string[] = [];
  const keys = Object.keys(DEFAULT_OPTIONS) as (keyof BenchOptions)[];
  for (const key of keys) {
    if (['only', 'big', 'resultsDir', 'quick', 'berthRuntime', 'berthNodeArgs', 'berthWorkers', 'pin'].includes(key)) continue;
    const value = options[key];
    const base = DEFAULT_OPTIONS[key];
    if (value !== base) notes.push(`${key}=${String(value)} (default ${String(base)})`);
  }
  return notes;
}
