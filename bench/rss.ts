import { readFileSync, writeFileSync } from 'node:fs';

export interface RssFigures {
  /** Peak resident set during the measured phase, MB (10^6 bytes). */
  peakMB: number;
  /** Median of the VmRSS samples during the measured phase, MB. */
  steadyMB: number;
  /** CPU time (user + system) the server spent during the measured phase, seconds. */
  cpuSeconds: number;
}

const MB = 1e6;

/** VmRSS and VmHWM of a process, in bytes, from /proc/<pid>/status. */
export function readMemory(pid: number): { rss: number; hwm: number } | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** User + system CPU time of a process so far, seconds, from /proc/<pid>/stat. */
export function readCpuSeconds(pid: number): number | null {
  return cpuSecondsOfStat(`/proc/${pid}/stat`);
}

/** CPU seconds (user + system) of one thread `tid` of process `pid`, or null if it is gone. */
export function readThreadCpuSeconds(pid: number, tid: number): number | null {
  return cpuSecondsOfStat(`/proc/${pid}/task/${tid}/stat`);
}

function cpuSecondsOfStat(file: string): number | null {
  let stat: string;
  try {
    stat = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  // Fields after the parenthesised command name (which may contain spaces): utime is the 12th, stime the 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** The pids of a process and all its descendants (a `berth serve` primary and its cluster workers). */
export function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Gone, or a kernel without /proc/<pid>/task/<tid>/children: the process alone.
  }
  return [pid, ...children.flatMap(processTree)];
}

/** readCpuSeconds summed over a process and its descendants alive now (a cluster's workers). */
export function readTreeCpuSeconds(pid: number): number | null {
  const own = readCpuSeconds(pid);
  if (own === null) return null;
  return processTree(pid)
    .slice(1)
    .reduce((sum, child) => sum + (readCpuSeconds(child) ?? 0), own);
}

/**
 * Seconds all cores together spent busy (everything but idle and iowait) and idle (idle + iowait)
 * so far, from /proc/stat; NaN where there is no /proc. Busy time includes the kernel's own
 * threads (writeback flushers, softirqs), which no process's /proc/<pid>/stat is charged with.
 */
export function machineCpuSeconds(): { busy: number; idle: number } {
  try {
    const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = ticks[3]! + ticks[4]!;
    const total = ticks.reduce((sum, t) => sum + t, 0);
    return { busy: (total - idle) / CLOCK_TICKS_PER_SECOND, idle: idle / CLOCK_TICKS_PER_SECOND };
  } catch {
    return { busy: Number.NaN, idle: Number.NaN };
  }
}

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Polls a server's memory every 100 ms and notes its CPU time. `startMeasuring()` marks the end of seeding: the
 * kernel's high-water mark is reset (writing 5 to /proc/<pid>/clear_refs) so the peak
 * belongs to the workload, not to its preparation.
 */
export class RssSampler {
  private samples: number[] = [];
  private sampledPeak = 0;
  private hwmReset = false;
  private cpuAtStart = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    intervalMs = 100,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  startMeasuring(): void {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      this.hwmReset = true;
    } catch {
      this.hwmReset = false; // not permitted here: fall back to the sampled maximum
    }
    this.samples = [];
    this.sampledPeak = 0;
    this.cpuAtStart = readCpuSeconds(this.pid) ?? 0;
    this.sample();
  }

  /** Stops polling; call before the process exits. */
  stop(): RssFigures {
    this.sample();
    clearInterval(this.timer);
    const hwm = this.hwmReset ? (readMemory(this.pid)?.hwm ?? 0) : 0;
    const cpu = readCpuSeconds(this.pid);
    return {
      peakMB: Math.max(hwm, this.sampledPeak) / MB,
      steadyMB: median(this.samples) / MB,
      cpuSeconds: cpu === null ? Number.NaN : cpu - this.cpuAtStart,
    };
  }

  private sample(): void {
    const memory = readMemory(this.pid);
    if (!memory) return;
    this.samples.push(memory.rss);
    this.sampledPeak = Math.max(this.sampledPeak, memory.rss);
  }
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
