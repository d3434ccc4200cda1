import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { ClientSandbox, registryHost, requireTools, runTool } from '../helpers/clients.js';
import { OCI_MANIFEST, RegistryClient, sha256 } from '../helpers/registry-client.js';
import { ROOT, startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';

/**
 * The README's offline first push, run as written: every ```sh block of README.md whose first
 * line starts with "# offline", from the checkout's directory, against `berth serve` (its
 * localhost:5000 replaced by the test server's address). The clients run in a sandbox: their
 * own HOME, and containers.conf / storage.conf pointing podman and buildah at a private vfs
 * store, so the README's plain `podman pull` and `buildah` commands touch no system store.
 */
function offlineBlocks(): string[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/```sh\n(# offline[^\n]*\n[\s\S]*?)```/g)].map((m) => m[1]!);
}

describe('README: the first push works offline (examples/first-push.sh, buildah from scratch)', () => {
  let berth: BerthProcess;
  let dataDir: string;
  let sandbox: ClientSandbox;
  let host: string;
  let client: RegistryClient;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    requireTools(['skopeo', 'podman', 'buildah', 'tar', 'gzip', 'sha256sum']);
    dataDir = tempDir();
    berth = await startBerthProcess({ BERTH_DATA_DIR: dataDir });
    sandbox = ClientSandbox.create();
    host = registryHost(berth.url);
    client = new RegistryClient(berth.url);
    const storageConf = sandbox.path('storage.conf');
    writeFileSync(
      storageConf,
      `[storage]\ndriver = "vfs"\nrunroot = "${sandbox.path('rr', 'readme')}"\ngraphroot = "${sandbox.path('stores', 'readme')}"\n`,
    );
    const containersConf = sandbox.path('containers.conf');
    // No container ever runs: cgroupfs and file events avoid needing systemd/journald.
    writeFileSync(containersConf, '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n');
    env = { ...sandbox.env, CONTAINERS_STORAGE_CONF: storageConf, CONTAINERS_CONF: containersConf };
  });
  after(async () => {
    await berth?.stop();
    sandbox?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Runs a README block with bash (-e: the first failing command fails the test) in the checkout. */
  async function runBlock(block: string): Promise<string> {
    const script = `set -euo pipefail\ncd ${JSON.stringify(ROOT)}\n${block.replaceAll('localhost:5000', host)}`;
    return (await runTool('bash', ['-c', script], { env, timeoutMs: 180_000 })).stdout;
  }

  it('the README has the two offline blocks: the example script and buildah', () => {
    const blocks = offlineBlocks();
    assert.equal(blocks.length, 2, blocks.join('\n---\n'));
    assert.match(blocks[0]!, /bash examples\/first-push\.sh localhost:5000\/library\/hello:v1/);
    assert.match(blocks[1]!, /buildah from scratch/);
    for (const block of blocks) assert.doesNotMatch(block, /docker\.io|quay\.io|ghcr\.io/, 'offline blocks pull nothing from the internet');
  });

  it('examples/first-push.sh pushes a one-file image; podman pulls it back with the digest Berth serves; hello.txt is in its layer', async () => {
    const out = await runBlock(offlineBlocks()[0]!);
    assert.match(out, /"Name": "[^"]+\/library\/hello"/, 'skopeo inspect ran');
    assert.match(out, /\{"name":"library\/hello","tags":\["v1"\]\}/, 'curl shows the tag');

    const res = await client.fetch('/v2/library/hello/manifests/v1', { headers: { accept: OCI_MANIFEST } });
    assert.equal(res.status, 200);
    const manifestBytes = Buffer.from(await res.arrayBuffer());
    const manifest = JSON.parse(manifestBytes.toString()) as { layers: { digest: string }[] };
    const layer = await client.fetch(`/v2/library/hello/blobs/${manifest.layers[0]!.digest}`);
    const tar = gunzipSync(Buffer.from(await layer.arrayBuffer()));
    assert.equal(tar.subarray(0, 9).toString(), 'hello.txt', 'the layer holds hello.txt');
    assert.match(tar.toString('latin1'), /hello from berth\n/);

    const pulled = await runTool('podman', ['image', 'inspect', '--format', '{{.Digest}}', `${host}/library/hello:v1`], { env });
    assert.equal(pulled.stdout.trim(), sha256(manifestBytes), "podman's copy has the manifest digest Berth serves");
  });

  it('the buildah block builds from scratch and pushes; the image is served with the README inside', async () => {
    await runBlock(offlineBlocks()[1]!);
    const res = await client.fetch('/v2/library/hello/tags/list');
    assert.deepEqual(((await res.json()) as { tags: string[] }).tags.sort(), ['v1', 'v2']);
    const manifest = await client.fetch('/v2/library/hello/manifests/v2', {
      headers: { accept: `${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json` },
    });
    assert.equal(manifest.status, 200);
    const { layers } = (await manifest.json()) as { layers: { digest: string; mediaType: string }[] };
    assert.equal(layers.length, 1);
    const blob = Buffer.from(await (await client.fetch(`/v2/library/hello/blobs/${layers[0]!.digest}`)).arrayBuffer());
    const tar = layers[0]!.mediaType.endsWith('gzip') ? gunzipSync(blob) : blob;
    assert.ok(tar.includes(readFileSync(path.join(ROOT, 'README.md')).subarray(0, 200)), 'the layer holds README.md');
  });
});
