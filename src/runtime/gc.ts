import v8 from 'node:v8';
import vm from 'node:vm';

/** V8's `gc` function (what --expose-gc puts on the global object), with its options. */
export type GcFunction = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let cached: GcFunction | null | undefined;

/**
 * V8's `gc` function without starting node with --expose-gc (users start Berth with `npm start`,
 * `berth serve` or a container's entrypoint, and the cluster forks workers: a code path reaches
 * them all, a flag would not). The flag, set at run time, applies to contexts created after it,
 * so a new context hands the function out without putting `gc` on the process's global object.
 * null if it cannot be had (callers then leave collection to V8).
 */
export function v8Gc(): GcFunction | null {
  if (cached !== undefined) return cached;
  const global = (globalThis as { gc?: GcFunction }).gc;
  if (typeof global === 'function') return (cached = global);
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    v8.setFlagsFromString('--no-expose-gc');
    cached = typeof gc === 'function' ? (gc as GcFunction) : null;
  } catch {
    cached = null;
  }
  return cached;
}
