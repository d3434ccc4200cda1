import { RegistryError } from '../core/errors.js';
import type { ReferrerRecord } from '../core/ports.js';
import {
  COSE,
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIMPLESIGNING,
  cosignTag,
  JOSE,
  referrerFormat,
  SIGSTORE_BUNDLE_PREFIX,
  type SignatureFormat,
} from './formats.js';
import type { TrustAnchors } from './trust.js';
import { verifyBundle, verifyCosignLayer, verifyNotation, type Outcome, type Subject } from './verify.js';

/**
 * What discovery reads, through core's read ports (composition root: the metadata store's
 * manifest reads and referrers, the Registry's blob reads).
 */
export interface ArtifactReader {
  /** A manifest by tag or digest (null: none). */
  manifest(repository: string, reference: string): Promise<{ digest: string; mediaType: string; size: number; payload: Buffer } | null>;
  referrers(repository: string, digest: string): Promise<ReferrerRecord[]>;
  /** A blob's bytes, at most `limit` (null: not in the repository, or larger). */
  blob(repository: string, digest: string, limit: number): Promise<Buffer | null>;
}

/** One signature found for an artifact, with its verdict. */
export interface SignatureReport {
  format: SignatureFormat;
  /** Where it was found: cosign's legacy tag, or the OCI referrers of the artifact. */
  source: { kind: 'tag'; tag: string } | { kind: 'referrer' };
  /** The signature manifest's digest. */
  manifest: string;
  /** The layer holding it (cosign: one per signature; bundle, Notation: the envelope). */
  layer: string | null;
  outcome: Outcome;
}

export interface ArtifactSignatures {
  subject: Subject;
  signatures: SignatureReport[];
  /** At least one signature is valid. */
  verified: boolean;
}

/** Signature payloads, bundles and envelopes are small; anything larger is not read. */
export const MAX_SIGNATURE_BLOB = 1024 * 1024;
/** Signature manifests looked at per artifact (a flood of referrers costs no more than this). */
const MAX_SIGNATURE_MANIFESTS = 32;

interface Descriptor {
  mediaType?: string;
  digest?: string;
  annotations?: Record<string, string>;
}

/**
 * Finds the signatures of `digest` in `repository` in every form clients write them — cosign's
 * `sha256-<hex>.sig` tag, cosign's OCI 1.1 referrers, cosign v3's Sigstore bundle referrers,
 * Notation's referrers — and verifies each against `anchors`.
 */
export async function verifyArtifact(
  reader: ArtifactReader,
  repository: string,
  digest: string,
  anchors: TrustAnchors,
  now = new Date(),
): Promise<ArtifactSignatures> {
  const artifact = await reader.manifest(repository, digest);
  if (!artifact) throw new RegistryError('NOT_FOUND', `manifest ${digest} is not in repository ${repository}`);
  const subject: Subject = { digest: artifact.digest, mediaType: artifact.mediaType, size: artifact.size };
  const found: { format: SignatureFormat; source: SignatureReport['source']; digest: string; payload: Buffer }[] = [];
  const tag = cosignTag(digest);
  const legacy = await reader.manifest(repository, tag);
  if (legacy) found.push({ format: 'cosign', source: { kind: 'tag', tag }, digest: legacy.digest, payload: legacy.payload });
  for (const referrer of (await reader.referrers(repository, digest)).slice(0, MAX_SIGNATURE_MANIFESTS)) {
    const format = referrerFormat(referrer.artifactType);
    if (!format) continue;
    const manifest = await reader.manifest(repository, referrer.digest);
    if (manifest) found.push({ format, source: { kind: 'referrer' }, digest: manifest.digest, payload: manifest.payload });
  }
  const signatures: SignatureReport[] = [];
  for (const manifest of found) {
    const base = { format: manifest.format, source: manifest.source, manifest: manifest.digest };
    let layers: Descriptor[];
    try {
      const parsed = JSON.parse(manifest.payload.toString('utf8')) as { layers?: Descriptor[] };
      layers = Array.isArray(parsed.layers) ? parsed.layers : [];
    } catch {
      layers = [];
    }
    if (layers.length === 0) {
      signatures.push({ ...base, layer: null, outcome: { valid: false, reason: 'the signature manifest has no layers' } });
      continue;
    }
    for (const layer of layers.slice(0, MAX_SIGNATURE_MANIFESTS)) {
      const report = await verifyLayer(reader, repository, subject, manifest.format, layer, anchors, now);
      if (report) signatures.push({ ...base, layer: layer.digest ?? null, outcome: report });
    }
  }
  return { subject, signatures, verified: signatures.some((s) => s.outcome.valid) };
}

async function verifyLayer(
  reader: ArtifactReader,
  repository: string,
  subject: Subject,
  format: SignatureFormat,
  layer: Descriptor,
  anchors: TrustAnchors,
  now: Date,
): Promise<Outcome | null> {
  const read = async () => (typeof layer.digest === 'string' ? reader.blob(repository, layer.digest, MAX_SIGNATURE_BLOB) : null);
  const unreadable: Outcome = {
    valid: false,
    reason: `the layer ${layer.digest ?? '(no digest)'} is missing from the repository or larger than ${MAX_SIGNATURE_BLOB} bytes`,
  };
  switch (format) {
    case 'cosign': {
      const signature = layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
      if (layer.mediaType !== COSIGN_SIMPLESIGNING && signature === undefined) return null;
      if (signature === undefined) return { valid: false, reason: `the layer has no ${COSIGN_SIGNATURE_ANNOTATION} annotation` };
      const payload = await read();
      return payload ? verifyCosignLayer(subject, layer.annotations ?? {}, payload, signature, anchors, now) : unreadable;
    }
    case 'sigstore-bundle': {
      if (!layer.mediaType?.startsWith(SIGSTORE_BUNDLE_PREFIX)) return null;
      const bundle = await read();
      return bundle ? verifyBundle(subject, bundle, anchors, now) : unreadable;
    }
    case 'notation': {
      if (layer.mediaType === COSE)
        return {
          valid: false,
          reason: 'COSE envelopes (notation sign --signature-format cose) are not verified by Berth: use the default JWS format',
        };
      if (layer.mediaType !== JOSE)
        return { valid: false, reason: `a Notation envelope of media type ${JSON.stringify(layer.mediaType)} (expected ${JOSE})` };
      const envelope = await read();
      return envelope ? verifyNotation(subject, envelope, anchors, now) : unreadable;
    }
  }
}
