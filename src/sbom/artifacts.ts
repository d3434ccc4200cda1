import { Readable } from 'node:stream';
import { digestOf } from '../core/digest.js';
import type { Operation } from '../core/events.js';
import type { ManifestRecord, MetadataStore, ReferrerRecord } from '../core/ports.js';
import type { Registry } from '../core/registry.js';

/**
 * What the SBOM service reads and writes, on core: manifests and referrers from the metadata
 * store's read ports, blob bytes through the Registry, and the SBOM artifact pushed through the
 * Registry's own write path (upload + manifest put: the hooks, quota, events and GC rules of a
 * client's push apply) — never through HTTP to itself.
 */
export interface ArtifactStore {
  manifest(repository: string, digest: string): Promise<ManifestRecord | null>;
  referrers(repository: string, digest: string): Promise<ReferrerRecord[]>;
  /** The manifest a tag points at (null: no such tag). */
  tagged(repository: string, tag: string): Promise<ManifestRecord | null>;
  /** A blob's bytes, streamed (null: not stored in the repository). */
  openBlob(repository: string, digest: string): Promise<Readable | null>;
  /** Stores `bytes` as a blob of the repository; returns its digest. */
  pushBlob(repository: string, bytes: Buffer, op: Operation): Promise<string>;
  /** Stores an image manifest by digest; returns the digest. */
  pushManifest(repository: string, payload: Buffer, mediaType: string, op: Operation): Promise<string>;
}

export function coreArtifactStore(registry: Registry, metadata: Pick<MetadataStore, 'manifests' | 'repositories'>): ArtifactStore {
  return {
    manifest: (repository, digest) => metadata.manifests.get(repository, digest),
    referrers: (repository, digest) => metadata.manifests.referrers(repository, digest),
    tagged: (repository, tag) => metadata.manifests.byTag(repository, tag),
    async openBlob(repository, digest) {
      if (!(await metadata.repositories.linkedBlob(repository, digest))) return null;
      const handle = await registry.findBlob(repository, digest);
      return handle.open();
    },
    async pushBlob(repository, bytes, op) {
      const digest = digestOf(bytes, 'sha256');
      if (await metadata.repositories.linkedBlob(repository, digest)) return digest;
      return registry.uploads.monolithic(repository, digest, Readable.from([bytes]), bytes.length, op);
    },
    async pushManifest(repository, payload, mediaType, op) {
      const stored = await registry.putManifest(repository, digestOf(payload, 'sha256'), payload, mediaType, [], op);
      return stored.digest;
    },
  };
}
