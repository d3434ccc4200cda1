import { Cron } from 'croner';

/** True when `expression` is a cron expression croner accepts (used by the config schema). */
export function isCron(expression: string): boolean {
  try {
    new Cron(expression, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}
