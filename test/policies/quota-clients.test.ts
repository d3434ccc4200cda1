import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, addProject, useAuthServer } from '../auth/support.js';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { createLayoutImage, type LayoutImage } from '../helpers/images.js';
import { getQuota, setQuota } from './quota-support.js';

/** What skopeo prints when a push is over the project's quota: Berth's own message. */
describe('a push over the quota, as skopeo prints it', () => {
  const reg = useAuthServer('basic');
  let sandbox: ClientSandbox;
  let layout: string;
  let image: LayoutImage;

  before(async () => {
    requireTools(['skopeo']);
    sandbox = ClientSandbox.create();
    layout = sandbox.path('layout');
    image = await createLayoutImage(layout, 'src', [8192]);
    await addProject(reg.server, 'tight');
  });
  after(() => sandbox?.destroy());

  const copy = (repository: string) =>
    sandbox.skopeo(
      [
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        `admin:${ADMIN_PASSWORD}`,
        `oci:${layout}:src`,
        `docker://${registryHost(reg.url)}/${repository}:v1`,
      ],
      {
        allowFailure: true,
        timeoutMs: 60_000,
      },
    );

  it('skopeo copy into a project without room fails with "denied: storage quota of project … exceeded: adding …"; with room it succeeds and is counted', async () => {
    await setQuota(reg.server, 'tight', 2000);
    const refused = await copy('tight/app');
    assert.notEqual(refused.code, 0);
    // skopeo pushes the layer first: it is what does not fit.
    const layer = image.layers[0]!.size;
    const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
    const expected = `denied: storage quota of project tight exceeded: adding ${layer} bytes (${kib(layer)}) to the current usage of 0 bytes would exceed the limit of 2000 bytes (${kib(2000)}) (policy: quota)`;
    assert.ok(refused.stderr.includes(expected), `skopeo printed:\n${refused.stderr}\nexpected it to contain:\n${expected}`);
    assert.equal((await getQuota(reg.server, 'tight')).used, 0, 'nothing of the refused push counts');

    await setQuota(reg.server, 'tight', '1MiB');
    const pushed = await copy('tight/app');
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal((await getQuota(reg.server, 'tight')).used, image.config.size + layer + image.manifest.size);
  });
});
