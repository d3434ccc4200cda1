#!/usr/bin/env node
/**
 * `npm run bench`: Berth side by side with CNCF Distribution (issue 6).
 * Prints a Markdown table and writes bench/results/latest.{md,json}; exits 1 when a
 * correctness check fails. `--quick` runs small sizes in about two minutes.
 */
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { runBench, WORKLOAD_IDS } from './bench.js';
import { runClusterScaling } from './cluster-scaling.js';
import { runMetricsInstructions } from './metrics-instructions.js';
import { runMetricsOverhead } from './metrics-overhead.js';
import { runPoliciesOverhead } from './policies-overhead.js';
import { LINK_RATE } from './link-shaping.js';
import { PROXY_CACHE_DEFAULT_SIZE, runProxyCacheBench } from './proxy-cache.js';
import { runSignaturesOverhead } from './signatures-overhead.js';
import { runSupplyChainInProcess, runSupplyChainInstructions, runSupplyChainOverhead } from './supply-chain-overhead.js';
import { BERTH_VARIANTS, parseSize, resolveOptions, type BenchOptions } from './options.js';
import { renderMarkdown, writeResults } from './report.js';
import { ROOT, stopAllServers } from './servers.js';

const integer = (text: string) => {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError('expected a positive integer');
  return value;
};
const size = (text: string) => {
  try {
    return parseSize(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

const program = new Command()
  .name('bench')
  .description('Benchmark Berth against CNCF Distribution over real HTTP')
  .option('--quick', 'small sizes, one round (smoke run, about two minutes)')
  .option('--rounds <n>', 'rounds per workload (default 3)', integer)
  .option('--only <ids>', `comma-separated workloads: ${WORKLOAD_IDS.join(', ')}`, (text) => text.split(',').map((s) => s.trim()))
  .option('--berth-runtime <runtime>', 'build (tsc into a temp dir, default) or tsx')
  .option(
    '--berth-workers <n>',
    'berth serve --workers for every Berth started (default 1: one process, as the figures have always been; --cluster-scaling: one per core)',
    integer,
  )
  .option('--cluster-scaling', 'only compare manifest GET throughput of berth serve with 1 worker and with --berth-workers (A/B rounds)')
  .option('--berth-node-args <args>', 'extra node flags for Berth, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"', (text) =>
    text.split(/\s+/).filter(Boolean),
  )
  .option(
    '--big',
    'also run the big-blob rows: push, GET and 8-range GET of one --big-blob-size blob (default 4g), machine limits before each server, CPU-s per GiB',
  )
  .option('--blob-size <size>', 'single-stream blob (default 1g)', size)
  .option('--big-blob-size <size>', "blob pushed once to watch memory, and the --big rows' blob (default 4g)", size)
  .option('--images <n>', 'images pushed with skopeo (default 20)', integer)
  .option('--layers <n>', 'layers per image (default 5)', integer)
  .option('--layer-size <size>', 'layer size (default 4m)', size)
  .option('--parallel <n>', 'skopeo processes at once (default 8)', integer)
  .option('--connections <n>', 'autocannon connections (default 64)', integer)
  .option('--duration <seconds>', 'autocannon duration per figure (default 10)', integer)
  .option('--load-blob-size <size>', 'blob fetched under load (default 1m)', size)
  .option('--tags <n>', 'tags in the listed repository (default 5000)', integer)
  .option('--repositories <n>', 'repositories in the catalog (default 2000)', integer)
  .option('--results <dir>', 'directory for latest.md and latest.json (default bench/results)')
  .option('--variant <name>', `run Berth configured as: ${Object.keys(BERTH_VARIANTS).join(', ')}`)
  .option('--pin', 'with --metrics-overhead: Berth on CPU 0, the load generator on CPU 1 (taskset)')
  .option('--metrics-overhead', 'only compare manifest GET throughput with metrics on and off (A/B rounds)')
  .option('--metrics-instructions', 'only compare instructions per manifest GET with metrics on and off, under callgrind (slow)')
  .option('--metrics-instructions-dir <dir>', 'keep the callgrind dumps of --metrics-instructions here')
  .option('--policies-overhead', 'only compare manifest GET and push throughput with and without project policies (A/B rounds)')
  .option(
    '--signatures-overhead',
    'only compare signed manifest GET throughput with the signature trust policy off and enforced (A/B rounds)',
  )
  .option(
    '--supply-chain-overhead',
    'only compare signed, scanned manifest GET throughput with the signature and vulnerability policies both off and both enforced (A/B rounds)',
  )
  .option(
    '--supply-chain-inprocess',
    'the same two sides as --supply-chain-overhead inside one process (policies switched between rounds, GETs through inject): CPU per GET',
  )
  .option(
    '--supply-chain-instructions',
    'the same two sides as --supply-chain-overhead, counted in instructions per GET under callgrind (slow)',
  )
  .option(
    '--proxy-cache',
    'only time pulls of one --big-blob-size layer (default 1g) directly from Distribution, through a cache project bound to it (first and cached pull) and from a normal project, in rounds',
  )
  .option(
    '--upstream-rate <rate>',
    "with --proxy-cache: limit the upstream's replies to this rate (tc syntax, e.g. 4gbit; needs root), as for an upstream across a network",
  )
  .option(
    '--instructions-warmup <n>',
    'GETs before callgrind counts (--metrics-instructions, --supply-chain-instructions; default 2000)',
    integer,
  )
  .option('--instructions-requests <n>', 'GETs callgrind counts (default 1000)', integer);

interface Flags {
  quick?: boolean;
  rounds?: number;
  only?: string[];
  big?: boolean;
  berthRuntime?: string;
  berthNodeArgs?: string[];
  berthWorkers?: number;
  clusterScaling?: boolean;
  pin?: boolean;
  blobSize?: number;
  bigBlobSize?: number;
  images?: number;
  layers?: number;
  layerSize?: number;
  parallel?: number;
  connections?: number;
  duration?: number;
  loadBlobSize?: number;
  tags?: number;
  repositories?: number;
  results?: string;
  variant?: string;
  metricsOverhead?: boolean;
  metricsInstructions?: boolean;
  metricsInstructionsDir?: string;
  policiesOverhead?: boolean;
  signaturesOverhead?: boolean;
  supplyChainOverhead?: boolean;
  supplyChainInstructions?: boolean;
  supplyChainInprocess?: boolean;
  proxyCache?: boolean;
  upstreamRate?: string;
  instructionsWarmup?: number;
  instructionsRequests?: number;
}

function optionsFromFlags(flags: Flags): BenchOptions {
  if (flags.berthRuntime !== undefined && flags.berthRuntime !== 'build' && flags.berthRuntime !== 'tsx') {
    throw new InvalidArgumentError('--berth-runtime must be build or tsx');
  }
  if (flags.upstreamRate !== undefined && (!flags.proxyCache || !LINK_RATE.test(flags.upstreamRate))) {
    throw new InvalidArgumentError('--upstream-rate goes with --proxy-cache and takes a tc rate such as 500mbit or 4gbit');
  }
  if (flags.variant !== undefined && !(flags.variant in BERTH_VARIANTS)) {
    throw new InvalidArgumentError(`--variant must be one of ${Object.keys(BERTH_VARIANTS).join(', ')}`);
  }
  const explicit: Partial<BenchOptions> = {
    quick: flags.quick,
    rounds: flags.rounds,
    only: flags.only,
    big: flags.big,
    berthRuntime: flags.berthRuntime as BenchOptions['berthRuntime'] | undefined,
    berthNodeArgs: flags.berthNodeArgs,
    berthWorkers: flags.berthWorkers,
    pin: flags.pin,
    blobSize: flags.blobSize,
    bigBlobSize: flags.bigBlobSize,
    images: flags.images,
    layersPerImage: flags.layers,
    layerSize: flags.layerSize,
    skopeoParallel: flags.parallel,
    connections: flags.connections,
    durationSeconds: flags.duration,
    loadBlobSize: flags.loadBlobSize,
    tags: flags.tags,
    repositories: flags.repositories,
    resultsDir: flags.results,
    variant: flags.variant,
  };
  const defined = Object.fromEntries(Object.entries(explicit).filter(([, v]) => v !== undefined)) as Partial<BenchOptions>;
  return resolveOptions(defined);
}

async function main(): Promise<void> {
  const flags = program.parse(process.argv).opts<Flags>();
  const options = optionsFromFlags(flags);
  if (flags.clusterScaling) {
    process.stdout.write(`\n${await runClusterScaling(options)}`);
    return;
  }
  if (flags.metricsOverhead) {
    process.stdout.write(`\n${await runMetricsOverhead(options)}`);
    return;
  }
  if (flags.metricsInstructions) {
    process.stdout.write(
      `\n${await runMetricsInstructions(options, { warmup: flags.instructionsWarmup ?? 2000, requests: flags.instructionsRequests ?? 1000, keepDumpsIn: flags.metricsInstructionsDir })}`,
    );
    return;
  }
  if (flags.policiesOverhead) {
    process.stdout.write(`\n${await runPoliciesOverhead(options)}`);
    return;
  }
  if (flags.signaturesOverhead) {
    process.stdout.write(`\n${await runSignaturesOverhead(options)}`);
    return;
  }
  if (flags.supplyChainOverhead) {
    process.stdout.write(`\n${await runSupplyChainOverhead(options)}`);
    return;
  }
  if (flags.supplyChainInprocess) {
    process.stdout.write(`\n${await runSupplyChainInProcess(options)}`);
    return;
  }
  if (flags.proxyCache) {
    process.stdout.write(
      `\n${await runProxyCacheBench(options, flags.bigBlobSize ?? (options.quick ? options.bigBlobSize : PROXY_CACHE_DEFAULT_SIZE), flags.upstreamRate)}`,
    );
    return;
  }
  if (flags.supplyChainInstructions) {
    process.stdout.write(
      `\n${await runSupplyChainInstructions(options, { warmup: flags.instructionsWarmup ?? 2000, requests: flags.instructionsRequests ?? 1000, keepDumpsIn: flags.metricsInstructionsDir })}`,
    );
    return;
  }
  const started = Date.now();
  const result = await runBench(options);
  const markdown = renderMarkdown(result);
  process.stdout.write(`\n${markdown}`);
  if (options.resultsDir) {
    const dir = path.resolve(ROOT, options.resultsDir);
    writeResults(dir, result, markdown);
    process.stderr.write(
      `results written to ${path.relative(process.cwd(), dir) || '.'}/latest.{md,json} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
    );
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping the servers\n`);
    void stopAllServers().finally(() => process.exit(130));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
