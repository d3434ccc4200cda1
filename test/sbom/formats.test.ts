import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { render } from '../../src/sbom/formats.js';
import { matchable } from '../../src/sbom/inventory.js';
import { purlsOfDocument } from '../../src/sbom/recognise.js';
import { inventoryOf, layerOf } from './support.js';

const subject = { repository: 'team/app', digest: `sha256:${'a'.repeat(64)}`, registryHost: 'registry.example.com' };

describe('SBOM documents', () => {
  it('SPDX and CycloneDX are deterministic apart from the creation time and the document ids', async () => {
    const inv = await inventoryOf([
      await layerOf([
        { path: 'etc/os-release', data: readFileSync('/etc/os-release') },
        { path: 'var/lib/dpkg/status', data: readFileSync('/var/lib/dpkg/status') },
      ]),
    ]);
    const again = await inventoryOf([
      await layerOf([
        { path: 'var/lib/dpkg/status', data: readFileSync('/var/lib/dpkg/status') },
        { path: 'etc/os-release', data: readFileSync('/etc/os-release') },
      ]),
    ]);
    const at = new Date('2026-01-02T03:04:05Z');
    for (const format of ['spdx', 'cyclonedx'] as const) {
      const strip = (b: Buffer) =>
        b
          .toString()
          .replace(/"documentNamespace":"[^"]+"/, '')
          .replace(/"serialNumber":"[^"]+"/, '');
      assert.equal(strip(render(format, inv, subject, at)), strip(render(format, again, subject, at)), format);
    }
  });

  it('the package list read back from either document is the one the inventory gives the matcher (Debian by source package and version)', async () => {
    const inv = await inventoryOf([
      await layerOf([
        { path: 'etc/os-release', data: 'ID=debian\nVERSION_ID="12"\n' },
        {
          path: 'var/lib/dpkg/status',
          data: 'Package: libssl3\nStatus: install ok installed\nVersion: 3.0.15-1~deb12u1+b1\nSource: openssl (3.0.15-1~deb12u1)\nArchitecture: amd64\n\nPackage: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\nSource: zlib\nArchitecture: amd64\n',
        },
        { path: 'app/node_modules/@scope/pkg/package.json', data: '{"name":"@scope/pkg","version":"1.0.0"}' },
        { path: 'lib/apk/db/installed', data: 'P:libcrypto3\nV:3.1.4-r5\no:openssl\n' },
      ]),
    ]);
    const direct = matchable(inv.packages);
    // The apk database has no Alpine os-release beside it here: its packages get no ecosystem and are not matched.
    assert.deepEqual(direct, [
      { ecosystem: 'Debian:12', name: 'openssl', version: '3.0.15-1~deb12u1', binary: 'libssl3' },
      { ecosystem: 'Debian:12', name: 'zlib', version: '1:1.2.13.dfsg-1', binary: 'zlib1g' },
      { ecosystem: 'npm', name: '@scope/pkg', version: '1.0.0' },
    ]);
    const key = (p: { ecosystem: string; name: string }) => `${p.ecosystem} ${p.name}`;
    for (const format of ['spdx', 'cyclonedx'] as const) {
      const doc = JSON.parse(render(format, inv, subject).toString()) as unknown;
      assert.deepEqual(
        matchable(purlsOfDocument(doc)).sort((a, b) => key(a).localeCompare(key(b))),
        [...direct].sort((a, b) => key(a).localeCompare(key(b))),
        format,
      );
    }
  });
});
