import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { createLayoutImage, layoutBlobs, readBlob, taggedDescriptor } from '../helpers/images.js';
import { RegistryClient } from '../helpers/registry-client.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { loggedRequests, requestsSince, waitForRequest } from './request-log.js';

const KB = 1024;
const MB = 1024 * KB;

describe('real clients against an interrupted push and a restarted berth serve', () => {
  let berth: BerthProcess;
  let dataDir: string;
  let sandbox: ClientSandbox;

  before(async () => {
    requireTools(['skopeo', 'podman']);
    dataDir = tempDir();
    berth = await startBerthProcess({ BERTH_DATA_DIR: dataDir });
    sandbox = ClientSandbox.create();
  });
  after(async () => {
    await berth?.stop();
    sandbox?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const remote = (repoAndTag: string) => `docker://${registryHost(berth.url)}/${repoAndTag}`;

  it('a skopeo push killed mid-layer leaves nothing visible, and pushing again succeeds with intact content', async () => {
    const dir = sandbox.path('layouts', 'killed');
    const image = await createLayoutImage(dir, 'src', [60 * MB]);
    const layer = image.layers[0]!;
    const push = ['copy', '--dest-tls-verify=false', `oci:${dir}:src`, remote('interop/killed:v1')];

    const mark = loggedRequests(berth.output()).length;
    const abort = new AbortController();
    const running = sandbox.skopeo(push, { abort: abort.signal, allowFailure: true });
    await waitForRequest(berth, mark, (r) => r.method === 'POST' && r.url === '/v2/interop/killed/blobs/uploads/');
    await sleep(100); // let part of the 60 MB PATCH body reach the server, far from all of it
    abort.abort();
    const killed = await running;
    assert.equal(killed.signal, 'SIGKILL', 'skopeo was killed before it finished');
    assert.ok(!requestsSince(berth.output(), mark).some((r) => r.method === 'PUT'), 'no upload or manifest was completed');

    const client = new RegistryClient(berth.url);
    assert.equal((await client.fetch(`/v2/interop/killed/blobs/${layer.digest}`, { method: 'HEAD' })).status, 404);
    assert.equal((await client.fetch('/v2/interop/killed/manifests/v1', { method: 'HEAD' })).status, 404);

    await sandbox.skopeo(push);
    const out = sandbox.path('out', 'killed');
    await sandbox.skopeo(['copy', '--src-tls-verify=false', remote('interop/killed:v1'), `oci:${out}:pulled`]);
    assert.equal(taggedDescriptor(out, 'pulled').digest, image.manifest.digest);
    assert.equal(layoutBlobs(out).get(layer.digest), layer.digest);
  });

  it('images pushed before a restart pull intact after it from the same data directory', async () => {
    const dir = sandbox.path('layouts', 'persist');
    const image = await createLayoutImage(dir, 'src', [300 * KB, 700 * KB, 500 * KB]);
    const diffIds = (JSON.parse(readBlob(dir, image.config.digest).toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    await sandbox.skopeo(['copy', '--dest-tls-verify=false', `oci:${dir}:src`, remote('interop/persist:v1')]);

    await berth.stop();
    berth = await startBerthProcess({ BERTH_DATA_DIR: dataDir });

    const ref = `${registryHost(berth.url)}/interop/persist:v1`;
    await sandbox.podman(['pull', '--tls-verify=false', ref], { store: 'after-restart' });
    const format = '{"id":"{{.Id}}","digest":"{{.Digest}}","diffIds":{{json .RootFS.Layers}}}';
    const { stdout } = await sandbox.podman(['image', 'inspect', '--format', format, ref], { store: 'after-restart' });
    const pulled = JSON.parse(stdout) as { id: string; digest: string; diffIds: string[] };
    assert.equal(`sha256:${pulled.id}`, image.config.digest);
    assert.equal(pulled.digest, image.manifest.digest);
    assert.deepEqual(pulled.diffIds, diffIds);
  });
});
