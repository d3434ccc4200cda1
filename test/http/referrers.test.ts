import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { OCI_INDEX, OCI_MANIFEST, jsonBlob, makeBlob, makeImage, type Blob } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { expectError } from './support.js';

const SBOM = 'application/vnd.example.sbom.v1+json';
const SIG_CONFIG = 'application/vnd.example.signature.config.v1+json';
const EMPTY = 'application/vnd.oci.empty.v1+json';

interface ReferrersIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }[];
}

describe('referrers: GET /v2/<name>/referrers/<digest>', () => {
  const repo = 'ref/app';
  const subject = makeImage();
  const subjectDescriptor = { mediaType: OCI_MANIFEST, digest: subject.manifest.digest, size: subject.manifest.size };
  let emptyConfig: Blob;
  let sbom: Blob;
  let signature: Blob;
  let index: Blob;

  /** An artifact manifest whose subject is the test image; pushed by digest, as oras and cosign do. */
  async function pushArtifact(body: Record<string, unknown>, mediaType = OCI_MANIFEST): Promise<Blob> {
    const manifest = jsonBlob({ schemaVersion: 2, mediaType, subject: subjectDescriptor, ...body });
    const res = await reg.client.pushManifest(repo, manifest.digest, manifest, mediaType);
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('oci-subject'), subject.manifest.digest);
    return manifest;
  }

  async function referrers(query = '', digest = subject.manifest.digest, name = repo): Promise<{ res: Response; body: ReferrersIndex }> {
    const res = await reg.client.fetch(`/v2/${name}/referrers/${digest}${query}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), OCI_INDEX);
    return { res, body: (await res.json()) as ReferrersIndex };
  }

  const reg = useServer();
  before(async () => {
    emptyConfig = jsonBlob({});
    assert.equal((await reg.client.pushBlob(repo, emptyConfig)).status, 201);
    // Referrers pushed before their subject exists must still be listed once it does.
    sbom = await pushArtifact({
      artifactType: SBOM,
      config: { mediaType: EMPTY, digest: emptyConfig.digest, size: emptyConfig.size },
      layers: [{ mediaType: EMPTY, digest: emptyConfig.digest, size: emptyConfig.size }],
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    });
    await reg.client.pushImage(repo, 'v1', subject);
    const sigConfig = jsonBlob({ signed: true });
    assert.equal((await reg.client.pushBlob(repo, sigConfig)).status, 201);
    signature = await pushArtifact({ config: { mediaType: SIG_CONFIG, digest: sigConfig.digest, size: sigConfig.size }, layers: [] });
    index = await pushArtifact({ artifactType: SBOM, manifests: [], annotations: { kind: 'index' } }, OCI_INDEX);
  });

  it('answers 200 with an OCI image index listing every referrer as a descriptor', async () => {
    const { res, body } = await referrers();
    assert.equal(res.headers.get('oci-filters-applied'), null);
    assert.equal(body.schemaVersion, 2);
    assert.equal(body.mediaType, OCI_INDEX);
    const byDigest = new Map(body.manifests.map((m) => [m.digest, m]));
    assert.equal(byDigest.size, 3);
    assert.deepEqual(byDigest.get(sbom.digest), {
      mediaType: OCI_MANIFEST,
      digest: sbom.digest,
      size: sbom.size,
      artifactType: SBOM,
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    });
    assert.deepEqual(byDigest.get(index.digest), {
      mediaType: OCI_INDEX,
      digest: index.digest,
      size: index.size,
      artifactType: SBOM,
      annotations: { kind: 'index' },
    });
  });

  it('an image manifest without artifactType is reported with its config mediaType as artifactType', async () => {
    const { body } = await referrers();
    const entry = body.manifests.find((m) => m.digest === signature.digest);
    assert.ok(entry);
    assert.equal(entry.artifactType, SIG_CONFIG);
    assert.equal(entry.annotations, undefined);
  });

  it('?artifactType= keeps only matching referrers and sets OCI-Filters-Applied: artifactType', async () => {
    const { res, body } = await referrers(`?artifactType=${encodeURIComponent(SBOM)}`);
    assert.equal(res.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(body.manifests.map((m) => m.digest).sort(), [sbom.digest, index.digest].sort());
    const sig = await referrers(`?artifactType=${encodeURIComponent(SIG_CONFIG)}`);
    assert.deepEqual(
      sig.body.manifests.map((m) => m.digest),
      [signature.digest],
    );
  });

  it('a filter that matches nothing answers an empty index, still with OCI-Filters-Applied', async () => {
    const { res, body } = await referrers('?artifactType=application/vnd.none');
    assert.equal(res.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(body.manifests, []);
  });

  it('an unknown digest answers 200 with an empty index (not 404)', async () => {
    const { body } = await referrers('', makeBlob(20).digest);
    assert.deepEqual(body, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  });

  it('an unknown repository answers 200 with an empty index', async () => {
    const { body } = await referrers('', subject.manifest.digest, 'ref/unknown');
    assert.deepEqual(body.manifests, []);
  });

  it('referrers in another repository are not listed', async () => {
    const other = 'ref/other';
    await reg.client.pushImage(other, 'v1', subject);
    const { body } = await referrers('', subject.manifest.digest, other);
    assert.deepEqual(body.manifests, []);
  });

  it('a malformed digest answers 400 DIGEST_INVALID', async () => {
    await expectError(await reg.client.fetch(`/v2/${repo}/referrers/sha256:nothex`), 400, 'DIGEST_INVALID');
    await expectError(await reg.client.fetch(`/v2/${repo}/referrers/v1`), 400, 'DIGEST_INVALID');
  });

  it('a deleted referrer disappears from the list', async () => {
    const extra = await pushArtifact({
      artifactType: 'application/vnd.example.temp',
      config: { mediaType: EMPTY, digest: emptyConfig.digest, size: emptyConfig.size },
      layers: [],
    });
    assert.ok((await referrers()).body.manifests.some((m) => m.digest === extra.digest));
    assert.equal((await reg.client.fetch(`/v2/${repo}/manifests/${extra.digest}`, { method: 'DELETE' })).status, 202);
    assert.ok(!(await referrers()).body.manifests.some((m) => m.digest === extra.digest));
  });
});
