import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, RegistryError, StorageFullError, clientErrorKind, domainError } from '../core/errors.js';

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

/** Every error leaves through here, its status and wire code taken from the table in src/core/errors.ts. */
export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  // A request whose body we did not read must not keep its connection: the rest of
  // the body would be parsed as the next request (and a huge one would be drained).
  if (!request.raw.complete) reply.header('connection', 'close');
  const mapped = domainError(error) ?? (isRawStorageFull(error) ? domainError(new StorageFullError()) : null);
  if (mapped) {
    if (mapped.status >= 500) request.log.error({ err: error }, mapped.message);
    return sendError(reply, mapped);
  }
  const status = (error as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    // Framework-level client errors (bad headers, body too large, timeouts).
    return sendError(reply, new RegistryError(clientErrorKind(status), error.message));
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendError(reply, new RegistryError('UNKNOWN', 'internal error; see the server log for request ' + request.id));
}

/**
 * A full filesystem seen by the filesystem blob store outside an upload's data path (e.g.
 * creating a staging file); the metadata adapters already throw StorageFullError themselves
 * (src/metadata/errors.ts), and uploads map it in core (storageError).
 */
function isRawStorageFull(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(
    reply,
    new RegistryError(
      'ENDPOINT_NOT_FOUND',
      `${ERRORS.ENDPOINT_NOT_FOUND.message}: ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`,
    ),
  );
}
