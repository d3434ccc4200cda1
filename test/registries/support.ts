import type { OciClient } from '../../src/client/index.js';
import { OCI_INDEX, OCI_MANIFEST, makeImage, type Image } from '../helpers/registry-client.js';

/** One attempt per request: the tests' upstreams fail on purpose, and retries would only slow them. */
export const FAST = { attempts: 1 };

/** Pushes an image's blobs, then its manifest under `tag`, to an upstream. */
export async function pushImage(client: OciClient, repo: string, tag: string, image: Image): Promise<void> {
  for (const blob of [image.config, ...image.layers]) await client.pushBlob(repo, blob.data);
  await client.putManifest(repo, tag, image.manifest.data, OCI_MANIFEST);
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Pushes a linux/amd64 + linux/arm64 index under `tag` (the children by digest only) to an upstream. */
export async function pushTwoPlatformIndex(
  client: OciClient,
  repo: string,
  tag: string,
): Promise<{ amd: Image; arm: Image; index: Buffer }> {
  const amd = makeImage({ layers: 1 });
  const arm = makeImage({ layers: 1 });
  for (const child of [amd, arm]) {
    for (const blob of [child.config, ...child.layers]) await client.pushBlob(repo, blob.data);
    await client.putManifest(repo, child.manifest.digest, child.manifest.data, OCI_MANIFEST);
  }
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [amd, arm].map((c, i) => ({
        mediaType: OCI_MANIFEST,
        digest: c.manifest.digest,
        size: c.manifest.size,
        platform: { architecture: ['amd64', 'arm64'][i], os: 'linux' },
      })),
    }),
  );
  await client.putManifest(repo, tag, index, OCI_INDEX);
  return { amd, arm, index };
}
