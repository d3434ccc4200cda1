import { readFileSync, writeFileSync } from 'node:fs';

export interface RssFigures {
  /** Peak resident set during the measured phase, MB (10^6 bytes). */
  peakMB: number;
  /** Median of the VmRSS samples during the measured phase, MB. */
  steadyMB: number;
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

/**
 * Polls a server's memory every 100 ms. `startMeasuring()` marks the end of seeding: the
 * kernel's high-water mark is reset (writing 5 to /proc/<pid>/clear_refs) so the peak
 * belongs to the workload, not to its preparation.
 */
export class RssSampler {
  private samples: number[] = [];
  private sampledPeak = 0;
  private hwmReset = false;
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
    this.sample();
  }

  /** Stops polling; call before the process exits. */
  stop(): RssFigures {
    this.sample();
    clearInterval(this.timer);
    const hwm = this.hwmReset ? (readMemory(this.pid)?.hwm ?? 0) : 0;
    return { peakMB: Math.max(hwm, this.sampledPeak) / MB, steadyMB: median(this.samples) / MB };
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
