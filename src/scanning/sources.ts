import { createReadStream } from 'node:fs';
import { opendir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type yauzlModule from 'yauzl';
import { lazyPackage } from '../core/lazy.js';

/**
 * Where `berth vulndb import` reads OSV records: a directory (walked recursively), a zip
 * archive (as OSV publishes each ecosystem: `<Ecosystem>/all.zip`, one `<id>.json` per record)
 * or one `.json` file. Files are read one at a time (the zip entry by entry, streamed), so
 * memory stays bounded by the largest single record, whatever the database's size.
 */

/** A record file: its text, or why it could not be read. */
export type SourceFile = { name: string; text: string } | { name: string; error: string };

/** Larger JSON files are refused (an OSV record is a few KiB; the largest known are under 2 MiB). */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

export async function* readOsvSource(source: string, maxRecordBytes = MAX_RECORD_BYTES): AsyncGenerator<SourceFile> {
  const info = await stat(source);
  if (info.isDirectory()) yield* readDirectory(source, maxRecordBytes);
  else if (source.toLowerCase().endsWith('.zip')) yield* readZip(source, maxRecordBytes);
  else if (source.toLowerCase().endsWith('.json')) yield await readFile(source, path.basename(source), maxRecordBytes);
  else throw new Error(`${source}: give a directory, a .zip archive or a .json file of OSV records`);
}

async function* readDirectory(root: string, max: number): AsyncGenerator<SourceFile> {
  // Sorted, so two imports of the same tree read it in the same order (a resumed import redoes the same batches).
  const entries = [];
  for await (const entry of await opendir(root)) entries.push(entry);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const full = path.join(root, entry.name);
    if (entry.isDirectory()) yield* readDirectory(full, max);
    else if (entry.isFile() && entry.name.toLowerCase().endsWith('.json')) yield await readFile(full, full, max);
    else if (entry.isFile() && entry.name.toLowerCase().endsWith('.zip')) yield* readZip(full, max);
  }
}

async function readFile(file: string, name: string, max: number): Promise<SourceFile> {
  return readStream(createReadStream(file), name, max);
}

/** The whole stream as UTF-8 text, or an error once it passes `max` bytes. */
async function readStream(stream: Readable, name: string, max: number): Promise<SourceFile> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > max) {
        stream.destroy();
        return { name, error: `larger than ${max} bytes` };
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    return { name, error: `unreadable (${(err as Error).message})` };
  }
  return { name, text: Buffer.concat(chunks).toString('utf8') };
}

const yauzl = lazyPackage<typeof yauzlModule>('yauzl');

function openZip(file: string): Promise<yauzlModule.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl().open(file, { lazyEntries: true, autoClose: true, strictFileNames: false }, (err, zip) =>
      err ? reject(new Error(`${file}: not a readable zip archive (${err.message})`)) : resolve(zip),
    );
  });
}

async function* readZip(file: string, max: number): AsyncGenerator<SourceFile> {
  const zip = await openZip(file);
  let ended = false;
  try {
    for (;;) {
      const entry = await new Promise<yauzlModule.Entry | null>((resolve, reject) => {
        const onEntry = (e: yauzlModule.Entry) => done(() => resolve(e));
        const onEnd = () => done(() => resolve(null));
        const onError = (err: Error) => done(() => reject(new Error(`${file}: not a readable zip archive (${err.message})`)));
        const done = (settle: () => void) => {
          zip.off('entry', onEntry).off('end', onEnd).off('error', onError);
          settle();
        };
        zip.on('entry', onEntry).on('end', onEnd).on('error', onError);
        zip.readEntry();
      });
      if (entry === null) {
        ended = true;
        return;
      }
      const name = `${path.basename(file)}:${entry.fileName}`;
      if (entry.fileName.endsWith('/') || !entry.fileName.toLowerCase().endsWith('.json')) continue;
      if (entry.uncompressedSize > max) {
        yield { name, error: `larger than ${max} bytes` };
        continue;
      }
      const stream = await new Promise<Readable | Error>((resolve) => zip.openReadStream(entry, (err, s) => resolve(err ?? s)));
      yield stream instanceof Error ? { name, error: `unreadable (${stream.message})` } : await readStream(stream, name, max);
    }
  } finally {
    // Stopped early (the importer failed, or its caller returned): free the archive's file descriptor.
    if (!ended) zip.close();
  }
}
