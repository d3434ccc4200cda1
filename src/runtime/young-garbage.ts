import { v8Gc, type GcFunction } from './gc.js';

/**
 * Frees request-body chunks as soon as a few MiB of them are dead, instead of when V8 gets to it.
 *
 * Node hands an upload's body to JavaScript as one malloc'd Buffer per socket read (up to 64 KiB),
 * freed only when V8 collects the Buffer object. V8 schedules young-generation collections by the
 * JavaScript heap it allocates, and a body chunk costs the heap a few hundred bytes for 64 KiB of
 * malloc: a 1 GiB push filled malloc's heap with ~64 MiB of dead chunks before V8's
 * external-memory limit started a full mark-compact (bench blob-stream: malloc heap 9 → 50 MB,
 * peak RSS 146–160 MB, a mark-compact every ~300 ms). The chunks die young (the stager copies each
 * one and drops it), so a scavenge frees them: one per COLLECT_EVERY bytes dropped keeps the dead
 * ones to a few MiB, and costs ~0.5 ms while replacing the mark-compacts.
 */
export const COLLECT_EVERY = 8 * 1024 * 1024;

let dropped = 0;
let collections = 0;

/** Notes that `bytes` of externally allocated chunks just became garbage; collects the young generation every COLLECT_EVERY. */
export function droppedChunkBytes(bytes: number): void {
  dropped += bytes;
  if (dropped < COLLECT_EVERY) return;
  dropped = 0;
  const collect: GcFunction | null = v8Gc();
  if (!collect) return;
  collect({ type: 'minor' });
  collections++;
}

/** Young-generation collections run by droppedChunkBytes so far (observability, tests). */
export function youngCollections(): number {
  return collections;
}
