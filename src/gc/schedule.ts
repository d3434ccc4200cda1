import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { GarbageCollector } from './collector.js';

/**
 * Runs the collector on a cron schedule (`gc.schedule`, e.g. "0 * * * *" = hourly).
 * Every replica schedules it; the GC lease makes exactly one of them collect. A run still
 * going when the next is due is not overlapped. The timer never keeps the process alive.
 */
export function scheduleGc(collector: GarbageCollector, expression: string, logger: Logger): { stop(): void } {
  const job = new Cron(expression, { protect: true, unref: true, name: 'gc' }, async () => {
    try {
      await collector.run();
    } catch (err) {
      logger.error({ err }, 'gc: scheduled run failed');
    }
  });
  logger.debug({ schedule: expression, next: job.nextRun()?.toISOString() }, 'gc: scheduled');
  return { stop: () => job.stop() };
}

