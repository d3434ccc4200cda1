import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { readTreeCpuSeconds } from '../rss.js';
import { BenchClient, jsonBlob, OCI_MANIFEST, runPool, sha256, type Blob } from '../client.js';
import { formatSize, type BenchOptions } from '../options.js';
import { tempDir } from '../servers.js';
import type { Workload, WorkloadContext } from '../workload.js';

const run = promisify(execFile);

interface Layout {
  dir: string;
  manifest: Blob;
  blobs: { digest: string; size: number }[];
}

/** Writes one OCI image layout (oci-layout, index.json, blobs/sha256/*) of random layers. */
function writeLayout(dir: string, index: number, layers: number, layerSize: number): Layout {
  const blobDir = path.join(dir, 'blobs/sha256');
  mkdirSync(blobDir, { recursive: true });
  const store = (data: Buffer) => {
    const digest = sha256(data);
    writeFileSync(path.join(blobDir, digest.slice('sha256:'.length)), data);
    return { digest, size: data.length };
  };
  // Stored (level 0) gzip of random bytes: a real gzip stream, so skopeo pushes it as is
  // instead of compressing it, and cheap to make.
  const layerDescriptors = Array.from({ length: layers }, () => store(gzipSync(randomBytes(layerSize), { level: 0 })));
  const config = jsonBlob({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: layerDescriptors.map((l) => l.digest) },
    image: index,
  });
  store(config.data);
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
    layers: layerDescriptors.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
  });
  store(manifest.data);
  writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: manifest.digest, size: manifest.size }] }),
  );
  return { dir, manifest, blobs: [{ digest: config.digest, size: config.size }, ...layerDescriptors] };
}

async function skopeoCopy(layoutDir: string, destination: string): Promise<void> {
  // Layers are copied as they are: no compression change, so digests must survive.
  await run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${layoutDir}`, destination], {
    maxBuffer: 16 * 1024 * 1024,
  });
}

/** Every image reads back by tag with the same manifest bytes and every blob is there. */
async function verifyPushed(ctx: WorkloadContext, layouts: Layout[]): Promise<void> {
  const client = new BenchClient(ctx.server.url);
  await runPool(layouts, 8, async (layout, i) => {
    const got = await client.getBytes(`/v2/bench/skopeo-${i}/manifests/latest`, { accept: OCI_MANIFEST });
    ctx.check(
      got.status === 200 && got.body.equals(layout.manifest.data),
      "skopeo images: manifest bytes by tag equal the layout's",
      `image ${i}: HTTP ${got.status}`,
    );
    for (const blob of layout.blobs) {
      const head = await client.head(`/v2/bench/skopeo-${i}/blobs/${blob.digest}`);
      const size = Number(head.headers.get('content-length'));
      ctx.check(
        head.status === 200 && size === blob.size,
        'skopeo images: every blob present with its size',
        `image ${i} ${blob.digest}: HTTP ${head.status}, ${size} bytes`,
      );
    }
  });
}

export function skopeoPushWorkload(options: BenchOptions): Workload {
  let workDir = '';
  let layouts: Layout[] = [];
  const shape = `${options.images} images × ${options.layersPerImage} layers × ${formatSize(options.layerSize)}, ${options.skopeoParallel} in parallel`;
  return {
    id: 'skopeo-push',
    title: `skopeo copy of ${shape}`,
    figures: [
      { id: 'skopeo-push', label: `skopeo push (${shape})`, unit: 'images/s', better: 'higher', target: { ratioAtLeast: 1.5 } },
      // Issue 19: the wall time is skopeo-bound, so what the server spends per image is the figure that matters.
      {
        id: 'skopeo-push-cpu',
        label: `skopeo push (${shape}), server CPU per image`,
        unit: 'CPU-ms/image',
        better: 'lower',
        target: { ratioAtMost: 1 },
      },
    ],
    async prepare() {
      workDir = tempDir('berth-bench-oci-');
      layouts = Array.from({ length: options.images }, (_, i) =>
        writeLayout(path.join(workDir, `image-${i}`), i, options.layersPerImage, options.layerSize),
      );
    },
    async run(ctx) {
      const host = new URL(ctx.server.url).host;
      ctx.startMeasuring();
      const cpuStart = readTreeCpuSeconds(ctx.server.pid) ?? Number.NaN;
      const started = performance.now();
      await runPool(layouts, options.skopeoParallel, (layout, i) => skopeoCopy(layout.dir, `docker://${host}/bench/skopeo-${i}:latest`));
      const seconds = (performance.now() - started) / 1000;
      const cpuSeconds = (readTreeCpuSeconds(ctx.server.pid) ?? Number.NaN) - cpuStart;
      await verifyPushed(ctx, layouts);
      return { 'skopeo-push': layouts.length / seconds, 'skopeo-push-cpu': (1000 * cpuSeconds) / layouts.length };
    },
    async cleanup() {
      if (workDir) rmSync(workDir, { recursive: true, force: true });
    },
  };
}
