import { jsonBlob, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, sha256, type Blob } from '../test/helpers/registry-client.js';
import { nextLink, OciClient, type RequestBody } from '../src/client/index.js';

export { jsonBlob, sha256, OCI_MANIFEST, type Blob };

/**
 * The few registry calls the benchmark needs for seeding and verification: a thin layer
 * over src/client (OciClient) in the form both servers accept — Distribution 2.8 ignores
 * the body of a monolithic `POST ?digest=`, so a blob is pushed as POST + `PUT ?digest=`
 * with the bytes. No retries: a failure must show in the results, not be hidden.
 */
export class BenchClient {
  readonly oci: OciClient;

  constructor(readonly baseUrl: string) {
    this.oci = new OciClient({ baseUrl, retry: { attempts: 1 } });
  }

  url(pathOrUrl: string): string {
    return new URL(pathOrUrl, this.baseUrl).toString();
  }

  async uploadBlob(repo: string, blob: Blob): Promise<void> {
    await this.oci.pushBlob(repo, blob.data, { digest: blob.digest, mode: 'post-put' });
  }

  /** Cross-repository mount; uploads the bytes when the server answers with a new session. */
  async mountOrUpload(repo: string, from: string, blob: Blob): Promise<void> {
    await this.oci.pushBlob(repo, blob.data, { digest: blob.digest, mountFrom: from });
  }

  async putManifest(repo: string, reference: string, manifest: Blob, mediaType = OCI_MANIFEST): Promise<void> {
    await this.oci.putManifest(repo, reference, manifest.data, mediaType);
  }

  /** GET returning the exact body bytes. */
  async getBytes(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
    const res = await this.fetch(path, { headers });
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  }

  async getJson<T>(path: string): Promise<{ body: T; next: string | null }> {
    const res = await this.oci.transport.expect({ method: 'GET', url: path }, [200]);
    return { body: (await res.json()) as T, next: nextLink(res.headers.get('link')) };
  }

  async head(path: string): Promise<Response> {
    return this.fetch(path, { method: 'HEAD' });
  }

  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return this.oci.send({
      method: init.method ?? 'GET',
      url: this.url(path),
      headers: init.headers as Record<string, string> | undefined,
      body: (init.body ?? undefined) as RequestBody | undefined,
    });
  }
}

export { nextLink };

/** A small image (config + one layer) and its manifest, for seeding. */
export function smallImage(nonce: string): { config: Blob; layer: Blob; manifest: Blob } {
  const config = jsonBlob({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce });
  const layer = jsonBlob({ layer: nonce });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers: [{ mediaType: OCI_LAYER, digest: layer.digest, size: layer.size }],
  });
  return { config, layer, manifest };
}

/** Runs `task` over `items` with at most `concurrency` in flight; the first failure rejects. */
export async function runPool<T>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await task(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
