import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { api, useAuthServer } from '../auth/support.js';
import { jsonBlob, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, type Blob, type Image } from '../helpers/registry-client.js';
import { clientAs, refusal, seedTeam, USERS } from '../policies/tags-support.js';
import { layerOf } from './support.js';

function blobOf(data: Buffer): Blob {
  return { data, size: data.length, digest: `sha256:${execFileSync('sha256sum', { input: data }).toString().split(' ')[0]}` };
}

function imageOf(layers: Buffer[]): Image {
  const blobs = layers.map(blobOf);
  const config = jsonBlob({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers: blobs.map((b) => ({ mediaType: OCI_LAYER, digest: b.digest, size: b.size })),
  });
  return { config, layers: blobs, manifest, mediaType: OCI_MANIFEST };
}

interface Generated {
  reused: boolean;
  packages: number | null;
  sboms: { format: string; mediaType: string; manifest: string; blob: string; origin: string }[];
  children?: Generated[];
}

/**
 * SBOMs over real HTTP: an image whose layer is this machine's dpkg database pushed as a client
 * would, POST …/sbom generates SPDX and CycloneDX and attaches them as referrers (visible at
 * /v2/<name>/referrers/<digest>), GET serves them, a second POST reuses them; SBOMs pushed by
 * clients (a referrer, a BuildKit attestation in an index) are used instead of generating; who may.
 */
describe('SBOM API', () => {
  const reg = useAuthServer('basic', {}, {}, { setup: seedTeam });
  let debian: Image;
  const path = (digest: string, repo = 'app') => `/projects/team/repositories/${repo}/artifacts/${digest}/sbom`;

  before(async () => {
    debian = imageOf([
      await layerOf([
        { path: 'etc/os-release', data: readFileSync('/etc/os-release') },
        { path: 'var/lib/dpkg/status', data: readFileSync('/var/lib/dpkg/status') },
      ]),
    ]);
    await clientAs(reg.server, USERS.dev).pushImage('team/app', 'v1', debian);
  });

  it('POST generates SPDX 2.3 and CycloneDX 1.6 from the layers and attaches both as OCI 1.1 referrers; GET serves them; a second POST reuses them', async () => {
    const digest = debian.manifest.digest;
    assert.equal((await api(reg.server, 'GET', path(digest), USERS.guest)).status, 404);
    const res = await api(reg.server, 'POST', path(digest), USERS.dev);
    assert.equal(res.status, 201, await res.clone().text());
    const made = (await res.json()) as Generated;
    const installed = execFileSync('dpkg-query', ['-W', '-f', '${db:Status-Abbrev}\n'], { encoding: 'utf8' })
      .split('\n')
      .filter((s) => s.trim() === 'ii').length;
    assert.equal(made.packages, installed);
    assert.deepEqual(
      made.sboms.map((s) => [s.format, s.mediaType, s.origin]),
      [
        ['spdx', 'application/spdx+json', 'generated'],
        ['cyclonedx', 'application/vnd.cyclonedx+json', 'generated'],
      ],
    );

    const referrers = await fetch(`${reg.url}/v2/team/app/referrers/${digest}`, { headers: { authorization: USERS.guest } });
    assert.equal(referrers.status, 200);
    const index = (await referrers.json()) as { manifests: { digest: string; artifactType: string }[] };
    assert.deepEqual(
      index.manifests.map((m) => [m.digest, m.artifactType]).sort(),
      made.sboms.map((s) => [s.manifest, s.mediaType]).sort(),
    );

    const coreutils = execFileSync('dpkg-query', ['-W', '-f', '${Version}\t${source:Package}', 'coreutils'], { encoding: 'utf8' }).split(
      '\t',
    );
    const spdxRes = await api(reg.server, 'GET', `${path(digest)}?format=spdx`, USERS.guest);
    assert.equal(spdxRes.status, 200);
    assert.equal(spdxRes.headers.get('content-type'), 'application/spdx+json');
    const spdx = (await spdxRes.json()) as {
      spdxVersion: string;
      dataLicense: string;
      SPDXID: string;
      name: string;
      documentNamespace: string;
      creationInfo: { created: string; creators: string[] };
      packages: {
        SPDXID: string;
        name: string;
        versionInfo?: string;
        downloadLocation: string;
        externalRefs?: { referenceType: string; referenceLocator: string }[];
      }[];
      relationships: unknown[];
    };
    assert.deepEqual([spdx.spdxVersion, spdx.dataLicense, spdx.SPDXID], ['SPDX-2.3', 'CC0-1.0', 'SPDXRef-DOCUMENT']);
    assert.match(spdx.creationInfo.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(spdx.documentNamespace.startsWith('https://') && spdx.name && spdx.creationInfo.creators.length > 0);
    for (const p of spdx.packages) assert.ok(/^SPDXRef-[A-Za-z0-9.-]+$/.test(p.SPDXID) && p.name && p.downloadLocation, JSON.stringify(p));
    assert.equal(new Set(spdx.packages.map((p) => p.SPDXID)).size, spdx.packages.length);
    const pkg = spdx.packages.find((p) => p.name === 'coreutils')!;
    assert.equal(pkg.versionInfo, coreutils[0]);
    assert.match(pkg.externalRefs![0]!.referenceLocator, /^pkg:deb\/debian\/coreutils@/);
    assert.equal(spdx.relationships.length, installed + 1);

    const cdxRes = await api(reg.server, 'GET', `${path(digest)}?format=cyclonedx`, USERS.guest);
    const cdx = (await cdxRes.json()) as {
      bomFormat: string;
      specVersion: string;
      serialNumber: string;
      components: { type: string; name: string; version?: string; purl?: string }[];
    };
    assert.deepEqual([cdx.bomFormat, cdx.specVersion], ['CycloneDX', '1.6']);
    assert.match(cdx.serialNumber, /^urn:uuid:[0-9a-f-]{36}$/);
    assert.equal(cdx.components.find((c) => c.name === 'coreutils')?.version, coreutils[0]);

    const again = await api(reg.server, 'POST', path(digest), USERS.dev);
    assert.equal(again.status, 200);
    const reused = (await again.json()) as Generated;
    assert.equal(reused.reused, true);
    assert.deepEqual(reused.sboms.map((s) => s.manifest).sort(), made.sboms.map((s) => s.manifest).sort());
  });

  it('an SBOM a client pushed as a referrer (Trivy/oras style) is used instead of generating', async () => {
    const image = imageOf([await layerOf([{ path: 'etc/os-release', data: 'ID=alpine\nVERSION_ID=3.19.1\n' }])]);
    const client = clientAs(reg.server, USERS.dev);
    await client.pushImage('team/client', 'v1', image);
    const doc = jsonBlob({
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      components: [{ type: 'library', name: 'musl', version: '1.2.4-r2', purl: 'pkg:apk/alpine/musl@1.2.4-r2?distro=alpine-3.19.1' }],
    });
    const empty = jsonBlob({});
    for (const b of [doc, empty]) assert.equal((await client.pushBlob('team/client', b)).status, 201);
    const referrer = jsonBlob({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.cyclonedx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
      layers: [{ mediaType: 'application/vnd.cyclonedx+json', digest: doc.digest, size: doc.size }],
      subject: { mediaType: OCI_MANIFEST, digest: image.manifest.digest, size: image.manifest.size },
    });
    assert.equal((await client.pushManifest('team/client', referrer.digest, referrer)).status, 201);
    const res = await api(reg.server, 'POST', path(image.manifest.digest, 'client'), USERS.dev);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Generated;
    assert.deepEqual(
      body.sboms.map((s) => [s.manifest, s.origin]),
      [[referrer.digest, 'referrer']],
    );
    const got = await api(reg.server, 'GET', path(image.manifest.digest, 'client'), USERS.guest);
    assert.deepEqual(JSON.parse(await got.text()), JSON.parse(doc.data.toString()));
    assert.equal(got.headers.get('berth-sbom-origin'), 'referrer');
  });

  it("cosign's legacy sha256-<hex>.sbom tag (cosign attach sbom) is used instead of generating", async () => {
    const client = clientAs(reg.server, USERS.dev);
    const image = imageOf([await layerOf([{ path: 'etc/os-release', data: 'ID=debian\nVERSION_ID=12\n' }])]);
    await client.pushImage('team/cosign', 'v1', image);
    const doc = jsonBlob({ spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', name: 'from-cosign', packages: [] });
    const config = jsonBlob({});
    for (const b of [doc, config]) assert.equal((await client.pushBlob('team/cosign', b)).status, 201);
    const sbomManifest = jsonBlob({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: [{ mediaType: 'text/spdx+json', digest: doc.digest, size: doc.size }],
    });
    assert.equal((await client.pushManifest('team/cosign', `${image.manifest.digest.replace(':', '-')}.sbom`, sbomManifest)).status, 201);
    const res = await api(reg.server, 'POST', path(image.manifest.digest, 'cosign'), USERS.dev);
    assert.equal(res.status, 200);
    assert.deepEqual(
      ((await res.json()) as Generated).sboms.map((s) => [s.format, s.origin, s.manifest]),
      [['spdx', 'cosign-tag', sbomManifest.digest]],
    );
    const got = await api(reg.server, 'GET', `${path(image.manifest.digest, 'cosign')}?format=spdx`, USERS.guest);
    assert.equal(((await got.json()) as { name: string }).name, 'from-cosign');
  });

  it('a BuildKit attestation manifest inside the index is used for its image', async () => {
    const client = clientAs(reg.server, USERS.dev);
    const image = imageOf([await layerOf([{ path: 'etc/os-release', data: 'ID=debian\nVERSION_ID=12\n' }])]);
    await client.pushImage('team/bk', 'img', image);
    const statement = jsonBlob({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: 'https://spdx.dev/Document',
      subject: [{ name: 'x', digest: { sha256: image.manifest.digest.slice(7) } }],
      predicate: { spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', name: 'bk', packages: [] },
    });
    const attConfig = jsonBlob({ architecture: 'unknown', os: 'unknown' });
    for (const b of [statement, attConfig]) assert.equal((await client.pushBlob('team/bk', b)).status, 201);
    const att = jsonBlob({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: attConfig.digest, size: attConfig.size },
      layers: [
        {
          mediaType: 'application/vnd.in-toto+json',
          digest: statement.digest,
          size: statement.size,
          annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' },
        },
      ],
    });
    assert.equal((await client.pushManifest('team/bk', att.digest, att)).status, 201);
    const index = jsonBlob({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: image.manifest.digest,
          size: image.manifest.size,
          platform: { os: 'linux', architecture: 'amd64' },
        },
        {
          mediaType: OCI_MANIFEST,
          digest: att.digest,
          size: att.size,
          platform: { os: 'unknown', architecture: 'unknown' },
          annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': image.manifest.digest },
        },
      ],
    });
    assert.equal((await client.pushManifest('team/bk', 'v1', index, OCI_INDEX)).status, 201);
    const res = await api(reg.server, 'POST', path(index.digest, 'bk'), USERS.dev);
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as Generated;
    assert.deepEqual(
      body.children!.map((c) => [c.reused, c.sboms.map((s) => [s.origin, s.manifest])]),
      [[true, [['buildkit-attestation', att.digest]]]],
    );
    const got = await api(reg.server, 'GET', `${path(image.manifest.digest, 'bk')}?index=${index.digest}`, USERS.guest);
    assert.equal(got.status, 200);
    assert.equal(((await got.json()) as { name: string }).name, 'bk');
  });

  it("who may: anonymous 401; a guest reads but may not generate (403); another project's admin sees nothing (404); bad input 400", async () => {
    const digest = debian.manifest.digest;
    assert.equal((await fetch(`${reg.url}/api/v1${path(digest)}`)).status, 401);
    assert.equal((await fetch(`${reg.url}/api/v1${path(digest)}`, { method: 'POST' })).status, 401);
    const guest = await refusal(await api(reg.server, 'POST', path(digest), USERS.guest));
    assert.deepEqual([guest.status, guest.code], [403, 'DENIED']);
    for (const method of ['GET', 'POST']) {
      const outsider = await refusal(await api(reg.server, method, path(digest), USERS.outsider));
      assert.deepEqual([outsider.status, outsider.code], [404, 'NOT_FOUND']);
    }
    const bad = await refusal(await api(reg.server, 'GET', `${path(digest)}?format=xml`, USERS.guest));
    assert.deepEqual([bad.status, bad.code], [400, 'INVALID_ARGUMENT']);
    const notDigest = await refusal(await api(reg.server, 'POST', path('latest'), USERS.dev));
    assert.deepEqual([notDigest.status, notDigest.code], [400, 'INVALID_ARGUMENT']);
    const unknown = await refusal(await api(reg.server, 'POST', path(`sha256:${'0'.repeat(64)}`), USERS.dev));
    assert.deepEqual([unknown.status, unknown.code], [404, 'NOT_FOUND']);
  });
});
