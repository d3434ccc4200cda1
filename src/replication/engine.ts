/**
 * The copy engine: moves a manifest graph from one registry to another through two
 * OciClients, so it works between any OCI registries (Berth, CNCF Distribution, …) in
 * either direction.
 *
 * Order (the destination never holds a manifest whose content is missing):
 *   blobs of an image manifest → the image manifest (by digest)
 *   children of an index (each as above) → the index (by digest)
 *   referrers of every manifest copied or found (signatures, SBOMs), after their subject
 *   → finally the tag.
 *
 * Cheap when there is nothing to do: a manifest the destination has (HEAD by digest) is not
 * walked again (registries refuse a manifest whose references are missing, so its graph is
 * there); a blob it has (HEAD) is not sent; a blob it holds in another repository of this
 * run is mounted; a tag already at the digest is left alone. A re-run moves no blob bytes.
 *
 * Resumable: blobs stream from the source into a chunked upload (PATCH with Content-Range)
 * at the destination, and the session (Location and offset) is checkpointed after every
 * chunk. A failure — the source cut mid-body, either side restarted, this process killed —
 * is retried from the checkpoint: the registry says how many bytes it holds, and the source
 * is read again from there with Range. Nothing already sent is sent again.
 */
import type { Readable } from 'node:stream';
import type { BlobInfo, ClientRequest, GetBlobOptions, Manifest, ManifestInfo, ReferrersIndex, UploadSession } from '../client/index.js';
import { RegistryClientError } from '../client/index.js';
import { MediaTypes } from '../core/media-types.js';
import { parseManifest, type Descriptor } from './graph.js';
import { sleep } from '../client/retry.js';
import { backoff, Bandwidth, Semaphore } from './limits.js';

/**
 * What the engine needs of a registry: the subset of src/client's OciClient it uses (an
 * OciClient is one), so this Berth itself can be a side without HTTP (local.ts).
 */
export interface RegistryAccess {
  readonly baseUrl: string;
  getManifest(repo: string, reference: string): Promise<Manifest | null>;
  headManifest(repo: string, reference: string): Promise<ManifestInfo | null>;
  putManifest(repo: string, reference: string, bytes: Buffer, mediaType?: string): Promise<string>;
  deleteManifest(repo: string, reference: string): Promise<void>;
  headBlob(repo: string, digest: string): Promise<BlobInfo | null>;
  getBlob(repo: string, digest: string, options?: GetBlobOptions): Readable;
  mountBlob(repo: string, from: string, digest: string): Promise<{ mounted: boolean; location: string }>;
  startUpload(repo: string): Promise<UploadSession>;
  uploadStatus(repo: string, location: string): Promise<UploadSession | null>;
  appendChunk(repo: string, session: UploadSession, chunk: Buffer, signal?: AbortSignal): Promise<UploadSession>;
  completeUpload(repo: string, session: UploadSession, digest: string): Promise<void>;
  cancelUpload(repo: string, location: string): Promise<void>;
  referrers(repo: string, digest: string): Promise<ReferrersIndex>;
  listTags(repo: string): Promise<string[]>;
  catalog(): Promise<string[]>;
  /** Raw requests (an OciClient): used to probe for the referrers API. A side without it has that API. */
  send?(req: ClientRequest): Promise<Response>;
}

/** One side of a copy: a registry and a repository in it. */
export interface CopySide {
  client: RegistryAccess;
  repository: string;
}

/** Where upload sessions are remembered between attempts and across restarts. */
export interface UploadCheckpoints {
  get(key: string): Promise<UploadSession | null>;
  put(key: string, session: UploadSession): Promise<void>;
  delete(key: string): Promise<void>;
}

/** Checkpoints kept in memory: enough for retries within one process. */
export class MemoryCheckpoints implements UploadCheckpoints {
  readonly sessions = new Map<string, UploadSession>();
  async get(key: string): Promise<UploadSession | null> {
    return this.sessions.get(key) ?? null;
  }
  async put(key: string, session: UploadSession): Promise<void> {
    this.sessions.set(key, session);
  }
  async delete(key: string): Promise<void> {
    this.sessions.delete(key);
  }
}

export interface CopyOptions {
  /** Re-point a destination tag that points at another digest (default false: such a tag is a failure). */
  override?: boolean;
  /** Copy referrers (signatures, SBOMs, attestations) of every manifest copied (default true). */
  referrers?: boolean;
  /** Blobs in flight at once, over the whole engine (default 4). */
  concurrency?: number;
  /** Bytes per second over the whole engine; unlimited when absent. */
  bandwidth?: number | null;
  /** PATCH size (default 8 MiB): also how much a cut can cost, at most. */
  chunkSize?: number;
  /** Tries per blob, the first included (default 5); each resumes from the checkpoint. */
  attempts?: number;
  /** First backoff between tries (default 500 ms), doubling. */
  baseDelayMs?: number;
  checkpoints?: UploadCheckpoints;
  signal?: AbortSignal;
}

export interface CopyStats {
  blobsCopied: number;
  blobsSkipped: number;
  blobsMounted: number;
  /** Blob bytes sent to the destination (PATCH bodies). */
  bytes: number;
  /** Bytes a resumed upload did not send again (the destination already held them). */
  resumedBytes: number;
  manifestsCopied: number;
  manifestsSkipped: number;
  referrersCopied: number;
  /** Tries of a blob that failed and were retried. */
  retries: number;
}

export type CopyStatus = 'copied' | 'skipped' | 'failed';

export interface CopyResult {
  status: CopyStatus;
  /** The manifest's digest at the source (null when it could not be read). */
  digest: string | null;
  /** The tag copied, or null for a copy by digest. */
  tag: string | null;
  reason?: string;
  /** A failed copy worth trying again (a network or server failure, not a refusal). */
  retryable?: boolean;
  stats: CopyStats;
  durationMs: number;
}

export function emptyStats(): CopyStats {
  return {
    blobsCopied: 0,
    blobsSkipped: 0,
    blobsMounted: 0,
    bytes: 0,
    resumedBytes: 0,
    manifestsCopied: 0,
    manifestsSkipped: 0,
    referrersCopied: 0,
    retries: 0,
  };
}

export function addStats(into: CopyStats, from: CopyStats): CopyStats {
  for (const key of Object.keys(into) as (keyof CopyStats)[]) into[key] += from[key];
  return into;
}

/** A copy that must not go on (a tag pointing elsewhere, an unreadable manifest): never retried. */
export class CopyRefused extends Error {
  override readonly name = 'CopyRefused';
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;

/**
 * One engine per execution: the concurrency and bandwidth limits, the blobs known to be at
 * the destination (for mounts) and the work in flight (a blob two images share is copied
 * once) are shared by every artifact it copies.
 */
export class CopyEngine {
  private readonly blobs: Semaphore;
  private readonly bandwidth: Bandwidth | null;
  private readonly checkpoints: UploadCheckpoints;
  private readonly chunkSize: number;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  /** `<dest base>|<digest>` → destination repositories holding it (mount sources). */
  private readonly placed = new Map<string, Set<string>>();
  /** `<dest base>|<repo>|<digest>` → the copy in flight or done, for blobs and manifests. */
  private readonly inflight = new Map<string, Promise<void>>();
  /** Whether a destination answers the referrers API (else the referrers tag schema is kept). */
  private readonly referrersApi = new Map<string, Promise<boolean>>();

  constructor(private readonly options: CopyOptions = {}) {
    this.blobs = new Semaphore(options.concurrency ?? 4);
    this.bandwidth = options.bandwidth ? new Bandwidth(options.bandwidth) : null;
    this.checkpoints = options.checkpoints ?? new MemoryCheckpoints();
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
    this.attempts = Math.max(1, options.attempts ?? 5);
    this.baseDelayMs = options.baseDelayMs ?? 500;
  }

  /**
   * Copies `reference` (a tag, or a digest) of `source` to `destination`, the tag last.
   * Never throws for a failed copy: the result says why.
   */
  async copy(source: CopySide, destination: CopySide, reference: string, options: { tag?: string } = {}): Promise<CopyResult> {
    const started = Date.now();
    const stats = emptyStats();
    const isDigest = reference.includes(':');
    const tag = isDigest ? (options.tag ?? null) : (options.tag ?? reference);
    let digest: string | null = isDigest ? reference : null;
    try {
      const manifest = await source.client.getManifest(source.repository, reference);
      if (!manifest) throw new CopyRefused(`${source.repository}:${reference} not found at the source`);
      digest = manifest.digest;

      let existing: string | null = null;
      if (tag) {
        existing = (await destination.client.headManifest(destination.repository, tag))?.digest ?? null;
        if (existing && existing !== digest && !this.options.override) {
          throw new CopyRefused(
            `destination tag ${destination.repository}:${tag} points at ${existing}, not ${digest}, and override is off`,
          );
        }
      }
      await this.copyManifest(source, destination, digest, manifest, stats, new Set());
      if (tag && existing !== digest) {
        await destination.client.putManifest(destination.repository, tag, manifest.bytes, manifest.mediaType);
      }
      const moved = stats.manifestsCopied + stats.blobsCopied + stats.blobsMounted + (tag && existing !== digest ? 1 : 0);
      return { status: moved > 0 ? 'copied' : 'skipped', digest, tag, stats, durationMs: Date.now() - started };
    } catch (err) {
      if (this.options.signal?.aborted) throw err;
      return {
        status: 'failed',
        digest,
        tag,
        reason: reasonOf(err),
        retryable: !(err instanceof CopyRefused),
        stats,
        durationMs: Date.now() - started,
      };
    }
  }

  /**
   * Deletes `tag` at the destination (deletion propagation); true when it was there. The tag
   * alone where the registry can (Berth, Distribution 3); a registry that deletes manifests
   * only by digest (Distribution 2.8: 400/405) gets the manifest deleted only when no other
   * tag there points at it, else the deletion is refused with the reason.
   */
  async deleteTag(destination: CopySide, tag: string): Promise<boolean> {
    const { client, repository } = destination;
    const info = await client.headManifest(repository, tag);
    if (!info) return false;
    try {
      await client.deleteManifest(repository, tag);
      return true;
    } catch (err) {
      if (!(err instanceof RegistryClientError) || ![400, 405].includes(err.status)) throw err;
    }
    for (const other of await client.listTags(repository)) {
      if (other === tag) continue;
      if ((await client.headManifest(repository, other))?.digest === info.digest) {
        throw new CopyRefused(
          `${repository}:${tag} shares its manifest with tag ${other}, and the registry deletes manifests only by digest`,
        );
      }
    }
    await client.deleteManifest(repository, info.digest);
    return true;
  }

  /** The manifest `digest` and everything under it, then its referrers. */
  private async copyManifest(
    source: CopySide,
    destination: CopySide,
    digest: string,
    given: { bytes: Buffer; mediaType: string } | null,
    stats: CopyStats,
    visiting: Set<string>,
  ): Promise<void> {
    if (visiting.has(digest)) return;
    visiting.add(digest);
    const key = `${destination.client.baseUrl}|${destination.repository}|${digest}`;
    let work = this.inflight.get(key);
    if (!work) {
      work = this.placeManifest(source, destination, digest, given, stats, visiting);
      this.inflight.set(key, work);
      work.catch(() => this.inflight.delete(key));
    }
    await work;
    if (this.options.referrers ?? true) await this.copyReferrers(source, destination, digest, stats, visiting);
  }

  private async placeManifest(
    source: CopySide,
    destination: CopySide,
    digest: string,
    given: { bytes: Buffer; mediaType: string } | null,
    stats: CopyStats,
    visiting: Set<string>,
  ): Promise<void> {
    this.check();
    if (await destination.client.headManifest(destination.repository, digest)) {
      stats.manifestsSkipped++;
      return;
    }
    const manifest = given ?? (await source.client.getManifest(source.repository, digest));
    if (!manifest) throw new CopyRefused(`manifest ${digest} not found at the source ${source.repository}`);
    const graph = parseManifest(manifest.bytes, manifest.mediaType);
    // Children first (each with its blobs), then the blobs of an image manifest.
    await Promise.all(graph.children.map((child) => this.copyManifest(source, destination, child.digest, null, stats, visiting)));
    await Promise.all(graph.blobs.map((blob) => this.copyBlob(source, destination, blob, stats)));
    this.check();
    await destination.client.putManifest(destination.repository, digest, manifest.bytes, manifest.mediaType);
    stats.manifestsCopied++;
  }

  private async copyReferrers(
    source: CopySide,
    destination: CopySide,
    digest: string,
    stats: CopyStats,
    visiting: Set<string>,
  ): Promise<void> {
    const index = await source.client.referrers(source.repository, digest);
    if (index.manifests.length === 0) return;
    const before = stats.manifestsCopied;
    for (const referrer of index.manifests) {
      const copiedBefore = stats.manifestsCopied;
      await this.copyManifest(source, destination, referrer.digest, null, stats, visiting);
      if (stats.manifestsCopied > copiedBefore) stats.referrersCopied++;
    }
    if (stats.manifestsCopied > before && !(await this.hasReferrersApi(destination))) {
      await this.updateReferrersTag(destination, digest, index.manifests);
    }
  }

  /** A destination without the referrers API (Distribution 2.8) finds referrers by the `sha256-<hex>` tag pushers keep. */
  private async updateReferrersTag(destination: CopySide, subject: string, referrers: Descriptor[]): Promise<void> {
    const tag = subject.replace(':', '-');
    const current = await destination.client.getManifest(destination.repository, tag);
    const index = current ? (JSON.parse(current.bytes.toString('utf8')) as { manifests?: Descriptor[] }) : {};
    const manifests = [...(index.manifests ?? [])];
    let changed = false;
    for (const r of referrers) {
      if (manifests.some((m) => m.digest === r.digest)) continue;
      manifests.push(r);
      changed = true;
    }
    if (!changed) return;
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }));
    await destination.client.putManifest(destination.repository, tag, bytes, MediaTypes.ociIndex);
  }

  private hasReferrersApi(destination: CopySide): Promise<boolean> {
    const base = destination.client.baseUrl;
    let known = this.referrersApi.get(base);
    const send = destination.client.send?.bind(destination.client);
    if (!send) return Promise.resolve(true);
    if (!known) {
      known = (async () => {
        // A digest nobody has: the API answers 200 with an empty index; a registry without it 404.
        const probe = `sha256:${'0'.repeat(64)}`;
        const res = await send({
          method: 'GET',
          url: `/v2/${destination.repository}/referrers/${probe}`,
          headers: { accept: MediaTypes.ociIndex },
          scopes: [`repository:${destination.repository}:pull`],
        });
        await res.arrayBuffer().catch(() => undefined);
        return res.status === 200;
      })();
      this.referrersApi.set(base, known);
    }
    return known;
  }

  /** One blob into the destination repository: skipped, mounted, or streamed (resumably). */
  private copyBlob(source: CopySide, destination: CopySide, blob: Descriptor, stats: CopyStats): Promise<void> {
    const base = destination.client.baseUrl;
    const key = `${base}|${destination.repository}|${blob.digest}`;
    let work = this.inflight.get(key);
    if (!work) {
      work = this.blobs
        .use(() => this.transferBlob(source, destination, blob, stats, key))
        .then(() => {
          const holders = this.placed.get(`${base}|${blob.digest}`) ?? new Set<string>();
          holders.add(destination.repository);
          this.placed.set(`${base}|${blob.digest}`, holders);
        });
      this.inflight.set(key, work);
      work.catch(() => this.inflight.delete(key));
    }
    return work;
  }

  private async transferBlob(source: CopySide, destination: CopySide, blob: Descriptor, stats: CopyStats, key: string): Promise<void> {
    const dst = destination.client;
    const repo = destination.repository;
    if (await dst.headBlob(repo, blob.digest)) {
      stats.blobsSkipped++;
      return;
    }
    for (const from of this.placed.get(`${dst.baseUrl}|${blob.digest}`) ?? []) {
      if (from === repo) continue;
      const mount = await dst.mountBlob(repo, from, blob.digest);
      if (mount.mounted) {
        stats.blobsMounted++;
        return;
      }
      await dst.cancelUpload(repo, mount.location).catch(() => undefined);
    }
    for (let attempt = 1; ; attempt++) {
      this.check();
      try {
        await this.streamBlob(source, destination, blob, stats, key);
        stats.blobsCopied++;
        return;
      } catch (err) {
        if (this.options.signal?.aborted || err instanceof CopyRefused || attempt >= this.attempts) throw err;
        // A session the destination refuses (wrong offset, digest mismatch) starts over; any
        // other failure resumes from the checkpoint.
        if (
          err instanceof RegistryClientError &&
          ['BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'RANGE_INVALID', 'SIZE_INVALID'].includes(err.code ?? '')
        ) {
          await this.checkpoints.delete(key);
        }
        stats.retries++;
        await sleep(backoff(attempt, this.baseDelayMs), this.options.signal);
      }
    }
  }

  private async streamBlob(source: CopySide, destination: CopySide, blob: Descriptor, stats: CopyStats, key: string): Promise<void> {
    const dst = destination.client;
    const repo = destination.repository;
    let session: UploadSession | null = null;
    const saved = await this.checkpoints.get(key);
    if (saved) {
      session = await dst.uploadStatus(repo, saved.location);
      if (session && session.offset > blob.size) session = null;
      if (session) stats.resumedBytes += session.offset;
    }
    session ??= await dst.startUpload(repo);
    // A blob of one chunk has nothing to resume: no checkpoint writes for it (most configs and small layers).
    const resumable = blob.size > this.chunkSize;

    if (session.offset < blob.size) {
      const signal = this.options.signal;
      const body = source.client.getBlob(source.repository, blob.digest, { offset: session.offset, verify: session.offset === 0, signal });
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (pendingBytes === 0) return;
        const chunk = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
        pending = [];
        pendingBytes = 0;
        session = await dst.appendChunk(repo, session!, chunk, signal);
        stats.bytes += chunk.length;
        if (resumable) await this.checkpoints.put(key, session);
      };
      try {
        for await (const piece of body as AsyncIterable<Buffer>) {
          if (this.bandwidth) await this.bandwidth.take(piece.length, signal);
          let data = piece;
          while (data.length > 0) {
            const take = Math.min(this.chunkSize - pendingBytes, data.length);
            pending.push(data.subarray(0, take));
            pendingBytes += take;
            data = data.subarray(take);
            if (pendingBytes === this.chunkSize) await flush();
          }
        }
        await flush();
      } catch (err) {
        body.destroy();
        // The source failed mid-chunk: keep what arrived, so the next try starts after it.
        if (!signal?.aborted && pendingBytes > 0 && !isDigestError(err)) await flush().catch(() => undefined);
        throw err;
      }
    }
    await dst.completeUpload(repo, session, blob.digest);
    if (resumable || saved) await this.checkpoints.delete(key);
  }

  private check(): void {
    if (this.options.signal?.aborted) throw this.options.signal.reason;
  }
}

function isDigestError(err: unknown): boolean {
  return err instanceof RegistryClientError && err.code === 'DIGEST_INVALID';
}

function reasonOf(err: unknown): string {
  if (err instanceof Error) return err.message.slice(0, 1000);
  return String(err).slice(0, 1000);
}
