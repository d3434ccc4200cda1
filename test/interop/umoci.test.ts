import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { layoutBlobs, taggedDescriptor } from '../helpers/images.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';

const KB = 1024;

/**
 * An image built by a different tool than our own layout writer — umoci's tar writer,
 * with directories, several files and an edited config — goes through Berth and comes
 * back out with the same digests and, once unpacked, the same files.
 */
describe('umoci-built image through berth serve', () => {
  let berth: BerthProcess;
  let dataDir: string;
  let sandbox: ClientSandbox;
  let host: string;

  before(async () => {
    requireTools(['umoci', 'skopeo']);
    dataDir = tempDir();
    berth = await startBerthProcess({ BERTH_DATA_DIR: dataDir });
    sandbox = ClientSandbox.create();
    host = registryHost(berth.url);
  });
  after(async () => {
    await berth?.stop();
    sandbox?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('a 3-layer umoci image copied in and out with skopeo keeps its digests and unpacks to the same files', async () => {
    const files: Record<string, Buffer> = {
      'data/big.bin': randomBytes(900 * KB),
      'data/nested/small.bin': randomBytes(40 * KB),
      'etc/greeting': Buffer.from('hello from berth\n'),
      'opt/tool/blob.bin': randomBytes(300 * KB),
    };
    const source = sandbox.path('umoci', 'src');
    for (const [name, bytes] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(source, name)), { recursive: true });
      writeFileSync(path.join(source, name), bytes);
    }
    const layout = sandbox.path('umoci', 'layout');
    await sandbox.umoci(['init', '--layout', layout]);
    await sandbox.umoci(['new', '--image', `${layout}:v1`]);
    for (const top of ['data', 'etc', 'opt']) {
      await sandbox.umoci(['insert', '--image', `${layout}:v1`, path.join(source, top), `/${top}`]);
    }
    await sandbox.umoci(['config', '--image', `${layout}:v1`, '--config.cmd', '/opt/tool/run', '--config.label', 'built-by=umoci']);
    const built = taggedDescriptor(layout, 'v1');

    await sandbox.skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${host}/interop/umoci:v1`]);
    const pulled = sandbox.path('umoci', 'pulled');
    await sandbox.skopeo(['copy', '--src-tls-verify=false', `docker://${host}/interop/umoci:v1`, `oci:${pulled}:v1`]);

    assert.equal(taggedDescriptor(pulled, 'v1').digest, built.digest);
    // umoci keeps superseded manifests and configs in its layout; the pulled one has only the image.
    const sourceBlobs = layoutBlobs(layout);
    const pulledBlobs = layoutBlobs(pulled);
    assert.equal(pulledBlobs.size, 5, 'manifest, config and three layers');
    for (const [digest, actual] of pulledBlobs) {
      assert.equal(actual, digest, `pulled blob ${digest} matches its digest`);
      assert.equal(sourceBlobs.get(digest), digest, `pulled blob ${digest} is one umoci wrote`);
    }

    const bundle = sandbox.path('umoci', 'bundle');
    await sandbox.umoci(['unpack', '--image', `${pulled}:v1`, bundle]);
    for (const [name, bytes] of Object.entries(files)) {
      assert.deepEqual(readFileSync(path.join(bundle, 'rootfs', name)), bytes, `${name} unpacked intact`);
    }
    const runtime = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { process: { args: string[] } };
    assert.deepEqual(runtime.process.args, ['/opt/tool/run']);
  });
});
