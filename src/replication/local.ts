import { Readable } from 'node:stream';
import type { BlobInfo, GetBlobOptions, Manifest, ManifestInfo, ReferrersIndex, UploadSession } from '../client/index.js';
import { RegistryError } from '../core/errors.js';
import type { Operation } from '../core/events.js';
import { MediaTypes } from '../core/media-types.js';
import type { Registry } from '../core/registry.js';
import type { RegistryAccess } from './engine.js';

/**
 * This Berth as one side of a copy, through core's Registry (no HTTP, no token): the source
 * of a push policy and the destination of a pull policy. Writes go through core's rules and
 * policy hooks like any push (quotas, immutable tags, read-only mode) as the system's own
 * change (no actor: the policy was set up by an administrator, so the project write guard,
 * which judges clients, lets it through; it creates no project). Upload sessions are core's,
 * so a copy into Berth resumes the same way as into any registry (the Location is the
 * session id).
 */
export class LocalRegistry implements RegistryAccess {
  readonly baseUrl = 'local:';
  private readonly op: Operation = {};

  constructor(private readonly registry: Registry) {}

  async getManifest(repo: string, reference: string): Promise<Manifest | null> {
    const m = await unknownAsNull(() => this.registry.getManifest(repo, reference));
    return m ? { digest: m.digest, mediaType: m.mediaType, bytes: m.payload } : null;
  }

  async headManifest(repo: string, reference: string): Promise<ManifestInfo | null> {
    const m = await unknownAsNull(() => this.registry.getManifest(repo, reference));
    return m ? { digest: m.digest, mediaType: m.mediaType, size: m.size } : null;
  }

  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType?: string): Promise<string> {
    return (await this.registry.putManifest(repo, reference, bytes, mediaType, [], this.op)).digest;
  }

  async deleteManifest(repo: string, reference: string): Promise<void> {
    await this.registry.deleteManifest(repo, reference, this.op);
  }

  async headBlob(repo: string, digest: string): Promise<BlobInfo | null> {
    const blob = await unknownAsNull(() => this.registry.findBlob(repo, digest));
    return blob ? { digest, size: blob.size } : null;
  }

  getBlob(repo: string, digest: string, options: GetBlobOptions = {}): Readable {
    const registry = this.registry;
    return Readable.from(
      (async function* () {
        const blob = await registry.findBlob(repo, digest);
        const start = options.offset ?? 0;
        if (start >= blob.size) return;
        const stream = await blob.open({ start, end: blob.size - 1 });
        for await (const chunk of stream as AsyncIterable<Buffer>) yield chunk;
      })(),
      { objectMode: false },
    );
  }

  async mountBlob(repo: string, from: string, digest: string): Promise<{ mounted: boolean; location: string }> {
    const mounted = await this.registry.mountBlob(repo, digest, from, async () => true, this.op);
    return { mounted, location: '' };
  }

  async startUpload(repo: string): Promise<UploadSession> {
    const status = await this.registry.uploads.start(repo, this.op);
    return { location: status.id, offset: status.size };
  }

  async uploadStatus(repo: string, location: string): Promise<UploadSession | null> {
    try {
      const status = await this.registry.uploads.status(repo, location);
      return { location: status.id, offset: status.size };
    } catch (err) {
      if (err instanceof RegistryError && (err.status === 404 || err.status === 400)) return null;
      throw err;
    }
  }

  async appendChunk(repo: string, session: UploadSession, chunk: Buffer): Promise<UploadSession> {
    const status = await this.registry.uploads.append(
      repo,
      session.location,
      Readable.from([chunk]),
      { start: session.offset, end: session.offset + chunk.length - 1 },
      chunk.length,
    );
    return { location: status.id, offset: status.size };
  }

  async completeUpload(repo: string, session: UploadSession, digest: string): Promise<void> {
    await this.registry.uploads.complete(repo, session.location, digest, undefined, undefined, undefined, this.op);
  }

  async cancelUpload(repo: string, location: string): Promise<void> {
    if (!location) return;
    await this.registry.uploads.cancel(repo, location).catch(() => undefined);
  }

  async referrers(repo: string, digest: string): Promise<ReferrersIndex> {
    const list = await this.registry.listReferrers(repo, digest);
    return {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: list.map((r) => ({
        mediaType: r.mediaType,
        digest: r.digest,
        size: r.size,
        ...(r.artifactType ? { artifactType: r.artifactType } : {}),
        ...(r.annotations ? { annotations: r.annotations } : {}),
      })),
    };
  }

  async listTags(repo: string): Promise<string[]> {
    const all: string[] = [];
    let last: string | undefined;
    for (;;) {
      const page = await unknownAsNull(() => this.registry.listTags(repo, 1000, last));
      if (!page) return all;
      all.push(...page.items);
      if (!page.more || page.items.length === 0) return all;
      last = page.items[page.items.length - 1];
    }
  }

  async catalog(): Promise<string[]> {
    const all: string[] = [];
    let last: string | undefined;
    for (;;) {
      const page = await this.registry.listRepositories(1000, last);
      all.push(...page.items);
      if (!page.more || page.items.length === 0) return all;
      last = page.items[page.items.length - 1];
    }
  }
}

/** Core answers "unknown" with a 404 RegistryError; a lookup here answers null. */
async function unknownAsNull<T>(fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) return null;
    throw err;
  }
}
