import { RegistryError } from '../../core/errors.js';
import type { ApiRoute } from './route.js';

export const auditRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/audit',
    summary: 'Audit log, newest first (?limit=1..1000, ?before=<id> to page)',
    handler: async ({ auth, query }) => {
      const limit = query.limit === undefined ? 100 : Number(query.limit);
      const before = query.before === undefined ? undefined : Number(query.before);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000 || (before !== undefined && !Number.isInteger(before))) {
        throw new RegistryError('PAGINATION_NUMBER_INVALID', 'limit must be 1..1000 and before an entry id');
      }
      const entries = await auth.directory.audit(limit, before);
      return entries.map((e) => ({ ...e, at: e.at.toISOString() }));
    },
  },
];
