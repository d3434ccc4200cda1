import type { ManifestRecord } from './ports.js';
import type { BlobHandle } from './registry.js';

/**
 * Read-through content: repositories whose manifests and missing blobs come from an upstream
 * registry (pull-through cache projects, or the whole registry as a Distribution-style mirror).
 * One implementation is attached to the Registry by the composition root
 * (`Registry.attachReadThrough`); without one, reads are unchanged. docs/architecture.md › Seams.
 *
 * - `getManifest` of a covered repository asks `manifest` (by tag or digest) instead of the
 *   manifest tables; acceptability, the `manifest.serve` hook and pull counting still apply.
 * - `findBlob` of a covered repository asks `blob` only when the blob is not linked locally: a
 *   cached blob is linked (`Registry.linkCachedBlob`) and served like any other.
 */
export interface ReadThrough {
  /** True when `repository` reads through an upstream. Synchronous: it is asked on every read. */
  covers(repository: string): boolean;
  /**
   * The manifest `reference` (a validated tag or digest) of a covered repository, from the
   * cache or the upstream; null when neither has it. Throws a RegistryError naming the
   * upstream problem when it is needed and cannot be reached.
   */
  manifest(repository: string, reference: string, accept: string | undefined): Promise<ManifestRecord | null>;
  /**
   * Why a delete in a covered repository is refused (its content is the upstream's). Core throws
   * it before looking anything up: the manifests of a covered repository are not in its tables.
   * Pushes are refused by a policy on the write hooks instead.
   */
  refusal(repository: string): Error;
  /** A blob not linked locally: streamed from the upstream while it is stored; null when the upstream does not have it. */
  blob(repository: string, digest: string): Promise<BlobHandle | null>;
}
