import type { FastifyInstance } from 'fastify';
import { RegistryError } from '../../core/errors.js';
import type { StorageUsageQueries } from '../../gc/ports.js';

/**
 * GET /api/v1/storage: logical size per repository and per project (unique blobs the
 * manifests there reference) and the physical total (every stored blob once).
 * GET /api/v1/storage?repository=<name>: one repository.
 */
export function registerStorageApi(app: FastifyInstance, usage: StorageUsageQueries): void {
  app.get('/api/v1/storage', async (request) => {
    // Admin only: the /api authentication check (caller must be a registry administrator) goes here.
    const repository = (request.query as Record<string, string | undefined>).repository;
    if (repository === undefined) return usage.storageUsage();
    const one = await usage.repositoryUsage(repository);
    if (!one) throw new RegistryError('NAME_UNKNOWN', `repository ${repository.slice(0, 256)} is not known to the registry`, { name: repository.slice(0, 256) });
    return one;
  });
}
