import v8 from 'node:v8';
import { v8Gc, type GcFunction } from './runtime/gc.js';

/**
 * Gives back the old generation's free pages once a `berth serve` process goes idle.
 *
 * After start-up (and after any busy spell) V8's old generation is fragmented: ~7 MB of its
 * ~37 MB are free slots spread over pages that each still hold live objects, so they stay
 * resident. V8 compacts only when its heuristics see enough to gain, which at this heap size
 * they rarely do. One full collection with compaction, run when the process has been idle for a
 * whole interval, moves the live objects together and unmaps the emptied pages: idle RSS
 * 100 -> 95 MB per worker (docs/performance.md › Memory at idle).
 *
 * Idle is read from the process's own CPU time (no hook on the request path): an interval in
 * which it spent under 2 % of one core. It compacts once per idle spell: again only after a
 * busy interval. A compaction costs ~50-100 ms of CPU on one core, at a moment nothing is served.
 */
export interface IdleCompactionOptions {
  /** How often the CPU time is read, ms. */
  intervalMs?: number;
  /** CPU share of one core under which an interval counts as idle. */
  idleShare?: number;
  /**
   * Also compact once right away (default true): start-up leaves the heap fragmented, and a
   * server under load from its first second never has an idle interval to give it back in
   * (bench: its RSS before any load was ~105-110 MB against ~90 once compacted).
   */
  atStart?: boolean;
  /** Told after each compaction: its duration and the heap's committed size before and after, bytes. */
  onCompaction?: (figures: { when: 'start' | 'idle'; ms: number; heapBefore: number; heapAfter: number }) => void;
}

export function compactWhenIdle(options: IdleCompactionOptions = {}): { stop(): void; compactions(): number } {
  const intervalMs = options.intervalMs ?? 10_000;
  const idleMicros = intervalMs * 1000 * (options.idleShare ?? 0.02);
  const gc = v8Gc();
  let dirty = true; // start-up fragmented the heap
  let count = 0;
  const run = (when: 'start' | 'idle') => {
    if (!gc) return;
    const heapBefore = v8.getHeapStatistics().total_heap_size;
    const began = performance.now();
    compact(gc);
    count += 1;
    options.onCompaction?.({ when, ms: performance.now() - began, heapBefore, heapAfter: v8.getHeapStatistics().total_heap_size });
  };
  // The first idle interval compacts again: what start-up's last steps and the first requests left.
  if (options.atStart ?? true) run('start');
  let last = cpuMicros();
  const timer = setInterval(() => {
    const now = cpuMicros();
    const spent = now - last;
    if (spent >= idleMicros) {
      dirty = true;
    } else if (dirty) {
      dirty = false;
      run('idle');
    }
    last = cpuMicros(); // the compaction's own CPU is not activity
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), compactions: () => count };
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function compact(gc: GcFunction): void {
  // The flag is read at each full collection (as --no-allocation-site-pretenuring in src/cli.ts).
  v8.setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    v8.setFlagsFromString('--no-compact-on-every-full-gc');
  }
}
