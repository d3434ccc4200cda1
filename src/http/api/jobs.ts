import { RegistryError } from '../../core/errors.js';
import { z } from 'zod';
import type { ApiRoute } from './route.js';
import { JobSchedule, Timestamp } from './schemas.js';

const Job = z.lazy(() =>
  z
    .strictObject({
      name: z.string(),
      schedule: JobSchedule,
      scope: z.enum(['lease', 'process']).describe('lease: one replica of the cluster runs it at a time; process: every replica'),
      running: z.boolean().describe('running in this process now'),
      nextRunAt: z.string().nullable(),
    })
    .meta({ id: 'Job' }),
);
const JobRun = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      job: z.string(),
      holder: z.string().describe('the process that ran it (host:pid:nonce)'),
      startedAt: Timestamp,
      finishedAt: z.string().nullable(),
      outcome: z.enum(['running', 'ok', 'failed', 'skipped']),
      summary: z.unknown().describe('what the run did (job-specific JSON), or the error of a failed run'),
    })
    .meta({ id: 'JobRun' }),
);

const MAX_RUNS = 500;

/** GET /api/v1/jobs: every background job of this process (schedule, next run) and recent runs across the cluster. */
export const jobRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/jobs',
    summary: 'Background jobs (schedule, next run on this replica) and their recent runs (?job=<name>&limit=<n>, newest first)',
    response: z.strictObject({ jobs: z.array(Job), runs: z.array(JobRun) }),
    handler: async (ctx) => {
      const jobs = ctx.features.jobs!;
      const limit = parseLimit(ctx.query.limit);
      const job = ctx.query.job;
      if (job !== undefined && !jobs.list().some((j) => j.name === job)) {
        throw new RegistryError('NOT_FOUND', `no job named ${job.slice(0, 64)}`, { job: job.slice(0, 64) });
      }
      const runs = await jobs.history.list(limit, job);
      return {
        jobs: jobs.list(),
        runs: runs.map((r) => ({ ...r, startedAt: r.startedAt.toISOString(), finishedAt: r.finishedAt?.toISOString() ?? null })),
      };
    },
  },
];

function parseLimit(value: string | undefined): number {
  if (value === undefined) return 50;
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1 || Number(value) > MAX_RUNS) {
    throw new RegistryError('INVALID_ARGUMENT', `limit must be a whole number from 1 to ${MAX_RUNS}, got "${value.slice(0, 32)}"`, {
      limit: value.slice(0, 32),
    });
  }
  return Number(value);
}
