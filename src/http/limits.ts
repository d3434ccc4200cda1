import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RegistryError } from '../core/errors.js';
import { hasBody } from './v2/context.js';

/**
 * Per-client limit on upload transfers in flight (limits.uploadsperclient), keyed by the
 * client's address (request.ip, which honours http.trustproxy). The global limit
 * (limits.uploads) lives in the core; this one stops a single client from taking all of it.
 * Refused requests get 429 TOOMANYREQUESTS before their body is read, and their
 * connection is closed (errors.ts), so the refused body costs nothing.
 */
export function registerUploadLimits(app: FastifyInstance, perClient: number): void {
  if (perClient <= 0) return;
  const inFlight = new Map<string, number>();
  app.addHook('onRequest', async (request, reply) => {
    if (!isUploadTransfer(request)) return;
    const client = request.ip;
    const current = inFlight.get(client) ?? 0;
    if (current >= perClient) {
      throw new RegistryError('TOOMANYREQUESTS', `too many uploads in progress from this client (limit ${perClient}); retry later`, {
        limit: perClient,
      });
    }
    inFlight.set(client, current + 1);
    // 'close' fires once whether the response completed or the connection dropped.
    reply.raw.once('close', () => {
      const left = (inFlight.get(client) ?? 1) - 1;
      if (left <= 0) inFlight.delete(client);
      else inFlight.set(client, left);
    });
  });
}

const UPLOAD_PATH = /^\/v2\/.+\/blobs\/uploads\//;

/** A request that carries blob bytes: PATCH/PUT to a session, or a monolithic POST. */
function isUploadTransfer(request: FastifyRequest): boolean {
  if (request.method !== 'PATCH' && request.method !== 'PUT' && request.method !== 'POST') return false;
  return UPLOAD_PATH.test(request.raw.url ?? '') && hasBody(request);
}
