import { createHash, randomBytes } from 'node:crypto';
import type { ManifestReference } from '../../src/core/manifest.js';
import type { MetadataStore } from '../../src/core/ports.js';

/**
 * Rows for the port contracts, written the way core writes them: through
 * `MetadataStore.transaction` and the row adapters (as test/metadata/contract.ts does).
 */

export function digestOf(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function randomDigest(): string {
  return digestOf(randomBytes(16));
}

let counter = 0;
/** A name no other test of the process uses: `<prefix><n>-<random>`. */
export function unique(prefix: string): string {
  return `${prefix}${++counter}-${randomBytes(3).toString('hex')}`;
}

export interface ManifestSpec {
  references?: ManifestReference[];
  tags?: string[];
  subject?: string | null;
  payload?: Buffer;
}

export function rows(store: MetadataStore) {
  return {
    /** Records the blob and links it into `repository`; returns the repository id. */
    commitBlob: (repository: string, digest: string, size: number) =>
      store.transaction(async (tx) => {
        await tx.repositories.recordBlob(digest, size);
        const { id } = await tx.repositories.ensure(repository);
        await tx.repositories.link(id, digest);
        return id;
      }),
    /** A blob row linked nowhere. */
    recordBlob: (digest: string, size: number) => store.transaction((tx) => tx.repositories.recordBlob(digest, size)),
    repositoryId: (repository: string) => store.transaction((tx) => tx.repositories.ensure(repository).then((r) => r.id)),
    /** Stores a manifest (its digest is that of its payload) with references and tags; returns its digest. */
    putManifest: (repository: string, spec: ManifestSpec = {}) =>
      store.transaction(async (tx) => {
        const payload = spec.payload ?? Buffer.from(JSON.stringify({ schemaVersion: 2, nonce: randomBytes(8).toString('hex') }));
        const digest = digestOf(payload);
        const { id } = await tx.repositories.ensure(repository);
        await tx.manifests.put(
          {
            repositoryId: id,
            digest,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            artifactType: null,
            subjectDigest: spec.subject ?? null,
            annotations: null,
            size: payload.length,
            payload,
          },
          spec.references ?? [],
        );
        for (const tag of spec.tags ?? []) await tx.manifests.setTag(id, tag, digest);
        return digest;
      }),
  };
}

export const config = (digest: string): ManifestReference => ({ digest, kind: 'config' });
export const layer = (digest: string): ManifestReference => ({ digest, kind: 'layer' });
export const child = (digest: string): ManifestReference => ({ digest, kind: 'manifest' });
