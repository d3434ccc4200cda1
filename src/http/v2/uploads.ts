import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../../core/errors.js';
import type { ChunkRange, UploadStatus } from '../../core/uploads.js';
import { contentLength, hasBody, operation, type V2Handler } from './context.js';

/**
 * POST /v2/<name>/blobs/uploads/ — starts an upload; or, with `?digest=`, a monolithic
 * upload; or, with `?mount=`, a cross-repository mount (falling back to a new upload).
 */
export const startUpload: V2Handler = async ({ registry, access }, request, reply, { name, query, principal }) => {
  const mount = query.get('mount');
  if (mount !== null) {
    const from = query.get('from') ?? undefined;
    const mounted = await registry.mountBlob(name, mount, from, (repo) => access.canRead(principal, repo), operation(principal));
    if (mounted) return created(reply, name, mount);
  }
  const digest = query.get('digest');
  if (digest !== null && mount === null) {
    return created(reply, name, await registry.uploads.monolithic(name, digest, request.raw, contentLength(request), operation(principal)));
  }
  return accepted(reply, await registry.uploads.start(name, operation(principal)), 202);
};

/** GET /v2/<name>/blobs/uploads/<id> — where the upload stands. */
export const uploadStatus: V2Handler = async ({ registry }, _request, reply, { name, ref: id }) => {
  return accepted(reply, await registry.uploads.status(name, id), 204);
};

/** PATCH — appends a chunk (with Content-Range) or a stream (without, as docker does). */
export const patchUpload: V2Handler = async ({ registry }, request, reply, { name, ref: id }) => {
  const range = chunkRange(request);
  const status = await registry.uploads.append(name, id, request.raw, range, contentLength(request));
  return accepted(reply, status, 202);
};

/** PUT ?digest= — optional last chunk, then verify and commit. */
export const putUpload: V2Handler = async ({ registry }, request, reply, { name, ref: id, query, principal }) => {
  const digest = query.get('digest');
  if (digest === null) {
    throw new RegistryError('DIGEST_INVALID', 'the digest query parameter is required to complete an upload');
  }
  const body = hasBody(request) ? request.raw : undefined;
  const committed = await registry.uploads.complete(
    name,
    id,
    digest,
    body,
    body ? chunkRange(request) : undefined,
    contentLength(request),
    operation(principal),
  );
  return created(reply, name, committed);
};

/** DELETE — cancels the upload and discards its data. */
export const cancelUpload: V2Handler = async ({ registry }, _request, reply, { name, ref: id }) => {
  await registry.uploads.cancel(name, id);
  return reply.code(204).send();
};

function chunkRange(request: FastifyRequest): ChunkRange | undefined {
  const header = request.headers['content-range'];
  if (header === undefined) return undefined;
  // The spec's form is "<start>-<end>"; tolerate the RFC forms "bytes <start>-<end>/<total>" too.
  const m = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) {
    throw new RegistryError('RANGE_INVALID', `invalid Content-Range "${header.slice(0, 64)}": expected <start>-<end>`);
  }
  return { start: Number(m[1]), end: Number(m[2]) };
}

function uploadLocation(status: UploadStatus): string {
  return `/v2/${status.repository}/blobs/uploads/${status.id}`;
}

function accepted(reply: FastifyReply, status: UploadStatus, code: 202 | 204): FastifyReply {
  return reply
    .code(code)
    .header('location', uploadLocation(status))
    .header('range', `0-${Math.max(status.size - 1, 0)}`)
    .header('docker-upload-uuid', status.id)
    .header('blob-upload-session-id', status.id)
    .header('content-length', 0)
    .send();
}

function created(reply: FastifyReply, name: string, digest: string): FastifyReply {
  return reply
    .code(201)
    .header('location', `/v2/${name}/blobs/${digest}`)
    .header('docker-content-digest', digest)
    .header('content-length', 0)
    .send();
}
