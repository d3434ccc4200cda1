import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, sha256 } from './registry-client.js';

/**
 * Generates OCI image layouts (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
 * at test time: `oci-layout`, `index.json` and `blobs/sha256/*`, with real gzip'd tar
 * layers of random content, so skopeo/podman/buildah can read them with `oci:<dir>:<tag>`.
 * Layers are streamed to disk, so a 20 MB layer never sits in memory whole.
 */

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface LayoutImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
}

export interface LayoutIndex {
  index: Descriptor;
  images: LayoutImage[];
}

export const REF_NAME = 'org.opencontainers.image.ref.name';
const TAR_BLOCK = 512;
const RANDOM_CHUNK = 64 * 1024;

/** Creates an empty layout directory (`oci-layout` + empty `index.json`). */
export function initLayout(dir: string): void {
  mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
}

/** Writes `bytes` as a blob of the layout and returns its descriptor. */
export function writeBlob(dir: string, bytes: Buffer, mediaType: string): Descriptor {
  const digest = sha256(bytes);
  writeFileSync(blobPath(dir, digest), bytes);
  return { mediaType, digest, size: bytes.length };
}

export function blobPath(dir: string, digest: string): string {
  return path.join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}

/**
 * Writes a gzip'd tar layer holding one file of `size` random bytes. Returns the layer's
 * descriptor and its diff ID (the digest of the uncompressed tar, which the config lists).
 */
export async function writeRandomLayer(dir: string, size: number): Promise<{ descriptor: Descriptor; diffId: string }> {
  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  let gzSize = 0;
  const temp = path.join(dir, 'blobs', `.tmp-${randomBytes(8).toString('hex')}`);
  await pipeline(
    Readable.from(tarStream(`file-${randomBytes(6).toString('hex')}.bin`, size)),
    tap((chunk) => tarHash.update(chunk)),
    createGzip({ level: 1 }),
    tap((chunk) => {
      gzHash.update(chunk);
      gzSize += chunk.length;
    }),
    createWriteStream(temp),
  );
  const digest = `sha256:${gzHash.digest('hex')}`;
  renameSync(temp, blobPath(dir, digest));
  return { descriptor: { mediaType: OCI_LAYER, digest, size: gzSize }, diffId: `sha256:${tarHash.digest('hex')}` };
}

/** Writes config, layers and manifest of a single-platform image (not yet named in index.json). */
export async function writeImage(dir: string, options: { layerSizes: number[]; platform?: Platform }): Promise<LayoutImage> {
  const platform = options.platform ?? { architecture: 'amd64', os: 'linux' };
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const size of options.layerSizes) {
    const { descriptor, diffId } = await writeRandomLayer(dir, size);
    layers.push(descriptor);
    diffIds.push(diffId);
  }
  const config = writeBlob(
    dir,
    Buffer.from(
      JSON.stringify({
        created: '2024-01-01T00:00:00Z',
        ...platform,
        config: { Env: ['PATH=/usr/bin'], Labels: { 'berth.test.nonce': randomBytes(8).toString('hex') } },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'berth interop test' })),
      }),
    ),
    OCI_CONFIG,
  );
  const manifest = writeBlob(dir, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers })), OCI_MANIFEST);
  return { manifest, config, layers };
}

/** Adds `descriptor` to index.json under `tag` (the `oci:<dir>:<tag>` reference). */
export function tagInLayout(dir: string, descriptor: Descriptor, tag: string): void {
  const index = readIndexJson(dir);
  index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME] !== tag);
  index.manifests.push({ ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME]: tag } });
  writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
}

/** A fresh layout at `dir` holding one image of `layerSizes` random layers, tagged `tag`. */
export async function createLayoutImage(dir: string, tag: string, layerSizes: number[]): Promise<LayoutImage> {
  initLayout(dir);
  const image = await writeImage(dir, { layerSizes });
  tagInLayout(dir, image.manifest, tag);
  return image;
}

/** A fresh layout at `dir` holding an image index over one image per platform, tagged `tag`. */
export async function createLayoutIndex(dir: string, tag: string, platforms: Platform[], layerSizes: number[]): Promise<LayoutIndex> {
  initLayout(dir);
  const images: LayoutImage[] = [];
  for (const platform of platforms) images.push(await writeImage(dir, { layerSizes, platform }));
  const index = writeBlob(
    dir,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: images.map((image, i) => ({ ...image.manifest, platform: platforms[i] })),
      }),
    ),
    OCI_INDEX,
  );
  tagInLayout(dir, index, tag);
  return { index, images };
}

/** The OCI empty descriptor's content: `{}`, used as config by artifacts that need none. */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';

/**
 * A fresh layout at `dir` holding an OCI artifact tagged `tag`: `artifactType`, the
 * empty config and one layer per entry of `files` (any bytes, zero-length included).
 */
export function createLayoutArtifact(
  dir: string,
  tag: string,
  artifactType: string,
  files: { mediaType: string; data: Buffer }[],
): LayoutImage {
  initLayout(dir);
  const config = writeBlob(dir, Buffer.from('{}'), OCI_EMPTY);
  const layers = files.map((file) => writeBlob(dir, file.data, file.mediaType));
  const manifest = writeBlob(
    dir,
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType, config, layers })),
    OCI_MANIFEST,
  );
  tagInLayout(dir, manifest, tag);
  return { manifest, config, layers };
}

interface IndexJson {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

export function readIndexJson(dir: string): IndexJson {
  return JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as IndexJson;
}

/** The descriptor index.json lists under `tag`; throws if there is none. */
export function taggedDescriptor(dir: string, tag: string): Descriptor {
  const found = readIndexJson(dir).manifests.find((d) => d.annotations?.[REF_NAME] === tag);
  if (!found) throw new Error(`${dir}/index.json has no manifest tagged ${tag}`);
  return found;
}

/**
 * Every blob in the layout, as digest → actual sha256 of the file's bytes (they differ
 * only if a blob file is corrupt; callers compare both).
 */
export function layoutBlobs(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  for (const name of readdirSync(blobsDir)) {
    out.set(`sha256:${name}`, sha256(readFileSync(path.join(blobsDir, name))));
  }
  return out;
}

export function readBlob(dir: string, digest: string): Buffer {
  return readFileSync(blobPath(dir, digest));
}

/** A ustar archive holding one regular file of `size` random bytes. */
function* tarStream(name: string, size: number): Generator<Buffer> {
  yield tarHeader(name, size);
  for (let left = size; left > 0; left -= RANDOM_CHUNK) yield randomBytes(Math.min(RANDOM_CHUNK, left));
  const pad = (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
  // Padding to a whole block, then the two zero blocks that end an archive.
  yield Buffer.alloc(pad + 2 * TAR_BLOCK);
}

function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(TAR_BLOCK);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'ascii');
  const octal = (offset: number, length: number, value: number) =>
    field(offset, length, value.toString(8).padStart(length - 1, '0') + '\0');
  field(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 1_704_067_200); // 2024-01-01: fixed, so only the random content varies
  field(156, 1, '0');
  field(257, 8, 'ustar\u000000');
  field(265, 32, 'root');
  field(297, 32, 'root');
  // The checksum is computed with its own field read as eight spaces.
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return header;
}

function tap(observe: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      observe(chunk);
      done(null, chunk);
    },
  });
}
