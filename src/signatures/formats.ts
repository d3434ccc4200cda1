/**
 * The signature formats Berth recognises (../shared/reference/harbor-class-specs.md §1, §2):
 * media types, artifact types and the names clients give signature manifests.
 */

export const COSIGN_SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** The layer annotation holding a cosign signature (base64, ASN.1 DER for ECDSA). */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const COSIGN_CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
/** cosign's OCI 1.1 referrers mode (`--registry-referrers-mode=oci-1-1`). */
export const COSIGN_SIG_ARTIFACT = 'application/vnd.dev.cosign.artifact.sig.v1+json';
export const COSIGN_ATT_ARTIFACT = 'application/vnd.dev.cosign.artifact.att.v1+json';
export const COSIGN_SBOM_ARTIFACT = 'application/vnd.dev.cosign.artifact.sbom.v1+json';
/** cosign v3's default: a Sigstore bundle referrer. */
export const SIGSTORE_BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const SIGSTORE_BUNDLE_PREFIX = 'application/vnd.dev.sigstore.bundle';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
export const IN_TOTO_PAYLOAD = 'application/vnd.in-toto+json';
export const DSSE_ENVELOPE = 'application/vnd.dsse.envelope.v1+json';
/** Notation (Notary Project). */
export const NOTARY_SIGNATURE = 'application/vnd.cncf.notary.signature';
export const NOTARY_PAYLOAD = 'application/vnd.cncf.notary.payload.v1+json';
export const JOSE = 'application/jose+json';
export const COSE = 'application/cose';

export type SignatureFormat = 'cosign' | 'sigstore-bundle' | 'notation';

/** The format of a referrer by its artifact type (null: not a signature). */
export function referrerFormat(artifactType: string | null): SignatureFormat | null {
  if (artifactType === COSIGN_SIG_ARTIFACT) return 'cosign';
  if (artifactType === NOTARY_SIGNATURE) return 'notation';
  if (artifactType?.startsWith(SIGSTORE_BUNDLE_PREFIX)) return 'sigstore-bundle';
  return null;
}

/** cosign's legacy tag for a digest: `sha256:<hex>` → `sha256-<hex>.sig`. */
export function cosignTag(digest: string, suffix = 'sig'): string {
  return `${digest.replace(':', '-')}.${suffix}`;
}

const COSIGN_TAG = /^sha(?:256|512)-[0-9a-f]{64,128}\.sig$/;

export function isCosignSignatureTag(tag: string): boolean {
  return COSIGN_TAG.test(tag);
}

const SIGNATURE_ARTIFACTS = new Set([COSIGN_SIG_ARTIFACT, COSIGN_ATT_ARTIFACT, COSIGN_SBOM_ARTIFACT, NOTARY_SIGNATURE]);
const SIGNATURE_LAYERS = new Set([COSIGN_SIMPLESIGNING, DSSE_ENVELOPE, JOSE, COSE]);

/** A push of this manifest adds a signature some artifact of the repository may be verified by. */
export function isSignaturePush(artifactType: string | null, subject: string | null, tags: readonly string[]): boolean {
  if (subject !== null && referrerFormat(artifactType) !== null) return true;
  return tags.some(isCosignSignatureTag);
}

interface ManifestShape {
  artifactType?: unknown;
  config?: { mediaType?: unknown };
  layers?: { mediaType?: unknown }[];
  manifests?: unknown;
  subject?: unknown;
}

/**
 * Whether a stored manifest is a signature, attestation or other supply-chain artifact rather
 * than something a runtime runs: a signature's own manifest (cosign legacy, referrers,
 * bundle, Notation), or a referrer (it has a subject) without a filesystem layer (an SBOM).
 * These stay pullable under an enforcing policy so clients can verify signatures themselves;
 * an index, or any manifest with a tar layer, never is one.
 */
export function isSupplyChainArtifact(payload: Buffer): boolean {
  let m: ManifestShape;
  try {
    m = JSON.parse(payload.toString('utf8')) as ManifestShape;
  } catch {
    return false;
  }
  if (m === null || typeof m !== 'object' || m.manifests !== undefined || !Array.isArray(m.layers)) return false;
  const layers = m.layers.map((l) => (typeof l?.mediaType === 'string' ? l.mediaType : ''));
  if (layers.some((t) => /tar/.test(t))) return false;
  const artifactType =
    typeof m.artifactType === 'string' ? m.artifactType : typeof m.config?.mediaType === 'string' ? m.config.mediaType : null;
  if (artifactType !== null && (SIGNATURE_ARTIFACTS.has(artifactType) || artifactType.startsWith(SIGSTORE_BUNDLE_PREFIX))) return true;
  if (layers.length > 0 && layers.every((t) => SIGNATURE_LAYERS.has(t) || t.startsWith(SIGSTORE_BUNDLE_PREFIX))) return true;
  return m.subject !== undefined && m.subject !== null;
}
