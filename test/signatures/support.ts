import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FlattenedSign } from 'jose';
import { api, type HasUrl } from '../auth/support.js';
import { runTool } from '../helpers/clients.js';
import { jsonBlob, OCI_MANIFEST, sha256, type Blob, type RegistryClient } from '../helpers/registry-client.js';

/**
 * Signatures made exactly as cosign and notation make them (../shared/reference/
 * harbor-class-specs.md §1, §2): keys from node:crypto, certificates from openssl, payloads
 * and manifest layouts byte for byte as the clients write them, pushed over HTTP.
 */

export const SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const COSIGN_SIG_ARTIFACT = 'application/vnd.dev.cosign.artifact.sig.v1+json';
export const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const NOTARY = 'application/vnd.cncf.notary.signature';
const EMPTY = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
};
const EMPTY_BLOB: Blob = { digest: EMPTY.digest, size: 2, data: Buffer.from('{}') };

export interface Target {
  repository: string;
  digest: string;
  mediaType: string;
  size: number;
}

/** `cosign generate-key-pair`'s key type: ECDSA P-256. */
export function cosignKeys(): { privateKey: KeyObject; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
}

/** The simple-signing payload cosign signs (Go's field order; `optional` null without -a). */
export function simpleSigningPayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
}

/** ECDSA P-256 / SHA-256, ASN.1 DER, base64: the `dev.cosignproject.cosign/signature` annotation. */
export function cosignSign(privateKey: KeyObject, payload: Buffer): string {
  return sign('sha256', payload, { key: privateKey, dsaEncoding: 'der' }).toString('base64');
}

export interface CosignLayer {
  payload: Buffer;
  signature: string;
  annotations?: Record<string, string>;
}

/** The config go-containerregistry writes for cosign's signature image (one diff id per layer). */
function signatureConfig(layers: Blob[], mediaType = 'application/vnd.oci.image.config.v1+json'): { blob: Blob; mediaType: string } {
  const blob = jsonBlob({
    architecture: '',
    created: '0001-01-01T00:00:00Z',
    history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
    os: '',
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    config: {},
  });
  return { blob, mediaType };
}

async function pushBlobs(client: RegistryClient, repository: string, blobs: Blob[]): Promise<void> {
  for (const blob of blobs) {
    const res = await client.pushBlob(repository, blob);
    assert.equal(res.status, 201, `blob push: ${res.status} ${await res.text()}`);
  }
}

async function pushManifest(client: RegistryClient, repository: string, reference: string, manifest: Blob): Promise<void> {
  const res = await client.pushManifest(repository, reference, manifest, OCI_MANIFEST);
  assert.equal(res.status, 201, `manifest push: ${res.status} ${await res.text()}`);
}

function cosignManifest(layers: CosignLayer[], referrer: Target | null): { manifest: Blob; blobs: Blob[] } {
  const payloads = layers.map((l) => ({ blob: { digest: sha256(l.payload), size: l.payload.length, data: l.payload } as Blob, layer: l }));
  const config = signatureConfig(
    payloads.map((p) => p.blob),
    referrer ? COSIGN_SIG_ARTIFACT : undefined,
  );
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(referrer ? { artifactType: COSIGN_SIG_ARTIFACT } : {}),
    config: { mediaType: config.mediaType, size: config.blob.size, digest: config.blob.digest },
    layers: payloads.map(({ blob, layer }) => ({
      mediaType: SIMPLESIGNING,
      size: blob.size,
      digest: blob.digest,
      annotations: { 'dev.cosignproject.cosign/signature': layer.signature, ...layer.annotations },
    })),
    ...(referrer ? { subject: { mediaType: referrer.mediaType, size: referrer.size, digest: referrer.digest } } : {}),
  });
  return { manifest, blobs: [config.blob, ...payloads.map((p) => p.blob)] };
}

/** cosign ≤ v2's default: a manifest of simple-signing layers under the tag `sha256-<hex>.sig`. */
export async function pushCosignTag(client: RegistryClient, target: Target, layers: CosignLayer[]): Promise<string> {
  const { manifest, blobs } = cosignManifest(layers, null);
  await pushBlobs(client, target.repository, blobs);
  await pushManifest(client, target.repository, `${target.digest.replace(':', '-')}.sig`, manifest);
  return manifest.digest;
}

/** cosign's `--registry-referrers-mode=oci-1-1`: the same layers, artifactType and config.mediaType set, a subject, pushed by digest. */
export async function pushCosignReferrer(client: RegistryClient, target: Target, layers: CosignLayer[]): Promise<string> {
  const { manifest, blobs } = cosignManifest(layers, target);
  await pushBlobs(client, target.repository, blobs);
  await pushManifest(client, target.repository, manifest.digest, manifest);
  return manifest.digest;
}

/** DSSE's PAE. */
export function pae(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body]);
}

/** cosign v3 `cosign sign --key`: an in-toto statement in a DSSE envelope in a Sigstore bundle, stored as a referrer. */
export async function pushBundle(
  client: RegistryClient,
  target: Target,
  privateKey: KeyObject,
  options: { predicateType?: string; subjectDigest?: string; tamper?: boolean } = {},
): Promise<string> {
  const [algorithm, hex] = (options.subjectDigest ?? target.digest).split(':') as [string, string];
  const predicateType = options.predicateType ?? 'https://sigstore.dev/cosign/sign/v1';
  const statement = Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: target.repository, digest: { [algorithm]: hex } }],
      predicateType,
      predicate: {},
    }),
  );
  const payloadType = 'application/vnd.in-toto+json';
  const sig = sign('sha256', pae(payloadType, statement), { key: privateKey, dsaEncoding: 'der' }).toString('base64');
  const body = options.tamper ? Buffer.from(statement.toString().replace('"predicate":{}', '"predicate":{"x":1}')) : statement;
  const bundle = jsonBlob({
    mediaType: BUNDLE,
    verificationMaterial: {
      publicKey: {
        hint: createHash('sha256')
          .update(privateKey.export({ type: 'pkcs8', format: 'der' }))
          .digest('base64'),
      },
      tlogEntries: [],
    },
    dsseEnvelope: { payload: body.toString('base64'), payloadType, signatures: [{ sig }] },
  });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUNDLE,
    config: EMPTY,
    layers: [{ mediaType: BUNDLE, size: bundle.size, digest: bundle.digest }],
    subject: { mediaType: target.mediaType, size: target.size, digest: target.digest },
    annotations: {
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': predicateType,
      'org.opencontainers.image.created': new Date().toISOString(),
    },
  });
  await pushBlobs(client, target.repository, [EMPTY_BLOB, bundle]);
  await pushManifest(client, target.repository, manifest.digest, manifest);
  return manifest.digest;
}

// ── X.509 for Notation (openssl) ──────────────────────────────────────────────────────────

export interface Pki {
  rootPem: string;
  /** A code-signing leaf valid now, its key, its chain (leaf, root) as DER base64 for x5c. */
  leaf: { key: KeyObject; x5c: string[]; notBefore: Date };
  /** A code-signing leaf that expired a year ago. */
  expired: { key: KeyObject; x5c: string[]; notBefore: Date };
}

const CA_CONFIG = `[ ca ]
default_ca = test_ca
[ test_ca ]
dir = DIR
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = sha256
policy = anything
copy_extensions = none
unique_subject = no
[ anything ]
commonName = supplied
organizationName = optional
[ root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
`;

/** A root CA and two code-signing leaves (valid, expired) as `notation cert generate-test` and a real CA would issue them. */
export async function makePki(dir: string, name: string): Promise<Pki> {
  mkdirSync(path.join(dir, 'issued'), { recursive: true });
  writeFileSync(path.join(dir, 'index.txt'), '');
  writeFileSync(path.join(dir, 'serial'), '1000\n');
  writeFileSync(path.join(dir, 'ca.cnf'), CA_CONFIG.replace('DIR', dir));
  const file = (f: string) => path.join(dir, f);
  const asn1 = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  const day = 86_400_000;
  // The root is self-signed by the CA itself, valid from three years ago (as a real root is).
  await runTool('openssl', [
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    file('root.key'),
    '-out',
    file('root.csr'),
    '-subj',
    `/CN=${name} Root/O=Berth Tests`,
  ]);
  await runTool('openssl', [
    'ca',
    '-batch',
    '-selfsign',
    '-config',
    file('ca.cnf'),
    '-keyfile',
    file('root.key'),
    '-extensions',
    'root',
    '-startdate',
    asn1(new Date(Date.now() - 1095 * day)),
    '-enddate',
    asn1(new Date(Date.now() + 3650 * day)),
    '-in',
    file('root.csr'),
    '-out',
    file('root.crt'),
  ]);
  const issue = async (leaf: string, start: string, end: string) => {
    await runTool('openssl', [
      'req',
      '-new',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      file(`${leaf}.key`),
      '-out',
      file(`${leaf}.csr`),
      '-subj',
      `/CN=${name} ${leaf}/O=Berth Tests`,
    ]);
    await runTool('openssl', [
      'ca',
      '-batch',
      '-config',
      file('ca.cnf'),
      '-cert',
      file('root.crt'),
      '-keyfile',
      file('root.key'),
      '-extensions',
      'leaf',
      '-startdate',
      start,
      '-enddate',
      end,
      '-in',
      file(`${leaf}.csr`),
      '-out',
      file(`${leaf}.crt`),
    ]);
    const cert = new X509Certificate(readFileSync(file(`${leaf}.crt`)));
    const root = new X509Certificate(
      readFileSync(file('root.crt'))
        .toString()
        .replace(/^[\s\S]*?(?=-----BEGIN)/, ''),
    );
    return {
      key: createPrivateKey(readFileSync(file(`${leaf}.key`))),
      x5c: [cert.raw.toString('base64'), root.raw.toString('base64')],
      notBefore: new Date(cert.validFrom),
    };
  };
  const leaf = await issue('signer', asn1(new Date(Date.now() - day)), asn1(new Date(Date.now() + 365 * day)));
  const expired = await issue('expired', asn1(new Date(Date.now() - 730 * day)), asn1(new Date(Date.now() - 365 * day)));
  return { rootPem: readFileSync(file('root.crt'), 'utf8').replace(/^[\s\S]*?(?=-----BEGIN)/, ''), leaf, expired };
}

/** `notation sign` (JWS, notary.x509): the envelope referrer with one application/jose+json layer. */
export async function pushNotation(
  client: RegistryClient,
  target: Target,
  signer: { key: KeyObject; x5c: string[]; notBefore: Date },
  options: { signingTime?: Date; digest?: string } = {},
): Promise<string> {
  const signingTime = options.signingTime ?? new Date(Math.min(Date.now(), signer.notBefore.getTime() + 3_600_000));
  const payload = Buffer.from(
    JSON.stringify({ targetArtifact: { digest: options.digest ?? target.digest, mediaType: target.mediaType, size: target.size } }),
  );
  const jws = await new FlattenedSign(payload)
    .setProtectedHeader({
      alg: 'PS256',
      crit: ['io.cncf.notary.signingScheme'],
      cty: 'application/vnd.cncf.notary.payload.v1+json',
      'io.cncf.notary.signingScheme': 'notary.x509',
      'io.cncf.notary.signingTime': signingTime.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    })
    .setUnprotectedHeader({ x5c: signer.x5c, 'io.cncf.notary.signingAgent': 'notation-go/1.3.0' })
    .sign(signer.key, { crit: { 'io.cncf.notary.signingScheme': true } });
  const envelope = jsonBlob(jws);
  const thumbprints = signer.x5c.map((der) => createHash('sha256').update(Buffer.from(der, 'base64')).digest('hex'));
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: NOTARY,
    config: EMPTY,
    layers: [{ mediaType: 'application/jose+json', size: envelope.size, digest: envelope.digest }],
    subject: { mediaType: target.mediaType, size: target.size, digest: target.digest },
    annotations: {
      'io.cncf.notary.x509chain.thumbprint#S256': JSON.stringify(thumbprints),
      'org.opencontainers.image.created': signingTime.toISOString(),
    },
  });
  await pushBlobs(client, target.repository, [EMPTY_BLOB, envelope]);
  await pushManifest(client, target.repository, manifest.digest, manifest);
  return manifest.digest;
}

// ── The admin API ─────────────────────────────────────────────────────────────────────────

export async function setMode(
  server: HasUrl,
  authorization: string,
  project: string,
  mode: 'off' | 'audit' | 'enforce',
  inheritIndex = true,
): Promise<void> {
  const res = await api(server, 'PUT', `/projects/${project}/signature-policy`, authorization, { mode, inheritIndex });
  assert.equal(res.status, 200, await res.clone().text());
}

export async function trust(server: HasUrl, authorization: string, project: string, name: string, pem: string): Promise<number> {
  const res = await api(server, 'POST', `/projects/${project}/signature-policy/keys`, authorization, { name, pem });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { id: number }).id;
}

export interface SignatureStatus {
  verified: boolean;
  policy: { mode: string };
  signatures: {
    format: string;
    valid: boolean;
    reason?: string;
    signer?: { kind: string; id: number; name: string; fingerprint: string; subject?: string };
    source: { kind: string; tag?: string };
    manifest: string;
  }[];
}

export async function status(server: HasUrl, authorization: string, target: Target): Promise<SignatureStatus> {
  const [project, ...rest] = target.repository.split('/');
  const res = await api(
    server,
    'GET',
    `/projects/${project}/repositories/${encodeURIComponent(rest.join('/'))}/artifacts/${target.digest}/signatures`,
    authorization,
  );
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as SignatureStatus;
}

/** The target of an image pushed with `client.pushImage`. */
export function targetOf(repository: string, manifest: Blob, mediaType = OCI_MANIFEST): Target {
  return { repository, digest: manifest.digest, mediaType, size: manifest.size };
}
