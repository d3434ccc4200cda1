import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../core/errors.js';

/** The distribution-spec error body: {"errors":[{"code","message","detail"}]}. */
export function errorBody(err: RegistryError): string {
  return JSON.stringify({ errors: [{ code: err.code, message: err.message, detail: err.detail ?? null }] });
}

/** Sends any error as the distribution-spec body, with the error's status and headers. */
export function sendError(reply: FastifyReply, err: RegistryError): FastifyReply {
  reply.code(err.status);
  for (const [name, value] of Object.entries(err.headers)) reply.header(name, value);
  reply.header('content-type', 'application/json; charset=utf-8');
  if (reply.request.method === 'HEAD') return reply.send();
  return reply.send(errorBody(err));
}

export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  // A request whose body we did not read must not keep its connection: the rest of
  // the body would be parsed as the next request (and a huge one would be drained).
  if (!request.raw.complete) reply.header('connection', 'close');
  if (error instanceof RegistryError) {
    if (error.status >= 500) request.log.error({ err: error }, error.message);
    return sendError(reply, error);
  }
  const status = (error as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    // Framework-level client errors (bad headers, body too large, timeouts).
    const code = status === 413 ? 'SIZE_INVALID' : status === 429 ? 'TOOMANYREQUESTS' : 'UNSUPPORTED';
    return sendError(reply, new RegistryError(code, error.message).withStatus(status));
  }
  if (isStorageFull(error)) {
    request.log.error({ err: error }, 'storage full');
    return sendError(reply, new RegistryError('STORAGE_FULL', 'storage is full: nothing was stored; retry once space is freed'));
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendError(reply, new RegistryError('UNKNOWN', 'internal error; see the server log for request ' + request.id));
}

/**
 * A full disk seen by any layer: the filesystem (ENOSPC, EDQUOT), SQLite (SQLITE_FULL) or
 * PostgreSQL (SQLSTATE 53100 disk_full). Blob writes map this in the core already; this
 * catches metadata writes (session rows, manifests) so they answer 507 too, not 500.
 */
function isStorageFull(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || code === '53100';
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(reply, new RegistryError('UNSUPPORTED', `no such endpoint: ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`).withStatus(404));
}

