/**
 * Remote registries Berth talks to (replication, pull-through cache projects): named endpoints
 * with their credentials and TLS options. The port is implemented once for SQLite, PostgreSQL
 * and MySQL in src/metadata/registry-endpoint-store.ts (migration 0019).
 *
 * Stable shape (other features — replication — build on it): add fields, never rename them.
 */

/** What kind of registry the endpoint is; `docker-hub` maps single-segment names to `library/<name>`. */
export const REGISTRY_KINDS = ['distribution', 'berth', 'harbor', 'docker-hub', 'other'] as const;
export type RegistryKind = (typeof REGISTRY_KINDS)[number];

/** A remote registry. `credential` is opened (plain text): never render or log it. */
export interface RegistryEndpoint {
  id: number;
  /** Unique, `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`. */
  name: string;
  /** Base URL, `https://registry.example` (no path, no user info). */
  url: string;
  /** User name for Basic auth or the token flow; null for anonymous access. */
  username: string | null;
  /** Password or token; sealed at rest with core's SecretSealer. */
  credential: string | null;
  /** Skip TLS certificate verification. */
  insecure: boolean;
  /** PEM CA certificates trusted for this endpoint (in addition to the system's). */
  caBundle: string | null;
  kind: RegistryKind;
  description: string;
  createdAt: number;
  updatedAt: number;
}

export type RegistryEndpointInput = Omit<RegistryEndpoint, 'id' | 'createdAt' | 'updatedAt'>;

/** The endpoints table (src/metadata/registry-endpoint-store.ts). */
export interface RegistryEndpointStore {
  list(): Promise<RegistryEndpoint[]>;
  byName(name: string): Promise<RegistryEndpoint | null>;
  byId(id: number): Promise<RegistryEndpoint | null>;
  /** Throws RegistryError CONFLICT when the name is taken. */
  create(input: RegistryEndpointInput, now: number): Promise<RegistryEndpoint>;
  /** Null when there is no such endpoint. */
  update(name: string, input: RegistryEndpointInput, now: number): Promise<RegistryEndpoint | null>;
  delete(name: string): Promise<boolean>;
  /** Seals credentials stored before the secrets key was configured (compare-and-set); returns how many. */
  sealStoredSecrets(): Promise<number>;
}
