import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type * as fzstdModule from 'fzstd';
import type tarModule from 'tar-stream';
import type { Header as TarHeader } from 'tar-stream';
import { lazyPackage } from '../core/lazy.js';

const fzstd = lazyPackage<typeof fzstdModule>('fzstd');
const tar = lazyPackage<typeof tarModule>('tar-stream');
/**
 * Reads an image's layers in order, streaming: each layer is decompressed (gzip with zlib,
 * zstd with fzstd — Node 20 has no zstd in zlib — or plain tar, told apart by the magic bytes,
 * whatever the media type says) and walked entry by entry with tar-stream. Only the files an
 * analyser selects are read, each through a bounded sink; every other entry is skipped unread.
 * OCI whiteouts are honoured across layers: `.wh.<name>` removes `<name>` (and what is under
 * it) from the layers below, `.wh..wh..opq` empties its directory of the layers below, and an
 * upper layer's entry at a path hides a lower layer's file there. What is kept per file is the
 * sink's small result (parsed packages), with the layer it came from.
 */

export interface LayerRef {
  digest: string;
  mediaType: string;
  size: number;
}

export interface FileHeader {
  /** Path in the image's root filesystem, without a leading `/` or `./`. */
  path: string;
  size: number;
  mode: number;
}

/**
 * Consumes one selected file. `push` gets the content chunk by chunk and returns false once it
 * wants no more (the rest is skipped); `finish` returns what to keep (null: nothing).
 */
export interface FileSink<T> {
  push(chunk: Buffer): boolean;
  finish(): T | null | Promise<T | null>;
}

export type Selector<T> = (header: FileHeader) => FileSink<T> | null;

export interface FoundFile<T> {
  path: string;
  layer: string;
  layerIndex: number;
  value: T;
}

export interface LayerReadResult<T> {
  files: Map<string, FoundFile<T>>;
  /** Things the reader could not do (a layer not stored, an unreadable entry). */
  notes: string[];
}

/** Normalises a tar entry name to a root-relative path ('' for the root itself). */
export function normalisePath(name: string): string {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Removes from `files` the entries of layers below `layerIndex` at `path` or under it (`path` '' = everything). */
function removeBelow<T>(files: Map<string, FoundFile<T>>, path: string, layerIndex: number, withSelf: boolean): void {
  const prefix = path === '' ? '' : `${path}/`;
  for (const [key, found] of files) {
    if (found.layerIndex >= layerIndex) continue;
    if ((withSelf && key === path) || key.startsWith(prefix)) files.delete(key);
  }
}

/** The layer's tar stream: gzip or zstd told apart by their magic bytes, else the bytes as they are. */
async function* untarred(source: Readable): AsyncGenerator<Buffer> {
  const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let headSize = 0;
  while (headSize < 4) {
    const step = await chunks.next();
    if (step.done) break;
    head.push(step.value);
    headSize += step.value.length;
  }
  const first = Buffer.concat(head);
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.length > 0) yield first;
    for (let step = await chunks.next(); !step.done; step = await chunks.next()) yield step.value;
  }
  if (first[0] === 0x1f && first[1] === 0x8b) {
    const gunzip = createGunzip();
    const feeding = pipeline(rest(), gunzip);
    for await (const chunk of gunzip) yield chunk as Buffer;
    await feeding;
  } else if (first.length >= 4 && first.readUInt32LE(0) === 0xfd2fb528) {
    const out: Buffer[] = [];
    const zstd = new (fzstd().Decompress)((data) => void out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
    for await (const chunk of rest()) {
      zstd.push(chunk);
      yield* out.splice(0);
    }
    zstd.push(new Uint8Array(0), true);
    yield* out.splice(0);
  } else {
    yield* rest();
  }
}

/**
 * Reads `layers` (lowest first) and returns the selected files of the final filesystem.
 * `open` streams a layer's stored bytes (null: not stored here, e.g. a foreign layer).
 */
export async function readLayers<T>(
  layers: LayerRef[],
  open: (layer: LayerRef) => Promise<Readable | null>,
  select: Selector<T>,
): Promise<LayerReadResult<T>> {
  const files = new Map<string, FoundFile<T>>();
  const notes: string[] = [];
  for (let layerIndex = 0; layerIndex < layers.length; layerIndex++) {
    const layer = layers[layerIndex]!;
    const source = await open(layer);
    if (!source) {
      notes.push(`layer ${layer.digest} (${layer.mediaType}) is not stored in the registry: not read`);
      continue;
    }
    const extract = tar().extract();
    extract.on('entry', (header, stream, next) => {
      void handleEntry(header, stream as unknown as AsyncIterable<Buffer> & { resume(): void }).then(
        () => next(),
        (err: unknown) => next(err as Error),
      );
    });
    async function handleEntry(header: TarHeader, stream: AsyncIterable<Buffer> & { resume(): void }): Promise<void> {
      const path = normalisePath(header.name);
      const slash = path.lastIndexOf('/');
      const base = path.slice(slash + 1);
      const dir = slash < 0 ? '' : path.slice(0, slash);
      let sink: FileSink<T> | null = null;
      if (base === OPAQUE) {
        removeBelow(files, dir, layerIndex, false);
      } else if (base.startsWith(WHITEOUT)) {
        const target = dir === '' ? base.slice(WHITEOUT.length) : `${dir}/${base.slice(WHITEOUT.length)}`;
        removeBelow(files, target, layerIndex, true);
      } else if (path !== '') {
        // An upper layer's entry at a selected path hides the lower file (a file, link or directory now).
        const lower = files.get(path);
        if (lower && lower.layerIndex < layerIndex) files.delete(path);
        if (header.type === 'file' || header.type === 'contiguous-file') {
          sink = select({ path, size: header.size ?? 0, mode: header.mode ?? 0 });
        }
      }
      let wanted = sink !== null;
      for await (const chunk of stream) {
        if (wanted && !sink!.push(chunk)) wanted = false;
      }
      if (!sink) return;
      const value = await sink.finish();
      if (value !== null) files.set(path, { path, layer: layer.digest, layerIndex, value });
    }
    try {
      await pipeline(untarred(source), extract);
    } catch (err) {
      throw new Error(`layer ${layer.digest}: ${(err as Error).message}`, { cause: err });
    }
  }
  return { files, notes };
}

/**
 * A sink that keeps the whole file up to `limit` bytes and parses it at the end; a larger file
 * is skipped with a note (never held in memory past the limit).
 */
export function bufferSink<T>(header: FileHeader, limit: number, parse: (bytes: Buffer) => T | null, notes: string[]): FileSink<T> | null {
  if (header.size > limit) {
    notes.push(`${header.path} is ${header.size} bytes, over the ${limit}-byte limit: not read`);
    return null;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    push(chunk) {
      size += chunk.length;
      if (size > limit) return false;
      chunks.push(chunk);
      return true;
    },
    finish() {
      if (size > limit) return null;
      try {
        return parse(Buffer.concat(chunks, size));
      } catch (err) {
        notes.push(`${header.path}: ${(err as Error).message}`);
        return null;
      }
    },
  };
}
