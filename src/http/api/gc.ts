import type { FastifyInstance } from 'fastify';
import { RegistryError } from '../../core/errors.js';
import type { GarbageCollector } from '../../gc/collector.js';

/**
 * POST /api/v1/gc[?dryRun=true] runs garbage collection now and answers with the run's
 * report; 409 (with the lease holder) when another collector is running.
 */
export function registerGcApi(app: FastifyInstance, collector: GarbageCollector): void {
  app.post('/api/v1/gc', async (request, reply) => {
    // Admin only: the /api authentication check (caller must be a registry administrator) goes here.
    const dryRun = parseFlag((request.query as Record<string, string | undefined>).dryRun);
    const report = await collector.run({ dryRun });
    return reply.code(report.ran ? 200 : 409).send(report);
  });
}

function parseFlag(value: string | undefined): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === '' || value === 'true' || value === '1') return true;
  throw new RegistryError('INVALID_ARGUMENT', `dryRun must be true or false, got "${value.slice(0, 32)}"`, { dryRun: value.slice(0, 32) });
}
