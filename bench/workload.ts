import type { BenchOptions } from './options.js';
import type { BenchServer } from './servers.js';

/** A target on the Berth/Distribution ratio of one figure, or on Berth's own value (atMost, atLeast). */
export type Target = { ratioAtLeast: number } | { ratioAtMost: number } | { atMost: number } | { atLeast: number };

export interface FigureSpec {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  target?: Target;
}

/** Thrown when what a server moved is not what was sent: the run fails. */
export class CheckFailed extends Error {
  override name = 'CheckFailed';
}

export interface WorkloadContext {
  server: BenchServer;
  options: BenchOptions;
  /** Marks the end of seeding: memory peaks are measured from here on. */
  startMeasuring(): void;
  /** Records a correctness check; throws CheckFailed (with `detail`) when `ok` is false. */
  check(ok: boolean, what: string, detail?: string): void;
  /** A remark printed with the results (e.g. a server ignoring a parameter). */
  note(text: string): void;
}

/**
 * One workload. `prepare` builds inputs shared by every server and round (untimed).
 * `seed`, when present, fills one server of each kind once, through the API; every round
 * then starts a fresh server on a copy of that data. `run` gets a freshly started server,
 * does any small setup, calls startMeasuring(), measures and returns a value per figure id.
 */
export interface Workload {
  id: string;
  title: string;
  figures: FigureSpec[];
  /** Rounds to run when fewer than the run's (a bound measured once, not a speed). */
  rounds?: number;
  prepare?(): Promise<void>;
  seed?(server: BenchServer): Promise<void>;
  run(ctx: WorkloadContext): Promise<Record<string, number>>;
  /** Removes what prepare() wrote. */
  cleanup?(): Promise<void>;
}

/** Megabytes (10^6 bytes) per second. */
export function mbPerSecond(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}
