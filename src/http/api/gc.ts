import { RegistryError } from '../../core/errors.js';
import type { ApiContext, ApiRoute } from './route.js';

function gcOf(ctx: ApiContext): NonNullable<ApiContext['features']['gc']> {
  return ctx.features.gc!;
}

/** POST /api/v1/gc and GET /api/v1/storage (src/gc); registered when buildApp gets `gc`. */
export const gcRoutes: ApiRoute[] = [
  {
    method: 'POST',
    path: '/gc',
    summary: 'Run garbage collection now (?dryRun=true to only report); 409 with the lease holder while another collector runs',
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
    handler: async (ctx) => {
      const { usage } = gcOf(ctx);
      const repository = ctx.query.repository;
      if (repository === undefined) return usage.storageUsage();
      const one = await usage.repositoryUsage(repository);
      if (!one) throw new RegistryError('NAME_UNKNOWN', `repository ${repository.slice(0, 256)} is not known to the registry`, { name: repository.slice(0, 256) });
      return one;
    },
  },
];

function parseFlag(value: string | undefined): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === '' || value === 'true' || value === '1') return true;
  throw new RegistryError('INVALID_ARGUMENT', `dryRun must be true or false, got "${value.slice(0, 32)}"`, { dryRun: value.slice(0, 32) });
}
