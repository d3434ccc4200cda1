import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, it } from 'node:test';
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
  jsonBlob,
  makeBlob,
  makeImage,
  type Blob,
  type Image,
} from '../helpers/registry-client.js';
import { bytesOf, expectError, streamBody } from './support.js';
import { useServer } from '../helpers/use-server.js';

const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/** An image index (OCI) or manifest list (Docker) over already-pushed manifests. */
function makeIndex(children: { manifest: Blob; mediaType: string }[], mediaType: string = OCI_INDEX): Blob {
  return jsonBlob({
    schemaVersion: 2,
    mediaType,
    manifests: children.map((c) => ({
      mediaType: c.mediaType,
      digest: c.manifest.digest,
      size: c.manifest.size,
      platform: { architecture: 'amd64', os: 'linux' },
    })),
  });
}

/** A Docker schema 2 image over fresh blobs (built, not pushed). */
function makeDockerImage(): Image {
  const config = jsonBlob({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: Math.random() });
  const layers = [makeBlob(700)];
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: DOCKER_CONFIG, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: DOCKER_LAYER, digest: l.digest, size: l.size })),
  });
  return { config, layers, manifest, mediaType: DOCKER_MANIFEST };
}

function tagsIn(res: Response): string[] {
  return (res.headers.get('oci-tag') ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .sort();
}

describe('manifests: GET and HEAD /v2/<name>/manifests/<reference>', () => {
  const repo = 'man/pull';
  const oci = makeImage();
  const docker = makeDockerImage();
  let ociIndex: Blob;
  let dockerList: Blob;

  const reg = useServer();
  before(async () => {
    await reg.client.pushImage(repo, 'oci', oci);
    await reg.client.pushImage(repo, 'docker', docker);
    ociIndex = makeIndex([{ manifest: oci.manifest, mediaType: OCI_MANIFEST }]);
    dockerList = makeIndex([{ manifest: docker.manifest, mediaType: DOCKER_MANIFEST }], DOCKER_LIST);
    assert.equal((await reg.client.pushManifest(repo, 'oci-index', ociIndex, OCI_INDEX)).status, 201);
    assert.equal((await reg.client.pushManifest(repo, 'docker-list', dockerList, DOCKER_LIST)).status, 201);
  });

  it('GET by tag and by digest answers 200 with the pushed bytes, Docker-Content-Digest, Content-Type and Content-Length', async () => {
    for (const ref of ['oci', oci.manifest.digest]) {
      const res = await reg.client.fetch(`/v2/${repo}/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), oci.manifest.digest);
      assert.equal(res.headers.get('content-type'), OCI_MANIFEST);
      assert.equal(res.headers.get('content-length'), String(oci.manifest.size));
      assert.deepEqual(await bytesOf(res), oci.manifest.data);
    }
  });

  it('HEAD by tag and by digest answers 200 with the same headers and no body', async () => {
    for (const ref of ['oci', oci.manifest.digest]) {
      const res = await reg.client.fetch(`/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), oci.manifest.digest);
      assert.equal(res.headers.get('content-type'), OCI_MANIFEST);
      assert.equal(res.headers.get('content-length'), String(oci.manifest.size));
      assert.equal((await bytesOf(res)).length, 0);
    }
  });

  it('each manifest type is served with its own Content-Type when Accept lists it', async () => {
    const cases = [
      ['oci', oci.manifest, OCI_MANIFEST],
      ['oci-index', ociIndex, OCI_INDEX],
      ['docker', docker.manifest, DOCKER_MANIFEST],
      ['docker-list', dockerList, DOCKER_LIST],
    ] as const;
    const acceptAll = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(', ');
    for (const [tag, manifest, mediaType] of cases) {
      for (const accept of [mediaType, acceptAll, `${mediaType};q=0.9`]) {
        const res = await reg.client.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { accept } });
        assert.equal(res.status, 200, `${tag} with Accept: ${accept}`);
        assert.equal(res.headers.get('content-type'), mediaType);
        assert.equal(res.headers.get('docker-content-digest'), manifest.digest);
        assert.deepEqual(await bytesOf(res), manifest.data);
      }
    }
  });

  it('an Accept header that excludes the stored type answers 404 MANIFEST_UNKNOWN', async () => {
    const cases = [
      ['oci', DOCKER_MANIFEST],
      ['oci-index', `${OCI_MANIFEST}, ${DOCKER_MANIFEST}`],
      ['docker', OCI_MANIFEST],
      ['docker-list', `${OCI_INDEX}, ${DOCKER_MANIFEST}`],
    ] as const;
    for (const [tag, accept] of cases) {
      await expectError(await reg.client.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { accept } }), 404, 'MANIFEST_UNKNOWN');
    }
  });

  it('no Accept header, or */*, serves whatever was pushed', async () => {
    // CNCF Distribution refuses OCI content to a client that sends no Accept at all; Berth serves
    // it (the spec only says clients SHOULD send Accept), which also keeps curl usable.
    for (const headers of [{}, { accept: '*/*' }] as Record<string, string>[]) {
      const res = await reg.client.fetch(`/v2/${repo}/manifests/oci-index`, { headers });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), OCI_INDEX);
    }
  });

  it('ETag is the quoted digest, and If-None-Match with it answers 304 on GET and HEAD, by tag and by digest', async () => {
    const etag = `"${oci.manifest.digest}"`;
    for (const ref of ['oci', oci.manifest.digest]) {
      const res = await reg.client.fetch(`/v2/${repo}/manifests/${ref}`);
      assert.equal(res.headers.get('etag'), etag);
      for (const method of ['GET', 'HEAD']) {
        const cached = await reg.client.fetch(`/v2/${repo}/manifests/${ref}`, { method, headers: { 'if-none-match': etag } });
        assert.equal(cached.status, 304);
        assert.equal(cached.headers.get('docker-content-digest'), oci.manifest.digest);
        assert.equal((await bytesOf(cached)).length, 0);
      }
    }
    const stale = await reg.client.fetch(`/v2/${repo}/manifests/oci`, { headers: { 'if-none-match': `"${docker.manifest.digest}"` } });
    assert.equal(stale.status, 200);
  });

  it('an unknown tag or digest answers 404 MANIFEST_UNKNOWN', async () => {
    await expectError(await reg.client.fetch(`/v2/${repo}/manifests/nope`), 404, 'MANIFEST_UNKNOWN');
    await expectError(await reg.client.fetch(`/v2/${repo}/manifests/${makeBlob(5).digest}`), 404, 'MANIFEST_UNKNOWN');
    const head = await reg.client.fetch(`/v2/${repo}/manifests/nope`, { method: 'HEAD' });
    assert.equal(head.status, 404);
  });

  it('a manifest is also readable through the blobs endpoint by its digest', async () => {
    const res = await reg.client.fetch(`/v2/${repo}/blobs/${oci.manifest.digest}`);
    assert.equal(res.status, 200);
    assert.deepEqual(await bytesOf(res), oci.manifest.data);
  });
});

describe('manifests: PUT /v2/<name>/manifests/<reference>', () => {
  const repo = 'man/push';
  let config: Blob;
  let layer: Blob;

  const reg = useServer();
  before(async () => {
    config = jsonBlob({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
    layer = makeBlob(512);
    for (const blob of [config, layer]) assert.equal((await reg.client.pushBlob(repo, blob)).status, 201);
  });

  const ociBody = (extra: Record<string, unknown> = {}) => ({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers: [{ mediaType: OCI_LAYER, digest: layer.digest, size: layer.size }],
    ...extra,
  });

  function put(reference: string, body: string | Buffer, contentType: string | undefined = OCI_MANIFEST): Promise<Response> {
    return reg.client.fetch(`/v2/${repo}/manifests/${reference}`, {
      method: 'PUT',
      body: typeof body === 'string' ? body : new Uint8Array(body),
      headers: contentType ? { 'content-type': contentType } : {},
    });
  }

  async function assertNoManifest(reference: string): Promise<void> {
    assert.equal((await reg.client.fetch(`/v2/${repo}/manifests/${reference}`, { method: 'HEAD' })).status, 404);
  }

  it('PUT by tag answers 201 with Location and Docker-Content-Digest', async () => {
    const manifest = jsonBlob(ociBody({ annotations: { n: 'tagged' } }));
    const res = await put('v1', manifest.data);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), manifest.digest);
    assert.equal(res.headers.get('location'), `/v2/${repo}/manifests/${manifest.digest}`);
    assert.equal(res.headers.get('oci-subject'), null);
  });

  it('PUT by digest answers 201, and the manifest is pullable by that digest', async () => {
    const manifest = jsonBlob(ociBody({ annotations: { n: 'by-digest' } }));
    const res = await put(manifest.digest, manifest.data);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), manifest.digest);
    const pulled = await reg.client.fetch(`/v2/${repo}/manifests/${manifest.digest}`);
    assert.deepEqual(await bytesOf(pulled), manifest.data);
  });

  it('PUT by a sha512 digest answers 201 with that digest', async () => {
    const manifest = jsonBlob(ociBody({ annotations: { n: 'sha512' } }));
    const digest = `sha512:${createHash('sha512').update(manifest.data).digest('hex')}`;
    const res = await put(digest, manifest.data);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    assert.equal((await reg.client.fetch(`/v2/${repo}/manifests/${digest}`)).status, 200);
  });

  it('re-pushing a tag moves it to the new manifest', async () => {
    const first = jsonBlob(ociBody({ annotations: { n: 'move-1' } }));
    const second = jsonBlob(ociBody({ annotations: { n: 'move-2' } }));
    assert.equal((await put('moving', first.data)).status, 201);
    assert.equal((await put('moving', second.data)).status, 201);
    const res = await reg.client.fetch(`/v2/${repo}/manifests/moving`);
    assert.equal(res.headers.get('docker-content-digest'), second.digest);
    assert.equal((await reg.client.fetch(`/v2/${repo}/manifests/${first.digest}`)).status, 200);
  });

  it('a digest in the URL that does not match the body answers 400 DIGEST_INVALID and stores nothing', async () => {
    const manifest = jsonBlob(ociBody({ annotations: { n: 'mismatch' } }));
    const wrong = makeBlob(10).digest;
    await expectError(await put(wrong, manifest.data), 400, 'DIGEST_INVALID');
    await assertNoManifest(manifest.digest);
    await assertNoManifest(wrong);
  });

  it('invalid JSON answers 400 MANIFEST_INVALID', async () => {
    await expectError(await put('bad-json', '{"schemaVersion": 2,'), 400, 'MANIFEST_INVALID');
    await expectError(await put('bad-json', '[1,2]'), 400, 'MANIFEST_INVALID');
    await assertNoManifest('bad-json');
  });

  it('an empty body answers 400 MANIFEST_INVALID', async () => {
    await expectError(await put('empty', ''), 400, 'MANIFEST_INVALID');
  });

  it('OCI image manifest schema violations answer 400 MANIFEST_INVALID', async () => {
    const { config: _omitConfig, ...noConfig } = ociBody();
    const invalid: unknown[] = [
      noConfig,
      ociBody({ layers: 'nope' }),
      ociBody({ schemaVersion: 3 }),
      ociBody({ config: { mediaType: OCI_CONFIG, digest: 'sha256:123', size: config.size } }),
      ociBody({ config: { mediaType: OCI_CONFIG, digest: config.digest, size: -1 } }),
      ociBody({ layers: [{ mediaType: OCI_LAYER, digest: layer.digest }] }),
      ociBody({ annotations: { key: 42 } }),
    ];
    for (const body of invalid) {
      await expectError(await put('invalid', JSON.stringify(body)), 400, 'MANIFEST_INVALID');
    }
    await assertNoManifest('invalid');
  });

  it('OCI index and Docker manifest list schema violations answer 400 MANIFEST_INVALID', async () => {
    const invalid: [unknown, string][] = [
      [{ schemaVersion: 2, mediaType: OCI_INDEX, manifests: 'nope' }, OCI_INDEX],
      [{ schemaVersion: 2, mediaType: OCI_INDEX }, OCI_INDEX],
      [{ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: 'md5:abc', size: 1 }] }, OCI_INDEX],
      [{ schemaVersion: 2, mediaType: DOCKER_LIST, manifests: [{ digest: config.digest, size: 1 }] }, DOCKER_LIST],
    ];
    for (const [body, type] of invalid) {
      await expectError(await put('invalid-index', JSON.stringify(body), type), 400, 'MANIFEST_INVALID');
    }
  });

  it('Docker schema 2 violations answer 400 MANIFEST_INVALID (missing layers; subject is OCI-only; mediaType required)', async () => {
    const base = {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, digest: config.digest, size: config.size },
      layers: [{ mediaType: DOCKER_LAYER, digest: layer.digest, size: layer.size }],
    };
    const { layers: _omitLayers, ...noLayers } = base;
    const { mediaType: _omitType, ...noMediaType } = base;
    const invalid = [noLayers, { ...base, subject: { mediaType: OCI_MANIFEST, digest: layer.digest, size: 1 } }, noMediaType];
    for (const body of invalid) {
      await expectError(await put('invalid-docker', JSON.stringify(body), DOCKER_MANIFEST), 400, 'MANIFEST_INVALID');
    }
  });

  it('Docker schema 1 manifests answer 400 MANIFEST_INVALID', async () => {
    const schema1 = { schemaVersion: 1, name: repo, tag: 'old', architecture: 'amd64', fsLayers: [], history: [] };
    await expectError(
      await put('schema1', JSON.stringify(schema1), 'application/vnd.docker.distribution.manifest.v1+prettyjws'),
      400,
      'MANIFEST_INVALID',
    );
  });

  it('an unsupported mediaType answers 400 MANIFEST_INVALID', async () => {
    const body = JSON.stringify(ociBody({ mediaType: 'application/vnd.example.thing+json' }));
    await expectError(await put('wrong-type', body, 'application/vnd.example.thing+json'), 400, 'MANIFEST_INVALID');
  });

  it('a Content-Type naming another manifest type than the body answers 400 MANIFEST_INVALID', async () => {
    await expectError(await put('disagree', JSON.stringify(ociBody()), OCI_INDEX), 400, 'MANIFEST_INVALID');
    await expectError(await put('disagree', JSON.stringify(ociBody()), DOCKER_MANIFEST), 400, 'MANIFEST_INVALID');
  });

  it('an OCI manifest without a mediaType field is accepted by its Content-Type and served with it', async () => {
    const { mediaType: _omit, ...body } = ociBody({ annotations: { n: 'no-media-type' } });
    const manifest = jsonBlob(body);
    assert.equal((await put('no-media-type', manifest.data, OCI_MANIFEST)).status, 201);
    const res = await reg.client.fetch(`/v2/${repo}/manifests/no-media-type`);
    assert.equal(res.headers.get('content-type'), OCI_MANIFEST);
  });

  it('a manifest referencing a blob missing from the repository answers 400 MANIFEST_BLOB_UNKNOWN naming it', async () => {
    const missing = makeBlob(100);
    const body = ociBody({ layers: [{ mediaType: OCI_LAYER, digest: missing.digest, size: missing.size }] });
    const error = await expectError(await put('missing-layer', JSON.stringify(body)), 400, 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((error.detail as { digest: string }).digest, missing.digest);
    await assertNoManifest('missing-layer');
  });

  it('a blob present only in another repository does not satisfy a manifest here (MANIFEST_BLOB_UNKNOWN)', async () => {
    const elsewhere = makeBlob(100);
    assert.equal((await reg.client.pushBlob('man/other', elsewhere)).status, 201);
    const body = ociBody({ layers: [{ mediaType: OCI_LAYER, digest: elsewhere.digest, size: elsewhere.size }] });
    await expectError(await put('foreign-layer', JSON.stringify(body)), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('an index whose child manifest is missing answers 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const child = jsonBlob(ociBody({ annotations: { n: 'never-pushed' } }));
    const index = makeIndex([{ manifest: child, mediaType: OCI_MANIFEST }]);
    await expectError(await put('orphan-index', index.data, OCI_INDEX), 400, 'MANIFEST_BLOB_UNKNOWN');
    await assertNoManifest('orphan-index');
  });

  it('a foreign (non-distributable) layer need not exist in the registry', async () => {
    const body = ociBody({
      annotations: { n: 'foreign' },
      layers: [
        {
          mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
          digest: makeBlob(9).digest,
          size: 9,
          urls: ['https://example.com/l'],
        },
      ],
    });
    assert.equal((await put('foreign', JSON.stringify(body), OCI_MANIFEST)).status, 201);
  });

  it('a subject pointing at a manifest not in the registry is accepted and the response carries OCI-Subject', async () => {
    const subject = makeBlob(10);
    const manifest = jsonBlob(ociBody({ subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: 10 } }));
    const res = await put(manifest.digest, manifest.data);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('oci-subject'), subject.digest);
  });

  it('PUT <digest>?tag=a&tag=b tags both, echoes them in OCI-Tag, and tags/list shows them', async () => {
    const manifest = jsonBlob(ociBody({ annotations: { n: 'multi-tag' } }));
    const res = await reg.client.fetch(`/v2/${repo}/manifests/${manifest.digest}?tag=multi-a&tag=multi-b`, {
      method: 'PUT',
      body: new Uint8Array(manifest.data),
      headers: { 'content-type': OCI_MANIFEST },
    });
    assert.equal(res.status, 201);
    assert.deepEqual(tagsIn(res), ['multi-a', 'multi-b']);
    for (const tag of ['multi-a', 'multi-b']) {
      const pulled = await reg.client.fetch(`/v2/${repo}/manifests/${tag}`);
      assert.equal(pulled.headers.get('docker-content-digest'), manifest.digest);
    }
    const list = (await (await reg.client.fetch(`/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    assert.ok(list.tags.includes('multi-a') && list.tags.includes('multi-b'));
  });

  it('an invalid ?tag= answers 400 TAG_INVALID and stores nothing', async () => {
    const manifest = jsonBlob(ociBody({ annotations: { n: 'bad-extra-tag' } }));
    const res = await reg.client.fetch(`/v2/${repo}/manifests/${manifest.digest}?tag=ok&tag=-bad`, {
      method: 'PUT',
      body: new Uint8Array(manifest.data),
      headers: { 'content-type': OCI_MANIFEST },
    });
    await expectError(res, 400, 'TAG_INVALID');
    await assertNoManifest(manifest.digest);
    await assertNoManifest('ok');
  });

  it('a Docker schema 2 manifest and manifest list round-trip with their own Content-Type', async () => {
    const image = makeDockerImage();
    await reg.client.pushImage(repo, 'docker-v2', image);
    const list = makeIndex([{ manifest: image.manifest, mediaType: DOCKER_MANIFEST }], DOCKER_LIST);
    assert.equal((await put('docker-list', list.data, DOCKER_LIST)).status, 201);
    for (const [tag, blob, type] of [
      ['docker-v2', image.manifest, DOCKER_MANIFEST],
      ['docker-list', list, DOCKER_LIST],
    ] as const) {
      const res = await reg.client.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { accept: type } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), type);
      assert.equal(res.headers.get('docker-content-digest'), blob.digest);
      assert.deepEqual(await bytesOf(res), blob.data);
    }
  });

  it('an OCI index over pushed manifests round-trips', async () => {
    const child = jsonBlob(ociBody({ annotations: { n: 'child' } }));
    assert.equal((await put(child.digest, child.data)).status, 201);
    const index = makeIndex([{ manifest: child, mediaType: OCI_MANIFEST }]);
    assert.equal((await put('index', index.data, OCI_INDEX)).status, 201);
    const res = await reg.client.fetch(`/v2/${repo}/manifests/index`, { headers: { accept: OCI_INDEX } });
    assert.equal(res.headers.get('content-type'), OCI_INDEX);
    assert.deepEqual(await bytesOf(res), index.data);
  });
});

describe('manifests: size limit (limits.manifestsize = 1024)', () => {
  const reg = useServer({ limits: { manifestsize: 1024 } });

  it('a manifest over the limit answers 413 MANIFEST_INVALID, with or without Content-Length', async () => {
    const big = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, annotations: { pad: 'x'.repeat(2000) } });
    await expectError(
      await reg.client.fetch('/v2/small/app/manifests/big', { method: 'PUT', body: big, headers: { 'content-type': OCI_MANIFEST } }),
      413,
      'MANIFEST_INVALID',
    );
    const chunked = await reg.client.fetch('/v2/small/app/manifests/big', {
      method: 'PUT',
      headers: { 'content-type': OCI_MANIFEST },
      ...streamBody([Buffer.from(big.slice(0, 1000)), Buffer.from(big.slice(1000))]),
    } as RequestInit);
    await expectError(chunked, 413, 'MANIFEST_INVALID');
    assert.equal((await reg.client.fetch('/v2/small/app/manifests/big', { method: 'HEAD' })).status, 404);
  });

  it('a manifest under the limit is accepted', async () => {
    const image = makeImage({ layers: 1, layerSize: 10 });
    assert.ok(image.manifest.size < 1024);
    assert.equal((await reg.client.pushImage('small/app', 'ok', image)).status, 201);
  });
});

describe('manifests: DELETE /v2/<name>/manifests/<reference>', () => {
  const repo = 'man/del';
  const reg = useServer();

  async function tags(): Promise<string[]> {
    return ((await (await reg.client.fetch(`/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags;
  }

  it('by digest answers 202; the manifest and every tag pointing at it are gone', async () => {
    const image = makeImage();
    await reg.client.pushImage(repo, 'd1', image);
    assert.equal((await reg.client.pushManifest(repo, 'd2', image.manifest)).status, 201);
    const res = await reg.client.fetch(`/v2/${repo}/manifests/${image.manifest.digest}`, { method: 'DELETE' });
    assert.equal(res.status, 202);
    await expectError(await reg.client.fetch(`/v2/${repo}/manifests/${image.manifest.digest}`), 404, 'MANIFEST_UNKNOWN');
    await expectError(await reg.client.fetch(`/v2/${repo}/manifests/d1`), 404, 'MANIFEST_UNKNOWN');
    assert.deepEqual(
      (await tags()).filter((t) => t.startsWith('d')),
      [],
    );
  });

  it('by tag answers 202; only the tag goes, the manifest stays pullable by digest', async () => {
    const image = makeImage();
    await reg.client.pushImage(repo, 't1', image);
    assert.equal((await reg.client.pushManifest(repo, 't2', image.manifest)).status, 201);
    const res = await reg.client.fetch(`/v2/${repo}/manifests/t1`, { method: 'DELETE' });
    assert.equal(res.status, 202);
    await expectError(await reg.client.fetch(`/v2/${repo}/manifests/t1`), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await reg.client.fetch(`/v2/${repo}/manifests/${image.manifest.digest}`)).status, 200);
    assert.equal((await reg.client.fetch(`/v2/${repo}/manifests/t2`)).status, 200);
    assert.ok(!(await tags()).includes('t1'));
  });

  it('an unknown tag or digest answers 404 MANIFEST_UNKNOWN', async () => {
    await expectError(await reg.client.fetch(`/v2/${repo}/manifests/never`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
    await expectError(await reg.client.fetch(`/v2/${repo}/manifests/${makeBlob(3).digest}`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
  });
});

describe('manifests: DELETE with storage.delete.enabled=false', () => {
  const reg = useServer({ storage: { delete: { enabled: false } } });

  it('answers 405 UNSUPPORTED by digest and by tag, and keeps the manifest', async () => {
    const image = makeImage();
    await reg.client.pushImage('nodel/man', 'v1', image);
    for (const ref of [image.manifest.digest, 'v1']) {
      await expectError(await reg.client.fetch(`/v2/nodel/man/manifests/${ref}`, { method: 'DELETE' }), 405, 'UNSUPPORTED');
    }
    assert.equal((await reg.client.fetch('/v2/nodel/man/manifests/v1')).status, 200);
  });
});
