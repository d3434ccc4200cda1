import { Cron } from 'croner';
import type { Logger } from 'pino';
import { newHolderId, withLease, type LeaseStore } from './leases.js';
import type { JobRunStore } from './ports.js';

/** When a job runs: every `everyMs`, or on a cron expression (minute hour day-of-month month day-of-week). */
export type Schedule = { everyMs: number } | { cron: string };

export interface JobResult {
  /** What the run did, for the history (JSON). */
  summary?: unknown;
  /** Nothing to do this time: frequent jobs leave no history row for such runs. */
  idle?: boolean;
}

/**
 * One background job. Everything Berth does on a timer is a Job on the one Scheduler: GC,
 * upload purge, event dispatch, outbox pruning, pull-count flushes (and later retention,
 * replication, scans, webhook delivery).
 */
export interface Job {
  name: string;
  schedule: Schedule;
  /**
   * 'lease' (default): the run holds the lease named after the job in the metadata DB, so
   * exactly one process of a cluster runs it at a time (the others skip that tick).
   * 'process': every process runs it (e.g. flushing its own in-memory counters), or the job
   * takes its own lease (GC shares the `gc` lease with `berth gc`).
   */
  scope?: 'lease' | 'process';
  /**
   * The job handles this process's own memory (flushing its pull counts): every worker of a
   * `berth serve` cluster runs it. Other jobs run in one worker of each server (`start`'s `only`).
   */
  local?: boolean;
  leaseTtlMs?: number;
  /** 'runs' (default): every run is recorded. 'work': only runs that were not idle (for jobs ticking every second). */
  history?: 'runs' | 'work';
  /**
   * A cheap read telling whether a run would find anything to do. When it says no, a timer's
   * tick ends there: no lease taken, nothing written. Jobs that tick every second or two would
   * otherwise write (and on SQLite fsync, on the event loop) a lease twice a tick on an idle
   * registry. A wrong "yes" costs one idle run; work that appears after a "no" is found at the
   * next tick. Not asked for runNow.
   */
  hasWork?(): Promise<boolean>;
  run(signal: AbortSignal): Promise<JobResult | void>;
}

/** Told of every run that finished in this process (metrics), with how long it took. */
export interface JobObserver {
  finished(job: string, outcome: 'ok' | 'failed' | 'skipped' | 'idle', seconds: number): void;
}

export interface JobInfo {
  name: string;
  schedule: Schedule;
  scope: 'lease' | 'process';
  running: boolean;
  nextRunAt: string | null;
}

/**
 * Runs jobs on their schedules, never two runs of one job at once in a process, recording
 * each run (started, finished, outcome, summary) in the metadata DB. Timers are unref'd so
 * they never keep the process alive.
 */
export class Scheduler {
  private readonly jobs = new Map<string, { job: Job; timer: { stop(): void; next(): Date | null } | null }>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly holder = newHolderId();
  private readonly controller = new AbortController();

  constructor(
    private readonly logger: Logger,
    private readonly leases: LeaseStore,
    private readonly history: JobRunStore,
    private readonly observer?: JobObserver,
  ) {}

  /** Registers a job (its timer starts with `start`). */
  add(job: Job): void {
    if (this.jobs.has(job.name)) throw new Error(`job ${job.name} is registered twice`);
    this.jobs.set(job.name, { job, timer: null });
  }

  /**
   * Starts the timers. With `only`, the other jobs get no timer that fires, only one that tells
   * when they next run (another worker of this server runs them; `list` still answers for them).
   */
  start(only?: (job: Job) => boolean): void {
    for (const entry of this.jobs.values()) entry.timer ??= !only || only(entry.job) ? this.timerFor(entry.job) : passiveTimer(entry.job);
  }

  list(): JobInfo[] {
    return [...this.jobs.values()].map(({ job, timer }) => ({
      name: job.name,
      schedule: job.schedule,
      scope: job.scope ?? 'lease',
      running: this.running.has(job.name),
      nextRunAt: timer?.next()?.toISOString() ?? null,
    }));
  }

  /** Runs a job now (unless this process is already running it) and waits for it. */
  async runNow(name: string): Promise<void> {
    const entry = this.jobs.get(name);
    if (!entry) throw new Error(`no job named ${name}`);
    await this.tick(entry.job, true);
  }

  /** Stops the timers and waits for runs in progress (they see their signal aborted). */
  async stop(): Promise<void> {
    for (const entry of this.jobs.values()) entry.timer?.stop();
    this.controller.abort(new Error('scheduler stopped'));
    await Promise.allSettled(this.running.values());
  }

  private timerFor(job: Job): { stop(): void; next(): Date | null } {
    const fire = () => void this.tick(job);
    if ('cron' in job.schedule) {
      // No croner `name`: croner keeps named jobs in one process-wide registry, so a second
      // scheduler in the same process (two servers in one test) would be refused.
      const cron = new Cron(job.schedule.cron, { protect: true, unref: true }, fire);
      return { stop: () => cron.stop(), next: () => cron.nextRun() };
    }
    const every = job.schedule.everyMs;
    let nextAt = Date.now() + every;
    const interval = setInterval(() => {
      nextAt = Date.now() + every;
      fire();
    }, every);
    interval.unref();
    return { stop: () => clearInterval(interval), next: () => new Date(nextAt) };
  }

  private tick(job: Job, asked = false): Promise<void> {
    const inFlight = this.running.get(job.name);
    if (inFlight) return inFlight;
    const run = this.runRecorded(job, asked).finally(() => this.running.delete(job.name));
    this.running.set(job.name, run);
    return run;
  }

  private async runRecorded(job: Job, asked: boolean): Promise<void> {
    if (this.controller.signal.aborted) return;
    const leased = (job.scope ?? 'lease') === 'lease';
    const work = (signal: AbortSignal) => this.record(job, signal);
    try {
      if (!asked && job.hasWork && !(await job.hasWork())) {
        this.observer?.finished(job.name, 'idle', 0);
        return;
      }
      if (!leased) return await work(this.controller.signal);
      const outcome = await withLease(this.leases, job.name, (lease) => this.untilStopped(lease.signal, work), {
        ttlMs: job.leaseTtlMs,
        onLost: (err) => this.logger.warn({ err, job: job.name }, 'job lease lost; the run stops'),
      });
      if (!outcome.acquired) this.logger.debug({ job: job.name, heldBy: outcome.heldBy }, 'job runs elsewhere this time');
    } catch (err) {
      this.logger.error({ err, job: job.name }, 'background job failed');
    }
  }

  /**
   * Runs `work` with a signal aborted when `signal` is or the scheduler stops. (Not
   * AbortSignal.any: on Node 20 a long-lived source signal keeps every combined signal made
   * from it, and the events job makes one a second.)
   */
  private async untilStopped<T>(signal: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const both = new AbortController();
    const abort = () => both.abort(this.controller.signal.reason ?? signal.reason);
    if (signal.aborted || this.controller.signal.aborted) abort();
    signal.addEventListener('abort', abort, { once: true });
    this.controller.signal.addEventListener('abort', abort, { once: true });
    try {
      return await work(both.signal);
    } finally {
      signal.removeEventListener('abort', abort);
      this.controller.signal.removeEventListener('abort', abort);
    }
  }

  private async record(job: Job, signal: AbortSignal): Promise<void> {
    const startedAt = new Date();
    const always = (job.history ?? 'runs') === 'runs';
    const id = always ? await this.history.start(job.name, this.holder, startedAt) : null;
    let result: JobResult | void;
    try {
      result = await job.run(signal);
    } catch (err) {
      this.observer?.finished(job.name, 'failed', (Date.now() - startedAt.getTime()) / 1000);
      const runId = id ?? (await this.history.start(job.name, this.holder, startedAt));
      await this.history.finish(runId, 'failed', { error: (err as Error).message ?? String(err) }, new Date());
      throw err;
    }
    this.observer?.finished(job.name, result?.idle ? (always ? 'skipped' : 'idle') : 'ok', (Date.now() - startedAt.getTime()) / 1000);
    if (id === null && result?.idle) return;
    const runId = id ?? (await this.history.start(job.name, this.holder, startedAt));
    await this.history.finish(runId, result?.idle ? 'skipped' : 'ok', result?.summary, new Date());
  }
}

/** When a job another process runs is next due, by its schedule (nothing fires here). */
function passiveTimer(job: Job): { stop(): void; next(): Date | null } {
  if ('cron' in job.schedule) {
    const cron = new Cron(job.schedule.cron, { paused: true });
    return { stop: () => cron.stop(), next: () => cron.nextRun() };
  }
  const every = job.schedule.everyMs;
  const started = Date.now();
  return { stop: () => undefined, next: () => new Date(started + Math.ceil((Date.now() - started + 1) / every) * every) };
}
