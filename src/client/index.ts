/**
 * Berth's OCI distribution client: the one way Berth code (replication, the pull-through
 * cache), the tests and the benchmark talk to a registry — Berth or any other.
 *
 * ```ts
 * const client = new OciClient({ baseUrl: 'https://registry.example', credentials: { username, password } });
 * const { digest } = await client.pushBlob('team/app', layerBuffer);              // or a stream + { digest, size }
 * await client.putManifest('team/app', 'v1', manifestBytes, MediaTypes.ociManifest);
 * client.getBlob('team/app', digest).pipe(file);                                   // resumes, verifies the digest
 * for await (const page of client.tagPages('team/app')) …                          // follows Link: rel="next"
 * ```
 *
 * - Auth: anonymous, Basic, and the Docker token flow (401 challenge → token per scope,
 *   cached; insufficient_scope → a wider token). See auth.ts.
 * - Retries: network errors, 408/429/5xx on idempotent requests, exponential backoff with
 *   jitter, Retry-After honoured; a streamed body is never sent twice. See retry.ts.
 * - Redirects are followed without the Authorization header to another origin.
 * - Failures throw RegistryClientError (status, spec error codes, method, redacted URL).
 *   Lookups answer null for 404 instead (headBlob, headManifest, getManifest).
 *
 * Layering: this folder depends only on src/core and Node built-ins, so any layer
 * (and code outside Berth) can use it.
 *
 * Files: transport.ts (sending), auth.ts, retry.ts, errors.ts, blobs.ts, manifests.ts.
 * `blobRequests` / `manifestRequests` describe the requests without sending them, for
 * callers that need the raw Response (the spec tests assert on statuses).
 */
import type { Readable } from 'node:stream';
import * as blobs from './blobs.js';
import * as manifests from './manifests.js';
import { Transport, type ClientRequest, type TransportOptions } from './transport.js';

export { RegistryClientError, redactUrl, type SpecError } from './errors.js';
export { parseChallenge, unionScopes, repositoryScope, basicAuthorization, type Credentials, type Challenge } from './auth.js';
export { DEFAULT_RETRY, backoffDelay, parseRetryAfter, isRetryableStatus, type RetryPolicy } from './retry.js';
export {
  Transport,
  nextLink,
  discard,
  nodeBody,
  NODE_BODY,
  type ClientRequest,
  type RequestBody,
  type TransportOptions,
} from './transport.js';
export {
  blobRequests,
  withParams,
  type BlobInfo,
  type GetBlobOptions,
  type PushBlobOptions,
  type PushBlobResult,
  type UploadSession,
} from './blobs.js';
export { manifestRequests, referrersTag, MANIFEST_ACCEPT, type Manifest, type ManifestInfo, type ReferrersIndex } from './manifests.js';

/** The client's options are its transport's (base URL, credentials, headers, retries, redirects, challenges). */
export type OciClientOptions = TransportOptions;

export class OciClient {
  readonly transport: Transport;

  constructor(options: OciClientOptions) {
    this.transport = new Transport({ ...options, headers: { 'user-agent': 'berth-client', ...options.headers } });
  }

  get baseUrl(): string {
    return this.transport.base.toString();
  }

  /** Sends any request with auth, retries and redirects; the Response is the caller's, whatever its status. */
  send(req: ClientRequest): Promise<Response> {
    return this.transport.send(req);
  }

  /** GET /v2/: true when the registry answers 200 (after authenticating if it asks). */
  async ping(): Promise<boolean> {
    const res = await this.transport.send({ method: 'GET', url: '/v2/' });
    await res.arrayBuffer();
    return res.status === 200;
  }

  headBlob(repo: string, digest: string): Promise<blobs.BlobInfo | null> {
    return blobs.headBlob(this.transport, repo, digest);
  }

  getBlob(repo: string, digest: string, options?: blobs.GetBlobOptions): Readable {
    return blobs.getBlob(this.transport, repo, digest, options);
  }

  getBlobBytes(repo: string, digest: string, maxBytes?: number): Promise<Buffer> {
    return blobs.getBlobBytes(this.transport, repo, digest, maxBytes);
  }

  pushBlob(repo: string, source: Buffer | Readable, options?: blobs.PushBlobOptions): Promise<blobs.PushBlobResult> {
    return blobs.pushBlob(this.transport, repo, source, options);
  }

  /** A step-by-step upload (replication's resumable copies): start, status, append, complete, cancel. */
  startUpload(repo: string): Promise<blobs.UploadSession> {
    return blobs.startUpload(this.transport, repo);
  }

  uploadStatus(repo: string, location: string): Promise<blobs.UploadSession | null> {
    return blobs.uploadStatus(this.transport, repo, location);
  }

  appendChunk(repo: string, session: blobs.UploadSession, chunk: Buffer, signal?: AbortSignal): Promise<blobs.UploadSession> {
    return blobs.appendChunk(this.transport, repo, session, chunk, signal);
  }

  completeUpload(repo: string, session: blobs.UploadSession, digest: string): Promise<void> {
    return blobs.completeUpload(this.transport, repo, session, digest);
  }

  cancelUpload(repo: string, location: string): Promise<void> {
    return blobs.cancelUpload(this.transport, repo, location);
  }

  mountBlob(repo: string, from: string, digest: string): Promise<{ mounted: boolean; location: string }> {
    return blobs.mountBlob(this.transport, repo, from, digest);
  }

  deleteBlob(repo: string, digest: string): Promise<void> {
    return blobs.deleteBlob(this.transport, repo, digest);
  }

  getManifest(repo: string, reference: string): Promise<manifests.Manifest | null> {
    return manifests.getManifest(this.transport, repo, reference);
  }

  headManifest(repo: string, reference: string): Promise<manifests.ManifestInfo | null> {
    return manifests.headManifest(this.transport, repo, reference);
  }

  putManifest(repo: string, reference: string, bytes: Buffer, mediaType?: string): Promise<string> {
    return manifests.putManifest(this.transport, repo, reference, bytes, mediaType);
  }

  deleteManifest(repo: string, reference: string): Promise<void> {
    return manifests.deleteManifest(this.transport, repo, reference);
  }

  tagPages(repo: string, options?: { pageSize?: number; last?: string }): AsyncGenerator<string[]> {
    return manifests.tagPages(this.transport, repo, options);
  }

  /** Every tag, following pagination. */
  listTags(repo: string, options?: { pageSize?: number }): Promise<string[]> {
    return manifests.collect(manifests.tagPages(this.transport, repo, options));
  }

  catalogPages(options?: { pageSize?: number; last?: string }): AsyncGenerator<string[]> {
    return manifests.catalogPages(this.transport, options);
  }

  /** Every repository name, following pagination. */
  catalog(options?: { pageSize?: number }): Promise<string[]> {
    return manifests.collect(manifests.catalogPages(this.transport, options));
  }

  referrers(repo: string, digest: string, options?: { artifactType?: string }): Promise<manifests.ReferrersIndex> {
    return manifests.referrers(this.transport, repo, digest, options);
  }
}
