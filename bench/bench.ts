import { rmSync } from 'node:fs';
import os from 'node:os';
import { describeMachine, measureMachineLimits } from './machine.js';
import { BERTH_VARIANT_SETUP, BERTH_VARIANTS, scaledDownNotes, type BenchOptions } from './options.js';
import { ResultCollector, type BenchResult } from './report.js';
import { RssSampler } from './rss.js';
import {
  ensureDistributionInstalled,
  prepareBerthBuild,
  startServerOfKind,
  tempDir,
  type BerthLaunch,
  type ServerKind,
} from './servers.js';
import { CheckFailed, type Workload } from './workload.js';
import { blobLoadWorkload } from './workloads/blob-load.js';
import { bigBlobWorkload } from './workloads/big-blob.js';
import { bigPushWorkload } from './workloads/big-push.js';
import { blobStreamWorkload } from './workloads/blob-stream.js';
import { listingsWorkload } from './workloads/listings.js';
import { manifestLoadWorkload } from './workloads/manifest-load.js';
import { skopeoPushWorkload } from './workloads/skopeo-push.js';

function scaledNote(options: BenchOptions): string[] {
  const changed = scaledDownNotes(options);
  return changed.length === 0
    ? []
    : [`${options.quick ? 'Quick mode, s' : 'S'}izes differ from the issue's defaults: ${changed.join(', ')}.`];
}

export type Log = (line: string) => void;

export const WORKLOAD_IDS = ['blob-stream', 'big-push', 'skopeo-push', 'manifest-load', 'blob-load', 'listings', 'big-blob'] as const;

/** Workloads a run includes only when asked for (`--big`, or named in `--only`). */
const OPT_IN = new Set(['big-blob']);

export function createWorkloads(options: BenchOptions): Workload[] {
  const all = [
    blobStreamWorkload(options),
    bigPushWorkload(options),
    skopeoPushWorkload(options),
    manifestLoadWorkload(options),
    blobLoadWorkload(options),
    listingsWorkload(options),
    bigBlobWorkload(options),
  ];
  const unknown = options.only.filter((id) => !all.some((w) => w.id === id));
  if (unknown.length > 0) throw new Error(`unknown workload ${unknown.join(', ')}; known: ${WORKLOAD_IDS.join(', ')}`);
  if (options.only.length > 0) return all.filter((w) => options.only.includes(w.id));
  return all.filter((w) => !OPT_IN.has(w.id) || (w.id === 'big-blob' && options.big));
}

interface RunState {
  options: BenchOptions;
  /** Seeded data directories by `${workload}/${kind}`. */
  templates: Map<string, string>;
  launch: BerthLaunch;
  collector: ResultCollector;
  notes: Set<string>;
  log: Log;
}

/** Seeds one server of `kind` for `workload` (once per run) and keeps its data as a template. */
async function seedTemplate(workload: Workload, kind: ServerKind, state: RunState): Promise<string | undefined> {
  const key = `${workload.id}/${kind}`;
  if (!workload.seed || state.templates.has(key)) return state.templates.get(key);
  const started = Date.now();
  const server = await startServerOfKind(kind, state.launch);
  try {
    await workload.seed(server);
  } catch (err) {
    await server.stop();
    throw err;
  }
  await server.stop({ keepData: true });
  state.templates.set(key, server.dataDir);
  state.log(`  ${kind.padEnd(12)} seeded in ${((Date.now() - started) / 1000).toFixed(0)} s (not measured)`);
  return server.dataDir;
}

/** One workload on one freshly started server; the server is stopped whatever happens. */
async function runOnce(workload: Workload, kind: ServerKind, state: RunState): Promise<void> {
  const seedFrom = await seedTemplate(workload, kind, state);
  const server = await startServerOfKind(kind, state.launch, { seedFrom });
  const sampler = new RssSampler(server.pid);
  try {
    const measured = await workload.run({
      server,
      options: state.options,
      startMeasuring: () => sampler.startMeasuring(),
      check: (ok, what, detail) => {
        if (!ok) throw new CheckFailed(`${kind}: check failed: ${what}${detail ? ` (${detail})` : ''}`);
        state.collector.checks[kind].add(`${workload.id}: ${what}`);
      },
      note: (text) => state.notes.add(text),
    });
    const rss = sampler.stop();
    state.collector.addFigures(workload.id, workload.figures, kind, measured);
    state.collector.addRss(workload.id, kind, rss);
    const shown = Object.entries(measured).map(([id, value]) => `${id}=${value.toFixed(2)}`);
    state.log(`  ${kind.padEnd(12)} ${shown.join(' ')} peakRSS=${rss.peakMB.toFixed(0)}MB cpu=${rss.cpuSeconds.toFixed(2)}s`);
  } catch (err) {
    sampler.stop();
    const output = server.output().trim();
    if (output) state.log(`  ${kind} output (tail):\n${output.slice(-2000)}`);
    throw err;
  } finally {
    await server.stop();
  }
}

/**
 * Runs every selected workload against freshly started Berth and Distribution servers,
 * alternating which goes first, for `options.rounds` rounds, and reduces the results.
 */
export async function runBench(options: BenchOptions, log: Log = (line) => process.stderr.write(`${line}\n`)): Promise<BenchResult> {
  ensureDistributionInstalled();
  const workDir = tempDir('berth-bench-');
  const workloads = createWorkloads(options);
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
  let state: RunState | undefined;
  try {
    const machine = describeMachine();
    if (machine.loadAverageAtStart > 1)
      log(`warning: load average is ${machine.loadAverageAtStart.toFixed(1)}; other work on this machine will skew the figures`);
    log(`measuring machine limits (openssl ${options.openSslSeconds}s, dd ${options.ddSize} bytes)…`);
    const limits = options.ddSize > 0 ? measureMachineLimits(workDir, options.openSslSeconds, options.ddSize) : null;
    let buildDir: string | undefined;
    if (options.berthRuntime === 'build') {
      log('compiling Berth into a private build directory…');
      buildDir = await prepareBerthBuild(workDir);
    }
    const env = {
      ...(options.variant === null ? {} : BERTH_VARIANTS[options.variant]),
      ...(options.berthWorkers === undefined ? {} : { BERTH_SERVER_WORKERS: String(options.berthWorkers) }),
    };
    const setup = options.variant === null ? undefined : BERTH_VARIANT_SETUP[options.variant];
    state = {
      options,
      templates: new Map(),
      launch: { runtime: options.berthRuntime, buildDir, nodeArgs: options.berthNodeArgs, env, setup },
      collector: new ResultCollector(),
      notes: new Set(),
      log,
    };
    for (const workload of workloads) {
      log(`preparing ${workload.id}… (${elapsed()})`);
      await workload.prepare?.();
    }
    for (let round = 0; round < options.rounds; round++) {
      for (const [index, workload] of workloads.entries()) {
        if (round >= (workload.rounds ?? options.rounds)) continue;
        const order: ServerKind[] = (round + index) % 2 === 0 ? ['berth', 'distribution'] : ['distribution', 'berth'];
        log(`[round ${round + 1}/${options.rounds}] ${workload.title} (${elapsed()})`);
        for (const kind of order) await runOnce(workload, kind, state);
      }
    }
    const figures = state.collector.figures();
    const push = figures.find((f) => f.id === 'blob-push');
    return {
      machine,
      limits,
      options,
      notes: [...scaledNote(options), ...state.notes],
      figures,
      rss: state.collector.rss(),
      checks: { berth: [...state.collector.checks.berth], distribution: [...state.collector.checks.distribution] },
      loadAverageAtEnd: os.loadavg()[0]!,
      durationSeconds: (Date.now() - started) / 1000,
      pushEfficiency:
        push && limits
          ? { berth: push.median.berth / limits.pushLimitMBps, distribution: push.median.distribution / limits.pushLimitMBps }
          : null,
    };
  } finally {
    for (const workload of workloads) await workload.cleanup?.();
    for (const dir of state?.templates.values() ?? []) rmSync(dir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  }
}
