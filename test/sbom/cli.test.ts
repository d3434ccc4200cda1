import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metadataEnvOf, runBerth } from '../helpers/cli.js';
import { adminAuth, authConfig } from '../auth/support.js';
import { jsonBlob, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, RegistryClient, type Image } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { layerOf } from './support.js';
import { createHash } from 'node:crypto';

async function alpineImage(pkg: string): Promise<Image> {
  const data = await layerOf([
    { path: 'etc/os-release', data: 'ID=alpine\nVERSION_ID=3.19.1\n' },
    { path: 'lib/apk/db/installed', data: `P:${pkg}\nV:1.0-r0\no:${pkg}\nL:MIT\n` },
  ]);
  const layer = { data, size: data.length, digest: `sha256:${createHash('sha256').update(data).digest('hex')}` };
  const config = jsonBlob({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers: [{ mediaType: OCI_LAYER, digest: layer.digest, size: layer.size }],
  });
  return { config, layers: [layer], manifest, mediaType: OCI_MANIFEST };
}

describe('npx berth sbom generate', () => {
  const reg = useServer();

  const berth = (args: string[]) => runBerth(args, metadataEnvOf(reg.server.dataDir, reg.server.config.metadata));

  it('generates for every tagged image of a project, reuses them the second time; the referrers are served by the running server', async () => {
    const a = await alpineImage('musl');
    const b = await alpineImage('zlib');
    const other = await alpineImage('curl');
    await reg.client.pushImage('team/a', 'v1', a);
    await reg.client.pushImage('team/b', 'v1', b);
    await reg.client.pushImage('team/b', 'v1-alias', b);
    await reg.client.pushImage('other/c', 'v1', other);
    const first = await berth(['sbom', 'generate', '--project', 'team', '--format', 'cyclonedx']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      new RegExp(
        `^team/a@${a.manifest.digest}  generated  cyclonedx:generated  1 packages\nteam/b@${b.manifest.digest}  generated  cyclonedx:generated  1 packages\n2 images: 2 generated, 0 reused, 0 failed\n$`,
      ),
    );
    const referrers = (await (await fetch(`${reg.url}/v2/team/b/referrers/${b.manifest.digest}`)).json()) as {
      manifests: { artifactType: string }[];
    };
    assert.deepEqual(
      referrers.manifests.map((m) => m.artifactType),
      ['application/vnd.cyclonedx+json'],
    );
    assert.deepEqual(
      ((await (await fetch(`${reg.url}/v2/other/c/referrers/${other.manifest.digest}`)).json()) as { manifests: unknown[] }).manifests,
      [],
    );
    const second = await berth(['sbom', 'generate', '--project', 'team']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /\n2 images: 0 generated, 2 reused, 0 failed\n$/);
    const bad = await berth(['sbom', 'generate', '--format', 'xml']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--format xml: spdx or cyclonedx/);
  });

  it("--queue hands the images without an SBOM to the running server's supply-chain job, which attaches them", async () => {
    const image = await alpineImage('busybox');
    await reg.client.pushImage('queued/app', 'v1', image);
    const queued = await berth(['sbom', 'generate', '--queue', '--project', 'queued', '--json']);
    assert.equal(queued.code, 0, queued.stderr);
    assert.deepEqual(JSON.parse(queued.stdout), { manifests: 1, queued: 1 });
    const deadline = Date.now() + 20_000;
    let types: string[] = [];
    while (Date.now() < deadline && types.length < 2) {
      types = (
        (await (await fetch(`${reg.url}/v2/queued/app/referrers/${image.manifest.digest}`)).json()) as {
          manifests: { artifactType: string }[];
        }
      ).manifests
        .map((m) => m.artifactType)
        .sort();
      if (types.length < 2) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.deepEqual(types, ['application/spdx+json', 'application/vnd.cyclonedx+json']);
    const again = await berth(['sbom', 'generate', '--queue', '--project', 'queued', '--json']);
    assert.deepEqual(JSON.parse(again.stdout), { manifests: 1, queued: 0 }, 'it has one now');
    const bad = await berth(['sbom', 'generate', '--scan']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--scan goes with --queue/);
  });
});

describe('npx berth sbom generate with auth on', () => {
  const reg = useServer(authConfig('basic'));

  it('attaches the SBOMs as the system (no project role is asked of the CLI)', async () => {
    const image = await alpineImage('musl');
    await new RegistryClient(reg.url, { authorization: adminAuth() }).pushImage('team/a', 'v1', image);
    const run = await runBerth(['sbom', 'generate', '--project', 'team'], {
      BERTH_AUTH_MODE: 'basic',
      ...metadataEnvOf(reg.server.dataDir, reg.server.config.metadata),
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /1 images: 1 generated, 0 reused, 0 failed\n$/);
  });
});
