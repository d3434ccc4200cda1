import { jsonBlob, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, sha256, type Blob } from '../test/helpers/registry-client.js';

export { jsonBlob, sha256, OCI_MANIFEST, type Blob };

/**
 * The few registry calls the benchmark needs for seeding and verification, in the form
 * both servers accept: Distribution 2.8 ignores the body of a monolithic `POST ?digest=`,
 * so a blob is pushed as POST + `PUT ?digest=` with the bytes.
 */
export class BenchClient {
  constructor(readonly baseUrl: string) {}

  url(pathOrUrl: string): string {
    return new URL(pathOrUrl, this.baseUrl).toString();
  }

  async uploadBlob(repo: string, blob: Blob): Promise<void> {
    const start = await this.expect(`/v2/${repo}/blobs/uploads/`, { method: 'POST' }, 202);
    await this.finishUpload(start.headers.get('location')!, blob);
  }

  /** Cross-repository mount; uploads the bytes when the server answers with a new session. */
  async mountOrUpload(repo: string, from: string, blob: Blob): Promise<void> {
    const res = await this.fetch(`/v2/${repo}/blobs/uploads/?mount=${blob.digest}&from=${from}`, { method: 'POST' });
    await res.arrayBuffer();
    if (res.status === 201) return;
    if (res.status !== 202) throw new Error(`mount into ${repo}: HTTP ${res.status}`);
    await this.finishUpload(res.headers.get('location')!, blob);
  }

  async putManifest(repo: string, reference: string, manifest: Blob, mediaType = OCI_MANIFEST): Promise<void> {
    await this.expect(`/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: new Uint8Array(manifest.data), headers: { 'content-type': mediaType } }, 201);
  }

  /** GET returning the exact body bytes. */
  async getBytes(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
    const res = await this.fetch(path, { headers });
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  }

  async getJson<T>(path: string): Promise<{ body: T; next: string | null }> {
    const res = await this.expect(path, {}, 200);
    return { body: (await res.json()) as T, next: nextLink(res.headers.get('link')) };
  }

  async head(path: string): Promise<Response> {
    return this.fetch(path, { method: 'HEAD' });
  }

  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(this.url(path), init);
  }

  private async finishUpload(location: string, blob: Blob): Promise<void> {
    const target = new URL(location, this.baseUrl);
    target.searchParams.set('digest', blob.digest);
    await this.expect(target.toString(), { method: 'PUT', body: new Uint8Array(blob.data), headers: { 'content-type': 'application/octet-stream' } }, 201);
  }

  private async expect(path: string, init: RequestInit, status: number): Promise<Response> {
    const res = await this.fetch(path, init);
    if (res.status !== status) throw new Error(`${init.method ?? 'GET'} ${path}: expected ${status}, got ${res.status} ${await res.text()}`);
    if (init.method !== undefined && init.method !== 'GET') await res.arrayBuffer();
    return res;
  }
}

/** The target of a `Link: <…>; rel="next"` header. */
export function nextLink(header: string | null): string | null {
  if (!header) return null;
  return /<([^>]+)>\s*;\s*rel="?next"?/.exec(header)?.[1] ?? null;
}

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
