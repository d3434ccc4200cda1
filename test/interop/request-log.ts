import { setTimeout as sleep } from 'node:timers/promises';
import type { BerthProcess } from '../helpers/server.js';

/**
 * Berth's per-request log lines (`{"method","url","status",…,"msg":"request"}`), read
 * from a `berth serve` child's output, so interop tests can check which requests a
 * client actually made (e.g. that a push mounted instead of uploading).
 */
export interface LoggedRequest {
  method: string;
  url: string;
  status: number;
}

export function loggedRequests(output: string): LoggedRequest[] {
  const requests: LoggedRequest[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('"msg":"request"')) continue;
    const entry = JSON.parse(line) as Partial<LoggedRequest>;
    if (typeof entry.method === 'string' && typeof entry.url === 'string' && typeof entry.status === 'number') {
      requests.push({ method: entry.method, url: entry.url, status: entry.status });
    }
  }
  return requests;
}

/** Requests logged after the first `since` lines of `output` were already consumed. */
export function requestsSince(output: string, since: number): LoggedRequest[] {
  return loggedRequests(output).slice(since);
}

/**
 * The first request after `since` that satisfies `matches`, waiting briefly for it: the
 * server logs a request once its response is sent, so a client can exit before the
 * line reaches our pipe.
 */
export async function waitForRequest(
  berth: BerthProcess,
  since: number,
  matches: (request: LoggedRequest) => boolean,
  timeoutMs = 5_000,
): Promise<LoggedRequest> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = requestsSince(berth.output(), since).find(matches);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching request logged within ${timeoutMs} ms`);
    await sleep(50);
  }
}
