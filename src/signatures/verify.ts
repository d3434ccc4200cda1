import type { X509Certificate } from 'node:crypto';
import { base64url, flattenedVerify, type FlattenedJWSInput } from 'jose';
import {
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_CHAIN_ANNOTATION,
  COSIGN_SIGN_PREDICATE,
  IN_TOTO_PAYLOAD,
  NOTARY_PAYLOAD,
} from './formats.js';
import {
  certificateSigner,
  keySigner,
  keyVerifying,
  parsePemCertificates,
  validateChain,
  verifyRaw,
  type Signer,
  type TrustAnchors,
} from './trust.js';

/** The artifact a signature must be about. */
export interface Subject {
  digest: string;
  mediaType: string;
  size: number;
}

/** One signature's verdict: who verified it, or why it does not count. */
export type Outcome =
  { valid: true; signer: Signer; signedAt?: string; validUntil?: number } | { valid: false; reason: string; signedAt?: string };

export const KEYLESS_UNSUPPORTED =
  "keyless signatures (a Fulcio certificate with a Rekor transparency-log entry) are not verified by Berth: that needs online or separately distributed Sigstore trust roots; sign with a key (cosign sign --key) or add the signing certificate chain's root to the trust policy";

const invalid = (reason: string): Outcome => ({ valid: false, reason });

// ── cosign simple signing (legacy tag and OCI 1.1 referrers mode) ────────────────────────

/**
 * A cosign signature layer: the signature (annotation, base64) over the payload bytes exactly
 * as stored, by a trusted key — or by a certificate (annotation) chaining to a trusted
 * certificate — and the payload's claims: `critical.type` is cosign's and
 * `critical.image.docker-manifest-digest` is the artifact's digest.
 */
export function verifyCosignLayer(
  subject: Subject,
  annotations: Record<string, string>,
  payload: Buffer,
  signatureB64: string,
  anchors: TrustAnchors,
  now: Date,
): Outcome {
  const signature = Buffer.from(signatureB64, 'base64');
  if (signature.length === 0) return invalid('the signature annotation is empty or not base64');
  let signer: Signer;
  let validUntil: number | undefined;
  const certificate = annotations[COSIGN_CERTIFICATE_ANNOTATION];
  if (certificate) {
    const byCertificate = certificateVerifies(certificate, annotations[COSIGN_CHAIN_ANNOTATION] ?? '', anchors, now, (leaf) =>
      verifyRaw(leaf.publicKey, payload, signature),
    );
    if (!byCertificate.valid) return byCertificate;
    ({ signer, validUntil } = byCertificate);
  } else {
    const key = keyVerifying(anchors, payload, signature);
    if (!key) return invalid(noKey(anchors));
    signer = keySigner(key);
  }
  const claims = simpleSigningClaims(payload);
  if ('reason' in claims) return invalid(claims.reason);
  if (claims.type !== 'cosign container image signature')
    return invalid(`payload critical.type is ${JSON.stringify(claims.type)}, not "cosign container image signature"`);
  if (claims.digest !== subject.digest)
    return invalid(`payload signs ${JSON.stringify(claims.digest)} (critical.image.docker-manifest-digest), not ${subject.digest}`);
  return validUntil === undefined ? { valid: true, signer } : { valid: true, signer, validUntil };
}

function noKey(anchors: TrustAnchors): string {
  return anchors.keys.length === 0
    ? 'the trust policy has no public key to verify it with'
    : `no trusted key verifies the signature over the payload (${anchors.keys.length} tried: ${anchors.keys.map((k) => k.name).join(', ')}); the payload was altered or another key signed it`;
}

/** A key of `object` whatever its case (Go's JSON decoding, which cosign uses, ignores case). */
function field(object: unknown, name: string): unknown {
  if (object === null || typeof object !== 'object') return undefined;
  const key = Object.keys(object).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : (object as Record<string, unknown>)[key];
}

function simpleSigningClaims(payload: Buffer): { type: unknown; digest: unknown } | { reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return { reason: 'the payload is not JSON (not a cosign simple-signing payload)' };
  }
  const critical = field(json, 'critical');
  if (critical === undefined) return { reason: 'the payload has no "critical" section (not a cosign simple-signing payload)' };
  return { type: field(critical, 'type'), digest: field(field(critical, 'image'), 'docker-manifest-digest') };
}

function certificateVerifies(
  leafPem: string,
  chainPem: string,
  anchors: TrustAnchors,
  now: Date,
  verifies: (leaf: X509Certificate) => boolean,
): Outcome {
  let chain: X509Certificate[];
  try {
    chain = [...parsePemCertificates(leafPem).slice(0, 1), ...parsePemCertificates(chainPem)];
  } catch (err) {
    return invalid(`the signing certificate cannot be parsed: ${(err as Error).message}`);
  }
  if (chain.length === 0) return invalid('the signing certificate cannot be parsed');
  const leaf = chain[0]!;
  if (!verifies(leaf)) return invalid('the signature does not verify with the public key of its certificate');
  const checked = validateChain(chain, anchors, [now]);
  if ('reason' in checked) return invalid(`${checked.reason}; ${KEYLESS_UNSUPPORTED}`);
  return { valid: true, signer: certificateSigner(checked.anchor, leaf), validUntil: checked.validUntil };
}

// ── Sigstore bundle (cosign v3) with a DSSE envelope ─────────────────────────────────────

/** DSSE's pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body. */
export function pae(payloadType: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${body.length} `), body]);
}

interface Bundle {
  mediaType?: unknown;
  verificationMaterial?: {
    publicKey?: unknown;
    certificate?: { rawBytes?: unknown };
    x509CertificateChain?: { certificates?: { rawBytes?: unknown }[] };
  };
  dsseEnvelope?: { payload?: unknown; payloadType?: unknown; signatures?: { sig?: unknown }[] };
  messageSignature?: unknown;
}

/**
 * A Sigstore bundle: its DSSE envelope's signature over PAE(payloadType, payload) by a trusted
 * key (or a certificate chaining to a trusted certificate), and the in-toto statement's
 * subject naming the artifact's digest with cosign's signing predicate.
 */
export function verifyBundle(subject: Subject, bundleBytes: Buffer, anchors: TrustAnchors, now: Date): Outcome {
  let bundle: Bundle;
  try {
    bundle = JSON.parse(bundleBytes.toString('utf8')) as Bundle;
  } catch {
    return invalid('the bundle is not JSON');
  }
  const envelope = bundle.dsseEnvelope;
  if (!envelope) {
    return invalid(
      bundle.messageSignature
        ? 'message-signature bundles (cosign sign-blob) are not verified for images: cosign signs images with a DSSE envelope'
        : 'the bundle has no dsseEnvelope',
    );
  }
  if (
    typeof envelope.payload !== 'string' ||
    typeof envelope.payloadType !== 'string' ||
    !Array.isArray(envelope.signatures) ||
    envelope.signatures.length === 0
  ) {
    return invalid('the DSSE envelope lacks payload, payloadType or signatures');
  }
  const body = Buffer.from(envelope.payload, 'base64');
  const signed = pae(envelope.payloadType, body);
  const signatures = envelope.signatures.map((s) => Buffer.from(typeof s?.sig === 'string' ? s.sig : '', 'base64'));
  const material = bundle.verificationMaterial ?? {};
  let signer: Signer | null = null;
  let validUntil: number | undefined;
  const certificates =
    material.x509CertificateChain?.certificates?.map((c) => c.rawBytes) ?? (material.certificate ? [material.certificate.rawBytes] : []);
  if (certificates.length > 0) {
    const pem = certificates.map((raw) => `-----BEGIN CERTIFICATE-----\n${String(raw)}\n-----END CERTIFICATE-----\n`);
    const outcome = certificateVerifies(pem[0]!, pem.slice(1).join(''), anchors, now, (leaf) =>
      signatures.some((sig) => verifyRaw(leaf.publicKey, signed, sig)),
    );
    if (!outcome.valid) return outcome;
    ({ signer, validUntil } = outcome);
  } else {
    for (const sig of signatures) {
      const key = keyVerifying(anchors, signed, sig);
      if (key) {
        signer = keySigner(key);
        break;
      }
    }
    if (!signer) return invalid(noKey(anchors).replace('over the payload', 'over the DSSE envelope'));
  }
  if (envelope.payloadType !== IN_TOTO_PAYLOAD)
    return invalid(`the envelope's payloadType is ${JSON.stringify(envelope.payloadType)}, not ${IN_TOTO_PAYLOAD}`);
  let statement: { predicateType?: unknown; subject?: { digest?: Record<string, unknown> }[] };
  try {
    statement = JSON.parse(body.toString('utf8')) as typeof statement;
  } catch {
    return invalid('the in-toto statement is not JSON');
  }
  const [algorithm, hex] = subject.digest.split(':') as [string, string];
  const named = Array.isArray(statement.subject) && statement.subject.some((s) => s?.digest?.[algorithm] === hex);
  if (!named) return invalid(`the in-toto statement's subject does not name ${subject.digest}`);
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE) {
    return invalid(`an attestation (predicateType ${JSON.stringify(statement.predicateType)}), not a signature (${COSIGN_SIGN_PREDICATE})`);
  }
  return validUntil === undefined ? { valid: true, signer } : { valid: true, signer, validUntil };
}

// ── Notation JWS envelope ────────────────────────────────────────────────────────────────

const NOTATION_ALGORITHMS = ['PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
/** The extension headers Notation may mark critical, each understood here (anything else in crit is refused). */
const NOTATION_CRITICAL: Record<string, boolean> = {
  'io.cncf.notary.signingScheme': true,
  'io.cncf.notary.signingTime': true,
  'io.cncf.notary.authenticSigningTime': true,
  'io.cncf.notary.expiry': true,
};

interface NotationHeader {
  alg?: unknown;
  cty?: unknown;
  crit?: unknown;
  'io.cncf.notary.signingScheme'?: unknown;
  'io.cncf.notary.signingTime'?: unknown;
  'io.cncf.notary.expiry'?: unknown;
}

/**
 * A Notation JWS envelope (flattened JSON serialisation): the protected header's claims
 * (algorithm, content type, signing scheme notary.x509, signing time, expiry, critical
 * headers), the x5c chain validated against the trusted certificates at the signing time and
 * now, the JWS signature with the leaf's key (jose), and the payload's targetArtifact.
 */
export async function verifyNotation(subject: Subject, envelopeBytes: Buffer, anchors: TrustAnchors, now: Date): Promise<Outcome> {
  let jws: FlattenedJWSInput & { header?: { x5c?: unknown } };
  let header: NotationHeader;
  try {
    jws = JSON.parse(envelopeBytes.toString('utf8')) as typeof jws;
    header = JSON.parse(Buffer.from(base64url.decode(String(jws.protected))).toString('utf8')) as NotationHeader;
  } catch {
    return invalid('the envelope is not a JWS in JSON serialisation with a protected header');
  }
  const signingTime = typeof header['io.cncf.notary.signingTime'] === 'string' ? header['io.cncf.notary.signingTime'] : undefined;
  const at = (outcome: Outcome): Outcome => (signingTime ? { ...outcome, signedAt: signingTime } : outcome);
  if (!NOTATION_ALGORITHMS.includes(String(header.alg)))
    return invalid(`algorithm ${JSON.stringify(header.alg)} is not allowed (PS256/384/512, ES256/384/512)`);
  if (header.cty !== NOTARY_PAYLOAD) return invalid(`protected header cty is ${JSON.stringify(header.cty)}, not ${NOTARY_PAYLOAD}`);
  const scheme = header['io.cncf.notary.signingScheme'];
  if (scheme === 'notary.x509.signingAuthority')
    return at(invalid('signing scheme notary.x509.signingAuthority needs RFC 3161 timestamp verification, which Berth does not do'));
  if (scheme !== 'notary.x509') return invalid(`signing scheme ${JSON.stringify(scheme)} is not notary.x509`);
  const critical = Array.isArray(header.crit) ? header.crit : [];
  if (!critical.includes('io.cncf.notary.signingScheme')) return invalid('io.cncf.notary.signingScheme is not marked critical');
  if (header['io.cncf.notary.expiry'] !== undefined && !critical.includes('io.cncf.notary.expiry'))
    return invalid('io.cncf.notary.expiry is not marked critical');
  const signed = signingTime ? new Date(signingTime) : null;
  let expiresAt = Number.POSITIVE_INFINITY;
  if (!signed || Number.isNaN(signed.getTime())) return invalid('io.cncf.notary.signingTime is missing or not a time');
  if (header['io.cncf.notary.expiry'] !== undefined) {
    const expiry = new Date(String(header['io.cncf.notary.expiry']));
    if (Number.isNaN(expiry.getTime())) return at(invalid('io.cncf.notary.expiry is not a time'));
    if (expiry < now) return at(invalid(`the signature expired at ${expiry.toISOString()} (io.cncf.notary.expiry)`));
    expiresAt = expiry.getTime();
  }
  const x5c = jws.header?.x5c;
  if (!Array.isArray(x5c) || x5c.length === 0) return at(invalid('the unprotected header has no x5c certificate chain'));
  let chain: X509Certificate[];
  try {
    chain = x5c.map((der) => parsePemCertificates(`-----BEGIN CERTIFICATE-----\n${String(der)}\n-----END CERTIFICATE-----`)[0]!);
    if (chain.some((c) => c === undefined)) throw new Error('empty');
  } catch {
    return at(invalid('x5c holds something that is not a DER certificate'));
  }
  const leaf = chain[0]!;
  if (leaf.keyUsage && leaf.keyUsage.length > 0 && !leaf.keyUsage.includes('1.3.6.1.5.5.7.3.3'))
    return at(invalid(`the signing certificate "${leaf.subject.split('\n').join(', ')}" is not for code signing (extended key usage)`));
  const checked = validateChain(chain, anchors, [signed, now]);
  if ('reason' in checked) return at(invalid(checked.reason));
  let payload: Uint8Array;
  try {
    ({ payload } = await flattenedVerify(jws, leaf.publicKey, { algorithms: NOTATION_ALGORITHMS, crit: NOTATION_CRITICAL }));
  } catch (err) {
    return at(invalid(`the JWS signature does not verify with the certificate's key: ${(err as Error).message}`));
  }
  let target: { digest?: unknown; mediaType?: unknown; size?: unknown } | undefined;
  try {
    target = (JSON.parse(Buffer.from(payload).toString('utf8')) as { targetArtifact?: typeof target }).targetArtifact;
  } catch {
    return at(invalid('the payload is not JSON'));
  }
  if (!target) return at(invalid('the payload has no targetArtifact'));
  if (target.digest !== subject.digest)
    return at(invalid(`the payload's targetArtifact is ${JSON.stringify(target.digest)}, not ${subject.digest}`));
  if (target.size !== subject.size || target.mediaType !== subject.mediaType)
    return at(
      invalid(
        `the payload's targetArtifact size or mediaType (${String(target.size)}, ${String(target.mediaType)}) differ from the artifact's`,
      ),
    );
  return at({ valid: true, signer: certificateSigner(checked.anchor, leaf), validUntil: Math.min(expiresAt, checked.validUntil) });
}
