import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { jsonBlob, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, type Blob, type Image } from '../helpers/registry-client.js';
import { tempDir } from '../helpers/server.js';
import { layerOf } from '../sbom/support.js';

export function blobOf(data: Buffer): Blob {
  return { data, size: data.length, digest: `sha256:${createHash('sha256').update(data).digest('hex')}` };
}

/** An image of `layers` with a unique config (so every call gives another manifest digest). */
export function imageOf(layers: Buffer[], architecture = 'amd64'): Image {
  const blobs = layers.map(blobOf);
  const config = jsonBlob({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers: blobs.map((b) => ({ mediaType: OCI_LAYER, digest: b.digest, size: b.size })),
  });
  return { config, layers: blobs, manifest, mediaType: OCI_MANIFEST };
}

/** A Debian 12 image whose dpkg database lists libssl3 (source openssl) at `version`. */
export async function debianImage(version = '3.0.11-1~deb12u1', architecture = 'amd64'): Promise<Image> {
  const status = [
    'Package: libssl3',
    'Status: install ok installed',
    'Priority: optional',
    'Section: libs',
    'Architecture: amd64',
    'Source: openssl',
    `Version: ${version}`,
    'Description: Secure Sockets Layer toolkit - shared libraries',
    '',
  ].join('\n');
  return imageOf(
    [
      await layerOf([
        { path: 'etc/os-release', data: 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' },
        { path: 'var/lib/dpkg/status', data: status },
      ]),
    ],
    architecture,
  );
}

/** An OSV advisory on Debian 12's openssl, fixed in `fixed`. */
export function opensslAdvisory(
  id: string,
  fixed: string,
  modified: string,
  cvss = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
): object {
  return {
    schema_version: '1.6.0',
    id,
    modified,
    aliases: [`CVE-2099-${id.slice(-4)}`],
    summary: `openssl: ${id}`,
    severity: [{ type: 'CVSS_V3', score: cvss }],
    affected: [
      { package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] },
    ],
  };
}

/** A directory of OSV JSON files (one per record). */
export function osvDir(records: object[]): string {
  const dir = path.join(tempDir('berth-osv-'), 'osv');
  mkdirSync(dir, { recursive: true });
  for (const r of records) writeFileSync(path.join(dir, `${(r as { id: string }).id}.json`), JSON.stringify(r));
  return dir;
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
