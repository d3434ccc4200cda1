import { createHash, randomBytes } from 'node:crypto';
import { blobRequests, manifestRequests, OciClient, type RequestBody } from '../../src/client/index.js';

/**
 * A small OCI distribution client for tests, speaking plain HTTP through fetch, so
 * tests read like the spec: push a blob, push a manifest, pull it back.
 */

export interface Blob {
  digest: string;
  size: number;
  data: Buffer;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function makeBlob(size: number, seed?: string): Blob {
  const data = seed === undefined ? randomBytes(size) : Buffer.alloc(size, seed);
  return { digest: sha256(data), size, data };
}

export function jsonBlob(value: unknown): Blob {
  const data = Buffer.from(JSON.stringify(value));
  return { digest: sha256(data), size: data.length, data };
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

export interface Image {
  config: Blob;
  layers: Blob[];
  manifest: Blob;
  mediaType: string;
}

/** Builds (without pushing) an OCI image manifest over fresh random layers. */
export function makeImage(
  options: {
    layers?: number;
    layerSize?: number;
    subject?: { digest: string; size: number; mediaType: string };
    artifactType?: string;
    annotations?: Record<string, string>;
  } = {},
): Image {
  const config = jsonBlob({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [] },
    nonce: randomBytes(8).toString('hex'),
  });
  const layers = Array.from({ length: options.layers ?? 2 }, () => makeBlob(options.layerSize ?? 1024));
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.size })),
    ...(options.subject ? { subject: options.subject } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  });
  return { config, layers, manifest, mediaType: OCI_MANIFEST };
}

/**
 * The spec tests' client: a thin layer over src/client (OciClient) that hands back the raw
 * Response, because these tests assert on statuses and headers, error ones included.
 * It therefore turns off what the real client does for its users: no retries, no answers
 * to 401 challenges (the headers given here are all the auth there is).
 */
export class RegistryClient {
  readonly oci: OciClient;

  constructor(
    readonly baseUrl: string,
    readonly headers: Record<string, string> = {},
  ) {
    this.oci = new OciClient({ baseUrl, headers, retry: { attempts: 1 }, answerChallenges: false });
  }

  url(path: string): string {
    return new URL(path, this.baseUrl).toString();
  }

  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return this.oci.send({
      method: init.method ?? 'GET',
      url: this.url(path),
      headers: init.headers as Record<string, string> | undefined,
      body: (init.body ?? undefined) as RequestBody | undefined,
      signal: init.signal ?? undefined,
      redirect: init.redirect === 'manual' ? 'manual' : 'follow',
    });
  }

  /** Monolithic upload: POST ?digest= with the whole body. */
  async pushBlob(repo: string, blob: Blob): Promise<Response> {
    return this.oci.send(blobRequests.postWhole(repo, blob.digest, blob.data));
  }

  /** POST to start, then PATCH chunks with Content-Range, then PUT ?digest=. */
  async pushBlobChunked(repo: string, blob: Blob, chunkSize: number): Promise<Response> {
    let res = await this.oci.send(blobRequests.start(repo));
    if (res.status !== 202) return res;
    let location = res.headers.get('location')!;
    for (let offset = 0; offset < blob.size; offset += chunkSize) {
      res = await this.oci.send(blobRequests.patch(location, offset, blob.data.subarray(offset, offset + chunkSize)));
      if (res.status !== 202) return res;
      location = res.headers.get('location')!;
    }
    return this.oci.send(blobRequests.complete(location, blob.digest));
  }

  async pushManifest(repo: string, reference: string, manifest: Blob, mediaType: string = OCI_MANIFEST): Promise<Response> {
    return this.oci.send(manifestRequests.put(repo, reference, manifest.data, mediaType));
  }

  /** Pushes config, layers and manifest; throws unless every step succeeds. */
  async pushImage(repo: string, tag: string, image: Image): Promise<Response> {
    for (const blob of [image.config, ...image.layers]) {
      const res = await this.pushBlob(repo, blob);
      if (res.status !== 201) throw new Error(`blob push failed: ${res.status} ${await res.text()}`);
    }
    const res = await this.pushManifest(repo, tag, image.manifest, image.mediaType);
    if (res.status !== 201) throw new Error(`manifest push failed: ${res.status} ${await res.text()}`);
    return res;
  }
}

/** The `errors[0].code` of a spec error body. */
export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}
