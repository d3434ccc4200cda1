import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MachineInfo, MachineLimits } from './machine.js';
import type { BenchOptions } from './options.js';
import { median, type RssFigures } from './rss.js';
import type { ServerKind } from './servers.js';
import type { FigureSpec, Target } from './workload.js';

export const RSS_TARGET_MB = 150;

export type Status = 'PASS' | 'MISS' | '';

export interface FigureResult extends FigureSpec {
  workload: string;
  /** One value per round. */
  rounds: Record<ServerKind, number[]>;
  median: Record<ServerKind, number>;
  /** Berth / Distribution. */
  ratio: number;
  status: Status;
}

export interface RssResult {
  workload: string;
  rounds: Record<ServerKind, RssFigures[]>;
  /** Highest peak over the rounds (the conservative choice for a ceiling). */
  peakMB: Record<ServerKind, number>;
  steadyMB: Record<ServerKind, number>;
  /** Median CPU seconds over the rounds. */
  cpuSeconds: Record<ServerKind, number>;
  status: Status;
}

export interface BenchResult {
  machine: MachineInfo;
  limits: MachineLimits | null;
  options: BenchOptions;
  notes: string[];
  figures: FigureResult[];
  rss: RssResult[];
  /** Distinct correctness checks that passed, per server (a failed check aborts the run). */
  checks: Record<ServerKind, string[]>;
  /** Single-stream push as a share of the machine limit. */
  pushEfficiency: Record<ServerKind, number> | null;
  loadAverageAtEnd: number;
  durationSeconds: number;
}

/** Collects per-round measurements, then reduces them to medians and ratios. */
export class ResultCollector {
  private readonly values = new Map<string, { spec: FigureSpec; workload: string; rounds: Record<ServerKind, number[]> }>();
  private readonly memory = new Map<string, Record<ServerKind, RssFigures[]>>();
  readonly checks: Record<ServerKind, Set<string>> = { berth: new Set(), distribution: new Set() };

  addFigures(workload: string, specs: FigureSpec[], server: ServerKind, measured: Record<string, number>): void {
    for (const spec of specs) {
      const value = measured[spec.id];
      if (value === undefined || !Number.isFinite(value)) throw new Error(`workload ${workload} did not measure ${spec.id}`);
      const entry = this.values.get(spec.id) ?? { spec, workload, rounds: { berth: [], distribution: [] } };
      entry.rounds[server].push(value);
      this.values.set(spec.id, entry);
    }
  }

  addRss(workload: string, server: ServerKind, figures: RssFigures): void {
    const entry = this.memory.get(workload) ?? { berth: [], distribution: [] };
    entry[server].push(figures);
    this.memory.set(workload, entry);
  }

  figures(): FigureResult[] {
    return [...this.values.values()].map(({ spec, workload, rounds }) => {
      const med = { berth: median(rounds.berth), distribution: median(rounds.distribution) };
      const ratio = med.berth / med.distribution;
      return { ...spec, workload, rounds, median: med, ratio, status: spec.target ? targetStatus(med.berth, ratio, spec.target) : '' };
    });
  }

  rss(): RssResult[] {
    return [...this.memory.entries()].map(([workload, rounds]) => {
      const peakMB = {
        berth: Math.max(...rounds.berth.map((r) => r.peakMB)),
        distribution: Math.max(...rounds.distribution.map((r) => r.peakMB)),
      };
      const steadyMB = {
        berth: median(rounds.berth.map((r) => r.steadyMB)),
        distribution: median(rounds.distribution.map((r) => r.steadyMB)),
      };
      const cpuSeconds = {
        berth: median(rounds.berth.map((r) => r.cpuSeconds)),
        distribution: median(rounds.distribution.map((r) => r.cpuSeconds)),
      };
      return { workload, rounds, peakMB, steadyMB, cpuSeconds, status: peakMB.berth <= RSS_TARGET_MB ? 'PASS' : 'MISS' };
    });
  }
}

function targetStatus(berth: number, ratio: number, target: Target): Status {
  if ('ratioAtLeast' in target) return ratio >= target.ratioAtLeast ? 'PASS' : 'MISS';
  if ('ratioAtMost' in target) return ratio <= target.ratioAtMost ? 'PASS' : 'MISS';
  if ('atLeast' in target) return berth >= target.atLeast ? 'PASS' : 'MISS';
  return berth <= target.atMost ? 'PASS' : 'MISS';
}

function targetText(target: Target | undefined, unit: string): string {
  if (!target) return '';
  if ('ratioAtLeast' in target) return `≥ ${target.ratioAtLeast}×`;
  if ('ratioAtMost' in target) return `≤ ${target.ratioAtMost}×`;
  if ('atLeast' in target) return `Berth ≥ ${target.atLeast} ${unit}`;
  return `Berth ≤ ${target.atMost} ${unit}`;
}

function num(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function renderMarkdown(result: BenchResult): string {
  const { machine, options } = result;
  const lines: string[] = [];
  lines.push(`# Berth vs CNCF Distribution`, '');
  lines.push(
    `${machine.date} · ${machine.cpus} CPUs (${machine.cpuModel}) · ${machine.memoryGiB} GiB RAM · Linux ${machine.kernel} · Node ${machine.node} · ${machine.distribution}`,
  );
  lines.push(
    `Load average (1 min) ${num(machine.loadAverageAtStart)} at start, ${num(result.loadAverageAtEnd)} at end · run took ${num(result.durationSeconds)} s`,
  );
  lines.push(
    `Berth runtime: ${options.berthRuntime === 'build' ? 'compiled JavaScript (esbuild transpile of src/)' : 'tsx loader'}, log level warn · rounds: ${options.rounds} (medians; servers alternate which goes first) · MB = 10^6 bytes`,
    '',
  );
  if (result.notes.length > 0) lines.push(...result.notes.map((n) => `> ${n}`), '');

  lines.push('| Figure | Unit | Berth | Distribution | Berth/Distribution | Target | |', '|---|---|--:|--:|--:|--:|---|');
  for (const f of result.figures) {
    lines.push(
      `| ${f.label} | ${f.unit} | ${num(f.median.berth)} | ${num(f.median.distribution)} | ${f.target && ('atMost' in f.target || 'atLeast' in f.target) ? '—' : `${num(f.ratio)}×`} | ${targetText(f.target, f.unit)} | ${f.status} |`,
    );
  }
  lines.push(
    '',
    'Memory and CPU (RSS in MB; peak = highest over rounds of VmHWM during the measured phase, steady = median VmRSS sampled every 100 ms; ' +
      'CPU = median user + system seconds the server process spent in the measured phase, which shows how much of the 2 cores each server leaves to the clients):',
    '',
  );
  lines.push(
    '| Workload | Berth peak | Berth steady | Distribution peak | Distribution steady | Target (Berth peak) | | Berth CPU s | Distribution CPU s |',
    '|---|--:|--:|--:|--:|--:|---|--:|--:|',
  );
  for (const r of result.rss) {
    lines.push(
      `| ${r.workload} | ${num(r.peakMB.berth)} | ${num(r.steadyMB.berth)} | ${num(r.peakMB.distribution)} | ${num(r.steadyMB.distribution)} | ≤ ${RSS_TARGET_MB} | ${r.status} | ${num(r.cpuSeconds.berth)} | ${num(r.cpuSeconds.distribution)} |`,
    );
  }
  if (result.limits) {
    const l = result.limits;
    const eff = result.pushEfficiency;
    lines.push(
      '',
      `Machine limit for a single-stream push: min(SHA-256 ${num(l.sha256MBps)} MB/s [openssl, 16 KiB blocks], sequential write ${num(l.diskWriteMBps)} MB/s [dd conv=fdatasync]) = ${num(l.pushLimitMBps)} MB/s; page-cache read ${num(l.cacheReadMBps)} MB/s [dd, 1 MiB blocks].` +
        (eff ? ` Berth reaches ${(eff.berth * 100).toFixed(0)}% of it, Distribution ${(eff.distribution * 100).toFixed(0)}%.` : ''),
    );
  }
  lines.push(
    '',
    `Correctness: ${result.checks.berth.length} distinct checks passed on Berth, ${result.checks.distribution.length} on Distribution (digests of pulled data, manifest bytes, listings; any failure aborts the run).`,
  );
  const misses = [
    ...result.figures.filter((f) => f.status === 'MISS').map((f) => f.label),
    ...result.rss.filter((r) => r.status === 'MISS').map((r) => `RSS ${r.workload}`),
  ];
  lines.push('', misses.length === 0 ? 'All targets met.' : `Targets missed: ${misses.join('; ')}.`, '');
  return lines.join('\n');
}

export function writeResults(dir: string, result: BenchResult, markdown: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'latest.md'), markdown);
  writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
}
