import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { LayerRef } from '../../src/sbom/layers.js';
import { sqliteRpmDbReader } from '../../src/metadata/rpmdb.js';
import { inventory } from '../../src/sbom/inventory.js';
import type { Inventory } from '../../src/sbom/model.js';

export interface Entry {
  path: string;
  data?: Buffer | string;
  mode?: number;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
}

/** A tar archive of `entries`, built with tar-stream (what docker/buildah write: ustar + pax). */
export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const data = e.data === undefined ? undefined : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
    await new Promise<void>((resolve, reject) =>
      pack.entry(
        {
          name: e.path,
          type: e.type ?? 'file',
          mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644),
          linkname: e.linkname,
          size: data?.length ?? 0,
        },
        data ?? Buffer.alloc(0),
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export type Compression = 'gzip' | 'zstd' | 'none';

export async function layerOf(entries: Entry[], compression: Compression = 'gzip'): Promise<Buffer> {
  const raw = await tarOf(entries);
  if (compression === 'gzip') return gzipSync(raw);
  if (compression === 'zstd') return execFileSync('zstd', ['-q', '-c', '-3'], { input: raw, maxBuffer: 1 << 30 });
  return raw;
}

/** Runs the inventory over in-memory layers. */
export async function inventoryOf(layers: Buffer[]): Promise<Inventory> {
  const refs: LayerRef[] = layers.map((_, i) => ({
    digest: `sha256:${String(i).padStart(64, '0')}`,
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    size: layers[i]!.length,
  }));
  return inventory(refs, async (ref) => Readable.from([layers[refs.indexOf(ref)]!]), sqliteRpmDbReader);
}
