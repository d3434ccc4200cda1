import { z } from 'zod';
import { RegistryError } from '../../core/errors.js';
import { PolicySchema } from '../../retention/policy.js';
import type { RetentionRun, StoredPolicy } from '../../retention/ports.js';
import type { RetentionService } from '../../retention/service.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';
import { RuleSchema } from '../../retention/policy.js';
import { Timestamp } from './schemas.js';

const RetentionPolicySchema = z.lazy(() =>
  z
    .strictObject({
      project: z.string(),
      rules: z.array(RuleSchema),
      schedule: z.string().nullable().describe('cron expression; null: only on demand'),
      nextRunAt: z.string().nullable(),
      updatedBy: z.string().nullable(),
      updatedAt: Timestamp,
    })
    .meta({ id: 'RetentionPolicy' }),
);
const Totals = z.lazy(() =>
  z.strictObject({
    repositories: z.number(),
    tagsKept: z.number(),
    tagsRemoved: z.number(),
    tagsRefused: z.number(),
    manifestsUntagged: z.number(),
    manifestsDeleted: z.number(),
    bytes: z.number().describe('bytes only the artifacts left untagged or deleted reference: what GC will then free'),
  }),
);
const Tagged = { tag: z.string(), digest: z.string() };
const RetentionReport = z.strictObject({
  totals: Totals,
  repositories: z.array(
    z.strictObject({
      repository: z.string(),
      kept: z.array(
        z.strictObject({
          ...Tagged,
          reasons: z.array(z.string()).describe('the rules that kept it, or the referrer or race that saved it'),
        }),
      ),
      removed: z.array(z.strictObject(Tagged)),
      refused: z.array(z.strictObject({ ...Tagged, policy: z.string().nullable(), reason: z.string() })),
      untagged: z.array(z.string()).describe('artifacts whose last tag this run removed'),
      deleted: z.array(z.string()).describe('untagged artifacts a rule selected and none kept'),
    }),
  ),
});
const RetentionRunSchema = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      project: z.string(),
      dryRun: z.boolean(),
      trigger: z.enum(['manual', 'schedule']),
      actor: z.string().nullable(),
      status: z.enum(['running', 'ok', 'failed']),
      startedAt: Timestamp,
      finishedAt: z.string().nullable(),
      summary: z
        .union([Totals, z.strictObject({ error: z.string() }), z.null()])
        .describe('totals of a finished run, { error } of a failed one'),
      report: RetentionReport.nullable().optional().describe('the full report (only when one run is read)'),
    })
    .meta({ id: 'RetentionRun' }),
);

const NewRun = z.lazy(() =>
  z.object({ dryRun: z.boolean().default(false).describe('report what a real run would remove, remove nothing') }).strict(),
);
const RunsQuery = z.object({
  limit: z.string().regex(/^\d+$/).optional().describe('how many runs, newest first (default 20, at most 100)'),
});

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
    response: RetentionPolicySchema,
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
    response: RetentionPolicySchema,
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
    response: z.strictObject({ id: z.number(), project: z.string(), dryRun: z.boolean(), status: z.literal('running') }),
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
    response: z.array(RetentionRunSchema),
    query: RunsQuery,
    handler: async (ctx) => {
      const { retention, project } = await managed(ctx);
      const limit = ctx.query.limit === undefined ? 20 : Number(ctx.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100)
        throw new RegistryError(
          'INVALID_ARGUMENT',
          `limit must be a whole number from 1 to 100, got "${String(ctx.query.limit).slice(0, 20)}"`,
        );
      return (await retention.runs(project, limit)).map(runView);
    },
  },
  {
    method: 'GET',
    path: '/projects/:project/retention/runs/:id',
    summary: 'One retention run with its report: per repository, the tags kept and why, removed, refused (project-admin)',
    response: RetentionRunSchema,
    handler: async (ctx) => {
      const { retention, project } = await managed(ctx);
      return runView(await retention.runById(project, Number(ctx.params.id)));
    },
  },
];
