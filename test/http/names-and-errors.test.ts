import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { makeBlob, makeImage } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { assertErrorBody, expectError, rawRequest } from './support.js';

describe('base: GET /v2/', () => {
  const reg = useServer();

  it('GET /v2/ answers 200 with Docker-Distribution-API-Version: registry/2.0 and a JSON body', async () => {
    for (const path of ['/v2/', '/v2']) {
      const res = await fetch(`${reg.url}${path}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await res.json(), {});
    }
  });

  it('HEAD /v2/ answers 200 with the version header', async () => {
    const res = await fetch(`${reg.url}/v2/`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  it('an unknown /v2 endpoint answers 404 with a spec error body', async () => {
    const res = await fetch(`${reg.url}/v2/app/nothing/here`);
    await expectError(res, 404, 'UNSUPPORTED');
  });

  it('a method an endpoint does not support answers 405 UNSUPPORTED with Allow', async () => {
    const res = await fetch(`${reg.url}/v2/app/tags/list`, { method: 'DELETE' });
    assert.equal(res.headers.get('allow'), 'GET');
    await expectError(res, 405, 'UNSUPPORTED');
  });
});

describe('names: repository name grammar', () => {
  const reg = useServer();

  it('multi-level names (a/b/c) push and pull like any other', async () => {
    const image = makeImage({ layers: 1, layerSize: 10 });
    for (const name of ['a/b/c', 'a/b/c/d/e', 'x-y/z_z/w.w/v__v/u--u']) {
      await reg.client.pushImage(name, 'v1', image);
      const res = await reg.client.fetch(`/v2/${name}/manifests/v1`);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers.get('docker-content-digest'), image.manifest.digest);
    }
  });

  it('a name of exactly 255 characters is accepted', async () => {
    const name = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
    assert.equal(name.length, 255);
    const blob = makeBlob(10);
    assert.equal((await reg.client.pushBlob(name, blob)).status, 201);
    assert.equal((await reg.client.fetch(`/v2/${name}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 200);
  });

  it('a name of 256 characters answers 400 NAME_INVALID', async () => {
    const name = `${'a'.repeat(128)}/${'b'.repeat(127)}`;
    assert.equal(name.length, 256);
    await expectError(await reg.client.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST' }), 400, 'NAME_INVALID');
    await expectError(await reg.client.fetch(`/v2/${name}/tags/list`), 400, 'NAME_INVALID');
  });

  const invalidNames: [string, string][] = [
    ['uppercase', 'App'],
    ['uppercase component', 'a/B/c'],
    ['dot-dot component', 'a/../b'],
    ['encoded dot-dot', 'a/%2e%2e/b'],
    ['encoded dot-dot (upper)', 'a/%2E%2E/b'],
    ['leading dot-dot', '../a'],
    ['dot component', 'a/./b'],
    ['empty component', 'a//b'],
    ['leading slash', '/a'],
    ['trailing slash', 'a/'],
    ['backslash', 'a\\b'],
    ['encoded slash', 'a%2fb'],
    ['leading separator', '-a'],
    ['trailing separator', 'a-'],
    ['double dot separator', 'a..b'],
    ['triple underscore', 'a___b'],
    ['space (encoded)', 'a%20b'],
    ['colon', 'a:b'],
  ];

  for (const [what, name] of invalidNames) {
    it(`an invalid name (${what}: "${name}") answers 400 NAME_INVALID on every endpoint`, async () => {
      const digest = makeBlob(4).digest;
      const probes: [string, string][] = [
        ['GET', `/v2/${name}/tags/list`],
        ['GET', `/v2/${name}/manifests/latest`],
        ['HEAD', `/v2/${name}/manifests/latest`],
        ['PUT', `/v2/${name}/manifests/latest`],
        ['GET', `/v2/${name}/blobs/${digest}`],
        ['POST', `/v2/${name}/blobs/uploads/`],
        ['GET', `/v2/${name}/referrers/${digest}`],
      ];
      for (const [method, path] of probes) {
        const res = await rawRequest(
          reg.url,
          method,
          path,
          method === 'PUT' ? { 'content-type': 'application/json' } : {},
          method === 'PUT' ? Buffer.from('{}') : undefined,
        );
        assert.equal(res.status, 400, `${method} ${path} → ${res.status} ${res.body.toString()}`);
        if (method !== 'HEAD') assertErrorBody(res.headers['content-type'], res.body.toString(), 'NAME_INVALID');
      }
    });
  }

  it('nothing is created under an invalid name', async () => {
    const catalog = (await (await reg.client.fetch('/v2/_catalog')).json()) as { repositories: string[] };
    for (const repo of catalog.repositories)
      assert.match(repo, /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/);
  });
});

describe('references: tag and digest grammar', () => {
  const repo = 'ref/grammar';
  const image = makeImage({ layers: 1, layerSize: 10 });
  const reg = useServer();
  before(async () => {
    await reg.client.pushImage(repo, 'v1', image);
  });

  it('valid tags of every allowed shape are accepted (128 chars, leading underscore, dots and dashes)', async () => {
    for (const tag of ['_x', 'V1.2.3-rc_1', 'a'.repeat(128), '0']) {
      assert.equal((await reg.client.pushManifest(repo, tag, image.manifest)).status, 201, tag);
      assert.equal((await reg.client.fetch(`/v2/${repo}/manifests/${tag}`)).status, 200, tag);
    }
  });

  const badTags = ['-lead', '.lead', 'a'.repeat(129), 'a+b', 'a%20b', 'caf%C3%A9'];
  for (const tag of badTags) {
    it(`a bad tag "${tag.slice(0, 20)}" answers 400 TAG_INVALID on PUT and DELETE, 404 MANIFEST_UNKNOWN on GET (OCI conformance)`, async () => {
      await expectError(await reg.client.pushManifest(repo, tag, image.manifest), 400, 'TAG_INVALID');
      await expectError(await reg.client.fetch(`/v2/${repo}/manifests/${tag}`), 404, 'MANIFEST_UNKNOWN');
      await expectError(await reg.client.fetch(`/v2/${repo}/manifests/${tag}`, { method: 'DELETE' }), 400, 'TAG_INVALID');
    });
  }

  const hex64 = 'a'.repeat(64);
  const badDigests: [string, string][] = [
    ['non-hex', 'sha256:xyz'],
    ['too short', `sha256:${'a'.repeat(63)}`],
    ['too long', `sha256:${'a'.repeat(65)}`],
    ['uppercase hex', `sha256:${'A'.repeat(64)}`],
    ['unknown algorithm md5', 'md5:d41d8cd98f00b204e9800998ecf8427e'],
    ['unknown algorithm with a sha256-length hex', `sha384:${hex64}`],
    ['sha512 with 64 hex', `sha512:${hex64}`],
    ['empty hex', 'sha256:'],
    ['no algorithm', `:${hex64}`],
    ['uppercase algorithm', `SHA256:${hex64}`],
  ];
  for (const [what, digest] of badDigests) {
    it(`an invalid digest (${what}) answers 400 DIGEST_INVALID on blobs, manifests, uploads and mounts`, async () => {
      const encoded = encodeURIComponent(digest);
      await expectError(await reg.client.fetch(`/v2/${repo}/blobs/${digest}`), 400, 'DIGEST_INVALID');
      assert.equal((await reg.client.fetch(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status, 400);
      await expectError(await reg.client.fetch(`/v2/${repo}/blobs/${digest}`, { method: 'DELETE' }), 400, 'DIGEST_INVALID');
      await expectError(await reg.client.fetch(`/v2/${repo}/manifests/${digest}`), 400, 'DIGEST_INVALID');
      await expectError(await reg.client.fetch(`/v2/${repo}/manifests/${digest}`, { method: 'DELETE' }), 400, 'DIGEST_INVALID');
      await expectError(await reg.client.pushManifest(repo, digest, image.manifest), 400, 'DIGEST_INVALID');
      await expectError(
        await reg.client.fetch(`/v2/${repo}/blobs/uploads/?digest=${encoded}`, { method: 'POST', body: 'x' }),
        400,
        'DIGEST_INVALID',
      );
    });
  }

  it('a mount with an invalid digest answers 400 DIGEST_INVALID', async () => {
    await expectError(
      await reg.client.fetch(`/v2/${repo}/blobs/uploads/?mount=sha256:nope&from=other`, { method: 'POST' }),
      400,
      'DIGEST_INVALID',
    );
  });

  it('HEAD errors carry the status and headers but no body', async () => {
    const res = await reg.client.fetch(`/v2/${repo}/manifests/sha256:bad`, { method: 'HEAD' });
    assert.equal(res.status, 400);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });
});
