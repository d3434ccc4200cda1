import type { FastifyRequest } from 'fastify';
import { RegistryError } from '../../core/errors.js';
import { manifestTooBig } from '../../core/registry.js';
import { isDigest } from '../../core/digest.js';
import type { ManifestRecord } from '../../core/ports.js';
import { operation, type V2Handler } from './context.js';

/**
 * GET/HEAD /v2/<name>/manifests/<reference> — by tag or digest, honouring Accept and If-None-Match.
 * A reference that is not a valid tag (".x", "a/b") names no manifest: 404 MANIFEST_UNKNOWN, as
 * the OCI conformance suite requires (a PUT of it stays 400 TAG_INVALID). A digest-shaped one
 * ("algorithm:…") that does not parse keeps its precise 400 DIGEST_INVALID, as on blobs.
 */
export const getManifest: V2Handler = async ({ registry }, request, reply, { name, ref, principal }) => {
  let manifest: ManifestRecord;
  try {
    manifest = await registry.getManifest(
      name,
      ref,
      { accept: request.headers.accept, pull: request.method === 'GET' },
      operation(principal),
    );
  } catch (err) {
    // Core validates the reference before it reads anything: TAG_INVALID can only be about it.
    if (err instanceof RegistryError && err.kind === 'TAG_INVALID') throw unknownReference(name, ref, err);
    throw err;
  }
  const etag = `"${manifest.digest}"`;
  reply.header('docker-content-digest', manifest.digest).header('etag', etag).header('content-type', manifest.mediaType);
  if (isDigest(ref)) reply.header('cache-control', 'max-age=31536000');
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((v) => [etag, manifest.digest, '*'].includes(v.trim()))) {
    return reply.code(304).send();
  }
  reply.header('content-length', manifest.size);
  if (request.method === 'HEAD') return reply.send();
  return reply.send(manifest.payload);
};

/** PUT /v2/<name>/manifests/<reference>[?tag=a&tag=b] */
export const putManifest: V2Handler = async ({ registry }, request, reply, { name, ref, query, principal }) => {
  const payload = await readBody(request, registry.options.maxManifestSize);
  const stored = await registry.putManifest(name, ref, payload, request.headers['content-type'], query.getAll('tag'), operation(principal));
  reply
    .code(201)
    .header('location', `/v2/${name}/manifests/${stored.digest}`)
    .header('docker-content-digest', stored.digest)
    .header('content-length', 0);
  if (stored.subjectDigest) reply.header('oci-subject', stored.subjectDigest);
  if (query.getAll('tag').length > 0) reply.header('oci-tag', stored.tags);
  return reply.send();
};

/** DELETE /v2/<name>/manifests/<reference> — digest: manifest and its tags; tag: the tag only. */
export const deleteManifest: V2Handler = async ({ registry }, _request, reply, { name, ref, principal }) => {
  await registry.deleteManifest(name, ref, operation(principal));
  return reply.code(202).header('content-length', 0).send();
};

function unknownReference(name: string, ref: string, cause: RegistryError): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', `manifest ${ref.slice(0, 140)} is unknown to repository ${name}: ${cause.message}`, {
    name,
    reference: ref.slice(0, 140),
  });
}

/** Reads a request body into memory, refusing (413) anything over `limit` bytes before reading it all. */
async function readBody(request: FastifyRequest, limit: number): Promise<Buffer> {
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw manifestTooBig(limit);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request.raw) {
    total += (chunk as Buffer).length;
    if (total > limit) throw manifestTooBig(limit);
    chunks.push(chunk as Buffer);
  }
  if (total === 0) throw new RegistryError('MANIFEST_INVALID', 'manifest body is empty');
  return Buffer.concat(chunks, total);
}
