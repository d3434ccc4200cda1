#!/usr/bin/env node
/**
 * Top self-time functions of V8 .cpuprofile files (from `node --cpu-prof`), e.g.
 *   npm run bench -- --only manifest-load --berth-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"
 *   node --import tsx bench/profile-summary.ts /tmp/prof/*.cpuprofile
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  location: string;
  selfMs: number;
  share: number;
}

function shortLocation(url: string, line: number): string {
  if (!url) return '(native)';
  const file = url.replace(/^file:\/\//, '');
  const inModules = file.lastIndexOf('node_modules/');
  const shown = inModules >= 0 ? file.slice(inModules + 'node_modules/'.length) : path.relative(process.cwd(), file);
  return `${shown}:${line + 1}`;
}

/** Self time per function, summed over every node with the same name and location. */
export function selfTimes(profile: CpuProfile): FunctionTime[] {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, { name: string; location: string; micros: number }>();
  profile.samples.forEach((id, i) => {
    const node = byNode.get(id)!;
    const location = shortLocation(node.callFrame.url, node.callFrame.lineNumber);
    const name = node.callFrame.functionName || '(anonymous)';
    const key = `${name}@${location}`;
    const entry = totals.get(key) ?? { name, location, micros: 0 };
    entry.micros += profile.timeDeltas[i] ?? 0;
    totals.set(key, entry);
  });
  const all = [...totals.values()].reduce((sum, e) => sum + e.micros, 0);
  return [...totals.values()]
    .sort((a, b) => b.micros - a.micros)
    .map((e) => ({ name: e.name, location: e.location, selfMs: e.micros / 1000, share: e.micros / all }));
}

/** The report of `profile-summary.ts <file.cpuprofile>… [--top N]` (top 25 by default). */
export function summarise(args: string[]): string {
  const topIndex = args.indexOf('--top');
  const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 25;
  // Without --top, topIndex + 1 is 0: the first file must not be taken for its value.
  const files = topIndex >= 0 ? args.filter((_, i) => i !== topIndex && i !== topIndex + 1) : args;
  let out = '';
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    out += `\n${file} (${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s profiled)\n`;
    for (const row of selfTimes(profile).slice(0, top)) {
      out += `${(row.share * 100).toFixed(1).padStart(5)}%  ${row.selfMs.toFixed(0).padStart(7)} ms  ${row.name}  ${row.location}\n`;
    }
  }
  return out;
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const args = process.argv.slice(2);
  if (args.filter((a) => a !== '--top').length === 0) {
    process.stderr.write('usage: profile-summary.ts <file.cpuprofile>… [--top N]\n');
    process.exit(2);
  }
  process.stdout.write(summarise(args));
}
