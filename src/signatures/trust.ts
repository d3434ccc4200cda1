import { createHash, createPublicKey, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { RegistryError } from '../core/errors.js';
import type { TrustedKey, TrustedKeyInput } from './ports.js';

/** A trusted public key, parsed once per policy version. */
export interface AnchorKey {
  id: number;
  name: string;
  fingerprint: string;
  key: KeyObject;
}

/** A trusted certificate (a root or intermediate that chains must end at). */
export interface AnchorCertificate {
  id: number;
  name: string;
  fingerprint: string;
  cert: X509Certificate;
}

export interface TrustAnchors {
  keys: AnchorKey[];
  certificates: AnchorCertificate[];
}

/** Who verified a signature, as the status API reports it. */
export type Signer =
  | { kind: 'key'; id: number; name: string; fingerprint: string }
  | { kind: 'certificate'; id: number; name: string; fingerprint: string; subject: string };

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/**
 * Checks a PEM given to the trust policy and says what it is: one `PUBLIC KEY` (PKIX, as
 * `cosign generate-key-pair` writes cosign.pub) or one `CERTIFICATE`. INVALID_ARGUMENT
 * otherwise (a private key is refused outright: it must never be stored).
 */
export function trustMaterial(name: string, pem: string): TrustedKeyInput {
  const blocks = [...pem.matchAll(PEM_BLOCK)];
  const invalid = (why: string) => new RegistryError('INVALID_ARGUMENT', `pem: ${why}`);
  if (blocks.length === 0) throw invalid('no PEM block found (expected -----BEGIN PUBLIC KEY----- or -----BEGIN CERTIFICATE-----)');
  if (blocks.some((b) => /PRIVATE KEY/.test(b[1]!)))
    throw invalid('this is a private key: give the public key (cosign.pub) or a certificate, never the private key');
  if (blocks.length > 1) throw invalid(`${blocks.length} PEM blocks found: add one key or certificate at a time`);
  const [block, label] = [blocks[0]![0], blocks[0]![1]!];
  if (label === 'PUBLIC KEY') {
    let key: KeyObject;
    try {
      key = createPublicKey(block);
    } catch (err) {
      throw invalid(`not a PKIX public key: ${(err as Error).message}`);
    }
    if (!['ec', 'rsa', 'ed25519'].includes(key.asymmetricKeyType ?? ''))
      throw invalid(`unsupported key type ${key.asymmetricKeyType}: use ECDSA (cosign's default), RSA or Ed25519`);
    return { name, kind: 'key', pem: block + '\n', fingerprint: keyFingerprint(key) };
  }
  if (label === 'CERTIFICATE') {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch (err) {
      throw invalid(`not an X.509 certificate: ${(err as Error).message}`);
    }
    return { name, kind: 'certificate', pem: block + '\n', fingerprint: certFingerprint(cert) };
  }
  throw invalid(`a ${label} block is not a public key or a certificate`);
}

export function keyFingerprint(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export function certFingerprint(cert: X509Certificate): string {
  return cert.fingerprint256.replaceAll(':', '').toLowerCase();
}

/** Parses a policy's stored keys (each was checked when added). */
export function compileAnchors(keys: TrustedKey[]): TrustAnchors {
  const anchors: TrustAnchors = { keys: [], certificates: [] };
  for (const k of keys) {
    if (k.kind === 'key') anchors.keys.push({ id: k.id, name: k.name, fingerprint: k.fingerprint, key: createPublicKey(k.pem) });
    else anchors.certificates.push({ id: k.id, name: k.name, fingerprint: k.fingerprint, cert: new X509Certificate(k.pem) });
  }
  return anchors;
}

/**
 * A signature over `data` made with `key` as sigstore makes them: ECDSA (ASN.1 DER) and RSA
 * PKCS#1 v1.5 over SHA-256, Ed25519 over the message itself.
 */
export function verifyRaw(key: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    if (key.asymmetricKeyType === 'ed25519') return verify(null, data, key, signature);
    if (key.asymmetricKeyType === 'ec') return verify('sha256', data, { key, dsaEncoding: 'der' }, signature);
    return verify('sha256', data, key, signature);
  } catch {
    return false;
  }
}

/** The first trusted key that verifies `signature` over `data`, or null. */
export function keyVerifying(anchors: TrustAnchors, data: Buffer, signature: Buffer): AnchorKey | null {
  return anchors.keys.find((k) => verifyRaw(k.key, data, signature)) ?? null;
}

/** The subject of a certificate on one line (`CN=signer, O=example`). */
export function subjectOf(cert: X509Certificate): string {
  return cert.subject.split('\n').join(', ');
}

/**
 * Validates a certificate chain (leaf first) against the trusted certificates: each
 * certificate issued and signed by the next, every issuer a CA, the chain ending at (or
 * issued by) a trusted certificate, and every certificate valid at each of `times` (the
 * signing time and now). Returns the anchor, or why not.
 */
export function validateChain(
  chain: X509Certificate[],
  anchors: TrustAnchors,
  times: Date[],
): { anchor: AnchorCertificate; validUntil: number } | { reason: string } {
  if (chain.length === 0) return { reason: 'no certificate chain' };
  for (let i = 0; i + 1 < chain.length; i++) {
    const [cert, issuer] = [chain[i]!, chain[i + 1]!];
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey))
      return { reason: `certificate "${subjectOf(cert)}" is not signed by the next certificate of the chain ("${subjectOf(issuer)}")` };
    if (!issuer.ca) return { reason: `certificate "${subjectOf(issuer)}" issues certificates but is not a CA` };
  }
  let anchor: AnchorCertificate | null = null;
  let anchoredAt = chain.length;
  for (let i = chain.length - 1; i >= 0 && !anchor; i--) {
    const fingerprint = certFingerprint(chain[i]!);
    anchor = anchors.certificates.find((a) => a.fingerprint === fingerprint) ?? null;
    if (anchor) anchoredAt = i;
  }
  if (!anchor) {
    const top = chain[chain.length - 1]!;
    anchor = anchors.certificates.find((a) => a.cert.ca && top.checkIssued(a.cert) && top.verify(a.cert.publicKey)) ?? null;
    if (!anchor)
      return {
        reason: `certificate chain of "${subjectOf(chain[0]!)}" does not lead to a trusted certificate of the project (issuer "${top.issuer.split('\n').join(', ')}")`,
      };
  }
  const checked = [...chain.slice(0, anchoredAt + 1), ...(anchoredAt === chain.length ? [anchor.cert] : [])];
  for (const cert of checked) {
    const from = new Date(cert.validFrom);
    const to = new Date(cert.validTo);
    for (const at of times) {
      if (at < from)
        return { reason: `certificate "${subjectOf(cert)}" is not valid before ${from.toISOString()} (checked at ${at.toISOString()})` };
      if (at > to) return { reason: `certificate "${subjectOf(cert)}" expired at ${to.toISOString()} (checked at ${at.toISOString()})` };
    }
  }
  return { anchor, validUntil: Math.min(...checked.map((c) => new Date(c.validTo).getTime())) };
}

/** Parses PEM certificates (a cosign certificate or chain annotation). */
export function parsePemCertificates(pem: string): X509Certificate[] {
  return [...pem.matchAll(PEM_BLOCK)].filter((b) => b[1] === 'CERTIFICATE').map((b) => new X509Certificate(b[0]));
}

export function certificateSigner(anchor: AnchorCertificate, leaf: X509Certificate): Signer {
  return { kind: 'certificate', id: anchor.id, name: anchor.name, fingerprint: anchor.fingerprint, subject: subjectOf(leaf) };
}

export function keySigner(key: AnchorKey): Signer {
  return { kind: 'key', id: key.id, name: key.name, fingerprint: key.fingerprint };
}
