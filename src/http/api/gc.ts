import { RegistryError } from '../../core/errors.js';
import { z } from 'zod';
import type { ApiContext, ApiRoute } from './route.js';

const Item = z.lazy(() => z.strictObject({ repository: z.string(), digest: z.string() }));
const GcReport = z.lazy(() =>
  z
    .strictObject({
      dryRun: z.boolean(),
      ran: z.boolean().describe('false (with 409) when another process held the GC lease: nothing was done'),
      heldBy: z.string().nullable().optional().describe('holder of the lease when ran is false'),
      completed: z.boolean().describe('false when the run stopped early (lease lost, storage error): the next run continues'),
      startedAt: z.string(),
      durationMs: z.number(),
      gracePeriodMs: z.number(),
      untagged: z.enum(['delete', 'keep']),
      counts: z.strictObject({
        reviewed: z.number(),
        kept: z.number(),
        postponed: z.number(),
        manifests: z.number(),
        links: z.number(),
        blobs: z.number(),
        bytesFreed: z.number(),
        resumedByteDeletions: z.number(),
        errors: z.number(),
      }),
      deleted: z.strictObject({
        manifests: z.array(Item),
        links: z.array(Item),
        blobs: z.array(z.strictObject({ digest: z.string(), size: z.number() })),
      }),
      truncated: z.boolean().describe('a deleted list was capped'),
      waiting: z
        .strictObject({ candidates: z.number(), firstCollectableAt: z.string().nullable(), lastCollectableAt: z.string().nullable() })
        .optional()
        .describe('candidates still inside the grace period and when they can be collected'),
      error: z.string().optional(),
    })
    .meta({ id: 'GcReport' }),
);
const RepositoryUsage = z.lazy(() =>
  z.strictObject({ repository: z.string(), blobs: z.number(), bytes: z.number().describe('logical size') }).meta({ id: 'RepositoryUsage' }),
);
const StorageUsage = z.lazy(() =>
  z
    .strictObject({
      repositories: z.array(RepositoryUsage),
      projects: z.array(z.strictObject({ project: z.string(), blobs: z.number(), bytes: z.number() })),
      total: z.strictObject({ blobs: z.number(), bytes: z.number() }).describe('physical storage: every stored blob once'),
    })
    .meta({ id: 'StorageUsage' }),
);

function gcOf(ctx: ApiContext): NonNullable<ApiContext['features']['gc']> {
  return ctx.features.gc!;
}

/** POST /api/v1/gc and GET /api/v1/storage (src/gc); registered when buildApp gets `gc`. */
export const gcRoutes: ApiRoute[] = [
  {
    method: 'POST',
    path: '/gc',
    summary: 'Run garbage collection now (?dryRun=true to only report); 409 with the lease holder while another collector runs',
    response: GcReport,
    handler: async (ctx) => {
      const report = await gcOf(ctx).collector.run({ dryRun: parseFlag(ctx.query.dryRun) });
      ctx.reply.code(report.ran ? 200 : 409);
      return report;
    },
  },
  {
    method: 'GET',
    path: '/storage',
    summary: 'Logical size per repository and project, physical total (?repository=<name> for one repository)',
    response: z.union([StorageUsage, RepositoryUsage]),
    handler: async (ctx) => {
      const { usage } = gcOf(ctx);
      const repository = ctx.query.repository;
      if (repository === undefined) return usage.storageUsage();
      const one = await usage.repositoryUsage(repository);
      if (!one)
        throw new RegistryError('NAME_UNKNOWN', `repository ${repository.slice(0, 256)} is not known to the registry`, {
          name: repository.slice(0, 256),
        });
      return one;
    },
  },
];

function parseFlag(value: string | undefined): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === '' || value === 'true' || value === '1') return true;
  throw new RegistryError('INVALID_ARGUMENT', `dryRun must be true or false, got "${value.slice(0, 32)}"`, { dryRun: value.slice(0, 32) });
}
