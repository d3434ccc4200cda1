/**
 * The metadata port of signature trust policies (src/metadata/signature-store.ts implements it
 * once for SQLite, PostgreSQL and MySQL). The feature decides; the adapter moves rows.
 */

import type { MetadataTx } from '../core/ports.js';

/** off: nothing is checked; audit: pulls allowed, violations recorded; enforce: unsigned pulls refused. */
export type TrustMode = 'off' | 'audit' | 'enforce';
export const TRUST_MODES: readonly TrustMode[] = ['off', 'audit', 'enforce'];

/** A public key (cosign keys, sigstore bundles with a public key) or an X.509 certificate (a trust anchor: Notation, cosign certificates). */
export type TrustKind = 'key' | 'certificate';

export interface TrustPolicySettings {
  mode: TrustMode;
  /** A child manifest of a verified index is verified too (`podman pull` of a signed multi-arch image). */
  inheritIndex: boolean;
}

export interface TrustPolicy extends TrustPolicySettings {
  project: string;
  updatedAt: Date;
  updatedBy: string | null;
}

export interface TrustedKeyInput {
  name: string;
  kind: TrustKind;
  /** PEM: `PUBLIC KEY` (PKIX) or `CERTIFICATE`. */
  pem: string;
  /** Lowercase hex SHA-256 of the DER (SubjectPublicKeyInfo or certificate). */
  fingerprint: string;
}

export interface TrustedKey extends TrustedKeyInput {
  id: number;
  project: string;
  createdAt: Date;
  createdBy: string | null;
}

/**
 * The counters replicas compare their caches with: `version` moves with every policy or key
 * change, `signatures` with every signature pushed or content removed in the project.
 */
export interface TrustState {
  version: number;
  signatures: number;
}

/** A project's policy with its keys and the counters they were read at. */
export interface TrustSnapshot extends TrustState {
  /** null: the project has no policy (mode off). */
  policy: TrustPolicy | null;
  keys: TrustedKey[];
}

/** Rows written inside a metadata transaction (a policy change, or core's push or delete). */
export interface SignatureTxQueries {
  /** Creates or updates the project's policy; bumps `version`. */
  setPolicy(project: string, settings: TrustPolicySettings, actor: string | null, at: Date): Promise<TrustPolicy>;
  /** Adds a key (creating the policy row, mode off, if absent); bumps `version`. Throws on a duplicate name. */
  addKey(project: string, key: TrustedKeyInput, actor: string | null, at: Date): Promise<TrustedKey>;
  /** false when the project has no key `id`; bumps `version` otherwise. */
  deleteKey(project: string, id: number): Promise<boolean>;
  /** Bumps `signatures` when the project has a policy row (a signature arrived, or content left the project). */
  signaturesChanged(project: string): Promise<void>;
}

export interface SignatureStore {
  within(tx: MetadataTx): SignatureTxQueries;
  /** The counters alone (null: no policy row): one primary-key read. */
  state(project: string): Promise<TrustState | null>;
  snapshot(project: string): Promise<TrustSnapshot>;
  /**
   * Image indexes of `repository` that list `digest` as a child manifest (at most `limit`):
   * the indexes whose verified status a child may inherit.
   */
  parents(repository: string, digest: string, limit: number): Promise<string[]>;
}
