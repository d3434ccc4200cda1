import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Writes that bypass the page cache (O_DIRECT), for files written once and not read back soon.
 *
 * A buffered write copies every byte into freshly allocated page-cache pages. On the VMs Berth is
 * measured on, a fresh page costs the writer ~5 µs (the hypervisor hands back memory the guest
 * returned): writing 1 GiB cost 1.1–1.8 CPU-s of system time, against 0.06–0.14 CPU-s with
 * O_DIRECT (dd and node, 2026-12-04; docs/proxy-cache.md). An O_DIRECT write needs its memory
 * address, file offset and length aligned to the device's block size; DIRECT_ALIGN (a page)
 * covers every block size in use.
 */
export const DIRECT_ALIGN = 4096;

/** WebAssembly pages are 64 KiB. */
const WASM_PAGE = 64 * 1024;

/**
 * `count` buffers of `bytes` each (a multiple of DIRECT_ALIGN), starting on page boundaries.
 * Node's Buffers come from malloc (16-byte aligned); a WebAssembly memory's is allocated by V8's
 * page allocator, so it starts on a page, and so does every multiple of DIRECT_ALIGN within it.
 * Not shared memory: V8 copies into that with a relaxed-atomic memmove, 3× slower than Buffer.copy.
 * It is freed when the last buffer is collected.
 */
export function alignedBuffers(count: number, bytes: number): Buffer[] {
  if (bytes % DIRECT_ALIGN !== 0) throw new Error(`aligned buffers must be a multiple of ${DIRECT_ALIGN} bytes, not ${bytes}`);
  const pages = Math.ceil((count * bytes) / WASM_PAGE);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  return Array.from({ length: count }, (_, i) => Buffer.from(memory.buffer, i * bytes, bytes));
}

/** A write-only handle of an existing file with O_DIRECT, or null where the platform or the filesystem (tmpfs, some FUSE) has none. */
export async function openDirect(file: string): Promise<FileHandle | null> {
  const direct = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (direct === undefined) return null;
  try {
    return await open(file, constants.O_WRONLY | direct);
  } catch {
    return null;
  }
}

/** True for the error an O_DIRECT write gives when an address, offset or length is not aligned as the device wants. */
export function isAlignmentError(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'EINVAL';
}
