import { z } from 'zod';
import { RegistryError } from '../../core/errors.js';
import { PolicySchema } from '../../retention/policy.js';
import type { RetentionRun, StoredPolicy } from '../../retention/ports.js';
import type { RetentionService } from '../../retention/service.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';

const NewRun = z.object({ dryRun: z.boolean().default(false).describe('report what a real run would remove, remove nothing') }).strict();
const RunsQuery = z.object({ limit: z.string().regex(/^\d+$/).optional().describe('how many runs, newest first (default 20, at most 100)') });

export function policyView(policy: StoredPolicy) {
  return {
    project: policy.project,
    rules: policy.rules,
    schedule: policy.schedule,
    nextRunAt: policy.nextRunAt?.toISOString() ?? null,
    updatedBy: policy.updatedBy,
    updatedAt: policy.updatedAt.toISOString(),
  };
}

export function runView(run: RetentionRun) {
  return { ...run, startedAt: run.startedAt.toISOString(), finishedAt: run.finishedAt?.toISOString() ?? null };
}

/** The retention service and the project (a project-admin's own, or any for a system admin; 404 for projects the caller cannot see). */
async function managed(ctx: ApiContext): Promise<{ retention: RetentionService; project: string }> {
  const project = (await projectWith(ctx, 'manage-project')).name;
  return { retention: ctx.features.retention!, project };
}

export const retentionRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/projects/:project/retention',
    summary: "The project's retention policy (project-admin)",
    handler: async (ctx) => {
      const { retention, project } = await managed(ctx);
      const policy = await retention.policy(project);
      if (!policy) throw new RegistryError('NOT_FOUND', `project ${project} has no retention policy`, { project });
      return policyView(policy);
    },
  },
  {
    method: 'PUT',
    path: '/projects/:project/retention',
    summary: "Set the project's retention policy: rules and cron schedule (project-admin)",
    body: PolicySchema,
    handler: async (ctx) => {
      const { retention, project } = await managed(ctx);
      return policyView(await retention.setPolicy(project, ctx.body, ctx.actor.name));
    },
  },
  {
    method: 'DELETE',
    path: '/projects/:project/retention',
    summary: "Remove the project's retention policy (project-admin)",
    status: 204,
    handler: async (ctx) => {
      const { retention, project } = await managed(ctx);
      await retention.deletePolicy(project);
    },
  },
  {
    method: 'POST',
    path: '/projects/:project/retention/runs',
    summary: 'Start a retention run now, or a dry run; answers its id at once (project-admin)',
    body: NewRun,
    status: 202,
    handler: async (ctx) => {
      const { retention, project } = await managed(ctx);
      const { dryRun } = ctx.body as z.infer<typeof NewRun>;
      const id = await retention.start(project, { dryRun, trigger: 'manual', actor: ctx.actor.name });
      return { id, project, dryRun, status: 'running' };
    },
  },
  {
    method: 'GET',
    path: '/projects/:project/retention/runs',
    summary: "The project's retention runs with their totals, newest first (project-admin)",
    query: RunsQuery,
    handler: async (ctx) => {
      const { retention, project } = await managed(ctx);
      const limit = ctx.query.limit === undefined ? 20 : Number(ctx.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new RegistryError('INVALID_ARGUMENT', `limit must be a whole number from 1 to 100, got "${String(ctx.query.limit).slice(0, 20)}"`);
      return (await retention.runs(project, limit)).map(runView);
    },
  },
  {
    method: 'GET',
    path: '/projects/:project/retention/runs/:id',
    summary: 'One retention run with its report: per repository, the tags kept and why, removed, refused (project-admin)',
    handler: async (ctx) => {
      const { retention, project } = await managed(ctx);
      return runView(await retention.runById(project, Number(ctx.params.id)));
    },
  },
];
