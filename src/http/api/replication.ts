import { z } from 'zod';
import { RegistryError } from '../../core/errors.js';
import type { ReplicationService } from '../../replication/index.js';
import type { ApiContext, ApiRoute } from './route.js';

const Policy = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      name: z.string(),
      description: z.string(),
      direction: z.enum(['push', 'pull']),
      registry: z.string().describe('the registry endpoint it replicates to or from'),
      repositories: z.array(z.string()),
      tags: z.array(z.string()),
      artifactTypes: z.array(z.string()),
      onlySigned: z.boolean(),
      destNamespace: z.string().nullable(),
      flatten: z.number(),
      trigger: z.enum(['manual', 'cron', 'event']),
      cron: z.string().nullable(),
      override: z.boolean().describe('re-point destination tags that point elsewhere'),
      deletion: z.boolean().describe('delete destination tags that are gone at the source'),
      concurrency: z.number().describe('blobs in flight at once'),
      bandwidth: z.number().nullable().describe('bytes per second over the execution; null: unlimited'),
      enabled: z.boolean(),
      createdAt: z.number().describe('epoch ms'),
      updatedAt: z.number().describe('epoch ms'),
    })
    .meta({ id: 'ReplicationPolicy' }),
);
const Execution = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      policy: z.string(),
      trigger: z.enum(['manual', 'cron', 'event']),
      status: z.enum(['pending', 'running', 'stopping', 'succeeded', 'partial', 'failed', 'stopped']),
      scope: z
        .strictObject({ repository: z.string().optional(), tags: z.array(z.string()).optional() })
        .nullable()
        .describe('an event-triggered execution: the pushed repository and tags'),
      createdAt: z.number().describe('epoch ms'),
      startedAt: z.number().nullable(),
      finishedAt: z.number().nullable(),
      copied: z.number(),
      skipped: z.number(),
      failed: z.number(),
      deleted: z.number(),
      bytes: z.number(),
      error: z.string().nullable(),
    })
    .meta({ id: 'ReplicationExecution' }),
);
const Task = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      executionId: z.number(),
      sourceRepository: z.string(),
      destRepository: z.string(),
      reference: z.string(),
      digest: z.string().nullable(),
      status: z.enum(['copied', 'skipped', 'failed', 'deleted']),
      reason: z.string().nullable(),
      bytes: z.number(),
      resumedBytes: z.number(),
      durationMs: z.number(),
      finishedAt: z.number().describe('epoch ms'),
    })
    .meta({ id: 'ReplicationTask' }),
);

const Globs = z.array(z.string().min(1).max(512)).max(100);
const PolicyFields = {
  description: z.string().max(1024),
  direction: z.enum(['push', 'pull']).describe('push: this Berth → the endpoint; pull: the endpoint → this Berth'),
  registry: z.string().min(1).max(64).describe('name of a registry endpoint (/api/v1/registries)'),
  repositories: Globs.describe(
    'picomatch globs over source repository names; empty: all (push) — a pull with globs lists the remote catalog',
  ),
  tags: Globs.describe('picomatch globs over tags; empty: all'),
  artifactTypes: z
    .array(z.string().min(1).max(255))
    .max(50)
    .describe('only these artifact types (artifactType or config media type); empty: any'),
  onlySigned: z.boolean().describe('only artifacts with a signature (cosign or Notary referrer, or a cosign .sig tag)'),
  destNamespace: z.string().min(1).max(255).nullable().describe('destination namespace; null keeps the source name'),
  flatten: z
    .number()
    .int()
    .min(-1)
    .max(16)
    .describe('leading path components dropped before the namespace is prefixed; -1 keeps only the last'),
  trigger: z.enum(['manual', 'cron', 'event']).describe('manual, cron (cron field) or event (on push, push policies)'),
  cron: z.string().min(1).max(128).nullable(),
  override: z.boolean().describe('re-point destination tags that point at another digest'),
  deletion: z.boolean().describe('delete destination tags (matched by the filters) that are gone at the source'),
  concurrency: z.number().int().min(1).max(32).describe('blobs in flight at once'),
  bandwidth: z.number().int().min(1024).nullable().describe('bytes per second over an execution; null: unlimited'),
  enabled: z.boolean(),
};
const NewPolicy = z.lazy(() =>
  z
    .object({
      name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
      ...PolicyFields,
      description: PolicyFields.description.default(''),
      repositories: PolicyFields.repositories.default([]),
      tags: PolicyFields.tags.default([]),
      artifactTypes: PolicyFields.artifactTypes.default([]),
      onlySigned: PolicyFields.onlySigned.default(false),
      destNamespace: PolicyFields.destNamespace.default(null),
      flatten: PolicyFields.flatten.default(0),
      trigger: PolicyFields.trigger.default('manual'),
      cron: PolicyFields.cron.default(null),
      override: PolicyFields.override.default(false),
      deletion: PolicyFields.deletion.default(false),
      concurrency: PolicyFields.concurrency.default(4),
      bandwidth: PolicyFields.bandwidth.default(null),
      enabled: PolicyFields.enabled.default(true),
    })
    .strict(),
);
const PolicyUpdate = z.lazy(() => z.object(PolicyFields).partial().strict());
const ExecutionsQuery = z.object({
  policy: z.string().optional(),
  before: z.string().regex(/^\d+$/).optional(),
  limit: z.string().regex(/^\d+$/).optional(),
});
const TasksQuery = z.object({
  status: z.enum(['copied', 'skipped', 'failed', 'deleted']).optional(),
  after: z.string().regex(/^\d+$/).optional(),
  limit: z.string().regex(/^\d+$/).optional(),
});

/** Query parameters checked by the handler: a bad one is a 400 INVALID_ARGUMENT, not a 500. */
function queryOf<T extends z.ZodType>(schema: T, query: unknown): z.infer<T> {
  const parsed = schema.safeParse(query);
  if (!parsed.success)
    throw new RegistryError(
      'INVALID_ARGUMENT',
      `invalid query: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

function service(ctx: ApiContext): ReplicationService {
  return ctx.features.replication!;
}

function idOf(raw: string | undefined): number {
  if (!raw || !/^\d{1,15}$/.test(raw))
    throw new RegistryError('INVALID_ARGUMENT', `execution id must be a number, got "${String(raw).slice(0, 32)}"`);
  return Number(raw);
}

function limitOf(raw: string | undefined, fallback: number): number {
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new RegistryError('INVALID_ARGUMENT', 'limit must be between 1 and 1000');
  return n;
}

/** Replication policies, executions and tasks (src/replication): system administrators only. */
export const replicationRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/replication/policies',
    summary: 'Replication policies',
    response: z.array(Policy),
    handler: async (ctx) => service(ctx).list(),
  },
  {
    method: 'POST',
    path: '/replication/policies',
    summary: 'Create a replication policy (push or pull over a registry endpoint)',
    response: Policy,
    body: NewPolicy,
    status: 201,
    handler: async (ctx) => service(ctx).create(ctx.body as z.infer<typeof NewPolicy>),
  },
  {
    method: 'GET',
    path: '/replication/policies/:name',
    summary: 'A replication policy',
    response: Policy,
    handler: async (ctx) => service(ctx).get(ctx.params.name!),
  },
  {
    method: 'PUT',
    path: '/replication/policies/:name',
    summary: 'Change a replication policy; omitted fields keep their value',
    response: Policy,
    body: PolicyUpdate,
    handler: async (ctx) => service(ctx).update(ctx.params.name!, ctx.body as z.infer<typeof PolicyUpdate>),
  },
  {
    method: 'DELETE',
    path: '/replication/policies/:name',
    summary: 'Delete a replication policy (its executions stay listed)',
    status: 204,
    handler: async (ctx) => {
      await service(ctx).remove(ctx.params.name!);
    },
  },
  {
    method: 'POST',
    path: '/replication/policies/:name/run',
    summary: 'Run a policy now: queues an execution (status pending) that the replication job starts within seconds',
    response: Execution,
    status: 202,
    handler: async (ctx) => service(ctx).run(ctx.params.name!, 'manual'),
  },
  {
    method: 'GET',
    path: '/replication/executions',
    summary: 'Replication executions, newest first (?policy=, ?before=<id>, ?limit=)',
    response: z.array(Execution),
    query: ExecutionsQuery,
    handler: async (ctx) => {
      const q = queryOf(ExecutionsQuery, ctx.query);
      return service(ctx).executions({
        policy: q.policy,
        before: q.before === undefined ? undefined : Number(q.before),
        limit: limitOf(q.limit, 50),
      });
    },
  },
  {
    method: 'POST',
    path: '/replication/executions/:id/stop',
    summary:
      'Stop an execution: a pending one at once (stopped), a running one before its next artifact (stopping, then stopped); 409 when it already ended',
    response: Execution,
    status: 202,
    handler: async (ctx) => service(ctx).stop(idOf(ctx.params.id)),
  },
  {
    method: 'GET',
    path: '/replication/executions/:id',
    summary: 'A replication execution with its totals (copied, skipped, failed, deleted, bytes)',
    response: Execution,
    handler: async (ctx) => service(ctx).execution(idOf(ctx.params.id)),
  },
  {
    method: 'GET',
    path: '/replication/executions/:id/tasks',
    summary: 'Per-artifact results of an execution: copied, skipped, failed (with the reason), deleted; bytes and duration',
    response: z.array(Task),
    query: TasksQuery,
    handler: async (ctx) => {
      const q = queryOf(TasksQuery, ctx.query);
      return service(ctx).tasks(idOf(ctx.params.id), {
        status: q.status,
        after: q.after === undefined ? undefined : Number(q.after),
        limit: limitOf(q.limit, 500),
      });
    },
  },
];
