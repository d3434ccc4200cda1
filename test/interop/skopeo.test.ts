import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import {
  createLayoutArtifact,
  createLayoutImage,
  createLayoutIndex,
  layoutBlobs,
  readBlob,
  taggedDescriptor,
  type LayoutImage,
} from '../helpers/images.js';
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, RegistryClient, sha256 } from '../helpers/registry-client.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { loggedRequests, requestsSince, waitForRequest } from './request-log.js';

const KB = 1024;
const MB = 1024 * KB;
/** Three layers of random content, a few hundred KB to a few MB each. */
const LAYERS = [300 * KB, 1 * MB, 2.5 * MB];

describe('skopeo against berth serve', () => {
  let berth: BerthProcess;
  let dataDir: string;
  let sandbox: ClientSandbox;
  let host: string;
  let client: RegistryClient;

  before(async () => {
    requireTools(['skopeo']);
    dataDir = tempDir();
    berth = await startBerthProcess({ BERTH_DATA_DIR: dataDir });
    sandbox = ClientSandbox.create();
    host = registryHost(berth.url);
    client = new RegistryClient(berth.url);
  });
  after(async () => {
    await berth?.stop();
    sandbox?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const remote = (repoAndTag: string) => `docker://${host}/${repoAndTag}`;
  const pushLayout = (layout: string, tag: string, dest: string, extra: string[] = []) =>
    sandbox.skopeo(['copy', ...extra, '--dest-tls-verify=false', `oci:${layout}:${tag}`, remote(dest)]);
  const pullLayout = (src: string, layout: string, tag: string, extra: string[] = []) =>
    sandbox.skopeo(['copy', ...extra, '--src-tls-verify=false', remote(src), `oci:${layout}:${tag}`]);
  const inspect = async (ref: string, extra: string[] = []) =>
    (await sandbox.skopeo(['inspect', '--tls-verify=false', ...extra, remote(ref)])).stdout;

  async function newImage(name: string, layers = LAYERS): Promise<{ dir: string; image: LayoutImage }> {
    const dir = sandbox.path('layouts', name);
    return { dir, image: await createLayoutImage(dir, 'src', layers) };
  }

  it('copies a 3-layer OCI image in and out of an oci: layout with identical manifest, config and layer digests', async () => {
    const { dir, image } = await newImage('round-trip');
    await pushLayout(dir, 'src', 'interop/round-trip:v1');
    const out = sandbox.path('out', 'round-trip');
    await pullLayout('interop/round-trip:v1', out, 'pulled');

    assert.equal(taggedDescriptor(out, 'pulled').digest, image.manifest.digest);
    assertSameBlobs(
      dir,
      out,
      [image.manifest, image.config, ...image.layers].map((d) => d.digest),
    );
  });

  it('copies a linux/amd64 + linux/arm64 image index with --all, keeping the index and both child manifests', async () => {
    const dir = sandbox.path('layouts', 'multi');
    const platforms = [
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux' },
    ];
    const { index, images } = await createLayoutIndex(dir, 'src', platforms, [200 * KB, 400 * KB, 300 * KB]);
    await pushLayout(dir, 'src', 'interop/multi:v1', ['--all']);
    const out = sandbox.path('out', 'multi');
    await pullLayout('interop/multi:v1', out, 'pulled', ['--all']);

    const pulled = taggedDescriptor(out, 'pulled');
    assert.equal(pulled.digest, index.digest);
    assert.equal(pulled.mediaType, OCI_INDEX);
    const children = (JSON.parse(readBlob(out, index.digest).toString()) as { manifests: { digest: string; platform: unknown }[] })
      .manifests;
    assert.deepEqual(
      children.map((c) => [c.digest, c.platform]),
      images.map((image, i) => [image.manifest.digest, platforms[i]]),
    );
    const expected = [index, ...images.flatMap((image) => [image.manifest, image.config, ...image.layers])];
    assertSameBlobs(
      dir,
      out,
      expected.map((d) => d.digest),
    );
    // Each child is also addressable on its own by digest.
    for (const image of images) {
      const raw = await inspect(`interop/multi@${image.manifest.digest}`, ['--raw']);
      assert.equal(sha256(raw), image.manifest.digest);
    }
  });

  it('inspect reports the pushed Digest and RepoTags, and inspect --raw returns the pushed manifest bytes', async () => {
    const { dir, image } = await newImage('inspect');
    await pushLayout(dir, 'src', 'interop/inspect:v1');
    await pushLayout(dir, 'src', 'interop/inspect:latest');

    const info = JSON.parse(await inspect('interop/inspect:v1')) as { Digest: string; RepoTags: string[]; Name: string; Layers: string[] };
    assert.equal(info.Digest, image.manifest.digest);
    assert.deepEqual([...info.RepoTags].sort(), ['latest', 'v1']);
    assert.equal(info.Name, `${host}/interop/inspect`);
    assert.deepEqual(
      info.Layers,
      image.layers.map((l) => l.digest),
    );
    const raw = await inspect('interop/inspect:v1', ['--raw']);
    assert.equal(raw, readBlob(dir, image.manifest.digest).toString());
  });

  it('list-tags lists every tag pushed to the repository', async () => {
    const { dir } = await newImage('tags', [200 * KB, 200 * KB, 200 * KB]);
    for (const tag of ['v1', 'v1.1', 'stable']) await pushLayout(dir, 'src', `interop/tags:${tag}`);
    const listed = JSON.parse((await sandbox.skopeo(['list-tags', '--tls-verify=false', remote('interop/tags')])).stdout) as {
      Repository: string;
      Tags: string[];
    };
    assert.equal(listed.Repository, `${host}/interop/tags`);
    assert.deepEqual([...listed.Tags].sort(), ['stable', 'v1', 'v1.1']);
  });

  it('delete removes the manifest: inspect then fails with "manifest unknown" for every tag that pointed at it', async () => {
    const { dir, image } = await newImage('delete', [200 * KB, 200 * KB, 200 * KB]);
    await pushLayout(dir, 'src', 'interop/delete:v1');
    await pushLayout(dir, 'src', 'interop/delete:also');
    assert.equal((JSON.parse(await inspect('interop/delete:v1')) as { Digest: string }).Digest, image.manifest.digest);

    await sandbox.skopeo(['delete', '--tls-verify=false', remote('interop/delete:v1')]);

    for (const ref of ['interop/delete:v1', 'interop/delete:also', `interop/delete@${image.manifest.digest}`]) {
      const res = await sandbox.skopeo(['inspect', '--tls-verify=false', remote(ref)], { allowFailure: true });
      assert.notEqual(res.code, 0, `inspect ${ref} should fail after delete`);
      assert.match(res.stderr, /manifest unknown/);
    }
    const listed = JSON.parse((await sandbox.skopeo(['list-tags', '--tls-verify=false', remote('interop/delete')])).stdout) as {
      Tags: string[];
    };
    assert.deepEqual(listed.Tags, []);
  });

  it('copy --format v2s2 stores a Docker schema 2 manifest that round-trips byte-identical with the same layers', async () => {
    const { dir, image } = await newImage('v2s2');
    const digestFile = sandbox.path('v2s2.digest');
    await pushLayout(dir, 'src', 'interop/docker:v1', ['--format', 'v2s2', '--digestfile', digestFile]);
    const pushedDigest = readFileSync(digestFile, 'utf8').trim();

    const raw = await inspect('interop/docker:v1', ['--raw']);
    assert.equal(sha256(raw), pushedDigest);
    const manifest = JSON.parse(raw) as { mediaType: string; config: { digest: string }; layers: { digest: string }[] };
    assert.equal(manifest.mediaType, DOCKER_MANIFEST);
    assert.equal(manifest.config.digest, image.config.digest);
    assert.deepEqual(
      manifest.layers.map((l) => l.digest),
      image.layers.map((l) => l.digest),
    );
    const res = await client.fetch('/v2/interop/docker/manifests/v1', { method: 'HEAD', headers: { accept: DOCKER_MANIFEST } });
    assert.equal(res.headers.get('content-type'), DOCKER_MANIFEST);

    // Out to a dir: layout (which keeps the manifest as is) and back in under another name.
    const out = sandbox.path('out', 'v2s2');
    await sandbox.skopeo(['copy', '--src-tls-verify=false', remote('interop/docker:v1'), `dir:${out}`]);
    assert.equal(readFileSync(path.join(out, 'manifest.json'), 'utf8'), raw);
    for (const digest of [image.config.digest, ...image.layers.map((l) => l.digest)]) {
      assert.equal(sha256(readFileSync(path.join(out, digest.replace('sha256:', '')))), digest);
    }
    await sandbox.skopeo(['copy', '--dest-tls-verify=false', `dir:${out}`, remote('interop/docker-again:v1')]);
    assert.equal((JSON.parse(await inspect('interop/docker-again:v1')) as { Digest: string }).Digest, pushedDigest);
  });

  it('copy --all --format v2s2 stores a Docker manifest list whose children pull back byte-identical', async () => {
    const dir = sandbox.path('layouts', 'docker-list');
    const platforms = [
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux' },
    ];
    const { images } = await createLayoutIndex(dir, 'src', platforms, [100 * KB, 200 * KB, 100 * KB]);
    const digestFile = sandbox.path('docker-list.digest');
    await pushLayout(dir, 'src', 'interop/docker-list:v1', ['--all', '--format', 'v2s2', '--digestfile', digestFile]);

    const raw = await inspect('interop/docker-list:v1', ['--raw']);
    assert.equal(sha256(raw), readFileSync(digestFile, 'utf8').trim());
    const list = JSON.parse(raw) as {
      mediaType: string;
      manifests: { mediaType: string; digest: string; platform: { architecture: string } }[];
    };
    assert.equal(list.mediaType, DOCKER_LIST);
    assert.deepEqual(
      list.manifests.map((m) => [m.mediaType, m.platform.architecture]),
      [
        [DOCKER_MANIFEST, 'amd64'],
        [DOCKER_MANIFEST, 'arm64'],
      ],
    );
    // Out and back in under another name with --preserve-digests: nothing may change.
    await sandbox.skopeo([
      'copy',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      remote('interop/docker-list:v1'),
      remote('interop/docker-list-copy:v1'),
    ]);
    assert.equal(await inspect('interop/docker-list-copy:v1', ['--raw']), raw);
    for (const [i, child] of list.manifests.entries()) {
      const childRaw = await inspect(`interop/docker-list-copy@${child.digest}`, ['--raw']);
      assert.equal(sha256(childRaw), child.digest);
      assert.equal((JSON.parse(childRaw) as { config: { digest: string } }).config.digest, images[i]!.config.digest);
    }
  });

  it('zstd-compressed OCI layers (--dest-compress-format zstd) are stored and served as pushed', async () => {
    const { dir, image } = await newImage('zstd', [300 * KB, 300 * KB, 300 * KB]);
    const digestFile = sandbox.path('zstd.digest');
    await pushLayout(dir, 'src', 'interop/zstd:v1', ['--dest-compress-format', 'zstd', '--digestfile', digestFile]);
    const raw = await inspect('interop/zstd:v1', ['--raw']);
    assert.equal(sha256(raw), readFileSync(digestFile, 'utf8').trim());
    const manifest = JSON.parse(raw) as { config: { digest: string }; layers: { mediaType: string; digest: string }[] };
    assert.equal(manifest.config.digest, image.config.digest);
    assert.deepEqual(
      manifest.layers.map((l) => l.mediaType),
      image.layers.map(() => 'application/vnd.oci.image.layer.v1.tar+zstd'),
    );
    const out = sandbox.path('out', 'zstd');
    await pullLayout('interop/zstd:v1', out, 'pulled', ['--preserve-digests']);
    assert.equal(taggedDescriptor(out, 'pulled').digest, sha256(raw));
    for (const layer of manifest.layers) assert.equal(layoutBlobs(out).get(layer.digest), layer.digest);
  });

  it('an OCI artifact (artifactType, empty config, zero-byte layer) round-trips unchanged', async () => {
    const dir = sandbox.path('layouts', 'artifact');
    const artifact = createLayoutArtifact(dir, 'src', 'application/vnd.example.berth.test', [
      { mediaType: 'application/vnd.example.empty-file', data: Buffer.alloc(0) },
      { mediaType: 'application/vnd.example.notes', data: Buffer.from('release notes\n') },
    ]);
    await pushLayout(dir, 'src', 'interop/artifact:v1');
    assert.equal(await inspect('interop/artifact:v1', ['--raw']), readBlob(dir, artifact.manifest.digest).toString());
    const out = sandbox.path('out', 'artifact');
    await pullLayout('interop/artifact:v1', out, 'pulled');
    assert.equal(taggedDescriptor(out, 'pulled').digest, artifact.manifest.digest);
    assertSameBlobs(
      dir,
      out,
      [artifact.manifest, artifact.config, ...artifact.layers].map((d) => d.digest),
    );
  });

  it('pushing an image that is already there uploads nothing: every blob HEAD answers 200', async () => {
    const { dir, image } = await newImage('repush', [100 * KB, 100 * KB, 100 * KB]);
    await pushLayout(dir, 'src', 'interop/repush:v1');
    const mark = loggedRequests(berth.output()).length;
    await pushLayout(dir, 'src', 'interop/repush:v2');
    await waitForRequest(berth, mark, (r) => r.method === 'PUT' && r.url === '/v2/interop/repush/manifests/v2');

    const requests = requestsSince(berth.output(), mark);
    assert.deepEqual(
      requests.filter((r) => r.url.includes('/blobs/uploads/')),
      [],
    );
    for (const digest of [image.config.digest, ...image.layers.map((l) => l.digest)]) {
      assert.ok(
        requests.some((r) => r.method === 'HEAD' && r.url === `/v2/interop/repush/blobs/${digest}` && r.status === 200),
        `HEAD ${digest} answered 200`,
      );
    }
    assert.equal((JSON.parse(await inspect('interop/repush:v2')) as { Digest: string }).Digest, image.manifest.digest);
  });

  it('inspect of an unknown repository or tag fails with the spec error skopeo shows', async () => {
    const { dir } = await newImage('known', [10 * KB, 10 * KB, 10 * KB]);
    await pushLayout(dir, 'src', 'interop/known:v1');
    for (const [ref, expected] of [
      ['interop/never-pushed:v1', /manifest unknown|name unknown/],
      ['interop/known:missing', /manifest unknown/],
    ] as const) {
      const res = await sandbox.skopeo(['inspect', '--tls-verify=false', remote(ref)], { allowFailure: true });
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, expected);
    }
  });

  it('pushing another image to an existing tag moves the tag; the old image stays pullable by digest', async () => {
    const repo = 'interop/retag/my_app.v2-x';
    const first = await newImage('retag-1', [50 * KB, 50 * KB, 50 * KB]);
    const second = await newImage('retag-2', [60 * KB, 60 * KB, 60 * KB]);
    await pushLayout(first.dir, 'src', `${repo}:stable`);
    await pushLayout(second.dir, 'src', `${repo}:stable`);

    assert.equal((JSON.parse(await inspect(`${repo}:stable`)) as { Digest: string }).Digest, second.image.manifest.digest);
    const out = sandbox.path('out', 'retag-old');
    await pullLayout(`${repo}@${first.image.manifest.digest}`, out, 'old');
    assert.equal(taggedDescriptor(out, 'old').digest, first.image.manifest.digest);
    assertSameBlobs(
      first.dir,
      out,
      [first.image.manifest, first.image.config, ...first.image.layers].map((d) => d.digest),
    );
  });

  it('streams a ~20 MB layer with POST → PATCH → PUT and pulls it back intact', async () => {
    const { dir, image } = await newImage('large', [20 * MB]);
    const layer = image.layers[0]!;
    assert.ok(layer.size > 20 * MB, `layer is ${layer.size} bytes`);
    const mark = loggedRequests(berth.output()).length;
    await pushLayout(dir, 'src', 'interop/large:v1');

    const upload = `/v2/interop/large/blobs/uploads/`;
    const put = await waitForRequest(berth, mark, (r) => r.method === 'PUT' && r.url.includes(encodeURIComponent(layer.digest)));
    assert.equal(put.status, 201);
    const session = put.url.slice(upload.length, put.url.indexOf('?'));
    const patches = requestsSince(berth.output(), mark).filter((r) => r.method === 'PATCH' && r.url === `${upload}${session}`);
    assert.ok(patches.length >= 1, 'the layer was sent with PATCH');
    assert.ok(patches.every((r) => r.status === 202));

    const out = sandbox.path('out', 'large');
    await pullLayout('interop/large:v1', out, 'pulled');
    assert.equal(taggedDescriptor(out, 'pulled').digest, image.manifest.digest);
    assertSameBlobs(dir, out, [image.manifest.digest, image.config.digest, layer.digest]);
  });

  it('a second push of the same image to another repository mounts the layers (POST ?mount= → 201) instead of uploading', async () => {
    const { dir, image } = await newImage('mount');
    await pushLayout(dir, 'src', 'interop/mount-a:v1');
    const mark = loggedRequests(berth.output()).length;
    await pushLayout(dir, 'src', 'interop/mount-b:v1');
    await waitForRequest(berth, mark, (r) => r.method === 'PUT' && r.url === '/v2/interop/mount-b/manifests/v1');

    const requests = requestsSince(berth.output(), mark);
    for (const layer of image.layers) {
      const mount = requests.find(
        (r) => r.method === 'POST' && r.url.startsWith('/v2/interop/mount-b/blobs/uploads/?') && mountedDigest(r.url) === layer.digest,
      );
      assert.ok(mount, `layer ${layer.digest} was mounted`);
      assert.equal(mount.status, 201);
      assert.ok(!requests.some((r) => r.method === 'PUT' && r.url.includes(encodeURIComponent(layer.digest))), 'and not uploaded');
    }
    for (const repo of ['mount-a', 'mount-b']) {
      const out = sandbox.path('out', repo);
      await pullLayout(`interop/${repo}:v1`, out, 'pulled');
      assertSameBlobs(
        dir,
        out,
        [image.manifest, image.config, ...image.layers].map((d) => d.digest),
      );
    }
  });
});

/** `expected` blobs exist in both layouts, each file hashing to its name, and `out` holds no others. */
function assertSameBlobs(src: string, out: string, expected: string[]): void {
  const srcBlobs = layoutBlobs(src);
  const outBlobs = layoutBlobs(out);
  assert.deepEqual([...outBlobs.keys()].sort(), [...new Set(expected)].sort());
  for (const digest of expected) {
    assert.equal(srcBlobs.get(digest), digest, `source blob ${digest}`);
    assert.equal(outBlobs.get(digest), digest, `pulled blob ${digest} has the same bytes`);
  }
}

function mountedDigest(url: string): string | null {
  return new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('mount');
}
