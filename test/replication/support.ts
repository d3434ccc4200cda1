import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DISTRIBUTION_BINARY } from '../../bench/servers.js';
import { OciClient } from '../../src/client/index.js';
import {
  jsonBlob,
  makeBlob,
  makeImage,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
  type Blob,
  type Image,
} from '../helpers/registry-client.js';

/** Fast retries for tests. */
export const FAST_RETRY = { attempts: 3, baseDelayMs: 5, maxDelayMs: 50 };

export async function pushImage(client: OciClient, repo: string, tag: string | null, image: Image): Promise<void> {
  for (const blob of [image.config, ...image.layers]) await client.pushBlob(repo, blob.data);
  await client.putManifest(repo, tag ?? image.manifest.digest, image.manifest.data, OCI_MANIFEST);
}

export interface SeededIndex {
  index: Blob;
  children: Image[];
}

/** An index over two platform images, pushed children first. */
export async function pushIndex(client: OciClient, repo: string, tag: string): Promise<SeededIndex> {
  const children = [makeImage({ layers: 2, layerSize: 20_000 }), makeImage({ layers: 1, layerSize: 30_000 })];
  for (const child of children) await pushImage(client, repo, null, child);
  const index = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map((c, i) => ({
      mediaType: OCI_MANIFEST,
      digest: c.manifest.digest,
      size: c.manifest.size,
      platform: { architecture: i === 0 ? 'amd64' : 'arm64', os: 'linux' },
    })),
  });
  await client.putManifest(repo, tag, index.data, OCI_INDEX);
  return { index, children };
}

/** A signature-like artifact whose subject is `subject`, pushed by digest. */
export async function pushReferrer(client: OciClient, repo: string, subject: Blob, artifactType: string): Promise<Image> {
  const referrer = makeImage({
    layers: 1,
    layerSize: 500,
    artifactType,
    subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.size },
  });
  await pushImage(client, repo, null, referrer);
  return referrer;
}

/** An image over one big random layer (held in memory: tests keep it at tens of MiB). */
export function bigImage(layerSize: number): Image {
  const layer = makeBlob(layerSize);
  return { ...imageOver(layer), layers: [layer] };
}

/** The config and manifest of an image whose only layer is `layer`. */
function imageOver(layer: { digest: string; size: number }): { config: Blob; manifest: Blob; mediaType: string } {
  const config = jsonBlob({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, big: layer.size });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers: [{ mediaType: OCI_LAYER, digest: layer.digest, size: layer.size }],
  });
  return { config, manifest, mediaType: OCI_MANIFEST };
}

/** `size` pseudo-random bytes (the AES-128-CTR keystream of `seed`) in pieces of `piece`: a blob of any size, never held whole. */
export async function* pseudoRandom(size: number, seed: string, piece = 4 * 1024 * 1024): AsyncGenerator<Buffer> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(piece);
  for (let done = 0; done < size; done += piece) yield cipher.update(zeros.subarray(0, Math.min(piece, size - done)));
}

export interface GeneratedImage {
  config: Blob;
  manifest: Blob;
  layer: { digest: string; size: number };
}

/**
 * Pushes an image over one generated layer of `size` bytes (pseudoRandom of `seed`): the layer
 * is sent in PATCHes of 32 MiB and hashed on the way, so a GiB costs 32 MiB of memory.
 */
export async function pushGeneratedImage(
  client: OciClient,
  repo: string,
  tag: string,
  size: number,
  seed: string,
): Promise<GeneratedImage> {
  const hash = createHash('sha256');
  let session = await client.startUpload(repo);
  for await (const chunk of pseudoRandom(size, seed, 32 * 1024 * 1024)) {
    hash.update(chunk);
    session = await client.appendChunk(repo, session, chunk);
  }
  const layer = { digest: `sha256:${hash.digest('hex')}`, size };
  await client.completeUpload(repo, session, layer.digest);
  const { config, manifest } = imageOver(layer);
  await client.pushBlob(repo, config.data);
  await client.putManifest(repo, tag, manifest.data, OCI_MANIFEST);
  return { config, manifest, layer };
}

/** Fails (never skips) when the temporary directory cannot hold `bytes` more: the GiB tests say so up front. */
export function requireFreeSpace(bytes: number, dir = os.tmpdir()): void {
  const stats = statfsSync(dir);
  const free = stats.bavail * stats.bsize;
  if (free < bytes)
    throw new Error(`${dir} has ${(free / 2 ** 30).toFixed(1)} GiB free; this test needs ${(bytes / 2 ** 30).toFixed(1)} GiB`);
}

/** `skopeo inspect --raw`: the manifest bytes as a real client sees them. */
export async function skopeoRaw(url: string, reference: string, creds?: { username: string; password: string }): Promise<string> {
  const host = new URL(url).host;
  const args = [
    'inspect',
    '--raw',
    '--tls-verify=false',
    ...(creds ? ['--creds', `${creds.username}:${creds.password}`] : ['--no-creds']),
    `docker://${host}/${reference}`,
  ];
  const { stdout } = await promisify(execFile)('skopeo', args, { timeout: 60_000 });
  return stdout;
}

/** Restarts a Distribution on its kept data directory (same config, same port) after a kill. */
export async function respawnDistribution(dataDir: string, url: string): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(DISTRIBUTION_BINARY, ['serve', path.join(dataDir, 'config.yml')], {
    stdio: 'ignore',
    env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await fetch(`${url}/v2/`).then(
      (res) => res.status === 200 || res.status === 401,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('Distribution did not come back');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * An HTTP front that forwards every request to `target` unchanged (the Host header too, so
 * upload Locations point back at the front) and records method, URL and Content-Range: the
 * order in which a registry saw requests. A side that goes away (killed) cuts the other.
 */
export class RecordingFront {
  readonly seen: { method: string; url: string; status: number; range?: string; at: number }[] = [];
  /** Response body bytes sent to clients (blob bytes a copy downloaded through the front). */
  bytesOut = 0;
  /** Request body bytes received from clients (blob bytes a copy uploaded through the front). */
  bytesIn = 0;
  private constructor(private readonly server: Server) {}

  static async start(target: string): Promise<RecordingFront> {
    const targetUrl = new URL(target);
    const front: RecordingFront = new RecordingFront(
      createServer((req, res) => {
        const range = req.headers['content-range'];
        const entry = { method: req.method!, url: req.url!, status: 0, at: Date.now(), ...(range ? { range } : {}) };
        front.seen.push(entry);
        const upstream = httpRequest(
          { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: req.headers },
          (up) => {
            entry.status = up.statusCode!;
            res.writeHead(up.statusCode!, up.headers);
            up.on('data', (chunk: Buffer) => (front.bytesOut += chunk.length));
            up.pipe(res);
          },
        );
        upstream.on('error', () => res.destroy());
        // A client killed mid-request: end the upstream request too, as the registry would see it without the front.
        res.on('close', () => {
          if (!res.writableFinished) upstream.destroy();
        });
        req.on('data', (chunk: Buffer) => (front.bytesIn += chunk.length));
        req.pipe(upstream);
      }),
    );
    await new Promise<void>((resolve) => front.server.listen(0, '127.0.0.1', resolve));
    return front;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
