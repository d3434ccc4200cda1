import assert from 'node:assert/strict';
import net from 'node:net';
import { before, describe, it } from 'node:test';
import { DOCKER_MANIFEST, OCI_INDEX, jsonBlob, makeImage } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { addProject, addUser, basic, bearer, token, useAuthServer } from '../auth/support.js';
import { assertErrorBody, expectError, rawRequest } from './support.js';

/**
 * Protocol corners where a client (or the OCI conformance suite) expects one exact answer:
 * references that cannot name a manifest, tags with a "/", an empty repository name, Accept
 * headers the server cannot read, and a request with two Host headers.
 */

/** Sends `head` as is over a fresh connection and returns the raw response (status line, headers, body). */
function rawExchange(url: string, head: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(head));
    let response = '';
    socket.on('data', (d: Buffer) => (response += d.toString()));
    socket.on('end', () => resolve(response));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no answer; got so far: ${response}`)));
  });
}

function splitResponse(raw: string): { status: number; headers: string; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  const headers = raw.slice(0, end);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1]), headers, body: raw.slice(end + 4) };
}

describe('protocol corners: references, names, Accept and Host', () => {
  const repo = 'corner/app';
  const image = makeImage({ layers: 1, layerSize: 16 });
  const index = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      {
        mediaType: image.mediaType,
        digest: image.manifest.digest,
        size: image.manifest.size,
        platform: { os: 'linux', architecture: 'amd64' },
      },
    ],
  });
  const reg = useServer();
  before(async () => {
    await reg.client.pushImage(repo, 'v1', image);
    assert.equal((await reg.client.pushManifest(repo, 'multi', index, OCI_INDEX)).status, 201);
  });

  it('GET and HEAD of a reference that is no valid tag (".INVALID_MANIFEST_NAME", as the conformance suite sends) answer 404 MANIFEST_UNKNOWN; PUT of it stays 400 TAG_INVALID', async () => {
    for (const ref of ['.INVALID_MANIFEST_NAME', '-lead', 'a+b', 'a'.repeat(129)]) {
      const error = await expectError(await reg.client.fetch(`/v2/${repo}/manifests/${ref}`), 404, 'MANIFEST_UNKNOWN');
      assert.match(error.message, /invalid tag/, 'the message still says why');
      const head = await reg.client.fetch(`/v2/${repo}/manifests/${ref}`, { method: 'HEAD' });
      assert.equal(head.status, 404, ref);
      await expectError(await reg.client.pushManifest(repo, ref, image.manifest), 400, 'TAG_INVALID');
    }
    // A repository that does not exist answers the same.
    await expectError(await reg.client.fetch('/v2/corner/none/manifests/.INVALID_MANIFEST_NAME'), 404, 'MANIFEST_UNKNOWN');
  });

  it('a tag with a "/" answers 400 TAG_INVALID on PUT (not NAME_INVALID), 404 MANIFEST_UNKNOWN on GET, and stores nothing', async () => {
    for (const ref of ['a/b', 'v1/', 'x/y/z']) {
      const put = await rawRequest(
        reg.url,
        'PUT',
        `/v2/${repo}/manifests/${ref}`,
        { 'content-type': image.mediaType },
        image.manifest.data,
      );
      assert.equal(put.status, 400, `PUT ${ref}: ${put.body.toString()}`);
      assertErrorBody(put.headers['content-type'], put.body.toString(), 'TAG_INVALID');
      const get = await rawRequest(reg.url, 'GET', `/v2/${repo}/manifests/${ref}`);
      assert.equal(get.status, 404, `GET ${ref}: ${get.body.toString()}`);
      assertErrorBody(get.headers['content-type'], get.body.toString(), 'MANIFEST_UNKNOWN');
    }
    // An empty reference is no tag either.
    const empty = await rawRequest(reg.url, 'PUT', `/v2/${repo}/manifests/`, { 'content-type': image.mediaType }, image.manifest.data);
    assert.equal(empty.status, 400);
    assertErrorBody(empty.headers['content-type'], empty.body.toString(), 'TAG_INVALID');
    // The name part is still checked: an invalid one is NAME_INVALID whatever the reference.
    const badName = await rawRequest(reg.url, 'PUT', '/v2/Corner/manifests/a/b', { 'content-type': image.mediaType }, image.manifest.data);
    assert.equal(badName.status, 400);
    assertErrorBody(badName.headers['content-type'], badName.body.toString(), 'NAME_INVALID');
    const tags = (await (await reg.client.fetch(`/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(tags.tags.sort(), ['multi', 'v1']);
  });

  it('an empty repository name (/v2//tags/list, /v2//manifests/x) answers 400 NAME_INVALID', async () => {
    for (const [method, path] of [
      ['GET', '/v2//tags/list'],
      ['GET', '/v2//manifests/latest'],
      ['HEAD', '/v2//manifests/latest'],
      ['POST', '/v2//blobs/uploads/'],
    ] as const) {
      const res = await rawRequest(reg.url, method, path);
      assert.equal(res.status, 400, `${method} ${path}: ${res.body.toString()}`);
      if (method !== 'HEAD') assertErrorBody(res.headers['content-type'], res.body.toString(), 'NAME_INVALID');
    }
  });

  it('an Accept header naming no parseable media type serves the manifest (as with no Accept) instead of 404', async () => {
    for (const accept of ['garbage', ';;;', ',', 'not a media type', 'application', '/']) {
      for (const [tag, blob, mediaType] of [
        ['v1', image.manifest, image.mediaType],
        ['multi', index, OCI_INDEX],
      ] as const) {
        const res = await reg.client.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { accept } });
        assert.equal(res.status, 200, `Accept: ${accept} on ${tag}: ${res.status}`);
        assert.equal(res.headers.get('content-type'), mediaType);
        assert.equal(res.headers.get('docker-content-digest'), blob.digest);
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), blob.data);
      }
    }
    // Garbage next to a parseable type that excludes the stored one: the readable part decides.
    await expectError(
      await reg.client.fetch(`/v2/${repo}/manifests/v1`, { headers: { accept: `garbage, ${DOCKER_MANIFEST}` } }),
      404,
      'MANIFEST_UNKNOWN',
    );
    // …and garbage next to the stored type serves it.
    assert.equal((await reg.client.fetch(`/v2/${repo}/manifests/v1`, { headers: { accept: `;;, ${image.mediaType}` } })).status, 200);
  });

  it('a request with two Host headers answers 400 with a spec error body (RFC 9112), one with one Host is served', async () => {
    for (const path of ['/v2/', `/v2/${repo}/manifests/v1`, '/healthz']) {
      const twice = splitResponse(
        await rawExchange(reg.url, `GET ${path} HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n`),
      );
      assert.equal(twice.status, 400, `${path}: ${twice.headers}`);
      const error = assertErrorBody(/content-type: ([^\r]+)/i.exec(twice.headers)?.[1], twice.body, 'UNSUPPORTED');
      assert.match(error.message, /Host header/);
      const once = splitResponse(await rawExchange(reg.url, `GET ${path} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n`));
      assert.equal(once.status, 200, `${path}: ${once.headers}`);
    }
    // Case does not matter, and a HEAD gets the status without a body.
    const head = splitResponse(
      await rawExchange(reg.url, `HEAD /v2/ HTTP/1.1\r\nhost: a.example\r\nHOST: a.example\r\nConnection: close\r\n\r\n`),
    );
    assert.equal(head.status, 400);
    assert.equal(head.body, '');
  });
});

describe('protocol corners: a refusal that must reach the user without a body (auth.mode token)', () => {
  const reg = useAuthServer('token');
  const digest = `sha256:${'0'.repeat(64)}`;
  before(async () => {
    await addUser(reg.server, 'bob', 'bob-password');
    await addProject(reg.server, 'team');
  });

  it('a HEAD no token can cure answers 401 with error="insufficient_scope" and the reason as error_description; GET answers 403 DENIED with the body and the same challenge', async () => {
    const jwt = await token(reg.server, ['repository:team/app:pull,push'], basic('bob', 'bob-password'));
    const head = await fetch(`${reg.url}/v2/team/app/blobs/${digest}`, { method: 'HEAD', headers: { authorization: bearer(jwt) } });
    assert.equal(head.status, 401);
    const challenge = head.headers.get('www-authenticate') ?? '';
    assert.match(
      challenge,
      /^Bearer realm="[^"]+",service="berth",scope="repository:team\/app:pull",error="insufficient_scope",error_description="bob may not pull repository team\/app"$/,
      challenge,
    );
    const get = await fetch(`${reg.url}/v2/team/app/manifests/v1`, { headers: { authorization: bearer(jwt) } });
    assert.equal(get.headers.get('www-authenticate'), challenge);
    const error = await expectError(get, 403, 'DENIED');
    assert.equal(error.message, 'bob may not pull repository team/app');
  });

  it('an anonymous token lacking a scope is told to log in, in the body and in error_description', async () => {
    const jwt = await token(reg.server, ['repository:team/app:pull']);
    const head = await fetch(`${reg.url}/v2/team/app/manifests/v1`, { method: 'HEAD', headers: { authorization: bearer(jwt) } });
    assert.equal(head.status, 401);
    assert.match(
      head.headers.get('www-authenticate') ?? '',
      /error="insufficient_scope",error_description="anonymous may not pull repository team\/app: log in first"$/,
    );
    const get = await fetch(`${reg.url}/v2/team/app/manifests/v1`, { headers: { authorization: bearer(jwt) } });
    const error = await expectError(get, 401, 'UNAUTHORIZED');
    assert.equal(error.message, 'anonymous may not pull repository team/app: log in first');
  });
});
