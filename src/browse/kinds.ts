/**
 * What kind of artifact a manifest is, for the web UI's listings, from media types only (no
 * blob is read): its media type, its artifactType (for an image manifest without one, the
 * config media type, as core stores it), its annotations and its layers' media types.
 * Media types follow ../shared/reference/harbor-class-specs.md: cosign (tag scheme, OCI 1.1
 * referrers, Sigstore bundles), Notation, in-toto/DSSE attestations, SPDX and CycloneDX SBOMs,
 * Helm charts, CNCF ModelPack models and WebAssembly modules.
 */
export const ARTIFACT_KINDS = ['image', 'index', 'helm', 'sbom', 'signature', 'attestation', 'model', 'wasm', 'artifact'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

export interface KindInput {
  mediaType: string;
  artifactType: string | null;
  annotations?: Record<string, string> | null;
  layerMediaTypes?: readonly string[];
}

const INDEXES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);
const HELM = new Set(['application/vnd.cncf.helm.config.v1+json', 'application/vnd.cncf.helm.chart.content.v1.tar+gzip']);
const MODEL = new Set(['application/vnd.cncf.model.manifest.v1+json', 'application/vnd.cncf.model.config.v1+json']);
const SIGNATURES = new Set([
  'application/vnd.dev.cosign.artifact.sig.v1+json',
  'application/vnd.dev.cosign.simplesigning.v1+json',
  'application/vnd.cncf.notary.signature',
]);
const ATTESTATIONS = new Set([
  'application/vnd.dev.cosign.artifact.att.v1+json',
  'application/vnd.dsse.envelope.v1+json',
  'application/vnd.in-toto+json',
]);
const SBOMS = new Set([
  'application/spdx+json',
  'text/spdx',
  'text/spdx+json',
  'application/vnd.cyclonedx+json',
  'application/vnd.cyclonedx+xml',
  'application/vnd.cyclonedx',
  'application/vnd.dev.cosign.artifact.sbom.v1+json',
  'application/vnd.syft+json',
]);
const SIGSTORE_BUNDLE_PREFIX = 'application/vnd.dev.sigstore.bundle';
/** The predicate of a cosign v3 signature stored as a Sigstore bundle; any other predicate is an attestation. */
const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

function classify(type: string, annotations: Record<string, string> | null | undefined): ArtifactKind | null {
  if (SIGNATURES.has(type)) return 'signature';
  if (type.startsWith(SIGSTORE_BUNDLE_PREFIX)) {
    const predicate = annotations?.['dev.sigstore.bundle.predicateType'];
    const content = annotations?.['dev.sigstore.bundle.content'];
    return predicate === undefined
      ? content === 'dsse-envelope'
        ? 'attestation'
        : 'signature'
      : predicate === COSIGN_SIGN_PREDICATE
        ? 'signature'
        : 'attestation';
  }
  if (ATTESTATIONS.has(type) || type.startsWith('application/vnd.in-toto')) return 'attestation';
  if (SBOMS.has(type)) return 'sbom';
  if (HELM.has(type)) return 'helm';
  if (MODEL.has(type)) return 'model';
  if (
    type === 'application/vnd.wasm.config.v0+json' ||
    type.startsWith('application/vnd.module.wasm.') ||
    type.startsWith('application/vnd.wasm.')
  )
    return 'wasm';
  return null;
}

export function artifactKind(input: KindInput): ArtifactKind {
  const artifactType = input.artifactType ?? '';
  if (INDEXES.has(input.mediaType)) {
    // An index may carry an artifactType of its own (a multi-platform model, a signature bundle).
    return (artifactType && classify(artifactType, input.annotations)) || 'index';
  }
  const byType = artifactType ? classify(artifactType, input.annotations) : null;
  if (byType) return byType;
  // Artifacts pushed as images: cosign's tag scheme (simplesigning, DSSE and SBOM layers under an image config).
  for (const layer of input.layerMediaTypes ?? []) {
    const byLayer = classify(layer, input.annotations);
    if (byLayer === 'signature' || byLayer === 'attestation' || byLayer === 'sbom' || byLayer === 'wasm') return byLayer;
  }
  if (IMAGE_CONFIGS.has(artifactType) || input.mediaType === 'application/vnd.docker.distribution.manifest.v2+json') return 'image';
  if (!artifactType && input.mediaType === 'application/vnd.oci.image.manifest.v1+json') return 'image';
  return 'artifact';
}
