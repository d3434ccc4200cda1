import { z } from 'zod';
import { isSystemAdmin } from '../../auth/identity.js';
import { RegistryError } from '../../core/errors.js';
import { parseBytes } from '../../quotas/bytes.js';
import type { QuotaService } from '../../quotas/service.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';
import { Quota } from './schemas.js';

/** `{"limit": 10737418240}`, `{"limit": "10GiB"}`, or `{"limit": null}` (unlimited). */
const QuotaLimit = z.lazy(() =>
  z
    .object({
      limit: z.union([z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.string().max(32), z.null()]),
    })
    .strict(),
);

function quotas(ctx: ApiContext): QuotaService {
  return ctx.features.quotas!;
}

/** The limit of a PUT in bytes (null: unlimited); a string takes units (10GiB, 500MB). */
function limitOf(body: z.infer<typeof QuotaLimit>): number | null {
  if (typeof body.limit !== 'string') return body.limit;
  const bytes = parseBytes(body.limit);
  if (bytes === null)
    throw new RegistryError(
      'INVALID_ARGUMENT',
      `invalid request body: limit: "${body.limit}" is not a size (e.g. 10737418240, "10GiB", "500MB")`,
    );
  return bytes;
}

export const quotaRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/quotas',
    summary: 'Storage usage and quota of every project the caller may read (all, for an admin)',
    response: z.array(Quota),
    handler: async (ctx) => {
      if (isSystemAdmin(ctx.identity)) return quotas(ctx).list();
      const readable = new Set((await ctx.auth.directory.projects(ctx.identity)).map((p) => p.name));
      return quotas(ctx).list((project) => readable.has(project));
    },
  },
  {
    method: 'GET',
    path: '/projects/:project/quota',
    summary: "A project's storage usage and quota: used and limit in bytes (null: unlimited), percent",
    response: Quota,
    handler: async (ctx) => quotas(ctx).show((await projectWith(ctx, 'read-project')).name),
  },
  {
    method: 'PUT',
    path: '/projects/:project/quota',
    summary: 'Set a project\'s storage quota in bytes (a number, a size such as "10GiB", or null for unlimited; system admin)',
    body: QuotaLimit,
    response: Quota,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      return quotas(ctx).setLimit(project.name, limitOf(ctx.body as z.infer<typeof QuotaLimit>));
    },
  },
];
