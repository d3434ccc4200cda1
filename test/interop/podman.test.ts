import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { createLayoutImage, createLayoutIndex, readBlob } from '../helpers/images.js';
import { DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, RegistryClient, sha256 } from '../helpers/registry-client.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { loggedRequests, requestsSince, waitForRequest } from './request-log.js';

const KB = 1024;

/** What `podman image inspect` says about an image in one store. */
interface LocalImage {
  id: string;
  digest: string;
  diffIds: string[];
}

describe('podman and buildah against berth serve', () => {
  let berth: BerthProcess;
  let dataDir: string;
  let sandbox: ClientSandbox;
  let host: string;
  let client: RegistryClient;

  before(async () => {
    requireTools(['podman', 'buildah', 'skopeo']);
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

  async function inspectLocal(ref: string, store: string): Promise<LocalImage> {
    const format = '{"id":"{{.Id}}","digest":"{{.Digest}}","diffIds":{{json .RootFS.Layers}}}';
    const { stdout } = await sandbox.podman(['image', 'inspect', '--format', format, ref], { store });
    return JSON.parse(stdout) as LocalImage;
  }

  /** Pulls `ref` from Berth into an empty store and describes what landed there. */
  async function pullIntoFreshStore(ref: string, store: string): Promise<LocalImage> {
    await sandbox.podman(['pull', '--tls-verify=false', `${host}/${ref}`], { store });
    return inspectLocal(`${host}/${ref}`, store);
  }

  /** The manifest Berth serves for `repo:reference`, checked against its digest. */
  async function servedManifest(repo: string, reference: string, accept: string) {
    const res = await client.fetch(`/v2/${repo}/manifests/${reference}`, { headers: { accept } });
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.headers.get('docker-content-digest'), sha256(body));
    return {
      digest: sha256(body),
      mediaType: res.headers.get('content-type'),
      manifest: JSON.parse(body.toString()) as {
        config: { digest: string };
        layers: unknown[];
        manifests?: { digest: string; platform?: unknown }[];
      },
    };
  }

  it('buildah builds from scratch and pushes; podman pulls into an empty store with the same image id, digest and layers', async () => {
    const payload = sandbox.path('build', 'payload.bin');
    writeFileSync(payload, randomBytes(512 * KB));
    const container = (await sandbox.buildah(['from', 'scratch'])).stdout.trim();
    await sandbox.buildah(['copy', container, payload, '/payload.bin']);
    await sandbox.buildah(['config', '--label', 'org.example.test=buildah', container]);
    const builtId = (await sandbox.buildah(['commit', '--quiet', container, 'localhost/interop/built:v1'])).stdout.trim();
    assert.match(builtId, /^[0-9a-f]{64}$/);
    const built = await inspectLocal('localhost/interop/built:v1', 'default');

    const digestFile = sandbox.path('build', 'pushed.digest');
    await sandbox.buildah([
      'push',
      '--tls-verify=false',
      '--digestfile',
      digestFile,
      'localhost/interop/built:v1',
      `docker://${host}/interop/built:v1`,
    ]);
    const pushedDigest = readFileSync(digestFile, 'utf8').trim();

    const served = await servedManifest('interop/built', 'v1', OCI_MANIFEST);
    assert.equal(served.digest, pushedDigest);
    assert.equal(served.manifest.config.digest, `sha256:${builtId}`);

    const pulled = await pullIntoFreshStore('interop/built:v1', 'fresh-buildah');
    assert.equal(pulled.id, builtId);
    assert.equal(pulled.digest, pushedDigest);
    assert.deepEqual(pulled.diffIds, built.diffIds);
  });

  it('podman pushes a 3-layer image (PATCH-streamed) and a fresh podman pull by digest gets the same image id and layers', async () => {
    const layout = sandbox.path('layouts', 'podman');
    const image = await createLayoutImage(layout, 'src', [300 * KB, 1024 * KB, 600 * KB]);
    const config = JSON.parse(readBlob(layout, image.config.digest).toString()) as { rootfs: { diff_ids: string[] } };
    const loaded = (await sandbox.podman(['pull', '--quiet', `oci:${layout}:src`])).stdout.trim();
    assert.equal(`sha256:${loaded}`, image.config.digest, 'podman keeps the config, so the image id is its digest');

    const mark = loggedRequests(berth.output()).length;
    const digestFile = sandbox.path('podman.digest');
    await sandbox.podman(['push', '--tls-verify=false', '--digestfile', digestFile, loaded, `${host}/interop/podman:v1`]);
    const pushedDigest = readFileSync(digestFile, 'utf8').trim();
    await waitForRequest(berth, mark, (r) => r.method === 'PUT' && r.url === '/v2/interop/podman/manifests/v1');
    const requests = requestsSince(berth.output(), mark);
    const patches = requests.filter((r) => r.method === 'PATCH' && r.url.startsWith('/v2/interop/podman/blobs/uploads/'));
    assert.equal(patches.length, 4, 'three layers and the config, each streamed with one PATCH');
    assert.ok(patches.every((r) => r.status === 202));

    const served = await servedManifest('interop/podman', 'v1', OCI_MANIFEST);
    assert.equal(served.digest, pushedDigest);
    assert.equal(served.manifest.config.digest, image.config.digest);
    assert.equal(served.manifest.layers.length, 3);

    const pulled = await pullIntoFreshStore(`interop/podman@${pushedDigest}`, 'fresh-podman');
    assert.equal(`sha256:${pulled.id}`, image.config.digest);
    assert.equal(pulled.digest, pushedDigest);
    assert.deepEqual(pulled.diffIds, config.rootfs.diff_ids);
  });

  it('podman push --format v2s2 stores a Docker schema 2 manifest that podman pulls back as the same image', async () => {
    const layout = sandbox.path('layouts', 'podman-v2s2');
    const image = await createLayoutImage(layout, 'src', [200 * KB, 400 * KB, 300 * KB]);
    const loaded = (await sandbox.podman(['pull', '--quiet', `oci:${layout}:src`])).stdout.trim();
    const digestFile = sandbox.path('podman-v2s2.digest');
    await sandbox.podman([
      'push',
      '--tls-verify=false',
      '--format',
      'v2s2',
      '--digestfile',
      digestFile,
      loaded,
      `${host}/interop/podman-docker:v1`,
    ]);
    const pushedDigest = readFileSync(digestFile, 'utf8').trim();

    const served = await servedManifest('interop/podman-docker', 'v1', DOCKER_MANIFEST);
    assert.equal(served.mediaType, DOCKER_MANIFEST);
    assert.equal(served.digest, pushedDigest);

    const pulled = await pullIntoFreshStore('interop/podman-docker:v1', 'fresh-v2s2');
    assert.equal(pulled.digest, pushedDigest);
    assert.equal(pulled.diffIds.length, image.layers.length);
    // The Docker config differs from the OCI one only in media type, not content: same id.
    assert.equal(`sha256:${pulled.id}`, image.config.digest);
  });

  it('podman pull --platform linux/arm64 of a 2-platform index takes the arm64 child', async () => {
    const layout = sandbox.path('layouts', 'podman-index');
    const platforms = [
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux' },
    ];
    const { index, images } = await createLayoutIndex(layout, 'src', platforms, [100 * KB, 200 * KB, 150 * KB]);
    await sandbox.skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${layout}:src`, `docker://${host}/interop/multi:v1`]);
    const arm64 = images[1]!;

    await sandbox.podman(['pull', '--tls-verify=false', '--platform', 'linux/arm64', `${host}/interop/multi:v1`], { store: 'fresh-arm64' });
    const format = '{"id":"{{.Id}}","arch":"{{.Architecture}}","repoDigests":{{json .RepoDigests}}}';
    const { stdout } = await sandbox.podman(['image', 'inspect', '--format', format, `${host}/interop/multi:v1`], { store: 'fresh-arm64' });
    const pulled = JSON.parse(stdout) as { id: string; arch: string; repoDigests: string[] };
    assert.equal(pulled.arch, 'arm64');
    assert.equal(`sha256:${pulled.id}`, arm64.config.digest);
    assert.deepEqual(
      [...pulled.repoDigests].sort(),
      [`${host}/interop/multi@${index.digest}`, `${host}/interop/multi@${arm64.manifest.digest}`].sort(),
    );
  });

  it('podman manifest create/add/push --all stores an OCI index whose child is the added image', async () => {
    const layout = sandbox.path('layouts', 'podman-manifest');
    const image = await createLayoutImage(layout, 'src', [150 * KB, 150 * KB, 150 * KB]);
    await sandbox.skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:src`, `docker://${host}/interop/single:v1`]);
    await sandbox.podman(['manifest', 'create', 'localhost/interop/list:v1']);
    await sandbox.podman(['manifest', 'add', '--tls-verify=false', 'localhost/interop/list:v1', `docker://${host}/interop/single:v1`]);
    const digestFile = sandbox.path('podman-list.digest');
    await sandbox.podman([
      'manifest',
      'push',
      '--all',
      '--tls-verify=false',
      '--digestfile',
      digestFile,
      'localhost/interop/list:v1',
      `docker://${host}/interop/list:v1`,
    ]);

    const served = await servedManifest('interop/list', 'v1', OCI_INDEX);
    assert.equal(served.mediaType, OCI_INDEX);
    assert.equal(served.digest, readFileSync(digestFile, 'utf8').trim());
    assert.deepEqual(
      served.manifest.manifests?.map((m) => [m.digest, m.platform]),
      [[image.manifest.digest, { architecture: 'amd64', os: 'linux' }]],
    );
  });

  it('podman search lists the repositories from the catalog', async () => {
    const layout = sandbox.path('layouts', 'podman-search');
    await createLayoutImage(layout, 'src', [50 * KB, 50 * KB, 50 * KB]);
    const repos = ['interop/search/one', 'interop/search/two'];
    for (const repo of repos) await sandbox.skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:src`, `docker://${host}/${repo}:v1`]);
    const { stdout } = await sandbox.podman(['search', '--tls-verify=false', '--format', '{{.Name}}', `${host}/interop/search`]);
    const names = stdout.trim().split('\n');
    for (const repo of repos) assert.ok(names.includes(`${host}/${repo}`), `${repo} in ${stdout}`);
  });
});
