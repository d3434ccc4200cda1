/**
 * `npm run bench -- --cluster-scaling`: manifest GET by tag under load on `berth serve` with one
 * worker (today's single process) and with `--berth-workers N` (default: one per core), on the
 * same build, in alternating A/B rounds. Issue 19 asks for N workers ≥ 1.7× one worker on 2 cores.
 *
 * autocannon runs in this process, on the same machine: on 2 cores the load generator takes a
 * share of the cores the cluster would use, so the report gives the CPU split too (server CPU
 * seconds per second of load, and this process's), and the load average.
 */
import http from 'node:http';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { measureManifestGets } from './load.js';
import type { BenchOptions } from './options.js';
import { median, processTree, readMemory } from './rss.js';
import { prepareBerthBuild, startBerth, tempDir, type BerthLaunch } from './servers.js';

type Side = 'single' | 'cluster';

interface Round {
  perSecond: number;
  cpuMicros: number;
  /** Server CPU seconds per second of load (cores the server kept busy). */
  serverCores: number;
  /** This process's (autocannon's) CPU seconds per second of load. */
  loadCores: number;
  /** Resident memory of each worker (MB) after the load, the primary first when clustered. */
  rssMB: number[];
}

/** Waits until `workers` distinct workers answer (Berth-Worker header; each request on a new connection). */
async function allWorkersUp(url: string, workers: number): Promise<void> {
  const seen = new Set<string>();
  const deadline = Date.now() + 120_000;
  while (seen.size < workers) {
    if (Date.now() > deadline) throw new Error(`only workers ${[...seen].join(', ')} of ${workers} answered within 120 s`);
    const worker = await new Promise<string | undefined>((resolve) => {
      http
        .get(`${url}/v2/`, { agent: false }, (res) => {
          res.resume();
          resolve(res.headers['berth-worker'] as string | undefined);
        })
        .on('error', () => resolve(undefined));
    });
    if (worker !== undefined) seen.add(worker);
    else if (workers === 1) return;
    await sleep(50);
  }
}

async function measure(launch: BerthLaunch, options: BenchOptions): Promise<Round> {
  const server = await startBerth(launch);
  try {
    await allWorkersUp(server.url, Number(launch.env?.BERTH_SERVER_WORKERS ?? 1));
    const cpuBefore = process.cpuUsage();
    const figures = await measureManifestGets(server, options, 'bench/cluster');
    const used = process.cpuUsage(cpuBefore);
    const loadCores = (used.user + used.system) / 1e6 / options.durationSeconds;
    const rssMB = processTree(server.pid).map((pid) => (readMemory(pid)?.rss ?? 0) / 1e6);
    return { ...figures, serverCores: (figures.cpuMicros * figures.perSecond) / 1e6, loadCores, rssMB };
  } finally {
    await server.stop();
  }
}

/** Runs the A/B rounds and returns a Markdown report (also logged as it goes). */
export async function runClusterScaling(options: BenchOptions, log = (line: string) => process.stderr.write(`${line}\n`)): Promise<string> {
  const workers = options.berthWorkers ?? os.availableParallelism();
  const buildDir = options.berthRuntime === 'build' ? await prepareBerthBuild(tempDir('berth-bench-')) : undefined;
  const launches: Record<Side, BerthLaunch> = {
    single: { runtime: options.berthRuntime, buildDir, nodeArgs: options.berthNodeArgs, env: { BERTH_SERVER_WORKERS: '1' } },
    cluster: { runtime: options.berthRuntime, buildDir, nodeArgs: options.berthNodeArgs, env: { BERTH_SERVER_WORKERS: String(workers) } },
  };
  const loadAtStart = os.loadavg()[0]!;
  const results: Record<Side, Round[]> = { single: [], cluster: [] };
  const show = (r: Round) =>
    `${r.perSecond.toFixed(0)} req/s, ${r.cpuMicros.toFixed(0)} µs CPU/request, server ${r.serverCores.toFixed(2)} cores, load generator ${r.loadCores.toFixed(2)} cores, RSS ${r.rssMB.map((m) => m.toFixed(0)).join('+')} MB`;
  // The first server measured in a run is slow (disk cache, the load generator's JIT): discarded.
  for (const side of ['single', 'cluster'] as const) log(`[warm-up, discarded] ${side}: ${show(await measure(launches[side], options))}`);
  for (let round = 0; round < options.rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ['single', 'cluster'] : ['cluster', 'single'];
    for (const side of order) {
      const figures = await measure(launches[side], options);
      results[side].push(figures);
      log(`[round ${round + 1}/${options.rounds}] ${side}: ${show(figures)}`);
    }
  }
  const rps = (side: Side) => median(results[side].map((f) => f.perSecond));
  const cpu = (side: Side) => median(results[side].map((f) => f.cpuMicros));
  const cores = (side: Side) => median(results[side].map((f) => f.serverCores));
  const load = (side: Side) => median(results[side].map((f) => f.loadCores));
  const row = (side: Side, label: string) =>
    `| ${label} | ${rps(side).toFixed(0)} | ${cpu(side).toFixed(0)} | ${cores(side).toFixed(2)} | ${load(side).toFixed(2)} | ${results[side].map((f) => f.perSecond.toFixed(0)).join(', ')} |`;
  const ratio = rps('cluster') / rps('single');
  return [
    `## Cluster vs single worker: manifest GET by tag (${options.connections} connections, ${options.durationSeconds} s, ${options.rounds} A/B rounds, ${os.availableParallelism()} cores, load average ${loadAtStart.toFixed(1)} at start, ${os.loadavg()[0]!.toFixed(1)} at end)`,
    '',
    '| berth serve | req/s (median) | server CPU µs per request | server cores busy | load generator cores | rounds (req/s) |',
    '|---|---|---|---|---|---|',
    row('single', '--workers 1'),
    row('cluster', `--workers ${workers}`),
    '',
    `Throughput ${workers} workers / 1 worker: ${ratio.toFixed(2)}× (target ≥ 1.7× on 2 cores). The load generator (autocannon) runs on the same machine and takes the cores shown.`,
    '',
  ].join('\n');
}
