import type { ManifestRecord } from '../core/ports.js';

/**
 * The pull-through cache's tables (src/metadata/proxy-cache-store.ts, migrations 0020, 0022, 0023):
 * which projects are caches of which endpoint, and when the upstream last confirmed each cached
 * tag. Cached manifests, tags and blobs are core's (CoreContent), not here.
 */

/** A project bound to an upstream endpoint. */
export interface ProxyProject {
  project: string;
  endpointId: number;
  /** Prefix put before the repository name upstream (`myorg` → `hub/app` pulls `myorg/app`); null: none. */
  namespace: string | null;
  /** A cached tag is revalidated upstream (HEAD) only when it was last checked longer ago than this. */
  tagTtlMs: number;
  /** A tag deleted upstream stays pullable from the cache (true) or is deleted from it (false); null: `proxy.keepdeletedtags`. */
  keepDeletedTags: boolean | null;
  createdAt: number;
  updatedAt: number;
}

/**
 * Core's content as the cache reads and writes it (wired to Registry and core's metadata by the
 * composition root): what a cache fetched is stored through core's write path as a system write
 * (Registry.storeCachedManifest), so tags/list, the catalog, quotas, retention and GC see it.
 */
export interface CoreContent {
  /** The manifest stored in core under this digest, or null. */
  byDigest(repository: string, digest: string): Promise<ManifestRecord | null>;
  /** The manifest core's tag points to, or null. */
  byTag(repository: string, tag: string): Promise<ManifestRecord | null>;
  /** Stores a fetched manifest under `reference` (a tag or its digest); policies may refuse (a full quota). */
  store(repository: string, reference: string, payload: Buffer, mediaType: string): Promise<void>;
  /** Refuses (a full quota) before a blob of `size` bytes is downloaded into `repository`. */
  admitBlob(repository: string, digest: string, size: number): Promise<void>;
  /** Deletes a cached tag gone upstream, if it still points to `digest` (a system delete; the manifest stays). */
  deleteTag(repository: string, tag: string, digest: string): Promise<void>;
}

export interface CachedTag {
  digest: string;
  /** When the upstream last confirmed (or gave) this digest for the tag. */
  validatedAt: number;
}

export interface ProxyCacheStore {
  projects(): Promise<ProxyProject[]>;
  project(name: string): Promise<ProxyProject | null>;
  /** Creates or replaces the binding of a project. */
  setProject(binding: Omit<ProxyProject, 'createdAt' | 'updatedAt'>, now: number): Promise<ProxyProject>;
  deleteProject(name: string): Promise<boolean>;
  tag(repository: string, tag: string): Promise<CachedTag | null>;
  /** Points a tag at a digest, validated at `now`. */
  putTag(repository: string, tag: string, digest: string, now: number): Promise<void>;
}
