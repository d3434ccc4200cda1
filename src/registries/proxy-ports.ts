/**
 * The pull-through cache's tables (src/metadata/proxy-cache-store.ts, migration 0020):
 * which projects are caches of which endpoint, and the manifests and tags fetched for them.
 * Cached blobs are core's (linked with Registry.linkCachedBlob), not here.
 */

/** A project bound to an upstream endpoint. */
export interface ProxyProject {
  project: string;
  endpointId: number;
  /** Prefix put before the repository name upstream (`myorg` → `hub/app` pulls `myorg/app`); null: none. */
  namespace: string | null;
  /** A cached tag is revalidated upstream (HEAD) only when it was last checked longer ago than this. */
  tagTtlMs: number;
  createdAt: number;
  updatedAt: number;
}

export interface CachedManifest {
  repository: string;
  digest: string;
  mediaType: string;
  payload: Buffer;
  fetchedAt: number;
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
  manifest(repository: string, digest: string): Promise<CachedManifest | null>;
  tag(repository: string, tag: string): Promise<CachedTag | null>;
  /** Stores a fetched manifest (kept when already there). */
  putManifest(manifest: CachedManifest): Promise<void>;
  /** Points a tag at a digest, validated at `now`. */
  putTag(repository: string, tag: string, digest: string, now: number): Promise<void>;
}
