import type { Logger } from 'pino';

export interface Job {
  name: string;
  intervalMs: number;
  run(): Promise<void>;
}

/**
 * Runs background jobs on fixed intervals, never two runs of the same job at once.
 * Timers are unref'd so they never keep the process alive.
 */
export class Scheduler {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<string>();

  constructor(private readonly logger: Logger) {}

  add(job: Job): void {
    const tick = async () => {
      if (this.running.has(job.name)) return;
      this.running.add(job.name);
      try {
        await job.run();
      } catch (err) {
        this.logger.error({ err, job: job.name }, 'background job failed');
      } finally {
        this.running.delete(job.name);
      }
    };
    const timer = setInterval(() => void tick(), job.intervalMs);
    timer.unref();
    this.timers.push(timer);
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
  }
}
